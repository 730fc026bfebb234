//! The computed KPIs end to end (DOMAIN.md "Quality and benchmarks"; issue 5, indicators
//! computed from operational data): a node's quality office asks its comuni's own registry and
//! payments services for their figures through the gateway, never their tables, and records
//! the value with its explanation. Ameglia's quality office runs on its own node while its
//! registry runs at the capofila, so its figures cross the federation.
//!
//! The expected values are worked out here from the demo's data as any client reads it: the
//! seed issues three certificates per comune today (kiosk, web, counter), and the debt
//! positions are listed by the operator and summed by hand.

mod common;

use chrono::{Datelike, NaiveDate};
use common::{Proc, bearer, gateway_channel, scratch, unione, wait_for_demo};
use tonic::Code;
use tonic::transport::Channel;
use unione_kit::error::reason_and_field;
use unione_kit::names::{Istat, ROUTING_HEADER, routing_value};
use unione_proto::payments::v1::ListDebtPositionsRequest;
use unione_proto::payments::v1::debt_position::State;
use unione_proto::payments::v1::debt_position_service_client::DebtPositionServiceClient;
use unione_proto::quality::v1::kpi_service_client::KpiServiceClient;
use unione_proto::quality::v1::measurement::Status;
use unione_proto::quality::v1::{ComputeMeasurementRequest, ListMeasurementsRequest, Measurement};
use unione_quality::KpiApi;
use unione_quality::grpc::indicators::OperationalData;

const SARZANA: &str = "011027";
const AMEGLIA: &str = "011001";
const LUNI: &str = "011020";

fn routed<T>(message: T, istat: &str, token: &str) -> tonic::Request<T> {
    let mut request = bearer(message, token);
    request.metadata_mut().insert(
        ROUTING_HEADER,
        routing_value(&Istat::parse(istat).expect("ISTAT"))
            .parse()
            .expect("ASCII"),
    );
    request
}

fn operator<'a>(demo: &'a serde_json::Value, istat: &str) -> &'a str {
    demo["tokens"]["operators"][istat]
        .as_str()
        .expect("an operator token")
}

async fn compute(
    channel: &Channel,
    demo: &serde_json::Value,
    istat: &str,
    kpi: &str,
    period: &str,
) -> Result<Measurement, tonic::Status> {
    KpiServiceClient::new(channel.clone())
        .compute_measurement(routed(
            ComputeMeasurementRequest {
                parent: format!("comuni/{istat}/kpis/{kpi}"),
                period: period.to_owned(),
                request_id: String::new(),
            },
            istat,
            operator(demo, istat),
        ))
        .await
        .map(tonic::Response::into_inner)
}

fn input(m: &Measurement, name: &str) -> f64 {
    m.computation
        .as_ref()
        .expect("a computed measurement carries its computation")
        .inputs
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("input {name} in {m:?}"))
        .value
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The yearly collection rate of `istat` for `year`, summed by hand from its positions.
async fn collection_rate_by_hand(
    channel: &Channel,
    demo: &serde_json::Value,
    istat: &str,
    year: i32,
) -> (i64, i64) {
    let (mut due, mut collected) = (0_i64, 0_i64);
    let mut page_token = String::new();
    loop {
        let page = DebtPositionServiceClient::new(channel.clone())
            .list_debt_positions(routed(
                ListDebtPositionsRequest {
                    parent: format!("comuni/{istat}"),
                    page_size: 500,
                    page_token,
                },
                istat,
                operator(demo, istat),
            ))
            .await
            .expect("positions listed")
            .into_inner();
        for position in page.debt_positions {
            if position.state == State::Invalid as i32 {
                continue;
            }
            for option in &position.payment_options {
                let due_date = option.due_date.as_ref().expect("a due date");
                if due_date.year == year {
                    due += option.amount_cents;
                    if option.paid {
                        collected += option.amount_cents;
                    }
                }
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    (due, collected)
}

/// What a quality node serving Sarzana knows of it.
fn sarzana_served() -> unione_kit::Served {
    unione_kit::Served::new([unione_kit::ComuneProfile {
        istat: Istat::parse(SARZANA).expect("ISTAT"),
        name: "Sarzana".to_owned(),
        fiscal_code: "00203470113".to_owned(),
        cadastral_code: "I449".to_owned(),
        segregation_code: "01".to_owned(),
        ipa_code: "c_i449".to_owned(),
        population: 21_600,
    }])
}

fn quarter(today: NaiveDate) -> String {
    format!("{}-Q{}", today.year(), today.month0() / 3 + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn computed_kpis_come_from_the_services_figures_through_the_gateway() {
    let (_keep, dir) = scratch("indicators");
    let data = dir.join("demo");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let mut cmd = unione();
    cmd.args(["demo", "--data-dir"]).arg(&data).args([
        "--host",
        "127.0.0.46",
        "--base-port",
        "7400",
    ]);
    let mut demo_proc = Proc::spawn("demo", cmd, &logs);
    let demo = wait_for_demo(&data, &mut demo_proc, &logs).await;
    let channel = gateway_channel(&demo).await;
    // The demo seeds in Italian time; a test run just after midnight UTC is the same day there
    // or the next, and both are in the same quarter except on New Year's Eve.
    let today = chrono::Utc::now().date_naive();
    let this_quarter = quarter(today);

    // Certificates issued online or at a kiosk: two of the three issued today, in Sarzana and
    // in Ameglia, whose registry runs on Sarzana's node while its quality office runs on its own.
    for istat in [SARZANA, AMEGLIA] {
        let m = compute(&channel, &demo, istat, "UQ0003", &this_quarter)
            .await
            .unwrap_or_else(|s| panic!("UQ0003 of {istat}: {s:?}"));
        assert_eq!(m.status, Status::Ok as i32, "{m:?}");
        assert_eq!(
            m.value, 66.67,
            "{istat}: 2 of 3 certificates online or at a kiosk"
        );
        assert_eq!(
            (input(&m, "issued"), input(&m, "online"), input(&m, "kiosk")),
            (3.0, 1.0, 1.0)
        );
        let c = m.computation.as_ref().expect("computation");
        assert!(c.method.contains("online + kiosk"), "{}", c.method);
        assert!(
            c.sources[0].starts_with(
                "unione.registry.v1.RegistryStatisticsService/GetCertificateStatistics"
            ),
            "{:?}",
            c.sources
        );
    }

    // The collection rate of the year, against the positions summed by hand.
    let (due, collected) = collection_rate_by_hand(&channel, &demo, LUNI, today.year()).await;
    let m = compute(&channel, &demo, LUNI, "UQ0005", &today.year().to_string())
        .await
        .expect("UQ0005 of Luni");
    assert_eq!(input(&m, "due_amount_cents") as i64, due);
    assert_eq!(input(&m, "collected_amount_cents") as i64, collected);
    if due > 0 {
        #[allow(clippy::cast_precision_loss)]
        let expected = round2(100.0 * collected as f64 / due as f64);
        assert_eq!((m.status, m.value), (Status::Ok as i32, expected));
    } else {
        assert_eq!(m.status, Status::Missing as i32, "nothing due: no value");
    }

    // The computation is kept beside the measurement; computing again with the same figures
    // makes no new revision.
    let again = compute(&channel, &demo, LUNI, "UQ0005", &today.year().to_string())
        .await
        .expect("again");
    assert_eq!(again.revision, m.revision);
    let listed = KpiServiceClient::new(channel.clone())
        .list_measurements(routed(
            ListMeasurementsRequest {
                parent: format!("comuni/{LUNI}/kpis/UQ0005"),
                page_size: 50,
                page_token: String::new(),
            },
            LUNI,
            operator(&demo, LUNI),
        ))
        .await
        .expect("listed")
        .into_inner();
    let row = listed
        .measurements
        .iter()
        .find(|r| r.period == today.year().to_string())
        .expect("the computed measurement is listed");
    assert_eq!(
        row.computation.as_ref().map(|c| &c.inputs),
        m.computation.as_ref().map(|c| &c.inputs),
        "the list shows how the value was computed"
    );

    // Bad requests change nothing and say why.
    let refused = |status: tonic::Status| (status.code(), reason_and_field(&status));
    let err = compute(&channel, &demo, SARZANA, "UQ0008", "2026")
        .await
        .expect_err("a reported KPI");
    assert_eq!(
        refused(err),
        (
            Code::FailedPrecondition,
            ("KPI_NOT_COMPUTED".to_owned(), Some("parent".to_owned()))
        )
    );
    let err = compute(&channel, &demo, SARZANA, "UQ0003", "2026-11")
        .await
        .expect_err("a month for a quarterly KPI");
    assert_eq!(
        refused(err),
        (
            Code::InvalidArgument,
            ("INVALID_PERIOD".to_owned(), Some("period".to_owned()))
        )
    );
    let next_year = (today.year() + 1).to_string();
    let err = compute(&channel, &demo, LUNI, "UQ0005", &next_year)
        .await
        .expect_err("a period not begun");
    assert_eq!(
        refused(err).1,
        ("PERIOD_NOT_BEGUN".to_owned(), Some("period".to_owned()))
    );

    // The scheduled recomputation, as a node runs it: every computed KPI of the comune for the
    // current and the previous period, through the gateway under the node's own certificate.
    let certs_dir = data.join("certs");
    let node_tls = |node: &str| {
        let issued = unione_kit::certs::paths(&certs_dir, unione_kit::certs::Kind::Node, node);
        unione_kit::tls::TlsFiles {
            ca: demo["ca"].as_str().expect("ca").to_owned(),
            cert: issued.cert.display().to_string(),
            key: issued.key.display().to_string(),
        }
    };
    let gateway = demo["gateway"].as_str().expect("gateway");
    let operational =
        OperationalData::new(gateway, "localhost", &node_tls("sarzana")).expect("a channel");
    let db_dir = tempfile::tempdir().expect("tempdir");
    let db = unione_kit::Database::open_sqlite(&db_dir.path().join("quality.sqlite"))
        .await
        .expect("SQLite");
    db.migrate(&unione_quality::migrations())
        .await
        .expect("migrated");
    let sarzana = Istat::parse(SARZANA).expect("ISTAT");
    let api = KpiApi::new(db.clone(), sarzana_served()).with_operational_data(operational);
    let (done, failures) = api.recompute(&[sarzana], today).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(done, 10, "five computed KPIs, two periods each");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quality_computations")
        .fetch_one(db.pool())
        .await
        .expect("counted");
    assert_eq!(count, 10);

    // Another node's certificate gets nothing from Sarzana's services: a node acts only for
    // the comuni the directory says it serves.
    let foreign = KpiApi::new(db, sarzana_served()).with_operational_data(
        OperationalData::new(gateway, "localhost", &node_tls("luni")).expect("channel"),
    );
    let (done, failures) = foreign
        .recompute(&[Istat::parse(SARZANA).expect("ISTAT")], today)
        .await;
    assert_eq!(done, 0);
    assert!(
        failures.iter().all(|f| f.contains("PermissionDenied")),
        "{failures:?}"
    );

    let status = demo_proc.terminate();
    assert!(status.success(), "the demo stops cleanly: {status}");
}
