//! The gRPC handlers of `unione.registry.v1.ProtocolService` (DOMAIN.md "Protocol register"):
//! decode, check the comune against the routing header and the served comuni, take the
//! operator from the principal, call the domain ([`crate::domain::protocol`]) and storage
//! ([`crate::storage::protocol`]), and map errors to `google.rpc.Status`.
//!
//! Every write runs in one `begin_write` transaction that first locks the register, then reads
//! the clock (injectable, [`ProtocolApi::with_clock`]), so instants follow the commit order
//! and nothing lands on a day already sealed. Spans carry the comune and opaque ids only.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use tonic::{Code, Request, Response};
use tracing::{Span, field};
use unione_kit::names::parse_name;
use unione_kit::storage::{now_micros, timestamp};
use unione_kit::{ApiError, Database, Istat, Served, idempotency, pagination, principal};
use unione_proto::google::r#type::Date;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::protocol_service_server::ProtocolService;

use crate::domain::preservation::{self, PreservationPackage, PreservationService};
use crate::domain::protocol::{
    AOO_CODE, CorrectableField, DEFAULT_REGISTER, DailyContent, Direction, DocumentDraft,
    DocumentRef, ErrorClass, Event, EventKind, ProtocolError, RegistrationDraft,
    StoredRegistration, check_register, check_sealable, format_number, italian_date, seal,
    sha256_hex,
};
use crate::storage::preservation::{self as receipts, StoredReceipt};
use crate::storage::protocol::{self as storage, PageKey, Seal};

/// `comuni/{istat}`.
const COMUNE: &[&str] = &["comuni", "*"];
/// Who the scheduled sealing records as the sealing operator.
pub const SCHEDULER: &str = "system:daily-sealing";
/// `comuni/{istat}/registers/{register}`.
const REGISTER: &[&str] = &["comuni", "*", "registers", "*"];
/// `comuni/{istat}/registers/{register}/registrations/{id}`.
const REGISTRATION: &[&str] = &["comuni", "*", "registers", "*", "registrations", "*"];
/// `comuni/{istat}/registers/{register}/dailyRegisters/{yyyy-mm-dd}`.
const DAILY: &[&str] = &["comuni", "*", "registers", "*", "dailyRegisters", "*"];

/// The clock of the protocol service: microseconds since the epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A protocol rule broken: INVALID_ARGUMENT, FAILED_PRECONDITION or ABORTED (a stale etag).
impl From<ProtocolError> for ApiError {
    fn from(err: ProtocolError) -> Self {
        let code = match err.class() {
            ErrorClass::Invalid => Code::InvalidArgument,
            ErrorClass::FailedPrecondition => Code::FailedPrecondition,
            ErrorClass::Aborted => Code::Aborted,
        };
        let api = ApiError::new(code, err.reason(), err.to_string());
        match err.field() {
            Some(field) => api.with_field(field),
            None => api,
        }
    }
}

/// The protocol service of one node, for the comuni it serves.
#[derive(Clone)]
pub struct ProtocolApi {
    db: Database,
    served: Served,
    clock: Clock,
}

impl std::fmt::Debug for ProtocolApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtocolApi")
            .field("db", &self.db)
            .field("served", &self.served)
            .finish_non_exhaustive()
    }
}

/// What a change of a registration does, given the record as stored.
type Plan<'a> = Box<
    dyn FnOnce(&StoredRegistration) -> Result<Vec<crate::domain::protocol::Change>, ProtocolError>
        + Send
        + 'a,
>;

impl ProtocolApi {
    /// The handlers over a database migrated with [`crate::migrations`], for `served`, on the
    /// system clock.
    pub fn new(db: Database, served: Served) -> Self {
        Self::with_clock(db, served, Arc::new(now_micros))
    }

    /// The handlers with another clock (tests: a year rollover, a day that is over).
    pub fn with_clock(db: Database, served: Served, clock: Clock) -> Self {
        Self { db, served, clock }
    }

    #[tracing::instrument(
        name = "CreateRegistration",
        skip_all,
        fields(comune = field::Empty, registration = field::Empty)
    )]
    async fn create_registration_inner(
        &self,
        request: Request<pb::CreateRegistrationRequest>,
    ) -> Result<pb::Registration, ApiError> {
        let operator = principal::require(&request).map(|p| p.sub.clone());
        let (metadata, _, req) = request.into_parts();
        let (istat, register) = register_parent("parent", &req.parent, true)?;
        Span::current().record("comune", istat.as_str());
        let profile = self.served.check(&metadata, &istat, "parent")?;
        let operator = operator?;
        let given = req
            .registration
            .as_ref()
            .ok_or_else(|| ApiError::required("registration"))?;
        let new = draft_from_pb(given)?.validate()?;

        // The fingerprint covers what the request asks for: the input fields only.
        let asked = pb::CreateRegistrationRequest {
            parent: req.parent.clone(),
            registration: Some(pb::Registration {
                direction: given.direction,
                subject: given.subject.clone(),
                sender: given.sender.clone(),
                recipients: given.recipients.clone(),
                classification: given.classification.clone(),
                assignment: given.assignment.clone(),
                document: given.document.as_ref().map(input_document),
                attachments: given.attachments.iter().map(input_document).collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let fingerprint = idempotency::fingerprint(&asked);
        let scope = format!("registry/{}/CreateRegistration", istat.resource_name());
        let (db, clock, istat, register, new, operator, ipa) = (
            &self.db,
            &self.clock,
            &istat,
            register.as_str(),
            &new,
            operator.as_str(),
            profile.ipa_code.as_str(),
        );
        let created = idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let mut tx = db.begin_write().await?;
                storage::lock_register(&mut tx, istat, register).await?;
                let now = clock();
                let day = italian_date(now);
                check_open_day(&mut tx, istat, register, day).await?;
                let number =
                    storage::next_number(&mut tx, istat, register, i64::from(day.year())).await?;
                let record = storage::insert_registration(
                    &mut tx,
                    istat,
                    crate::storage::new_id(),
                    register,
                    number,
                    now,
                    operator,
                    new,
                )
                .await?;
                let stored = StoredRegistration {
                    record,
                    events: Vec::new(),
                };
                let response = registration_to_pb(istat, ipa, &stored);
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(response)
            },
        )
        .await?;
        Span::current().record("registration", last_segment(&created.name));
        Ok(created)
    }

    #[tracing::instrument(
        name = "GetRegistration",
        skip_all,
        fields(comune = field::Empty, registration = field::Empty)
    )]
    async fn get_registration_inner(
        &self,
        request: Request<pb::GetRegistrationRequest>,
    ) -> Result<pb::Registration, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, register, id) = registration_name("name", &req.name)?;
        Span::current()
            .record("comune", istat.as_str())
            .record("registration", id.as_str());
        let profile = self.served.check(&metadata, &istat, "name")?;
        let mut conn = self.db.pool().acquire().await?;
        let stored = storage::get_registration(&mut conn, &istat, &register, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        Ok(registration_to_pb(&istat, &profile.ipa_code, &stored))
    }

    #[tracing::instrument(
        name = "GetRegistrationDocument",
        skip_all,
        fields(comune = field::Empty, registration = field::Empty)
    )]
    async fn get_registration_document_inner(
        &self,
        request: Request<pb::GetRegistrationDocumentRequest>,
    ) -> Result<pb::DocumentContent, ApiError> {
        let reader = super::access::Reader::of(&request)?;
        let (metadata, _, req) = request.into_parts();
        let (istat, register, id) = registration_name("registration", &req.registration)?;
        Span::current()
            .record("comune", istat.as_str())
            .record("registration", id.as_str());
        self.served.check(&metadata, &istat, "registration")?;
        if req.sha256.is_empty() {
            return Err(ApiError::required("sha256"));
        }
        let mut conn = self.db.pool().acquire().await?;
        let stored = storage::get_registration(&mut conn, &istat, &register, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("registration", &req.registration))?;
        // Only a document this registration lists: a hash of another registration's
        // document is not found here.
        let document = stored
            .record
            .documents
            .iter()
            .find(|d| d.sha256 == req.sha256)
            .ok_or_else(|| ApiError::not_found("sha256", &req.sha256))?
            .clone();
        let content = storage::get_blob(&mut conn, &istat, &document.sha256)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    Code::DataLoss,
                    "DOCUMENT_MISSING",
                    "the registration lists a document whose content is not stored",
                )
            })?;
        drop(conn);
        if crate::domain::protocol::sha256_hex(&content) != document.sha256 {
            return Err(ApiError::new(
                Code::DataLoss,
                "DOCUMENT_CORRUPTED",
                "the stored content no longer matches the hash registered for it",
            )
            .with_field("sha256"));
        }
        super::access::record_reads(
            &self.db,
            &reader,
            &istat,
            "unione.registry.v1.ProtocolService/GetRegistrationDocument",
            [req.registration.as_str()],
        )
        .await?;
        Ok(pb::DocumentContent {
            file_name: document.file_name,
            media_type: document.media_type,
            content,
            sha256: document.sha256,
        })
    }

    #[tracing::instrument(name = "ListRegistrations", skip_all, fields(comune = field::Empty))]
    async fn list_registrations_inner(
        &self,
        request: Request<pb::ListRegistrationsRequest>,
    ) -> Result<pb::ListRegistrationsResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, register) = register_parent("parent", &req.parent, false)?;
        Span::current().record("comune", istat.as_str());
        let profile = self.served.check(&metadata, &istat, "parent")?;
        let register = (register != "-").then_some(register);
        let year = match req.year {
            0 => None,
            y if (1..=9999).contains(&y) => Some(i64::from(y)),
            _ => {
                return Err(ApiError::invalid(
                    "year",
                    "INVALID_YEAR",
                    "year must be 1 to 9999, or 0 for every year",
                ));
            }
        };
        let size = pagination::page_size(req.page_size)?;
        let scope = format!("ListRegistrations/{}/{}", req.parent, req.year);
        let after: Option<PageKey> = pagination::decode_token(&scope, &req.page_token)?;
        let mut conn = self.db.pool().acquire().await?;
        let mut rows = storage::list_registrations(
            &mut conn,
            &istat,
            register.as_deref(),
            year,
            after.as_ref(),
            size + 1,
        )
        .await?;
        let next_page_token = pagination::finish_page(&mut rows, size, &scope, |r| PageKey {
            register: r.record.register.clone(),
            year: r.record.year,
            number: r.record.number,
        });
        Ok(pb::ListRegistrationsResponse {
            registrations: rows
                .iter()
                .map(|r| registration_to_pb(&istat, &profile.ipa_code, r))
                .collect(),
            next_page_token,
        })
    }

    /// Appends the changes `plan` makes to a registration, in one write transaction, after
    /// checking the etag (AIP-154). No change at all writes nothing.
    #[allow(clippy::too_many_arguments)] // the parts of one change, each named at the call
    async fn change(
        &self,
        istat: &Istat,
        ipa: &str,
        register: &str,
        id: &str,
        (name_field, name): (&str, &str),
        (etag_field, etag): (&str, &str),
        operator: &str,
        plan: Plan<'_>,
    ) -> Result<pb::Registration, ApiError> {
        if etag.is_empty() {
            return Err(ApiError::required(etag_field));
        }
        let mut tx = self.db.begin_write().await?;
        storage::lock_register(&mut tx, istat, register).await?;
        let now = (self.clock)();
        let mut stored = storage::get_registration(&mut tx, istat, register, id)
            .await?
            .ok_or_else(|| ApiError::not_found(name_field, name))?;
        if etag != etag_of(&stored) {
            return Err(ApiError::from(ProtocolError::EtagMismatch).with_field(etag_field));
        }
        let changes = plan(&stored)?;
        if changes.is_empty() {
            return Ok(registration_to_pb(istat, ipa, &stored));
        }
        check_open_day(&mut tx, istat, register, italian_date(now)).await?;
        let events =
            storage::append_events(&mut tx, istat, &stored, changes, now, operator).await?;
        tx.commit().await?;
        stored.events.extend(events);
        Ok(registration_to_pb(istat, ipa, &stored))
    }

    #[tracing::instrument(
        name = "UpdateRegistration",
        skip_all,
        fields(comune = field::Empty, registration = field::Empty)
    )]
    async fn update_registration_inner(
        &self,
        request: Request<pb::UpdateRegistrationRequest>,
    ) -> Result<pb::Registration, ApiError> {
        let operator = principal::require(&request).map(|p| p.sub.clone());
        let (metadata, _, req) = request.into_parts();
        let given = req
            .registration
            .ok_or_else(|| ApiError::required("registration"))?;
        let (istat, register, id) = registration_name("registration.name", &given.name)?;
        Span::current()
            .record("comune", istat.as_str())
            .record("registration", id.as_str());
        let profile = self.served.check(&metadata, &istat, "registration.name")?;
        let operator = operator?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(ApiError::required("update_mask"));
        }
        let (mut classification, mut assignment) = (None, None);
        for path in &paths {
            match path.as_str() {
                "classification" => classification = Some(given.classification.clone()),
                "assignment" => assignment = Some(given.assignment.clone()),
                other => {
                    return Err(ProtocolError::FieldNotUpdatable {
                        path: other.to_owned(),
                    }
                    .into());
                }
            }
        }
        self.change(
            &istat,
            &profile.ipa_code,
            &register,
            &id,
            ("registration.name", &given.name),
            ("registration.etag", &given.etag),
            &operator,
            Box::new(move |stored| {
                stored.plan_update(classification.as_deref(), assignment.as_deref())
            }),
        )
        .await
    }

    #[tracing::instrument(
        name = "CorrectField",
        skip_all,
        fields(comune = field::Empty, registration = field::Empty)
    )]
    async fn correct_field_inner(
        &self,
        request: Request<pb::CorrectFieldRequest>,
    ) -> Result<pb::Registration, ApiError> {
        let operator = principal::require(&request).map(|p| p.sub.clone());
        let (metadata, _, req) = request.into_parts();
        let (istat, register, id) = registration_name("name", &req.name)?;
        Span::current()
            .record("comune", istat.as_str())
            .record("registration", id.as_str());
        let profile = self.served.check(&metadata, &istat, "name")?;
        let operator = operator?;
        let field = match pb::CorrectableField::try_from(req.field) {
            Ok(pb::CorrectableField::Subject) => CorrectableField::Subject,
            Ok(pb::CorrectableField::Sender) => CorrectableField::Sender,
            Ok(pb::CorrectableField::Recipients) => CorrectableField::Recipients,
            Ok(pb::CorrectableField::Unspecified) => return Err(ApiError::required("field")),
            Err(_) => {
                return Err(ProtocolError::UnknownEnumValue {
                    field: "field".to_owned(),
                    value: req.field,
                }
                .into());
            }
        };
        let (value, recipients, reason, act) = (
            req.new_value.clone(),
            req.new_recipients.clone(),
            req.reason.clone(),
            req.authorising_act.clone(),
        );
        self.change(
            &istat,
            &profile.ipa_code,
            &register,
            &id,
            ("name", &req.name),
            ("etag", &req.etag),
            &operator,
            Box::new(move |stored| {
                stored
                    .plan_correction(field, &value, &recipients, &reason, &act)
                    .map(|c| vec![c])
            }),
        )
        .await
    }

    #[tracing::instrument(
        name = "AnnulRegistration",
        skip_all,
        fields(comune = field::Empty, registration = field::Empty)
    )]
    async fn annul_registration_inner(
        &self,
        request: Request<pb::AnnulRegistrationRequest>,
    ) -> Result<pb::Registration, ApiError> {
        let operator = principal::require(&request).map(|p| p.sub.clone());
        let (metadata, _, req) = request.into_parts();
        let (istat, register, id) = registration_name("name", &req.name)?;
        Span::current()
            .record("comune", istat.as_str())
            .record("registration", id.as_str());
        let profile = self.served.check(&metadata, &istat, "name")?;
        let operator = operator?;
        let (reason, act) = (req.reason.clone(), req.authorising_act.clone());
        self.change(
            &istat,
            &profile.ipa_code,
            &register,
            &id,
            ("name", &req.name),
            ("etag", &req.etag),
            &operator,
            Box::new(move |stored| stored.plan_annulment(&reason, &act).map(|c| vec![c])),
        )
        .await
    }

    #[tracing::instrument(name = "GetDailyRegister", skip_all, fields(comune = field::Empty))]
    async fn get_daily_register_inner(
        &self,
        request: Request<pb::GetDailyRegisterRequest>,
    ) -> Result<pb::DailyRegister, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, register, day) = daily_name(&req.name)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "name")?;
        let mut conn = self.db.pool().acquire().await?;
        let content = daily_content(&mut conn, &istat, &register, day).await?;
        let sealed = storage::get_seal(&mut conn, &istat, &register, day).await?;
        let receipt = receipts::get_receipt(&mut conn, &istat, &register, day).await?;
        Ok(daily_to_pb(
            &req.name,
            &content,
            sealed.as_ref(),
            receipt.as_ref(),
            (self.clock)(),
        ))
    }

    #[tracing::instrument(name = "SealDailyRegister", skip_all, fields(comune = field::Empty))]
    async fn seal_daily_register_inner(
        &self,
        request: Request<pb::SealDailyRegisterRequest>,
    ) -> Result<pb::DailyRegister, ApiError> {
        let operator = principal::require(&request).map(|p| p.sub.clone());
        let (metadata, _, req) = request.into_parts();
        let (istat, register, day) = daily_name(&req.name)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "name")?;
        let operator = operator?;
        let (content, sealed) = self.seal_day(&istat, &register, day, &operator).await?;
        let mut conn = self.db.pool().acquire().await?;
        let receipt = receipts::get_receipt(&mut conn, &istat, &register, day).await?;
        Ok(daily_to_pb(
            &req.name,
            &content,
            Some(&sealed),
            receipt.as_ref(),
            (self.clock)(),
        ))
    }

    /// Seals `day` of a register (or returns its existing seal), chained to the seal of the
    /// day before, in one write transaction.
    async fn seal_day(
        &self,
        istat: &Istat,
        register: &str,
        day: NaiveDate,
        operator: &str,
    ) -> Result<(DailyContent, Seal), ApiError> {
        let mut tx = self.db.begin_write().await?;
        storage::lock_register(&mut tx, istat, register).await?;
        let now = (self.clock)();
        let content = daily_content(&mut tx, istat, register, day).await?;
        if let Some(existing) = storage::get_seal(&mut tx, istat, register, day).await? {
            return Ok((content, existing));
        }
        let last = storage::last_sealed_day(&mut tx, istat, register).await?;
        check_sealable(day, now, last)?;
        let previous_seal = match last {
            Some(last) => storage::get_seal(&mut tx, istat, register, last)
                .await?
                .map(|s| s.seal)
                .unwrap_or_default(),
            None => String::new(),
        };
        let json = content.to_json();
        let sealed = Seal {
            day,
            seal: seal(&previous_seal, &json),
            previous_seal,
            content_sha256: sha256_hex(&json),
            sealed_at: now,
            sealed_by: operator.to_owned(),
        };
        storage::insert_seal(&mut tx, istat, register, &sealed).await?;
        tx.commit().await?;
        Ok((content, sealed))
    }

    /// Seals, for every register of every comune served, each day that is over and not yet
    /// sealed, in order from the day after the last seal (or the register's first day), as
    /// the protocol office must by the next working day (DPCM 3/12/2013 art. 7). Days with no
    /// registration are sealed too, so the chain has no hole. Returns the days sealed, and the
    /// failures named.
    pub async fn seal_pending_days(&self) -> (usize, Vec<String>) {
        let mut sealed = 0;
        let mut failures = Vec::new();
        let yesterday = italian_date((self.clock)()).pred_opt();
        let comuni: Vec<Istat> = self.served.iter().map(|p| p.istat.clone()).collect();
        for istat in comuni {
            let registers = match self.db.pool().acquire().await {
                Ok(mut conn) => storage::registers_with_first_day(&mut conn, &istat).await,
                Err(err) => Err(err),
            };
            let registers = match registers {
                Ok(r) => r,
                Err(err) => {
                    failures.push(format!("{}: {err}", istat.as_str()));
                    continue;
                }
            };
            for (register, first_day) in registers {
                let last = match self.db.pool().acquire().await {
                    Ok(mut conn) => storage::last_sealed_day(&mut conn, &istat, &register).await,
                    Err(err) => Err(err),
                };
                let mut day = match last {
                    Ok(Some(last)) => last.succ_opt(),
                    Ok(None) => Some(first_day),
                    Err(err) => {
                        failures.push(format!("{} {register}: {err}", istat.as_str()));
                        continue;
                    }
                };
                while let Some(d) = day.filter(|d| Some(*d) <= yesterday) {
                    match self.seal_day(&istat, &register, d, SCHEDULER).await {
                        Ok(_) => sealed += 1,
                        Err(err) => {
                            failures.push(format!(
                                "{} {register} {d}: {}",
                                istat.as_str(),
                                tonic::Status::from(err).message()
                            ));
                            break;
                        }
                    }
                    day = d.succ_opt();
                }
            }
        }
        (sealed, failures)
    }

    /// Sends to `archive`, for every register of every comune served, each sealed day that
    /// has no preservation receipt yet, oldest first, and stores each receipt with its day
    /// (DOMAIN.md "Registry": the daily register is "sent to preservation by the next working
    /// day"). A register stops at its first failure, so its days go in order; an archive that
    /// is unavailable leaves the days pending for the next run, and none is lost. A day whose
    /// register no longer matches its seal is not sent (VerifyRegister reports it). Returns the
    /// days preserved, and the failures named.
    pub async fn preserve_pending_days(
        &self,
        archive: &dyn PreservationService,
    ) -> (usize, Vec<String>) {
        let mut preserved = 0;
        let mut failures = Vec::new();
        let comuni: Vec<Istat> = self.served.iter().map(|p| p.istat.clone()).collect();
        for istat in comuni {
            let registers = match self.db.pool().acquire().await {
                Ok(mut conn) => receipts::sealed_registers(&mut conn, &istat).await,
                Err(err) => Err(err),
            };
            let registers = match registers {
                Ok(r) => r,
                Err(err) => {
                    failures.push(format!("{}: {err}", istat.as_str()));
                    continue;
                }
            };
            for register in registers {
                match self.preserve_register(archive, &istat, &register).await {
                    Ok(n) => preserved += n,
                    Err((n, failure)) => {
                        preserved += n;
                        failures.push(format!("{} {register} {failure}", istat.as_str()));
                    }
                }
            }
        }
        (preserved, failures)
    }

    /// Preserves the pending sealed days of one register, in order; on a failure, the days
    /// preserved before it and the failure (starting with the day).
    async fn preserve_register(
        &self,
        archive: &dyn PreservationService,
        istat: &Istat,
        register: &str,
    ) -> Result<usize, (usize, String)> {
        let mut preserved = 0;
        let mut conn = self
            .db
            .pool()
            .acquire()
            .await
            .map_err(|e| (0, e.to_string()))?;
        let pending = receipts::unpreserved_seals(&mut conn, istat, register)
            .await
            .map_err(|e| (0, e.to_string()))?;
        for sealed in pending {
            let day = sealed.day;
            let failed = |n: usize, what: &dyn std::fmt::Display| (n, format!("{day}: {what}"));
            let content = daily_content(&mut conn, istat, register, day)
                .await
                .map_err(|e| failed(preserved, &e))?;
            let document = content.to_json();
            if sha256_hex(&document) != sealed.content_sha256 {
                tracing::warn!(%day, "a sealed daily register no longer matches its seal: not sent to preservation");
                return Err(failed(
                    preserved,
                    &"the register no longer matches its seal",
                ));
            }
            let package = PreservationPackage {
                comune: istat.as_str().to_owned(),
                register: register.to_owned(),
                day,
                seal: sealed.seal,
                previous_seal: sealed.previous_seal,
                sealed_at: sealed.sealed_at,
                document,
            };
            let receipt = archive
                .deposit(&package)
                .await
                .map_err(|e| failed(preserved, &e))?;
            receipts::insert_receipt(&mut conn, istat, register, day, &receipt, (self.clock)())
                .await
                .map_err(|e| failed(preserved, &e))?;
            preserved += 1;
        }
        Ok(preserved)
    }

    #[tracing::instrument(name = "VerifyRegister", skip_all, fields(comune = field::Empty))]
    async fn verify_register_inner(
        &self,
        request: Request<pb::VerifyRegisterRequest>,
    ) -> Result<pb::VerifyRegisterResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, register) = register_parent("parent", &req.parent, false)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        check_register("parent", &register)?;
        let mut conn = self.db.pool().acquire().await?;
        let seals = storage::seals(&mut conn, &istat, &register).await?;
        let preserved: std::collections::BTreeSet<NaiveDate> =
            receipts::receipts(&mut conn, &istat, &register)
                .await?
                .into_iter()
                .map(|r| r.day)
                .collect();
        let now = (self.clock)();
        let overdue: Vec<NaiveDate> = seals
            .iter()
            .map(|s| s.day)
            .filter(|d| !preserved.contains(d) && preservation::is_overdue(*d, now))
            .collect();
        let overdue_count = i32::try_from(overdue.len()).unwrap_or(i32::MAX);
        let first_overdue = overdue.first().map(|d| date_to_pb(*d));
        let mut previous = String::new();
        let mut checked = 0;
        for s in &seals {
            checked += 1;
            let content = daily_content(&mut conn, &istat, &register, s.day).await?;
            let expected = seal(&previous, &content.to_json());
            if s.previous_seal != previous || s.seal != expected {
                tracing::warn!(day = %s.day, "a sealed daily register no longer matches its seal");
                return Ok(pb::VerifyRegisterResponse {
                    intact: false,
                    days_checked: checked,
                    first_broken_date: Some(date_to_pb(s.day)),
                    preservation_overdue_days: overdue_count,
                    first_preservation_overdue_date: first_overdue,
                });
            }
            previous.clone_from(&s.seal);
        }
        Ok(pb::VerifyRegisterResponse {
            intact: true,
            days_checked: checked,
            first_broken_date: None,
            preservation_overdue_days: overdue_count,
            first_preservation_overdue_date: first_overdue,
        })
    }
}

#[tonic::async_trait]
impl ProtocolService for ProtocolApi {
    async fn create_registration(
        &self,
        request: Request<pb::CreateRegistrationRequest>,
    ) -> Result<Response<pb::Registration>, tonic::Status> {
        Ok(Response::new(
            self.create_registration_inner(request).await?,
        ))
    }

    async fn get_registration(
        &self,
        request: Request<pb::GetRegistrationRequest>,
    ) -> Result<Response<pb::Registration>, tonic::Status> {
        Ok(Response::new(self.get_registration_inner(request).await?))
    }

    async fn get_registration_document(
        &self,
        request: Request<pb::GetRegistrationDocumentRequest>,
    ) -> Result<Response<pb::DocumentContent>, tonic::Status> {
        Ok(Response::new(
            self.get_registration_document_inner(request).await?,
        ))
    }

    async fn list_registrations(
        &self,
        request: Request<pb::ListRegistrationsRequest>,
    ) -> Result<Response<pb::ListRegistrationsResponse>, tonic::Status> {
        Ok(Response::new(self.list_registrations_inner(request).await?))
    }

    async fn update_registration(
        &self,
        request: Request<pb::UpdateRegistrationRequest>,
    ) -> Result<Response<pb::Registration>, tonic::Status> {
        Ok(Response::new(
            self.update_registration_inner(request).await?,
        ))
    }

    async fn correct_field(
        &self,
        request: Request<pb::CorrectFieldRequest>,
    ) -> Result<Response<pb::Registration>, tonic::Status> {
        Ok(Response::new(self.correct_field_inner(request).await?))
    }

    async fn annul_registration(
        &self,
        request: Request<pb::AnnulRegistrationRequest>,
    ) -> Result<Response<pb::Registration>, tonic::Status> {
        Ok(Response::new(self.annul_registration_inner(request).await?))
    }

    async fn get_daily_register(
        &self,
        request: Request<pb::GetDailyRegisterRequest>,
    ) -> Result<Response<pb::DailyRegister>, tonic::Status> {
        Ok(Response::new(self.get_daily_register_inner(request).await?))
    }

    async fn seal_daily_register(
        &self,
        request: Request<pb::SealDailyRegisterRequest>,
    ) -> Result<Response<pb::DailyRegister>, tonic::Status> {
        Ok(Response::new(
            self.seal_daily_register_inner(request).await?,
        ))
    }

    async fn verify_register(
        &self,
        request: Request<pb::VerifyRegisterRequest>,
    ) -> Result<Response<pb::VerifyRegisterResponse>, tonic::Status> {
        Ok(Response::new(self.verify_register_inner(request).await?))
    }
}

/// Refuses a write on a day already sealed (the daily register cannot be altered).
pub(crate) async fn check_open_day(
    conn: &mut AnyConnection,
    istat: &Istat,
    register: &str,
    day: NaiveDate,
) -> Result<(), ApiError> {
    match storage::last_sealed_day(conn, istat, register).await? {
        Some(last) if last >= day => Err(ProtocolError::DaySealed.into()),
        _ => Ok(()),
    }
}

/// The daily register of `day` as stored now.
async fn daily_content(
    conn: &mut AnyConnection,
    istat: &Istat,
    register: &str,
    day: NaiveDate,
) -> Result<DailyContent, sqlx::Error> {
    Ok(DailyContent {
        comune: istat.as_str().to_owned(),
        register: register.to_owned(),
        date: day,
        registrations: storage::registrations_on(conn, istat, register, day).await?,
        events: storage::events_on(conn, istat, register, day).await?,
    })
}

/// `comuni/{istat}/registers/{register}` (or, when `comune_alone`, `comuni/{istat}` for
/// [`DEFAULT_REGISTER`]). The register `-` (every register) is left to the caller.
fn register_parent(
    field: &str,
    name: &str,
    comune_alone: bool,
) -> Result<(Istat, String), ApiError> {
    if comune_alone && name.split('/').count() == 2 {
        let (istat, _) = parse_name(field, name, COMUNE)?;
        return Ok((istat, DEFAULT_REGISTER.to_owned()));
    }
    let (istat, vars) = parse_name(field, name, REGISTER)?;
    let register = vars[0].to_owned();
    if register != "-" || comune_alone {
        check_register(field, &register)?;
    }
    Ok((istat, register))
}

/// `comuni/{istat}/registers/{register}/registrations/{id}`.
fn registration_name(field: &str, name: &str) -> Result<(Istat, String, String), ApiError> {
    let (istat, vars) = parse_name(field, name, REGISTRATION)?;
    check_register(field, vars[0])?;
    Ok((istat, vars[0].to_owned(), vars[1].to_owned()))
}

/// `comuni/{istat}/registers/{register}/dailyRegisters/{yyyy-mm-dd}`.
fn daily_name(name: &str) -> Result<(Istat, String, NaiveDate), ApiError> {
    let (istat, vars) = parse_name("name", name, DAILY)?;
    check_register("name", vars[0])?;
    let day = NaiveDate::parse_from_str(vars[1], "%Y-%m-%d").map_err(|_| {
        ApiError::invalid(
            "name",
            "INVALID_RESOURCE_NAME",
            "the daily register is named by its day, `YYYY-MM-DD`",
        )
    })?;
    Ok((istat, vars[0].to_owned(), day))
}

fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or_default()
}

/// A wire document with only its input fields.
pub(crate) fn input_document(d: &pb::Document) -> pb::Document {
    pb::Document {
        file_name: d.file_name.clone(),
        media_type: d.media_type.clone(),
        content: d.content.clone(),
        ..Default::default()
    }
}

/// The wire registration as a draft for the domain to check.
fn draft_from_pb(r: &pb::Registration) -> Result<RegistrationDraft, ProtocolError> {
    let direction = match pb::Direction::try_from(r.direction) {
        Ok(pb::Direction::Unspecified) => None,
        Ok(pb::Direction::Incoming) => Some(Direction::Incoming),
        Ok(pb::Direction::Outgoing) => Some(Direction::Outgoing),
        Ok(pb::Direction::Internal) => Some(Direction::Internal),
        Err(_) => {
            return Err(ProtocolError::UnknownEnumValue {
                field: "registration.direction".to_owned(),
                value: r.direction,
            });
        }
    };
    let doc = |d: &pb::Document| DocumentDraft {
        file_name: d.file_name.clone(),
        media_type: d.media_type.clone(),
        content: d.content.clone(),
    };
    Ok(RegistrationDraft {
        direction,
        subject: r.subject.clone(),
        sender: r.sender.clone(),
        recipients: r.recipients.clone(),
        classification: r.classification.clone(),
        assignment: r.assignment.clone(),
        document: r.document.as_ref().map(doc),
        attachments: r.attachments.iter().map(doc).collect(),
    })
}

fn date_to_pb(date: NaiveDate) -> Date {
    Date {
        year: date.year(),
        month: i32::try_from(date.month()).expect("invariant: months are 1 to 12"),
        day: i32::try_from(date.day()).expect("invariant: days are 1 to 31"),
    }
}

/// The etag of a registration (AIP-154): opaque, changes with every history entry.
pub fn etag_of(stored: &StoredRegistration) -> String {
    let digest = Sha256::digest(format!("{}:{}", stored.record.id, stored.revision()));
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn document_to_pb(d: &DocumentRef) -> pb::Document {
    pb::Document {
        file_name: d.file_name.clone(),
        media_type: d.media_type.clone(),
        content: Vec::new(),
        sha256: d.sha256.clone(),
        size_bytes: d.size_bytes,
    }
}

fn history_to_pb(e: &Event) -> pb::HistoryEntry {
    pb::HistoryEntry {
        kind: match e.kind {
            EventKind::ClassificationChanged => pb::HistoryKind::ClassificationChanged,
            EventKind::AssignmentChanged => pb::HistoryKind::AssignmentChanged,
            EventKind::SubjectCorrected => pb::HistoryKind::SubjectCorrected,
            EventKind::SenderCorrected => pb::HistoryKind::SenderCorrected,
            EventKind::RecipientsCorrected => pb::HistoryKind::RecipientsCorrected,
            EventKind::Annulled => pb::HistoryKind::Annulled,
        }
        .into(),
        old_value: e.old_value.clone(),
        new_value: e.new_value.clone(),
        operator: e.operator.clone(),
        time: Some(timestamp(e.at)),
        reason: e.reason.clone(),
        authorising_act: e.authorising_act.clone(),
    }
}

/// The wire form of a stored registration of `istat`, whose administration has the IPA code
/// `ipa`: current values, the segnatura as registered, the full history.
pub fn registration_to_pb(
    istat: &Istat,
    ipa: &str,
    stored: &StoredRegistration,
) -> pb::Registration {
    let r = &stored.record;
    let current = stored.current();
    let formatted = format_number(r.number);
    pb::Registration {
        name: format!(
            "{}/registers/{}/registrations/{}",
            istat.resource_name(),
            r.register,
            r.id
        ),
        register: r.register.clone(),
        number: r.number,
        formatted_number: formatted.clone(),
        year: i32::try_from(r.year).unwrap_or_default(),
        registration_time: Some(timestamp(r.registered_at)),
        registration_date: Some(date_to_pb(r.registration_date)),
        direction: match r.direction {
            Direction::Incoming => pb::Direction::Incoming,
            Direction::Outgoing => pb::Direction::Outgoing,
            Direction::Internal => pb::Direction::Internal,
        }
        .into(),
        subject: current.subject,
        sender: current.sender,
        recipients: current.recipients,
        classification: current.classification,
        assignment: current.assignment,
        document: r.documents.first().map(document_to_pb),
        attachments: r.documents.iter().skip(1).map(document_to_pb).collect(),
        segnatura: Some(pb::Segnatura {
            ipa_code: ipa.to_owned(),
            aoo_code: AOO_CODE.to_owned(),
            register_code: r.register.clone(),
            number: formatted,
            registration_time: Some(timestamp(r.registered_at)),
            registration_date: Some(date_to_pb(r.registration_date)),
            subject: r.subject.clone(),
            classification: r.classification.clone(),
            document_sha256: r
                .documents
                .first()
                .map(|d| d.sha256.clone())
                .unwrap_or_default(),
            attachment_sha256: r
                .documents
                .iter()
                .skip(1)
                .map(|d| d.sha256.clone())
                .collect(),
        }),
        history: stored.events.iter().map(history_to_pb).collect(),
        annulment: current.annulment.map(|a| pb::Annulment {
            time: Some(timestamp(a.at)),
            operator: a.operator,
            reason: a.reason,
            authorising_act: a.authorising_act,
        }),
        operator: r.operator.clone(),
        etag: etag_of(stored),
    }
}

/// The daily register as returned, with its seal and preservation receipt (if any), and
/// whether its preservation is overdue at `now`.
fn daily_to_pb(
    name: &str,
    content: &DailyContent,
    sealed: Option<&Seal>,
    receipt: Option<&StoredReceipt>,
    now: i64,
) -> pb::DailyRegister {
    let json = content.to_json();
    pb::DailyRegister {
        name: name.to_owned(),
        date: Some(date_to_pb(content.date)),
        registration_count: i32::try_from(content.registrations.len()).unwrap_or(i32::MAX),
        event_count: i32::try_from(content.events.len()).unwrap_or(i32::MAX),
        content_sha256: sha256_hex(&json),
        content: json,
        previous_seal: sealed.map(|s| s.previous_seal.clone()).unwrap_or_default(),
        seal: sealed.map(|s| s.seal.clone()).unwrap_or_default(),
        seal_time: sealed.map(|s| timestamp(s.sealed_at)),
        sealed_by: sealed.map(|s| s.sealed_by.clone()).unwrap_or_default(),
        preservation_time: receipt.map(|r| timestamp(r.receipt.deposited_at)),
        preservation_id: receipt
            .map(|r| r.receipt.deposit_id.clone())
            .unwrap_or_default(),
        preservation_due_date: Some(date_to_pb(preservation::due_date(content.date))),
        preservation_overdue: receipt.is_none() && preservation::is_overdue(content.date, now),
    }
}

/// Runs [`ProtocolApi::seal_pending_days`] at start and then every `interval`, until `stop`
/// resolves.
pub async fn seal_every(
    api: Arc<ProtocolApi>,
    interval: std::time::Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {
                let (sealed, failures) = api.seal_pending_days().await;
                if let Some(first) = failures.first() {
                    tracing::warn!(sealed, failed = failures.len(), %first, "daily registers sealed with failures");
                } else if sealed > 0 {
                    tracing::info!(sealed, "daily registers sealed");
                }
            }
        }
    }
}

/// Runs [`ProtocolApi::preserve_pending_days`] into `archive` at start and then every
/// `interval`, until `stop` resolves: beside [`seal_every`], it sends each day sealed since
/// the last run, and retries what the archive did not accept.
pub async fn preserve_every(
    api: Arc<ProtocolApi>,
    archive: Arc<dyn PreservationService>,
    interval: std::time::Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {
                let (preserved, failures) = api.preserve_pending_days(archive.as_ref()).await;
                if let Some(first) = failures.first() {
                    tracing::warn!(preserved, failed = failures.len(), %first, "daily registers sent to preservation with failures");
                } else if preserved > 0 {
                    tracing::info!(preserved, "daily registers sent to preservation");
                }
            }
        }
    }
}
