//! CaseService handlers over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL, each test citing the rule of DOMAIN.md "Registry", Cases (Legge 241/1990:
//! art. 2 deadlines and the one suspension for an integration, art. 10-bis the refusal
//! notice) or "Protocol register" it checks. The handlers are called directly, with the
//! routing header and the principal the gateway sets, on an injected clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::NaiveDate;
use tonic::{Code, Request};
use unione_kit::error::reason_and_field;
use unione_kit::names::routed;
use unione_kit::principal::Principal;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_kit::{ComuneProfile, Istat, Served};
use unione_proto::google::r#type::Date;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::case_service_server::CaseService;
use unione_proto::registry::v1::protocol_service_server::ProtocolService;
use unione_registry::domain::cases::{Action, CaseState, Transition};
use unione_registry::domain::protocol::{MAX_DOCUMENT_BYTES, RegistrationDraft};
use unione_registry::storage::cases::{self as case_store, ProtocolRef, StoredCase};
use unione_registry::storage::protocol as protocol_store;
use unione_registry::{CaseApi, ProtocolApi};

const SARZANA: &str = "011027";
const ARCOLA: &str = "011002";
const LUNI: &str = "011020";
/// Mario Rossi, born in Rome on 1 January 1980 (a valid codice fiscale).
const ROSSI: &str = "RSSMRA80A01H501U";
/// Another citizen (citizens' codes come from the identity provider; not checked here).
const BIANCHI: &str = "BNCNNA82B42I449X";

fn profile(istat: &str, name: &str) -> ComuneProfile {
    ComuneProfile {
        istat: Istat::parse(istat).expect("a six-digit code"),
        name: name.to_owned(),
        fiscal_code: format!("001{istat}00"),
        cadastral_code: "I449".to_owned(),
        segregation_code: "01".to_owned(),
        ipa_code: format!("c_{istat}"),
        population: 20_000,
    }
}

/// This node serves Sarzana and Arcola, not Luni.
fn served() -> Served {
    Served::new([profile(SARZANA, "Sarzana"), profile(ARCOLA, "Arcola")])
}

/// Microseconds of 09:00 UTC on a day (10:00 or 11:00 in Italy: the same civil date).
fn on(y: i32, m: u32, d: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .expect("a real instant")
        .and_utc()
        .timestamp_micros()
}

fn date(y: i32, m: i32, d: i32) -> Option<Date> {
    Some(Date {
        year: y,
        month: m,
        day: d,
    })
}

/// A settable clock shared by the case and protocol services.
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn set(&self, micros: i64) {
        self.0.store(micros, Ordering::SeqCst);
    }
}

struct Apis {
    cases: CaseApi,
    protocol: ProtocolApi,
    clock: TestClock,
}

async fn apis(t: &TestDatabase, start: i64) -> Apis {
    t.db.migrate(&unione_registry::migrations())
        .await
        .expect("registry migrations apply");
    let now = Arc::new(AtomicI64::new(start));
    let (a, b) = (Arc::clone(&now), Arc::clone(&now));
    Apis {
        cases: CaseApi::with_clock(
            t.db.clone(),
            served(),
            Arc::new(move || a.load(Ordering::SeqCst)),
        ),
        protocol: ProtocolApi::with_clock(
            t.db.clone(),
            served(),
            Arc::new(move || b.load(Ordering::SeqCst)),
        ),
        clock: TestClock(now),
    }
}

fn operator_of(comune: &str) -> Principal {
    Principal {
        sub: "op-1".to_owned(),
        role: Role::Operator,
        comuni: vec![comune.to_owned()],
        fiscal_number: None,
        gateway: "gw-1".to_owned(),
    }
}

fn citizen(cf: &str) -> Principal {
    Principal {
        sub: format!("cit-{cf}"),
        role: Role::Citizen,
        comuni: Vec::new(),
        fiscal_number: Some(cf.to_owned()),
        gateway: "gw-1".to_owned(),
    }
}

/// A request routed to Sarzana, made by `who`.
fn by<T>(who: &Principal, message: T) -> Request<T> {
    let mut request = routed(SARZANA, message);
    request.extensions_mut().insert(who.clone());
    request
}

fn op() -> Principal {
    operator_of(SARZANA)
}

fn case_name(id: &str) -> String {
    format!("comuni/{SARZANA}/cases/{id}")
}

async fn procedure(api: &CaseApi, code: &str, legal_days: i32, office: &str, label: &str) {
    api.create_procedure_type(by(
        &op(),
        pb::CreateProcedureTypeRequest {
            parent: format!("comuni/{SARZANA}"),
            procedure_type: Some(pb::ProcedureType {
                code: code.to_owned(),
                title: format!("Procedimento {code}"),
                legal_days,
                office: office.to_owned(),
                classification: "6.3".to_owned(),
                ..Default::default()
            }),
            request_id: String::new(),
        },
    ))
    .await
    .unwrap_or_else(|e| panic!("{label}: the procedure type is created: {e:?}"));
}

fn doc(name: &str, content: &[u8]) -> pb::Document {
    pb::Document {
        file_name: name.to_owned(),
        media_type: "application/pdf".to_owned(),
        content: content.to_vec(),
        ..Default::default()
    }
}

fn application(code: &str, subject: &str) -> pb::Case {
    pb::Case {
        procedure_type: format!("comuni/{SARZANA}/procedureTypes/{code}"),
        subject: subject.to_owned(),
        data: "Via Roma 1, 20 mq, dal 1 al 30 giugno".to_owned(),
        documents: vec![doc("planimetria.pdf", b"%PDF-1.7 planimetria")],
        ..Default::default()
    }
}

fn submit_req(who: &Principal, case: pb::Case, request_id: &str) -> Request<pb::SubmitCaseRequest> {
    by(
        who,
        pb::SubmitCaseRequest {
            parent: format!("comuni/{SARZANA}"),
            case: Some(case),
            request_id: request_id.to_owned(),
        },
    )
}

async fn submit(api: &CaseApi, who: &Principal, case: pb::Case, label: &str) -> pb::Case {
    api.submit_case(submit_req(who, case, ""))
        .await
        .unwrap_or_else(|e| panic!("{label}: submitted: {e:?}"))
        .into_inner()
}

async fn get(api: &CaseApi, who: &Principal, name: &str) -> Result<pb::Case, tonic::Status> {
    api.get_case(by(
        who,
        pb::GetCaseRequest {
            name: name.to_owned(),
        },
    ))
    .await
    .map(tonic::Response::into_inner)
}

/// Applies one transition as `who`.
async fn act(
    api: &CaseApi,
    who: &Principal,
    action: Action,
    name: &str,
    reason: &str,
) -> Result<pb::Case, tonic::Status> {
    let (name, reason) = (name.to_owned(), reason.to_owned());
    let result = match action {
        Action::TakeInCharge => {
            api.take_case_in_charge(by(who, pb::TakeCaseInChargeRequest { name, reason }))
                .await
        }
        Action::RequestIntegration => {
            api.request_integration(by(who, pb::RequestIntegrationRequest { name, reason }))
                .await
        }
        Action::Resubmit => {
            api.resubmit_case(by(who, pb::ResubmitCaseRequest { name, reason }))
                .await
        }
        Action::SendRefusalNotice => {
            api.send_refusal_notice(by(who, pb::SendRefusalNoticeRequest { name, reason }))
                .await
        }
        Action::AnswerRefusalNotice => {
            api.answer_refusal_notice(by(who, pb::AnswerRefusalNoticeRequest { name, reason }))
                .await
        }
        Action::Accept => {
            api.accept_case(by(who, pb::AcceptCaseRequest { name, reason }))
                .await
        }
        Action::Reject => {
            api.reject_case(by(who, pb::RejectCaseRequest { name, reason }))
                .await
        }
        Action::Withdraw => {
            api.withdraw_case(by(who, pb::WithdrawCaseRequest { name, reason }))
                .await
        }
        Action::Cancel => {
            api.cancel_case(by(who, pb::CancelCaseRequest { name, reason }))
                .await
        }
        Action::Submit => panic!("submissions go through SubmitCase"),
    };
    result.map(tonic::Response::into_inner)
}

async fn ok(
    api: &CaseApi,
    who: &Principal,
    action: Action,
    name: &str,
    reason: &str,
    label: &str,
) -> pb::Case {
    act(api, who, action, name, reason)
        .await
        .unwrap_or_else(|e| panic!("{label}: {action:?} is allowed: {e:?}"))
}

fn assert_error(status: &tonic::Status, code: Code, reason: &str, label: &str) {
    assert_eq!(status.code(), code, "{label}: {status:?}");
    assert_eq!(reason_and_field(status).0, reason, "{label}: {status:?}");
}

fn clock_of(case: &pb::Case) -> pb::CaseClock {
    case.clock.expect("every case carries its clock")
}

async fn protocol_counts(t: &TestDatabase) -> (i64, i64, i64) {
    let mut conn = t.db.pool().acquire().await.expect("a connection");
    protocol_store::counts(&mut conn, &Istat::parse(SARZANA).expect("code"))
        .await
        .expect("counts")
}

async fn case_counts(t: &TestDatabase) -> (i64, i64, i64) {
    let mut conn = t.db.pool().acquire().await.expect("a connection");
    case_store::counts(&mut conn, &Istat::parse(SARZANA).expect("code"))
        .await
        .expect("counts")
}

/// DOMAIN.md "Registry", Cases: a case submitted online is registered in the protocol
/// automatically (incoming, the applicant as sender) and keeps its number; an office takes
/// it in charge and accepts it with reasons; every transition is historised with actor, time
/// and reason; nothing leaves a final state (FAILED_PRECONDITION `INVALID_CASE_TRANSITION`),
/// and a citizen cannot decide.
#[tokio::test]
async fn a_case_runs_from_submission_to_acceptance_with_its_history() {
    for t in testing::all().await {
        let l = t.label;
        let apis = apis(&t, on(2026, 3, 2)).await;
        let api = &apis.cases;
        procedure(api, "SUOLO", 0, "SUAP", l).await;
        let rossi = citizen(ROSSI);
        let case = submit(api, &rossi, application("SUOLO", "Dehors estivo"), l).await;
        assert_eq!(case.state, i32::from(pb::CaseState::Submitted), "{l}");
        assert_eq!(case.applicant, ROSSI, "{l}: the citizen is the applicant");
        assert_eq!(case.office, "SUAP", "{l}");
        assert_eq!(
            case.legal_days, 30,
            "{l}: the default deadline (art. 2 c. 2)"
        );
        assert_eq!(case.submission_date, date(2026, 3, 2), "{l}");
        assert_eq!(clock_of(&case).deadline, date(2026, 4, 1), "{l}");
        assert_eq!(case.documents.len(), 1, "{l}");
        assert!(
            case.documents[0].content.is_empty(),
            "{l}: content never returned"
        );

        let registration = apis
            .protocol
            .get_registration(routed(
                SARZANA,
                pb::GetRegistrationRequest {
                    name: case.protocol_registration.clone(),
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("{l}: the registration exists: {e:?}"))
            .into_inner();
        assert_eq!(registration.number, case.protocol_number, "{l}");
        assert_eq!(registration.year, 2026, "{l}");
        assert_eq!(
            registration.direction,
            i32::from(pb::Direction::Incoming),
            "{l}"
        );
        assert_eq!(registration.sender, ROSSI, "{l}");
        assert_eq!(registration.assignment, "SUAP", "{l}");
        assert_eq!(
            registration.attachments.len(),
            1,
            "{l}: the attached document"
        );
        assert_eq!(
            registration.attachments[0].sha256, case.documents[0].sha256,
            "{l}"
        );

        let err = act(api, &rossi, Action::Accept, &case.name, "ok")
            .await
            .expect_err("a citizen cannot decide");
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED", l);
        let err = act(api, &op(), Action::Accept, &case.name, "ok")
            .await
            .expect_err("not yet in charge");
        assert_error(&err, Code::FailedPrecondition, "INVALID_CASE_TRANSITION", l);

        apis.clock.set(on(2026, 3, 4));
        ok(api, &op(), Action::TakeInCharge, &case.name, "", l).await;
        apis.clock.set(on(2026, 3, 20));
        let err = act(api, &op(), Action::Accept, &case.name, "")
            .await
            .expect_err("a decision needs reasons");
        assert_error(&err, Code::InvalidArgument, "FIELD_REQUIRED", l);
        let accepted = ok(
            api,
            &op(),
            Action::Accept,
            &case.name,
            "Conforme al regolamento",
            l,
        )
        .await;
        assert_eq!(accepted.state, i32::from(pb::CaseState::Accepted), "{l}");
        let c = clock_of(&accepted);
        assert_eq!(
            (c.days_elapsed, c.days_remaining, c.overdue),
            (18, 12, false),
            "{l}"
        );

        let read = get(api, &rossi, &case.name)
            .await
            .expect("the applicant reads it");
        let history: Vec<(i32, i32, i32, &str, &str)> = read
            .history
            .iter()
            .map(|h| {
                (
                    h.action,
                    h.from_state,
                    h.to_state,
                    h.actor.as_str(),
                    h.reason.as_str(),
                )
            })
            .collect();
        let citizen_sub = format!("cit-{ROSSI}");
        assert_eq!(
            history,
            vec![
                (
                    pb::CaseAction::Submit.into(),
                    pb::CaseState::Unspecified.into(),
                    pb::CaseState::Submitted.into(),
                    citizen_sub.as_str(),
                    ""
                ),
                (
                    pb::CaseAction::TakeInCharge.into(),
                    pb::CaseState::Submitted.into(),
                    pb::CaseState::InProgress.into(),
                    "op-1",
                    ""
                ),
                (
                    pb::CaseAction::Accept.into(),
                    pb::CaseState::InProgress.into(),
                    pb::CaseState::Accepted.into(),
                    "op-1",
                    "Conforme al regolamento"
                ),
            ],
            "{l}"
        );
        let times: Vec<i64> = read
            .history
            .iter()
            .map(|h| h.time.expect("a time").seconds)
            .collect();
        assert_eq!(
            times,
            vec![on(2026, 3, 2), on(2026, 3, 4), on(2026, 3, 20)]
                .into_iter()
                .map(|m| m / 1_000_000)
                .collect::<Vec<_>>(),
            "{l}"
        );

        // Later, the clock of a closed case stays at its closing day.
        apis.clock.set(on(2026, 6, 1));
        let later = get(api, &op(), &case.name).await.expect("reads");
        assert_eq!(clock_of(&later), c, "{l}");
        for action in [Action::Withdraw, Action::Cancel, Action::Reject] {
            let err = act(api, &op(), action, &case.name, "x")
                .await
                .expect_err("final");
            assert_error(&err, Code::FailedPrecondition, "INVALID_CASE_TRANSITION", l);
        }
    }
}

/// DOMAIN.md "Protocol register": numbers are progressive and gapless. A submission takes the
/// next number of the general register; a refused submission takes none; a submission that
/// crashes after taking its number (its transaction never commits) leaves neither the case
/// nor the registration, and the next one gets that number.
#[tokio::test]
async fn a_submission_takes_the_next_protocol_number_and_a_failure_leaves_no_gap() {
    for t in testing::all().await {
        let l = t.label;
        let apis = apis(&t, on(2026, 5, 4)).await;
        let api = &apis.cases;
        procedure(api, "SUOLO", 60, "SUAP", l).await;
        let letter = apis
            .protocol
            .create_registration(by(
                &op(),
                pb::CreateRegistrationRequest {
                    parent: format!("comuni/{SARZANA}/registers/GEN"),
                    registration: Some(pb::Registration {
                        direction: pb::Direction::Outgoing.into(),
                        subject: "Lettera".to_owned(),
                        recipients: vec!["Prefettura".to_owned()],
                        classification: "1.1".to_owned(),
                        assignment: "Segreteria".to_owned(),
                        document: Some(doc("lettera.pdf", b"lettera")),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("registers")
            .into_inner();
        assert_eq!(letter.number, 1, "{l}");
        let first = submit(api, &citizen(ROSSI), application("SUOLO", "Dehors"), l).await;
        assert_eq!(first.protocol_number, 2, "{l}: the next number of GEN");
        assert_eq!(first.legal_days, 60, "{l}");
        let before = (protocol_counts(&t).await, case_counts(&t).await);

        let mut big = application("SUOLO", "Troppo grande");
        big.documents = vec![doc("scansione.tif", &vec![7_u8; MAX_DOCUMENT_BYTES + 1])];
        let err = api
            .submit_case(submit_req(&citizen(ROSSI), big, "big"))
            .await
            .expect_err("oversize");
        assert_error(&err, Code::InvalidArgument, "DOCUMENT_TOO_LARGE", l);
        assert_eq!(
            reason_and_field(&err).1.as_deref(),
            Some("case.documents[0].content"),
            "{l}"
        );
        let err = api
            .submit_case(submit_req(&citizen(ROSSI), application("NESSUNO", "x"), ""))
            .await
            .expect_err("unknown procedure type");
        assert_error(&err, Code::NotFound, "RESOURCE_NOT_FOUND", l);
        let mut bad = application("SUOLO", "per conto di");
        bad.applicant = "RSSMRA80A01H501A".to_owned();
        let err = api
            .submit_case(submit_req(&op(), bad, ""))
            .await
            .expect_err("an invalid codice fiscale");
        assert_error(&err, Code::InvalidArgument, "INVALID_CODICE_FISCALE", l);
        assert_eq!(
            (protocol_counts(&t).await, case_counts(&t).await),
            before,
            "{l}: refused submissions write nothing"
        );

        // A crash between the registration and the commit.
        let comune = Istat::parse(SARZANA).expect("code");
        {
            let mut tx = t.db.begin_write().await.expect("tx");
            protocol_store::lock_register(&mut tx, &comune, "GEN")
                .await
                .expect("lock");
            let number = protocol_store::next_number(&mut tx, &comune, "GEN", 2026)
                .await
                .expect("a number");
            assert_eq!(number, 3, "{l}");
            let new = RegistrationDraft {
                direction: Some(unione_registry::domain::protocol::Direction::Incoming),
                subject: "Istanza mai registrata".to_owned(),
                sender: ROSSI.to_owned(),
                classification: "6.3".to_owned(),
                assignment: "SUAP".to_owned(),
                document: Some(unione_registry::domain::protocol::DocumentDraft {
                    file_name: "istanza.json".to_owned(),
                    media_type: "application/json".to_owned(),
                    content: b"{}".to_vec(),
                }),
                ..Default::default()
            }
            .validate()
            .expect("valid");
            let record = protocol_store::insert_registration(
                &mut tx,
                &comune,
                "crashed".to_owned(),
                "GEN",
                number,
                on(2026, 5, 4),
                "cit",
                &new,
            )
            .await
            .expect("inserted in the transaction");
            case_store::insert_case(
                &mut tx,
                &comune,
                &StoredCase {
                    id: "crashed-case".to_owned(),
                    procedure_code: "SUOLO".to_owned(),
                    applicant: ROSSI.to_owned(),
                    subject: "mai".to_owned(),
                    data: String::new(),
                    documents: Vec::new(),
                    office: "SUAP".to_owned(),
                    legal_days: 60,
                    state: CaseState::Submitted,
                    protocol: ProtocolRef {
                        registration_id: record.id,
                        register: "GEN".to_owned(),
                        year: 2026,
                        number,
                    },
                    submitted_at: on(2026, 5, 4),
                    submission_date: NaiveDate::from_ymd_opt(2026, 5, 4).expect("a day"),
                    revision: 1,
                    history: vec![Transition {
                        seq: 1,
                        action: Action::Submit,
                        from: None,
                        to: CaseState::Submitted,
                        at: on(2026, 5, 4),
                        actor: "cit".to_owned(),
                        reason: String::new(),
                    }],
                },
            )
            .await
            .expect("inserted in the transaction");
        }
        assert_eq!(
            (protocol_counts(&t).await, case_counts(&t).await),
            before,
            "{l}: rolled back together"
        );
        let next = submit(api, &citizen(BIANCHI), application("SUOLO", "Insegna"), l).await;
        assert_eq!(next.protocol_number, 3, "{l}: no hole in the numbering");
    }
}

/// L. 241/1990 artt. 2 c. 7 and 10-bis (DOMAIN.md "Registry", Cases): deadline = submission
/// date + legal days + suspended days. A 30-day case submitted on 2 March, suspended 12 days
/// for an integration (10 to 22 March) and 10 days by an unanswered refusal notice (from
/// 25 March), falls due on 23 April; during a suspension the remaining days stand still; the
/// rejection waits for the 10 days, and the applicant cannot answer after them.
#[tokio::test]
async fn the_deadline_counts_an_integration_and_a_refusal_notice() {
    for t in testing::all().await {
        let l = t.label;
        let apis = apis(&t, on(2026, 3, 2)).await;
        let api = &apis.cases;
        procedure(api, "EDIL", 30, "Edilizia", l).await;
        let rossi = citizen(ROSSI);
        let case = submit(api, &rossi, application("EDIL", "Recinzione"), l).await;
        let name = case.name.clone();
        ok(api, &op(), Action::TakeInCharge, &name, "", l).await;

        apis.clock.set(on(2026, 3, 10));
        ok(
            api,
            &op(),
            Action::RequestIntegration,
            &name,
            "Manca la planimetria",
            l,
        )
        .await;
        apis.clock.set(on(2026, 3, 15));
        let during = clock_of(&get(api, &rossi, &name).await.expect("reads"));
        assert_eq!(
            during.suspension,
            i32::from(pb::SuspensionKind::Integration),
            "{l}"
        );
        assert_eq!(
            (
                during.days_elapsed,
                during.suspended_days,
                during.days_remaining
            ),
            (8, 5, 23),
            "{l}: 8 days run before the suspension; 2 March + 30 + 5 is Easter Monday, so 23 remain"
        );
        assert_eq!(
            during.deadline,
            date(2026, 4, 7),
            "{l}: a term ending on a holiday ends on the next working day (art. 155 c.p.c.)"
        );

        apis.clock.set(on(2026, 3, 22));
        let resumed = ok(
            api,
            &rossi,
            Action::Resubmit,
            &name,
            "Planimetria allegata",
            l,
        )
        .await;
        let c = clock_of(&resumed);
        assert_eq!(
            c.suspension,
            i32::from(pb::SuspensionKind::Unspecified),
            "{l}"
        );
        assert_eq!((c.suspended_days, c.days_remaining), (12, 22), "{l}");
        assert_eq!(c.deadline, date(2026, 4, 13), "{l}: 2 March + 30 + 12");

        apis.clock.set(on(2026, 3, 25));
        ok(
            api,
            &op(),
            Action::SendRefusalNotice,
            &name,
            "Distanze non rispettate",
            l,
        )
        .await;
        apis.clock.set(on(2026, 4, 4));
        let err = act(api, &op(), Action::Reject, &name, "Distanze")
            .await
            .expect_err("the 10 days are not over");
        assert_error(&err, Code::FailedPrecondition, "ANSWER_PERIOD_OPEN", l);
        let c = clock_of(&get(api, &op(), &name).await.expect("reads"));
        assert_eq!(
            c.suspension,
            i32::from(pb::SuspensionKind::RefusalNotice),
            "{l}"
        );
        assert_eq!((c.suspended_days, c.days_remaining), (22, 19), "{l}");

        apis.clock.set(on(2026, 4, 5));
        let err = act(
            api,
            &rossi,
            Action::AnswerRefusalNotice,
            &name,
            "Osservazioni",
        )
        .await
        .expect_err("too late to answer");
        assert_error(&err, Code::FailedPrecondition, "ANSWER_PERIOD_OVER", l);
        let rejected = ok(
            api,
            &op(),
            Action::Reject,
            &name,
            "Distanze non rispettate",
            l,
        )
        .await;
        assert_eq!(rejected.state, i32::from(pb::CaseState::Rejected), "{l}");
        let c = clock_of(&rejected);
        assert_eq!(c.deadline, date(2026, 4, 23), "{l}: 2 March + 30 + 12 + 10");
        assert_eq!(
            (
                c.days_elapsed,
                c.suspended_days,
                c.days_remaining,
                c.overdue
            ),
            (12, 22, 18, false),
            "{l}"
        );
    }
}

/// L. 241/1990 art. 2 c. 7 (DOMAIN.md "Registry", Cases): the clock is suspended once only;
/// a second integration request is FAILED_PRECONDITION `INTEGRATION_ALREADY_REQUESTED`, and
/// changes nothing. A refusal needs the notice of art. 10-bis first; an answered notice
/// resumes the clock and lets the office decide.
#[tokio::test]
async fn a_second_suspension_is_refused() {
    for t in testing::all().await {
        let l = t.label;
        let apis = apis(&t, on(2026, 3, 2)).await;
        let api = &apis.cases;
        procedure(api, "EDIL", 30, "Edilizia", l).await;
        let case = submit(
            api,
            &op(),
            {
                let mut c = application("EDIL", "Allo sportello");
                c.applicant = ROSSI.to_owned();
                c
            },
            l,
        )
        .await;
        assert_eq!(
            case.applicant, ROSSI,
            "{l}: an operator on the citizen's behalf"
        );
        let name = case.name.clone();
        ok(api, &op(), Action::TakeInCharge, &name, "", l).await;
        let err = act(api, &op(), Action::Reject, &name, "No")
            .await
            .expect_err("no notice yet");
        assert_error(&err, Code::FailedPrecondition, "REFUSAL_NOTICE_REQUIRED", l);
        apis.clock.set(on(2026, 3, 5));
        ok(
            api,
            &op(),
            Action::RequestIntegration,
            &name,
            "Documento",
            l,
        )
        .await;
        apis.clock.set(on(2026, 3, 7));
        ok(api, &citizen(ROSSI), Action::Resubmit, &name, "", l).await;
        let before = case_counts(&t).await;
        let err = act(
            api,
            &op(),
            Action::RequestIntegration,
            &name,
            "Altro documento",
        )
        .await
        .expect_err("once only");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "INTEGRATION_ALREADY_REQUESTED",
            l,
        );
        assert_eq!(case_counts(&t).await, before, "{l}: nothing written");

        ok(api, &op(), Action::SendRefusalNotice, &name, "Motivi", l).await;
        apis.clock.set(on(2026, 3, 10));
        let answered = ok(
            api,
            &citizen(ROSSI),
            Action::AnswerRefusalNotice,
            &name,
            "Obiezioni",
            l,
        )
        .await;
        assert_eq!(answered.state, i32::from(pb::CaseState::InProgress), "{l}");
        assert_eq!(
            clock_of(&answered).deadline,
            date(2026, 4, 7),
            "{l}: 2 March + 30 + 2 (integration) + 3 (notice answered on the third day) is \
             Easter Monday: the next working day"
        );
        let rejected = ok(
            api,
            &op(),
            Action::Reject,
            &name,
            "Obiezioni non accolte",
            l,
        )
        .await;
        assert_eq!(rejected.state, i32::from(pb::CaseState::Rejected), "{l}");
    }
}

/// DOMAIN.md "Registry", Cases: the suspension lasts at most 30 days. Our decision: after 30
/// days the clock resumes by itself; the case stays waiting for the integration, which may
/// still arrive, but later days count against the deadline.
#[tokio::test]
async fn a_suspension_longer_than_thirty_days_resumes_the_clock_by_itself() {
    for t in testing::all().await {
        let l = t.label;
        let apis = apis(&t, on(2026, 3, 2)).await;
        let api = &apis.cases;
        procedure(api, "EDIL", 30, "Edilizia", l).await;
        let case = submit(api, &citizen(ROSSI), application("EDIL", "Tettoia"), l).await;
        ok(api, &op(), Action::TakeInCharge, &case.name, "", l).await;
        apis.clock.set(on(2026, 3, 10));
        ok(
            api,
            &op(),
            Action::RequestIntegration,
            &case.name,
            "Relazione",
            l,
        )
        .await;

        apis.clock.set(on(2026, 4, 20));
        let waiting = get(api, &op(), &case.name).await.expect("reads");
        assert_eq!(
            waiting.state,
            i32::from(pb::CaseState::IntegrationRequested),
            "{l}"
        );
        let c = clock_of(&waiting);
        assert_eq!(
            c.suspension,
            i32::from(pb::SuspensionKind::Unspecified),
            "{l}: running"
        );
        assert_eq!(c.suspended_days, 30, "{l}");
        assert_eq!(
            c.deadline,
            date(2026, 5, 4),
            "{l}: 2 March + 30 + 30 is 1 May, a holiday: Monday 4 May"
        );
        assert_eq!((c.days_elapsed, c.days_remaining), (19, 14), "{l}");

        let resubmitted = ok(api, &citizen(ROSSI), Action::Resubmit, &case.name, "", l).await;
        assert_eq!(
            clock_of(&resubmitted).deadline,
            date(2026, 5, 4),
            "{l}: a late integration does not stretch the suspension"
        );
    }
}

/// DOMAIN.md "Registry", Cases: cases are listed by state, office and overdue; overdue is
/// computed from the clock (open past the deadline, or closed after it), page by page.
#[tokio::test]
async fn overdue_cases_are_listed() {
    for t in testing::all().await {
        let l = t.label;
        let apis = apis(&t, on(2026, 1, 5)).await;
        let api = &apis.cases;
        procedure(api, "SUOLO", 30, "SUAP", l).await;
        procedure(api, "ANAG", 30, "Anagrafe", l).await;
        let rossi = citizen(ROSSI);
        // A minute apart, so that the list order (submission time) is known.
        let late_open = submit(api, &rossi, application("SUOLO", "A"), l).await;
        apis.clock.set(on(2026, 1, 5) + 60_000_000);
        let on_time = submit(api, &rossi, application("SUOLO", "B"), l).await;
        apis.clock.set(on(2026, 1, 5) + 120_000_000);
        let late_closed = submit(api, &rossi, application("ANAG", "D"), l).await;
        for c in [&on_time, &late_closed] {
            ok(api, &op(), Action::TakeInCharge, &c.name, "", l).await;
        }
        apis.clock.set(on(2026, 1, 20));
        ok(api, &op(), Action::Accept, &on_time.name, "Ok", l).await;
        apis.clock.set(on(2026, 2, 20));
        let recent = submit(api, &rossi, application("SUOLO", "C"), l).await;
        ok(
            api,
            &op(),
            Action::Accept,
            &late_closed.name,
            "Ok, in ritardo",
            l,
        )
        .await;
        apis.clock.set(on(2026, 2, 25));

        let list = |state: pb::CaseState, office: &str, overdue: bool, size: i32, token: String| {
            api.list_cases(by(
                &op(),
                pb::ListCasesRequest {
                    parent: format!("comuni/{SARZANA}"),
                    state: state.into(),
                    office: office.to_owned(),
                    overdue,
                    page_size: size,
                    page_token: token,
                },
            ))
        };
        let names = |r: &pb::ListCasesResponse| -> Vec<String> {
            r.cases.iter().map(|c| c.name.clone()).collect()
        };
        let first = list(pb::CaseState::Unspecified, "", true, 1, String::new())
            .await
            .expect("lists")
            .into_inner();
        assert_eq!(names(&first), vec![late_open.name.clone()], "{l}");
        assert!(clock_of(&first.cases[0]).overdue, "{l}");
        assert_eq!(
            clock_of(&first.cases[0]).days_remaining,
            -21,
            "{l}: due 4 February"
        );
        assert!(
            !first.next_page_token.is_empty(),
            "{l}: another overdue case follows"
        );
        let second = list(
            pb::CaseState::Unspecified,
            "",
            true,
            1,
            first.next_page_token,
        )
        .await
        .expect("lists")
        .into_inner();
        assert_eq!(names(&second), vec![late_closed.name.clone()], "{l}");
        assert!(second.next_page_token.is_empty(), "{l}: the last page");

        let all = list(pb::CaseState::Unspecified, "", false, 0, String::new())
            .await
            .expect("lists")
            .into_inner();
        assert_eq!(all.cases.len(), 4, "{l}");
        let submitted = list(pb::CaseState::Submitted, "", false, 0, String::new())
            .await
            .expect("lists")
            .into_inner();
        assert_eq!(
            names(&submitted),
            vec![late_open.name.clone(), recent.name.clone()],
            "{l}"
        );
        let suap_overdue = list(pb::CaseState::Unspecified, "SUAP", true, 0, String::new())
            .await
            .expect("lists")
            .into_inner();
        assert_eq!(names(&suap_overdue), vec![late_open.name.clone()], "{l}");
    }
}

/// DOMAIN.md issue "Access and privacy": a citizen sees and acts only on their own cases;
/// another's is NOT_FOUND, as if it did not exist; a citizen submits only for themselves; an
/// operator of another comune is refused.
#[tokio::test]
async fn a_citizen_cannot_see_another_citizens_case() {
    for t in testing::all().await {
        let l = t.label;
        let apis = apis(&t, on(2026, 3, 2)).await;
        let api = &apis.cases;
        procedure(api, "SUOLO", 0, "SUAP", l).await;
        let rossi = citizen(ROSSI);
        let bianchi = citizen(BIANCHI);
        let case = submit(api, &rossi, application("SUOLO", "Dehors"), l).await;

        let err = get(api, &bianchi, &case.name).await.expect_err("hidden");
        assert_error(&err, Code::NotFound, "RESOURCE_NOT_FOUND", l);
        let missing = get(api, &bianchi, &case_name("nessuno"))
            .await
            .expect_err("missing");
        assert_eq!(
            reason_and_field(&err).0,
            reason_and_field(&missing).0,
            "{l}: the same answer as for a missing case"
        );
        let err = act(api, &bianchi, Action::Withdraw, &case.name, "")
            .await
            .expect_err("not theirs");
        assert_error(&err, Code::NotFound, "RESOURCE_NOT_FOUND", l);
        let theirs = api
            .list_cases(by(
                &bianchi,
                pb::ListCasesRequest {
                    parent: format!("comuni/{SARZANA}"),
                    ..Default::default()
                },
            ))
            .await
            .expect("lists")
            .into_inner();
        assert!(theirs.cases.is_empty(), "{l}: only their own cases");

        let mut for_other = application("SUOLO", "Per un altro");
        for_other.applicant = ROSSI.to_owned();
        let err = api
            .submit_case(submit_req(&bianchi, for_other, ""))
            .await
            .expect_err("only for themselves");
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED", l);
        let err = get(api, &operator_of(ARCOLA), &case.name)
            .await
            .expect_err("another comune's operator");
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED", l);

        let withdrawn = ok(
            api,
            &rossi,
            Action::Withdraw,
            &case.name,
            "Non serve più",
            l,
        )
        .await;
        assert_eq!(withdrawn.state, i32::from(pb::CaseState::Withdrawn), "{l}");
    }
}

/// The kit's routing rule: a call routed for one comune naming another is refused
/// (`ROUTING_MISMATCH`), a comune this node does not serve is refused (`COMUNE_NOT_SERVED`),
/// and a call without a principal is UNAUTHENTICATED; none writes anything.
#[tokio::test]
async fn routing_mismatch_and_comuni_not_served_are_refused() {
    for t in testing::all().await {
        let l = t.label;
        let apis = apis(&t, on(2026, 3, 2)).await;
        let api = &apis.cases;
        procedure(api, "SUOLO", 0, "SUAP", l).await;
        let before = (protocol_counts(&t).await, case_counts(&t).await);

        let mut mismatched = routed(
            ARCOLA,
            pb::SubmitCaseRequest {
                parent: format!("comuni/{SARZANA}"),
                case: Some(application("SUOLO", "x")),
                request_id: String::new(),
            },
        );
        mismatched.extensions_mut().insert(citizen(ROSSI));
        let err = api.submit_case(mismatched).await.expect_err("mismatch");
        assert_error(&err, Code::FailedPrecondition, "ROUTING_MISMATCH", l);

        let mut luni = routed(
            LUNI,
            pb::SubmitCaseRequest {
                parent: format!("comuni/{LUNI}"),
                case: Some(application("SUOLO", "x")),
                request_id: String::new(),
            },
        );
        luni.extensions_mut().insert(citizen(ROSSI));
        let err = api.submit_case(luni).await.expect_err("not served");
        assert_error(&err, Code::FailedPrecondition, "COMUNE_NOT_SERVED", l);

        let anonymous = routed(
            SARZANA,
            pb::SubmitCaseRequest {
                parent: format!("comuni/{SARZANA}"),
                case: Some(application("SUOLO", "x")),
                request_id: String::new(),
            },
        );
        let err = api.submit_case(anonymous).await.expect_err("no principal");
        assert_error(&err, Code::Unauthenticated, "PRINCIPAL_REQUIRED", l);
        assert_eq!(
            (protocol_counts(&t).await, case_counts(&t).await),
            before,
            "{l}: nothing written"
        );
    }
}

/// DOMAIN.md "Idempotency keys": a retried submission with the same `request_id` returns the
/// first case and registers nothing more; the same key for another application is refused.
#[tokio::test]
async fn a_retried_submission_is_registered_once() {
    for t in testing::all().await {
        let l = t.label;
        let apis = apis(&t, on(2026, 3, 2)).await;
        let api = &apis.cases;
        procedure(api, "SUOLO", 0, "SUAP", l).await;
        let rossi = citizen(ROSSI);
        let first = api
            .submit_case(submit_req(&rossi, application("SUOLO", "Dehors"), "req-1"))
            .await
            .expect("submitted")
            .into_inner();
        let counts = (protocol_counts(&t).await, case_counts(&t).await);
        let retry = api
            .submit_case(submit_req(&rossi, application("SUOLO", "Dehors"), "req-1"))
            .await
            .expect("replayed")
            .into_inner();
        assert_eq!(retry, first, "{l}: the first response");
        assert_eq!(
            (protocol_counts(&t).await, case_counts(&t).await),
            counts,
            "{l}: registered once"
        );
        let err = api
            .submit_case(submit_req(&rossi, application("SUOLO", "Altro"), "req-1"))
            .await
            .expect_err("reused key");
        assert_error(&err, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED", l);
    }
}

/// L. 241/1990 art. 2: a procedure's deadline is 30 days unless set, at most 90, or 180 for a
/// complex procedure; others are INVALID_ARGUMENT naming `procedure_type.legal_days`. Codes
/// are unique per comune; only operators define procedure types; anyone lists them.
#[tokio::test]
async fn procedure_types_keep_their_deadlines_within_the_law() {
    for t in testing::all().await {
        let l = t.label;
        let apis = apis(&t, on(2026, 3, 2)).await;
        let api = &apis.cases;
        let create = |who: Principal, code: &str, legal_days: i32, complex: bool| {
            api.create_procedure_type(by(
                &who,
                pb::CreateProcedureTypeRequest {
                    parent: format!("comuni/{SARZANA}"),
                    procedure_type: Some(pb::ProcedureType {
                        code: code.to_owned(),
                        title: "Titolo".to_owned(),
                        legal_days,
                        complex,
                        office: "SUAP".to_owned(),
                        classification: "6.3".to_owned(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
        };
        let err = create(op(), "LUNGO", 120, false)
            .await
            .expect_err("over 90");
        assert_error(&err, Code::InvalidArgument, "INVALID_LEGAL_DAYS", l);
        assert_eq!(
            reason_and_field(&err).1.as_deref(),
            Some("procedure_type.legal_days"),
            "{l}"
        );
        let complex = create(op(), "LUNGO", 120, true)
            .await
            .expect("a complex procedure")
            .into_inner();
        assert_eq!(complex.legal_days, 120, "{l}");
        let err = create(op(), "LUNGO", 30, false)
            .await
            .expect_err("duplicate");
        assert_error(&err, Code::AlreadyExists, "PROCEDURE_TYPE_EXISTS", l);
        let err = create(citizen(ROSSI), "MIO", 30, false)
            .await
            .expect_err("citizens do not define procedures");
        assert_error(&err, Code::PermissionDenied, "PERMISSION_DENIED", l);
        let listed = api
            .list_procedure_types(routed(
                SARZANA,
                pb::ListProcedureTypesRequest {
                    parent: format!("comuni/{SARZANA}"),
                    ..Default::default()
                },
            ))
            .await
            .expect("public")
            .into_inner();
        assert_eq!(listed.procedure_types, vec![complex], "{l}");
    }
}
