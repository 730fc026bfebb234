//! The log of personal-data reads (issue 3, "Access and privacy": every read of personal data
//! is recorded: who, which record, when, why).
//!
//! Each handler that returns personal data takes a [`Reader`] from its request first (the
//! principal the gateway forwarded, or the federation peer; and the purpose stated in the
//! `x-unione-purpose` header), then, once it has its answer and before sending it, calls
//! [`record_reads`] with the records the answer holds: one row each, all or none. If the
//! row cannot be written the read fails, so no read goes unrecorded; a read that fails
//! (NOT_FOUND, a bad argument) records nothing.
//!
//! `unione.registry.v1.AccessLogService` ([`AccessLogApi`]) reads the log back, newest first,
//! for federation administrators and auditors only.

use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response};
use tracing::{Span, field};
use unione_kit::names::parse_name;
use unione_kit::storage::{now_micros, timestamp};
use unione_kit::token::Role;
use unione_kit::{ApiError, Database, Istat, Served, pagination, principal};
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::access_log_service_server::AccessLogService;

use super::COMUNE;
use crate::storage::access_log::{self as store, AccessFilter, AccessPageKey, Reading};

/// The request header in which a reader states why they read.
pub const PURPOSE_HEADER: &str = "x-unione-purpose";
/// The longest purpose accepted, in characters.
pub const MAX_PURPOSE_CHARS: usize = 200;

/// `comuni/{istat}/{collection}/{id}`: any record of a comune.
const RECORD: &[&str] = &["comuni", "*", "*", "*"];

/// Who reads personal data and why, taken from a request before its handler consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    principal: String,
    role: String,
    purpose: String,
}

impl Reader {
    /// The reader of `request`: the principal the gateway forwarded (its opaque id and role),
    /// or, with none, the federation peer (the first identity of its certificate, or `peer`);
    /// and the purpose header, INVALID_ARGUMENT (reason `INVALID_PURPOSE`, field
    /// `x-unione-purpose`) unless it is printable ASCII of at most 200 characters.
    pub fn of<T>(request: &Request<T>) -> Result<Self, ApiError> {
        let purpose = purpose(request.metadata())?;
        let (principal, role) = match principal::principal(request) {
            Some(p) => (p.sub.clone(), role_name(p.role).to_owned()),
            None => (peer_identity(request), "peer".to_owned()),
        };
        Ok(Self {
            principal,
            role,
            purpose,
        })
    }
}

/// The stable lower-case name of a role, as tokens spell it.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Operator => "operator",
        Role::Admin => "admin",
        Role::Citizen => "citizen",
        Role::Integrator => "integrator",
        Role::Auditor => "auditor",
        Role::PaymentProvider => "payment_provider",
    }
}

/// The first DNS identity of the peer's verified certificate, or `peer`.
fn peer_identity<T>(request: &Request<T>) -> String {
    request
        .peer_certs()
        .and_then(|certs| {
            certs
                .first()
                .and_then(|cert| unione_kit::tls::dns_names(cert.as_ref()).into_iter().next())
        })
        .unwrap_or_else(|| "peer".to_owned())
}

/// The purpose header, trimmed; empty when absent.
fn purpose(metadata: &MetadataMap) -> Result<String, ApiError> {
    let Some(value) = metadata.get(PURPOSE_HEADER) else {
        return Ok(String::new());
    };
    let invalid = || {
        ApiError::invalid(
            PURPOSE_HEADER,
            "INVALID_PURPOSE",
            format!(
                "{PURPOSE_HEADER} must be printable ASCII of at most {MAX_PURPOSE_CHARS} characters"
            ),
        )
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    let printable = text.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    if !printable || text.len() > MAX_PURPOSE_CHARS {
        return Err(invalid());
    }
    Ok(text.to_owned())
}

/// Records that `reader` read `records` of `comune` through `method` (the full gRPC method,
/// `unione.registry.v1.ResidentService/GetResident`): one row per distinct record, all or
/// none, before the handler answers. An error here fails the read.
pub async fn record_reads<'a>(
    db: &Database,
    reader: &Reader,
    comune: &Istat,
    method: &'static str,
    records: impl IntoIterator<Item = &'a str>,
) -> Result<(), ApiError> {
    let mut distinct: Vec<&str> = Vec::new();
    for record in records {
        if !distinct.contains(&record) {
            distinct.push(record);
        }
    }
    if distinct.is_empty() {
        return Ok(());
    }
    let reading = Reading {
        principal: reader.principal.clone(),
        role: reader.role.clone(),
        method,
        purpose: reader.purpose.clone(),
    };
    store::append(db, comune, &reading, now_micros(), &distinct).await?;
    Ok(())
}

/// The access log service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct AccessLogApi {
    db: Database,
    served: Served,
}

impl AccessLogApi {
    /// The handlers over a database migrated with [`crate::migrations`], for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self { db, served }
    }

    #[tracing::instrument(
        name = "ListPersonalDataAccesses",
        skip_all,
        fields(comune = field::Empty)
    )]
    async fn list_inner(
        &self,
        request: Request<pb::ListPersonalDataAccessesRequest>,
    ) -> Result<pb::ListPersonalDataAccessesResponse, ApiError> {
        // The gateway admits only administrators and auditors; refuse anyone else whatever
        // reaches this node.
        let who = principal::require(&request)?;
        if !matches!(who.role, Role::Admin | Role::Auditor) {
            return Err(ApiError::new(
                Code::PermissionDenied,
                "ROLE_NOT_ALLOWED",
                "only federation administrators and auditors read the access log",
            ));
        }
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let record = if req.record.is_empty() {
            None
        } else {
            let (of, _) = parse_name("record", &req.record, RECORD)?;
            if of != istat {
                return Err(ApiError::invalid(
                    "record",
                    "COMUNE_MISMATCH",
                    format!("record must be a record of {}", istat.resource_name()),
                ));
            }
            Some(req.record.clone())
        };
        let start = instant("start_time", req.start_time.as_ref())?.unwrap_or(i64::MIN);
        let end = instant("end_time", req.end_time.as_ref())?.unwrap_or(i64::MAX);
        if end < start {
            return Err(ApiError::invalid(
                "end_time",
                "INVALID_TIME_RANGE",
                "end_time must not be before start_time",
            ));
        }
        let size = pagination::page_size(req.page_size)?;
        let scope = format!(
            "ListPersonalDataAccesses/{}/{}/{start}/{end}",
            req.parent, req.record
        );
        let after: Option<AccessPageKey> = pagination::decode_token(&scope, &req.page_token)?;
        let filter = AccessFilter { record, start, end };
        let mut rows = store::list(&self.db, &istat, &filter, after.as_ref(), size + 1).await?;
        let next_page_token = pagination::finish_page(&mut rows, size, &scope, |r| AccessPageKey {
            at: r.at,
            id: r.id.clone(),
        });
        Ok(pb::ListPersonalDataAccessesResponse {
            personal_data_accesses: rows
                .into_iter()
                .map(|r| pb::PersonalDataAccess {
                    name: format!("{}/personalDataAccesses/{}", istat.resource_name(), r.id),
                    access_time: Some(timestamp(r.at)),
                    principal: r.principal,
                    role: r.role,
                    method: r.method,
                    record: r.record,
                    purpose: r.purpose,
                })
                .collect(),
            next_page_token,
        })
    }
}

/// A wire instant in microseconds, `None` when not given; INVALID_ARGUMENT on `field` for
/// nanoseconds out of range.
fn instant(field: &str, ts: Option<&prost_types::Timestamp>) -> Result<Option<i64>, ApiError> {
    let Some(ts) = ts else {
        return Ok(None);
    };
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(ApiError::invalid(
            field,
            "INVALID_TIMESTAMP",
            format!("{field} has nanos out of range"),
        ));
    }
    Ok(Some(
        ts.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(ts.nanos) / 1000),
    ))
}

#[tonic::async_trait]
impl AccessLogService for AccessLogApi {
    async fn list_personal_data_accesses(
        &self,
        request: Request<pb::ListPersonalDataAccessesRequest>,
    ) -> Result<Response<pb::ListPersonalDataAccessesResponse>, tonic::Status> {
        Ok(Response::new(self.list_inner(request).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_purpose(value: &[u8]) -> Request<()> {
        let mut request = Request::new(());
        request.metadata_mut().insert(
            PURPOSE_HEADER,
            tonic::metadata::MetadataValue::try_from(value).expect("a header value"),
        );
        request
    }

    /// The purpose is optional, printable ASCII, at most 200 characters; anything else is
    /// refused naming the header.
    #[test]
    fn the_purpose_is_short_printable_ascii() {
        let none = Reader::of(&Request::new(())).expect("no purpose");
        assert_eq!(
            (
                none.principal.as_str(),
                none.role.as_str(),
                none.purpose.as_str()
            ),
            ("peer", "peer", "")
        );
        let stated = Reader::of(&with_purpose(b" pratica 42/2026 ")).expect("a purpose");
        assert_eq!(stated.purpose, "pratica 42/2026");
        assert!(Reader::of(&with_purpose(&[b'x'; 200])).is_ok());
        for bad in [&[b'x'; 201][..], "perch\u{e9}".as_bytes(), b"a\tb"] {
            let err = Reader::of(&with_purpose(bad)).expect_err("refused");
            assert_eq!(
                (err.code, err.reason, err.field.as_deref()),
                (
                    Code::InvalidArgument,
                    "INVALID_PURPOSE",
                    Some(PURPOSE_HEADER)
                )
            );
        }
    }
}
