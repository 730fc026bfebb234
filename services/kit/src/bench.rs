//! The harness of the services' throughput benchmarks (`cargo bench -p unione-<service>
//! --bench throughput`): drive an operation at a concurrency, measure a bare
//! single-row-insert-per-transaction baseline on the same database in the same run, and report
//! ops/s, p50, p99 and the ratio to the baseline as Markdown. Not used by any server.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::Database;

/// Latencies and wall time of `ops` operations.
pub struct Stats {
    pub ops: usize,
    pub concurrency: usize,
    pub elapsed: Duration,
    /// Sorted.
    pub latencies: Vec<Duration>,
}

impl Stats {
    #[allow(clippy::cast_precision_loss)]
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    pub fn quantile(&self, q: f64) -> Duration {
        let last = self.latencies.len().saturating_sub(1);
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let i = ((last as f64) * q).round() as usize;
        self.latencies.get(i.min(last)).copied().unwrap_or_default()
    }
}

/// Runs `op(0..total)` on `concurrency` tasks, each taking the next index when it is free.
pub async fn drive<F, Fut>(total: usize, concurrency: usize, op: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, next) = (Arc::clone(&op), Arc::clone(&next));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break latencies;
                    }
                    let began = Instant::now();
                    op(i).await;
                    latencies.push(began.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await.expect("a bench task completes"));
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Stats {
        ops: total,
        concurrency,
        elapsed,
        latencies,
    }
}

/// The baseline: one bare single-row INSERT per write transaction, into a scratch table.
pub async fn baseline(db: &Database, total: usize, concurrency: usize) -> Stats {
    static NEXT_ID: AtomicI64 = AtomicI64::new(1);
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_baseline (id BIGINT PRIMARY KEY, payload TEXT NOT NULL)",
    )
    .execute(db.pool())
    .await
    .expect("the scratch table is created");
    let db = db.clone();
    drive(total, concurrency, move |_| {
        let db = db.clone();
        async move {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let mut tx = db.begin_write().await.expect("a write transaction begins");
            sqlx::query("INSERT INTO bench_baseline (id, payload) VALUES ($1, $2)")
                .bind(id)
                .bind("baseline row")
                .execute(&mut *tx)
                .await
                .expect("the row is inserted");
            tx.commit().await.expect("the transaction commits");
        }
    })
    .await
}

/// One line of the report.
pub struct Row {
    pub operation: &'static str,
    pub backend: &'static str,
    pub stats: Stats,
    pub baseline_per_second: f64,
}

impl Row {
    pub fn new(
        operation: &'static str,
        backend: &'static str,
        stats: Stats,
        baseline_per_second: f64,
    ) -> Self {
        Self {
            operation,
            backend,
            stats,
            baseline_per_second,
        }
    }
}

/// At least three significant digits, without a long tail: 4260, 86.4, 0.0213.
pub fn significant(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else if x >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

/// Milliseconds, fractional.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// The Markdown report: when, where, and one row per measurement.
pub fn report(service: &str, quick: bool, rows: &[Row]) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let mut out = format!(
        "### {service} throughput, {} run\n\n\
         {} UTC; {cpus} CPUs ({} {}); client and server in one process (handlers called \
         directly). Ratio = ops/s divided by the baseline's ops/s (one bare single-row INSERT \
         per transaction, same database, same concurrency, same run).\n\n\
         | operation | backend | concurrency | ops | ops/s | p50 (ms) | p99 (ms) | vs baseline |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
        if quick { "quick" } else { "full" },
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        std::env::consts::OS,
        std::env::consts::ARCH,
    );
    for row in rows {
        let s = &row.stats;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {}x |\n",
            row.operation,
            row.backend,
            s.concurrency,
            s.ops,
            significant(s.per_second()),
            millis(s.quantile(0.50)),
            millis(s.quantile(0.99)),
            significant(s.per_second() / row.baseline_per_second),
        ));
    }
    out
}

/// Writes the report next to the build output (`target/`).
pub fn write_report(file: &str, table: &str) {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(PathBuf::from))
        .filter(|dir| dir.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = target.join(file);
    match std::fs::write(&path, table) {
        Ok(()) => eprintln!("written to {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}

/// A fresh PostgreSQL schema on `BENCH_DATABASE_URL` (or `TEST_DATABASE_URL`), dropped at the
/// end; `None` when neither is set.
pub struct PgSchema {
    /// The database on the fresh schema.
    pub db: Database,
    base: String,
    schema: String,
}

impl PgSchema {
    /// Creates the schema; `None` (with a notice) when no URL is set.
    pub async fn create() -> Option<Self> {
        let Some(base) = std::env::var("BENCH_DATABASE_URL")
            .or_else(|_| std::env::var("TEST_DATABASE_URL"))
            .ok()
        else {
            eprintln!("BENCH_DATABASE_URL / TEST_DATABASE_URL not set: PostgreSQL skipped");
            return None;
        };
        sqlx::any::install_default_drivers();
        let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::AnyPool::connect(&base)
            .await
            .expect("the PostgreSQL URL is reachable");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .expect("a bench schema can be created");
        admin.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        let db = Database::connect(&url)
            .await
            .expect("the bench schema opens");
        Some(Self { db, base, schema })
    }

    /// Drops the schema.
    pub async fn drop(self) {
        self.db.close().await;
        let admin = sqlx::AnyPool::connect(&self.base)
            .await
            .expect("the PostgreSQL URL is reachable");
        let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.schema
        )))
        .execute(&admin)
        .await;
        if let Err(e) = dropped {
            eprintln!("could not drop schema {}: {e}", self.schema);
        }
        admin.close().await;
    }
}
