//! The directory the gateway routes by, kept current while it runs (DOMAIN.md, Federation:
//! "refreshed every 60 s, valid 10 min; past that it refuses to serve").
//!
//! A refresher re-reads the directory file (a changed file becomes a new, audited version in
//! the database) and the database every `directory_refresh_ms`. A new version is installed
//! without a restart: channels to nodes whose endpoint did not change are kept, so calls in
//! flight are not dropped; probes restart for the new set of nodes. When the revoked
//! certificates change, every channel is new (and verifies nodes against the new list), while
//! calls in flight finish on the old ones. If the directory cannot be read, the gateway keeps
//! serving from the last good one, but only for `directory_max_staleness_ms`: after that it
//! refuses routed calls (UNAVAILABLE, `DIRECTORY_STALE`) rather than trust a directory that may
//! miss a revocation.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinSet;
use unione_kit::storage::now_micros;
use unione_kit::tls::TlsFiles;
use unione_kit::{ApiError, Database};

use crate::audit::{AuditSink, Entry};
use crate::directory::DirectoryFile;
use crate::prober::{self, HealthBoard, Timing};
use crate::revocation::NodeDialer;
use crate::routing::NodePool;
use crate::store::{self, Snapshot};

/// One installed version of the directory, with a channel per node.
pub struct Live {
    /// The directory.
    pub snapshot: Arc<Snapshot>,
    /// node id -> its connection pool.
    pub pools: HashMap<String, Arc<NodePool>>,
}

/// The current directory, shared by the API, the proxy and the refresher.
#[derive(Clone)]
pub struct DirectoryHandle {
    current: Arc<RwLock<Arc<Live>>>,
    last_ok: Arc<AtomicI64>,
    max_staleness: Duration,
}

impl DirectoryHandle {
    /// Installs the first version.
    pub fn new(live: Live, max_staleness: Duration) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(live))),
            last_ok: Arc::new(AtomicI64::new(now_micros())),
            max_staleness,
        }
    }

    /// The directory in force.
    pub fn current(&self) -> Arc<Live> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current().snapshot.clone()
    }

    fn install(&self, live: Live) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(live);
    }

    /// Records a successful read of the directory store.
    pub fn mark_fresh(&self) {
        self.last_ok.store(now_micros(), Ordering::Relaxed);
    }

    /// Refuses when the directory was last read longer ago than allowed.
    pub fn check_fresh(&self) -> Result<(), ApiError> {
        check_fresh(
            self.last_ok.load(Ordering::Relaxed),
            now_micros(),
            self.max_staleness,
        )
    }
}

/// Whether a directory read at `last_ok` may still be trusted at `now` (microseconds).
pub fn check_fresh(last_ok: i64, now: i64, max_staleness: Duration) -> Result<(), ApiError> {
    let age = Duration::from_micros(u64::try_from(now.saturating_sub(last_ok)).unwrap_or(0));
    if age > max_staleness {
        return Err(ApiError::unavailable(
            "DIRECTORY_STALE",
            "the gateway could not refresh the federation directory in time and will not route on a stale one",
        )
        .with_metadata("age_seconds", age.as_secs().to_string()));
    }
    Ok(())
}

/// Builds the connection pools for `snapshot` (`size` connections per node), reusing those of
/// `previous` whose endpoint is unchanged, unless the revoked certificates changed: then every
/// pool is new, so no connection verified before a revocation serves new calls (calls in
/// flight finish on the old channels, which live until they are dropped).
pub fn live(
    snapshot: Arc<Snapshot>,
    tls: &TlsFiles,
    size: usize,
    previous: Option<&Live>,
) -> anyhow::Result<Live> {
    let revoked = &snapshot.directory.revoked_certificates;
    let previous = previous.filter(|p| p.snapshot.directory.revoked_certificates == *revoked);
    let mut dialer = None;
    let mut pools = HashMap::new();
    for node in &snapshot.directory.nodes {
        let kept = previous
            .and_then(|p| p.pools.get(&node.node_id))
            .filter(|pool| pool.endpoint == node.endpoint)
            .cloned();
        let pool = match kept {
            Some(pool) => pool,
            None => {
                let dialer = match &mut dialer {
                    Some(dialer) => dialer,
                    None => {
                        dialer.insert(NodeDialer::new(tls, revoked).context("TLS to the nodes")?)
                    }
                };
                Arc::new(NodePool::connect(node, dialer, size)?)
            }
        };
        pools.insert(node.node_id.clone(), pool);
    }
    Ok(Live { snapshot, pools })
}

/// What the refresher needs.
pub struct Refresher {
    /// The shared directory.
    pub handle: DirectoryHandle,
    /// The gateway's database.
    pub db: Database,
    /// The directory file, if any.
    pub directory_file: String,
    /// How often to refresh.
    pub interval: Duration,
    /// TLS for the channels.
    pub tls: TlsFiles,
    /// Connections per node.
    pub pool_size: usize,
    /// Probe timing.
    pub timing: Timing,
    /// Where probes write.
    pub board: Arc<HealthBoard>,
    /// Where directory changes are audited.
    pub audit: AuditSink,
}

/// Loads the directory file into the database when its content changed (a new version, audited).
pub async fn load_file(db: &Database, file: &str, audit: &AuditSink) -> anyhow::Result<()> {
    let directory = DirectoryFile::load(Path::new(file))
        .with_context(|| format!("the directory file {file}"))?;
    let loaded = store::load(db, &directory, file)
        .await
        .context("storing the directory")?;
    if loaded.changed {
        audit
            .record(Entry {
                at: now_micros(),
                principal: format!("file:{file}"),
                role: "configuration".to_owned(),
                method: format!("directory.load/version/{}", loaded.version),
                ..Entry::default()
            })
            .await;
        tracing::info!(version = loaded.version, %file, "directory loaded as a new version");
    }
    Ok(())
}

impl Refresher {
    /// Runs until `stop` turns true: probes the directory's nodes, and refreshes.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let (mut probes_stop, mut probes) = self.start_probes(&self.handle.snapshot());
        let mut ticker = tokio::time::interval(self.interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            match self.refresh().await {
                Ok(Some(snapshot)) => {
                    let _ = probes_stop.send(true);
                    while probes.join_next().await.is_some() {}
                    (probes_stop, probes) = self.start_probes(&snapshot);
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(
                    error = format!("{err:#}"),
                    "directory refresh failed; serving the last good directory"
                ),
            }
        }
        let _ = probes_stop.send(true);
        while probes.join_next().await.is_some() {}
    }

    fn start_probes(&self, snapshot: &Snapshot) -> (watch::Sender<bool>, JoinSet<()>) {
        let (tx, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        if let Err(err) = prober::spawn(
            &snapshot.directory,
            &self.tls,
            self.timing,
            self.board.clone(),
            &rx,
            &mut tasks,
        ) {
            tracing::error!(error = format!("{err:#}"), "starting the probes failed");
        }
        (tx, tasks)
    }

    /// One refresh; the new snapshot when a new version was installed.
    pub async fn refresh(&self) -> anyhow::Result<Option<Arc<Snapshot>>> {
        if !self.directory_file.is_empty() {
            load_file(&self.db, &self.directory_file, &self.audit).await?;
        }
        let snapshot = store::snapshot(&self.db)
            .await
            .context("reading the directory")?;
        self.handle.mark_fresh();
        let current = self.handle.current();
        if snapshot.version == current.snapshot.version {
            return Ok(None);
        }
        let snapshot = Arc::new(snapshot);
        let next = live(snapshot.clone(), &self.tls, self.pool_size, Some(&current))?;
        tracing::info!(version = snapshot.version, "directory version installed");
        self.handle.install(next);
        Ok(Some(snapshot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// X-Road's rule: a directory older than the allowed staleness is not trusted.
    #[test]
    fn stale_directories_are_refused() {
        let max = Duration::from_secs(600);
        assert!(check_fresh(0, 599_000_000, max).is_ok());
        let err = check_fresh(0, 601_000_000, max).expect_err("stale");
        assert_eq!(
            (err.code, err.reason),
            (tonic::Code::Unavailable, "DIRECTORY_STALE")
        );
    }
}
