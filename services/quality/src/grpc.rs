//! The gRPC handlers of `unione.quality.v1.KpiService` (here), `SurveyService` ([`surveys`]),
//! `ComplaintService` ([`complaints`]), `ImprovementService` ([`improvement`]) and
//! `ReviewService` ([`review`]): decode the request, parse resource names, check the
//! comune against the routing header and this node's served comuni, call the domain and
//! storage, and map errors to `google.rpc.Status` with an `ErrorInfo`.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, Utc};
use tonic::{Request, Response};
use tracing::{Span, field};
use unione_kit::idempotency;
use unione_kit::names::parse_name;
use unione_kit::pagination;
use unione_kit::storage::{now_micros, timestamp};
use unione_kit::{ApiError, Database, Istat, Served};
use unione_proto::google::r#type::Date;
use unione_proto::quality::v1 as pb;
use unione_proto::quality::v1::kpi_service_server::KpiService;

use crate::domain::{self, Kpi, QualityError, Reading, Status};
use crate::storage::{self, StoredMeasurement};

pub mod complaints;
pub mod improvement;
pub mod indicators;
pub mod review;
mod review_html;
pub mod surveys;

/// `comuni/{istat}`.
const COMUNE: &[&str] = &["comuni", "*"];
/// `comuni/{istat}/kpis/{kpi_id}`.
pub(crate) const KPI: &[&str] = &["comuni", "*", "kpis", "*"];

/// Every rule the domain refuses is invalid input, on the field it names.
impl From<QualityError> for ApiError {
    fn from(err: QualityError) -> Self {
        ApiError::invalid(err.field(), err.reason(), err.to_string())
    }
}

/// Where the handlers read the time: the system clock, or a test's.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(now_micros))
    }

    /// A clock that reads `now`, microseconds since the epoch.
    pub fn from_fn(now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// The time, microseconds since the epoch.
    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// A `google.type.Date` of `field` as a date; INVALID_ARGUMENT `INVALID_DATE` otherwise.
fn date_from_pb(date: Option<&Date>, field: &str) -> Result<NaiveDate, ApiError> {
    let date = date.ok_or_else(|| ApiError::required(field))?;
    u32::try_from(date.month)
        .ok()
        .zip(u32::try_from(date.day).ok())
        .and_then(|(m, d)| NaiveDate::from_ymd_opt(date.year, m, d))
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "INVALID_DATE",
                format!("{field} is not a calendar date"),
            )
        })
}

/// A period of whole dates, `start_date` to `end_date` inclusive.
fn period_from_pb(
    start: Option<&Date>,
    end: Option<&Date>,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let start = date_from_pb(start, "start_date")?;
    let end = date_from_pb(end, "end_date")?;
    if end < start {
        return Err(ApiError::invalid(
            "end_date",
            "INVALID_DATE_RANGE",
            "end_date is before start_date",
        ));
    }
    Ok((start, end))
}

/// The wire form of a date.
fn date_to_pb(date: NaiveDate) -> Date {
    Date {
        year: date.year(),
        month: i32::try_from(date.month()).expect("a month is 1 to 12"),
        day: i32::try_from(date.day()).expect("a day is 1 to 31"),
    }
}

/// The wire channel: `None` when not given or unknown.
fn channel_from_pb(code: i32) -> Option<domain::Channel> {
    use unione_proto::common::v1::Channel as C;
    match C::try_from(code).ok()? {
        C::Unspecified => None,
        C::Counter => Some(domain::Channel::Counter),
        C::Phone => Some(domain::Channel::Phone),
        C::Web => Some(domain::Channel::Web),
        C::Kiosk => Some(domain::Channel::Kiosk),
        C::Email => Some(domain::Channel::Email),
    }
}

fn channel_to_pb(channel: domain::Channel) -> i32 {
    use unione_proto::common::v1::Channel as C;
    match channel {
        domain::Channel::Counter => C::Counter,
        domain::Channel::Phone => C::Phone,
        domain::Channel::Web => C::Web,
        domain::Channel::Kiosk => C::Kiosk,
        domain::Channel::Email => C::Email,
    }
    .into()
}

/// The KPI service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct KpiApi {
    db: Database,
    served: Served,
    operational: Option<indicators::OperationalData>,
}

impl KpiApi {
    /// The handlers over a migrated database (see [`crate::migrations`]) for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self {
            db,
            served,
            operational: None,
        }
    }

    /// Computes the computed KPIs from the figures `operational` answers.
    #[must_use]
    pub fn with_operational_data(mut self, operational: indicators::OperationalData) -> Self {
        self.operational = Some(operational);
        self
    }

    /// A KPI of a comune: standard, or the comune's own; NOT_FOUND on `field` otherwise.
    async fn find_kpi(
        &self,
        istat: &Istat,
        kpi_id: &str,
        field: &str,
        name: &str,
    ) -> Result<Kpi, ApiError> {
        if let Some(kpi) = domain::standard_kpi(kpi_id) {
            return Ok(kpi.clone());
        }
        storage::get_local_kpi(&self.db, istat, kpi_id)
            .await?
            .ok_or_else(|| ApiError::not_found(field, name))
    }

    #[tracing::instrument(name = "ListKpis", skip_all, fields(comune = field::Empty))]
    async fn list_kpis_inner(
        &self,
        request: Request<pb::ListKpisRequest>,
    ) -> Result<pb::ListKpisResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let size = pagination::page_size(req.page_size)?;
        let scope = format!("ListKpis/{}", istat.resource_name());
        let after: Option<String> = pagination::decode_token(&scope, &req.page_token)?;
        let local = storage::list_local_kpis(&self.db, &istat, after.as_deref(), size + 1).await?;
        let probe = usize::try_from(size + 1).expect("page sizes are 1 to 500");
        let mut page = domain::catalogue_page(local, after.as_deref(), probe);
        let next_page_token =
            pagination::finish_page(&mut page, size, &scope, |kpi| kpi.id.to_string());
        Ok(pb::ListKpisResponse {
            kpis: page.iter().map(|kpi| kpi_to_pb(&istat, kpi)).collect(),
            next_page_token,
        })
    }

    #[tracing::instrument(name = "GetKpi", skip_all, fields(comune = field::Empty, kpi = field::Empty))]
    async fn get_kpi_inner(
        &self,
        request: Request<pb::GetKpiRequest>,
    ) -> Result<pb::Kpi, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, KPI)?;
        let kpi_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("kpi", kpi_id);
        self.served.check(&metadata, &istat, "name")?;
        let kpi = self.find_kpi(&istat, kpi_id, "name", &req.name).await?;
        Ok(kpi_to_pb(&istat, &kpi))
    }

    #[tracing::instrument(
        name = "CreateMeasurement",
        skip_all,
        fields(comune = field::Empty, kpi = field::Empty)
    )]
    async fn create_measurement_inner(
        &self,
        request: Request<pb::CreateMeasurementRequest>,
    ) -> Result<pb::Measurement, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("parent", &req.parent, KPI)?;
        let kpi_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("kpi", kpi_id);
        self.served.check(&metadata, &istat, "parent")?;
        let kpi = self.find_kpi(&istat, kpi_id, "parent", &req.parent).await?;
        let measurement = req
            .measurement
            .as_ref()
            .ok_or_else(|| ApiError::required("measurement"))?;
        // Periods are calendar periods; a day late or early at midnight in Rome is immaterial
        // to whether a period has begun.
        let today = Utc::now().date_naive();
        let reading = Reading::new(
            &kpi,
            &measurement.period,
            status_from_pb(measurement.status)?,
            measurement.value,
            today,
        )?;

        // The fingerprint covers what the request asks for: not the key itself, nor the
        // fields the contract says are ignored.
        let mut asked = req.clone();
        asked.request_id.clear();
        if let Some(m) = asked.measurement.as_mut() {
            m.name.clear();
            m.revision = 0;
            m.update_time = None;
        }
        let fingerprint = idempotency::fingerprint(&asked);
        let scope = format!("quality/{}/CreateMeasurement", istat.resource_name());
        let db = &self.db;
        let istat = &istat;
        let reading = &reading;
        idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let mut tx = db.begin_write().await?;
                let stored =
                    storage::record_measurement(&mut tx, istat, kpi_id, reading, now_micros())
                        .await?;
                let response = measurement_to_pb(istat, kpi_id, &stored)?;
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(response)
            },
        )
        .await
    }

    #[tracing::instrument(
        name = "ListMeasurements",
        skip_all,
        fields(comune = field::Empty, kpi = field::Empty)
    )]
    async fn list_measurements_inner(
        &self,
        request: Request<pb::ListMeasurementsRequest>,
    ) -> Result<pb::ListMeasurementsResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("parent", &req.parent, KPI)?;
        let kpi_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("kpi", kpi_id);
        self.served.check(&metadata, &istat, "parent")?;
        let kpi = self.find_kpi(&istat, kpi_id, "parent", &req.parent).await?;
        let size = pagination::page_size(req.page_size)?;
        let scope = format!("ListMeasurements/{}", req.parent);
        let after: Option<String> = pagination::decode_token(&scope, &req.page_token)?;
        let mut rows =
            storage::list_measurements(&self.db, &istat, &kpi.id, after.as_deref(), size + 1)
                .await?;
        let next_page_token =
            pagination::finish_page(&mut rows, size, &scope, |m| m.period.clone());
        let mut computations = match (rows.first(), rows.last()) {
            (Some(first), Some(last)) if kpi.source == domain::Source::Computed => {
                storage::computations::computations(
                    &self.db,
                    &istat,
                    &kpi.id,
                    &first.period,
                    &last.period,
                )
                .await?
            }
            _ => Default::default(),
        };
        let mut measurements = Vec::with_capacity(rows.len());
        for m in &rows {
            let mut measurement = measurement_to_pb(&istat, &kpi.id, m)?;
            measurement.computation = computations
                .remove(&m.period)
                .map(|c| indicators::computation_to_pb(&c));
            measurements.push(measurement);
        }
        Ok(pb::ListMeasurementsResponse {
            measurements,
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl KpiService for KpiApi {
    async fn list_kpis(
        &self,
        request: Request<pb::ListKpisRequest>,
    ) -> Result<Response<pb::ListKpisResponse>, tonic::Status> {
        Ok(Response::new(self.list_kpis_inner(request).await?))
    }

    async fn get_kpi(
        &self,
        request: Request<pb::GetKpiRequest>,
    ) -> Result<Response<pb::Kpi>, tonic::Status> {
        Ok(Response::new(self.get_kpi_inner(request).await?))
    }

    async fn create_measurement(
        &self,
        request: Request<pb::CreateMeasurementRequest>,
    ) -> Result<Response<pb::Measurement>, tonic::Status> {
        Ok(Response::new(self.create_measurement_inner(request).await?))
    }

    async fn list_measurements(
        &self,
        request: Request<pb::ListMeasurementsRequest>,
    ) -> Result<Response<pb::ListMeasurementsResponse>, tonic::Status> {
        Ok(Response::new(self.list_measurements_inner(request).await?))
    }

    async fn compute_measurement(
        &self,
        request: Request<pb::ComputeMeasurementRequest>,
    ) -> Result<Response<pb::Measurement>, tonic::Status> {
        Ok(Response::new(
            self.compute_measurement_inner(request).await?,
        ))
    }
}

/// The wire status of a measurement: `None` when not given, an error when unknown.
fn status_from_pb(code: i32) -> Result<Option<Status>, QualityError> {
    use pb::measurement::Status as S;
    match S::try_from(code) {
        Ok(S::Unspecified) => Ok(None),
        Ok(S::Ok) => Ok(Some(Status::Ok)),
        Ok(S::Missing) => Ok(Some(Status::Missing)),
        Ok(S::NotApplicable) => Ok(Some(Status::NotApplicable)),
        Ok(S::Confidential) => Ok(Some(Status::Confidential)),
        Err(_) => Err(QualityError::UnknownStatus(code)),
    }
}

fn status_to_pb(status: Status) -> pb::measurement::Status {
    use pb::measurement::Status as S;
    match status {
        Status::Ok => S::Ok,
        Status::Missing => S::Missing,
        Status::NotApplicable => S::NotApplicable,
        Status::Confidential => S::Confidential,
    }
}

/// The wire form of a KPI of `istat`.
pub fn kpi_to_pb(istat: &Istat, kpi: &Kpi) -> pb::Kpi {
    use pb::kpi::{Normalisation as N, Period as P, Polarity as Pol, Source as S};
    pb::Kpi {
        name: format!("{}/kpis/{}", istat.resource_name(), kpi.id),
        kpi_id: kpi.id.to_string(),
        title: kpi.title.to_string(),
        definition: kpi.definition.to_string(),
        unit: kpi.unit.to_string(),
        polarity: match kpi.polarity {
            domain::Polarity::HigherIsBetter => Pol::HigherIsBetter,
            domain::Polarity::LowerIsBetter => Pol::LowerIsBetter,
        }
        .into(),
        normalisation: match kpi.normalisation {
            domain::Normalisation::None => N::None,
            domain::Normalisation::Per1000Inhabitants => N::Per1000Inhabitants,
        }
        .into(),
        target: kpi.target,
        tolerance: kpi.tolerance,
        period: match kpi.period {
            domain::PeriodKind::Month => P::Month,
            domain::PeriodKind::Quarter => P::Quarter,
            domain::PeriodKind::Year => P::Year,
        }
        .into(),
        source: match kpi.source {
            domain::Source::Reported => S::Reported,
            domain::Source::Computed => S::Computed,
        }
        .into(),
        owner_office: kpi.owner_office.to_string(),
        standard: kpi.standard,
    }
}

/// The wire form of a stored measurement of `kpi_id` in `istat`.
fn measurement_to_pb(
    istat: &Istat,
    kpi_id: &str,
    m: &StoredMeasurement,
) -> Result<pb::Measurement, ApiError> {
    Ok(pb::Measurement {
        name: format!(
            "{}/kpis/{kpi_id}/measurements/{}",
            istat.resource_name(),
            m.period
        ),
        period: m.period.clone(),
        value: m.value.unwrap_or(0.0),
        status: status_to_pb(m.status).into(),
        revision: i32::try_from(m.revision).map_err(|e| ApiError::internal(&e))?,
        update_time: Some(timestamp(m.update_time)),
        computation: None,
    })
}
