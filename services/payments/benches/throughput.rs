//! Throughput of the payments service: debt positions created and receipts recorded per
//! second, on SQLite and (with `BENCH_DATABASE_URL` or `TEST_DATABASE_URL`) PostgreSQL, each
//! against a baseline measured in the same run on the same database: one bare single-row
//! INSERT per transaction (`begin_write`, insert, commit) at the same concurrency.
//!
//! The handlers are called directly (no network), with the routing header the gateway sets, as
//! the service tests do. Receipts are sent without a prior activation (the service allows it),
//! each for a different notice of a position seeded beforehand. Run with
//! `cargo bench -p unione-payments --bench throughput` (add `-- --quick` for a short run); the
//! table is printed and written to `target/bench-payments.md`. See `services/BENCHMARKS.md`.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Datelike;
use unione_kit::names::routed;
use unione_kit::storage::testing;
use unione_kit::{ComuneProfile, Database, Istat, Served};
use unione_payments::{DebtPositionApi, PaymentProviderApi};
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::debt_position_service_server::DebtPositionService;
use unione_proto::payments::v1::payment_provider_service_server::PaymentProviderService;

const SARZANA: &str = "011027";
const SARZANA_CF: &str = "00110270113";
const DEBTOR: &str = "RCCMNL83S18D969H";
const IBAN: &str = "IT60X0542811101000000123456";
const PSP: &str = "PSPAITMM";
const AMOUNT: i64 = 11_550;
/// Concurrent callers of every measured operation (and of its baseline).
const CONCURRENCY: usize = 8;

/// How many operations each measurement runs.
struct Sizes {
    positions: usize,
    receipts: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                positions: 400,
                receipts: 400,
            }
        } else {
            Self {
                positions: 4_000,
                receipts: 4_000,
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

    let table = report("payments", quick, &rows);
    println!("{table}");
    write_report("bench-payments.md", &table);
}

/// Runs the baseline and the payments operations on one database.
async fn bench_backend(backend: &'static str, db: &Database, sizes: &Sizes) -> Vec<Row> {
    db.migrate(&unione_payments::migrations())
        .await
        .expect("payments migrations apply");
    eprintln!("{backend}: baseline ({CONCURRENCY} concurrent)");
    let base = baseline(db, sizes.positions.max(sizes.receipts), CONCURRENCY).await;
    let base_rate = base.per_second();
    let mut rows = vec![Row::new(
        "baseline: 1-row INSERT per tx",
        backend,
        base,
        base_rate,
    )];
    let positions = Arc::new(DebtPositionApi::new(db.clone(), served()));
    let psp = Arc::new(PaymentProviderApi::new(db.clone(), served()));

    eprintln!("{backend}: CreateDebtPosition");
    let stats = {
        let positions = Arc::clone(&positions);
        drive(sizes.positions, CONCURRENCY, move |_| {
            let positions = Arc::clone(&positions);
            async move {
                create_position(&positions).await;
            }
        })
        .await
    };
    rows.push(Row::new(
        "CreateDebtPosition (DebtPositionApi)",
        backend,
        stats,
        base_rate,
    ));

    eprintln!("{backend}: seeding {} positions to pay", sizes.receipts);
    let notices = Arc::new(Mutex::new(Vec::with_capacity(sizes.receipts)));
    {
        let notices = Arc::clone(&notices);
        drive(sizes.receipts, CONCURRENCY, move |_| {
            let (positions, notices) = (Arc::clone(&positions), Arc::clone(&notices));
            async move {
                let created = create_position(&positions).await;
                let notice = created
                    .payment_options
                    .first()
                    .expect("one payment option")
                    .notice_number
                    .clone();
                notices
                    .lock()
                    .expect("the lock is not poisoned")
                    .push(notice);
            }
        })
        .await;
    }
    let notices: Arc<Vec<String>> =
        Arc::new(notices.lock().expect("the lock is not poisoned").clone());

    eprintln!("{backend}: SendReceipt");
    let stats = drive(sizes.receipts, CONCURRENCY, move |i| {
        let psp = Arc::clone(&psp);
        let notice = notices[i].clone();
        async move {
            let now = chrono::Utc::now();
            psp.send_receipt(routed(
                SARZANA,
                pb::SendReceiptRequest {
                    notice: format!("comuni/{SARZANA}/notices/{notice}"),
                    psp_id: PSP.to_owned(),
                    receipt_id: format!("bench-{i}"),
                    amount_cents: AMOUNT,
                    payment_time: Some(prost_types::Timestamp {
                        seconds: now.timestamp(),
                        nanos: 0,
                    }),
                    activation_id: String::new(),
                },
            ))
            .await
            .expect("the receipt is recorded");
        }
    })
    .await;
    rows.push(Row::new(
        "SendReceipt (PaymentProviderApi)",
        backend,
        stats,
        base_rate,
    ));
    rows
}

/// This node keeps the payments desk of Sarzana.
fn served() -> Served {
    Served::new([ComuneProfile {
        istat: Istat::parse(SARZANA).expect("a six-digit code"),
        name: "Sarzana".to_owned(),
        fiscal_code: SARZANA_CF.to_owned(),
        cadastral_code: "I449".to_owned(),
        segregation_code: "01".to_owned(),
        ipa_code: format!("c_{SARZANA}"),
        population: 20_000,
    }])
}

/// Creates a position payable in full (115.50, one transfer, due 30 September next year).
async fn create_position(positions: &DebtPositionApi) -> pb::DebtPosition {
    let due = Date {
        year: chrono::Utc::now().year() + 1,
        month: 9,
        day: 30,
    };
    positions
        .create_debt_position(routed(
            SARZANA,
            pb::CreateDebtPositionRequest {
                parent: format!("comuni/{SARZANA}"),
                debt_position: Some(pb::DebtPosition {
                    debtor_fiscal_code: DEBTOR.to_owned(),
                    description: "TARI - rata unica".to_owned(),
                    payment_options: vec![pb::PaymentOption {
                        amount_cents: AMOUNT,
                        due_date: Some(due),
                        installment: false,
                        transfers: vec![pb::Transfer {
                            creditor_fiscal_code: SARZANA_CF.to_owned(),
                            iban: IBAN.to_owned(),
                            amount_cents: AMOUNT,
                            remittance_information: "TARI".to_owned(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("the position is created")
        .into_inner()
}

// ---- The harness (the same in the three services' benches) ----

/// Latencies and wall time of `ops` operations.
struct Stats {
    ops: usize,
    concurrency: usize,
    elapsed: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
}

impl Stats {
    #[allow(clippy::cast_precision_loss)]
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn quantile(&self, q: f64) -> Duration {
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
async fn drive<F, Fut>(total: usize, concurrency: usize, op: F) -> Stats
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
async fn baseline(db: &Database, total: usize, concurrency: usize) -> Stats {
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
struct Row {
    operation: &'static str,
    backend: &'static str,
    stats: Stats,
    baseline_per_second: f64,
}

impl Row {
    fn new(
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
fn significant(x: f64) -> String {
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

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// The Markdown report: when, where, and one row per measurement.
fn report(service: &str, quick: bool, rows: &[Row]) -> String {
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
fn write_report(file: &str, table: &str) {
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
struct PgSchema {
    db: Database,
    base: String,
    schema: String,
}

impl PgSchema {
    async fn create() -> Option<Self> {
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

    async fn drop(self) {
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
