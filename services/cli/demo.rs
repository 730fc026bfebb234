//! `unione demo`: a complete federation of Magra valley comuni on this machine.
//!
//! Everything it needs goes into the data directory (certificates, token keys, one SQLite
//! database per node and one for the gateway, the configuration files, `demo.json`), so a
//! second run starts again on the same data. Every listener is on a loopback address.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use serde::Serialize;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use unione_gateway::GatewayConfig;
use unione_gateway::config::WebConfig;
use unione_gateway::directory::{DirectoryFile, MemberEntry, NodeEntry, ProvisionEntry};
use unione_kit::certs::{self, Kind};
use unione_kit::server::Limits;
use unione_kit::tls::TlsFiles;
use unione_kit::token::{self, Role};
use unione_kit::{ComuneProfile, Istat};
use unione_node::config::{OperationalDataConfig, RegistryConfig, ServedComune};
use unione_node::{Function, NodeConfig};

use crate::seed;

/// Options of `unione demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Where certificates, databases, configuration and tokens are kept.
    #[arg(long, default_value = ".unione-demo")]
    pub data_dir: PathBuf,
    /// The loopback address every server listens on (127.0.0.0/8 only).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: Ipv4Addr,
    /// The gateway's port; the nodes take the next ones and their metrics endpoints the ports
    /// from base + 100. 0 picks free ports.
    #[arg(long, default_value_t = 7400)]
    pub base_port: u16,
    /// PostgreSQL URL for the capofila node (Sarzana), to see a node on PostgreSQL; the other
    /// nodes and the gateway always use SQLite.
    #[arg(long)]
    pub postgres_url: Option<String>,
}

/// A town of the demo: (ISTAT, name, cadastral code, population, segregation code).
pub struct Town {
    pub istat: &'static str,
    pub name: &'static str,
    pub cadastral: &'static str,
    pub population: i64,
    pub segregation: &'static str,
}

/// The demo's member comuni, in the lower Magra valley (province of La Spezia).
pub const TOWNS: &[Town] = &[
    Town {
        istat: "011027",
        name: "Sarzana",
        cadastral: "I449",
        population: 21_800,
        segregation: "01",
    },
    Town {
        istat: "011011",
        name: "Castelnuovo Magra",
        cadastral: "C240",
        population: 8_200,
        segregation: "02",
    },
    Town {
        istat: "011020",
        name: "Luni",
        cadastral: "G143",
        population: 8_300,
        segregation: "03",
    },
    Town {
        istat: "011026",
        name: "Santo Stefano di Magra",
        cadastral: "I363",
        population: 8_700,
        segregation: "04",
    },
    Town {
        istat: "011002",
        name: "Arcola",
        cadastral: "A373",
        population: 10_200,
        segregation: "05",
    },
    Town {
        istat: "011001",
        name: "Ameglia",
        cadastral: "A261",
        population: 4_300,
        segregation: "06",
    },
];

/// A demo node: its id, and for each comune it serves (by ISTAT code) the functions it runs.
pub type DemoNode = (&'static str, Vec<(&'static str, Vec<Function>)>);

/// The demo's nodes and what each runs: Sarzana is the capofila that runs the registry office
/// for Ameglia too; Ameglia keeps its payments desk and quality office on its own node.
pub fn nodes() -> Vec<DemoNode> {
    use Function::{Payments, Quality, Registry};
    vec![
        (
            "sarzana",
            vec![
                ("011027", vec![Registry, Payments, Quality]),
                ("011001", vec![Registry]),
            ],
        ),
        (
            "castelnuovo-magra",
            vec![("011011", vec![Registry, Payments, Quality])],
        ),
        ("luni", vec![("011020", vec![Registry, Payments, Quality])]),
        (
            "santo-stefano-magra",
            vec![("011026", vec![Registry, Payments, Quality])],
        ),
        (
            "arcola",
            vec![("011002", vec![Registry, Payments, Quality])],
        ),
        ("ameglia", vec![("011001", vec![Payments, Quality])]),
    ]
}

/// The 11-digit numeric fiscal code of a demo comune: synthetic (`001` + ISTAT + `0`) with a
/// valid Luhn check digit (DOMAIN.md, "Partita IVA").
pub fn synthetic_fiscal_code(istat: &str) -> String {
    let body = format!("001{istat}0");
    let check = unione_payments::domain::fiscal::numeric_check_digit(&body).expect("ten digits");
    format!("{body}{check}")
}

/// The profile of a demo town.
pub fn profile(town: &Town) -> ComuneProfile {
    ComuneProfile {
        istat: Istat::parse(town.istat).expect("demo ISTAT codes are valid"),
        name: town.name.to_owned(),
        fiscal_code: synthetic_fiscal_code(town.istat),
        cadastral_code: town.cadastral.to_owned(),
        segregation_code: town.segregation.to_owned(),
        ipa_code: format!("c_{}", town.cadastral.to_ascii_lowercase()),
        population: town.population,
    }
}

fn town(istat: &str) -> &'static Town {
    TOWNS
        .iter()
        .find(|t| t.istat == istat)
        .expect("demo nodes name demo towns")
}

/// What `demo.json` holds: how to reach and call the demo.
#[derive(Serialize)]
pub struct DemoInfo {
    /// `https://host:port` of the gateway's client listener.
    pub gateway: String,
    /// `http://host:port/` of the web front: the citizens' front office at `/`, the
    /// administrators' benchmark dashboard at `/dashboard/`.
    pub web: String,
    /// The TLS name to verify the gateway as (its certificate names `localhost`).
    pub gateway_tls_name: String,
    /// The federation CA certificate: all a client needs besides a token.
    pub ca: String,
    /// Tokens: `admin`, `citizen`, and `operators` by ISTAT code.
    pub tokens: Tokens,
    /// The citizen token's codice fiscale (a seeded resident of Sarzana).
    pub citizen_fiscal_number: String,
    /// The verification code of a certificate issued to that citizen by Sarzana: anyone may
    /// verify it, with no token.
    pub certificate_code: String,
    /// The nodes, with their gRPC and metrics addresses.
    pub nodes: Vec<NodeInfo>,
    /// The gateway's metrics endpoint.
    pub gateway_metrics: String,
    /// A client certificate the demo uses to seed the nodes directly (mutual TLS).
    pub seeder_cert: String,
    /// Its key.
    pub seeder_key: String,
}

/// Demo tokens.
#[derive(Serialize)]
pub struct Tokens {
    /// A federation administrator.
    pub admin: String,
    /// A citizen.
    pub citizen: String,
    /// One operator per comune, by ISTAT code.
    pub operators: BTreeMap<String, String>,
    /// A payment provider enabled for every comune (the provider calls only).
    pub payment_provider: String,
    /// An auditor (the audit log and the registry's log of personal-data reads).
    pub auditor: String,
}

fn all_comuni() -> Vec<String> {
    TOWNS.iter().map(|t| t.istat.to_owned()).collect()
}

/// A demo node's addresses.
#[derive(Serialize)]
pub struct NodeInfo {
    /// Node id.
    pub id: String,
    /// `https://host:port`.
    pub endpoint: String,
    /// `http://host:port/metrics`.
    pub metrics: String,
    /// Its configuration file.
    pub config: String,
}

fn tls_for(certs_dir: &Path, kind: Kind, id: &str) -> TlsFiles {
    let issued = certs::paths(certs_dir, kind, id);
    TlsFiles {
        ca: certs::ca_cert_path(certs_dir).display().to_string(),
        cert: issued.cert.display().to_string(),
        key: issued.key.display().to_string(),
    }
}

fn port(base: u16, offset: u16) -> u16 {
    if base == 0 { 0 } else { base + offset }
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    ensure!(
        IpAddr::V4(args.host).is_loopback(),
        "--host must be a loopback address (127.x.x.x)"
    );
    ensure!(
        args.base_port == 0 || args.base_port <= 65_000,
        "--base-port must be 0 or at most 65000"
    );
    let data = std::path::absolute(&args.data_dir).context("resolving --data-dir")?;
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let demo_json = data.join("demo.json");
    let _ = std::fs::remove_file(&demo_json);

    // Certificates and token keys, created once.
    let certs_dir = data.join("certs");
    let keys_dir = data.join("keys");
    let config_dir = data.join("config");
    std::fs::create_dir_all(&config_dir)?;
    if certs::ensure_ca(&certs_dir, "Unione dei Comuni della Val di Magra (demo)")? {
        tracing::info!("created the demo federation CA");
    }
    let node_list = nodes();
    for (id, _) in &node_list {
        if !certs::paths(&certs_dir, Kind::Node, id).cert.exists() {
            certs::issue(&certs_dir, Kind::Node, id)?;
        }
    }
    for (kind, id) in [(Kind::Gateway, "gateway"), (Kind::Client, "demo-seeder")] {
        if !certs::paths(&certs_dir, kind, id).cert.exists() {
            certs::issue(&certs_dir, kind, id)?;
        }
    }
    token::ensure_keys(&keys_dir)?;

    // Nodes: bind every listener first (the gateway's too: the quality offices call it for the
    // figures of the computed KPIs), then serve.
    let host = IpAddr::V4(args.host);
    let gateway_listener = unione_kit::server::bind(SocketAddr::new(host, args.base_port)).await?;
    let gateway_endpoint = format!("https://{}", gateway_listener.local_addr()?);
    let mut running = Vec::new();
    let mut node_infos = Vec::new();
    let mut directory = DirectoryFile::default();
    for (i, (id, comuni)) in node_list.iter().enumerate() {
        let offset = u16::try_from(i + 1).expect("a handful of nodes");
        let listener =
            unione_kit::server::bind(SocketAddr::new(host, port(args.base_port, offset))).await?;
        let addr = listener.local_addr()?;
        let config = NodeConfig {
            node_id: (*id).to_owned(),
            listen: addr.to_string(),
            data_dir: data.join("nodes").join(id).display().to_string(),
            database_url: match (&args.postgres_url, *id) {
                (Some(url), "sarzana") => url.clone(),
                _ => String::new(),
            },
            metrics_listen: SocketAddr::new(host, port(args.base_port, 100 + offset)).to_string(),
            log_json: false,
            tls: tls_for(&certs_dir, Kind::Node, id),
            limits: Limits::default(),
            comuni: comuni
                .iter()
                .map(|(istat, functions)| ServedComune {
                    profile: profile(town(istat)),
                    functions: functions.clone(),
                })
                .collect(),
            operational_data: OperationalDataConfig {
                gateway: gateway_endpoint.clone(),
                gateway_tls_name: "localhost".to_owned(),
                recompute_interval_s: 600,
                ..OperationalDataConfig::default()
            },
            // The sealed daily registers go to a preservation archive beside the node's data.
            registry: RegistryConfig {
                preservation_dir: data
                    .join("nodes")
                    .join(id)
                    .join("preservation")
                    .display()
                    .to_string(),
                ..RegistryConfig::default()
            },
        };
        let config_path = config_dir.join(format!("{id}.toml"));
        std::fs::write(&config_path, toml::to_string(&config)?)?;
        unione_kit::config::Validate::validate(&config)?;
        let node = unione_node::start_on(config, listener)
            .await
            .with_context(|| format!("starting node {id}"))?;
        let endpoint = format!("https://{}", node.addr);
        node_infos.push(NodeInfo {
            id: (*id).to_owned(),
            endpoint: endpoint.clone(),
            metrics: node
                .metrics_addr
                .map(|a| format!("http://{a}/metrics"))
                .unwrap_or_default(),
            config: config_path.display().to_string(),
        });
        directory.nodes.push(NodeEntry {
            node_id: (*id).to_owned(),
            endpoint,
        });
        for (istat, functions) in comuni {
            for f in functions {
                directory.provisions.push(ProvisionEntry {
                    comune: (*istat).to_owned(),
                    function: f.as_str().to_owned(),
                    node: (*id).to_owned(),
                });
            }
        }
        running.push(node);
    }
    for t in TOWNS {
        let p = profile(t);
        directory.members.push(MemberEntry {
            istat: t.istat.to_owned(),
            name: t.name.to_owned(),
            fiscal_code: p.fiscal_code,
            cadastral_code: t.cadastral.to_owned(),
            population: t.population,
            province: "SP".to_owned(),
            peer_group: "magra-valley".to_owned(),
            ipa_code: p.ipa_code,
            segregation_code: t.segregation.to_owned(),
        });
    }
    let directory_path = config_dir.join("directory.toml");
    std::fs::write(&directory_path, toml::to_string(&directory)?)?;

    // The gateway, with its web front on plain HTTP on loopback and a simulated payment
    // provider (a provider token of its own, written anew at every start).
    let signer = token::Signer::load(&keys_dir)?;
    let psp_token_file = config_dir.join("simulated-psp.token");
    std::fs::write(
        &psp_token_file,
        signer.issue("DEMO-PSP", Role::PaymentProvider, all_comuni(), None, 30),
    )?;
    let gateway_config = GatewayConfig {
        gateway_id: "gateway".to_owned(),
        listen: gateway_listener.local_addr()?.to_string(),
        data_dir: data.join("gateway").display().to_string(),
        metrics_listen: SocketAddr::new(host, port(args.base_port, 100)).to_string(),
        directory_file: directory_path.display().to_string(),
        token_keys_dir: keys_dir.display().to_string(),
        tls: tls_for(&certs_dir, Kind::Gateway, "gateway"),
        web: WebConfig {
            listen: SocketAddr::new(host, port(args.base_port, 80)).to_string(),
            simulated_psp_token_file: psp_token_file.display().to_string(),
            ..WebConfig::default()
        },
        ..GatewayConfig::default()
    };
    std::fs::write(
        config_dir.join("gateway.toml"),
        toml::to_string(&gateway_config)?,
    )?;
    let gateway = unione_gateway::start_on(gateway_config, gateway_listener)
        .await
        .context("starting the gateway")?;

    // Tokens, then the data (once), written through the gateway as each town's operator.
    let operators: BTreeMap<String, String> = TOWNS
        .iter()
        .map(|t| {
            let sub = format!("operator-{}", t.istat);
            (
                t.istat.to_owned(),
                signer.issue(&sub, Role::Operator, vec![t.istat.to_owned()], None, 30),
            )
        })
        .collect();
    let seeder = tls_for(&certs_dir, Kind::Client, "demo-seeder");
    let marker = data.join("seeded");
    let seeded: seed::Seeded = if marker.exists() {
        serde_json::from_str(&std::fs::read_to_string(&marker)?)
            .context("reading the seeding record")?
    } else {
        let ca = std::fs::read(certs::ca_cert_path(&certs_dir)).context("reading the CA")?;
        let channel = Channel::from_shared(format!("https://{}", gateway.addr))?
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .domain_name("localhost"),
            )?
            .connect()
            .await
            .context("connecting to the demo gateway")?;
        let psp = signer.issue("DEMO-PSP", Role::PaymentProvider, all_comuni(), None, 1);
        let seeded = seed::seed(channel, &operators, &psp)
            .await
            .context("seeding the demo data")?;
        std::fs::write(&marker, serde_json::to_string(&seeded)?)?;
        seeded
    };
    let citizen = seeded.citizen_fiscal_number.clone();

    let info = DemoInfo {
        gateway: format!("https://{}", gateway.addr),
        web: gateway
            .web
            .as_ref()
            .map(|w| format!("http://{}/", w.addr))
            .unwrap_or_default(),
        gateway_tls_name: "localhost".to_owned(),
        ca: certs::ca_cert_path(&certs_dir).display().to_string(),
        tokens: Tokens {
            admin: signer.issue("admin-1", Role::Admin, Vec::new(), None, 30),
            citizen: signer.issue(
                "citizen-1",
                Role::Citizen,
                Vec::new(),
                Some(citizen.clone()),
                30,
            ),
            operators: operators.clone(),
            payment_provider: signer.issue(
                "DEMO-PSP",
                Role::PaymentProvider,
                all_comuni(),
                None,
                30,
            ),
            auditor: signer.issue("auditor-1", Role::Auditor, Vec::new(), None, 30),
        },
        citizen_fiscal_number: citizen,
        certificate_code: seeded.certificate_code.clone(),
        nodes: node_infos,
        gateway_metrics: gateway
            .metrics_addr
            .map(|a| format!("http://{a}/metrics"))
            .unwrap_or_default(),
        seeder_cert: seeder.cert.clone(),
        seeder_key: seeder.key.clone(),
    };
    let json = serde_json::to_string_pretty(&info)?;
    let tmp = data.join("demo.json.tmp");
    std::fs::write(&tmp, &json)?;
    std::fs::rename(&tmp, &demo_json)?;
    print_summary(&info, &demo_json);

    unione_kit::server::shutdown_signal().await;
    println!("stopping the demo federation...");
    // The addresses and tokens are only good while the demo runs.
    let _ = std::fs::remove_file(&demo_json);
    gateway.stop().await?;
    for node in running {
        node.stop().await?;
    }
    Ok(())
}

fn print_summary(info: &DemoInfo, demo_json: &Path) {
    println!();
    println!(
        "Unione demo federation is up: {} comuni, {} nodes.",
        TOWNS.len(),
        info.nodes.len()
    );
    println!(
        "  gateway   {}  (TLS name {})",
        info.gateway, info.gateway_tls_name
    );
    println!("  CA        {}", info.ca);
    println!(
        "  web       {}  (front office; dashboard at {}dashboard/)",
        info.web, info.web
    );
    println!("  metrics   {}", info.gateway_metrics);
    for n in &info.nodes {
        println!("  node      {:<20} {}", n.id, n.endpoint);
    }
    println!(
        "  tokens    admin, citizen and one operator per comune in {}",
        demo_json.display()
    );
    println!();
    println!("Try in a browser:");
    println!(
        "  {}  the front office: sign in with the citizen token (jq -r .tokens.citizen {})",
        info.web,
        demo_json.display()
    );
    println!(
        "  {}dashboard/  the benchmark dashboard: sign in with an operator's token (jq -r '.tokens.operators[\"011027\"]' {})",
        info.web,
        demo_json.display()
    );
    println!();
    println!("Try (grpcurl):");
    println!(
        "  grpcurl -cacert {} -authority localhost -H \"authorization: Bearer $(jq -r .tokens.admin {})\" {} unione.federation.v1.DirectoryService/GetFederationHealth",
        info.ca,
        demo_json.display(),
        info.gateway.trim_start_matches("https://")
    );
    println!();
    println!("demo ready; Ctrl-C stops it");
}
