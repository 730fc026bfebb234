//! Throughput of the registry service: protocol registrations and resident look-ups per second,
//! on SQLite and (with `BENCH_DATABASE_URL` or `TEST_DATABASE_URL`) PostgreSQL, each against a
//! baseline measured in the same run on the same database: one bare single-row INSERT per
//! transaction (`begin_write`, insert, commit) at the same concurrency.
//!
//! The handlers are called directly (no network), with the routing header and the principal
//! the gateway sets, as the service tests do. Run with
//! `cargo bench -p unione-registry --bench throughput` (add `-- --quick` for a short run); the
//! table is printed and written to `target/bench-registry.md`. See `services/BENCHMARKS.md`.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use unione_kit::names::routed;
use unione_kit::principal::Principal;
use unione_kit::storage::testing;
use unione_kit::token::Role;
use unione_kit::{ComuneProfile, Database, Istat, Served};
use unione_proto::google::r#type::Date;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::protocol_service_server::ProtocolService;
use unione_proto::registry::v1::resident_service_server::ResidentService;
use unione_registry::domain::codice_fiscale;
use unione_registry::{ProtocolApi, ResidentApi};

const SARZANA: &str = "011027";
/// Concurrent callers of every measured operation (and of its baseline).
const CONCURRENCY: usize = 8;

/// How many operations each measurement runs.
struct Sizes {
    registrations: usize,
    residents: usize,
    lookups: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                registrations: 400,
                residents: 200,
                lookups: 2_000,
            }
        } else {
            Self {
                registrations: 4_000,
                residents: 1_000,
                lookups: 20_000,
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

    let table = report("registry", quick, &rows);
    println!("{table}");
    write_report("bench-registry.md", &table);
}

/// Runs the baseline and the registry's operations on one database.
async fn bench_backend(backend: &'static str, db: &Database, sizes: &Sizes) -> Vec<Row> {
    db.migrate(&unione_registry::migrations())
        .await
        .expect("registry migrations apply");
    eprintln!("{backend}: baseline ({CONCURRENCY} concurrent)");
    let base = baseline(db, sizes.registrations, CONCURRENCY).await;
    let base_rate = base.per_second();
    let mut rows = vec![Row::new(
        "baseline: 1-row INSERT per tx",
        backend,
        base,
        base_rate,
    )];

    eprintln!("{backend}: CreateRegistration");
    let protocol = Arc::new(ProtocolApi::new(db.clone(), served()));
    let stats = drive(sizes.registrations, CONCURRENCY, move |i| {
        let protocol = Arc::clone(&protocol);
        async move {
            protocol
                .create_registration(registration(i))
                .await
                .expect("the registration is accepted");
        }
    })
    .await;
    rows.push(Row::new(
        "CreateRegistration (ProtocolApi)",
        backend,
        stats,
        base_rate,
    ));

    eprintln!("{backend}: seeding {} residents", sizes.residents);
    let residents = Arc::new(ResidentApi::new(db.clone(), served()));
    let names = Arc::new(std::sync::Mutex::new(vec![String::new(); sizes.residents]));
    {
        let (residents, names) = (Arc::clone(&residents), Arc::clone(&names));
        drive(sizes.residents, CONCURRENCY, move |i| {
            let (residents, names) = (Arc::clone(&residents), Arc::clone(&names));
            async move {
                let created = residents
                    .create_resident(routed(
                        SARZANA,
                        pb::CreateResidentRequest {
                            parent: format!("comuni/{SARZANA}"),
                            resident: Some(person(i)),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .expect("the resident is registered")
                    .into_inner();
                names.lock().expect("the lock is not poisoned")[i] = created.name;
            }
        })
        .await;
    }
    let names: Arc<Vec<String>> = Arc::new(
        names
            .lock()
            .expect("the lock is not poisoned")
            .iter()
            .cloned()
            .collect(),
    );

    eprintln!("{backend}: GetResident");
    let stats = drive(sizes.lookups, CONCURRENCY, move |i| {
        let residents = Arc::clone(&residents);
        let name = names[i % names.len()].clone();
        async move {
            let mut request = routed(SARZANA, pb::GetResidentRequest { name });
            request.extensions_mut().insert(operator());
            residents
                .get_resident(request)
                .await
                .expect("the resident is found");
        }
    })
    .await;
    rows.push(Row::new(
        "GetResident (ResidentApi)",
        backend,
        stats,
        base_rate,
    ));
    rows
}

/// This node keeps the registry of Sarzana.
fn served() -> Served {
    Served::new([ComuneProfile {
        istat: Istat::parse(SARZANA).expect("a six-digit code"),
        name: "Sarzana".to_owned(),
        fiscal_code: format!("001{SARZANA}00"),
        cadastral_code: "I449".to_owned(),
        segregation_code: "01".to_owned(),
        ipa_code: format!("c_{SARZANA}"),
        population: 20_000,
    }])
}

fn operator() -> Principal {
    Principal {
        sub: "op-bench".to_owned(),
        role: Role::Operator,
        comuni: vec![SARZANA.to_owned()],
        fiscal_number: None,
        gateway: "gw-bench".to_owned(),
    }
}

/// An outgoing letter with a small (about 2 KiB) document of its own content.
fn registration(i: usize) -> tonic::Request<pb::CreateRegistrationRequest> {
    let subject = format!("Comunicazione n. {i}");
    let mut content = format!("%PDF-1.7 {subject}\n").into_bytes();
    content.resize(2_048, b' ');
    let mut request = routed(
        SARZANA,
        pb::CreateRegistrationRequest {
            parent: format!("comuni/{SARZANA}/registers/GEN"),
            registration: Some(pb::Registration {
                direction: pb::Direction::Outgoing.into(),
                subject,
                recipients: vec!["Regione Liguria".to_owned()],
                classification: "2.1".to_owned(),
                assignment: "Segreteria".to_owned(),
                document: Some(pb::Document {
                    file_name: "lettera.pdf".to_owned(),
                    media_type: "application/pdf".to_owned(),
                    content,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        },
    );
    request.extensions_mut().insert(operator());
    request
}

/// Resident `i`: Mario Rossi, born in Sarzana `i` days after 1 January 1950 (so every codice
/// fiscale differs).
fn person(i: usize) -> pb::Resident {
    let birth = NaiveDate::from_ymd_opt(1950, 1, 1)
        .and_then(|d| d.checked_add_days(Days::new(u64::try_from(i).expect("fits u64"))))
        .expect("a real date");
    let date = |d: NaiveDate| {
        use chrono::Datelike;
        Some(Date {
            year: d.year(),
            month: i32::try_from(d.month()).expect("a month"),
            day: i32::try_from(d.day()).expect("a day"),
        })
    };
    pb::Resident {
        codice_fiscale: codice_fiscale::compute("Rossi", "Mario", birth, false, "I449"),
        given_name: "Mario".to_owned(),
        family_name: "Rossi".to_owned(),
        birth_date: date(birth),
        birth_place_code: "I449".to_owned(),
        sex: pb::Sex::Male.into(),
        citizenship: "IT".to_owned(),
        address: Some(pb::Address {
            street: "Via Mazzini".to_owned(),
            house_number: "12/A".to_owned(),
            postal_code: "19038".to_owned(),
            locality: String::new(),
        }),
        registration_date: date(NaiveDate::from_ymd_opt(2015, 3, 2).expect("a real date")),
        registration_reason: pb::RegistrationReason::ImmigrationFromComune.into(),
        ..Default::default()
    }
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
