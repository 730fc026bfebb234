//! `KpiService.ComputeMeasurement` and the scheduled recomputation of the computed KPIs.
//!
//! The figures come from the comune's own registry and payments services, through the
//! federation gateway like any other client's calls (so the comune's registry may well run on
//! another node, as Ameglia's runs at the capofila): [`OperationalData`] holds a mutual-TLS
//! channel to the gateway under this node's own certificate, and the gateway lets a node act
//! for exactly the comuni the directory says it serves. Only aggregate counts come back. The domain
//! ([`crate::domain::indicators`]) turns them into a value with its explanation, and storage
//! records both in one transaction.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tracing::{Span, field};
use unione_kit::idempotency;
use unione_kit::names::{parse_name, routing_value};
use unione_kit::storage::{now_micros, timestamp};
use unione_kit::tls::TlsFiles;
use unione_kit::{ApiError, Istat};
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1::GetCollectionStatisticsRequest;
use unione_proto::payments::v1::payment_statistics_service_client::PaymentStatisticsServiceClient;
use unione_proto::quality::v1 as pb;
use unione_proto::registry::v1::registry_statistics_service_client::RegistryStatisticsServiceClient;
use unione_proto::registry::v1::{GetCaseStatisticsRequest, GetCertificateStatisticsRequest};

use super::{KPI, KpiApi, date_to_pb, measurement_to_pb};
use crate::domain::indicators::{
    self, CaseFigures, CertificateFigures, CollectionFigures, Figures, Needs,
};
use crate::domain::{Kpi, Period, Reading, STANDARD_KPIS, Source, current_period};
use crate::storage;
use crate::storage::computations::{StoredComputation, record_computation};

/// How long one call for figures may take.
const CALL_DEADLINE: Duration = Duration::from_secs(20);

/// The way to the comune's registry and payments services: the federation gateway.
#[derive(Clone)]
pub struct OperationalData {
    channel: Channel,
}

impl std::fmt::Debug for OperationalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperationalData")
    }
}

impl OperationalData {
    /// A lazily connected channel to the gateway at `endpoint` (`https://host:port`), whose
    /// certificate the federation CA issued for `tls_name`, presenting this node's identity
    /// (`tls`: the node's own CA, certificate and key).
    pub fn new(endpoint: &str, tls_name: &str, tls: &TlsFiles) -> anyhow::Result<Self> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(tls.ca()?)
            .identity(tls.identity()?)
            .domain_name(tls_name);
        let channel = Endpoint::from_shared(endpoint.to_owned())?
            .tls_config(tls)?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        Ok(Self { channel })
    }

    fn request<T>(&self, istat: &Istat, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(CALL_DEADLINE);
        request.metadata_mut().insert(
            unione_kit::names::ROUTING_HEADER,
            MetadataValue::try_from(routing_value(istat)).expect("a routing value is ASCII"),
        );
        request
    }

    /// The figures `needs` of `istat` over `period`.
    pub async fn figures(
        &self,
        needs: Needs,
        istat: &Istat,
        period: &Period,
    ) -> Result<Figures, tonic::Status> {
        let parent = istat.resource_name();
        let (start_date, end_date) = (Some(date(period.start())), Some(date(period.end())));
        Ok(match needs {
            Needs::Cases => {
                let s = RegistryStatisticsServiceClient::new(self.channel.clone())
                    .get_case_statistics(self.request(
                        istat,
                        GetCaseStatisticsRequest {
                            parent,
                            start_date,
                            end_date,
                        },
                    ))
                    .await?
                    .into_inner();
                Figures::Cases(CaseFigures {
                    completed: s.completed_count,
                    completed_within_deadline: s.completed_within_deadline_count,
                    median_processing_days: s.median_processing_days,
                    overdue_open: s.overdue_open_count,
                    withdrawn_or_cancelled: s.withdrawn_or_cancelled_count,
                })
            }
            Needs::Certificates => {
                let s = RegistryStatisticsServiceClient::new(self.channel.clone())
                    .get_certificate_statistics(self.request(
                        istat,
                        GetCertificateStatisticsRequest {
                            parent,
                            start_date,
                            end_date,
                        },
                    ))
                    .await?
                    .into_inner();
                Figures::Certificates(CertificateFigures {
                    issued: s.issued_count,
                    online: s.online_count,
                    kiosk: s.kiosk_count,
                    counter: s.counter_count,
                })
            }
            Needs::Collection => {
                let s = PaymentStatisticsServiceClient::new(self.channel.clone())
                    .get_collection_statistics(self.request(
                        istat,
                        GetCollectionStatisticsRequest {
                            parent,
                            start_date,
                            end_date,
                        },
                    ))
                    .await?
                    .into_inner();
                Figures::Collection(CollectionFigures {
                    due: s.due_count,
                    paid_on_time: s.paid_on_time_count,
                    paid: s.paid_count,
                    due_amount_cents: s.due_amount_cents,
                    collected_amount_cents: s.collected_amount_cents,
                    invalidated: s.invalidated_count,
                })
            }
        })
    }
}

fn date(d: NaiveDate) -> Date {
    date_to_pb(d)
}

/// The KPIs of the standard catalogue computed from operational data.
fn computed_kpis() -> impl Iterator<Item = &'static Kpi> {
    STANDARD_KPIS
        .iter()
        .filter(|k| k.source == Source::Computed)
}

impl KpiApi {
    #[tracing::instrument(
        name = "ComputeMeasurement",
        skip_all,
        fields(comune = field::Empty, kpi = field::Empty)
    )]
    pub(super) async fn compute_measurement_inner(
        &self,
        request: tonic::Request<pb::ComputeMeasurementRequest>,
    ) -> Result<pb::Measurement, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("parent", &req.parent, KPI)?;
        let kpi_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("kpi", kpi_id);
        self.served.check(&metadata, &istat, "parent")?;
        let kpi = self.find_kpi(&istat, kpi_id, "parent", &req.parent).await?;
        let needs = indicators::needs(&kpi.id)
            .filter(|_| kpi.source == Source::Computed && kpi.standard)
            .ok_or_else(|| {
                ApiError::new(
                    Code::FailedPrecondition,
                    "KPI_NOT_COMPUTED",
                    format!("{} is reported by the quality office, not computed", kpi.id),
                )
                .with_field("parent")
            })?;
        if req.period.is_empty() {
            return Err(ApiError::required("period"));
        }
        let period = Period::parse(kpi.period, &req.period)
            .map_err(|e| ApiError::invalid("period", e.reason(), e.to_string()))?;
        if !period.has_begun(Utc::now().date_naive()) {
            return Err(ApiError::invalid(
                "period",
                "PERIOD_NOT_BEGUN",
                format!("period {period} has not begun yet"),
            ));
        }
        let fingerprint = idempotency::fingerprint(&pb::ComputeMeasurementRequest {
            request_id: String::new(),
            ..req.clone()
        });
        self.compute_and_record(&istat, &kpi, needs, period, &req.request_id, &fingerprint)
            .await
    }

    /// Asks for the figures, computes, and records the measurement with its explanation.
    async fn compute_and_record(
        &self,
        istat: &Istat,
        kpi: &Kpi,
        needs: Needs,
        period: Period,
        request_id: &str,
        fingerprint: &[u8],
    ) -> Result<pb::Measurement, ApiError> {
        let operational = self.operational.as_ref().ok_or_else(|| {
            ApiError::new(
                Code::FailedPrecondition,
                "OPERATIONAL_DATA_NOT_CONFIGURED",
                "this node has no way to the gateway for operational data \
                 (operational_data.gateway)",
            )
        })?;
        let figures = operational
            .figures(needs, istat, &period)
            .await
            .map_err(|status| {
                ApiError::new(
                    Code::Unavailable,
                    "OPERATIONAL_DATA_UNAVAILABLE",
                    format!(
                        "{} for {} answered {:?}: {}",
                        needs.method(),
                        istat.resource_name(),
                        status.code(),
                        status.message()
                    ),
                )
            })?;
        let computed =
            indicators::compute(&kpi.id, &figures).map_err(|e| ApiError::internal(&e))?;
        let reading = Reading::new(
            kpi,
            &period.to_string(),
            Some(computed.status),
            computed.value,
            Utc::now().date_naive(),
        )
        .map_err(|e| {
            // The services answered figures that make no possible value (a share over 100):
            // nothing is recorded.
            ApiError::new(
                Code::Unavailable,
                "OPERATIONAL_DATA_INCONSISTENT",
                format!(
                    "the figures of {} give no possible value: {e}",
                    needs.method()
                ),
            )
        })?;
        let computation = StoredComputation {
            method: computed.method,
            inputs: computed.inputs,
            sources: vec![indicators::source(needs, &period)],
            compute_time: now_micros(),
        };
        let scope = format!("quality/{}/ComputeMeasurement", istat.resource_name());
        let db = &self.db;
        let (reading, computation, kpi_id) = (&reading, &computation, &*kpi.id);
        idempotency::run(db, &scope, request_id, fingerprint, |ticket| async move {
            let mut tx = db.begin_write().await?;
            let stored =
                storage::record_measurement(&mut tx, istat, kpi_id, reading, now_micros()).await?;
            record_computation(&mut tx, istat, kpi_id, &stored.period, computation).await?;
            let mut response = measurement_to_pb(istat, kpi_id, &stored)?;
            response.computation = Some(computation_to_pb(computation));
            ticket.complete(&mut tx, &response).await?;
            tx.commit().await?;
            Ok::<_, ApiError>(response)
        })
        .await
    }

    /// Recomputes every computed KPI of every comune in `comuni` for the period `today` falls
    /// in and the one before (late receipts and decisions change the previous one too).
    /// Returns how many measurements were computed and the failures, each named.
    pub async fn recompute(&self, comuni: &[Istat], today: NaiveDate) -> (usize, Vec<String>) {
        let mut done = 0;
        let mut failures = Vec::new();
        for istat in comuni {
            for kpi in computed_kpis() {
                let Some(needs) = indicators::needs(&kpi.id) else {
                    continue;
                };
                let current = current_period(kpi.period, today);
                for period in [current.previous(), current] {
                    match self
                        .compute_and_record(istat, kpi, needs, period, "", &[])
                        .await
                    {
                        Ok(_) => done += 1,
                        Err(err) => failures.push(format!(
                            "{} {} {period}: {}",
                            istat.as_str(),
                            kpi.id,
                            tonic::Status::from(err).message()
                        )),
                    }
                }
            }
        }
        (done, failures)
    }
}

/// The wire form of a computation.
pub(super) fn computation_to_pb(c: &StoredComputation) -> pb::Computation {
    pb::Computation {
        method: c.method.clone(),
        inputs: c
            .inputs
            .iter()
            .map(|(name, value)| pb::ComputationInput {
                name: name.clone(),
                value: *value,
            })
            .collect(),
        sources: c.sources.clone(),
        compute_time: Some(timestamp(c.compute_time)),
    }
}

/// Runs [`KpiApi::recompute`] for `comuni` every `interval` until `stop` resolves, the first
/// time after one interval (the federation is still starting when a node starts).
pub async fn recompute_every(
    api: Arc<KpiApi>,
    comuni: Vec<Istat>,
    interval: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {
                let (done, failures) = api.recompute(&comuni, Utc::now().date_naive()).await;
                if failures.is_empty() {
                    tracing::info!(done, "computed KPIs recomputed");
                } else {
                    tracing::warn!(done, failed = failures.len(), first = %failures[0], "computed KPIs recomputed with failures");
                }
            }
        }
    }
}
