//! `unione.federation.v1.AuditService`: the audit log and usage meters, for federation
//! administrators and auditors (the gateway's [`crate::policy`] table admits no one else).

use tonic::{Request, Response, Status};
use unione_kit::names::parse_name;
use unione_kit::pagination;
use unione_kit::storage::timestamp;
use unione_kit::{ApiError, Database};
use unione_proto::common::v1::Function as PbFunction;
use unione_proto::federation::v1::audit_service_server::AuditService;
use unione_proto::federation::v1::{
    AuditEntry, GetUsageRequest, GetUsageResponse, ListAuditEntriesRequest,
    ListAuditEntriesResponse, UsageRecord, VerifyAuditLogRequest, VerifyAuditLogResponse,
};

use crate::audit;

/// The audit service over the gateway's database.
pub struct AuditApi {
    db: Database,
}

impl AuditApi {
    /// Serves from `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn micros(ts: Option<&prost_types::Timestamp>, default: i64) -> i64 {
    ts.map_or(default, |t| {
        t.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(t.nanos / 1000))
    })
}

fn function_to_pb(name: &str) -> PbFunction {
    match name {
        "registry" => PbFunction::Registry,
        "payments" => PbFunction::Payments,
        "quality" => PbFunction::Quality,
        _ => PbFunction::Unspecified,
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    #[tracing::instrument(name = "ListAuditEntries", skip_all)]
    async fn list_audit_entries(
        &self,
        request: Request<ListAuditEntriesRequest>,
    ) -> Result<Response<ListAuditEntriesResponse>, Status> {
        let req = request.into_inner();
        let size = pagination::page_size_within(req.page_size, 100, 1000)?;
        let (start, end) = (
            micros(req.start_time.as_ref(), i64::MIN),
            micros(req.end_time.as_ref(), i64::MAX),
        );
        let scope = format!("ListAuditEntries/{start}/{end}");
        let after: i64 = pagination::decode_token(&scope, &req.page_token)?.unwrap_or(0);
        let mut rows = audit::list(&self.db, start, end, after, size + 1)
            .await
            .map_err(ApiError::from)?;
        let next_page_token = pagination::finish_page(&mut rows, size, &scope, |s| s.sequence);
        let entries = rows
            .into_iter()
            .map(|s| AuditEntry {
                sequence: s.sequence,
                time: Some(timestamp(s.entry.at)),
                gateway: s.gateway,
                principal: s.entry.principal,
                role: s.entry.role,
                comune: s.entry.comune,
                method: s.entry.method,
                node: s.entry.node,
                code: s.entry.code,
                latency_micros: s.entry.latency_micros,
                previous_hash: s.previous_hash,
                hash: s.hash,
            })
            .collect();
        Ok(Response::new(ListAuditEntriesResponse {
            entries,
            next_page_token,
        }))
    }

    #[tracing::instrument(name = "VerifyAuditLog", skip_all)]
    async fn verify_audit_log(
        &self,
        _request: Request<VerifyAuditLogRequest>,
    ) -> Result<Response<VerifyAuditLogResponse>, Status> {
        let v = audit::verify(&self.db).await.map_err(ApiError::from)?;
        let (first_broken_sequence, detail) = v.broken.unwrap_or((0, String::new()));
        Ok(Response::new(VerifyAuditLogResponse {
            intact: first_broken_sequence == 0,
            entries_checked: v.checked,
            first_broken_sequence,
            detail,
            head_hash: v.head,
        }))
    }

    #[tracing::instrument(name = "GetUsage", skip_all)]
    async fn get_usage(
        &self,
        request: Request<GetUsageRequest>,
    ) -> Result<Response<GetUsageResponse>, Status> {
        let req = request.into_inner();
        let valid_month = req.month.len() == 7
            && chrono::NaiveDate::parse_from_str(&format!("{}-01", req.month), "%Y-%m-%d").is_ok();
        if !valid_month {
            return Err(
                ApiError::invalid("month", "INVALID_MONTH", "month must be YYYY-MM").into(),
            );
        }
        let comune = if req.comune.is_empty() {
            None
        } else {
            Some(
                parse_name("comune", &req.comune, &["comuni", "*"])?
                    .0
                    .resource_name(),
            )
        };
        let rows = audit::usage(&self.db, &req.month, comune.as_deref())
            .await
            .map_err(ApiError::from)?;
        let records = rows
            .into_iter()
            .map(|u| UsageRecord {
                comune: u.comune,
                function: function_to_pb(&u.function) as i32,
                month: req.month.clone(),
                calls: u.calls,
                errors: u.errors,
            })
            .collect();
        Ok(Response::new(GetUsageResponse { records }))
    }
}
