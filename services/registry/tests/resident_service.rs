//! ResidentService handlers over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL. The handlers are called directly, with the routing header the gateway sets.

use chrono::NaiveDate;
use tonic::{Code, Request};
use unione_kit::error::reason_and_field;
use unione_kit::names::{ROUTING_HEADER, routed};
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::{ComuneProfile, Istat, Served};
use unione_proto::google::r#type::Date;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::resident_service_server::ResidentService;
use unione_registry::ResidentApi;
use unione_registry::domain::codice_fiscale;
use unione_registry::storage;

const SARZANA: &str = "011027";
const ARCOLA: &str = "011002";
const LUNI: &str = "011020";

fn profile(istat: &str, name: &str, cadastral: &str) -> ComuneProfile {
    ComuneProfile {
        istat: Istat::parse(istat).expect("a six-digit code"),
        name: name.to_owned(),
        fiscal_code: format!("001{istat}00"),
        cadastral_code: cadastral.to_owned(),
        segregation_code: "01".to_owned(),
        ipa_code: format!("c_{istat}"),
        population: 20_000,
    }
}

/// This node runs the registry of Sarzana and Arcola, not Luni.
fn served() -> Served {
    Served::new([
        profile(SARZANA, "Sarzana", "I449"),
        profile(ARCOLA, "Arcola", "A373"),
    ])
}

async fn api(t: &TestDatabase) -> ResidentApi {
    t.db.migrate(&unione_registry::migrations())
        .await
        .expect("registry migrations apply");
    ResidentApi::new(t.db.clone(), served())
}

fn date(y: i32, m: i32, d: i32) -> Option<Date> {
    Some(Date {
        year: y,
        month: m,
        day: d,
    })
}

/// A resident with a codice fiscale computed from their data.
fn person(family: &str, given: &str, (y, m, d): (i32, u32, u32), female: bool) -> pb::Resident {
    let birth = NaiveDate::from_ymd_opt(y, m, d).expect("a real date");
    pb::Resident {
        codice_fiscale: codice_fiscale::compute(family, given, birth, female, "I449"),
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        birth_date: date(
            y,
            i32::try_from(m).expect("month"),
            i32::try_from(d).expect("day"),
        ),
        birth_place_code: "I449".to_owned(),
        sex: if female {
            pb::Sex::Female
        } else {
            pb::Sex::Male
        }
        .into(),
        citizenship: "IT".to_owned(),
        address: Some(pb::Address {
            street: "Via Mazzini".to_owned(),
            house_number: "12/A".to_owned(),
            postal_code: "19038".to_owned(),
            locality: String::new(),
        }),
        registration_date: date(2015, 3, 2),
        registration_reason: pb::RegistrationReason::ImmigrationFromComune.into(),
        ..Default::default()
    }
}

fn rossi() -> pb::Resident {
    person("Rossi", "Mario", (1980, 1, 1), false)
}

fn create(
    istat: &str,
    resident: pb::Resident,
    request_id: &str,
) -> Request<pb::CreateResidentRequest> {
    routed(
        istat,
        pb::CreateResidentRequest {
            parent: format!("comuni/{istat}"),
            resident: Some(resident),
            request_id: request_id.to_owned(),
        },
    )
}

fn list(istat: &str, page_size: i32, page_token: &str) -> Request<pb::ListResidentsRequest> {
    routed(
        istat,
        pb::ListResidentsRequest {
            parent: format!("comuni/{istat}"),
            page_size,
            page_token: page_token.to_owned(),
            ..pb::ListResidentsRequest::default()
        },
    )
}

fn get(istat: &str, name: &str) -> Request<pb::GetResidentRequest> {
    routed(
        istat,
        pb::GetResidentRequest {
            name: name.to_owned(),
        },
    )
}

async fn count(t: &TestDatabase, istat: &str) -> i64 {
    storage::count_residents(&t.db, &Istat::parse(istat).expect("an ISTAT code"))
        .await
        .expect("counts")
}

async fn idempotency_keys(t: &TestDatabase) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys")
        .fetch_one(t.db.pool())
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

/// Create, get, and list across pages in name order (family name, given name, id; case and
/// accents ignored), each comune seeing only its own residents.
#[tokio::test]
async fn create_get_and_list_across_pages() {
    for t in testing::all().await {
        let api = api(&t).await;
        let label = t.label;
        let people = [
            person("Rossi", "Mario", (1980, 1, 1), false),
            person("Bianchi", "Maria", (1990, 5, 15), true),
            person("de Luca", "Anna", (1945, 7, 20), true),
            person("D'Angelo", "Luca", (1999, 9, 30), false),
            person("Rossi", "Anna", (1981, 2, 3), true),
            person("Èrcoli", "Pietro", (1970, 12, 31), false),
            person("Verdi", "Giuseppe", (2001, 10, 10), false),
        ];
        let mut created = Vec::new();
        for p in &people {
            let r = api
                .create_resident(create(SARZANA, p.clone(), ""))
                .await
                .unwrap_or_else(|e| panic!("{label}: creates: {e:?}"))
                .into_inner();
            assert!(r.name.starts_with("comuni/011027/residents/"), "{}", r.name);
            let id = r.name.rsplit('/').next().expect("an id");
            assert_eq!(id.len(), 32, "an opaque id");
            assert!(
                !r.name.contains(&p.codice_fiscale),
                "the id is never the codice fiscale"
            );
            assert_eq!(r.codice_fiscale, p.codice_fiscale);
            assert_eq!(r.birth_date, p.birth_date);
            assert_eq!(r.address, p.address);
            assert!(r.create_time.is_some() && !r.etag.is_empty());
            created.push(r);
        }
        // Arcola's resident is kept apart.
        api.create_resident(create(
            ARCOLA,
            person("Abate", "Zeno", (1960, 6, 6), false),
            "",
        ))
        .await
        .unwrap_or_else(|e| panic!("{label}: creates in Arcola: {e:?}"));

        for r in &created {
            let got = api
                .get_resident(get(SARZANA, &r.name))
                .await
                .unwrap_or_else(|e| panic!("{label}: gets: {e:?}"))
                .into_inner();
            assert_eq!(&got, r, "{label}: Get returns what Create returned");
        }

        let mut listed = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = api
                .list_residents(list(SARZANA, 3, &token))
                .await
                .unwrap_or_else(|e| panic!("{label}: lists: {e:?}"))
                .into_inner();
            pages += 1;
            assert!(page.residents.len() <= 3);
            listed.extend(page.residents);
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
            assert!(pages < 10, "{label}: pagination ends");
        }
        assert_eq!(pages, 3, "{label}: 7 residents in pages of 3");
        let names: Vec<(String, String)> = listed
            .iter()
            .map(|r| (r.family_name.clone(), r.given_name.clone()))
            .collect();
        let expected: Vec<(String, String)> = [
            ("Bianchi", "Maria"),
            ("D'Angelo", "Luca"),
            ("de Luca", "Anna"),
            ("Èrcoli", "Pietro"),
            ("Rossi", "Anna"),
            ("Rossi", "Mario"),
            ("Verdi", "Giuseppe"),
        ]
        .iter()
        .map(|(f, g)| ((*f).to_owned(), (*g).to_owned()))
        .collect();
        assert_eq!(
            names, expected,
            "{label}: name order, case and accents ignored"
        );
        let mut ids: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 7, "{label}: every resident exactly once");

        // One page with everything, the default size.
        let all = api
            .list_residents(list(SARZANA, 0, ""))
            .await
            .expect("lists")
            .into_inner();
        assert_eq!(all.residents.len(), 7);
        assert!(all.next_page_token.is_empty());
        let arcola = api
            .list_residents(list(ARCOLA, 0, ""))
            .await
            .expect("lists")
            .into_inner();
        assert_eq!(
            arcola.residents.len(),
            1,
            "{label}: Arcola sees only its own"
        );

        // A Sarzana page token is not valid for Arcola (AIP-158: tokens are bound to their
        // request).
        let first = api
            .list_residents(list(SARZANA, 2, ""))
            .await
            .expect("lists")
            .into_inner();
        let err = api
            .list_residents(list(ARCOLA, 2, &first.next_page_token))
            .await
            .expect_err("a token of another parent");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_PAGE_TOKEN",
            Some("page_token"),
            label,
        );
        let err = api
            .list_residents(list(SARZANA, -1, ""))
            .await
            .expect_err("negative");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_PAGE_SIZE",
            Some("page_size"),
            label,
        );

        // A Sarzana record cannot be read as Arcola's.
        let id = created[0].name.rsplit('/').next().expect("an id");
        let foreign = format!("comuni/{ARCOLA}/residents/{id}");
        let err = api
            .get_resident(get(ARCOLA, &foreign))
            .await
            .expect_err("not Arcola's");
        assert_error(
            &err,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("name"),
            label,
        );
        let err = api
            .get_resident(get(SARZANA, "comuni/011027/residents"))
            .await
            .expect_err("malformed");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_RESOURCE_NAME",
            Some("name"),
            label,
        );
    }
}

/// DOMAIN.md "Check digits": a codice fiscale with a wrong check letter is INVALID_ARGUMENT
/// on `resident.codice_fiscale`, and nothing is written (no record, no idempotency key).
#[tokio::test]
async fn a_bad_codice_fiscale_is_refused_and_writes_nothing() {
    for t in testing::all().await {
        let api = api(&t).await;
        let mut bad = rossi();
        bad.codice_fiscale = "RSSMRA80A01H501A".to_owned(); // the check letter is U
        let err = api
            .create_resident(create(SARZANA, bad, "req-bad-cf"))
            .await
            .expect_err("refused");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_CODICE_FISCALE",
            Some("resident.codice_fiscale"),
            t.label,
        );
        assert!(
            !err.message().contains("RSSMRA"),
            "the message never repeats the codice fiscale"
        );

        // Valid, but another birth day than the one given.
        let mut mismatch = rossi();
        mismatch.birth_date = date(1980, 1, 2);
        let err = api
            .create_resident(create(SARZANA, mismatch, "req-mismatch"))
            .await
            .expect_err("refused");
        assert_error(
            &err,
            Code::InvalidArgument,
            "CODICE_FISCALE_MISMATCH",
            Some("resident.codice_fiscale"),
            t.label,
        );

        let mut no_sex = rossi();
        no_sex.sex = pb::Sex::Unspecified.into();
        let err = api
            .create_resident(create(SARZANA, no_sex, ""))
            .await
            .expect_err("refused");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("resident.sex"),
            t.label,
        );
        let mut unknown = rossi();
        unknown.registration_reason = 99;
        let err = api
            .create_resident(create(SARZANA, unknown, ""))
            .await
            .expect_err("refused");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_ENUM_VALUE",
            Some("resident.registration_reason"),
            t.label,
        );
        let err = api
            .create_resident(routed(
                SARZANA,
                pb::CreateResidentRequest {
                    parent: format!("comuni/{SARZANA}"),
                    resident: None,
                    request_id: String::new(),
                },
            ))
            .await
            .expect_err("refused");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("resident"),
            t.label,
        );

        assert_eq!(count(&t, SARZANA).await, 0, "{}: nothing written", t.label);
        assert_eq!(idempotency_keys(&t).await, 0, "{}: no key claimed", t.label);
        // The same request id is free for a corrected request.
        api.create_resident(create(SARZANA, rossi(), "req-bad-cf"))
            .await
            .unwrap_or_else(|e| panic!("{}: the corrected request succeeds: {e:?}", t.label));
    }
}

/// AIP-4222: a call whose routing header names another comune than its body is refused with
/// ROUTING_MISMATCH and changes nothing, in either comune; one without the header is refused.
#[tokio::test]
async fn a_call_routed_for_another_comune_is_refused() {
    for t in testing::all().await {
        let api = api(&t).await;
        let mut request = create(SARZANA, rossi(), "req-routing");
        request.metadata_mut().insert(
            ROUTING_HEADER,
            format!("comune=comuni%2F{ARCOLA}").parse().expect("ASCII"),
        );
        let err = api.create_resident(request).await.expect_err("refused");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("parent"),
            t.label,
        );

        let mut request = list(SARZANA, 0, "");
        request.metadata_mut().insert(
            ROUTING_HEADER,
            format!("comune=comuni%2F{ARCOLA}").parse().expect("ASCII"),
        );
        let err = api.list_residents(request).await.expect_err("refused");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("parent"),
            t.label,
        );

        let mut request = get(SARZANA, "comuni/011027/residents/0123");
        request.metadata_mut().insert(
            ROUTING_HEADER,
            format!("comune=comuni%2F{ARCOLA}").parse().expect("ASCII"),
        );
        let err = api.get_resident(request).await.expect_err("refused");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("name"),
            t.label,
        );

        let err = api
            .create_resident(Request::new(pb::CreateResidentRequest {
                parent: format!("comuni/{SARZANA}"),
                resident: Some(rossi()),
                request_id: String::new(),
            }))
            .await
            .expect_err("no header");
        assert_error(
            &err,
            Code::InvalidArgument,
            "ROUTING_HEADER_MISSING",
            Some(ROUTING_HEADER),
            t.label,
        );

        assert_eq!(count(&t, SARZANA).await, 0, "{}", t.label);
        assert_eq!(count(&t, ARCOLA).await, 0, "{}", t.label);
        assert_eq!(idempotency_keys(&t).await, 0, "{}", t.label);
    }
}

/// A node answers only for the comuni it serves: Luni's registry is not run here.
#[tokio::test]
async fn a_comune_not_served_is_refused() {
    for t in testing::all().await {
        let api = api(&t).await;
        let err = api
            .create_resident(create(LUNI, rossi(), ""))
            .await
            .expect_err("refused");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("parent"),
            t.label,
        );
        let err = api
            .list_residents(list(LUNI, 0, ""))
            .await
            .expect_err("refused");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("parent"),
            t.label,
        );
        let err = api
            .get_resident(get(LUNI, "comuni/011020/residents/0123"))
            .await
            .expect_err("refused");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("name"),
            t.label,
        );
        assert_eq!(count(&t, LUNI).await, 0, "{}", t.label);
    }
}

/// DOMAIN.md "Idempotency keys" (AIP-155): a retry with the same request_id gets the first
/// response and creates nothing more; the same request_id with another request is refused.
#[tokio::test]
async fn an_idempotent_retry_returns_the_same_resident() {
    for t in testing::all().await {
        let api = api(&t).await;
        let first = api
            .create_resident(create(SARZANA, rossi(), "req-1"))
            .await
            .unwrap_or_else(|e| panic!("{}: creates: {e:?}", t.label))
            .into_inner();
        // The output-only fields a client may echo back are ignored, also by the fingerprint.
        let mut echoed = rossi();
        echoed.name = first.name.clone();
        echoed.etag = "whatever".to_owned();
        let retry = api
            .create_resident(create(SARZANA, echoed, "req-1"))
            .await
            .unwrap_or_else(|e| panic!("{}: the retry succeeds: {e:?}", t.label))
            .into_inner();
        assert_eq!(retry, first, "{}: the first response is replayed", t.label);
        assert_eq!(count(&t, SARZANA).await, 1, "{}: one row", t.label);

        let mut other = rossi();
        other.address = Some(pb::Address {
            street: "Via Variante Aurelia".to_owned(),
            house_number: "1".to_owned(),
            postal_code: "19038".to_owned(),
            locality: "San Lazzaro".to_owned(),
        });
        let err = api
            .create_resident(create(SARZANA, other, "req-1"))
            .await
            .expect_err("a reused key");
        assert_error(
            &err,
            Code::AlreadyExists,
            "IDEMPOTENCY_KEY_REUSED",
            Some("request_id"),
            t.label,
        );
        assert_eq!(count(&t, SARZANA).await, 1, "{}: still one row", t.label);

        // The same key in another comune is another key.
        api.create_resident(create(ARCOLA, rossi(), "req-1"))
            .await
            .unwrap_or_else(|e| panic!("{}: another comune's key space: {e:?}", t.label));
        assert_eq!(count(&t, ARCOLA).await, 1, "{}", t.label);
    }
}

/// A codice fiscale is resident at most once in a comune (RESIDENT_ALREADY_REGISTERED,
/// ALREADY_EXISTS); another comune's register is apart.
#[tokio::test]
async fn a_resident_is_registered_once_per_comune() {
    for t in testing::all().await {
        let api = api(&t).await;
        api.create_resident(create(SARZANA, rossi(), ""))
            .await
            .unwrap_or_else(|e| panic!("{}: creates: {e:?}", t.label));
        let mut again = rossi();
        again.codice_fiscale = again.codice_fiscale.to_lowercase(); // the same code, typed
        let err = api
            .create_resident(create(SARZANA, again, "req-again"))
            .await
            .expect_err("already resident");
        assert_error(
            &err,
            Code::AlreadyExists,
            "RESIDENT_ALREADY_REGISTERED",
            Some("resident.codice_fiscale"),
            t.label,
        );
        assert_eq!(count(&t, SARZANA).await, 1, "{}", t.label);
        assert_eq!(
            idempotency_keys(&t).await,
            0,
            "{}: a refused create releases its key",
            t.label
        );
    }
}

fn search(
    istat: &str,
    cf: &str,
    prefix: &str,
    page_size: i32,
    token: &str,
) -> Request<pb::ListResidentsRequest> {
    routed(
        istat,
        pb::ListResidentsRequest {
            parent: format!("comuni/{istat}"),
            page_size,
            page_token: token.to_owned(),
            codice_fiscale: cf.to_owned(),
            family_name_prefix: prefix.to_owned(),
        },
    )
}

fn families(page: &pb::ListResidentsResponse) -> Vec<String> {
    page.residents
        .iter()
        .map(|r| r.family_name.clone())
        .collect()
}

/// Search by codice fiscale and by family-name prefix (issue 3: "Search by codice fiscale and
/// by surname prefix, paginated"): a prefix is compared as the list is ordered, upper case
/// and accents folded, and pages stay within the search.
#[tokio::test]
async fn residents_are_found_by_codice_fiscale_and_by_surname_prefix() {
    for t in testing::all().await {
        let api = api(&t).await;
        let people = [
            person("Rossi", "Mario", (1980, 1, 1), false),
            person("Rossetti", "Anna", (1985, 5, 5), true),
            person("Rossini", "Luca", (1990, 9, 9), false),
            person("Bianchi", "Carla", (1970, 7, 7), true),
            person("Dè Santis", "Piero", (1960, 6, 6), false),
        ];
        for (i, p) in people.iter().enumerate() {
            api.create_resident(create(SARZANA, p.clone(), &format!("search-{i}")))
                .await
                .expect("created");
        }

        // By codice fiscale, typed in lower case with spaces: exactly that person.
        let cf = people[3].codice_fiscale.to_lowercase();
        let found = api
            .list_residents(search(SARZANA, &format!(" {cf} "), "", 10, ""))
            .await
            .expect("searched")
            .into_inner();
        assert_eq!(families(&found), ["Bianchi"], "{}", t.label);
        // A valid code of nobody here: an empty page, not an error.
        let nobody = codice_fiscale::compute(
            "Verdi",
            "Gino",
            NaiveDate::from_ymd_opt(1950, 2, 2).expect("date"),
            false,
            "I449",
        );
        let none = api
            .list_residents(search(SARZANA, &nobody, "", 10, ""))
            .await
            .expect("searched")
            .into_inner();
        assert!(none.residents.is_empty());

        // By prefix, case- and accent-insensitive, paginated within the search.
        let first = api
            .list_residents(search(SARZANA, "", "ros", 2, ""))
            .await
            .expect("searched")
            .into_inner();
        assert_eq!(families(&first), ["Rossetti", "Rossi"], "{}", t.label);
        assert!(!first.next_page_token.is_empty());
        let second = api
            .list_residents(search(SARZANA, "", "ros", 2, &first.next_page_token))
            .await
            .expect("next page")
            .into_inner();
        assert_eq!(families(&second), ["Rossini"]);
        assert!(second.next_page_token.is_empty());
        let accented = api
            .list_residents(search(SARZANA, "", "de s", 10, ""))
            .await
            .expect("searched")
            .into_inner();
        assert_eq!(families(&accented), ["Dè Santis"]);
        // A page token of one search is no good for another.
        let err = api
            .list_residents(search(SARZANA, "", "bia", 2, &first.next_page_token))
            .await
            .expect_err("token of another search");
        assert_eq!(err.code(), Code::InvalidArgument);

        // Bad searches are refused, naming the field.
        let err = api
            .list_residents(search(SARZANA, "RSSMRA80A01I449X", "", 10, ""))
            .await
            .expect_err("bad check letter");
        assert_eq!(
            reason_and_field(&err),
            (
                "INVALID_CODICE_FISCALE".to_owned(),
                Some("codice_fiscale".to_owned())
            )
        );
        let err = api
            .list_residents(search(SARZANA, &cf, "ros", 10, ""))
            .await
            .expect_err("both filters");
        assert_eq!(
            reason_and_field(&err),
            (
                "CONFLICTING_FILTERS".to_owned(),
                Some("family_name_prefix".to_owned())
            )
        );
        let err = api
            .list_residents(search(SARZANA, "", &"R".repeat(101), 10, ""))
            .await
            .expect_err("too long");
        assert_eq!(reason_and_field(&err).0, "PREFIX_TOO_LONG");
        // Another comune's residents are not found from here.
        let elsewhere = api
            .list_residents(search(ARCOLA, "", "ros", 10, ""))
            .await
            .expect("searched")
            .into_inner();
        assert!(elsewhere.residents.is_empty());
    }
}
