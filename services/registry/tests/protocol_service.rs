//! ProtocolService handlers over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL, each test citing the rule of DOMAIN.md "Registry", "Protocol register"
//! (DPR 445/2000 artt. 53-57, AgID guidelines, DPCM 3/12/2013 art. 8) it checks. The handlers
//! are called directly, with the routing header and the principal the gateway sets, on an
//! injected clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use tonic::{Code, Request};
use unione_kit::error::reason_and_field;
use unione_kit::names::{ROUTING_HEADER, routed};
use unione_kit::principal::Principal;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_kit::{ComuneProfile, Istat, Served};
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::protocol_service_server::ProtocolService;
use unione_registry::ProtocolApi;
use unione_registry::domain::protocol::{
    Direction, DocumentRef, MAX_DOCUMENT_BYTES, NewRegistration,
};
use unione_registry::storage::protocol as storage;

const SARZANA: &str = "011027";
const ARCOLA: &str = "011002";
const LUNI: &str = "011020";

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

/// This node runs the protocol of Sarzana and Arcola, not Luni.
fn served() -> Served {
    Served::new([profile(SARZANA, "Sarzana"), profile(ARCOLA, "Arcola")])
}

/// Microseconds of a UTC instant.
fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, min, 0))
        .expect("a real instant")
        .and_utc()
        .timestamp_micros()
}

/// A settable clock.
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn set(&self, micros: i64) {
        self.0.store(micros, Ordering::SeqCst);
    }
}

async fn api(t: &TestDatabase, start: i64) -> (ProtocolApi, TestClock) {
    t.db.migrate(&unione_registry::migrations())
        .await
        .expect("registry migrations apply");
    let now = Arc::new(AtomicI64::new(start));
    let read = Arc::clone(&now);
    let api = ProtocolApi::with_clock(
        t.db.clone(),
        served(),
        Arc::new(move || read.load(Ordering::SeqCst)),
    );
    (api, TestClock(now))
}

/// A request routed to `istat`, made by the operator `op-1`.
fn as_operator<T>(istat: &str, message: T) -> Request<T> {
    let mut request = routed(istat, message);
    request.extensions_mut().insert(Principal {
        sub: "op-1".to_owned(),
        role: Role::Operator,
        comuni: vec![istat.to_owned()],
        fiscal_number: None,
        gateway: "gw-1".to_owned(),
    });
    request
}

fn doc(name: &str, content: &[u8]) -> pb::Document {
    pb::Document {
        file_name: name.to_owned(),
        media_type: "application/pdf".to_owned(),
        content: content.to_vec(),
        ..Default::default()
    }
}

fn incoming(subject: &str) -> pb::Registration {
    pb::Registration {
        direction: pb::Direction::Incoming.into(),
        subject: subject.to_owned(),
        sender: "Mario Rossi".to_owned(),
        classification: "1.6".to_owned(),
        assignment: "Ufficio anagrafe".to_owned(),
        document: Some(doc("istanza.pdf", b"%PDF-1.7 istanza")),
        attachments: vec![doc("allegato.pdf", b"%PDF-1.7 allegato")],
        ..Default::default()
    }
}

fn outgoing(subject: &str) -> pb::Registration {
    pb::Registration {
        direction: pb::Direction::Outgoing.into(),
        subject: subject.to_owned(),
        recipients: vec!["Regione Liguria".to_owned(), "Prefettura".to_owned()],
        classification: "2.1".to_owned(),
        assignment: "Segreteria".to_owned(),
        document: Some(doc("lettera.pdf", subject.as_bytes())),
        ..Default::default()
    }
}

fn create_req(
    istat: &str,
    registration: pb::Registration,
    request_id: &str,
) -> Request<pb::CreateRegistrationRequest> {
    as_operator(
        istat,
        pb::CreateRegistrationRequest {
            parent: format!("comuni/{istat}/registers/GEN"),
            registration: Some(registration),
            request_id: request_id.to_owned(),
        },
    )
}

async fn create(
    api: &ProtocolApi,
    registration: pb::Registration,
    label: &str,
) -> pb::Registration {
    api.create_registration(create_req(SARZANA, registration, ""))
        .await
        .unwrap_or_else(|e| panic!("{label}: registers: {e:?}"))
        .into_inner()
}

async fn get(api: &ProtocolApi, name: &str) -> pb::Registration {
    api.get_registration(routed(
        SARZANA,
        pb::GetRegistrationRequest {
            name: name.to_owned(),
        },
    ))
    .await
    .expect("reads")
    .into_inner()
}

fn update_req(
    registration: &pb::Registration,
    paths: &[&str],
) -> Request<pb::UpdateRegistrationRequest> {
    as_operator(
        SARZANA,
        pb::UpdateRegistrationRequest {
            registration: Some(registration.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
        },
    )
}

fn daily(day: &str) -> String {
    format!("comuni/{SARZANA}/registers/GEN/dailyRegisters/{day}")
}

async fn counts(t: &TestDatabase, istat: &str) -> (i64, i64, i64) {
    let mut conn = t.db.pool().acquire().await.expect("a connection");
    storage::counts(&mut conn, &Istat::parse(istat).expect("an ISTAT code"))
        .await
        .expect("counts")
}

fn assert_error(
    status: &tonic::Status,
    code: Code,
    reason: &str,
    field: Option<&str>,
    label: &str,
) {
    assert_eq!(status.code(), code, "{label}: {status:?}");
    let (got_reason, got_field) = reason_and_field(status);
    assert_eq!(got_reason, reason, "{label}: {status:?}");
    assert_eq!(got_field.as_deref(), field, "{label}: {status:?}");
}

/// DOMAIN.md "Protocol register": the number is progressive and assigned by the system; 64
/// concurrent registrations get exactly 1..64, each once, printed with 7 digits, and a list
/// in pages returns them in order.
#[tokio::test]
async fn concurrent_registrations_get_exactly_one_to_sixty_four() {
    for t in testing::all().await {
        let (api, _clock) = api(&t, utc(2026, 3, 10, 9, 0)).await;
        let api = Arc::new(api);
        let mut tasks = Vec::new();
        for i in 0..64 {
            let api = Arc::clone(&api);
            tasks.push(tokio::spawn(async move {
                api.create_registration(create_req(SARZANA, outgoing(&format!("lettera {i}")), ""))
                    .await
                    .map(tonic::Response::into_inner)
            }));
        }
        let mut numbers = Vec::new();
        for task in tasks {
            let r = task
                .await
                .expect("the task runs")
                .unwrap_or_else(|e| panic!("{}: registers: {e:?}", t.label));
            assert_eq!(r.formatted_number, format!("{:07}", r.number));
            numbers.push(r.number);
        }
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=64).collect::<Vec<i64>>(), "{}", t.label);

        let mut listed = Vec::new();
        let mut token = String::new();
        loop {
            let page = api
                .list_registrations(routed(
                    SARZANA,
                    pb::ListRegistrationsRequest {
                        parent: format!("comuni/{SARZANA}/registers/GEN"),
                        page_size: 10,
                        page_token: token.clone(),
                        year: 2026,
                    },
                ))
                .await
                .expect("lists")
                .into_inner();
            listed.extend(page.registrations.iter().map(|r| r.number));
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(
            listed,
            (1..=64).collect::<Vec<i64>>(),
            "{}: in order",
            t.label
        );
    }
}

/// DOMAIN.md "Protocol register": the number is renewed each calendar year (Europe/Rome: 31
/// December 23:30 UTC is already 1 January in Italy).
#[tokio::test]
async fn a_new_year_restarts_at_one() {
    for t in testing::all().await {
        let (api, clock) = api(&t, utc(2025, 12, 31, 22, 30)).await;
        let a = create(&api, incoming("a"), t.label).await;
        let b = create(&api, incoming("b"), t.label).await;
        assert_eq!((a.year, a.number, b.number), (2025, 1, 2), "{}", t.label);
        clock.set(utc(2025, 12, 31, 23, 30));
        let c = create(&api, incoming("c"), t.label).await;
        assert_eq!(
            (c.year, c.number),
            (2026, 1),
            "{}: Rome is in 2026",
            t.label
        );
        assert_eq!(c.formatted_number, "0000001");
        let list = |year| {
            routed(
                SARZANA,
                pb::ListRegistrationsRequest {
                    parent: format!("comuni/{SARZANA}/registers/-"),
                    year,
                    ..Default::default()
                },
            )
        };
        let y2025 = api.list_registrations(list(2025)).await.expect("lists");
        assert_eq!(y2025.into_inner().registrations.len(), 2, "{}", t.label);
        let y2026 = api.list_registrations(list(2026)).await.expect("lists");
        assert_eq!(y2026.into_inner().registrations.len(), 1, "{}", t.label);
    }
}

/// DOMAIN.md "Protocol register": numbers are never reused and have no gaps. A registration
/// refused for an oversize attachment writes nothing; one that crashes after taking its number
/// (its transaction never commits) gives the number back: the next registration gets it.
#[tokio::test]
async fn a_failed_registration_leaves_no_gap() {
    for t in testing::all().await {
        let (api, _clock) = api(&t, utc(2026, 5, 4, 8, 0)).await;
        let first = create(&api, incoming("primo"), t.label).await;
        assert_eq!(first.number, 1);
        let before = counts(&t, SARZANA).await;

        let mut big = incoming("troppo grande");
        big.attachments = vec![doc("scansione.tif", &vec![7_u8; MAX_DOCUMENT_BYTES + 1])];
        let err = api
            .create_registration(create_req(SARZANA, big, "req-big"))
            .await
            .expect_err("refused");
        assert_error(
            &err,
            Code::InvalidArgument,
            "DOCUMENT_TOO_LARGE",
            Some("registration.attachments[0].content"),
            t.label,
        );
        assert_eq!(
            counts(&t, SARZANA).await,
            before,
            "{}: nothing written",
            t.label
        );

        // A crash after the number was taken and the row inserted: the transaction is dropped
        // without commit.
        let comune = Istat::parse(SARZANA).expect("code");
        {
            let mut tx = t.db.begin_write().await.expect("tx");
            storage::lock_register(&mut tx, &comune, "GEN")
                .await
                .expect("lock");
            let n = storage::next_number(&mut tx, &comune, "GEN", 2026)
                .await
                .expect("a number");
            assert_eq!(n, 2, "{}", t.label);
            let new = NewRegistration {
                direction: Direction::Internal,
                subject: "mai registrato".to_owned(),
                sender: String::new(),
                recipients: vec!["Ragioneria".to_owned()],
                classification: "1.1".to_owned(),
                assignment: "Segreteria".to_owned(),
                documents: vec![(
                    DocumentRef {
                        file_name: "x.txt".to_owned(),
                        media_type: "text/plain".to_owned(),
                        sha256: format!("{:x}", Sha256::digest(b"x")),
                        size_bytes: 1,
                    },
                    b"x".to_vec(),
                )],
            };
            storage::insert_registration(
                &mut tx,
                &comune,
                "crashed".to_owned(),
                "GEN",
                n,
                utc(2026, 5, 4, 8, 0),
                "op-1",
                &new,
            )
            .await
            .expect("inserted in the transaction");
        }
        assert_eq!(
            counts(&t, SARZANA).await,
            before,
            "{}: rolled back",
            t.label
        );
        let next = create(&api, incoming("secondo"), t.label).await;
        assert_eq!(next.number, 2, "{}: no hole", t.label);
    }
}

/// DOMAIN.md "Protocol register": number, date, correspondents, subject and the document's
/// hash are immutable; only classification and assignment change, each change historised with
/// the old value, author and time; the subject and correspondents are corrected only by
/// annulling the field and entering a new value, the old one staying visible with date,
/// operator and authorising act (DPCM 3/12/2013 art. 8). A stale etag is refused (AIP-154).
#[tokio::test]
async fn nothing_is_overwritten() {
    for t in testing::all().await {
        let (api, clock) = api(&t, utc(2026, 6, 1, 8, 0)).await;
        let created = create(&api, incoming("Richiesta di accesso"), t.label).await;
        let before = counts(&t, SARZANA).await;

        for path in [
            "subject",
            "sender",
            "number",
            "registration_time",
            "document",
        ] {
            let mut changed = created.clone();
            changed.subject = "altro".to_owned();
            changed.number = 99;
            let err = api
                .update_registration(update_req(&changed, &[path]))
                .await
                .expect_err("immutable");
            assert_error(
                &err,
                Code::InvalidArgument,
                "FIELD_NOT_UPDATABLE",
                Some("update_mask"),
                t.label,
            );
        }
        assert_eq!(
            counts(&t, SARZANA).await,
            before,
            "{}: nothing written",
            t.label
        );

        clock.set(utc(2026, 6, 1, 9, 0));
        let mut changed = created.clone();
        changed.classification = "3.2".to_owned();
        changed.number = 99; // not in the mask: ignored
        let updated = api
            .update_registration(update_req(&changed, &["classification"]))
            .await
            .unwrap_or_else(|e| panic!("{}: updates: {e:?}", t.label))
            .into_inner();
        assert_eq!(updated.classification, "3.2");
        assert_eq!(updated.number, created.number);
        assert_ne!(updated.etag, created.etag);
        assert_eq!(updated.history.len(), 1);
        let h = &updated.history[0];
        assert_eq!(h.kind, i32::from(pb::HistoryKind::ClassificationChanged));
        assert_eq!((h.old_value.as_str(), h.new_value.as_str()), ("1.6", "3.2"));
        assert_eq!(h.operator, "op-1");
        assert_eq!(
            h.time.as_ref().map(|t| t.seconds),
            Some(utc(2026, 6, 1, 9, 0) / 1_000_000)
        );
        assert_eq!(
            updated
                .segnatura
                .as_ref()
                .map(|s| s.classification.as_str()),
            Some("1.6"),
            "the segnatura is fixed at registration"
        );

        // The etag read before the update is stale now.
        let mut stale = created.clone();
        stale.assignment = "Ufficio tecnico".to_owned();
        let err = api
            .update_registration(update_req(&stale, &["assignment"]))
            .await
            .expect_err("stale");
        assert_error(
            &err,
            Code::Aborted,
            "ETAG_MISMATCH",
            Some("registration.etag"),
            t.label,
        );

        let correct = |etag: &str, act: &str, field: pb::CorrectableField, value: &str| {
            as_operator(
                SARZANA,
                pb::CorrectFieldRequest {
                    name: created.name.clone(),
                    etag: etag.to_owned(),
                    field: field.into(),
                    new_value: value.to_owned(),
                    new_recipients: Vec::new(),
                    reason: "errore materiale".to_owned(),
                    authorising_act: act.to_owned(),
                },
            )
        };
        let err = api
            .correct_field(correct(
                &updated.etag,
                "",
                pb::CorrectableField::Subject,
                "Nuovo",
            ))
            .await
            .expect_err("an act is required");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("authorising_act"),
            t.label,
        );
        let err = api
            .correct_field(correct(
                &updated.etag,
                "Det. 12/2026",
                pb::CorrectableField::Recipients,
                "",
            ))
            .await
            .expect_err("an incoming document has no recipients");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_NOT_APPLICABLE",
            Some("field"),
            t.label,
        );
        let err = api
            .correct_field(correct(
                &created.etag,
                "Det. 12/2026",
                pb::CorrectableField::Subject,
                "x",
            ))
            .await
            .expect_err("stale");
        assert_error(&err, Code::Aborted, "ETAG_MISMATCH", Some("etag"), t.label);
        assert_eq!(
            counts(&t, SARZANA).await.1,
            1,
            "{}: one event so far",
            t.label
        );

        let corrected = api
            .correct_field(correct(
                &updated.etag,
                "Det. 12/2026",
                pb::CorrectableField::Subject,
                "Richiesta di accesso agli atti",
            ))
            .await
            .unwrap_or_else(|e| panic!("{}: corrects: {e:?}", t.label))
            .into_inner();
        assert_eq!(corrected.subject, "Richiesta di accesso agli atti");
        let h = corrected.history.last().expect("an entry");
        assert_eq!(h.kind, i32::from(pb::HistoryKind::SubjectCorrected));
        assert_eq!(
            h.old_value, "Richiesta di accesso",
            "the old value stays visible"
        );
        assert_eq!(
            (h.authorising_act.as_str(), h.operator.as_str()),
            ("Det. 12/2026", "op-1")
        );
        assert!(h.time.is_some());
        let sender = api
            .correct_field(correct(
                &corrected.etag,
                "Det. 13/2026",
                pb::CorrectableField::Sender,
                "Maria Rossi",
            ))
            .await
            .unwrap_or_else(|e| panic!("{}: corrects the sender: {e:?}", t.label))
            .into_inner();
        assert_eq!(sender.sender, "Maria Rossi");
        assert_eq!(
            sender.history.last().map(|h| h.old_value.as_str()),
            Some("Mario Rossi")
        );

        // What was registered is unchanged, and Get shows the same.
        let got = get(&api, &created.name).await;
        assert_eq!(got, sender, "{}", t.label);
        assert_eq!(got.number, created.number);
        assert_eq!(got.registration_time, created.registration_time);
        assert_eq!(got.document, created.document);
        assert_eq!(
            got.segnatura.as_ref().map(|s| s.subject.as_str()),
            Some("Richiesta di accesso")
        );
        assert_eq!(got.history.len(), 3);
    }
}

/// DOMAIN.md "Protocol register": annulment, never deletion; the record stays readable,
/// marked annulled with date, operator and act; its number is never reused; an annulled
/// registration no longer changes.
#[tokio::test]
async fn an_annulled_registration_stays_readable() {
    for t in testing::all().await {
        let (api, _clock) = api(&t, utc(2026, 6, 2, 8, 0)).await;
        let created = create(&api, outgoing("Convocazione"), t.label).await;
        let annul = |etag: &str, reason: &str| {
            as_operator(
                SARZANA,
                pb::AnnulRegistrationRequest {
                    name: created.name.clone(),
                    etag: etag.to_owned(),
                    reason: reason.to_owned(),
                    authorising_act: "Provv. 3/2026".to_owned(),
                },
            )
        };
        let err = api
            .annul_registration(annul(&created.etag, " "))
            .await
            .expect_err("a reason");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("reason"),
            t.label,
        );
        let annulled = api
            .annul_registration(annul(&created.etag, "doppia registrazione"))
            .await
            .unwrap_or_else(|e| panic!("{}: annuls: {e:?}", t.label))
            .into_inner();
        let a = annulled.annulment.as_ref().expect("marked annulled");
        assert_eq!(
            (a.operator.as_str(), a.authorising_act.as_str()),
            ("op-1", "Provv. 3/2026")
        );
        assert!(a.time.is_some());
        assert_eq!(
            annulled.history.last().map(|h| h.kind),
            Some(i32::from(pb::HistoryKind::Annulled))
        );

        let got = get(&api, &created.name).await;
        assert_eq!(got, annulled, "{}: still readable", t.label);
        assert_eq!(got.subject, "Convocazione");

        let err = api
            .annul_registration(annul(&annulled.etag, "ancora"))
            .await
            .expect_err("already annulled");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "REGISTRATION_ANNULLED",
            None,
            t.label,
        );
        let mut changed = annulled.clone();
        changed.assignment = "Altro".to_owned();
        let err = api
            .update_registration(update_req(&changed, &["assignment"]))
            .await
            .expect_err("annulled");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "REGISTRATION_ANNULLED",
            None,
            t.label,
        );

        let next = create(&api, outgoing("Convocazione bis"), t.label).await;
        assert_eq!(
            next.number, 2,
            "{}: the annulled number is not reused",
            t.label
        );
    }
}

/// DOMAIN.md "Protocol register", the daily register: a day's registrations and changes,
/// sealed so it cannot be altered. Seals chain (seal = sha256(previous seal || content)),
/// only a day that is over is sealed, sealing twice gives the same seal, nothing lands on a
/// sealed day, and VerifyRegister finds a record altered in the database.
#[tokio::test]
async fn daily_registers_are_sealed_in_a_chain_that_detects_tampering() {
    for t in testing::all().await {
        // 2 March 2026, 10:00 in Rome.
        let (api, clock) = api(&t, utc(2026, 3, 2, 9, 0)).await;
        let first = create(&api, incoming("uno"), t.label).await;
        create(&api, outgoing("due"), t.label).await;
        let seal =
            |day: &str| as_operator(SARZANA, pb::SealDailyRegisterRequest { name: daily(day) });
        let err = api
            .seal_daily_register(seal("2026-03-02"))
            .await
            .expect_err("not over");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "DAY_NOT_OVER",
            Some("name"),
            t.label,
        );

        // 3 March: a change to yesterday's registration is today's event.
        clock.set(utc(2026, 3, 3, 9, 0));
        let mut changed = first.clone();
        changed.assignment = "Ufficio tecnico".to_owned();
        api.update_registration(update_req(&changed, &["assignment"]))
            .await
            .unwrap_or_else(|e| panic!("{}: updates: {e:?}", t.label));
        create(&api, incoming("tre"), t.label).await;

        let day1 = api
            .seal_daily_register(seal("2026-03-02"))
            .await
            .unwrap_or_else(|e| panic!("{}: seals: {e:?}", t.label))
            .into_inner();
        assert_eq!(
            (day1.registration_count, day1.event_count),
            (2, 0),
            "{}",
            t.label
        );
        assert!(
            day1.previous_seal.is_empty(),
            "the first seal starts the chain"
        );
        let expected = hex(&Sha256::digest(&day1.content));
        assert_eq!(day1.seal, expected, "{}: sha256(\"\" || content)", t.label);
        let json: serde_json::Value = serde_json::from_slice(&day1.content).expect("JSON");
        assert_eq!(json["registrations"][0]["number"], 1);
        assert_eq!(json["registrations"][0]["subject"], "uno");
        let again = api
            .seal_daily_register(seal("2026-03-02"))
            .await
            .expect("idempotent");
        assert_eq!(
            again.into_inner(),
            day1,
            "{}: sealing twice gives the same seal",
            t.label
        );

        // Nothing may be written on a sealed day (a clock set back).
        clock.set(utc(2026, 3, 2, 20, 0));
        let before = counts(&t, SARZANA).await;
        let err = api
            .create_registration(create_req(SARZANA, incoming("tardi"), ""))
            .await
            .expect_err("sealed day");
        assert_error(&err, Code::FailedPrecondition, "DAY_SEALED", None, t.label);
        assert_eq!(counts(&t, SARZANA).await, before, "{}", t.label);

        clock.set(utc(2026, 3, 5, 9, 0));
        let err = api
            .seal_daily_register(seal("2026-03-04"))
            .await
            .expect_err("a hole");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "PREVIOUS_DAY_NOT_SEALED",
            Some("name"),
            t.label,
        );
        let day2 = api
            .seal_daily_register(seal("2026-03-03"))
            .await
            .unwrap_or_else(|e| panic!("{}: seals: {e:?}", t.label))
            .into_inner();
        assert_eq!(
            (day2.registration_count, day2.event_count),
            (1, 1),
            "{}",
            t.label
        );
        assert_eq!(day2.previous_seal, day1.seal, "{}: chained", t.label);
        let mut chained = day1.seal.as_bytes().to_vec();
        chained.extend_from_slice(&day2.content);
        assert_eq!(day2.seal, hex(&Sha256::digest(&chained)));
        let got = api
            .get_daily_register(routed(
                SARZANA,
                pb::GetDailyRegisterRequest {
                    name: daily("2026-03-03"),
                },
            ))
            .await
            .expect("reads")
            .into_inner();
        assert_eq!(got, day2, "{}: the export is deterministic", t.label);

        let verify = || {
            routed(
                SARZANA,
                pb::VerifyRegisterRequest {
                    parent: format!("comuni/{SARZANA}/registers/GEN"),
                },
            )
        };
        let report = api
            .verify_register(verify())
            .await
            .expect("verifies")
            .into_inner();
        assert!(report.intact, "{}: {report:?}", t.label);
        assert_eq!(report.days_checked, 2);

        // Someone alters the sealed record of the first registration in the database.
        sqlx::query(
            "UPDATE protocol_registrations SET subject = $1 WHERE comune = $2 AND number = 1",
        )
        .bind("uno (alterato)")
        .bind(SARZANA)
        .execute(t.db.pool())
        .await
        .expect("the raw update runs");
        let report = api
            .verify_register(verify())
            .await
            .expect("verifies")
            .into_inner();
        assert!(!report.intact, "{}: tampering detected", t.label);
        assert_eq!(
            report.first_broken_date,
            Some(unione_proto::google::r#type::Date {
                year: 2026,
                month: 3,
                day: 2
            }),
            "{}",
            t.label
        );

        // Put the record back: intact again. Then alter the second day's history entry.
        sqlx::query(
            "UPDATE protocol_registrations SET subject = $1 WHERE comune = $2 AND number = 1",
        )
        .bind("uno")
        .bind(SARZANA)
        .execute(t.db.pool())
        .await
        .expect("the raw update runs");
        let report = api
            .verify_register(verify())
            .await
            .expect("verifies")
            .into_inner();
        assert!(report.intact, "{}: {report:?}", t.label);
        sqlx::query("UPDATE protocol_events SET old_value = $1 WHERE comune = $2")
            .bind("Protocollo")
            .bind(SARZANA)
            .execute(t.db.pool())
            .await
            .expect("the raw update runs");
        let report = api
            .verify_register(verify())
            .await
            .expect("verifies")
            .into_inner();
        assert!(!report.intact, "{}: tampering detected", t.label);
        assert_eq!(
            report.first_broken_date,
            Some(unione_proto::google::r#type::Date {
                year: 2026,
                month: 3,
                day: 3
            }),
            "{}",
            t.label
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// DOMAIN.md "Protocol register", segnatura: IPA code, AOO code, register, number, date and
/// time, subject, classification, hashes of the document and its attachments. Documents are
/// stored content-addressed: the same content twice is one blob.
#[tokio::test]
async fn the_segnatura_identifies_the_registration() {
    for t in testing::all().await {
        let (api, _clock) = api(&t, utc(2026, 7, 15, 22, 30)).await;
        let r = create(&api, incoming("Esposto"), t.label).await;
        let s = r.segnatura.as_ref().expect("a segnatura");
        assert_eq!(s.ipa_code, "c_011027");
        assert_eq!(s.aoo_code, "AOO1");
        assert_eq!(s.register_code, "GEN");
        assert_eq!(s.number, "0000001");
        assert_eq!(s.registration_time, r.registration_time);
        assert_eq!(
            s.registration_date,
            Some(unione_proto::google::r#type::Date {
                year: 2026,
                month: 7,
                day: 16
            }),
            "00:30 in Rome (CEST)"
        );
        assert_eq!(s.subject, "Esposto");
        assert_eq!(s.classification, "1.6");
        assert_eq!(s.document_sha256, hex(&Sha256::digest(b"%PDF-1.7 istanza")));
        assert_eq!(
            s.attachment_sha256,
            vec![hex(&Sha256::digest(b"%PDF-1.7 allegato"))]
        );
        let d = r.document.as_ref().expect("the document");
        assert!(d.content.is_empty(), "content is never returned");
        assert_eq!(
            (d.sha256.as_str(), d.size_bytes),
            (s.document_sha256.as_str(), 16)
        );
        assert_eq!(r.operator, "op-1");
        create(&api, incoming("Esposto bis"), t.label).await;
        assert_eq!(
            counts(&t, SARZANA).await,
            (2, 0, 2),
            "{}: two blobs, shared",
            t.label
        );
    }
}

/// AIP-4222 and the served comuni: a call routed for another comune, for a comune not served
/// here, or a write without a principal, is refused and writes nothing; bad input names its
/// field and writes nothing.
#[tokio::test]
async fn refused_calls_change_nothing() {
    for t in testing::all().await {
        let (api, _clock) = api(&t, utc(2026, 4, 1, 8, 0)).await;
        let mut request = create_req(SARZANA, incoming("x"), "");
        request.metadata_mut().insert(
            ROUTING_HEADER,
            format!("comune=comuni%2F{ARCOLA}").parse().expect("ASCII"),
        );
        let err = api
            .create_registration(request)
            .await
            .expect_err("mismatch");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("parent"),
            t.label,
        );
        let err = api
            .create_registration(create_req(LUNI, incoming("x"), ""))
            .await
            .expect_err("not served");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("parent"),
            t.label,
        );
        let err = api
            .get_registration(routed(
                LUNI,
                pb::GetRegistrationRequest {
                    name: format!("comuni/{LUNI}/registers/GEN/registrations/x"),
                },
            ))
            .await
            .expect_err("not served");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("name"),
            t.label,
        );
        let err = api
            .create_registration(routed(
                SARZANA,
                pb::CreateRegistrationRequest {
                    parent: format!("comuni/{SARZANA}"),
                    registration: Some(incoming("x")),
                    request_id: String::new(),
                },
            ))
            .await
            .expect_err("no principal");
        assert_error(
            &err,
            Code::Unauthenticated,
            "PRINCIPAL_REQUIRED",
            None,
            t.label,
        );

        let mut no_subject = incoming(" ");
        no_subject.subject = " ".to_owned();
        let err = api
            .create_registration(create_req(SARZANA, no_subject, ""))
            .await
            .expect_err("no subject");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("registration.subject"),
            t.label,
        );
        let mut both = incoming("x");
        both.recipients = vec!["Qualcuno".to_owned()];
        let err = api
            .create_registration(create_req(SARZANA, both, ""))
            .await
            .expect_err("recipients on incoming");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_NOT_APPLICABLE",
            Some("registration.recipients"),
            t.label,
        );
        let err = api
            .create_registration(as_operator(
                SARZANA,
                pb::CreateRegistrationRequest {
                    parent: format!("comuni/{SARZANA}/registers/gen"),
                    registration: Some(incoming("x")),
                    request_id: String::new(),
                },
            ))
            .await
            .expect_err("bad register");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_REGISTER",
            Some("parent"),
            t.label,
        );
        for istat in [SARZANA, ARCOLA, LUNI] {
            assert_eq!(
                counts(&t, istat).await,
                (0, 0, 0),
                "{}: nothing written",
                t.label
            );
        }

        // `comuni/{istat}` is the general register.
        let r = api
            .create_registration(as_operator(
                SARZANA,
                pb::CreateRegistrationRequest {
                    parent: format!("comuni/{SARZANA}"),
                    registration: Some(incoming("x")),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("registers")
            .into_inner();
        assert!(
            r.name
                .starts_with("comuni/011027/registers/GEN/registrations/"),
            "{}",
            r.name
        );
    }
}

/// AIP-155 and DOMAIN.md "Idempotency keys": a retry gets the first response and takes no
/// second number; the same key with another request is refused.
#[tokio::test]
async fn an_idempotent_retry_takes_no_second_number() {
    for t in testing::all().await {
        let (api, _clock) = api(&t, utc(2026, 4, 1, 8, 0)).await;
        let first = api
            .create_registration(create_req(SARZANA, incoming("x"), "req-1"))
            .await
            .expect("registers")
            .into_inner();
        let mut echoed = incoming("x");
        echoed.name = first.name.clone();
        echoed.number = 7;
        let retry = api
            .create_registration(create_req(SARZANA, echoed, "req-1"))
            .await
            .expect("replayed")
            .into_inner();
        assert_eq!(retry, first, "{}", t.label);
        assert_eq!(counts(&t, SARZANA).await.0, 1, "{}", t.label);
        let err = api
            .create_registration(create_req(SARZANA, incoming("y"), "req-1"))
            .await
            .expect_err("reused");
        assert_error(
            &err,
            Code::AlreadyExists,
            "IDEMPOTENCY_KEY_REUSED",
            Some("request_id"),
            t.label,
        );
        let next = create(&api, incoming("z"), t.label).await;
        assert_eq!(next.number, 2, "{}", t.label);
    }
}

fn document_req(registration: &str, sha256: &str) -> Request<pb::GetRegistrationDocumentRequest> {
    as_operator(
        SARZANA,
        pb::GetRegistrationDocumentRequest {
            registration: registration.to_owned(),
            sha256: sha256.to_owned(),
        },
    )
}

/// The registered document and attachments are downloaded as they were stored, checked
/// against their hashes (DOMAIN.md "Protocol register": the hashes are part of the immutable
/// record), each download recorded in the access log; a hash of another registration's
/// document is not found through this one, and stored content that no longer matches its hash
/// is reported, never sent.
#[tokio::test]
async fn registered_documents_download_as_stored_and_checked() {
    for t in testing::all().await {
        let (api, _clock) = api(&t, utc(2026, 3, 2, 9, 0)).await;
        let first = create(&api, incoming("Istanza di accesso"), t.label).await;
        let second = create(&api, outgoing("Risposta"), t.label).await;
        let document = first.document.as_ref().expect("document");
        let attachment = first.attachments.first().expect("attachment");

        let got = api
            .get_registration_document(document_req(&first.name, &document.sha256))
            .await
            .expect("the document downloads")
            .into_inner();
        assert_eq!(got.content, b"%PDF-1.7 istanza", "{}", t.label);
        assert_eq!(
            (got.file_name.as_str(), got.media_type.as_str()),
            ("istanza.pdf", "application/pdf")
        );
        let got = api
            .get_registration_document(document_req(&first.name, &attachment.sha256))
            .await
            .expect("the attachment downloads")
            .into_inner();
        assert_eq!(got.content, b"%PDF-1.7 allegato");
        let logged: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM registry_access_log WHERE record = $1 AND principal = 'op-1'",
        )
        .bind(first.name.as_str())
        .fetch_one(t.db.pool())
        .await
        .expect("counted");
        assert_eq!(logged, 2, "{}: each download is recorded", t.label);

        // Another registration's document is not reached through this one.
        let other = second.document.as_ref().expect("document").sha256.clone();
        let err = api
            .get_registration_document(document_req(&first.name, &other))
            .await
            .expect_err("not this registration's document");
        assert_error(
            &err,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("sha256"),
            t.label,
        );
        let err = api
            .get_registration_document(document_req(&first.name, ""))
            .await
            .expect_err("no hash");
        assert_eq!(err.code(), Code::InvalidArgument);

        // Content altered in the database is reported, not sent.
        sqlx::query("UPDATE protocol_blobs SET content = $1 WHERE sha256 = $2")
            .bind(b"%PDF-1.7 forged".to_vec())
            .bind(document.sha256.as_str())
            .execute(t.db.pool())
            .await
            .expect("tampered");
        let err = api
            .get_registration_document(document_req(&first.name, &document.sha256))
            .await
            .expect_err("corrupted");
        assert_error(
            &err,
            Code::DataLoss,
            "DOCUMENT_CORRUPTED",
            Some("sha256"),
            t.label,
        );
    }
}

/// Each day's register is sealed without an operator once the day is over (DPCM 3/12/2013
/// art. 7: the daily register goes to preservation by the next working day): every day from
/// the register's first, in order, including days with no registration so the chain has no
/// hole, never the day still running, and each once.
#[tokio::test]
async fn days_over_are_sealed_by_the_schedule_in_a_chain_with_no_hole() {
    for t in testing::all().await {
        let (api, clock) = api(&t, utc(2026, 3, 2, 9, 0)).await;
        create(&api, incoming("Lunedì"), t.label).await;
        clock.set(utc(2026, 3, 4, 9, 0));
        create(&api, outgoing("Mercoledì"), t.label).await;

        // Thursday morning: Monday, Tuesday (empty) and Wednesday are over.
        clock.set(utc(2026, 3, 5, 9, 0));
        let (sealed, failures) = api.seal_pending_days().await;
        assert!(failures.is_empty(), "{}: {failures:?}", t.label);
        assert_eq!(sealed, 3, "{}", t.label);
        let report = api
            .verify_register(routed(
                SARZANA,
                pb::VerifyRegisterRequest {
                    parent: format!("comuni/{SARZANA}/registers/GEN"),
                },
            ))
            .await
            .expect("verifies")
            .into_inner();
        assert!(report.intact, "{}: {report:?}", t.label);
        assert_eq!(report.days_checked, 3);
        let tuesday = api
            .get_daily_register(routed(
                SARZANA,
                pb::GetDailyRegisterRequest {
                    name: daily("2026-03-03"),
                },
            ))
            .await
            .expect("Tuesday's register")
            .into_inner();
        assert!(
            !tuesday.seal.is_empty(),
            "{}: an empty day is sealed too",
            t.label
        );
        assert_eq!(
            tuesday.sealed_by,
            unione_registry::grpc::protocol::SCHEDULER
        );

        // Again the same day: nothing more to seal; the running day never is.
        let (sealed, _) = api.seal_pending_days().await;
        assert_eq!(sealed, 0);
        create(&api, incoming("Giovedì"), t.label).await;
        let (sealed, _) = api.seal_pending_days().await;
        assert_eq!(sealed, 0, "{}: Thursday is not over", t.label);
        clock.set(utc(2026, 3, 6, 0, 30));
        let (sealed, failures) = api.seal_pending_days().await;
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(sealed, 1, "{}: Thursday, once it is over in Italy", t.label);
    }
}
