//! The gateway's overhead (issue 6, "Benchmark: the overhead"): the same unary method of one
//! node, driven in one run on this machine three ways:
//!
//! - **direct**: to the node over mutual TLS (a client certificate from the federation CA and
//!   the routing header);
//! - **gateway**: through the real Unione gateway (TLS and a bearer JWT from the client; the
//!   gateway checks the token and the authorization table, rate limits, routes by the header
//!   over mutual TLS to the node, and writes an audit entry and a usage meter for every call);
//! - **nginx**: through Debian's nginx `grpc_pass`, with the same TLS to the node (a client
//!   certificate from the CA, the node's identity verified), upstream connections kept alive.
//!
//! Methods: a trivial one (`KpiService/GetKpi` of a standard KPI: no database), one that reads
//! the database (`KpiService/ListMeasurements` of a KPI with one measurement seeded through the
//! gateway), and one that reads personal data (`ResidentService/GetResident` of a resident
//! seeded through the gateway), which also writes the registry's access-log entry for the
//! read.
//! Every response's grpc-status is checked, and its body's resource name; a path with any error
//! is reported as failed.
//!
//! ```sh
//! cargo bench -p unione-gateway --bench overhead              # 5 s per path
//! cargo bench -p unione-gateway --bench overhead -- --quick   # 1.5 s per path
//! ```
//!
//! Other options: `--secs S`, `--concurrency N`, `--connections N`, `--rate R` (calls/s of the
//! fixed-rate run), `--no-nginx`. The table is printed and written to
//! `target/bench-overhead.md`. The node, the gateway and the load generator each run on a
//! tokio runtime of their own (as separate processes would), nginx in its own processes: all
//! share this machine's cores, so a path's throughput is bounded by the total CPU work per call.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tokio::runtime::Runtime;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use unione_gateway::GatewayConfig;
use unione_gateway::directory::{DirectoryFile, MemberEntry, NodeEntry, ProvisionEntry};
use unione_kit::certs::{self, Kind};
use unione_kit::tls::TlsFiles;
use unione_kit::token::{self, Role};
use unione_kit::{ComuneProfile, Istat};
use unione_node::config::ServedComune;
use unione_node::{Function, NodeConfig};
use unione_proto::google::r#type::Date;
use unione_proto::quality::v1::kpi_service_client::KpiServiceClient;
use unione_proto::quality::v1::measurement::Status as MeasurementStatus;
use unione_proto::quality::v1::{
    CreateMeasurementRequest, GetKpiRequest, ListMeasurementsRequest, Measurement,
};
use unione_proto::registry::v1::resident_service_client::ResidentServiceClient;
use unione_proto::registry::v1::{
    Address, CreateResidentRequest, GetResidentRequest, RegistrationReason, Resident, Sex,
};

const NODE_ID: &str = "sarzana";
const ISTAT: &str = "011027";
const KPI: &str = "comuni/011027/kpis/UQ0001";
/// A reported KPI of the standard catalogue (yearly), given one measurement for the method
/// that reads the database.
const MEASURED_KPI: &str = "comuni/011027/kpis/UQ0008";
const NGINX: &str = "/usr/sbin/nginx";
/// Rounds of the closed-loop runs: each path runs `secs / ROUNDS` in each, in turn.
const ROUNDS: u32 = 3;

/// Options, from the arguments after `--`.
struct Options {
    quick: bool,
    secs: f64,
    warmup: f64,
    concurrency: usize,
    connections: usize,
    rate: u32,
    rate_secs: f64,
    nginx: bool,
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let mut options = Options {
            quick,
            secs: if quick { 1.5 } else { 5.0 },
            warmup: if quick { 0.5 } else { 1.0 },
            concurrency: 32,
            connections: 4,
            rate: 1_000,
            rate_secs: if quick { 2.0 } else { 5.0 },
            nginx: !args.iter().any(|a| a == "--no-nginx"),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| -> anyhow::Result<String> {
                it.next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value"))
            };
            match arg.as_str() {
                "--secs" => {
                    options.secs = value("--secs")?.parse()?;
                    options.rate_secs = options.secs;
                }
                "--concurrency" => options.concurrency = value("--concurrency")?.parse()?,
                "--connections" => options.connections = value("--connections")?.parse()?,
                "--rate" => options.rate = value("--rate")?.parse()?,
                // `cargo bench` passes `--bench`; the rest are ours.
                _ => {}
            }
        }
        ensure!(options.secs > 0.0, "--secs must be positive");
        ensure!(
            options.concurrency > 0 && options.connections > 0 && options.rate > 0,
            "--concurrency, --connections and --rate must be at least 1"
        );
        Ok(options)
    }
}

fn runtime(name: &str) -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("the {name} runtime"))
}

fn tls_files(dir: &Path, kind: Kind, id: &str) -> TlsFiles {
    let issued = certs::paths(dir, kind, id);
    TlsFiles {
        ca: certs::ca_cert_path(dir).display().to_string(),
        cert: issued.cert.display().to_string(),
        key: issued.key.display().to_string(),
    }
}

/// A synthetic 11-digit numeric fiscal code with a valid check digit (the partita IVA rule).
fn fiscal_code(istat: &str) -> String {
    let body = format!("001{istat}0");
    let total: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            match (i % 2, d * 2) {
                (0, _) => d,
                (_, twice) if twice > 9 => twice - 9,
                (_, twice) => twice,
            }
        })
        .sum();
    format!("{body}{}", (10 - total % 10) % 10)
}

/// The method driven, and the resource name every answer must carry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    GetKpi,
    ListMeasurements,
    GetResident,
}

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::GetKpi => "quality KpiService/GetKpi (no database)",
            Method::ListMeasurements => "quality KpiService/ListMeasurements (SQLite read)",
            Method::GetResident => {
                "registry ResidentService/GetResident (SQLite read and access-log write)"
            }
        }
    }
}

/// One way to the node: its channels (one HTTP/2 connection each) and the metadata it needs.
struct Path3 {
    name: &'static str,
    channels: Vec<Channel>,
    routing: AsciiMetadataValue,
    bearer: Option<AsciiMetadataValue>,
}

impl Path3 {
    /// `message` with the routing header and, where the path needs one, the bearer token.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        metadata.insert("x-goog-request-params", self.routing.clone());
        if let Some(bearer) = &self.bearer {
            metadata.insert("authorization", bearer.clone());
        }
        request
    }

    /// One call; `Err` for any grpc-status but OK, or an answer about another resource.
    async fn call(&self, i: usize, method: Method, resource: &str) -> Result<(), String> {
        let channel = self.channels[i % self.channels.len()].clone();
        let name = match method {
            Method::GetKpi => KpiServiceClient::new(channel)
                .get_kpi(self.request(GetKpiRequest {
                    name: resource.to_owned(),
                }))
                .await
                .map(|r| r.into_inner().name),
            Method::ListMeasurements => KpiServiceClient::new(channel)
                .list_measurements(
                    self.request(ListMeasurementsRequest {
                        parent: resource
                            .rsplit_once("/measurements/")
                            .map_or(resource, |(kpi, _)| kpi)
                            .to_owned(),
                        page_size: 1,
                        page_token: String::new(),
                    }),
                )
                .await
                .map(|r| {
                    r.into_inner()
                        .measurements
                        .into_iter()
                        .next()
                        .map(|m| m.name)
                        .unwrap_or_default()
                }),
            Method::GetResident => ResidentServiceClient::new(channel)
                .get_resident(self.request(GetResidentRequest {
                    name: resource.to_owned(),
                }))
                .await
                .map(|r| r.into_inner().name),
        }
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?;
        if name == resource {
            Ok(())
        } else {
            Err(format!("asked for {resource}, answered {name}"))
        }
    }
}

/// What one run of one path measured.
#[derive(Default)]
struct Stats {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    /// Latencies of every call (answered or not), in microseconds, sorted.
    micros: Vec<u32>,
    secs: f64,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.micros.extend(other.micros);
        self.secs += other.secs;
    }

    fn record(&mut self, micros: u32, outcome: Result<(), String>) {
        self.micros.push(micros);
        match outcome {
            Ok(()) => self.ok += 1,
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn finish(mut self, secs: f64) -> Self {
        self.micros.sort_unstable();
        self.secs = secs;
        self
    }

    fn sorted(mut self) -> Self {
        self.micros.sort_unstable();
        self
    }

    fn throughput(&self) -> f64 {
        self.ok as f64 / self.secs
    }

    /// The `q` quantile, in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        let i = ((self.micros.len() - 1) as f64 * q).round() as usize;
        f64::from(self.micros[i]) / 1000.0
    }

    fn mean_ms(&self) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        self.micros.iter().map(|&m| f64::from(m)).sum::<f64>() / self.micros.len() as f64 / 1000.0
    }
}

fn elapsed_micros(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// Closed loop: `concurrency` calls always in flight over the path's connections; calls
/// started during the warm-up are not counted.
async fn closed_loop(
    path: Arc<Path3>,
    method: Method,
    resource: Arc<str>,
    options: &Options,
    warmup: f64,
    secs: f64,
) -> Stats {
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warmup);
    let until = measure_from + Duration::from_secs_f64(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..options.concurrency {
        let (path, resource) = (path.clone(), resource.clone());
        tasks.spawn(async move {
            let mut stats = Stats::default();
            let mut i = worker;
            loop {
                let sent = Instant::now();
                if sent >= until {
                    return stats;
                }
                let outcome = path.call(i, method, &resource).await;
                if sent >= measure_from {
                    stats.record(elapsed_micros(sent), outcome);
                }
                i += 1;
            }
        });
    }
    let mut total = Stats::default();
    while let Some(done) = tasks.join_next().await {
        total.merge(done.unwrap_or_default());
    }
    total.finish(secs)
}

/// Open loop: one call every `1/rate` s whatever the answers, for `rate_secs` after a warm-up.
async fn fixed_rate(
    path: Arc<Path3>,
    method: Method,
    resource: Arc<str>,
    options: &Options,
) -> Stats {
    let period = Duration::from_secs_f64(1.0 / f64::from(options.rate));
    let warmup_calls = (options.warmup * f64::from(options.rate)) as usize;
    let calls = (options.rate_secs * f64::from(options.rate)) as usize;
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let mut stats = Stats::default();
    let mut collect = |done: Result<(bool, u32, Result<(), String>), tokio::task::JoinError>| {
        if let Ok((true, micros, outcome)) = done {
            stats.record(micros, outcome);
        }
    };
    for i in 0..warmup_calls + calls {
        ticker.tick().await;
        let (path, resource) = (path.clone(), resource.clone());
        let measured = i >= warmup_calls;
        tasks.spawn(async move {
            let sent = Instant::now();
            let outcome = path.call(i, method, &resource).await;
            (measured, elapsed_micros(sent), outcome)
        });
        // Collect finished calls as we go, so the set stays small.
        while let Some(done) = tasks.try_join_next() {
            collect(done);
        }
    }
    while let Some(done) = tasks.join_next().await {
        collect(done);
    }
    stats.finish(options.rate_secs)
}

async fn connect(endpoint: Endpoint, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n {
        // One `Channel` is one HTTP/2 connection.
        channels.push(endpoint.connect().await.context("connecting")?);
    }
    Ok(channels)
}

fn endpoint(url: &str, tls: ClientTlsConfig) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .tls_config(tls)?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5)))
}

/// nginx, as a child process on a temporary prefix; stopped (SIGQUIT, then SIGKILL) on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    version: String,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-QUIT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds nginx, installing Debian's `nginx-light` with apt-get when it is missing and we may.
fn find_nginx() -> Result<PathBuf, String> {
    let nginx = PathBuf::from(NGINX);
    if nginx.exists() {
        return Ok(nginx);
    }
    eprintln!("{NGINX} is missing: trying `apt-get install -y nginx-light` ...");
    let install = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !install(&["install", "-y", "nginx-light"]) {
        let _ = install(&["update"]);
        let _ = install(&["install", "-y", "nginx-light"]);
    }
    if nginx.exists() {
        Ok(nginx)
    } else {
        Err(format!(
            "{NGINX} not found and could not be installed; install it with \
             `sudo apt-get install -y nginx-light` (or `nginx`) and rerun"
        ))
    }
}

fn nginx_version(nginx: &Path) -> String {
    Command::new(nginx)
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_default()
        .trim_start_matches("nginx version: ")
        .to_owned()
}

/// nginx ≥ 1.25.1 says `http2 on;`; older ones put `http2` on the `listen` line.
fn has_http2_directive(version: &str) -> bool {
    let numbers: Vec<u32> = version
        .trim_start_matches("nginx/")
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect();
    numbers
        .get(..3)
        .is_some_and(|v| (v[0], v[1], v[2]) >= (1, 25, 1))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Configures and starts nginx proxying `node` (mutual TLS, the node identity verified).
fn start_nginx(
    nginx: &Path,
    dir: &Path,
    certs_dir: &Path,
    node: SocketAddr,
) -> anyhow::Result<(Nginx, u16)> {
    std::fs::create_dir_all(dir)?;
    let version = nginx_version(nginx);
    let port = free_port()?;
    let server = certs::paths(certs_dir, Kind::Gateway, "nginx");
    let client = certs::paths(certs_dir, Kind::Client, "nginx");
    let ca = certs::ca_cert_path(certs_dir);
    let (listen, http2) = if has_http2_directive(&version) {
        (format!("127.0.0.1:{port} ssl"), "http2 on;")
    } else {
        (format!("127.0.0.1:{port} ssl http2"), "")
    };
    let d = dir.display();
    let conf = format!(
        r#"# Written by gateway/benches/overhead.rs.
{user}worker_processes 2;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    # Client HTTP/2 connections are never closed for their number of streams.
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    # Connections to the node are kept and reused (nginx sends one call at a time on each).
    upstream unione_node {{
        server {node};
        keepalive 128;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen {listen};
        {http2}
        ssl_certificate {server_cert};
        ssl_certificate_key {server_key};
        location / {{
            grpc_pass grpcs://unione_node;
            grpc_ssl_certificate {client_cert};
            grpc_ssl_certificate_key {client_key};
            grpc_ssl_trusted_certificate {ca};
            grpc_ssl_verify on;
            grpc_ssl_verify_depth 2;
            grpc_ssl_name {NODE_ID}.nodes.unione.internal;
            grpc_ssl_session_reuse on;
        }}
    }}
}}
"#,
        user = if is_root() { "user root;\n" } else { "" },
        server_cert = server.cert.display(),
        server_key = server.key.display(),
        client_cert = client.cert.display(),
        client_key = client.key.display(),
        ca = ca.display(),
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let check = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .arg("-t")
        .output()
        .context("running nginx -t")?;
    ensure!(
        check.status.success(),
        "nginx -t refused {}:\n{}",
        conf_path.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    let log = std::fs::File::create(dir.join("stderr.log"))?;
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting nginx")?;
    let mut running = Nginx {
        child,
        dir: dir.to_owned(),
        version,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = running.child.try_wait() {
            bail!(
                "nginx exited ({status}); see {}",
                running.dir.join("error.log").display()
            );
        }
        ensure!(
            Instant::now() < deadline,
            "nginx did not listen within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((running, port))
}

/// The resident seeded through the gateway for the database-reading method.
fn resident() -> Resident {
    let birth = chrono::NaiveDate::from_ymd_opt(1984, 5, 17).expect("a real day");
    Resident {
        name: String::new(),
        codice_fiscale: unione_registry::domain::codice_fiscale::compute(
            "Bianchi", "Giulia", birth, true, "I449",
        ),
        given_name: "Giulia".to_owned(),
        family_name: "Bianchi".to_owned(),
        birth_date: Some(Date {
            year: 1984,
            month: 5,
            day: 17,
        }),
        birth_place_code: "I449".to_owned(),
        sex: Sex::Female as i32,
        citizenship: "IT".to_owned(),
        address: Some(Address {
            street: "Via Mazzini".to_owned(),
            house_number: "12".to_owned(),
            postal_code: "19038".to_owned(),
            locality: String::new(),
        }),
        registration_date: Some(Date {
            year: 1984,
            month: 5,
            day: 17,
        }),
        registration_reason: RegistrationReason::Birth as i32,
        create_time: None,
        etag: String::new(),
    }
}

struct Row {
    method: Method,
    path: &'static str,
    stats: Stats,
}

fn fmt_ms(ms: f64) -> String {
    format!("{ms:.2}")
}

fn report(
    options: &Options,
    rows: &[Row],
    rate_rows: &[Row],
    notes: &[String],
    header: &str,
    load: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}\n");
    let _ = writeln!(
        out,
        "Closed loop: {} calls in flight over {} HTTP/2 connections per path, {:.1} s per path \
         in {ROUNDS} rounds taking turns, after a {:.1} s warm-up. Load average before / after \
         the run (other work on the machine): {}.\n",
        options.concurrency, options.connections, options.secs, options.warmup, load
    );
    let _ = writeln!(
        out,
        "| method | path | calls/s | vs direct | p50 ms | p99 ms | errors | result |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---|");
    for row in rows {
        let direct = rows
            .iter()
            .find(|r| r.path == "direct" && r.method == row.method)
            .map(|r| r.stats.throughput())
            .unwrap_or(f64::NAN);
        let s = &row.stats;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {} | {} | {} | {} |",
            row.method.label(),
            row.path,
            s.throughput(),
            s.throughput() / direct,
            fmt_ms(s.quantile_ms(0.5)),
            fmt_ms(s.quantile_ms(0.99)),
            s.errors,
            match &s.first_error {
                None => "ok".to_owned(),
                Some(e) => format!("FAILED ({e})"),
            }
        );
    }
    let _ = writeln!(out);
    for method in [
        Method::GetKpi,
        Method::ListMeasurements,
        Method::GetResident,
    ] {
        let get = |p: &str| {
            rows.iter()
                .find(|r| r.path == p && r.method == method)
                .map(|r| r.stats.throughput())
        };
        if let (Some(g), Some(n)) = (get("gateway"), get("nginx")) {
            let _ = writeln!(
                out,
                "- {}: gateway / nginx throughput = **{:.2}**",
                method.label(),
                g / n
            );
        }
    }
    if !rate_rows.is_empty() {
        let _ = writeln!(
            out,
            "\nFixed rate: {} calls/s of {} for {:.1} s per path (open loop, latency from each \
             call's start); added = path minus direct.\n",
            options.rate,
            Method::GetKpi.label(),
            options.rate_secs
        );
        let _ = writeln!(
            out,
            "| path | calls | p50 ms | p99 ms | mean ms | added p50 ms | added p99 ms | added mean ms | errors |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        let direct = rate_rows.iter().find(|r| r.path == "direct");
        for row in rate_rows {
            let s = &row.stats;
            let added = |f: &dyn Fn(&Stats) -> f64| direct.map_or(f64::NAN, |d| f(s) - f(&d.stats));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:+.3} | {:+.3} | {:+.3} | {}{} |",
                row.path,
                s.micros.len(),
                fmt_ms(s.quantile_ms(0.5)),
                fmt_ms(s.quantile_ms(0.99)),
                fmt_ms(s.mean_ms()),
                added(&|s| s.quantile_ms(0.5)),
                added(&|s| s.quantile_ms(0.99)),
                added(&Stats::mean_ms),
                s.errors,
                s.first_error
                    .as_ref()
                    .map(|e| format!(" FAILED ({e})"))
                    .unwrap_or_default()
            );
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out);
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}

/// The 1-minute load average, or `?`.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn results_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // target/release/deps/overhead-<hash>
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("bench-overhead.md")
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse()?;
    unione_kit::tls::install_crypto_provider();
    let scratch = tempfile::Builder::new()
        .prefix("unione-bench-overhead-")
        .tempdir()?;
    let root = scratch.path();
    let mut notes = Vec::new();

    // The federation: a CA, the node's, the gateway's, a client's and nginx's certificates,
    // token keys, an operator's token.
    let certs_dir = root.join("certs");
    certs::ensure_ca(&certs_dir, "Unione benchmark")?;
    certs::issue(&certs_dir, Kind::Node, NODE_ID)?;
    certs::issue(&certs_dir, Kind::Gateway, "gateway")?;
    certs::issue(&certs_dir, Kind::Gateway, "nginx")?; // nginx's server certificate
    certs::issue(&certs_dir, Kind::Client, "nginx")?; // nginx's certificate towards the node
    certs::issue(&certs_dir, Kind::Client, "loadgen")?;
    let keys_dir = root.join("keys");
    token::ensure_keys(&keys_dir)?;
    let operator = token::Signer::load(&keys_dir)?.issue(
        "bench-operator",
        Role::Operator,
        vec![ISTAT.to_owned()],
        None,
        1,
    );

    // The node, on a runtime of its own.
    let node_rt = runtime("node")?;
    let node_config = NodeConfig {
        node_id: NODE_ID.to_owned(),
        listen: "127.0.0.1:0".to_owned(),
        data_dir: root.join("node").display().to_string(),
        tls: tls_files(&certs_dir, Kind::Node, NODE_ID),
        comuni: vec![ServedComune {
            profile: ComuneProfile {
                istat: Istat::parse(ISTAT).expect("a six-digit code"),
                name: "Sarzana".to_owned(),
                fiscal_code: fiscal_code(ISTAT),
                cadastral_code: "I449".to_owned(),
                segregation_code: "01".to_owned(),
                ipa_code: "c_i449".to_owned(),
                population: 21_800,
            },
            functions: Function::ALL.to_vec(),
        }],
        ..NodeConfig::default()
    };
    let node = node_rt.block_on(async {
        let listener = unione_kit::server::bind("127.0.0.1:0".parse()?).await?;
        unione_node::start_on(node_config, listener).await
    })?;
    let node_addr = node.addr;

    // The gateway, on a runtime of its own, with a directory naming the node.
    let directory = DirectoryFile {
        members: vec![MemberEntry {
            istat: ISTAT.to_owned(),
            name: "Sarzana".to_owned(),
            fiscal_code: fiscal_code(ISTAT),
            cadastral_code: "I449".to_owned(),
            population: 21_800,
            province: "SP".to_owned(),
            peer_group: "bench".to_owned(),
            ipa_code: "c_i449".to_owned(),
            segregation_code: "01".to_owned(),
        }],
        nodes: vec![NodeEntry {
            node_id: NODE_ID.to_owned(),
            endpoint: format!("https://{node_addr}"),
        }],
        provisions: Function::ALL
            .iter()
            .map(|f| ProvisionEntry {
                comune: ISTAT.to_owned(),
                function: f.as_str().to_owned(),
                node: NODE_ID.to_owned(),
            })
            .collect(),
        revoked_certificates: Vec::new(),
    };
    let directory_path = root.join("directory.toml");
    std::fs::write(&directory_path, toml::to_string(&directory)?)?;
    let gateway_config = GatewayConfig {
        gateway_id: "gateway".to_owned(),
        listen: "127.0.0.1:0".to_owned(),
        data_dir: root.join("gateway").display().to_string(),
        directory_file: directory_path.display().to_string(),
        token_keys_dir: keys_dir.display().to_string(),
        tls: tls_files(&certs_dir, Kind::Gateway, "gateway"),
        // The rate limits protect a federation from one user; here they would measure
        // themselves, so they are set out of reach. Everything else is as deployed.
        calls_per_second_per_principal: 10_000_000,
        calls_per_second_per_comune: 10_000_000,
        ..GatewayConfig::default()
    };
    let node_connections = gateway_config.node_connections;
    let gateway_rt = runtime("gateway")?;
    let gateway = gateway_rt.block_on(async {
        let listener = unione_kit::server::bind("127.0.0.1:0".parse()?).await?;
        unione_gateway::start_on(gateway_config, listener).await
    })?;
    let gateway_addr = gateway.addr;

    // nginx, if we have it.
    let nginx = if options.nginx {
        match find_nginx() {
            Ok(bin) => Some(start_nginx(
                &bin,
                &root.join("nginx"),
                &certs_dir,
                node_addr,
            )?),
            Err(why) => {
                eprintln!("SKIPPING the nginx path: {why}");
                notes.push(format!("nginx path skipped: {why}"));
                None
            }
        }
    } else {
        notes.push("nginx path skipped (--no-nginx)".to_owned());
        None
    };

    // The load generator, on a runtime of its own.
    let client_rt = runtime("loadgen")?;
    let ca = std::fs::read(certs::ca_cert_path(&certs_dir))?;
    let loadgen = certs::paths(&certs_dir, Kind::Client, "loadgen");
    let routing: AsciiMetadataValue = format!("comune=comuni%2F{ISTAT}").parse()?;
    let bearer: AsciiMetadataValue = MetadataValue::try_from(format!("Bearer {operator}"))?;
    let (paths, resident_name, measurement_name) = client_rt.block_on(async {
        let server_tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca))
            .domain_name("localhost");
        let direct_tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca))
            .identity(Identity::from_pem(
                std::fs::read(&loadgen.cert)?,
                std::fs::read(&loadgen.key)?,
            ))
            .domain_name(Kind::Node.identity(NODE_ID));
        let mut paths = vec![
            Arc::new(Path3 {
                name: "direct",
                channels: connect(
                    endpoint(&format!("https://{node_addr}"), direct_tls)?,
                    options.connections,
                )
                .await?,
                routing: routing.clone(),
                bearer: None,
            }),
            Arc::new(Path3 {
                name: "gateway",
                channels: connect(
                    endpoint(&format!("https://{gateway_addr}"), server_tls.clone())?,
                    options.connections,
                )
                .await?,
                routing: routing.clone(),
                bearer: Some(bearer.clone()),
            }),
        ];
        if let Some((_, port)) = &nginx {
            paths.push(Arc::new(Path3 {
                name: "nginx",
                channels: connect(
                    endpoint(&format!("https://127.0.0.1:{port}"), server_tls)?,
                    options.connections,
                )
                .await?,
                routing: routing.clone(),
                bearer: None,
            }));
        }

        // Seed the resident through the gateway, as a client would (retrying while the
        // gateway's lazy connection to the node comes up).
        let create = CreateResidentRequest {
            parent: format!("comuni/{ISTAT}"),
            resident: Some(resident()),
            request_id: "bench-resident-1".to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        let created = loop {
            match ResidentServiceClient::new(paths[1].channels[0].clone())
                .create_resident(paths[1].request(create.clone()))
                .await
            {
                Ok(r) => break r.into_inner(),
                Err(status) if Instant::now() < deadline => {
                    eprintln!("seeding: {status:?}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(status) => bail!("CreateResident through the gateway: {status:?}"),
            }
        };
        let seeded = CreateMeasurementRequest {
            parent: MEASURED_KPI.to_owned(),
            measurement: Some(Measurement {
                period: "2025".to_owned(),
                value: 72.5,
                status: MeasurementStatus::Ok as i32,
                ..Measurement::default()
            }),
            request_id: "bench-measurement-1".to_owned(),
        };
        let measurement = KpiServiceClient::new(paths[1].channels[0].clone())
            .create_measurement(paths[1].request(seeded))
            .await
            .map_err(|status| anyhow::anyhow!("CreateMeasurement through the gateway: {status:?}"))?
            .into_inner()
            .name;
        // Every path answers every method before anything is measured.
        for path in &paths {
            path.call(0, Method::GetKpi, KPI)
                .await
                .map_err(|e| anyhow::anyhow!("{} GetKpi: {e}", path.name))?;
            path.call(0, Method::GetResident, &created.name)
                .await
                .map_err(|e| anyhow::anyhow!("{} GetResident: {e}", path.name))?;
            path.call(0, Method::ListMeasurements, &measurement)
                .await
                .map_err(|e| anyhow::anyhow!("{} ListMeasurements: {e}", path.name))?;
        }
        anyhow::Ok((paths, created.name, measurement))
    })?;

    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let nginx_version = nginx
        .as_ref()
        .map_or_else(|| "not run".to_owned(), |(n, _)| n.version.clone());
    let header = format!(
        "## Unione gateway overhead, {} UTC\n\n\
         Machine: {cores} cores (`{}`), shared by the load generator, the node, the gateway \
         and nginx. Node: SQLite, every function of one comune. Gateway: {} connections to the \
         node, JWT check, authorization table, audit log and usage meters on (SQLite). nginx: \
         {nginx_version}, 2 workers, upstream keepalive. Command: `cargo bench -p \
         unione-gateway --bench overhead{}`.",
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        std::env::consts::ARCH,
        node_connections,
        if options.quick { " -- --quick" } else { "" },
    );
    eprintln!("federation up: node {node_addr}, gateway {gateway_addr}; measuring ...");

    // One cost the gateway pays on every call and nginx does not: verifying the JWT.
    let verifier = token::Verifier::load(&keys_dir)?;
    let rounds = 2_000u32;
    let started = Instant::now();
    for _ in 0..rounds {
        verifier
            .verify(std::hint::black_box(&operator))
            .map_err(|e| anyhow::anyhow!("the operator token does not verify: {e:?}"))?;
    }
    notes.push(format!(
        "One Ed25519 JWT verification (`token::Verifier::verify`, done by the gateway on every \
         call) takes {:.1} µs on one core here.",
        started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
    ));

    // Paths take turns in short rounds, so a change in the machine's background load (other
    // builds, say) falls on all of them alike.
    let load_before = loadavg();
    let mut rows = Vec::new();
    for (method, resource) in [
        (Method::GetKpi, Arc::<str>::from(KPI)),
        (
            Method::ListMeasurements,
            Arc::<str>::from(measurement_name.as_str()),
        ),
        (
            Method::GetResident,
            Arc::<str>::from(resident_name.as_str()),
        ),
    ] {
        let mut totals: Vec<Stats> = paths.iter().map(|_| Stats::default()).collect();
        for round in 0..ROUNDS {
            let warmup = if round == 0 { options.warmup } else { 0.2 };
            for (path, total) in paths.iter().zip(&mut totals) {
                total.merge(client_rt.block_on(closed_loop(
                    path.clone(),
                    method,
                    resource.clone(),
                    &options,
                    warmup,
                    options.secs / f64::from(ROUNDS),
                )));
            }
        }
        for (path, stats) in paths.iter().zip(totals) {
            let stats = stats.sorted();
            eprintln!(
                "  {:<55} {:<8} {:>8.0} calls/s, {} errors",
                method.label(),
                path.name,
                stats.throughput(),
                stats.errors
            );
            rows.push(Row {
                method,
                path: path.name,
                stats,
            });
        }
    }
    let mut rate_rows = Vec::new();
    for path in &paths {
        let stats = client_rt.block_on(fixed_rate(
            path.clone(),
            Method::GetKpi,
            Arc::from(KPI),
            &options,
        ));
        eprintln!(
            "  fixed rate {:<8} p50 {:.3} ms, p99 {:.3} ms, {} errors",
            path.name,
            stats.quantile_ms(0.5),
            stats.quantile_ms(0.99),
            stats.errors
        );
        rate_rows.push(Row {
            method: Method::GetKpi,
            path: path.name,
            stats,
        });
    }

    let load = format!("{load_before} / {}", loadavg());
    let table = report(&options, &rows, &rate_rows, &notes, &header, &load);
    println!("\n{table}");
    let out = results_path();
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &table).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("written to {}", out.display());

    // Stop everything we started.
    drop(paths);
    drop(client_rt);
    drop(nginx);
    gateway_rt.block_on(gateway.stop())?;
    node_rt.block_on(node.stop())?;
    let failed = rows.iter().chain(&rate_rows).any(|r| r.stats.errors > 0);
    ensure!(!failed, "some paths had errors: see the table");
    Ok(())
}
