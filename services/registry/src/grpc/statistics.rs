//! The gRPC handlers of `unione.registry.v1.RegistryStatisticsService`: the counts a comune's
//! quality office computes its indicators from. Staff only (a citizen is refused with
//! PERMISSION_DENIED); the comune must be routed and served here; the range is Italian
//! calendar days ([`DayRange`]). From an RPC to its SQL: `get_case_statistics` ->
//! [`crate::domain::statistics::case_figures`] over
//! [`crate::storage::statistics::cases_in_range`]; `get_certificate_statistics` ->
//! [`crate::domain::statistics::certificate_figures`] over
//! [`crate::storage::statistics::certificates_by_channel`].

use std::sync::Arc;

use tonic::{Request, Response};
use tracing::{Span, field};
use unione_kit::names::parse_name;
use unione_kit::storage::now_micros;
use unione_kit::{ApiError, Database, Istat, Served, principal};
use unione_proto::google::r#type::Date;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::registry_statistics_service_server::RegistryStatisticsService;

use super::COMUNE;
use super::household::civil;
use super::protocol::Clock;
use crate::domain::protocol::italian_date;
use crate::domain::resident;
use crate::domain::statistics::{self as rules, DayRange, RangeError};
use crate::storage::statistics as store;

/// A range refused: INVALID_ARGUMENT on `end_date`.
impl From<RangeError> for ApiError {
    fn from(err: RangeError) -> Self {
        ApiError::invalid("end_date", err.reason(), err.to_string())
    }
}

/// The statistics service of one node, for the comuni it serves.
#[derive(Clone)]
pub struct StatisticsApi {
    db: Database,
    served: Served,
    clock: Clock,
}

impl std::fmt::Debug for StatisticsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatisticsApi")
            .field("db", &self.db)
            .field("served", &self.served)
            .finish_non_exhaustive()
    }
}

impl StatisticsApi {
    /// The handlers over a database migrated with [`crate::migrations`], for `served`, on the
    /// system clock.
    pub fn new(db: Database, served: Served) -> Self {
        Self::with_clock(db, served, Arc::new(now_micros))
    }

    /// The same on `clock` (microseconds since the epoch): a range not over yet is counted to
    /// today.
    pub fn with_clock(db: Database, served: Served, clock: Clock) -> Self {
        Self { db, served, clock }
    }

    /// The checks every call makes: not a citizen, `parent` a comune routed and served here,
    /// the dates a valid range.
    fn accept<T>(
        &self,
        request: Request<T>,
        parts: impl Fn(&T) -> (&str, Option<&Date>, Option<&Date>),
    ) -> Result<(Istat, DayRange), ApiError> {
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (parent, start, end) = parts(&req);
        let (istat, _) = parse_name("parent", parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let start = resident::date("start_date", civil(start))?;
        let end = resident::date("end_date", civil(end))?;
        Ok((istat, DayRange::new(start, end)?))
    }

    #[tracing::instrument(name = "GetCaseStatistics", skip_all, fields(comune = field::Empty))]
    async fn case_statistics_inner(
        &self,
        request: Request<pb::GetCaseStatisticsRequest>,
    ) -> Result<pb::CaseStatistics, ApiError> {
        let (istat, range) = self.accept(request, |r| {
            (&r.parent, r.start_date.as_ref(), r.end_date.as_ref())
        })?;
        let (from, until) = range.instants();
        let cases = store::cases_in_range(&self.db, &istat, from, until).await?;
        let figures = rules::case_figures(&cases, range, italian_date((self.clock)()));
        Ok(pb::CaseStatistics {
            completed_count: figures.completed,
            completed_within_deadline_count: figures.completed_within_deadline,
            median_processing_days: figures.median_processing_days,
            overdue_open_count: figures.overdue_open,
            withdrawn_or_cancelled_count: figures.withdrawn_or_cancelled,
        })
    }

    #[tracing::instrument(
        name = "GetCertificateStatistics",
        skip_all,
        fields(comune = field::Empty)
    )]
    async fn certificate_statistics_inner(
        &self,
        request: Request<pb::GetCertificateStatisticsRequest>,
    ) -> Result<pb::CertificateStatistics, ApiError> {
        let (istat, range) = self.accept(request, |r| {
            (&r.parent, r.start_date.as_ref(), r.end_date.as_ref())
        })?;
        let (from, until) = range.instants();
        let counts = store::certificates_by_channel(&self.db, &istat, from, until).await?;
        let figures =
            rules::certificate_figures(counts.iter().map(|(channel, n)| (channel.as_str(), *n)));
        Ok(pb::CertificateStatistics {
            issued_count: figures.issued,
            online_count: figures.online,
            kiosk_count: figures.kiosk,
            counter_count: figures.counter,
        })
    }
}

#[tonic::async_trait]
impl RegistryStatisticsService for StatisticsApi {
    async fn get_case_statistics(
        &self,
        request: Request<pb::GetCaseStatisticsRequest>,
    ) -> Result<Response<pb::CaseStatistics>, tonic::Status> {
        Ok(Response::new(self.case_statistics_inner(request).await?))
    }

    async fn get_certificate_statistics(
        &self,
        request: Request<pb::GetCertificateStatisticsRequest>,
    ) -> Result<Response<pb::CertificateStatistics>, tonic::Status> {
        Ok(Response::new(
            self.certificate_statistics_inner(request).await?,
        ))
    }
}
