//! The gRPC handlers of `unione.payments.v1.PaymentProviderService`, the calls a payment
//! service provider (PSP) makes: verify a notice, activate (reserve) it, send the receipt,
//! fetch the sealed receipt. Every call names the notice as
//! `comuni/{istat}/notices/{notice_number}` and is checked against the routing header and the
//! comuni this node serves, like every other call.
//!
//! From an RPC to its SQL in three hops: `send_receipt` -> [`state::check_payable`] ->
//! [`storage::insert_receipt`], inside one `begin_write()` transaction that first locks the
//! position ([`storage::lock_position`]); UNIQUE (comune, iuv) on the receipts stops a second
//! payment of the same notice even if that check were bypassed. The receipt's journal
//! transactions ([`ledger::receipt_recorded`]) are appended in that same transaction.

use chrono::SecondsFormat;
use tonic::{Code, Request, Response};
use tracing::{Span, field};
use unione_kit::names::parse_name;
use unione_kit::storage::timestamp;
use unione_kit::{ApiError, ComuneProfile, Database, Istat, Served, pagination, principal};
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::payment_provider_service_server::PaymentProviderService;

use super::{date_to_pb, state_to_pb, visible_to};
use crate::clock::{self, Clock};
use crate::domain::notice::{NoticeNumber, validate_notice_number};
use crate::domain::receipt::{self, DOCUMENT_KIND, ReceiptDocument};
use crate::domain::state::{self, ACTIVATION_TTL, NoticeStatus};
use crate::domain::{PaymentError, ledger, money};
use crate::storage::{self, StoredActivation, StoredPosition, StoredReceipt};

/// `comuni/{istat}/notices/{notice_number}`.
const NOTICE: &[&str] = &["comuni", "*", "notices", "*"];
/// `comuni/{istat}/notices/{notice_number}/receipts/{receipt_id}`.
const RECEIPT: &[&str] = &["comuni", "*", "notices", "*", "receipts", "*"];
/// Longest PSP id, receipt id and idempotency key.
const MAX_ID_LEN: usize = 64;

/// The payment provider service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct PaymentProviderApi {
    db: Database,
    served: Served,
    clock: Clock,
}

/// How one attempt at recording a receipt ended: an answer, or beaten to the IUV by a
/// concurrent writer (UNIQUE (comune, iuv)), in which case a second attempt sees its receipt.
enum SendError {
    Api(ApiError),
    Raced,
}

impl From<ApiError> for SendError {
    fn from(err: ApiError) -> Self {
        Self::Api(err)
    }
}

impl From<PaymentError> for SendError {
    fn from(err: PaymentError) -> Self {
        Self::Api(err.into())
    }
}

impl From<sqlx::Error> for SendError {
    fn from(err: sqlx::Error) -> Self {
        if storage::is_unique_violation(&err) {
            Self::Raced
        } else {
            Self::Api(err.into())
        }
    }
}

impl PaymentProviderApi {
    /// The handlers over a migrated database (see [`crate::migrations`]) for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self::with_clock(db, served, Clock::system())
    }

    /// The same, reading the time from `clock` (tests move it).
    pub fn with_clock(db: Database, served: Served, clock: Clock) -> Self {
        Self { db, served, clock }
    }

    /// Parses `comuni/{istat}/notices/{notice_number}` in `field`, checks the comune, then
    /// the notice number: malformed (`NOTICE_NUMBER_MALFORMED`) or well formed with wrong
    /// check digits (`NOTICE_NUMBER_CHECK_DIGITS`), told apart (DOMAIN.md "Payments").
    fn notice<'a>(
        &'a self,
        metadata: &tonic::metadata::MetadataMap,
        field: &str,
        name: &str,
        pattern: &[&str],
    ) -> Result<(Istat, NoticeNumber, &'a ComuneProfile, Vec<String>), ApiError> {
        let (istat, vars) = parse_name(field, name, pattern)?;
        Span::current().record("comune", istat.as_str());
        let profile = self.served.check(metadata, &istat, field)?;
        let number = validate_notice_number(vars[0]).map_err(|err| {
            let reason = if err.is_well_formed() {
                "NOTICE_NUMBER_CHECK_DIGITS"
            } else {
                "NOTICE_NUMBER_MALFORMED"
            };
            ApiError::invalid(field, reason, format!("notice number: {err}"))
        })?;
        let rest = vars[1..].iter().map(|v| (*v).to_owned()).collect();
        Ok((istat, number, profile, rest))
    }

    #[tracing::instrument(name = "VerifyNotice", skip_all, fields(comune = field::Empty))]
    async fn verify_inner(
        &self,
        request: Request<pb::VerifyNoticeRequest>,
    ) -> Result<pb::VerifyNoticeResponse, ApiError> {
        // The provider calls are the provider's (and an administrator's), never a citizen's.
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, number, profile, _) = self.notice(&metadata, "name", &req.name, NOTICE)?;
        let today = clock::today(self.clock.now_micros());
        let mut conn = self.db.pool().acquire().await?;
        let not_found = || ApiError::not_found("name", &req.name);
        let location = storage::find_notice(&mut conn, &istat, number.as_str())
            .await?
            .ok_or_else(not_found)?;
        let position = storage::read_position(&mut conn, &istat, &location.position_id)
            .await?
            .ok_or_else(not_found)?;
        let option = option_of(&position, location.option_index)?;
        let status = state::notice_status(&position.facts(), location.option_index, today);
        Ok(pb::VerifyNoticeResponse {
            name: req.name.clone(),
            notice_number: option.notice_number.clone(),
            iuv: option.iuv.clone(),
            amount_cents: option.amount_cents,
            due_date: Some(date_to_pb(option.due_date)),
            status: status_to_pb(status).into(),
            creditor_fiscal_code: profile.fiscal_code.clone(),
            creditor_name: profile.name.clone(),
            description: position.description.clone(),
            remittance_information: option
                .transfers
                .first()
                .map(|t| t.remittance_information.clone())
                .unwrap_or_default(),
            installment: option.installment,
        })
    }

    #[tracing::instrument(name = "ActivatePayment", skip_all, fields(comune = field::Empty))]
    async fn activate_inner(
        &self,
        request: Request<pb::ActivatePaymentRequest>,
    ) -> Result<pb::Activation, ApiError> {
        // The provider calls are the provider's (and an administrator's), never a citizen's.
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, number, _, _) = self.notice(&metadata, "name", &req.name, NOTICE)?;
        check_id("psp_id", &req.psp_id)?;
        check_id("idempotency_key", &req.idempotency_key)?;
        let now = self.clock.now_micros();
        let today = clock::today(now);
        let not_found = || ApiError::not_found("name", &req.name);

        let mut tx = self.db.begin_write().await?;
        let location = storage::find_notice(&mut tx, &istat, number.as_str())
            .await?
            .ok_or_else(not_found)?;
        if !storage::lock_position(&mut tx, &istat, &location.position_id).await? {
            return Err(not_found());
        }
        let position = storage::read_position(&mut tx, &istat, &location.position_id)
            .await?
            .ok_or_else(not_found)?;
        let option = option_of(&position, location.option_index)?;
        if let Some(earlier) = storage::find_activation_by_key(
            &mut tx,
            &istat,
            &option.iuv,
            &req.psp_id,
            &req.idempotency_key,
        )
        .await?
        {
            if earlier.amount_cents != req.amount_cents {
                return Err(ApiError::new(
                    Code::AlreadyExists,
                    "IDEMPOTENCY_KEY_REUSED",
                    "this idempotency_key was already used for a different activation",
                )
                .with_field("idempotency_key"));
            }
            return Ok(activation_to_pb(&req.name, &earlier));
        }
        state::check_payable(&position.facts(), location.option_index, today)?;
        check_amount(req.amount_cents, option.amount_cents)?;
        if storage::reserved_by_other(&mut tx, &istat, &option.iuv, &req.psp_id, now).await? {
            return Err(ApiError::new(
                Code::Aborted,
                "NOTICE_RESERVED",
                "another payment provider is paying this notice; retry after its reservation \
                 lapses",
            )
            .with_field("name"));
        }
        let ttl = i64::try_from(ACTIVATION_TTL.as_micros()).expect("the TTL fits i64");
        let activation = StoredActivation {
            id: uuid::Uuid::new_v4().simple().to_string(),
            iuv: option.iuv.clone(),
            psp_id: req.psp_id.clone(),
            idempotency_key: req.idempotency_key.clone(),
            amount_cents: req.amount_cents,
            create_time: now,
            expire_time: now.saturating_add(ttl),
        };
        storage::insert_activation(&mut tx, &istat, &activation).await?;
        tx.commit().await?;
        Ok(activation_to_pb(&req.name, &activation))
    }

    #[tracing::instrument(name = "SendReceipt", skip_all, fields(comune = field::Empty))]
    async fn send_inner(
        &self,
        request: Request<pb::SendReceiptRequest>,
    ) -> Result<pb::Receipt, ApiError> {
        // The provider calls are the provider's (and an administrator's), never a citizen's.
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, number, profile, _) = self.notice(&metadata, "notice", &req.notice, NOTICE)?;
        check_id("psp_id", &req.psp_id)?;
        check_id("receipt_id", &req.receipt_id)?;
        money::check_cents(req.amount_cents).map_err(|cause| {
            ApiError::invalid("amount_cents", "INVALID_AMOUNT", cause.to_string())
        })?;
        let payment_time = req
            .payment_time
            .as_ref()
            .ok_or_else(|| ApiError::required("payment_time"))?;
        let payment_micros = payment_time
            .seconds
            .checked_mul(1_000_000)
            .and_then(|s| s.checked_add(i64::from(payment_time.nanos / 1000)))
            .ok_or_else(|| {
                ApiError::invalid(
                    "payment_time",
                    "INVALID_TIME",
                    "payment_time is out of range",
                )
            })?;
        for attempt in 0.. {
            match self
                .send_once(&req, &istat, &number, profile, payment_micros)
                .await
            {
                Ok(receipt) => return Ok(receipt),
                Err(SendError::Api(err)) => return Err(err),
                // A concurrent writer recorded a receipt for this IUV between our check and our
                // insert: the next attempt sees it and replays or refuses.
                Err(SendError::Raced) if attempt < 2 => continue,
                Err(SendError::Raced) => {
                    return Err(ApiError::new(
                        Code::Aborted,
                        "CONCURRENT_PAYMENT",
                        "another receipt for this notice is being recorded; retry",
                    ));
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// One attempt at recording a receipt, in one write transaction.
    async fn send_once(
        &self,
        req: &pb::SendReceiptRequest,
        istat: &Istat,
        number: &NoticeNumber,
        profile: &ComuneProfile,
        payment_micros: i64,
    ) -> Result<pb::Receipt, SendError> {
        let now = self.clock.now_micros();
        let today = clock::today(now);
        let not_found = || ApiError::not_found("notice", &req.notice);
        let mut tx = self.db.begin_write().await?;
        let location = storage::find_notice(&mut tx, istat, number.as_str())
            .await?
            .ok_or_else(not_found)?;
        if !storage::lock_position(&mut tx, istat, &location.position_id).await? {
            return Err(not_found().into());
        }
        let position = storage::read_position(&mut tx, istat, &location.position_id)
            .await?
            .ok_or_else(not_found)?;
        let option = option_of(&position, location.option_index)?;

        // DOMAIN.md "Payments": idempotent on (creditor, IUV, receipt id); the same receipt
        // again returns the first result, a different amount is an error.
        if let Some(earlier) = storage::find_receipt(&mut tx, istat, &option.iuv).await? {
            if earlier.receipt_id != req.receipt_id {
                return Err(PaymentError::NotPayable(NoticeStatus::Paid).into());
            }
            if earlier.amount_cents != req.amount_cents || earlier.psp_id != req.psp_id {
                return Err(ApiError::new(
                    Code::AlreadyExists,
                    "RECEIPT_CONFLICT",
                    "this receipt id was already recorded for this notice with another amount \
                     or provider",
                )
                .with_field("amount_cents")
                .into());
            }
            let first = prost::Message::decode(earlier.response.as_slice())
                .map_err(|e| ApiError::internal(&e))?;
            return Ok(first);
        }

        let facts = position.facts();
        state::check_payable(&facts, location.option_index, today)?;
        check_amount(req.amount_cents, option.amount_cents)?;
        if !req.activation_id.is_empty() {
            let activation = storage::find_activation(&mut tx, istat, &req.activation_id).await?;
            let fits = activation.is_some_and(|a| a.iuv == option.iuv && a.psp_id == req.psp_id);
            if !fits {
                return Err(ApiError::failed_precondition(
                    "ACTIVATION_MISMATCH",
                    "activation_id is not an activation of this notice by this provider",
                )
                .with_field("activation_id")
                .into());
            }
        }

        let after = state::state_after_payment(&facts, location.option_index, today);
        let name = format!(
            "{}/notices/{}/receipts/{}",
            istat.resource_name(),
            number,
            req.receipt_id
        );
        let response = pb::Receipt {
            name,
            iuv: option.iuv.clone(),
            psp_id: req.psp_id.clone(),
            receipt_id: req.receipt_id.clone(),
            amount_cents: req.amount_cents,
            payment_time: Some(timestamp(payment_micros)),
            activation_id: req.activation_id.clone(),
            debt_position: format!("{}/debtPositions/{}", istat.resource_name(), position.id),
            position_state: state_to_pb(after).into(),
            create_time: Some(timestamp(now)),
        };
        let document = ReceiptDocument {
            kind: DOCUMENT_KIND,
            creditor_fiscal_code: profile.fiscal_code.clone(),
            creditor_name: profile.name.clone(),
            notice_number: number.as_str().to_owned(),
            iuv: option.iuv.clone(),
            receipt_id: req.receipt_id.clone(),
            psp_id: req.psp_id.clone(),
            amount_cents: req.amount_cents,
            amount_euros: ReceiptDocument::euros(req.amount_cents),
            payment_time: rfc3339(payment_micros),
            description: position.description.clone(),
            debtor_fiscal_code: position.debtor_fiscal_code.clone(),
            recorded_at: rfc3339(now),
        }
        .to_json();
        let stored = StoredReceipt {
            iuv: option.iuv.clone(),
            receipt_id: req.receipt_id.clone(),
            position_id: position.id.clone(),
            option_index: i32::try_from(location.option_index)
                .expect("a position has at most MAX_INSTALLMENTS options"),
            psp_id: req.psp_id.clone(),
            amount_cents: req.amount_cents,
            payment_time: payment_micros,
            activation_id: req.activation_id.clone(),
            create_time: now,
            response: prost::Message::encode_to_vec(&response),
            seal: receipt::seal(&document),
            document,
        };
        storage::insert_receipt(&mut tx, istat, &stored).await?;
        storage::write_state(&mut tx, istat, &position.id, after, now).await?;
        // The ledger, in the same transaction: PSP clearing against the receivable (and the
        // change of plan at the first installment of a position payable in full).
        let installments_paid = position
            .payment_options
            .iter()
            .filter(|o| o.installment && o.paid)
            .count();
        for transaction in ledger::receipt_recorded(
            &position.id,
            &position.ledger_options(),
            location.option_index,
            installments_paid,
            &option.iuv,
            &req.psp_id,
            req.amount_cents,
        ) {
            storage::append_transaction(&mut tx, istat, &transaction, now).await?;
        }
        tx.commit().await?;
        Ok(response)
    }

    #[tracing::instrument(name = "GetReceipt", skip_all, fields(comune = field::Empty))]
    async fn get_receipt_inner(
        &self,
        request: Request<pb::GetReceiptRequest>,
    ) -> Result<pb::SealedReceipt, ApiError> {
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, number, _, rest) = self.notice(&metadata, "name", &req.name, RECEIPT)?;
        let not_found = || ApiError::not_found("name", &req.name);
        let stored = storage::get_receipt(&self.db, &istat, number.as_str(), &rest[0])
            .await?
            .ok_or_else(not_found)?;
        // Another debtor's receipt is NOT_FOUND to a citizen, as a missing one.
        if citizen.is_some() {
            let position = storage::get_position(&self.db, &istat, &stored.position_id).await?;
            if !position.is_some_and(|p| visible_to(citizen.as_deref(), &p)) {
                return Err(not_found());
            }
        }
        Ok(pb::SealedReceipt {
            name: req.name.clone(),
            document: stored.document,
            sha256: stored.seal,
        })
    }

    #[tracing::instrument(name = "ListReceipts", skip_all, fields(comune = field::Empty))]
    async fn list_receipts_inner(
        &self,
        request: Request<pb::ListReceiptsRequest>,
    ) -> Result<pb::ListReceiptsResponse, ApiError> {
        let citizen = principal::citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, number, _, _) = self.notice(&metadata, "parent", &req.parent, NOTICE)?;
        pagination::page_size(req.page_size)?;
        // A notice has at most one receipt: one page, and nothing after it.
        let scope = format!("ListReceipts/{}", req.parent);
        let after: Option<String> = pagination::decode_token(&scope, &req.page_token)?;
        let not_found = || ApiError::not_found("parent", &req.parent);
        let mut conn = self.db.pool().acquire().await?;
        let location = storage::find_notice(&mut conn, &istat, number.as_str())
            .await?
            .ok_or_else(not_found)?;
        let position = storage::read_position(&mut conn, &istat, &location.position_id)
            .await?
            .ok_or_else(not_found)?;
        // Another debtor's notice is NOT_FOUND to a citizen, as a missing one.
        if !visible_to(citizen.as_deref(), &position) {
            return Err(not_found());
        }
        let option = option_of(&position, location.option_index)?;
        let receipt = match after {
            Some(_) => None,
            None => storage::find_receipt(&mut conn, &istat, &option.iuv).await?,
        };
        let receipts = receipt
            .map(|r| {
                <pb::Receipt as prost::Message>::decode(r.response.as_slice())
                    .map_err(|e| ApiError::internal(&format!("stored receipt response: {e}")))
            })
            .transpose()?;
        Ok(pb::ListReceiptsResponse {
            receipts: receipts.into_iter().collect(),
            next_page_token: String::new(),
        })
    }
}

#[tonic::async_trait]
impl PaymentProviderService for PaymentProviderApi {
    async fn list_receipts(
        &self,
        request: Request<pb::ListReceiptsRequest>,
    ) -> Result<Response<pb::ListReceiptsResponse>, tonic::Status> {
        Ok(Response::new(self.list_receipts_inner(request).await?))
    }

    async fn verify_notice(
        &self,
        request: Request<pb::VerifyNoticeRequest>,
    ) -> Result<Response<pb::VerifyNoticeResponse>, tonic::Status> {
        Ok(Response::new(self.verify_inner(request).await?))
    }

    async fn activate_payment(
        &self,
        request: Request<pb::ActivatePaymentRequest>,
    ) -> Result<Response<pb::Activation>, tonic::Status> {
        Ok(Response::new(self.activate_inner(request).await?))
    }

    async fn send_receipt(
        &self,
        request: Request<pb::SendReceiptRequest>,
    ) -> Result<Response<pb::Receipt>, tonic::Status> {
        Ok(Response::new(self.send_inner(request).await?))
    }

    async fn get_receipt(
        &self,
        request: Request<pb::GetReceiptRequest>,
    ) -> Result<Response<pb::SealedReceipt>, tonic::Status> {
        Ok(Response::new(self.get_receipt_inner(request).await?))
    }
}

/// The option a notice points at (storage found it, so it exists).
fn option_of(position: &StoredPosition, index: usize) -> Result<&storage::StoredOption, ApiError> {
    position
        .payment_options
        .get(index)
        .ok_or_else(|| ApiError::internal(&"a notice points past its position's options"))
}

/// An id that goes into resource names and keys: 1 to 64 of `A-Z a-z 0-9 . _ -`.
fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::required(field));
    }
    let ok = id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            "INVALID_ID",
            format!("{field} must be 1 to {MAX_ID_LEN} of A-Z, a-z, 0-9, '.', '_', '-'"),
        ))
    }
}

/// A PSP collects exactly the notice's amount (DOMAIN.md "Payments": integer cents).
fn check_amount(asked: i64, due: i64) -> Result<(), ApiError> {
    if asked == due {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "amount_cents",
            "AMOUNT_MISMATCH",
            format!("the notice is for {due} cents, not {asked}"),
        ))
    }
}

fn rfc3339(micros: i64) -> String {
    clock::instant(micros).to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn activation_to_pb(notice: &str, a: &StoredActivation) -> pb::Activation {
    pb::Activation {
        activation_id: a.id.clone(),
        notice: notice.to_owned(),
        psp_id: a.psp_id.clone(),
        amount_cents: a.amount_cents,
        create_time: Some(timestamp(a.create_time)),
        expire_time: Some(timestamp(a.expire_time)),
    }
}

fn status_to_pb(status: NoticeStatus) -> pb::NoticeStatus {
    match status {
        NoticeStatus::Payable => pb::NoticeStatus::Payable,
        NoticeStatus::Paid => pb::NoticeStatus::Paid,
        NoticeStatus::Expired => pb::NoticeStatus::Expired,
        NoticeStatus::Invalid => pb::NoticeStatus::Invalid,
        NoticeStatus::NotYetValid => pb::NoticeStatus::NotYetValid,
        NoticeStatus::InstallmentPaid => pb::NoticeStatus::InstallmentPaid,
    }
}
