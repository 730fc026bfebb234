//! Throughput of the quality service: measurements ingested per second, and a period's survey
//! results (over 2,000 responses) and complaint indicators computed per second, on SQLite and
//! (with `BENCH_DATABASE_URL` or `TEST_DATABASE_URL`) PostgreSQL, each against a baseline
//! measured in the same run on the same database: one bare single-row INSERT per transaction
//! (`begin_write`, insert, commit) at the same concurrency.
//!
//! The handlers are called directly (no network), with the routing header the gateway sets, as
//! the service tests do. Run with `cargo bench -p unione-quality --bench throughput` (add
//! `-- --quick` for a short run); the table is printed and written to
//! `target/bench-quality.md`. See `services/BENCHMARKS.md`.

use std::sync::Arc;

use chrono::Datelike;
use unione_kit::bench::{PgSchema, Row, Stats, baseline, drive, report, write_report};
use unione_kit::names::routed;
use unione_kit::storage::testing;
use unione_kit::{ComuneProfile, Database, Istat, Served};
use unione_proto::common::v1::Channel;
use unione_proto::google::r#type::Date;
use unione_proto::quality::v1 as pb;
use unione_proto::quality::v1::complaint_service_server::ComplaintService;
use unione_proto::quality::v1::kpi_service_server::KpiService;
use unione_proto::quality::v1::question::Scale;
use unione_proto::quality::v1::survey_service_server::SurveyService;
use unione_quality::{ComplaintApi, KpiApi, SurveyApi};

const SARZANA: &str = "011027";
/// Comuni `011101` to `011116` are served too, so that measurements spread over
/// (comune, month) pairs that are all new.
const EXTRA_COMUNI: usize = 16;
/// Concurrent callers of the write operations (and of their baseline).
const WRITERS: usize = 8;
/// Concurrent callers of the computations (and of their baseline).
const READERS: usize = 2;
/// Survey responses in the period whose results are computed.
const RESPONSES: usize = 2_000;

/// How many operations each measurement runs.
struct Sizes {
    measurements: usize,
    computes: usize,
    complaints: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                measurements: 400,
                computes: 20,
                complaints: 500,
            }
        } else {
            Self {
                measurements: 4_000,
                computes: 200,
                complaints: 2_000,
            }
        }
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `--quick` asks for a short run.
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = Sizes::new(quick);
    let mut rows = Vec::new();

    let sqlite = testing::sqlite().await;
    rows.extend(bench_backend("sqlite", &sqlite.db, &sizes).await);
    sqlite.db.close().await;

    if let Some(pg) = PgSchema::create().await {
        rows.extend(bench_backend("postgres", &pg.db, &sizes).await);
        pg.drop().await;
    }

    let table = report("quality", quick, &rows);
    println!("{table}");
    write_report("bench-quality.md", &table);
}

/// Runs the baselines and the quality operations on one database.
async fn bench_backend(backend: &'static str, db: &Database, sizes: &Sizes) -> Vec<Row> {
    db.migrate(&unione_quality::migrations())
        .await
        .expect("quality migrations apply");
    eprintln!("{backend}: baseline ({WRITERS} concurrent)");
    let base = baseline(db, sizes.measurements, WRITERS).await;
    let write_rate = base.per_second();
    let mut rows = vec![Row::new(
        "baseline: 1-row INSERT per tx",
        backend,
        base,
        write_rate,
    )];

    eprintln!("{backend}: CreateMeasurement");
    let kpis = Arc::new(KpiApi::new(db.clone(), served()));
    let stats = drive(sizes.measurements, WRITERS, move |i| {
        let kpis = Arc::clone(&kpis);
        async move {
            // Measurement i: comune i mod 16, month i / 16 counted from January 1950.
            let istat = extra_comune(i % EXTRA_COMUNI);
            let month = i / EXTRA_COMUNI;
            let period = format!("{}-{:02}", 1950 + month / 12, month % 12 + 1);
            #[allow(clippy::cast_precision_loss)]
            let value = 5.0 + (i % 20) as f64;
            kpis.create_measurement(routed(
                &istat,
                pb::CreateMeasurementRequest {
                    parent: format!("comuni/{istat}/kpis/UQ0009"),
                    measurement: Some(pb::Measurement {
                        period,
                        value,
                        status: pb::measurement::Status::Ok.into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("the measurement is recorded");
        }
    })
    .await;
    rows.push(Row::new(
        "CreateMeasurement (KpiApi)",
        backend,
        stats,
        write_rate,
    ));

    eprintln!("{backend}: baseline ({READERS} concurrent)");
    let base = baseline(db, sizes.computes.max(200), READERS).await;
    let read_rate = base.per_second();
    rows.push(Row::new(
        "baseline: 1-row INSERT per tx",
        backend,
        base,
        read_rate,
    ));

    eprintln!("{backend}: seeding a survey with {RESPONSES} responses");
    let surveys = Arc::new(SurveyApi::new(db.clone(), served()));
    let survey = surveys
        .create_survey(routed(
            SARZANA,
            pb::CreateSurveyRequest {
                parent: format!("comuni/{SARZANA}"),
                survey: Some(pb::Survey {
                    title: "Sportello anagrafe".to_owned(),
                    channel: Channel::Counter.into(),
                    questions: vec![
                        question(Scale::Likert5, 2.0),
                        question(Scale::Likert5, 1.0),
                        question(Scale::Nps010, 1.0),
                    ],
                    min_sample_size: 30,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("the survey is created")
        .into_inner()
        .name;
    let survey = Arc::new(survey);
    {
        let (surveys, survey) = (Arc::clone(&surveys), Arc::clone(&survey));
        drive(RESPONSES, WRITERS, move |i| {
            let (surveys, survey) = (Arc::clone(&surveys), Arc::clone(&survey));
            let answers = vec![
                i32::try_from(i % 5 + 1).expect("1 to 5"),
                i32::try_from(i % 3 + 3).expect("3 to 5"),
                i32::try_from(i % 11).expect("0 to 10"),
            ];
            async move {
                surveys
                    .create_survey_response(routed(
                        SARZANA,
                        pb::CreateSurveyResponseRequest {
                            parent: survey.as_str().to_owned(),
                            response: Some(pb::SurveyResponse {
                                answers,
                                ..Default::default()
                            }),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .expect("the response is recorded");
            }
        })
        .await;
    }

    // Right after the load the tables have no planner statistics (autovacuum has not run
    // ANALYZE yet); measure that, then again after an explicit ANALYZE.
    eprintln!("{backend}: ComputeSurveyResults, before ANALYZE");
    let stats = compute_results(&surveys, &survey, sizes.computes).await;
    rows.push(Row::new(
        "ComputeSurveyResults, 2,000 responses, fresh tables (SurveyApi)",
        backend,
        stats,
        read_rate,
    ));
    sqlx::query("ANALYZE")
        .execute(db.pool())
        .await
        .expect("ANALYZE runs");
    eprintln!("{backend}: ComputeSurveyResults, after ANALYZE");
    let stats = compute_results(&surveys, &survey, sizes.computes).await;
    rows.push(Row::new(
        "ComputeSurveyResults, 2,000 responses, after ANALYZE (SurveyApi)",
        backend,
        stats,
        read_rate,
    ));

    eprintln!("{backend}: seeding {} complaints", sizes.complaints);
    let complaints = Arc::new(ComplaintApi::new(db.clone(), served()));
    {
        let complaints = Arc::clone(&complaints);
        drive(sizes.complaints, WRITERS, move |_| {
            let complaints = Arc::clone(&complaints);
            async move {
                complaints
                    .create_complaint(routed(
                        SARZANA,
                        pb::CreateComplaintRequest {
                            parent: format!("comuni/{SARZANA}"),
                            complaint: Some(pb::Complaint {
                                category: "waste-collection".to_owned(),
                                channel: Channel::Web.into(),
                                text: "Il cassonetto non viene svuotato da due settimane."
                                    .to_owned(),
                                contact: "cittadino@example.it".to_owned(),
                                ..Default::default()
                            }),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .expect("the complaint is received");
            }
        })
        .await;
    }

    eprintln!("{backend}: ComputeComplaintIndicators");
    let stats = drive(sizes.computes, READERS, move |_| {
        let complaints = Arc::clone(&complaints);
        async move {
            let (start_date, end_date) = this_year();
            complaints
                .compute_complaint_indicators(routed(
                    SARZANA,
                    pb::ComputeComplaintIndicatorsRequest {
                        parent: format!("comuni/{SARZANA}"),
                        start_date,
                        end_date,
                    },
                ))
                .await
                .expect("the indicators are computed");
        }
    })
    .await;
    let label = if sizes.complaints == 500 {
        "ComputeComplaintIndicators, 500 complaints (ComplaintApi)"
    } else {
        "ComputeComplaintIndicators, 2,000 complaints (ComplaintApi)"
    };
    rows.push(Row::new(label, backend, stats, read_rate));
    rows
}

/// Computes the survey's results for this year `total` times, `READERS` at a time.
async fn compute_results(surveys: &Arc<SurveyApi>, survey: &Arc<String>, total: usize) -> Stats {
    let (surveys, survey) = (Arc::clone(surveys), Arc::clone(survey));
    drive(total, READERS, move |_| {
        let (surveys, survey) = (Arc::clone(&surveys), Arc::clone(&survey));
        async move {
            let (start_date, end_date) = this_year();
            let results = surveys
                .compute_survey_results(routed(
                    SARZANA,
                    pb::ComputeSurveyResultsRequest {
                        name: survey.as_str().to_owned(),
                        start_date,
                        end_date,
                    },
                ))
                .await
                .expect("the results are computed")
                .into_inner();
            assert_eq!(
                usize::try_from(results.response_count).ok(),
                Some(RESPONSES),
                "every seeded response is in the period"
            );
        }
    })
    .await
}

fn extra_comune(i: usize) -> String {
    format!("011{:03}", 101 + i)
}

/// This node keeps the quality office of Sarzana and of 16 more comuni.
fn served() -> Served {
    let profile = |istat: String, name: String| ComuneProfile {
        istat: Istat::parse(&istat).expect("a six-digit code"),
        name,
        fiscal_code: format!("001{istat}00"),
        cadastral_code: "I449".to_owned(),
        segregation_code: "01".to_owned(),
        ipa_code: format!("c_{istat}"),
        population: 20_000,
    };
    let mut comuni = vec![profile(SARZANA.to_owned(), "Sarzana".to_owned())];
    comuni.extend((0..EXTRA_COMUNI).map(|i| profile(extra_comune(i), format!("Comune {i}"))));
    Served::new(comuni)
}

fn question(scale: Scale, importance: f64) -> pb::Question {
    pb::Question {
        text: "Come valuta il servizio?".to_owned(),
        scale: scale.into(),
        importance,
    }
}

/// 1 January to 31 December of the current year (UTC), the period that holds every seeded row.
fn this_year() -> (Option<Date>, Option<Date>) {
    let year = chrono::Utc::now().year();
    (
        Some(Date {
            year,
            month: 1,
            day: 1,
        }),
        Some(Date {
            year,
            month: 12,
            day: 31,
        }),
    )
}
