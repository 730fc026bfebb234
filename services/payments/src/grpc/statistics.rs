//! The gRPC handler of `unione.payments.v1.PaymentStatisticsService`: the counts and sums a
//! comune's quality office computes its payment indicators from. Staff only (a citizen is
//! refused with PERMISSION_DENIED); the comune must be routed and served here. From the RPC to
//! its SQL: `get_collection_statistics` -> [`statistics::day_range`] and
//! [`statistics::collection_figures`] over [`crate::storage::statistics::options_due`].

use tonic::{Request, Response};
use tracing::{Span, field};
use unione_kit::names::parse_name;
use unione_kit::{ApiError, Database, Served, principal};
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::payment_statistics_service_server::PaymentStatisticsService;

use super::{COMUNE, date_parts};
use crate::domain::statistics::{self, RangeError};
use crate::storage::statistics as store;

/// A range refused: INVALID_ARGUMENT on the field it names.
impl From<RangeError> for ApiError {
    fn from(err: RangeError) -> Self {
        ApiError::invalid(err.field(), err.reason(), err.to_string())
    }
}

/// The payment statistics service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct StatisticsApi {
    db: Database,
    served: Served,
}

impl StatisticsApi {
    /// The handler over a migrated database (see [`crate::migrations`]) for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self { db, served }
    }

    #[tracing::instrument(
        name = "GetCollectionStatistics",
        skip_all,
        fields(comune = field::Empty)
    )]
    async fn collection_statistics_inner(
        &self,
        request: Request<pb::GetCollectionStatisticsRequest>,
    ) -> Result<pb::CollectionStatistics, ApiError> {
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let (start, end) = statistics::day_range(
            req.start_date.as_ref().map(date_parts),
            req.end_date.as_ref().map(date_parts),
        )?;
        let options = store::options_due(&self.db, &istat, start, end).await?;
        let figures = statistics::collection_figures(&options);
        Ok(pb::CollectionStatistics {
            due_count: figures.due,
            paid_on_time_count: figures.paid_on_time,
            paid_count: figures.paid,
            due_amount_cents: figures.due_cents,
            collected_amount_cents: figures.collected_cents,
            invalidated_count: figures.invalidated,
        })
    }
}

#[tonic::async_trait]
impl PaymentStatisticsService for StatisticsApi {
    async fn get_collection_statistics(
        &self,
        request: Request<pb::GetCollectionStatisticsRequest>,
    ) -> Result<Response<pb::CollectionStatistics>, tonic::Status> {
        Ok(Response::new(
            self.collection_statistics_inner(request).await?,
        ))
    }
}
