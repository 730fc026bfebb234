//! KpiService handlers over real storage, on SQLite and (with `TEST_DATABASE_URL`) PostgreSQL.
//! The handlers are called directly, with the routing header the gateway sets.

use std::collections::BTreeSet;

use tonic::{Code, Request};
use unione_kit::error::reason_and_field;
use unione_kit::names::{ROUTING_HEADER, routed};
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::{ComuneProfile, Istat, Served};
use unione_proto::quality::v1 as pb;
use unione_proto::quality::v1::kpi_service_server::KpiService;
use unione_quality::KpiApi;
use unione_quality::domain::{self, STANDARD_KPIS};
use unione_quality::storage;

const SARZANA: &str = "011027";
const ARCOLA: &str = "011002";
const LUNI: &str = "011020";

fn profile(istat: &str, name: &str, population: i64) -> ComuneProfile {
    ComuneProfile {
        istat: Istat::parse(istat).expect("a six-digit code"),
        name: name.to_owned(),
        fiscal_code: format!("001{istat}00"),
        cadastral_code: "I449".to_owned(),
        segregation_code: "01".to_owned(),
        ipa_code: format!("c_{istat}"),
        population,
    }
}

/// This node serves the quality office of Sarzana and Arcola, not Luni.
fn served() -> Served {
    Served::new([
        profile(SARZANA, "Sarzana", 21_800),
        profile(ARCOLA, "Arcola", 10_200),
    ])
}

async fn api(t: &TestDatabase) -> KpiApi {
    t.db.migrate(&unione_quality::migrations())
        .await
        .expect("quality migrations apply");
    KpiApi::new(t.db.clone(), served())
}

fn kpi_name(istat: &str, kpi: &str) -> String {
    format!("comuni/{istat}/kpis/{kpi}")
}

fn create(
    istat: &str,
    kpi: &str,
    period: &str,
    status: pb::measurement::Status,
    value: f64,
    request_id: &str,
) -> Request<pb::CreateMeasurementRequest> {
    routed(
        istat,
        pb::CreateMeasurementRequest {
            parent: kpi_name(istat, kpi),
            measurement: Some(pb::Measurement {
                period: period.to_owned(),
                value,
                status: status.into(),
                ..Default::default()
            }),
            request_id: request_id.to_owned(),
        },
    )
}

fn ok(istat: &str, kpi: &str, period: &str, value: f64) -> Request<pb::CreateMeasurementRequest> {
    create(istat, kpi, period, pb::measurement::Status::Ok, value, "")
}

fn list_measurements(
    istat: &str,
    kpi: &str,
    page_size: i32,
    page_token: &str,
) -> Request<pb::ListMeasurementsRequest> {
    routed(
        istat,
        pb::ListMeasurementsRequest {
            parent: kpi_name(istat, kpi),
            page_size,
            page_token: page_token.to_owned(),
        },
    )
}

async fn all_measurements(api: &KpiApi, istat: &str, kpi: &str) -> Vec<pb::Measurement> {
    api.list_measurements(list_measurements(istat, kpi, 0, ""))
        .await
        .expect("lists")
        .into_inner()
        .measurements
}

async fn count(t: &TestDatabase, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.db.pool())
        .await
        .expect("counts")
}

/// Asserts the gRPC code and the `ErrorInfo` reason and field (AIP-193).
#[track_caller]
fn assert_error(status: &tonic::Status, code: Code, reason: &str, field: Option<&str>, ctx: &str) {
    assert_eq!(status.code(), code, "{ctx}: {status:?}");
    let (got_reason, got_field) = reason_and_field(status);
    assert_eq!(got_reason, reason, "{ctx}: {status:?}");
    assert_eq!(got_field.as_deref(), field, "{ctx}: {status:?}");
}

/// kpis.proto ListKpis: the standard catalogue, the same ids on every node and for every
/// comune, ordered by id, in pages (AIP-158) whose tokens belong to their parent.
#[tokio::test]
async fn list_kpis_pages_through_the_standard_catalogue_for_any_served_comune() {
    for t in testing::all().await {
        let api = api(&t).await;
        let expected: Vec<&str> = STANDARD_KPIS.iter().map(|k| k.id.as_ref()).collect();
        for istat in [SARZANA, ARCOLA] {
            let mut ids = Vec::new();
            let mut token = String::new();
            let mut pages = 0;
            loop {
                let page = api
                    .list_kpis(routed(
                        istat,
                        pb::ListKpisRequest {
                            parent: format!("comuni/{istat}"),
                            page_size: 5,
                            page_token: token.clone(),
                        },
                    ))
                    .await
                    .expect("lists")
                    .into_inner();
                pages += 1;
                assert!(page.kpis.len() <= 5, "{}", t.label);
                for kpi in &page.kpis {
                    assert_eq!(kpi.name, kpi_name(istat, &kpi.kpi_id), "{}", t.label);
                    assert!(kpi.standard, "{}", t.label);
                }
                ids.extend(page.kpis.into_iter().map(|k| k.kpi_id));
                token = page.next_page_token;
                if token.is_empty() {
                    break;
                }
            }
            assert_eq!(ids, expected, "{} {istat}", t.label);
            assert_eq!(pages, STANDARD_KPIS.len().div_ceil(5), "{}", t.label);
        }

        // A token is scoped to its parent.
        let first = api
            .list_kpis(routed(
                SARZANA,
                pb::ListKpisRequest {
                    parent: format!("comuni/{SARZANA}"),
                    page_size: 2,
                    page_token: String::new(),
                },
            ))
            .await
            .expect("lists")
            .into_inner();
        assert!(!first.next_page_token.is_empty());
        let err = api
            .list_kpis(routed(
                ARCOLA,
                pb::ListKpisRequest {
                    parent: format!("comuni/{ARCOLA}"),
                    page_size: 2,
                    page_token: first.next_page_token,
                },
            ))
            .await
            .expect_err("another parent's token");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_PAGE_TOKEN",
            Some("page_token"),
            t.label,
        );
        let err = api
            .list_kpis(routed(
                SARZANA,
                pb::ListKpisRequest {
                    parent: format!("comuni/{SARZANA}"),
                    page_size: -1,
                    page_token: String::new(),
                },
            ))
            .await
            .expect_err("negative page size");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_PAGE_SIZE",
            Some("page_size"),
            t.label,
        );
    }
}

/// kpis.proto ListKpis: "the federation's standard catalogue and its local KPIs, ordered by KPI
/// id"; a comune's own KPIs are its alone.
#[tokio::test]
async fn local_kpis_merge_into_their_comunes_catalogue_only() {
    for t in testing::all().await {
        let api = api(&t).await;
        let sarzana = Istat::parse(SARZANA).expect("valid");
        let mut local = domain::standard_kpi("UQ0008").expect("standard").clone();
        local.standard = false;
        for id in ["AA_SPIAGGE", "ZZ_VERDE"] {
            local.id = id.to_owned().into();
            domain::check_local_kpi(&local).expect("a valid local KPI");
            assert!(
                storage::insert_local_kpi(&t.db, &sarzana, &local, 1)
                    .await
                    .expect("inserts"),
                "{}",
                t.label
            );
        }
        assert!(
            !storage::insert_local_kpi(&t.db, &sarzana, &local, 2)
                .await
                .expect("a duplicate is not an error"),
            "{}: a duplicate id inserts nothing",
            t.label
        );

        let mut ids = Vec::new();
        let mut token = String::new();
        loop {
            let page = api
                .list_kpis(routed(
                    SARZANA,
                    pb::ListKpisRequest {
                        parent: format!("comuni/{SARZANA}"),
                        page_size: 3,
                        page_token: token,
                    },
                ))
                .await
                .expect("lists")
                .into_inner();
            ids.extend(page.kpis.into_iter().map(|k| (k.kpi_id, k.standard)));
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(ids.len(), STANDARD_KPIS.len() + 2, "{}", t.label);
        assert_eq!(ids[0], ("AA_SPIAGGE".to_owned(), false), "{}", t.label);
        assert_eq!(
            ids.last(),
            Some(&("ZZ_VERDE".to_owned(), false)),
            "{}",
            t.label
        );
        let sorted: Vec<_> = ids.iter().map(|(id, _)| id.clone()).collect();
        let mut resorted = sorted.clone();
        resorted.sort();
        assert_eq!(sorted, resorted, "{}", t.label);

        let got = api
            .get_kpi(routed(
                SARZANA,
                pb::GetKpiRequest {
                    name: kpi_name(SARZANA, "ZZ_VERDE"),
                },
            ))
            .await
            .expect("Sarzana's own KPI")
            .into_inner();
        assert!(!got.standard);
        // Arcola neither lists nor sees it.
        let arcola = api
            .list_kpis(routed(
                ARCOLA,
                pb::ListKpisRequest {
                    parent: format!("comuni/{ARCOLA}"),
                    page_size: 100,
                    page_token: String::new(),
                },
            ))
            .await
            .expect("lists")
            .into_inner();
        assert_eq!(arcola.kpis.len(), STANDARD_KPIS.len(), "{}", t.label);
        let err = api
            .get_kpi(routed(
                ARCOLA,
                pb::GetKpiRequest {
                    name: kpi_name(ARCOLA, "ZZ_VERDE"),
                },
            ))
            .await
            .expect_err("another comune's KPI");
        assert_error(
            &err,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("name"),
            t.label,
        );
    }
}

/// kpis.proto GetKpi: every field of the catalogue reaches the wire; an unknown KPI is
/// NOT_FOUND, a malformed name INVALID_ARGUMENT.
#[tokio::test]
async fn get_kpi_returns_the_catalogue_entry_or_not_found() {
    for t in testing::all().await {
        let api = api(&t).await;
        let kpi = api
            .get_kpi(routed(
                ARCOLA,
                pb::GetKpiRequest {
                    name: kpi_name(ARCOLA, "UQ0006"),
                },
            ))
            .await
            .expect("a standard KPI")
            .into_inner();
        let want = domain::standard_kpi("UQ0006").expect("standard");
        assert_eq!(kpi.name, "comuni/011002/kpis/UQ0006");
        assert_eq!(kpi.kpi_id, "UQ0006");
        assert_eq!(kpi.title, want.title);
        assert_eq!(kpi.definition, want.definition);
        assert_eq!(kpi.unit, "count");
        assert_eq!(kpi.polarity(), pb::kpi::Polarity::LowerIsBetter);
        assert_eq!(
            kpi.normalisation(),
            pb::kpi::Normalisation::Per1000Inhabitants
        );
        assert_eq!(kpi.period(), pb::kpi::Period::Year);
        assert_eq!(kpi.source(), pb::kpi::Source::Reported);
        assert_eq!((kpi.target, kpi.tolerance), (want.target, want.tolerance));
        assert_eq!(kpi.owner_office, want.owner_office);
        assert!(kpi.standard);

        let err = api
            .get_kpi(routed(
                ARCOLA,
                pb::GetKpiRequest {
                    name: kpi_name(ARCOLA, "UQ9999"),
                },
            ))
            .await
            .expect_err("unknown");
        assert_error(
            &err,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("name"),
            t.label,
        );
        let err = api
            .get_kpi(routed(
                ARCOLA,
                pb::GetKpiRequest {
                    name: "comuni/011002/kpi/UQ0001".to_owned(),
                },
            ))
            .await
            .expect_err("malformed");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_RESOURCE_NAME",
            Some("name"),
            t.label,
        );
    }
}

/// DOMAIN.md "Quality and benchmarks" / kpis.proto CreateMeasurement: "a second call for the
/// same period corrects the value; the earlier value is kept in the history". Recording the
/// same reading again is no correction.
#[tokio::test]
async fn a_correction_keeps_the_earlier_value_in_the_history() {
    for t in testing::all().await {
        let api = api(&t).await;
        let first = api
            .create_measurement(ok(SARZANA, "UQ0001", "2026-Q1", 91.5))
            .await
            .expect("records")
            .into_inner();
        assert_eq!(
            first.name, "comuni/011027/kpis/UQ0001/measurements/2026-Q1",
            "{}",
            t.label
        );
        assert_eq!((first.revision, first.value), (1, 91.5), "{}", t.label);
        assert_eq!(first.status(), pb::measurement::Status::Ok);
        assert!(first.update_time.is_some());

        let second = api
            .create_measurement(ok(SARZANA, "UQ0001", "2026-Q1", 93.0))
            .await
            .expect("corrects")
            .into_inner();
        assert_eq!((second.revision, second.value), (2, 93.0), "{}", t.label);

        let listed = all_measurements(&api, SARZANA, "UQ0001").await;
        assert_eq!(listed.len(), 1, "{}", t.label);
        assert_eq!(listed[0], second, "{}", t.label);

        let sarzana = Istat::parse(SARZANA).expect("valid");
        let history = storage::measurement_history(&t.db, &sarzana, "UQ0001", "2026-Q1")
            .await
            .expect("reads");
        assert_eq!(history.len(), 1, "{}", t.label);
        assert_eq!(
            (history[0].revision, history[0].value),
            (1, Some(91.5)),
            "{}",
            t.label
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_measurement_history").await,
            1,
            "{}",
            t.label
        );

        // The same reading again changes nothing.
        let same = api
            .create_measurement(ok(SARZANA, "UQ0001", "2026-Q1", 93.0))
            .await
            .expect("no-op")
            .into_inner();
        assert_eq!(same, second, "{}", t.label);
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_measurement_history").await,
            1,
            "{}",
            t.label
        );

        // A value becoming confidential is a correction too; the history keeps both values.
        let hidden = api
            .create_measurement(create(
                SARZANA,
                "UQ0001",
                "2026-Q1",
                pb::measurement::Status::Confidential,
                0.0,
                "",
            ))
            .await
            .expect("corrects")
            .into_inner();
        assert_eq!(
            (hidden.revision, hidden.value, hidden.status()),
            (3, 0.0, pb::measurement::Status::Confidential),
            "{}",
            t.label
        );
        let history = storage::measurement_history(&t.db, &sarzana, "UQ0001", "2026-Q1")
            .await
            .expect("reads");
        let values: Vec<_> = history.iter().map(|m| (m.revision, m.value)).collect();
        assert_eq!(
            values,
            vec![(1, Some(91.5)), (2, Some(93.0))],
            "{}",
            t.label
        );
    }
}

/// Corrections arriving together each become one revision: none is lost and no revision is
/// superseded twice.
#[tokio::test]
async fn concurrent_corrections_each_take_the_next_revision() {
    for t in testing::all().await {
        let api = api(&t).await;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let api = api.clone();
                tokio::spawn(async move {
                    api.create_measurement(ok(SARZANA, "UQ0009", "2026-10", 10.0 + f64::from(i)))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("joins").expect("records");
        }
        let listed = all_measurements(&api, SARZANA, "UQ0009").await;
        assert_eq!(listed.len(), 1, "{}", t.label);
        assert_eq!(listed[0].revision, 8, "{}", t.label);
        let sarzana = Istat::parse(SARZANA).expect("valid");
        let history = storage::measurement_history(&t.db, &sarzana, "UQ0009", "2026-10")
            .await
            .expect("reads");
        let revisions: Vec<i64> = history.iter().map(|m| m.revision).collect();
        assert_eq!(revisions, (1..=7).collect::<Vec<_>>(), "{}", t.label);
        let mut values: BTreeSet<u64> = history
            .iter()
            .filter_map(|m| m.value.map(f64::to_bits))
            .collect();
        values.insert(listed[0].value.to_bits());
        assert_eq!(values.len(), 8, "{}: every value was kept", t.label);
    }
}

/// Bad input is INVALID_ARGUMENT with its ErrorInfo reason and field (AIP-193), and writes
/// nothing: no measurement, no history, no idempotency key left behind.
#[tokio::test]
async fn invalid_measurements_are_refused_and_write_nothing() {
    use pb::measurement::Status as S;
    for t in testing::all().await {
        let api = api(&t).await;
        let cases = [
            (
                "a month for a quarterly KPI",
                create(SARZANA, "UQ0001", "2026-03", S::Ok, 90.0, "k1"),
                "INVALID_PERIOD",
                "measurement.period",
            ),
            (
                "a quarter for a yearly KPI",
                create(SARZANA, "UQ0008", "2025-Q2", S::Ok, 70.0, "k1"),
                "INVALID_PERIOD",
                "measurement.period",
            ),
            (
                "a period not begun",
                create(SARZANA, "UQ0008", "2999", S::Ok, 70.0, "k1"),
                "PERIOD_NOT_BEGUN",
                "measurement.period",
            ),
            (
                "NaN",
                create(SARZANA, "UQ0008", "2025", S::Ok, f64::NAN, "k1"),
                "INVALID_VALUE",
                "measurement.value",
            ),
            (
                "infinity",
                create(SARZANA, "UQ0002", "2025-Q4", S::Ok, f64::INFINITY, "k1"),
                "INVALID_VALUE",
                "measurement.value",
            ),
            (
                "a percentage of 120",
                create(SARZANA, "UQ0001", "2026-Q1", S::Ok, 120.0, "k1"),
                "VALUE_OUT_OF_RANGE",
                "measurement.value",
            ),
            (
                "a value with status missing",
                create(SARZANA, "UQ0001", "2026-Q1", S::Missing, 5.0, "k1"),
                "VALUE_NOT_ALLOWED",
                "measurement.value",
            ),
            (
                "no status",
                create(SARZANA, "UQ0001", "2026-Q1", S::Unspecified, 5.0, "k1"),
                "FIELD_REQUIRED",
                "measurement.status",
            ),
            (
                "half a complaint",
                create(SARZANA, "UQ0006", "2025", S::Ok, 2.5, "k1"),
                "VALUE_NOT_WHOLE",
                "measurement.value",
            ),
        ];
        for (what, request, reason, field) in cases {
            let err = api.create_measurement(request).await.expect_err(what);
            assert_error(
                &err,
                Code::InvalidArgument,
                reason,
                Some(field),
                &format!("{} {what}", t.label),
            );
        }
        let mut unknown_status = create(SARZANA, "UQ0001", "2026-Q1", S::Ok, 5.0, "k1");
        if let Some(m) = unknown_status.get_mut().measurement.as_mut() {
            m.status = 42;
        }
        let err = api
            .create_measurement(unknown_status)
            .await
            .expect_err("unknown status");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_STATUS",
            Some("measurement.status"),
            t.label,
        );
        let mut no_measurement = create(SARZANA, "UQ0001", "2026-Q1", S::Ok, 5.0, "k1");
        no_measurement.get_mut().measurement = None;
        let err = api
            .create_measurement(no_measurement)
            .await
            .expect_err("no measurement");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("measurement"),
            t.label,
        );
        let err = api
            .create_measurement(create(SARZANA, "UQ9999", "2026-Q1", S::Ok, 5.0, "k1"))
            .await
            .expect_err("unknown KPI");
        assert_error(
            &err,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("parent"),
            t.label,
        );

        for table in [
            count(&t, "SELECT COUNT(*) FROM quality_measurements").await,
            count(&t, "SELECT COUNT(*) FROM quality_measurement_history").await,
            count(&t, "SELECT COUNT(*) FROM idempotency_keys").await,
        ] {
            assert_eq!(table, 0, "{}: nothing written", t.label);
        }
        // The key was never taken, so a corrected request may use it.
        let fixed = api
            .create_measurement(create(SARZANA, "UQ0001", "2026-Q1", S::Ok, 90.0, "k1"))
            .await
            .expect("a valid request with the same key")
            .into_inner();
        assert_eq!(fixed.revision, 1, "{}", t.label);
    }
}

/// AIP-4222: the routing header must name the comune of the body, and a node acts only for
/// the comuni it serves (kit `Served::check`); neither refusal writes anything.
#[tokio::test]
async fn calls_for_another_or_an_unserved_comune_are_refused() {
    for t in testing::all().await {
        let api = api(&t).await;
        // Routed for Arcola, body for Sarzana.
        let mut request = ok(SARZANA, "UQ0001", "2026-Q1", 90.0);
        request.metadata_mut().insert(
            ROUTING_HEADER,
            "comune=comuni%2F011002".parse().expect("ascii"),
        );
        let err = api.create_measurement(request).await.expect_err("mismatch");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("parent"),
            t.label,
        );
        let mut request = routed(
            ARCOLA,
            pb::GetKpiRequest {
                name: kpi_name(SARZANA, "UQ0001"),
            },
        );
        let err = api.get_kpi(request).await.expect_err("mismatch on GetKpi");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("name"),
            t.label,
        );
        request = Request::new(pb::GetKpiRequest {
            name: kpi_name(SARZANA, "UQ0001"),
        });
        let err = api.get_kpi(request).await.expect_err("no header");
        assert_error(
            &err,
            Code::InvalidArgument,
            "ROUTING_HEADER_MISSING",
            Some(ROUTING_HEADER),
            t.label,
        );

        // Luni is a comune, consistently routed, but not served here.
        let err = api
            .create_measurement(ok(LUNI, "UQ0001", "2026-Q1", 90.0))
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
            .list_kpis(routed(
                LUNI,
                pb::ListKpisRequest {
                    parent: format!("comuni/{LUNI}"),
                    ..Default::default()
                },
            ))
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
            .list_measurements(list_measurements(LUNI, "UQ0001", 0, ""))
            .await
            .expect_err("not served");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("parent"),
            t.label,
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_measurements").await,
            0,
            "{}",
            t.label
        );
    }
}

/// Each comune's data is its own: the same KPI and period in two comuni are two measurements,
/// corrected and listed apart, and one comune's page token does not open the other's list.
#[tokio::test]
async fn two_comunis_measurements_stay_apart() {
    for t in testing::all().await {
        let api = api(&t).await;
        api.create_measurement(ok(SARZANA, "UQ0008", "2025", 72.0))
            .await
            .expect("Sarzana");
        api.create_measurement(ok(ARCOLA, "UQ0008", "2025", 64.0))
            .await
            .expect("Arcola");
        api.create_measurement(ok(SARZANA, "UQ0008", "2025", 73.0))
            .await
            .expect("Sarzana corrects");
        api.create_measurement(ok(SARZANA, "UQ0008", "2024", 70.0))
            .await
            .expect("Sarzana, an earlier year");

        let sarzana = all_measurements(&api, SARZANA, "UQ0008").await;
        let arcola = all_measurements(&api, ARCOLA, "UQ0008").await;
        let summary = |ms: &[pb::Measurement]| -> Vec<(String, f64, i32)> {
            ms.iter()
                .map(|m| (m.name.clone(), m.value, m.revision))
                .collect()
        };
        assert_eq!(
            summary(&sarzana),
            vec![
                (
                    "comuni/011027/kpis/UQ0008/measurements/2024".into(),
                    70.0,
                    1
                ),
                (
                    "comuni/011027/kpis/UQ0008/measurements/2025".into(),
                    73.0,
                    2
                ),
            ],
            "{}",
            t.label
        );
        assert_eq!(
            summary(&arcola),
            vec![(
                "comuni/011002/kpis/UQ0008/measurements/2025".into(),
                64.0,
                1
            )],
            "{}",
            t.label
        );
        let arcola_istat = Istat::parse(ARCOLA).expect("valid");
        assert!(
            storage::measurement_history(&t.db, &arcola_istat, "UQ0008", "2025")
                .await
                .expect("reads")
                .is_empty(),
            "{}: Sarzana's correction left Arcola's history alone",
            t.label
        );

        let page = api
            .list_measurements(list_measurements(SARZANA, "UQ0008", 1, ""))
            .await
            .expect("lists")
            .into_inner();
        assert!(!page.next_page_token.is_empty());
        let err = api
            .list_measurements(list_measurements(
                ARCOLA,
                "UQ0008",
                1,
                &page.next_page_token,
            ))
            .await
            .expect_err("another comune's token");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_PAGE_TOKEN",
            Some("page_token"),
            t.label,
        );
    }
}

/// kpis.proto ListMeasurements: ordered by period, in pages; an unknown KPI is NOT_FOUND.
#[tokio::test]
async fn list_measurements_pages_in_period_order() {
    for t in testing::all().await {
        let api = api(&t).await;
        for (period, value) in [
            ("2026-03", 12.0),
            ("2025-12", 18.0),
            ("2026-01", 9.5),
            ("2026-10", 7.0),
            ("2026-02", 11.0),
        ] {
            api.create_measurement(ok(SARZANA, "UQ0009", period, value))
                .await
                .expect("records");
        }
        api.create_measurement(create(
            SARZANA,
            "UQ0009",
            "2026-04",
            pb::measurement::Status::Missing,
            0.0,
            "",
        ))
        .await
        .expect("records a missing value");
        let mut periods = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = api
                .list_measurements(list_measurements(SARZANA, "UQ0009", 2, &token))
                .await
                .expect("lists")
                .into_inner();
            pages += 1;
            periods.extend(page.measurements.into_iter().map(|m| {
                let status = m.status();
                (m.period, status)
            }));
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        use pb::measurement::Status::{Missing, Ok};
        assert_eq!(
            periods,
            vec![
                ("2025-12".to_owned(), Ok),
                ("2026-01".to_owned(), Ok),
                ("2026-02".to_owned(), Ok),
                ("2026-03".to_owned(), Ok),
                ("2026-04".to_owned(), Missing),
                ("2026-10".to_owned(), Ok),
            ],
            "{}",
            t.label
        );
        assert_eq!(pages, 3, "{}", t.label);

        let err = api
            .list_measurements(list_measurements(SARZANA, "UQ0042", 0, ""))
            .await
            .expect_err("unknown KPI");
        assert_error(
            &err,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("parent"),
            t.label,
        );
    }
}

/// DOMAIN.md "Idempotency keys" (AIP-155): a retry under the same request_id replays the first
/// response and records nothing new, even after a later correction; the same key with another
/// body is refused; keys are scoped per comune.
#[tokio::test]
async fn idempotent_retries_replay_and_reused_keys_are_refused() {
    use pb::measurement::Status as S;
    for t in testing::all().await {
        let api = api(&t).await;
        let first = api
            .create_measurement(create(SARZANA, "UQ0003", "2026-Q2", S::Ok, 55.0, "req-a"))
            .await
            .expect("records")
            .into_inner();
        assert_eq!(first.revision, 1);
        let correction = api
            .create_measurement(create(SARZANA, "UQ0003", "2026-Q2", S::Ok, 58.0, "req-b"))
            .await
            .expect("corrects")
            .into_inner();
        assert_eq!(correction.revision, 2);

        // The retry of the first request: its response again, not a third revision back to 55.
        let mut retry = create(SARZANA, "UQ0003", "2026-Q2", S::Ok, 55.0, "req-a");
        if let Some(m) = retry.get_mut().measurement.as_mut() {
            // Output-only fields a client may echo back do not make it another request.
            m.revision = 7;
        }
        let replayed = api
            .create_measurement(retry)
            .await
            .expect("replays")
            .into_inner();
        assert_eq!(replayed, first, "{}", t.label);
        let listed = all_measurements(&api, SARZANA, "UQ0003").await;
        assert_eq!(listed, vec![correction.clone()], "{}", t.label);
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_measurement_history").await,
            1,
            "{}",
            t.label
        );

        let err = api
            .create_measurement(create(SARZANA, "UQ0003", "2026-Q2", S::Ok, 60.0, "req-a"))
            .await
            .expect_err("same key, another body");
        assert_error(
            &err,
            Code::AlreadyExists,
            "IDEMPOTENCY_KEY_REUSED",
            Some("request_id"),
            t.label,
        );
        assert_eq!(
            all_measurements(&api, SARZANA, "UQ0003").await,
            vec![correction],
            "{}: the refused request wrote nothing",
            t.label
        );

        // Arcola's key space is its own.
        let arcola = api
            .create_measurement(create(ARCOLA, "UQ0003", "2026-Q2", S::Ok, 60.0, "req-a"))
            .await
            .expect("another comune, same key")
            .into_inner();
        assert_eq!((arcola.revision, arcola.value), (1, 60.0), "{}", t.label);
    }
}
