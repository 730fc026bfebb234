//! The gRPC handlers of `unione.registry.v1.CaseService` (DOMAIN.md "Registry", Cases;
//! L. 241/1990): decode, check the comune against the routing header and the served comuni,
//! authorize the principal (a citizen only on their own cases, an operator on the comuni they
//! act for), call the domain ([`crate::domain::cases`]) and storage
//! ([`crate::storage::cases`]), and map errors to `google.rpc.Status`.
//!
//! A submission is registered in the general protocol register in the same `begin_write`
//! transaction, through the protocol's own storage functions (register lock, gapless
//! number, day not sealed): a submission that fails takes no number. The clock is injectable
//! ([`CaseApi::with_clock`]); the deadline clock of every case returned is computed at its
//! time. Spans carry the comune and opaque ids only, never a codice fiscale.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use tonic::{Code, Request, Response};
use tracing::{Instrument, Span, field};
use unione_kit::names::parse_name;
use unione_kit::principal::Principal;
use unione_kit::storage::{now_micros, timestamp};
use unione_kit::token::Role;
use unione_kit::{ApiError, Database, Istat, Served, idempotency, pagination, principal};
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::case_service_server::CaseService;

use super::protocol::{Clock, check_open_day, document_to_pb, input_document};
use super::{access, date_to_pb};
use crate::domain::cases::{
    self as rules, Action, CaseClock, CaseError, CaseErrorClass, CaseFacts, CaseState,
    MAX_DATA_CHARS, MAX_TEXT_CHARS, Party, ProcedureTypeDraft, Suspension, Transition,
};
use crate::domain::codice_fiscale;
use crate::domain::protocol::{
    DEFAULT_REGISTER, Direction, DocumentDraft, RegistrationDraft, italian_date,
};
use crate::storage::cases::{
    self as store, CaseFilter, PageKey, ProtocolRef, StoredCase, StoredProcedureType,
};
use crate::storage::protocol as protocol_store;

/// `comuni/{istat}`.
const COMUNE: &[&str] = &["comuni", "*"];
/// `comuni/{istat}/cases/{id}`.
const CASE: &[&str] = &["comuni", "*", "cases", "*"];
/// `comuni/{istat}/procedureTypes/{code}`.
const PROCEDURE_TYPE: &[&str] = &["comuni", "*", "procedureTypes", "*"];
/// The reads of personal data this service logs ([`access::record_reads`]): a case names its
/// applicant.
const GET_CASE: &str = "unione.registry.v1.CaseService/GetCase";
const LIST_CASES: &str = "unione.registry.v1.CaseService/ListCases";

/// A case rule broken: INVALID_ARGUMENT, ALREADY_EXISTS or FAILED_PRECONDITION.
impl From<CaseError> for ApiError {
    fn from(err: CaseError) -> Self {
        let code = match err.class() {
            CaseErrorClass::Invalid => Code::InvalidArgument,
            CaseErrorClass::Conflict => Code::AlreadyExists,
            CaseErrorClass::FailedPrecondition => Code::FailedPrecondition,
        };
        let api = ApiError::new(code, err.reason(), err.to_string());
        match err.field() {
            Some(field) => api.with_field(field),
            None => api,
        }
    }
}

/// The case service of one node, for the comuni it serves.
#[derive(Clone)]
pub struct CaseApi {
    db: Database,
    served: Served,
    clock: Clock,
}

impl std::fmt::Debug for CaseApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseApi")
            .field("db", &self.db)
            .field("served", &self.served)
            .finish_non_exhaustive()
    }
}

/// Who calls, for a comune.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    /// A citizen, with their codice fiscale: only their own cases.
    Citizen(String),
    /// An operator of the comune: every case of it, and the applicant's actions on their
    /// behalf.
    Operator,
}

fn denied(message: &str) -> ApiError {
    ApiError::new(Code::PermissionDenied, "PERMISSION_DENIED", message)
}

/// The caller's standing for `istat`: a citizen with a codice fiscale, or an operator acting
/// for the comune; every other principal is refused (PERMISSION_DENIED).
fn caller(who: &Principal, istat: &Istat) -> Result<Caller, ApiError> {
    match who.role {
        Role::Citizen => who
            .fiscal_number
            .as_deref()
            .map(codice_fiscale::normalize)
            .filter(|cf| !cf.is_empty())
            .map(Caller::Citizen)
            .ok_or_else(|| denied("a citizen principal without a codice fiscale has no cases")),
        Role::Operator if who.comuni.iter().any(|c| c == istat.as_str()) => Ok(Caller::Operator),
        _ => Err(denied("this principal may not act on this comune's cases")),
    }
}

/// A case the caller may see: NOT_FOUND for another citizen's, as for a missing one, so that
/// its existence is not revealed.
fn visible(caller: &Caller, stored: &StoredCase) -> bool {
    match caller {
        Caller::Citizen(cf) => stored.applicant == *cf,
        Caller::Operator => true,
    }
}

/// The two fields of every transition request.
trait ChangeRequest {
    fn into_parts(self) -> (String, String);
}

macro_rules! change_request {
    ($($t:ty),*) => {
        $(impl ChangeRequest for $t {
            fn into_parts(self) -> (String, String) {
                (self.name, self.reason)
            }
        })*
    };
}

change_request!(
    pb::TakeCaseInChargeRequest,
    pb::RequestIntegrationRequest,
    pb::ResubmitCaseRequest,
    pb::SendRefusalNoticeRequest,
    pb::AnswerRefusalNoticeRequest,
    pb::AcceptCaseRequest,
    pb::RejectCaseRequest,
    pb::WithdrawCaseRequest,
    pb::CancelCaseRequest
);

impl CaseApi {
    /// The handlers over a database migrated with [`crate::migrations`], for `served`, on the
    /// system clock.
    pub fn new(db: Database, served: Served) -> Self {
        Self::with_clock(db, served, Arc::new(now_micros))
    }

    /// The handlers with another clock (tests: a case days or months after its submission).
    pub fn with_clock(db: Database, served: Served, clock: Clock) -> Self {
        Self { db, served, clock }
    }

    fn today(&self) -> NaiveDate {
        italian_date((self.clock)())
    }

    #[tracing::instrument(name = "CreateProcedureType", skip_all, fields(comune = field::Empty))]
    async fn create_procedure_type_inner(
        &self,
        request: Request<pb::CreateProcedureTypeRequest>,
    ) -> Result<pb::ProcedureType, ApiError> {
        let who = principal::require(&request).cloned();
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let who = who?;
        if caller(&who, &istat)? != Caller::Operator {
            return Err(denied("only the comune's operators define procedure types"));
        }
        let given = req
            .procedure_type
            .as_ref()
            .ok_or_else(|| ApiError::required("procedure_type"))?;
        let procedure = ProcedureTypeDraft {
            code: given.code.clone(),
            title: given.title.clone(),
            legal_days: i64::from(given.legal_days),
            complex: given.complex,
            office: given.office.clone(),
            classification: given.classification.clone(),
        }
        .validate()?;

        let asked = pb::CreateProcedureTypeRequest {
            parent: req.parent.clone(),
            procedure_type: Some(pb::ProcedureType {
                name: String::new(),
                create_time: None,
                ..given.clone()
            }),
            request_id: String::new(),
        };
        let fingerprint = idempotency::fingerprint(&asked);
        let scope = format!("registry/{}/CreateProcedureType", istat.resource_name());
        let (db, clock, istat, procedure, sub) =
            (&self.db, &self.clock, &istat, &procedure, who.sub.as_str());
        idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let mut tx = db.begin_write().await?;
                let now = clock();
                if !store::insert_procedure_type(&mut tx, istat, procedure, sub, now).await? {
                    return Err(CaseError::ProcedureTypeExists.into());
                }
                let response = procedure_to_pb(
                    istat,
                    &StoredProcedureType {
                        procedure: procedure.clone(),
                        create_time: now,
                    },
                );
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(response)
            },
        )
        .await
    }

    #[tracing::instrument(name = "ListProcedureTypes", skip_all, fields(comune = field::Empty))]
    async fn list_procedure_types_inner(
        &self,
        request: Request<pb::ListProcedureTypesRequest>,
    ) -> Result<pb::ListProcedureTypesResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let size = pagination::page_size(req.page_size)?;
        let scope = format!("ListProcedureTypes/{}", req.parent);
        let after: Option<String> = pagination::decode_token(&scope, &req.page_token)?;
        let mut conn = self.db.pool().acquire().await?;
        let mut rows = store::list_procedure_types(
            &mut conn,
            &istat,
            after.as_deref().unwrap_or(""),
            size + 1,
        )
        .await?;
        let next_page_token =
            pagination::finish_page(&mut rows, size, &scope, |p| p.procedure.code.clone());
        Ok(pb::ListProcedureTypesResponse {
            procedure_types: rows.iter().map(|p| procedure_to_pb(&istat, p)).collect(),
            next_page_token,
        })
    }

    #[tracing::instrument(
        name = "SubmitCase",
        skip_all,
        fields(comune = field::Empty, case = field::Empty)
    )]
    async fn submit_case_inner(
        &self,
        request: Request<pb::SubmitCaseRequest>,
    ) -> Result<pb::Case, ApiError> {
        let who = principal::require(&request).cloned();
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let who = who?;
        let caller = caller(&who, &istat)?;
        let given = req
            .case
            .as_ref()
            .ok_or_else(|| ApiError::required("case"))?;
        let (type_istat, vars) =
            parse_name("case.procedure_type", &given.procedure_type, PROCEDURE_TYPE)?;
        if type_istat != istat {
            return Err(ApiError::invalid(
                "case.procedure_type",
                "PROCEDURE_TYPE_OF_ANOTHER_COMUNE",
                "case.procedure_type must be a procedure type of the comune in parent",
            ));
        }
        let code = vars[0];
        let applicant = match &caller {
            Caller::Citizen(cf) => {
                if !given.applicant.trim().is_empty()
                    && codice_fiscale::normalize(&given.applicant) != *cf
                {
                    return Err(denied("a citizen submits cases only for themselves"));
                }
                cf.clone()
            }
            Caller::Operator => {
                if given.applicant.trim().is_empty() {
                    return Err(ApiError::required("case.applicant"));
                }
                let cf = codice_fiscale::normalize(&given.applicant);
                codice_fiscale::validate(&cf).map_err(|_| CaseError::InvalidApplicant)?;
                cf
            }
        };
        let subject = rules::text("case.subject", &given.subject, MAX_TEXT_CHARS)?;
        let data = rules::multiline_text("case.data", &given.data, MAX_DATA_CHARS)?;
        let procedure = {
            let mut conn = self.db.pool().acquire().await?;
            store::get_procedure_type(&mut conn, &istat, code)
                .await?
                .ok_or_else(|| ApiError::not_found("case.procedure_type", &given.procedure_type))?
                .procedure
        };
        // The application itself is the registration's document; the attachments follow it.
        let application = serde_json::json!({
            "procedure_type": procedure.code,
            "applicant": applicant,
            "subject": subject,
            "data": data,
        });
        let new = RegistrationDraft {
            direction: Some(Direction::Incoming),
            subject: format!("Istanza {}: {subject}", procedure.code),
            sender: applicant.clone(),
            recipients: Vec::new(),
            classification: procedure.classification.clone(),
            assignment: procedure.office.clone(),
            document: Some(DocumentDraft {
                file_name: "istanza.json".to_owned(),
                media_type: "application/json".to_owned(),
                content: application.to_string().into_bytes(),
            }),
            attachments: given
                .documents
                .iter()
                .map(|d| DocumentDraft {
                    file_name: d.file_name.clone(),
                    media_type: d.media_type.clone(),
                    content: d.content.clone(),
                })
                .collect(),
        }
        .validate()
        .map_err(|e| {
            // The protocol names its own fields; the request names the case's.
            let mut api = ApiError::from(e);
            api.field = api
                .field
                .map(|f| f.replacen("registration.attachments", "case.documents", 1));
            api.message = api
                .message
                .replacen("registration.attachments", "case.documents", 1);
            api
        })?;

        let asked = pb::SubmitCaseRequest {
            parent: req.parent.clone(),
            case: Some(pb::Case {
                procedure_type: given.procedure_type.clone(),
                applicant: given.applicant.clone(),
                subject: given.subject.clone(),
                data: given.data.clone(),
                documents: given.documents.iter().map(input_document).collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        let fingerprint = idempotency::fingerprint(&asked);
        // Scoped by the caller too: two citizens' keys never meet.
        let scope = format!("registry/{}/SubmitCase/{}", istat.resource_name(), who.sub);
        let (db, clock, istat, new, sub) = (&self.db, &self.clock, &istat, &new, who.sub.as_str());
        let (procedure, applicant, subject, data) = (&procedure, &applicant, &subject, &data);
        let submitted = idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let mut tx = db.begin_write().await?;
                protocol_store::lock_register(&mut tx, istat, DEFAULT_REGISTER).await?;
                let now = clock();
                let day = italian_date(now);
                check_open_day(&mut tx, istat, DEFAULT_REGISTER, day).await?;
                let year = i64::from(day.year());
                let number =
                    protocol_store::next_number(&mut tx, istat, DEFAULT_REGISTER, year).await?;
                let record = protocol_store::insert_registration(
                    &mut tx,
                    istat,
                    crate::storage::new_id(),
                    DEFAULT_REGISTER,
                    number,
                    now,
                    sub,
                    new,
                )
                .await?;
                let stored = StoredCase {
                    id: crate::storage::new_id(),
                    procedure_code: procedure.code.clone(),
                    applicant: applicant.clone(),
                    subject: subject.clone(),
                    data: data.clone(),
                    documents: record.documents.iter().skip(1).cloned().collect(),
                    office: procedure.office.clone(),
                    legal_days: procedure.legal_days,
                    state: CaseState::Submitted,
                    protocol: ProtocolRef {
                        registration_id: record.id.clone(),
                        register: record.register.clone(),
                        year: record.year,
                        number: record.number,
                    },
                    submitted_at: now,
                    submission_date: day,
                    revision: 1,
                    history: vec![Transition {
                        seq: 1,
                        action: Action::Submit,
                        from: None,
                        to: CaseState::Submitted,
                        at: now,
                        actor: sub.to_owned(),
                        reason: String::new(),
                    }],
                };
                store::insert_case(&mut tx, istat, &stored).await?;
                let response = case_to_pb(istat, &stored, day);
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(response)
            },
        )
        .await?;
        Span::current().record("case", last_segment(&submitted.name));
        Ok(submitted)
    }

    #[tracing::instrument(name = "GetCase", skip_all, fields(comune = field::Empty, case = field::Empty))]
    async fn get_case_inner(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<pb::Case, ApiError> {
        let reader = access::Reader::of(&request)?;
        let who = principal::require(&request).cloned();
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, CASE)?;
        Span::current()
            .record("comune", istat.as_str())
            .record("case", vars[0]);
        self.served.check(&metadata, &istat, "name")?;
        let caller = caller(&who?, &istat)?;
        let mut conn = self.db.pool().acquire().await?;
        let stored = store::get_case(&mut conn, &istat, vars[0])
            .await?
            .filter(|c| visible(&caller, c))
            .ok_or_else(|| ApiError::not_found("name", &req.name))?;
        drop(conn);
        let case = case_to_pb(&istat, &stored, self.today());
        access::record_reads(&self.db, &reader, &istat, GET_CASE, [case.name.as_str()]).await?;
        Ok(case)
    }

    #[tracing::instrument(name = "ListCases", skip_all, fields(comune = field::Empty))]
    async fn list_cases_inner(
        &self,
        request: Request<pb::ListCasesRequest>,
    ) -> Result<pb::ListCasesResponse, ApiError> {
        let reader = access::Reader::of(&request)?;
        let who = principal::require(&request).cloned();
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let who = who?;
        let caller = caller(&who, &istat)?;
        let state = match pb::CaseState::try_from(req.state) {
            // Unspecified is no state: every state.
            Ok(s) => state_from_pb(s),
            Err(_) => {
                return Err(ApiError::invalid(
                    "state",
                    "INVALID_ENUM_VALUE",
                    format!("state has an unknown value {}", req.state),
                ));
            }
        };
        let office = rules::optional_text("office", &req.office, MAX_TEXT_CHARS)?;
        let filter = CaseFilter {
            state,
            office: (!office.is_empty()).then_some(office),
            applicant: match &caller {
                Caller::Citizen(cf) => Some(cf.clone()),
                Caller::Operator => None,
            },
        };
        let size = pagination::page_size(req.page_size)?;
        let scope = format!(
            "ListCases/{}/{}/{}/{}/{}",
            req.parent, req.state, req.office, req.overdue, who.sub
        );
        let mut after: Option<PageKey> = pagination::decode_token(&scope, &req.page_token)?;
        let today = self.today();
        let mut conn = self.db.pool().acquire().await?;
        // The overdue filter needs the clock, computed here: read batches until the page (and
        // its probe row) is full or the cases run out.
        let mut page: Vec<(StoredCase, CaseClock)> = Vec::new();
        loop {
            let batch =
                store::list_cases(&mut conn, &istat, &filter, after.as_ref(), size + 1).await?;
            let exhausted = i64::try_from(batch.len()).unwrap_or(i64::MAX) <= size;
            after = batch.last().map(|c| PageKey {
                submitted_at: c.submitted_at,
                id: c.id.clone(),
            });
            for c in batch {
                let clock = rules::clock(c.submission_date, c.legal_days, &c.history, today);
                if !req.overdue || clock.overdue {
                    page.push((c, clock));
                }
            }
            if exhausted || i64::try_from(page.len()).unwrap_or(i64::MAX) > size {
                break;
            }
        }
        let next_page_token = pagination::finish_page(&mut page, size, &scope, |(c, _)| PageKey {
            submitted_at: c.submitted_at,
            id: c.id.clone(),
        });
        drop(conn);
        let response = pb::ListCasesResponse {
            cases: page
                .iter()
                .map(|(c, clock)| case_with_clock(&istat, c, clock))
                .collect(),
            next_page_token,
        };
        let read = response.cases.iter().map(|c| c.name.as_str());
        access::record_reads(&self.db, &reader, &istat, LIST_CASES, read).await?;
        Ok(response)
    }

    /// Applies `action` to the case named in the request, in one write transaction: the case
    /// is locked, the domain decides the next state on today's Italian date, and the
    /// transition is appended with its actor, time and reason.
    async fn change<R: ChangeRequest>(
        &self,
        request: Request<R>,
        action: Action,
    ) -> Result<pb::Case, ApiError> {
        let who = principal::require(&request).cloned();
        let (metadata, _, req) = request.into_parts();
        let (name, reason) = req.into_parts();
        let (istat, vars) = parse_name("name", &name, CASE)?;
        let id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("case", id);
        self.served.check(&metadata, &istat, "name")?;
        let who = who?;
        let caller = caller(&who, &istat)?;
        if matches!(caller, Caller::Citizen(_)) && action.party() == Party::Office {
            return Err(denied("only the office handling the case may do this"));
        }
        let reason = if action.needs_reason() {
            rules::text("reason", &reason, MAX_TEXT_CHARS)?
        } else {
            rules::optional_text("reason", &reason, MAX_TEXT_CHARS)?
        };
        let mut tx = self.db.begin_write().await?;
        let now = (self.clock)();
        let today = italian_date(now);
        let mut stored = store::lock_case(&mut tx, &istat, id)
            .await?
            .filter(|c| visible(&caller, c))
            .ok_or_else(|| ApiError::not_found("name", &name))?;
        let next = CaseFacts {
            state: stored.state,
            history: &stored.history,
        }
        .next(action, today)?;
        let transition = Transition {
            seq: i64::try_from(stored.history.len()).unwrap_or(i64::MAX) + 1,
            action,
            from: Some(stored.state),
            to: next,
            at: now,
            actor: who.sub.clone(),
            reason,
        };
        store::append_transition(&mut tx, &istat, id, &transition).await?;
        tx.commit().await?;
        stored.state = next;
        stored.revision += 1;
        stored.history.push(transition);
        Ok(case_to_pb(&istat, &stored, today))
    }
}

/// A span named after the RPC, for the handlers that share [`CaseApi::change`].
fn change_span(rpc: &'static str) -> Span {
    tracing::info_span!(
        "rpc",
        otel.name = rpc,
        comune = field::Empty,
        case = field::Empty
    )
}

#[tonic::async_trait]
impl CaseService for CaseApi {
    async fn create_procedure_type(
        &self,
        request: Request<pb::CreateProcedureTypeRequest>,
    ) -> Result<Response<pb::ProcedureType>, tonic::Status> {
        Ok(Response::new(
            self.create_procedure_type_inner(request).await?,
        ))
    }

    async fn list_procedure_types(
        &self,
        request: Request<pb::ListProcedureTypesRequest>,
    ) -> Result<Response<pb::ListProcedureTypesResponse>, tonic::Status> {
        Ok(Response::new(
            self.list_procedure_types_inner(request).await?,
        ))
    }

    async fn submit_case(
        &self,
        request: Request<pb::SubmitCaseRequest>,
    ) -> Result<Response<pb::Case>, tonic::Status> {
        Ok(Response::new(self.submit_case_inner(request).await?))
    }

    async fn get_case(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::Case>, tonic::Status> {
        Ok(Response::new(self.get_case_inner(request).await?))
    }

    async fn list_cases(
        &self,
        request: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, tonic::Status> {
        Ok(Response::new(self.list_cases_inner(request).await?))
    }

    async fn take_case_in_charge(
        &self,
        request: Request<pb::TakeCaseInChargeRequest>,
    ) -> Result<Response<pb::Case>, tonic::Status> {
        let change = self.change(request, Action::TakeInCharge);
        Ok(Response::new(
            change.instrument(change_span("TakeCaseInCharge")).await?,
        ))
    }
    async fn request_integration(
        &self,
        request: Request<pb::RequestIntegrationRequest>,
    ) -> Result<Response<pb::Case>, tonic::Status> {
        let change = self.change(request, Action::RequestIntegration);
        Ok(Response::new(
            change.instrument(change_span("RequestIntegration")).await?,
        ))
    }
    async fn resubmit_case(
        &self,
        request: Request<pb::ResubmitCaseRequest>,
    ) -> Result<Response<pb::Case>, tonic::Status> {
        let change = self.change(request, Action::Resubmit);
        Ok(Response::new(
            change.instrument(change_span("ResubmitCase")).await?,
        ))
    }
    async fn send_refusal_notice(
        &self,
        request: Request<pb::SendRefusalNoticeRequest>,
    ) -> Result<Response<pb::Case>, tonic::Status> {
        let change = self.change(request, Action::SendRefusalNotice);
        Ok(Response::new(
            change.instrument(change_span("SendRefusalNotice")).await?,
        ))
    }
    async fn answer_refusal_notice(
        &self,
        request: Request<pb::AnswerRefusalNoticeRequest>,
    ) -> Result<Response<pb::Case>, tonic::Status> {
        let change = self.change(request, Action::AnswerRefusalNotice);
        Ok(Response::new(
            change
                .instrument(change_span("AnswerRefusalNotice"))
                .await?,
        ))
    }
    async fn accept_case(
        &self,
        request: Request<pb::AcceptCaseRequest>,
    ) -> Result<Response<pb::Case>, tonic::Status> {
        let change = self.change(request, Action::Accept);
        Ok(Response::new(
            change.instrument(change_span("AcceptCase")).await?,
        ))
    }
    async fn reject_case(
        &self,
        request: Request<pb::RejectCaseRequest>,
    ) -> Result<Response<pb::Case>, tonic::Status> {
        let change = self.change(request, Action::Reject);
        Ok(Response::new(
            change.instrument(change_span("RejectCase")).await?,
        ))
    }
    async fn withdraw_case(
        &self,
        request: Request<pb::WithdrawCaseRequest>,
    ) -> Result<Response<pb::Case>, tonic::Status> {
        let change = self.change(request, Action::Withdraw);
        Ok(Response::new(
            change.instrument(change_span("WithdrawCase")).await?,
        ))
    }
    async fn cancel_case(
        &self,
        request: Request<pb::CancelCaseRequest>,
    ) -> Result<Response<pb::Case>, tonic::Status> {
        let change = self.change(request, Action::Cancel);
        Ok(Response::new(
            change.instrument(change_span("CancelCase")).await?,
        ))
    }
}

fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or_default()
}

fn procedure_to_pb(istat: &Istat, stored: &StoredProcedureType) -> pb::ProcedureType {
    let p = &stored.procedure;
    pb::ProcedureType {
        name: format!("{}/procedureTypes/{}", istat.resource_name(), p.code),
        code: p.code.clone(),
        title: p.title.clone(),
        legal_days: i32::try_from(p.legal_days).unwrap_or(i32::MAX),
        complex: p.complex,
        office: p.office.clone(),
        classification: p.classification.clone(),
        create_time: Some(timestamp(stored.create_time)),
    }
}

fn state_to_pb(state: CaseState) -> pb::CaseState {
    match state {
        CaseState::Submitted => pb::CaseState::Submitted,
        CaseState::InProgress => pb::CaseState::InProgress,
        CaseState::IntegrationRequested => pb::CaseState::IntegrationRequested,
        CaseState::RefusalNoticeSent => pb::CaseState::RefusalNoticeSent,
        CaseState::Accepted => pb::CaseState::Accepted,
        CaseState::Rejected => pb::CaseState::Rejected,
        CaseState::Withdrawn => pb::CaseState::Withdrawn,
        CaseState::Cancelled => pb::CaseState::Cancelled,
    }
}

/// The state of a wire value; `None` for unspecified.
fn state_from_pb(state: pb::CaseState) -> Option<CaseState> {
    CaseState::ALL
        .into_iter()
        .find(|s| state_to_pb(*s) == state)
}

fn action_to_pb(action: Action) -> pb::CaseAction {
    match action {
        Action::Submit => pb::CaseAction::Submit,
        Action::TakeInCharge => pb::CaseAction::TakeInCharge,
        Action::RequestIntegration => pb::CaseAction::RequestIntegration,
        Action::Resubmit => pb::CaseAction::Resubmit,
        Action::SendRefusalNotice => pb::CaseAction::SendRefusalNotice,
        Action::AnswerRefusalNotice => pb::CaseAction::AnswerRefusalNotice,
        Action::Accept => pb::CaseAction::Accept,
        Action::Reject => pb::CaseAction::Reject,
        Action::Withdraw => pb::CaseAction::Withdraw,
        Action::Cancel => pb::CaseAction::Cancel,
    }
}

fn days(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })
}

/// The wire form of a stored case of `istat`, with its clock on `today`.
pub fn case_to_pb(istat: &Istat, stored: &StoredCase, today: NaiveDate) -> pb::Case {
    let clock = rules::clock(
        stored.submission_date,
        stored.legal_days,
        &stored.history,
        today,
    );
    case_with_clock(istat, stored, &clock)
}

fn case_with_clock(istat: &Istat, stored: &StoredCase, clock: &CaseClock) -> pb::Case {
    pb::Case {
        name: format!("{}/cases/{}", istat.resource_name(), stored.id),
        procedure_type: format!(
            "{}/procedureTypes/{}",
            istat.resource_name(),
            stored.procedure_code
        ),
        applicant: stored.applicant.clone(),
        subject: stored.subject.clone(),
        data: stored.data.clone(),
        documents: stored.documents.iter().map(document_to_pb).collect(),
        office: stored.office.clone(),
        state: state_to_pb(stored.state).into(),
        protocol_registration: format!(
            "{}/registers/{}/registrations/{}",
            istat.resource_name(),
            stored.protocol.register,
            stored.protocol.registration_id
        ),
        protocol_number: stored.protocol.number,
        protocol_year: i32::try_from(stored.protocol.year).unwrap_or_default(),
        submit_time: Some(timestamp(stored.submitted_at)),
        submission_date: Some(date_to_pb(stored.submission_date)),
        legal_days: days(stored.legal_days),
        clock: Some(pb::CaseClock {
            deadline: Some(date_to_pb(clock.deadline)),
            days_elapsed: days(clock.days_elapsed),
            days_remaining: days(clock.days_remaining),
            overdue: clock.overdue,
            suspension: match clock.suspension {
                None => pb::SuspensionKind::Unspecified,
                Some(Suspension::Integration) => pb::SuspensionKind::Integration,
                Some(Suspension::RefusalNotice) => pb::SuspensionKind::RefusalNotice,
            }
            .into(),
            suspended_days: days(clock.suspended_days),
        }),
        history: stored
            .history
            .iter()
            .map(|t| pb::CaseHistoryEntry {
                action: action_to_pb(t.action).into(),
                from_state: t
                    .from
                    .map_or(pb::CaseState::Unspecified, state_to_pb)
                    .into(),
                to_state: state_to_pb(t.to).into(),
                actor: t.actor.clone(),
                time: Some(timestamp(t.at)),
                reason: t.reason.clone(),
            })
            .collect(),
    }
}
