//! The gRPC handlers of `unione.quality.v1.ReviewService`: the management review of a period
//! (ISO 9001:2015 9.3), built from the KPI measurements, the survey and complaint computations
//! and the improvement records, and the open data export of measurements (CC BY). Reads only.

use std::collections::BTreeMap;

use tonic::{Request, Response};
use tracing::{Span, field};
use unione_kit::names::parse_name;
use unione_kit::storage::timestamp;
use unione_kit::{ApiError, Database, Istat, Served};
use unione_proto::quality::v1 as pb;
use unione_proto::quality::v1::review_service_server::ReviewService;

use super::improvement::{action_to_pb, nonconformity_to_pb, objective_to_pb};
use super::surveys::fill_results;
use super::{
    COMUNE, Clock, channel_to_pb, date_to_pb, kpi_to_pb, status_to_pb as measurement_status_to_pb,
};
use crate::domain::calendar::{rome_date, rome_range_micros};
use crate::domain::review::{
    self as rules, ExportRow, LICENCE, TargetStatus, compared_value, evaluate, export_row,
    parse_any_period, period_bounds, period_within,
};
use crate::domain::{self, Kpi, Status, complaints};
use crate::storage;
use crate::storage::improvement as store;

/// `comuni/{istat}/managementReviews/{period}`.
const REVIEW: &[&str] = &["comuni", "*", "managementReviews", "*"];
/// Most records of one kind a review lists.
const REVIEW_LIMIT: i64 = 10_000;

/// The review service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct ReviewApi {
    db: Database,
    served: Served,
    clock: Clock,
}

/// The KPIs of a comune by id, read once each.
struct Catalogue<'a> {
    db: &'a Database,
    istat: &'a Istat,
    known: BTreeMap<String, Option<Kpi>>,
}

impl Catalogue<'_> {
    async fn get(&mut self, kpi_id: &str) -> Result<Option<Kpi>, ApiError> {
        if let Some(kpi) = self.known.get(kpi_id) {
            return Ok(kpi.clone());
        }
        let kpi = match domain::standard_kpi(kpi_id) {
            Some(kpi) => Some(kpi.clone()),
            None => storage::get_local_kpi(self.db, self.istat, kpi_id).await?,
        };
        self.known.insert(kpi_id.to_owned(), kpi.clone());
        Ok(kpi)
    }
}

/// A period of any kind given in `field`, or INVALID_ARGUMENT `INVALID_PERIOD`.
fn period_of(field: &str, text: &str) -> Result<domain::Period, ApiError> {
    if text.is_empty() {
        return Err(ApiError::required(field));
    }
    parse_any_period(text).ok_or_else(|| {
        ApiError::invalid(
            field,
            "INVALID_PERIOD",
            format!("`{text}` is not a period: write `2026`, `2026-Q1` or `2026-03`"),
        )
    })
}

impl ReviewApi {
    /// The handlers over a migrated database (see [`crate::migrations`]) for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self::with_clock(db, served, Clock::system())
    }

    /// The handlers, reading the time from `clock`.
    pub fn with_clock(db: Database, served: Served, clock: Clock) -> Self {
        Self { db, served, clock }
    }

    #[tracing::instrument(name = "GetManagementReview", skip_all, fields(comune = field::Empty))]
    async fn review_inner(
        &self,
        request: Request<pb::GetManagementReviewRequest>,
    ) -> Result<pb::ManagementReview, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, REVIEW)?;
        Span::current().record("comune", istat.as_str());
        let profile = self.served.check(&metadata, &istat, "name")?;
        let period = period_of("name", vars[0])?;
        let (start, end) = period_bounds(&period);
        let now = self.clock.now();
        let today = rome_date(now);

        // KPIs of the period against their targets (ISO 9001:2015 9.3.2 c): measurements of
        // every period wholly within the reviewed one.
        let mut catalogue = Catalogue {
            db: &self.db,
            istat: &istat,
            known: BTreeMap::new(),
        };
        let mut kpis = Vec::new();
        for (kpi_id, m) in storage::review::all_measurements(&self.db, &istat).await? {
            if !period_within(&m.period, start, end) {
                continue;
            }
            let Some(kpi) = catalogue.get(&kpi_id).await? else {
                continue;
            };
            let compared = m
                .value
                .filter(|_| m.status == Status::Ok)
                .and_then(|v| compared_value(&kpi, v, profile.population));
            let outcome = compared.map(|c| evaluate(&kpi, c));
            let wire = kpi_to_pb(&istat, &kpi);
            kpis.push(pb::KpiReviewRow {
                kpi: wire.name,
                kpi_id: wire.kpi_id,
                title: wire.title,
                unit: wire.unit,
                polarity: wire.polarity,
                period: m.period.clone(),
                status: measurement_status_to_pb(m.status).into(),
                value: m.value.unwrap_or(0.0),
                compared_value: compared.unwrap_or(0.0),
                target: kpi.target,
                tolerance: kpi.tolerance,
                target_status: outcome.map_or(0, target_status_to_pb),
            });
        }
        let count = |status: pb::TargetStatus| {
            i32::try_from(
                kpis.iter()
                    .filter(|r| r.target_status == i32::from(status))
                    .count(),
            )
            .unwrap_or(i32::MAX)
        };
        let (met, within, missed) = (
            count(pb::TargetStatus::Met),
            count(pb::TargetStatus::WithinTolerance),
            count(pb::TargetStatus::Missed),
        );

        // Customer satisfaction and feedback (9.3.2 c 1): every survey over the period.
        let (from, until) = rome_range_micros(start, end);
        let mut surveys = Vec::new();
        for survey_id in storage::review::survey_ids(&self.db, &istat).await? {
            let Some(stored) = storage::surveys::get_survey(&self.db, &istat, &survey_id).await?
            else {
                continue;
            };
            let responses =
                storage::surveys::responses_between(&self.db, &istat, &survey_id, from, until)
                    .await?;
            let mut out = pb::SurveyResults {
                survey: format!("{}/surveys/{survey_id}", istat.resource_name()),
                start_date: Some(date_to_pb(start)),
                end_date: Some(date_to_pb(end)),
                min_sample_size: stored.survey.min_sample_size,
                ..Default::default()
            };
            fill_results(&mut out, stored.survey.results(&responses));
            surveys.push(pb::SurveyReview {
                title: stored.survey.title.clone(),
                channel: channel_to_pb(stored.survey.channel),
                results: Some(out),
            });
        }

        // Complaints received in the period, as of today.
        let facts = storage::complaints::received_between(&self.db, &istat, from, until).await?;
        let i = complaints::indicators(&facts, today);
        let complaints = pb::ComplaintIndicators {
            parent: istat.resource_name(),
            start_date: Some(date_to_pb(start)),
            end_date: Some(date_to_pb(end)),
            received_count: i.received,
            acknowledged_count: i.acknowledged,
            answered_count: i.answered,
            closed_count: i.closed,
            overdue_count: i.overdue,
            acknowledged_in_time_share: i.acknowledged_in_time_share,
            acknowledgement_due_count: i.acknowledgement_due,
            answered_in_time_share: i.answered_in_time_share,
            response_due_count: i.response_due,
            median_response_days: i.median_response_days,
        };

        // Nonconformities and corrective actions (9.3.2 c 4), objectives (9.3.2 c 2).
        let mut conn = self.db.pool().acquire().await?;
        let open_nonconformities =
            store::list_nonconformities(&mut conn, &istat, None, true, REVIEW_LIMIT)
                .await?
                .iter()
                .map(|n| nonconformity_to_pb(&istat, n, today))
                .collect();
        let overdue_corrective_actions =
            store::list_actions(&mut conn, &istat, None, None, Some(today), REVIEW_LIMIT)
                .await?
                .iter()
                .map(|a| action_to_pb(&istat, a, today))
                .collect();
        let objectives = store::list_objectives(&mut conn, &istat, None, false, None, REVIEW_LIMIT)
            .await?
            .iter()
            .filter(|o| o.status.is_open() || (start..=end).contains(&o.objective.due_date))
            .map(|o| objective_to_pb(&istat, o, today))
            .collect();
        drop(conn);

        let mut review = pb::ManagementReview {
            name: req.name.clone(),
            period: period.to_string(),
            start_date: Some(date_to_pb(start)),
            end_date: Some(date_to_pb(end)),
            comune_title: profile.name.clone(),
            create_time: Some(timestamp(now)),
            kpis,
            met_count: met,
            within_tolerance_count: within,
            missed_count: missed,
            surveys,
            complaints: Some(complaints),
            open_nonconformities,
            overdue_corrective_actions,
            objectives,
            html: Vec::new(),
        };
        review.html = super::review_html::render(&review).into_bytes();
        Ok(review)
    }

    #[tracing::instrument(name = "ExportMeasurements", skip_all, fields(comune = field::Empty))]
    async fn export_inner(
        &self,
        request: Request<pb::ExportMeasurementsRequest>,
    ) -> Result<pb::ExportMeasurementsResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        let profile = self.served.check(&metadata, &istat, "parent")?;
        let (start, _) = period_bounds(&period_of("from_period", &req.from_period)?);
        let (_, end) = period_bounds(&period_of("to_period", &req.to_period)?);
        if end < start {
            return Err(ApiError::invalid(
                "to_period",
                "INVALID_PERIOD_RANGE",
                "to_period ends before from_period starts",
            ));
        }
        let format = match pb::ExportFormat::try_from(req.format) {
            Ok(pb::ExportFormat::Unspecified) => return Err(ApiError::required("format")),
            Ok(f) => f,
            Err(_) => {
                return Err(ApiError::invalid(
                    "format",
                    "INVALID_FORMAT",
                    format!("{} is not an export format", req.format),
                ));
            }
        };
        let mut catalogue = Catalogue {
            db: &self.db,
            istat: &istat,
            known: BTreeMap::new(),
        };
        let mut rows: Vec<ExportRow> = Vec::new();
        for (kpi_id, m) in storage::review::all_measurements(&self.db, &istat).await? {
            if !period_within(&m.period, start, end) {
                continue;
            }
            if let Some(kpi) = catalogue.get(&kpi_id).await? {
                rows.push(export_row(&kpi, &m.period, m.status, m.value, m.revision));
            }
        }
        let (content, content_type) = match format {
            pb::ExportFormat::Json => (rules::to_json(&rows), "application/json"),
            _ => (
                rules::to_csv(&rows),
                "text/csv; charset=utf-8; header=present",
            ),
        };
        Ok(pb::ExportMeasurementsResponse {
            content: content.into_bytes(),
            content_type: content_type.to_owned(),
            licence: format!("{LICENCE}; attribution: Comune di {}", profile.name),
            row_count: i32::try_from(rows.len()).unwrap_or(i32::MAX),
        })
    }
}

#[tonic::async_trait]
impl ReviewService for ReviewApi {
    async fn get_management_review(
        &self,
        request: Request<pb::GetManagementReviewRequest>,
    ) -> Result<Response<pb::ManagementReview>, tonic::Status> {
        Ok(Response::new(self.review_inner(request).await?))
    }

    async fn export_measurements(
        &self,
        request: Request<pb::ExportMeasurementsRequest>,
    ) -> Result<Response<pb::ExportMeasurementsResponse>, tonic::Status> {
        Ok(Response::new(self.export_inner(request).await?))
    }
}

fn target_status_to_pb(status: TargetStatus) -> i32 {
    match status {
        TargetStatus::Met => pb::TargetStatus::Met,
        TargetStatus::WithinTolerance => pb::TargetStatus::WithinTolerance,
        TargetStatus::Missed => pb::TargetStatus::Missed,
    }
    .into()
}
