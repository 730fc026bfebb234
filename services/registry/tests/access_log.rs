//! The registry's log of personal-data reads, over real storage, on SQLite and (with
//! `TEST_DATABASE_URL`) PostgreSQL. Issue 3, "Access and privacy": every read of personal data
//! is recorded (who, which record, when, why), and the service refuses a caller who is not
//! allowed whatever reaches it. The handlers are called directly, with the routing header and
//! the principal the gateway sets.

mod support;

use tonic::metadata::MetadataValue;
use tonic::{Code, Request};
use unione_kit::names::routed;
use unione_kit::principal::Principal;
use unione_kit::storage::now_micros;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_proto::common::v1::Channel;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::access_log_service_server::AccessLogService;
use unione_proto::registry::v1::case_service_server::CaseService;
use unione_proto::registry::v1::certificate_service_server::CertificateService;
use unione_proto::registry::v1::household_service_server::HouseholdService;
use unione_proto::registry::v1::resident_service_server::ResidentService;
use unione_registry::grpc::access::PURPOSE_HEADER;
use unione_registry::{AccessLogApi, CaseApi, CertificateApi, HouseholdApi, ResidentApi};

use support::*;

const GET_RESIDENT: &str = "unione.registry.v1.ResidentService/GetResident";
const LIST_RESIDENTS: &str = "unione.registry.v1.ResidentService/ListResidents";

fn user(sub: &str, role: Role, comuni: &[&str], cf: Option<&str>) -> Principal {
    Principal {
        sub: sub.to_owned(),
        role,
        comuni: comuni.iter().map(|c| (*c).to_owned()).collect(),
        fiscal_number: cf.map(str::to_owned),
        gateway: "gw-1".to_owned(),
    }
}

fn operator() -> Principal {
    user("op-7", Role::Operator, &[SARZANA], None)
}

fn auditor() -> Principal {
    user("aud-1", Role::Auditor, &[], None)
}

/// A request routed to Sarzana, made by `who` (a federation peer when `None`), stating
/// `purpose` when given.
fn by<T>(who: Option<&Principal>, purpose: Option<&str>, message: T) -> Request<T> {
    let mut request = routed(SARZANA, message);
    if let Some(who) = who {
        request.extensions_mut().insert(who.clone());
    }
    if let Some(purpose) = purpose {
        let value = MetadataValue::try_from(purpose.as_bytes()).expect("a header value");
        request.metadata_mut().insert(PURPOSE_HEADER, value);
    }
    request
}

fn get(name: &str) -> pb::GetResidentRequest {
    pb::GetResidentRequest {
        name: name.to_owned(),
    }
}

fn list_log(record: &str, page_size: i32, page_token: &str) -> pb::ListPersonalDataAccessesRequest {
    pb::ListPersonalDataAccessesRequest {
        parent: format!("comuni/{SARZANA}"),
        record: record.to_owned(),
        page_size,
        page_token: page_token.to_owned(),
        ..Default::default()
    }
}

/// Every row of Sarzana's log about `record` (all when empty), newest first, read by an
/// auditor.
async fn log(t: &TestDatabase, record: &str) -> Vec<pb::PersonalDataAccess> {
    AccessLogApi::new(t.db.clone(), served())
        .list_personal_data_accesses(by(Some(&auditor()), None, list_log(record, 500, "")))
        .await
        .unwrap_or_else(|e| panic!("{}: the auditor reads the log: {e:?}", t.label))
        .into_inner()
        .personal_data_accesses
}

/// The time of a row, in microseconds since the epoch.
fn micros(row: &pb::PersonalDataAccess) -> i64 {
    let at = row.access_time.expect("every row has its time");
    at.seconds * 1_000_000 + i64::from(at.nanos / 1000)
}

async fn rows(t: &TestDatabase) -> i64 {
    count(t, "SELECT COUNT(*) FROM registry_access_log").await
}

/// Who, which record, when, why: an operator's read with a stated purpose, a citizen's read of
/// their own record, and a federation peer's read (no principal) are each one row, with the
/// principal, its role, the method, the record, the purpose and the time of the read.
#[tokio::test]
async fn reads_by_an_operator_a_citizen_and_a_peer_are_logged() {
    for t in testing::all().await {
        migrate(&t).await;
        let api = ResidentApi::new(t.db.clone(), served());
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        assert_eq!(rows(&t).await, 0, "{}: a registration is no read", t.label);

        let before = now_micros();
        let read = api
            .get_resident(by(
                Some(&operator()),
                Some("pratica 42/2026"),
                get(&rossi.name),
            ))
            .await
            .expect("the operator reads")
            .into_inner();
        let after = now_micros();
        assert_eq!(read.name, rossi.name);
        let rows_now = log(&t, "").await;
        assert_eq!(rows_now.len(), 1, "{}", t.label);
        let row = &rows_now[0];
        assert_eq!(
            (
                row.principal.as_str(),
                row.role.as_str(),
                row.method.as_str(),
                row.record.as_str(),
                row.purpose.as_str()
            ),
            (
                "op-7",
                "operator",
                GET_RESIDENT,
                rossi.name.as_str(),
                "pratica 42/2026"
            ),
            "{}",
            t.label
        );
        assert!(
            (before..=after).contains(&micros(row)),
            "{}: the time of the read",
            t.label
        );
        assert!(
            row.name
                .starts_with(&format!("comuni/{SARZANA}/personalDataAccesses/")),
            "{}",
            t.label
        );

        let citizen = user("cit-1", Role::Citizen, &[], Some(&rossi.codice_fiscale));
        api.get_resident(by(Some(&citizen), None, get(&rossi.name)))
            .await
            .expect("the citizen reads their own record");
        api.get_resident(by(None, None, get(&rossi.name)))
            .await
            .expect("a peer reads");
        let all = log(&t, &rossi.name).await;
        let seen: Vec<(&str, &str, &str)> = all
            .iter()
            .map(|r| (r.principal.as_str(), r.role.as_str(), r.purpose.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("peer", "peer", ""),
                ("cit-1", "citizen", ""),
                ("op-7", "operator", "pratica 42/2026")
            ],
            "{}: newest first",
            t.label
        );
    }
}

/// One row per record returned: a list of 3 residents logs 3 rows, a page of 2 logs 2, and
/// a citizen's list (their own record only) logs theirs.
#[tokio::test]
async fn a_list_logs_one_row_per_record_returned() {
    for t in testing::all().await {
        migrate(&t).await;
        let api = ResidentApi::new(t.db.clone(), served());
        let mut residents = Vec::new();
        for (family, given, birth) in [
            ("Rossi", "Mario", (1980, 1, 1)),
            ("Bianchi", "Luca", (1975, 5, 20)),
            ("Verdi", "Paolo", (1990, 9, 9)),
        ] {
            residents.push(register(&t, SARZANA, person(family, given, birth, false)).await);
        }
        let mut names: Vec<String> = residents.iter().map(|r| r.name.clone()).collect();
        let list = |page_size| pb::ListResidentsRequest {
            parent: format!("comuni/{SARZANA}"),
            page_size,
            page_token: String::new(),
            ..pb::ListResidentsRequest::default()
        };
        let listed = api
            .list_residents(by(Some(&operator()), None, list(10)))
            .await
            .expect("listed")
            .into_inner();
        assert_eq!(listed.residents.len(), 3);
        let mut logged: Vec<String> = log(&t, "").await.into_iter().map(|r| r.record).collect();
        logged.sort();
        names.sort();
        assert_eq!(logged, names, "{}", t.label);
        assert!(
            log(&t, "").await.iter().all(|r| r.method == LIST_RESIDENTS),
            "{}",
            t.label
        );

        api.list_residents(by(Some(&operator()), None, list(2)))
            .await
            .expect("a page");
        assert_eq!(rows(&t).await, 5, "{}: a page of 2 logs 2", t.label);

        let rossi = &residents[0];
        let citizen = user("cit-1", Role::Citizen, &[], Some(&rossi.codice_fiscale));
        let own = api
            .list_residents(by(Some(&citizen), None, list(10)))
            .await
            .expect("their own")
            .into_inner();
        assert_eq!(own.residents.len(), 1);
        assert_eq!(own.residents[0].name, rossi.name);
        let theirs = log(&t, &rossi.name).await;
        assert_eq!(
            theirs
                .iter()
                .filter(|r| r.principal == "cit-1" && r.method == LIST_RESIDENTS)
                .count(),
            1,
            "{}",
            t.label
        );
    }
}

/// Households, residence, certificates and cases are personal data too: each read is logged
/// under the records it returned (a household and each member it lists; the resident of a
/// certificate; the case, which names its applicant).
#[tokio::test]
async fn every_read_of_personal_data_is_logged() {
    for t in testing::all().await {
        migrate(&t).await;
        let households = HouseholdApi::new(t.db.clone(), served());
        let certificates = CertificateApi::new(t.db.clone(), served());
        let cases = CaseApi::new(t.db.clone(), served());
        let op = operator();
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let bianchi = register(&t, SARZANA, person("Bianchi", "Anna", (1982, 2, 2), true)).await;
        let household = households
            .create_household(by(
                Some(&op),
                None,
                pb::CreateHouseholdRequest {
                    parent: format!("comuni/{SARZANA}"),
                    head: rossi.name.clone(),
                    start_date: date(2020, 6, 1),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("a household")
            .into_inner();
        households
            .add_household_member(by(
                Some(&op),
                None,
                pb::AddHouseholdMemberRequest {
                    household: household.name.clone(),
                    resident: bianchi.name.clone(),
                    relationship: pb::Relationship::Spouse.into(),
                    effective_date: date(2021, 1, 1),
                },
            ))
            .await
            .expect("joins");
        assert_eq!(rows(&t).await, 0, "{}: changes are no reads", t.label);

        let method = |service: &str, m: &str| format!("unione.registry.v1.{service}/{m}");
        let logged = |rows: Vec<pb::PersonalDataAccess>| -> Vec<(String, String)> {
            let mut out: Vec<(String, String)> =
                rows.into_iter().map(|r| (r.method, r.record)).collect();
            out.sort();
            out
        };

        households
            .get_household(by(
                Some(&op),
                None,
                pb::GetHouseholdRequest {
                    name: household.name.clone(),
                    as_of: None,
                },
            ))
            .await
            .expect("read");
        let get_household = method("HouseholdService", "GetHousehold");
        let mut expected = vec![
            (get_household.clone(), bianchi.name.clone()),
            (get_household.clone(), household.name.clone()),
            (get_household.clone(), rossi.name.clone()),
        ];
        expected.sort();
        assert_eq!(logged(log(&t, "").await), expected, "{}", t.label);

        households
            .get_residence_at_date(by(
                Some(&op),
                None,
                pb::GetResidenceAtDateRequest {
                    name: rossi.name.clone(),
                    date: date(2019, 1, 1),
                },
            ))
            .await
            .expect("read");
        households
            .list_residence_events(by(
                Some(&op),
                None,
                pb::ListResidenceEventsRequest {
                    parent: rossi.name.clone(),
                    page_size: 10,
                    page_token: String::new(),
                },
            ))
            .await
            .expect("read");
        let issued = certificates
            .issue_certificate(by(
                Some(&op),
                None,
                pb::IssueCertificateRequest {
                    parent: format!("comuni/{SARZANA}"),
                    certificate: Some(pb::Certificate {
                        r#type: pb::CertificateType::Residence.into(),
                        resident: rossi.name.clone(),
                        channel: Channel::Counter.into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("issued")
            .into_inner();
        certificates
            .get_certificate(by(
                Some(&op),
                None,
                pb::GetCertificateRequest {
                    name: issued.name.clone(),
                },
            ))
            .await
            .expect("read");
        certificates
            .list_certificates(by(
                Some(&op),
                None,
                pb::ListCertificatesRequest {
                    parent: format!("comuni/{SARZANA}"),
                    ..Default::default()
                },
            ))
            .await
            .expect("read");
        let mut expected = vec![
            (
                method("HouseholdService", "GetHousehold"),
                rossi.name.clone(),
            ),
            (
                method("HouseholdService", "GetResidenceAtDate"),
                rossi.name.clone(),
            ),
            (
                method("HouseholdService", "ListResidenceEvents"),
                rossi.name.clone(),
            ),
            (
                method("CertificateService", "IssueCertificate"),
                rossi.name.clone(),
            ),
            (
                method("CertificateService", "GetCertificate"),
                rossi.name.clone(),
            ),
            (
                method("CertificateService", "ListCertificates"),
                rossi.name.clone(),
            ),
        ];
        expected.sort();
        assert_eq!(logged(log(&t, &rossi.name).await), expected, "{}", t.label);

        cases
            .create_procedure_type(by(
                Some(&op),
                None,
                pb::CreateProcedureTypeRequest {
                    parent: format!("comuni/{SARZANA}"),
                    procedure_type: Some(pb::ProcedureType {
                        code: "OSP".to_owned(),
                        title: "Occupazione di suolo pubblico".to_owned(),
                        legal_days: 30,
                        office: "Tributi".to_owned(),
                        classification: "6.3".to_owned(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("a procedure type");
        let citizen = user("cit-1", Role::Citizen, &[], Some(&rossi.codice_fiscale));
        let case = cases
            .submit_case(by(
                Some(&citizen),
                None,
                pb::SubmitCaseRequest {
                    parent: format!("comuni/{SARZANA}"),
                    case: Some(pb::Case {
                        procedure_type: format!("comuni/{SARZANA}/procedureTypes/OSP"),
                        subject: "Dehors estivo".to_owned(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("submitted")
            .into_inner();
        assert!(log(&t, &case.name).await.is_empty(), "{}", t.label);
        cases
            .get_case(by(
                Some(&citizen),
                Some("seguo la mia pratica"),
                pb::GetCaseRequest {
                    name: case.name.clone(),
                },
            ))
            .await
            .expect("read");
        cases
            .list_cases(by(
                Some(&op),
                None,
                pb::ListCasesRequest {
                    parent: format!("comuni/{SARZANA}"),
                    ..Default::default()
                },
            ))
            .await
            .expect("read");
        let of_case: Vec<(String, String, String)> = log(&t, &case.name)
            .await
            .into_iter()
            .map(|r| (r.method, r.principal, r.purpose))
            .collect();
        assert_eq!(
            of_case,
            [
                (
                    method("CaseService", "ListCases"),
                    "op-7".to_owned(),
                    String::new()
                ),
                (
                    method("CaseService", "GetCase"),
                    "cit-1".to_owned(),
                    "seguo la mia pratica".to_owned()
                ),
            ],
            "{}",
            t.label
        );
    }
}

/// No unlogged read, and no log of a read that did not happen: a record that is missing, or
/// another person's record asked by a citizen (NOT_FOUND), and a purpose that is too long or
/// not ASCII (INVALID_ARGUMENT naming the header), log nothing; and when the log cannot be
/// written, the read fails instead of answering.
#[tokio::test]
async fn failed_reads_log_nothing_and_an_unloggable_read_fails() {
    for t in testing::all().await {
        migrate(&t).await;
        let api = ResidentApi::new(t.db.clone(), served());
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let bianchi = register(&t, SARZANA, person("Bianchi", "Anna", (1982, 2, 2), true)).await;

        let missing = format!("comuni/{SARZANA}/residents/0000");
        let err = api
            .get_resident(by(Some(&operator()), None, get(&missing)))
            .await
            .expect_err("missing");
        assert_eq!(err.code(), Code::NotFound, "{}", t.label);
        let citizen = user("cit-1", Role::Citizen, &[], Some(&rossi.codice_fiscale));
        let err = api
            .get_resident(by(Some(&citizen), None, get(&bianchi.name)))
            .await
            .expect_err("another person's record");
        assert_eq!(err.code(), Code::NotFound, "{}", t.label);
        let err = CertificateApi::new(t.db.clone(), served())
            .get_certificate(by(
                Some(&operator()),
                None,
                pb::GetCertificateRequest {
                    name: format!("comuni/{SARZANA}/certificates/0000"),
                },
            ))
            .await
            .expect_err("missing");
        assert_eq!(err.code(), Code::NotFound, "{}", t.label);

        let too_long = "x".repeat(201);
        for purpose in [too_long.as_str(), "verifica dell'identit\u{e0}"] {
            let err = api
                .get_resident(by(Some(&operator()), Some(purpose), get(&rossi.name)))
                .await
                .expect_err("a bad purpose");
            assert_error(
                &err,
                Code::InvalidArgument,
                "INVALID_PURPOSE",
                Some(PURPOSE_HEADER),
                t.label,
            );
        }
        assert_eq!(rows(&t).await, 0, "{}: nothing was read", t.label);

        // The log gone: the read fails rather than go unrecorded.
        sqlx::query("DROP TABLE registry_access_log")
            .execute(t.db.pool())
            .await
            .expect("dropped");
        let err = api
            .get_resident(by(Some(&operator()), None, get(&rossi.name)))
            .await
            .expect_err("no unlogged read");
        assert_eq!(err.code(), Code::Internal, "{}: {err:?}", t.label);
    }
}

/// The log is append-only: the database refuses to change or delete a row (triggers on both
/// backends), so what was recorded stays as it was.
#[tokio::test]
async fn the_log_cannot_be_changed_or_deleted() {
    for t in testing::all().await {
        migrate(&t).await;
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        ResidentApi::new(t.db.clone(), served())
            .get_resident(by(Some(&operator()), Some("controllo"), get(&rossi.name)))
            .await
            .expect("read");
        let before = log(&t, "").await;
        assert_eq!(before.len(), 1);
        for sql in [
            "UPDATE registry_access_log SET purpose = 'nothing to see'",
            "UPDATE registry_access_log SET principal = 'someone else'",
            "DELETE FROM registry_access_log",
        ] {
            let err = sqlx::query(sql).execute(t.db.pool()).await.expect_err(sql);
            assert!(
                err.to_string().contains("append-only"),
                "{}: {sql}: {err}",
                t.label
            );
        }
        assert_eq!(log(&t, "").await, before, "{}", t.label);
    }
}

/// ListPersonalDataAccesses: newest first, filtered by record and by time, paginated with
/// tokens bound to the request; a record of another comune, a range that ends before it
/// starts, or a token of another filter is INVALID_ARGUMENT.
#[tokio::test]
async fn accesses_are_listed_by_record_and_time_and_paged() {
    for t in testing::all().await {
        migrate(&t).await;
        let api = ResidentApi::new(t.db.clone(), served());
        let log_api = AccessLogApi::new(t.db.clone(), served());
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let bianchi = register(&t, SARZANA, person("Bianchi", "Anna", (1982, 2, 2), true)).await;
        for i in 0..5 {
            let purpose = format!("lettura {i}");
            api.get_resident(by(Some(&operator()), Some(&purpose), get(&rossi.name)))
                .await
                .expect("read");
        }
        for _ in 0..2 {
            api.get_resident(by(Some(&operator()), None, get(&bianchi.name)))
                .await
                .expect("read");
        }

        let admin = user("adm-1", Role::Admin, &[], None);
        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = log_api
                .list_personal_data_accesses(by(
                    Some(&admin),
                    None,
                    list_log(&rossi.name, 2, &token),
                ))
                .await
                .expect("a page")
                .into_inner();
            pages += 1;
            assert!(page.personal_data_accesses.len() <= 2);
            seen.extend(page.personal_data_accesses);
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(pages, 3, "{}: 2 + 2 + 1", t.label);
        let purposes: Vec<&str> = seen.iter().map(|r| r.purpose.as_str()).collect();
        assert_eq!(
            purposes,
            [
                "lettura 4",
                "lettura 3",
                "lettura 2",
                "lettura 1",
                "lettura 0"
            ],
            "{}: every read of the record once, newest first",
            t.label
        );
        assert!(seen.iter().all(|r| r.record == rossi.name), "{}", t.label);
        assert_eq!(log(&t, "").await.len(), 7, "{}", t.label);
        assert_eq!(log(&t, &bianchi.name).await.len(), 2, "{}", t.label);

        // A time range: from the third read of Rossi on, and up to (not including) it.
        let third = seen[2].access_time.expect("a time");
        let ranged = |start, end| pb::ListPersonalDataAccessesRequest {
            start_time: start,
            end_time: end,
            ..list_log(&rossi.name, 100, "")
        };
        let from = log_api
            .list_personal_data_accesses(by(Some(&admin), None, ranged(Some(third), None)))
            .await
            .expect("ranged")
            .into_inner()
            .personal_data_accesses;
        let until = log_api
            .list_personal_data_accesses(by(Some(&admin), None, ranged(None, Some(third))))
            .await
            .expect("ranged")
            .into_inner()
            .personal_data_accesses;
        assert_eq!(from.len() + until.len(), 5, "{}", t.label);
        assert!(from.iter().any(|r| r.purpose == "lettura 2"), "{}", t.label);
        assert!(
            until.iter().all(|r| micros(r) < micros(&seen[2])),
            "{}",
            t.label
        );

        let bad = [
            (
                pb::ListPersonalDataAccessesRequest {
                    record: format!("comuni/{ARCOLA}/residents/x"),
                    ..list_log("", 10, "")
                },
                "COMUNE_MISMATCH",
                "record",
            ),
            (
                pb::ListPersonalDataAccessesRequest {
                    start_time: Some(prost_types::Timestamp {
                        seconds: 2,
                        nanos: 0,
                    }),
                    end_time: Some(prost_types::Timestamp {
                        seconds: 1,
                        nanos: 0,
                    }),
                    ..list_log("", 10, "")
                },
                "INVALID_TIME_RANGE",
                "end_time",
            ),
            (
                // A token of the Rossi filter, used without it.
                {
                    let first = log_api
                        .list_personal_data_accesses(by(
                            Some(&admin),
                            None,
                            list_log(&rossi.name, 1, ""),
                        ))
                        .await
                        .expect("a page")
                        .into_inner();
                    list_log("", 1, &first.next_page_token)
                },
                "INVALID_PAGE_TOKEN",
                "page_token",
            ),
        ];
        for (request, reason, field) in bad {
            let err = log_api
                .list_personal_data_accesses(by(Some(&admin), None, request))
                .await
                .expect_err(reason);
            assert_error(&err, Code::InvalidArgument, reason, Some(field), t.label);
        }
    }
}

/// Only federation administrators and auditors read the log; an operator (even of this
/// comune), an integrator or a citizen is PERMISSION_DENIED, and a call with no principal is
/// UNAUTHENTICATED, whatever the gateway let through.
#[tokio::test]
async fn only_administrators_and_auditors_read_the_log() {
    for t in testing::all().await {
        migrate(&t).await;
        let log_api = AccessLogApi::new(t.db.clone(), served());
        let call = |who: Option<Principal>| {
            let log_api = log_api.clone();
            async move {
                log_api
                    .list_personal_data_accesses(by(who.as_ref(), None, list_log("", 10, "")))
                    .await
            }
        };
        for who in [
            operator(),
            user("int-1", Role::Integrator, &[SARZANA], None),
            user("cit-1", Role::Citizen, &[], Some("RSSMRA80A01H501U")),
        ] {
            let err = call(Some(who.clone())).await.expect_err("refused");
            assert_error(
                &err,
                Code::PermissionDenied,
                "ROLE_NOT_ALLOWED",
                None,
                t.label,
            );
        }
        let err = call(None).await.expect_err("no principal");
        assert_eq!(err.code(), Code::Unauthenticated, "{}", t.label);
        for who in [auditor(), user("adm-1", Role::Admin, &[], None)] {
            call(Some(who)).await.expect("allowed");
        }
    }
}

/// More records than one statement holds are appended in one transaction, all of them; and a
/// batch with a row the database refuses (an id already taken) leaves no row of it behind.
#[tokio::test]
async fn a_large_read_is_logged_all_or_nothing() {
    use unione_registry::storage::access_log::{ROWS_PER_INSERT, Reading, append};
    for t in testing::all().await {
        migrate(&t).await;
        let istat = unione_kit::Istat::parse(SARZANA).expect("a six-digit code");
        let reading = Reading {
            principal: "op-7".to_owned(),
            role: "operator".to_owned(),
            method: LIST_RESIDENTS,
            purpose: String::new(),
        };
        let names: Vec<String> = (0..=2 * ROWS_PER_INSERT)
            .map(|i| format!("comuni/{SARZANA}/residents/r{i}"))
            .collect();
        let records: Vec<&str> = names.iter().map(String::as_str).collect();
        append(&t.db, &istat, &reading, now_micros(), &records)
            .await
            .expect("appended");
        let expected = i64::try_from(records.len()).expect("few");
        assert_eq!(rows(&t).await, expected, "{}", t.label);

        // A trigger made for the test refuses one record of the last statement.
        let refuse: &[&'static str] = if t.label == "postgres" {
            &[
                "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.record = 'poison' THEN RAISE EXCEPTION 'poison'; END IF; \
                 RETURN NEW; END $$",
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON registry_access_log \
                 FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
            ]
        } else {
            &[
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON registry_access_log \
               WHEN NEW.record = 'poison' BEGIN SELECT RAISE(ABORT, 'poison'); END",
            ]
        };
        for sql in refuse {
            sqlx::query(*sql)
                .execute(t.db.pool())
                .await
                .expect("the test trigger is created");
        }
        let mut poisoned = records.clone();
        poisoned.push("poison");
        append(&t.db, &istat, &reading, now_micros(), &poisoned)
            .await
            .expect_err("refused");
        assert_eq!(rows(&t).await, expected, "{}: all or nothing", t.label);
    }
}
