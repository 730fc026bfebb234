//! Cross-town comparisons at federation scale (issue 7, "Benchmark"): `CompareKpi` over the
//! whole federation through the real gateway, for simulated federations of 10, 100, 1,000 and
//! 7,896 comuni, against a baseline measured in the same run.
//!
//! Each case builds a federation on this machine: a few real nodes (`unione_node`, in process,
//! SQLite), each serving up to 500 comuni with their own measurements (seeded through the
//! quality service's own storage before the node starts), a directory with every comune as a
//! member, and the real gateway, whose benchmark snapshot is filled by its real refresher over
//! mutual TLS (the time it takes is reported). Then, one call at a time:
//!
//! - **gateway**: `BenchmarkService/CompareKpi` of UQ0001 for 2026-Q1 over the whole federation,
//!   from a client over TLS with a bearer token (token check, authorization table, the
//!   comparison from the snapshot, every row encoded and sent);
//! - **baseline**: the same values read from one local SQLite table (indexed on KPI and period)
//!   and normalised, ranked, banded and summarised in process with the same code.
//!
//! Every gateway answer is checked (member and reported counts). The nodes, the gateway and
//! the client each run on a tokio runtime of their own, as separate processes would.
//!
//! ```sh
//! cargo bench -p unione-gateway --bench comparison                       # all four cases
//! cargo bench -p unione-gateway --bench comparison -- --comuni 10,100    # what CI runs
//! cargo bench -p unione-gateway --bench comparison -- --quick            # fewer calls
//! ```
//!
//! Options: `--comuni N,N,...`, `--quick`, `--calls N` (calls measured per path and case). The
//! table is printed and written to `target/bench-comparison.md`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::NaiveDate;
use tokio::runtime::Runtime;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use unione_gateway::GatewayConfig;
use unione_gateway::benchmarks::compare::Ranking;
use unione_gateway::directory::{DirectoryFile, MemberEntry, NodeEntry, ProvisionEntry};
use unione_kit::bench::{Stats, drive, millis, significant};
use unione_kit::certs::{self, Kind};
use unione_kit::storage::now_micros;
use unione_kit::tls::TlsFiles;
use unione_kit::token::{self, Role};
use unione_kit::{ComuneProfile, Database, Istat};
use unione_node::config::ServedComune;
use unione_node::{Function, NodeConfig, RunningNode};
use unione_proto::federation::v1::benchmark_group::Selector;
use unione_proto::federation::v1::benchmark_service_client::BenchmarkServiceClient;
use unione_proto::federation::v1::{BenchmarkGroup, CompareKpiRequest, KpiComparison};
use unione_quality::domain::{Reading, Status, standard_kpi};

/// Comuni per node.
const PER_NODE: usize = 500;
const KPI: &str = "UQ0001";
const PERIOD: &str = "2026-Q1";
/// Targets of the issue: p99 at 1,000 and at 7,896 comuni.
const TARGETS: &[(usize, f64)] = &[(1_000, 50.0), (7_896, 200.0)];

struct Options {
    quick: bool,
    cases: Vec<usize>,
    calls: usize,
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let mut options = Options {
            quick,
            cases: vec![10, 100, 1_000, 7_896],
            calls: if quick { 40 } else { 200 },
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| -> anyhow::Result<String> {
                it.next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value"))
            };
            match arg.as_str() {
                "--comuni" => {
                    options.cases = value("--comuni")?
                        .split(',')
                        .map(|n| n.trim().parse::<usize>())
                        .collect::<Result<_, _>>()
                        .context("--comuni takes numbers separated by commas")?;
                }
                "--calls" => options.calls = value("--calls")?.parse()?,
                // `cargo bench` passes `--bench`; the rest are ours.
                _ => {}
            }
        }
        ensure!(
            options.cases.iter().all(|n| (1..=99_999).contains(n)),
            "--comuni: 1 to 99,999 comuni per case"
        );
        ensure!(options.calls >= 10, "--calls must be at least 10");
        Ok(options)
    }
}

fn runtime(name: &str, threads: usize) -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("the {name} runtime"))
}

fn tls_files(dir: &Path, kind: Kind, id: &str) -> anyhow::Result<TlsFiles> {
    let issued = certs::issue(dir, kind, id)?;
    Ok(TlsFiles {
        ca: certs::ca_cert_path(dir).display().to_string(),
        cert: issued.cert.display().to_string(),
        key: issued.key.display().to_string(),
    })
}

/// One simulated comune and what it publishes.
struct Comune {
    istat: String,
    population: i64,
    /// (KPI, period, status, value).
    published: Vec<(&'static str, String, Status, f64)>,
}

/// A deterministic federation of `n` comuni: populations from 300 to about 60,000; UQ0001 for
/// seven quarters, UQ0006 (a count, normalised per 1,000 inhabitants) and UQ0008 for 2025. Every
/// 20th comune has not reported UQ0001 for 2026-Q1 and every 50th records it not applicable;
/// values repeat, so ranks have ties.
fn federation(n: usize) -> Vec<Comune> {
    (0..n)
        .map(|i| {
            let k = i64::try_from(i).expect("small");
            let population = 300 + (k * 7_919) % 60_000;
            let share = 60.0 + f64::from(u32::try_from((k * 37) % 400).expect("small")) / 10.0;
            let mut published = Vec::new();
            for quarter in [
                "2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2026-Q2", "2026-Q3",
            ] {
                published.push((KPI, quarter.to_owned(), Status::Ok, share - 1.0));
            }
            let status = match i {
                i if i % 50 == 49 => Status::NotApplicable,
                i if i % 20 == 19 => Status::Missing,
                _ => Status::Ok,
            };
            let value = if status == Status::Ok { share } else { 0.0 };
            published.push((KPI, PERIOD.to_owned(), status, value));
            #[allow(clippy::cast_precision_loss)]
            let complaints = (population / 500 + k % 7) as f64;
            published.push(("UQ0006", "2025".to_owned(), Status::Ok, complaints));
            published.push((
                "UQ0008",
                "2025".to_owned(),
                Status::Ok,
                50.0 + (k % 40) as f64,
            ));
            Comune {
                istat: format!("{:06}", 100_001 + i),
                population,
                published,
            }
        })
        .collect()
}

/// How many comuni have a value of UQ0001 for 2026-Q1.
fn reported(comuni: &[Comune]) -> usize {
    comuni
        .iter()
        .filter(|c| {
            c.published
                .iter()
                .any(|p| p.1 == PERIOD && p.2 == Status::Ok)
        })
        .count()
}

/// Writes a node's measurements through the quality service's storage, in one transaction.
async fn seed(url: &str, comuni: &[Comune]) -> anyhow::Result<()> {
    let db = Database::connect(url).await?;
    db.migrate(&unione_quality::migrations()).await?;
    let today = NaiveDate::from_ymd_opt(2026, 11, 1).context("a date")?;
    let mut tx = db.begin_write().await?;
    for comune in comuni {
        let istat = Istat::parse(&comune.istat).context("an ISTAT code")?;
        for (kpi, period, status, value) in &comune.published {
            let kpi = standard_kpi(kpi).context("a standard KPI")?;
            let reading = Reading::new(kpi, period, Some(*status), *value, today)?;
            unione_quality::storage::record_measurement(
                &mut tx,
                &istat,
                &kpi.id,
                &reading,
                now_micros(),
            )
            .await?;
        }
    }
    tx.commit().await?;
    db.close().await;
    Ok(())
}

fn member(c: &Comune) -> MemberEntry {
    MemberEntry {
        istat: c.istat.clone(),
        name: format!("Comune {}", c.istat),
        fiscal_code: format!("001{}00", c.istat),
        cadastral_code: "A001".to_owned(),
        population: c.population,
        province: "XX".to_owned(),
        peer_group: "bench".to_owned(),
        ipa_code: format!("c_{}", c.istat),
        segregation_code: "01".to_owned(),
    }
}

/// What one case measured.
struct Case {
    comuni: usize,
    nodes: usize,
    fill: Duration,
    reported: i32,
    bytes: usize,
    gateway: Stats,
    baseline: Stats,
}

fn compare_request(token: &str) -> tonic::Request<CompareKpiRequest> {
    let mut request = tonic::Request::new(CompareKpiRequest {
        kpi: KPI.to_owned(),
        period: PERIOD.to_owned(),
        group: Some(BenchmarkGroup {
            selector: Some(Selector::Federation(true)),
        }),
        highlight_comune: String::new(),
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a token is ASCII"),
    );
    request
}

async fn compare(channel: &Channel, token: &str) -> anyhow::Result<KpiComparison> {
    Ok(BenchmarkServiceClient::new(channel.clone())
        .max_decoding_message_size(64 * 1024 * 1024)
        .compare_kpi(compare_request(token))
        .await?
        .into_inner())
}

/// The baseline: the values of the KPI and period from one local table, normalised (UQ0001 is
/// not, so this is the identity, as in the gateway), ranked, banded and summarised.
async fn baseline(dir: &Path, comuni: &[Comune], calls: usize) -> anyhow::Result<Stats> {
    let db = Database::open_sqlite(&dir.join("baseline.sqlite")).await?;
    sqlx::query(
        "CREATE TABLE baseline_values (comune TEXT NOT NULL, kpi_id TEXT NOT NULL, \
         period TEXT NOT NULL, population INTEGER NOT NULL, status TEXT NOT NULL, \
         value REAL NOT NULL, PRIMARY KEY (kpi_id, period, comune))",
    )
    .execute(db.pool())
    .await?;
    let mut tx = db.begin_write().await?;
    for c in comuni {
        for (kpi, period, status, value) in &c.published {
            sqlx::query(
                "INSERT INTO baseline_values (comune, kpi_id, period, population, status, value) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(c.istat.clone())
            .bind(*kpi)
            .bind(period.clone())
            .bind(c.population)
            .bind(status.code())
            .bind(*value)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    let expected = reported(comuni);
    let kpi = standard_kpi(KPI).context("UQ0001")?;
    let probe = db.clone();
    let stats = drive(calls, 1, move |_| {
        let db = probe.clone();
        async move {
            let rows: Vec<(String, i64, String, f64)> = sqlx::query_as(
                "SELECT comune, population, status, value FROM baseline_values \
                 WHERE kpi_id = $1 AND period = $2",
            )
            .bind(KPI)
            .bind(PERIOD)
            .fetch_all(db.pool())
            .await
            .expect("the baseline reads");
            let values: Vec<(String, f64)> = rows
                .into_iter()
                .filter(|r| r.2 == "OK")
                .filter_map(|(comune, population, _, value)| {
                    unione_quality::domain::review::compared_value(kpi, value, population)
                        .map(|v| (comune, v))
                })
                .collect();
            let ranking = Ranking::new(kpi.polarity, values.iter().map(|v| v.1));
            let placed: Vec<_> = values.iter().map(|v| ranking.place(v.1)).collect();
            let stats = ranking.statistics();
            assert_eq!(placed.len(), expected, "the baseline sees every value");
            std::hint::black_box((placed, stats));
        }
    })
    .await;
    db.close().await;
    Ok(stats)
}

fn run_case(n: usize, options: &Options) -> anyhow::Result<Case> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().to_path_buf();
    let certs_dir = root.join("certs");
    certs::ensure_ca(&certs_dir, "Bench federation")?;
    let keys = root.join("keys");
    token::ensure_keys(&keys)?;
    let admin = token::Signer::load(&keys)?.issue("admin-1", Role::Admin, Vec::new(), None, 1);
    let comuni = federation(n);
    let expected_ok = reported(&comuni);

    // The nodes: seeded, then served, on their own runtime.
    let node_rt = runtime("nodes", 2)?;
    let mut nodes: Vec<(String, RunningNode)> = Vec::new();
    for (k, chunk) in comuni.chunks(PER_NODE).enumerate() {
        let id = format!("node-{k}");
        let config = NodeConfig {
            node_id: id.clone(),
            listen: "127.0.0.1:0".to_owned(),
            data_dir: root.join(&id).display().to_string(),
            tls: tls_files(&certs_dir, Kind::Node, &id)?,
            comuni: chunk
                .iter()
                .map(|c| {
                    Ok(ServedComune {
                        profile: ComuneProfile {
                            istat: Istat::parse(&c.istat).context("an ISTAT code")?,
                            name: format!("Comune {}", c.istat),
                            fiscal_code: format!("001{}00", c.istat),
                            cadastral_code: "A001".to_owned(),
                            segregation_code: "01".to_owned(),
                            ipa_code: format!("c_{}", c.istat),
                            population: c.population,
                        },
                        functions: vec![Function::Quality],
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            ..NodeConfig::default()
        };
        std::fs::create_dir_all(&config.data_dir)?;
        node_rt.block_on(seed(&config.database_url(), chunk))?;
        let node = node_rt.block_on(unione_node::start(config))?;
        nodes.push((id, node));
    }

    let directory = DirectoryFile {
        members: comuni.iter().map(member).collect(),
        nodes: nodes
            .iter()
            .map(|(id, node)| NodeEntry {
                node_id: id.clone(),
                endpoint: format!("https://{}", node.addr),
            })
            .collect(),
        provisions: comuni
            .chunks(PER_NODE)
            .enumerate()
            .flat_map(|(k, chunk)| {
                chunk.iter().map(move |c| ProvisionEntry {
                    comune: c.istat.clone(),
                    function: "quality".to_owned(),
                    node: format!("node-{k}"),
                })
            })
            .collect(),
        revoked_certificates: Vec::new(),
    };
    let file = root.join("directory.toml");
    std::fs::write(&file, toml::to_string(&directory)?)?;

    // The gateway, its snapshot filled by its own refresher (one round at start; the next in
    // an hour, so no refresh runs while latency is measured).
    let gateway_rt = runtime("gateway", 2)?;
    let started = Instant::now();
    let gateway = gateway_rt.block_on(unione_gateway::start(GatewayConfig {
        gateway_id: "gateway".into(),
        listen: "127.0.0.1:0".into(),
        data_dir: root.join("gateway").display().to_string(),
        directory_file: file.display().to_string(),
        token_keys_dir: keys.display().to_string(),
        benchmark_refresh_ms: 3_600_000,
        benchmark_max_age_ms: 7_200_000,
        benchmark_concurrency: 32,
        benchmark_call_timeout_ms: 30_000,
        calls_per_second_per_principal: 1_000_000,
        calls_per_second_per_comune: 1_000_000,
        tls: tls_files(&certs_dir, Kind::Gateway, "gateway")?,
        ..GatewayConfig::default()
    }))?;

    let client_rt = runtime("client", 1)?;
    let ca = std::fs::read(certs::ca_cert_path(&certs_dir))?;
    let channel = client_rt.block_on(
        Channel::from_shared(format!("https://{}", gateway.addr))?
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .domain_name("localhost"),
            )?
            .connect(),
    )?;
    let member_count = i32::try_from(n)?;
    let expected = i32::try_from(expected_ok)?;
    let (fill, bytes) = client_rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            let answer = compare(&channel, &admin).await?;
            let reported = answer.statistics.as_ref().map_or(0, |s| s.reported_count);
            if reported == expected {
                break Ok::<_, anyhow::Error>((
                    started.elapsed(),
                    prost::Message::encoded_len(&answer),
                ));
            }
            ensure!(
                Instant::now() < deadline,
                "the snapshot did not fill: {reported} of {expected} values"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })?;

    let calls = options.calls;
    let gateway_stats = client_rt.block_on(async {
        for _ in 0..5 {
            compare(&channel, &admin).await?;
        }
        let (channel, admin) = (channel.clone(), admin.clone());
        Ok::<_, anyhow::Error>(
            drive(calls, 1, move |_| {
                let (channel, admin) = (channel.clone(), admin.clone());
                async move {
                    let answer = compare(&channel, &admin).await.expect("CompareKpi answers");
                    let s = answer.statistics.expect("statistics");
                    assert_eq!(
                        (s.member_count, s.reported_count),
                        (member_count, expected),
                        "every member and every value"
                    );
                }
            })
            .await,
        )
    })?;
    let baseline_stats = client_rt.block_on(baseline(&root, &comuni, calls))?;

    gateway_rt.block_on(gateway.stop())?;
    let node_count = nodes.len();
    for (_, node) in nodes {
        node_rt.block_on(node.stop())?;
    }
    Ok(Case {
        comuni: n,
        nodes: node_count,
        fill,
        reported: expected,
        bytes,
        gateway: gateway_stats,
        baseline: baseline_stats,
    })
}

fn report(cases: &[Case], quick: bool) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let mut out = format!(
        "### CompareKpi over the whole federation, {} run\n\n\
         {} UTC; {cpus} CPUs ({} {}); nodes, gateway and client in one process on runtimes of \
         their own; one call at a time. Gateway: `CompareKpi` of {KPI} for {PERIOD} over every \
         member, TLS and a token, served from the snapshot. Baseline: the same values from one \
         local SQLite table, ranked in process with the same code, same run. Ratio = gateway \
         latency / baseline latency.\n\n\
         | comuni | nodes | values | snapshot filled (s) | answer (KiB) | gateway p50 (ms) | \
         gateway p99 (ms) | baseline p50 (ms) | baseline p99 (ms) | p50 ratio | p99 ratio | \
         target |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        if quick { "quick" } else { "full" },
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        std::env::consts::OS,
        std::env::consts::ARCH,
    );
    for c in cases {
        let (g50, g99) = (
            millis(c.gateway.quantile(0.50)),
            millis(c.gateway.quantile(0.99)),
        );
        let (b50, b99) = (
            millis(c.baseline.quantile(0.50)),
            millis(c.baseline.quantile(0.99)),
        );
        let target =
            TARGETS
                .iter()
                .find(|(n, _)| *n == c.comuni)
                .map_or("-".to_owned(), |(_, ms)| {
                    format!(
                        "p99 <= {ms} ms: {}",
                        if g99 <= *ms { "met" } else { "missed" }
                    )
                });
        #[allow(clippy::cast_precision_loss)]
        let kib = c.bytes as f64 / 1024.0;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {g50:.2} | {g99:.2} | {b50:.2} | {b99:.2} | {} | {} | {target} |\n",
            c.comuni,
            c.nodes,
            c.reported,
            significant(c.fill.as_secs_f64()),
            significant(kib),
            significant(g50 / b50),
            significant(g99 / b99),
        ));
    }
    if let Some(first) = cases.first() {
        out.push_str("\nGrowth of the gateway's p50 with the number of comuni (per comune, against the first case):\n\n");
        let base = millis(first.gateway.quantile(0.50));
        for c in cases {
            let p50 = millis(c.gateway.quantile(0.50));
            #[allow(clippy::cast_precision_loss)]
            let per_comune_us = p50 * 1_000.0 / c.comuni as f64;
            out.push_str(&format!(
                "- {} comuni: p50 {} x the {}-comune case, {} us per comune\n",
                c.comuni,
                significant(p50 / base),
                first.comuni,
                significant(per_comune_us),
            ));
        }
    }
    out
}

fn main() -> anyhow::Result<()> {
    unione_kit::tls::install_crypto_provider();
    let options = Options::parse()?;
    let mut cases = Vec::new();
    for &n in &options.cases {
        eprintln!("case: {n} comuni");
        cases.push(run_case(n, &options).with_context(|| format!("the {n}-comune case"))?);
    }
    let table = report(&cases, options.quick);
    println!("{table}");
    unione_kit::bench::write_report("bench-comparison.md", &table);
    Ok(())
}
