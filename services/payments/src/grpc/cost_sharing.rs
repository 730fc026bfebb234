//! The gRPC handlers of `unione.payments.v1.CostSharingService`: compute an apportionment of a
//! shared cost among the members of an association, read it, issue it as debt positions from
//! the capofila to each member.
//!
//! From an RPC to its SQL in three hops: `compute_apportionment` -> [`apportion::apportion`]
//! -> [`storage::insert_apportionment`] (idempotent on `request_id`);
//! `issue_apportionment` -> [`NewDebtPosition::validate`] per member ->
//! [`storage::insert_position`], [`storage::append_transaction`] (the recognition, as for any
//! position) and [`storage::insert_issued_position`], then [`storage::mark_issued`], all in
//! one `begin_write()` transaction holding the apportionment's lock
//! ([`storage::lock_apportionment`]): issued whole or not at all, and once.

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use tonic::{Code, Request, Response};
use tracing::{Span, field};
use unione_kit::names::parse_name;
use unione_kit::storage::timestamp;
use unione_kit::{ApiError, Database, Istat, Served, idempotency, principal};
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::cost_sharing_service_server::CostSharingService;

use super::COMUNE;
use crate::clock::Clock;
use crate::domain::apportion::{self, MemberBasis, Mix};
use crate::domain::position::MAX_TEXT_CHARS;
use crate::domain::{
    DateParts, DebtPositionDraft, DomainError, NewDebtPosition, PaymentOptionDraft, TransferDraft,
    fiscal, iban, ledger,
};
use crate::storage::{self, IssuedPosition, NewApportionment, StoredApportionment};

/// `comuni/{istat}/apportionments/{id}`.
const APPORTIONMENT: &[&str] = &["comuni", "*", "apportionments", "*"];

/// The years whose costs can be shared.
const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// The cost sharing service of one node, for the comuni it serves (as capofila).
#[derive(Debug, Clone)]
pub struct CostSharingApi {
    db: Database,
    served: Served,
    clock: Clock,
}

/// A rule of the domain broken by a field inside the request's `apportionment`.
fn in_apportionment(err: DomainError) -> ApiError {
    ApiError::invalid(
        format!("apportionment.{}", err.field()),
        err.reason(),
        err.to_string(),
    )
}

impl CostSharingApi {
    /// The handlers over a migrated database (see [`crate::migrations`]) for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self::with_clock(db, served, Clock::system())
    }

    /// The same, reading the time from `clock` (tests move it).
    pub fn with_clock(db: Database, served: Served, clock: Clock) -> Self {
        Self { db, served, clock }
    }

    #[tracing::instrument(
        name = "ComputeApportionment",
        skip_all,
        fields(comune = field::Empty, apportionment = field::Empty)
    )]
    async fn compute_inner(
        &self,
        request: Request<pb::ComputeApportionmentRequest>,
    ) -> Result<pb::Apportionment, ApiError> {
        let actor = principal::require(&request)?.sub.clone();
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let input = req
            .apportionment
            .as_ref()
            .ok_or_else(|| ApiError::required("apportionment"))?;
        check_text(&input.function, "apportionment.function")?;
        if !YEARS.contains(&input.year) {
            return Err(ApiError::invalid(
                "apportionment.year",
                "INVALID_YEAR",
                "the year must be from 2000 to 2100",
            ));
        }
        let method = input
            .method
            .as_ref()
            .ok_or_else(|| ApiError::required("apportionment.method"))?;
        let mix = Mix {
            population_percent: i64::from(method.population_percent),
            usage_percent: i64::from(method.usage_percent),
            quota_percent: i64::from(method.quota_percent),
        };
        let members: Vec<MemberBasis> = input
            .members
            .iter()
            .map(|m| MemberBasis {
                istat: m.istat.clone(),
                population: m.population,
                usage: m.usage,
                quota: m.quota,
            })
            .collect();
        let computed = apportion::apportion(input.total_cost_cents, mix, &members)
            .map_err(in_apportionment)?;
        for (i, m) in input.members.iter().enumerate() {
            let field = format!("members[{i}].fiscal_code");
            if m.fiscal_code.is_empty() {
                return Err(in_apportionment(DomainError::Required { field }));
            }
            fiscal::check_numeric(&m.fiscal_code)
                .map_err(|cause| in_apportionment(DomainError::FiscalCode { field, cause }))?;
        }

        let fingerprint = idempotency::fingerprint(&asked(&req));
        let scope = format!("payments/{}/ComputeApportionment", istat.resource_name());
        let db = &self.db;
        let istat = &istat;
        let (input, computed, actor) = (input, &computed, actor.as_str());
        let now = self.clock.now_micros();
        let stored = idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let id = uuid::Uuid::new_v4().simple().to_string();
                let response = apportionment_to_pb(istat, &id, input, computed, now);
                let computation = prost::Message::encode_to_vec(&response);
                let mut tx = db.begin_write().await?;
                storage::insert_apportionment(
                    &mut tx,
                    istat,
                    &NewApportionment {
                        id: &id,
                        function_name: &input.function,
                        year: input.year,
                        total_cents: input.total_cost_cents,
                        computation: &computation,
                        create_by: actor,
                        create_time: now,
                    },
                )
                .await?;
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(response)
            },
        )
        .await?;
        Span::current().record("apportionment", stored.name.as_str());
        Ok(stored)
    }

    #[tracing::instrument(
        name = "GetApportionment",
        skip_all,
        fields(comune = field::Empty, apportionment = field::Empty)
    )]
    async fn get_inner(
        &self,
        request: Request<pb::GetApportionmentRequest>,
    ) -> Result<pb::Apportionment, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, APPORTIONMENT)?;
        let id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("apportionment", id);
        self.served.check(&metadata, &istat, "name")?;
        let stored = storage::get_apportionment(&self.db, &istat, id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        stored_to_pb(&istat, &stored)
    }

    #[tracing::instrument(
        name = "IssueApportionment",
        skip_all,
        fields(comune = field::Empty, apportionment = field::Empty)
    )]
    async fn issue_inner(
        &self,
        request: Request<pb::IssueApportionmentRequest>,
    ) -> Result<pb::Apportionment, ApiError> {
        let actor = principal::require(&request)?.sub.clone();
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, APPORTIONMENT)?;
        let id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("apportionment", id);
        let profile = self.served.check(&metadata, &istat, "name")?;
        let segregation = crate::domain::notice::SegregationCode::parse(&profile.segregation_code)
            .map_err(|_| {
                ApiError::failed_precondition(
                    "COMUNE_NOT_CONFIGURED",
                    format!("comuni/{istat} has no valid pagoPA segregation code on this node"),
                )
            })?;
        if req.creditor_iban.is_empty() {
            return Err(ApiError::required("creditor_iban"));
        }
        iban::check(&req.creditor_iban).map_err(|cause| DomainError::Iban {
            field: "creditor_iban".to_owned(),
            cause,
        })?;
        let due = req
            .due_date
            .as_ref()
            .ok_or_else(|| ApiError::required("due_date"))?;
        let due_date = u32::try_from(due.month)
            .ok()
            .zip(u32::try_from(due.day).ok())
            .and_then(|(m, d)| NaiveDate::from_ymd_opt(due.year, m, d))
            .ok_or_else(|| {
                ApiError::from(DomainError::DueDate {
                    field: "due_date".to_owned(),
                })
            })?;
        let fingerprint = Sha256::digest(
            format!("{}\n{}", req.creditor_iban, due_date.format("%Y-%m-%d")).as_bytes(),
        )
        .to_vec();

        let now = self.clock.now_micros();
        let mut tx = self.db.begin_write().await?;
        if !storage::lock_apportionment(&mut tx, &istat, id).await? {
            return Err(ApiError::not_found("name", &req.name));
        }
        let stored = storage::read_apportionment(&mut tx, &istat, id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        if let Some(earlier) = &stored.issue_fingerprint {
            // Issuing twice does nothing new: the same parameters read the first result.
            if *earlier != fingerprint {
                return Err(ApiError::failed_precondition(
                    "APPORTIONMENT_ALREADY_ISSUED",
                    "this apportionment was already issued with another IBAN or due date",
                )
                .with_field("name"));
            }
            return stored_to_pb(&istat, &stored);
        }

        let computed = decode(&stored.computation)?;
        let mut text: String = format!("Quota {} {}", computed.year, computed.function);
        if let Some((cut, _)) = text.char_indices().nth(MAX_TEXT_CHARS) {
            text.truncate(cut);
        }
        for share in &computed.shares {
            // The capofila does not bill itself; a zero share is not a debt.
            if share.share_cents == 0
                || share.istat == istat.as_str()
                || share.fiscal_code == profile.fiscal_code
            {
                continue;
            }
            let draft = DebtPositionDraft {
                debtor_fiscal_code: share.fiscal_code.clone(),
                description: text.clone(),
                validity_date: None,
                payment_options: vec![PaymentOptionDraft {
                    amount_cents: share.share_cents,
                    due_date: Some(DateParts {
                        year: due.year,
                        month: due.month,
                        day: due.day,
                    }),
                    installment: false,
                    transfers: vec![TransferDraft {
                        creditor_fiscal_code: profile.fiscal_code.clone(),
                        iban: req.creditor_iban.clone(),
                        amount_cents: share.share_cents,
                        remittance_information: text.clone(),
                    }],
                }],
            };
            let new = NewDebtPosition::validate(draft)?;
            let position =
                storage::insert_position(&mut tx, &istat, &segregation, &new, now).await?;
            let recognised = ledger::position_created(&position.id, &position.ledger_options());
            storage::append_transaction(&mut tx, &istat, &recognised, now).await?;
            storage::insert_issued_position(
                &mut tx,
                &istat,
                id,
                &IssuedPosition {
                    member_istat: share.istat.clone(),
                    position_id: position.id,
                    amount_cents: share.share_cents,
                },
            )
            .await?;
        }
        if !storage::mark_issued(&mut tx, &istat, id, &fingerprint, &actor, now).await? {
            return Err(ApiError::new(
                Code::Aborted,
                "CONCURRENT_ISSUE",
                "another issue of this apportionment is in progress; retry",
            ));
        }
        let after = storage::read_apportionment(&mut tx, &istat, id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        tx.commit().await?;
        stored_to_pb(&istat, &after)
    }
}

#[tonic::async_trait]
impl CostSharingService for CostSharingApi {
    async fn compute_apportionment(
        &self,
        request: Request<pb::ComputeApportionmentRequest>,
    ) -> Result<Response<pb::Apportionment>, tonic::Status> {
        Ok(Response::new(self.compute_inner(request).await?))
    }

    async fn get_apportionment(
        &self,
        request: Request<pb::GetApportionmentRequest>,
    ) -> Result<Response<pb::Apportionment>, tonic::Status> {
        Ok(Response::new(self.get_inner(request).await?))
    }

    async fn issue_apportionment(
        &self,
        request: Request<pb::IssueApportionmentRequest>,
    ) -> Result<Response<pb::Apportionment>, tonic::Status> {
        Ok(Response::new(self.issue_inner(request).await?))
    }
}

/// 1 to [`MAX_TEXT_CHARS`] characters.
fn check_text(text: &str, field: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::required(field));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(DomainError::TooLong {
            field: field.to_owned(),
            max: MAX_TEXT_CHARS,
        }
        .into());
    }
    Ok(())
}

/// The request as far as it asks for something: without `request_id` and the output-only
/// fields of the apportionment.
fn asked(req: &pb::ComputeApportionmentRequest) -> pb::ComputeApportionmentRequest {
    let mut asked = req.clone();
    asked.request_id.clear();
    if let Some(a) = asked.apportionment.as_mut() {
        *a = pb::Apportionment {
            function: std::mem::take(&mut a.function),
            year: a.year,
            total_cost_cents: a.total_cost_cents,
            method: a.method,
            members: std::mem::take(&mut a.members),
            ..Default::default()
        };
    }
    asked
}

/// The wire form of a computed apportionment, before it is issued.
fn apportionment_to_pb(
    istat: &Istat,
    id: &str,
    input: &pb::Apportionment,
    computed: &apportion::Apportionment,
    now: i64,
) -> pb::Apportionment {
    let fiscal_code = |istat: &str| {
        input
            .members
            .iter()
            .find(|m| m.istat == istat)
            .map(|m| m.fiscal_code.clone())
            .unwrap_or_default()
    };
    let mut members = input.members.clone();
    members.sort_by(|a, b| a.istat.cmp(&b.istat));
    pb::Apportionment {
        name: format!("{}/apportionments/{id}", istat.resource_name()),
        function: input.function.clone(),
        year: input.year,
        total_cost_cents: computed.total_cents,
        method: input.method,
        members,
        shares: computed
            .lines
            .iter()
            .map(|l| pb::ApportionmentShare {
                istat: l.istat.clone(),
                fiscal_code: fiscal_code(&l.istat),
                weight: l.weight.to_string(),
                exact_share: computed.exact_share(l),
                floor_cents: l.floor_cents,
                remainder: l.remainder.to_string(),
                remainder_cent: l.remainder_cent,
                share_cents: l.share_cents,
                explanation: computed.explain(l),
            })
            .collect(),
        population_total: computed.basis_totals[0],
        usage_total: computed.basis_totals[1],
        quota_total: computed.basis_totals[2],
        denominator: computed.denominator.to_string(),
        remainder_cents: computed.remainder_cents,
        create_time: Some(timestamp(now)),
        issued: Vec::new(),
        issue_time: None,
    }
}

fn decode(computation: &[u8]) -> Result<pb::Apportionment, ApiError> {
    prost::Message::decode(computation).map_err(|e| ApiError::internal(&e))
}

/// The wire form of a stored apportionment, with what was issued from it.
fn stored_to_pb(
    istat: &Istat,
    stored: &StoredApportionment,
) -> Result<pb::Apportionment, ApiError> {
    let mut out = decode(&stored.computation)?;
    out.issued = stored
        .issued
        .iter()
        .map(|i| pb::IssuedShare {
            istat: i.member_istat.clone(),
            debt_position: format!("{}/debtPositions/{}", istat.resource_name(), i.position_id),
            amount_cents: i.amount_cents,
        })
        .collect();
    out.issue_time = stored.issue_time.map(timestamp);
    Ok(out)
}
