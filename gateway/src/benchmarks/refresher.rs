//! Fills the snapshot: reads, from every member with a quality provision, the measurements its
//! quality office publishes as open data (`unione.quality.v1.ReviewService/
//! ExportMeasurements`, JSON, CC BY: aggregates only, never personal data), every
//! `benchmark_refresh_ms`, and a member again soon after a measurement of its was recorded
//! through the gateway ([`Changes`]).
//!
//! Calls go to the node the directory names for the member's quality function, over the
//! directory's mutual-TLS channels, as the gateway itself: with no user principal, which is the
//! least privilege there is (the node believes a principal only from a gateway, and the
//! quality service's reads need none: they check only the routing header and that the node
//! serves the comune). At most `benchmark_concurrency` reads run at once, each bounded by
//! `benchmark_call_timeout_ms`; a failed read is remembered with its reason and the member's
//! earlier data kept.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use unione_kit::Database;
use unione_kit::names::routed;
use unione_kit::storage::now_micros;
use unione_proto::quality::v1::review_service_client::ReviewServiceClient;
use unione_proto::quality::v1::{ExportFormat, ExportMeasurementsRequest};
use unione_quality::domain::{Period, Status, standard_kpi};

use super::snapshot::{Published, Reading, Snapshot};
use crate::directory::Function;
use crate::live::DirectoryHandle;

/// Pending "refresh this comune" requests kept before further ones are dropped (the periodic
/// round catches up with anything dropped).
const CHANGES_QUEUE: usize = 1024;

/// The largest export read from one member.
const MAX_EXPORT_BYTES: usize = 32 * 1024 * 1024;

/// Asks the refresher to read a member again soon. Cheap and never blocking: a full queue
/// drops the request.
#[derive(Clone, Debug)]
pub struct Changes(mpsc::Sender<String>);

impl Changes {
    /// A pair: the sender for the routing proxy, the receiver for [`Refresher::run`].
    pub fn channel() -> (Self, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel(CHANGES_QUEUE);
        (Self(tx), rx)
    }

    /// A measurement of `istat` (a six-digit ISTAT code) was recorded.
    pub fn measurement_recorded(&self, istat: &str) {
        let _ = self.0.try_send(istat.to_owned());
    }
}

/// How the refresher paces its reads.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Between two full rounds.
    pub interval: Duration,
    /// Reads at once.
    pub concurrency: usize,
    /// Bound on one read.
    pub call_timeout: Duration,
}

/// The background refresher.
pub struct Refresher {
    /// The directory in force (members, provisions, channels to the nodes).
    pub directory: DirectoryHandle,
    /// What it fills.
    pub snapshot: Arc<Snapshot>,
    /// Where the snapshot is kept.
    pub db: Database,
    /// Pacing.
    pub pacing: Pacing,
}

/// One row of the JSON export (`unione.quality.v1.ExportMeasurementsResponse`).
#[derive(Deserialize)]
struct ExportRow {
    kpi_id: String,
    period: String,
    value: Option<f64>,
    status: String,
    revision: i64,
}

/// The standard-catalogue measurements of an export; rows of local KPIs (not comparable across
/// towns) and rows that do not follow the catalogue are left out.
pub fn parse_export(content: &[u8]) -> anyhow::Result<Vec<Reading>> {
    let rows: Vec<ExportRow> = serde_json::from_slice(content)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(kpi) = standard_kpi(&row.kpi_id) else {
            continue;
        };
        let (Ok(_), Some(status)) = (
            Period::parse(kpi.period, &row.period),
            Status::from_code(&row.status),
        ) else {
            tracing::debug!(kpi = %row.kpi_id, period = %row.period, "export row skipped");
            continue;
        };
        let value = match (status, row.value) {
            (Status::Ok, Some(v)) if v.is_finite() => Some(v),
            (Status::Ok, _) => continue,
            _ => None,
        };
        out.push((
            row.kpi_id,
            row.period,
            Published {
                status,
                value,
                revision: row.revision,
            },
        ));
    }
    Ok(out)
}

/// Whose turn it is: reads of one member never overlap (an older read finishing last would
/// put older data back), and a member asked for while it is being read is read once more
/// after, since the change may have come after its read began.
#[derive(Default)]
struct Turns {
    /// Waiting for a permit.
    queued: HashSet<String>,
    /// Being read.
    running: HashSet<String>,
    /// Being read, and asked for again meanwhile.
    again: HashSet<String>,
}

impl Turns {
    /// Asks for a read of `istat`; true when a new task must be spawned for it.
    fn ask(&mut self, istat: &str) -> bool {
        if self.running.contains(istat) {
            self.again.insert(istat.to_owned());
            return false;
        }
        self.queued.insert(istat.to_owned())
    }

    /// The task of `istat` got its permit.
    fn start(&mut self, istat: &str) {
        self.queued.remove(istat);
        self.running.insert(istat.to_owned());
    }

    /// A read of `istat` ended; true when it must be read again.
    fn finish(&mut self, istat: &str) -> bool {
        if self.again.remove(istat) {
            return true;
        }
        self.running.remove(istat);
        false
    }
}

fn lock(turns: &Mutex<Turns>) -> std::sync::MutexGuard<'_, Turns> {
    turns
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Refresher {
    /// Runs until `stop` turns true: a full round at once and every interval, and a read of a
    /// member whenever `changes` names it.
    pub async fn run(self, mut changes: mpsc::Receiver<String>, mut stop: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(this.pacing.concurrency.max(1)));
        let turns: Arc<Mutex<Turns>> = Arc::default();
        let mut tasks = JoinSet::new();
        let schedule = |tasks: &mut JoinSet<()>, istat: String| {
            if !lock(&turns).ask(&istat) {
                return;
            }
            let (this, permits, turns) = (this.clone(), permits.clone(), turns.clone());
            tasks.spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                lock(&turns).start(&istat);
                loop {
                    this.refresh(&istat).await;
                    if !lock(&turns).finish(&istat) {
                        break;
                    }
                }
            });
        };
        let mut ticker = tokio::time::interval(this.pacing.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    for istat in this.quality_members() {
                        schedule(&mut tasks, istat);
                    }
                }
                Some(istat) = changes.recv() => schedule(&mut tasks, istat),
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = stop.changed() => break,
            }
        }
        tasks.shutdown().await;
    }

    /// The members with a quality provision in the directory in force.
    fn quality_members(&self) -> Vec<String> {
        self.directory
            .snapshot()
            .directory
            .provisions
            .iter()
            .filter(|p| p.function == Function::Quality)
            .map(|p| p.comune.clone())
            .collect()
    }

    /// Reads one member and stores the outcome.
    pub async fn refresh(&self, istat: &str) {
        let at = now_micros();
        let stored = match self.read(istat).await {
            Ok(Some(readings)) => {
                self.snapshot
                    .store_read(&self.db, istat, readings, at)
                    .await
            }
            Ok(None) => return,
            Err(failure) => {
                tracing::debug!(comune = %istat, %failure, "benchmark read failed");
                self.snapshot
                    .store_failure(&self.db, istat, &failure, at)
                    .await
            }
        };
        if let Err(err) = stored {
            tracing::warn!(comune = %istat, error = format!("{err:#}"), "storing a benchmark read failed");
        }
    }

    /// The member's published measurements; `None` when no node provides its quality
    /// function; the reason when the read failed.
    async fn read(&self, istat: &str) -> Result<Option<Vec<Reading>>, String> {
        let live = self.directory.current();
        let Some(provider) = live
            .snapshot
            .directory
            .provisions
            .iter()
            .find(|p| p.comune == istat && p.function == Function::Quality)
        else {
            return Ok(None);
        };
        let Some(pool) = live.pools.get(&provider.node) else {
            return Err(format!("no channel to node {}", provider.node));
        };
        let mut client =
            ReviewServiceClient::new(pool.pick()).max_decoding_message_size(MAX_EXPORT_BYTES);
        let mut request = routed(
            istat,
            ExportMeasurementsRequest {
                parent: format!("comuni/{istat}"),
                from_period: "1900".to_owned(),
                to_period: "9999".to_owned(),
                format: ExportFormat::Json.into(),
            },
        );
        let timeout = self.pacing.call_timeout;
        request.set_timeout(timeout);
        let response =
            match tokio::time::timeout(timeout, client.export_measurements(request)).await {
                Err(_) => {
                    return Err(format!(
                        "node {} gave no answer within {} ms",
                        provider.node,
                        timeout.as_millis()
                    ));
                }
                Ok(Err(status)) => {
                    return Err(format!(
                        "node {}: {:?}: {}",
                        provider.node,
                        status.code(),
                        status.message()
                    ));
                }
                Ok(Ok(response)) => response.into_inner(),
            };
        parse_export(&response.content)
            .map(Some)
            .map_err(|err| format!("node {}: unreadable export: {err}", provider.node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the standard catalogue is compared across towns: a local KPI's rows are left out,
    /// as are rows that break the catalogue's rules.
    /// One read of a member at a time; a member asked for during its read is read once more
    /// after it, however many times it was asked; one waiting for its turn is not queued twice.
    #[test]
    fn reads_of_one_member_take_turns() {
        let mut turns = Turns::default();
        assert!(turns.ask("011027"), "a task is spawned");
        assert!(!turns.ask("011027"), "already waiting");
        turns.start("011027");
        assert!(!turns.ask("011027"), "being read: no second task");
        assert!(!turns.ask("011027"));
        assert!(turns.ask("011020"), "another member is apart");
        assert!(turns.finish("011027"), "read once more");
        assert!(!turns.finish("011027"), "then done");
        assert!(turns.ask("011027"), "a later change spawns a task again");
    }

    #[test]
    fn exports_keep_the_standard_catalogue() {
        let export = br#"[
            {"kpi_id":"LOCAL1","title":"t","unit":"EUR","period":"2026","value":5.0,"status":"OK","revision":1},
            {"kpi_id":"UQ0001","title":"t","unit":"%","period":"2026-Q1","value":93.5,"status":"OK","revision":2},
            {"kpi_id":"UQ0001","title":"t","unit":"%","period":"2026","value":93.5,"status":"OK","revision":1},
            {"kpi_id":"UQ0006","title":"t","unit":"count","period":"2025","value":null,"status":"NOT_APPLICABLE","revision":1},
            {"kpi_id":"UQ0008","title":"t","unit":"i","period":"2025","value":null,"status":"OK","revision":1}
        ]"#;
        let readings = parse_export(export).expect("parsed");
        assert_eq!(
            readings,
            vec![
                (
                    "UQ0001".to_owned(),
                    "2026-Q1".to_owned(),
                    Published {
                        status: Status::Ok,
                        value: Some(93.5),
                        revision: 2
                    }
                ),
                (
                    "UQ0006".to_owned(),
                    "2025".to_owned(),
                    Published {
                        status: Status::NotApplicable,
                        value: None,
                        revision: 1
                    }
                ),
            ]
        );
        assert!(parse_export(b"not json").is_err());
    }
}
