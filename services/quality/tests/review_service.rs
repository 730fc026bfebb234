//! ReviewService handlers over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL: the management review (ISO 9001:2015 9.3; DOMAIN.md "Quality and benchmarks")
//! of a seeded quarter against hand-computed KPI outcomes, and the open data export (CC BY) as
//! RFC 4180 CSV and JSON.

mod support;

use support::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tonic::{Code, Request};
use unione_kit::error::reason_and_field;
use unione_kit::names::{ROUTING_HEADER, routed};
use unione_kit::principal::Principal;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_kit::{Istat, Served};
use unione_proto::common::v1::Channel;
use unione_proto::quality::v1 as pb;
use unione_proto::quality::v1::complaint_service_server::ComplaintService;
use unione_proto::quality::v1::improvement_service_server::ImprovementService;
use unione_proto::quality::v1::kpi_service_server::KpiService;
use unione_proto::quality::v1::review_service_server::ReviewService;
use unione_proto::quality::v1::survey_service_server::SurveyService;
use unione_quality::domain::{Kpi, Normalisation, PeriodKind, Polarity, Source};
use unione_quality::{Clock, ComplaintApi, ImprovementApi, KpiApi, ReviewApi, SurveyApi};

/// A local KPI whose title needs quoting in CSV (a comma and double quotes).
const WAIT_TITLE: &str = "Waiting time, counter \"Anagrafe\"";

fn as_user<T>(istat: &str, message: T) -> Request<T> {
    let mut request = routed(istat, message);
    request.extensions_mut().insert(Principal {
        sub: "qa.rossi".to_owned(),
        role: Role::Operator,
        comuni: vec![istat.to_owned()],
        fiscal_number: None,
        gateway: "gw-1".to_owned(),
    });
    request
}

#[track_caller]
fn assert_error(status: &tonic::Status, code: Code, reason: &str, field: Option<&str>, ctx: &str) {
    assert_eq!(status.code(), code, "{ctx}: {status:?}");
    let (got_reason, got_field) = reason_and_field(status);
    assert_eq!(got_reason, reason, "{ctx}: {status:?}");
    assert_eq!(got_field.as_deref(), field, "{ctx}: {status:?}");
}

struct Fixture {
    review: ReviewApi,
    now: Arc<AtomicI64>,
}

async fn measure(
    kpis: &KpiApi,
    kpi: &str,
    period: &str,
    status: pb::measurement::Status,
    value: f64,
) {
    kpis.create_measurement(routed(
        SARZANA,
        pb::CreateMeasurementRequest {
            parent: format!("comuni/{SARZANA}/kpis/{kpi}"),
            measurement: Some(pb::Measurement {
                period: period.to_owned(),
                value,
                status: status.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        },
    ))
    .await
    .unwrap_or_else(|e| panic!("{kpi} {period}: {e:?}"));
}

/// Seeds Sarzana's first quarter of 2026:
///
/// | KPI    | polarity | target ± tol | period  | value   | outcome          |
/// |--------|----------|--------------|---------|---------|------------------|
/// | UQ0001 | higher   | 95 ± 2       | 2026-Q1 | 93.5    | within tolerance |
/// | UQ0001 | higher   | 95 ± 2       | 2026-Q2 | 99      | (outside Q1)     |
/// | UQ0002 | lower    | 20 ± 5       | 2026-Q1 | 27      | missed           |
/// | UQ0003 | higher   | –            | 2026-Q1 | MISSING | not evaluated    |
/// | WAIT-1 | lower    | 15 ± 5       | 2026-01 | 12      | met              |
/// | WAIT-1 | lower    | 15 ± 5       | 2026-02 | 18      | within tolerance |
/// | WAIT-1 | lower    | 15 ± 5       | 2026-03 | 25      | missed           |
///
/// UQ0001 2026-Q1 is first recorded as 90 and corrected (revision 2). A survey (one Likert
/// question, minimum sample 2) gets answers 5 and 3 on 10 February; a complaint comes the same
/// day; an open nonconformity has an action due 15 March; an objective is due 31 March.
async fn seeded(t: &TestDatabase) -> Fixture {
    t.db.migrate(&unione_quality::migrations())
        .await
        .expect("quality migrations apply");
    let served = Served::new([profile(SARZANA, "Sarzana")]);
    let now = Arc::new(AtomicI64::new(utc("2026-02-10 09:00")));
    let clock = || {
        let read = Arc::clone(&now);
        Clock::from_fn(move || read.load(Ordering::SeqCst))
    };
    let sarzana = Istat::parse(SARZANA).expect("istat");
    let wait = Kpi {
        id: "WAIT-1".into(),
        title: WAIT_TITLE.into(),
        definition: "Mean minutes from ticket to call at the registry counter".into(),
        unit: "minutes".into(),
        polarity: Polarity::LowerIsBetter,
        normalisation: Normalisation::None,
        target: 15.0,
        tolerance: 5.0,
        period: PeriodKind::Month,
        source: Source::Reported,
        owner_office: "Ufficio anagrafe".into(),
        standard: false,
    };
    assert!(
        unione_quality::storage::insert_local_kpi(&t.db, &sarzana, &wait, 0)
            .await
            .expect("inserts")
    );
    let kpis = KpiApi::new(t.db.clone(), served.clone());
    use pb::measurement::Status::{Missing, Ok as Good};
    measure(&kpis, "UQ0001", "2026-Q1", Good, 90.0).await;
    measure(&kpis, "UQ0001", "2026-Q1", Good, 93.5).await;
    measure(&kpis, "UQ0001", "2026-Q2", Good, 99.0).await;
    measure(&kpis, "UQ0002", "2026-Q1", Good, 27.0).await;
    measure(&kpis, "UQ0003", "2026-Q1", Missing, 0.0).await;
    measure(&kpis, "WAIT-1", "2026-01", Good, 12.0).await;
    measure(&kpis, "WAIT-1", "2026-02", Good, 18.0).await;
    measure(&kpis, "WAIT-1", "2026-03", Good, 25.0).await;

    let surveys = SurveyApi::with_clock(t.db.clone(), served.clone(), clock());
    let survey = surveys
        .create_survey(routed(
            SARZANA,
            pb::CreateSurveyRequest {
                parent: format!("comuni/{SARZANA}"),
                survey: Some(pb::Survey {
                    title: "Sportello anagrafe 2026".to_owned(),
                    channel: Channel::Counter.into(),
                    questions: vec![pb::Question {
                        text: "Come valuta il servizio?".to_owned(),
                        scale: pb::question::Scale::Likert5.into(),
                        importance: 1.0,
                    }],
                    min_sample_size: 2,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("survey")
        .into_inner();
    for answer in [5, 3] {
        surveys
            .create_survey_response(routed(
                SARZANA,
                pb::CreateSurveyResponseRequest {
                    parent: survey.name.clone(),
                    response: Some(pb::SurveyResponse {
                        answers: vec![answer],
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("response");
    }
    ComplaintApi::with_clock(t.db.clone(), served.clone(), clock())
        .create_complaint(routed(
            SARZANA,
            pb::CreateComplaintRequest {
                parent: format!("comuni/{SARZANA}"),
                complaint: Some(pb::Complaint {
                    category: "registry".to_owned(),
                    channel: Channel::Web.into(),
                    text: "Coda troppo lunga allo sportello".to_owned(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("complaint");

    let improvement = ImprovementApi::with_clock(t.db.clone(), served.clone(), clock());
    let nc = improvement
        .create_nonconformity(as_user(
            SARZANA,
            pb::CreateNonconformityRequest {
                parent: format!("comuni/{SARZANA}"),
                nonconformity: Some(pb::Nonconformity {
                    description: "Counter waiting time above the charter".to_owned(),
                    source: pb::NonconformitySource::KpiOffTarget.into(),
                    detection_date: date(2026, 2, 5),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("nonconformity")
        .into_inner();
    improvement
        .create_corrective_action(as_user(
            SARZANA,
            pb::CreateCorrectiveActionRequest {
                parent: nc.name.clone(),
                corrective_action: Some(pb::CorrectiveAction {
                    action: "Open a second counter on Monday mornings".to_owned(),
                    owner_office: "Ufficio anagrafe".to_owned(),
                    due_date: date(2026, 3, 15),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("action");
    improvement
        .create_objective(as_user(
            SARZANA,
            pb::CreateObjectiveRequest {
                parent: format!("comuni/{SARZANA}"),
                objective: Some(pb::Objective {
                    title: "Counter waiting time under 15 minutes".to_owned(),
                    kpi: format!("comuni/{SARZANA}/kpis/WAIT-1"),
                    target_value: 15.0,
                    owner_office: "Ufficio anagrafe".to_owned(),
                    due_date: date(2026, 3, 31),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("objective");

    now.store(utc("2026-04-05 09:00"), Ordering::SeqCst);
    let review = ReviewApi::with_clock(t.db.clone(), served, clock());
    Fixture { review, now }
}

fn review_request(istat: &str, period: &str) -> Request<pb::GetManagementReviewRequest> {
    routed(
        istat,
        pb::GetManagementReviewRequest {
            name: format!("comuni/{istat}/managementReviews/{period}"),
        },
    )
}

/// ISO 9001:2015 9.3: the review of 2026-Q1 shows every measurement of a period within the
/// quarter against its target, polarity respected (lower-is-better KPIs are met below their
/// target), with the survey, complaint and improvement records, and renders them as HTML with
/// an SVG chart.
#[tokio::test]
async fn the_management_review_of_a_quarter() {
    for t in testing::all().await {
        let f = seeded(&t).await;
        let _ = &f.now;
        let r = f
            .review
            .get_management_review(review_request(SARZANA, "2026-Q1"))
            .await
            .expect("builds")
            .into_inner();
        assert_eq!(r.start_date, date(2026, 1, 1), "{}", t.label);
        assert_eq!(r.end_date, date(2026, 3, 31), "{}", t.label);
        use pb::TargetStatus::{Met, Missed, Unspecified, WithinTolerance};
        let rows: Vec<(&str, &str, f64, pb::TargetStatus)> = r
            .kpis
            .iter()
            .map(|k| {
                (
                    k.kpi_id.as_str(),
                    k.period.as_str(),
                    k.compared_value,
                    pb::TargetStatus::try_from(k.target_status).expect("known"),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("UQ0001", "2026-Q1", 93.5, WithinTolerance),
                ("UQ0002", "2026-Q1", 27.0, Missed),
                ("UQ0003", "2026-Q1", 0.0, Unspecified),
                ("WAIT-1", "2026-01", 12.0, Met),
                ("WAIT-1", "2026-02", 18.0, WithinTolerance),
                ("WAIT-1", "2026-03", 25.0, Missed),
            ],
            "{}",
            t.label
        );
        assert_eq!(
            (r.met_count, r.within_tolerance_count, r.missed_count),
            (1, 2, 2),
            "{}",
            t.label
        );

        // Survey: answers 5 and 3 rescale to 100 and 50; the index is their mean.
        assert_eq!(r.surveys.len(), 1, "{}", t.label);
        assert_eq!(r.surveys[0].title, "Sportello anagrafe 2026", "{}", t.label);
        let results = r.surveys[0].results.as_ref().expect("results");
        assert_eq!(results.response_count, 2, "{}", t.label);
        let index = results.satisfaction_index.expect("published");
        assert!((index.value - 75.0).abs() < 1e-9, "{}: {index:?}", t.label);
        let complaints = r.complaints.as_ref().expect("complaints");
        assert_eq!(complaints.received_count, 1, "{}", t.label);
        assert_eq!(r.open_nonconformities.len(), 1, "{}", t.label);
        // Due 15 March, unchecked, reviewed on 5 April: overdue.
        assert_eq!(r.overdue_corrective_actions.len(), 1, "{}", t.label);
        assert_eq!(r.objectives.len(), 1, "{}", t.label);
        assert!(r.objectives[0].overdue, "{}", t.label);

        let html = String::from_utf8(r.html.clone()).expect("UTF-8");
        assert!(html.starts_with("<!DOCTYPE html>"), "{}", t.label);
        assert!(html.contains("<svg"), "{}", t.label);
        assert!(
            html.contains("<td>Sportello anagrafe 2026</td>"),
            "{}",
            t.label
        );
        assert_eq!(html.matches("<tr class=\"kpi\">").count(), 6, "{}", t.label);
        assert!(
            html.contains("Waiting time, counter &quot;Anagrafe&quot;"),
            "{}",
            t.label
        );
        assert!(
            !html.contains(WAIT_TITLE),
            "{}: titles are escaped",
            t.label
        );
        // Self-contained: nothing fetched from elsewhere.
        for external in ["<link", "<script", "src=", "url(", "@import"] {
            assert!(!html.contains(external), "{}: {external}", t.label);
        }
        // Five bars, one per evaluated row.
        assert_eq!(html.matches("<rect").count(), 5, "{}", t.label);
    }
}

fn export(
    from: &str,
    to: &str,
    format: pb::ExportFormat,
) -> Request<pb::ExportMeasurementsRequest> {
    routed(
        SARZANA,
        pb::ExportMeasurementsRequest {
            parent: format!("comuni/{SARZANA}"),
            from_period: from.to_owned(),
            to_period: to.to_owned(),
            format: format.into(),
        },
    )
}

/// Splits RFC 4180 CSV into records of fields (quoted fields may hold commas, doubled quotes
/// and line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

/// DOMAIN.md "open data export (CC BY)": RFC 4180 CSV (a title with a comma and quotes is
/// quoted, its quotes doubled; the licence in its own field, not in the CSV) and a JSON array
/// that reads back the same, ordered by KPI then period.
#[tokio::test]
async fn open_data_export_as_csv_and_json() {
    for t in testing::all().await {
        let f = seeded(&t).await;
        let csv = f
            .review
            .export_measurements(export("2026-01", "2026-Q1", pb::ExportFormat::Csv))
            .await
            .expect("exports")
            .into_inner();
        assert!(csv.licence.starts_with("CC BY 4.0"), "{}", t.label);
        assert!(csv.content_type.starts_with("text/csv"), "{}", t.label);
        assert_eq!(csv.row_count, 6, "{}", t.label);
        let text = String::from_utf8(csv.content).expect("UTF-8");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0], "kpi_id,title,unit,period,value,status,revision",
            "{}",
            t.label
        );
        assert_eq!(
            lines[1], "UQ0001,Cases closed within the legal deadline,%,2026-Q1,93.5,OK,2",
            "{}",
            t.label
        );
        assert_eq!(
            lines[3], "UQ0003,Certificates issued online,%,2026-Q1,,MISSING,1",
            "{}",
            t.label
        );
        assert_eq!(
            lines[4], "WAIT-1,\"Waiting time, counter \"\"Anagrafe\"\"\",minutes,2026-01,12,OK,1",
            "{}",
            t.label
        );
        let records = parse_csv(&text);
        assert_eq!(records.len(), 7, "{}", t.label);
        assert!(
            records.iter().all(|r| r.len() == 7),
            "{}: {records:?}",
            t.label
        );
        assert_eq!(records[4][1], WAIT_TITLE, "{}", t.label);

        let json = f
            .review
            .export_measurements(export("2026-01", "2026-Q1", pb::ExportFormat::Json))
            .await
            .expect("exports")
            .into_inner();
        assert_eq!(json.content_type, "application/json", "{}", t.label);
        let rows: Vec<serde_json::Value> =
            serde_json::from_slice(&json.content).expect("a JSON array");
        assert_eq!(rows.len(), 6, "{}", t.label);
        // The JSON says what the CSV says, row by row.
        for (row, record) in rows.iter().zip(&records[1..]) {
            assert_eq!(row["kpi_id"], record[0].as_str(), "{}", t.label);
            assert_eq!(row["title"], record[1].as_str(), "{}", t.label);
            assert_eq!(row["period"], record[3].as_str(), "{}", t.label);
            assert_eq!(row["status"], record[5].as_str(), "{}", t.label);
            assert_eq!(row["revision"].to_string(), record[6], "{}", t.label);
        }
        assert!(rows[2]["value"].is_null(), "{}", t.label);
        assert_eq!(rows[3]["value"], 12.0, "{}", t.label);

        // The same request gives the same bytes.
        let again = f
            .review
            .export_measurements(export("2026-01", "2026-Q1", pb::ExportFormat::Json))
            .await
            .expect("exports")
            .into_inner();
        assert_eq!(again.content, json.content, "{}", t.label);
        // The whole year adds UQ0001 2026-Q2.
        let year = f
            .review
            .export_measurements(export("2026", "2026", pb::ExportFormat::Csv))
            .await
            .expect("exports")
            .into_inner();
        assert_eq!(year.row_count, 7, "{}", t.label);
    }
}

/// Bad periods and formats are refused with the field; calls for another or an unserved
/// comune are refused (AIP-4222).
#[tokio::test]
async fn bad_requests_and_routing() {
    for t in testing::all().await {
        let f = seeded(&t).await;
        let err = f
            .review
            .get_management_review(review_request(SARZANA, "2026-Q5"))
            .await
            .expect_err("bad period");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_PERIOD",
            Some("name"),
            t.label,
        );
        let err = f
            .review
            .get_management_review(review_request(LUNI, "2026"))
            .await
            .expect_err("not served");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("name"),
            t.label,
        );
        let mut request = review_request(SARZANA, "2026");
        request.metadata_mut().insert(
            ROUTING_HEADER,
            "comune=comuni%2F011002".parse().expect("ascii"),
        );
        let err = f
            .review
            .get_management_review(request)
            .await
            .expect_err("mismatch");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("name"),
            t.label,
        );

        let err = f
            .review
            .export_measurements(export("2026", "2026", pb::ExportFormat::Unspecified))
            .await
            .expect_err("no format");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("format"),
            t.label,
        );
        let err = f
            .review
            .export_measurements(export("2026-Q2", "2026-01", pb::ExportFormat::Csv))
            .await
            .expect_err("reversed");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_PERIOD_RANGE",
            Some("to_period"),
            t.label,
        );
        let err = f
            .review
            .export_measurements(export("", "2026", pb::ExportFormat::Csv))
            .await
            .expect_err("no from");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("from_period"),
            t.label,
        );
        let err = f
            .review
            .export_measurements(export("2026-3", "2026", pb::ExportFormat::Csv))
            .await
            .expect_err("bad from");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_PERIOD",
            Some("from_period"),
            t.label,
        );
    }
}
