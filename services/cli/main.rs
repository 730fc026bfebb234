//! `unione`: the one command of the platform. Runs a node or a gateway, starts the demo
//! federation, creates the federation's certificates and issues user tokens.

mod demo;
mod health;
mod seed;
mod transfer;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use unione_kit::certs::{self, Kind};
use unione_kit::config;
use unione_kit::telemetry::{self, LogFormat};
use unione_kit::token::{self, Role};

#[derive(Parser)]
#[command(name = "unione", version, about = "Shared municipal back-office services for associated comuni, federated through a gateway", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: the registry, payments and quality services of one or more comuni, behind
    /// mutual TLS. Configuration: defaults, then the TOML file, then UNIONE_* variables
    /// (UNIONE_LISTEN, UNIONE_DATABASE_URL, UNIONE_TLS__CERT, ...).
    Node {
        /// The node's TOML configuration file.
        #[arg(long, short, env = "UNIONE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run a federation gateway: the member directory, mutual TLS to the nodes, the health of
    /// every member, and the client-facing TLS listener. Configuration: defaults, then the
    /// TOML file, then UNIONE_* variables.
    Gateway {
        /// The gateway's TOML configuration file.
        #[arg(long, short, env = "UNIONE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Start a demo federation of Magra valley comuni on this machine (loopback only): a
    /// gateway and one node per town, one of them a capofila serving a smaller town's registry,
    /// with realistic synthetic data. Prints the gateway address, the CA file and tokens, and
    /// writes them to <data-dir>/demo.json. Runs until Ctrl-C; restarts on the same data.
    Demo(demo::DemoArgs),
    /// Create the federation CA and issue node, gateway and client certificates.
    Certs {
        #[command(subcommand)]
        action: CertsAction,
    },
    /// Issue a signed user token (a JWT, EdDSA) for calls through the gateway.
    Token {
        /// Directory holding token.key (created with `unione token-keys`, or by the demo in
        /// <data-dir>/keys).
        #[arg(long)]
        keys: PathBuf,
        /// The user's role.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The subject: an opaque user id.
        #[arg(long)]
        sub: String,
        /// ISTAT code of a comune the user acts for (operators, integrators); repeatable.
        #[arg(long = "comune")]
        comuni: Vec<String>,
        /// The citizen's codice fiscale (citizens only).
        #[arg(long)]
        fiscal_number: Option<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
    /// Create the token signing key pair (token.key, token.pub) in a directory.
    TokenKeys {
        /// The directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Check a running node or gateway through its gRPC health service, with the same TLS
    /// files it serves with (a node over mutual TLS as itself). Exits 0 when SERVING, 1
    /// otherwise: usable as a container or Kubernetes exec probe.
    Health {
        #[command(subcommand)]
        target: HealthTarget,
    },
    /// Write one comune's data of one service (every table, history, seals, documents) from
    /// a node's database to an archive, to move the function to another node.
    Export(transfer::ExportArgs),
    /// Load an archive written by `unione export` into a node's database, in one
    /// transaction; refuses a database already holding that comune's data of that service.
    Import(transfer::ImportArgs),
    /// Copy a node's SQLite database to a file while the node runs (a consistent snapshot),
    /// and check the copy; for PostgreSQL use pg_dump.
    Backup(transfer::BackupArgs),
}

#[derive(Subcommand)]
enum HealthTarget {
    /// A node, from its configuration file.
    Node {
        /// The node's TOML configuration file.
        #[arg(long, short, env = "UNIONE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// A gateway, from its configuration file.
    Gateway {
        /// The gateway's TOML configuration file.
        #[arg(long, short, env = "UNIONE_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CertsAction {
    /// Create the federation CA (ca.pem, ca.key) in DIR unless it exists.
    Init {
        /// Certificate directory.
        #[arg(long)]
        dir: PathBuf,
        /// The federation's name, written in the CA's subject.
        #[arg(long, default_value = "Unione")]
        federation: String,
    },
    /// Issue a certificate whose identity names a node, a gateway or a client.
    Issue {
        /// Certificate directory holding the CA.
        #[arg(long)]
        dir: PathBuf,
        /// What the certificate is for.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// The id (lowercase letters, digits, dashes), e.g. `sarzana`.
        #[arg(long)]
        id: String,
    },
    /// Print the fingerprint of a certificate (`sha256:` and the SHA-256 of its DER, in
    /// lowercase hex), as the directory's `[[revoked_certificates]]` entries name it. With a
    /// chain, the first certificate (the holder's) is the one printed.
    Fingerprint {
        /// The certificate (PEM), e.g. `certs/nodes/luni.pem`.
        cert: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Node,
    Gateway,
    Client,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Operator,
    Admin,
    Citizen,
    Integrator,
    Auditor,
    PaymentProvider,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Operator => Role::Operator,
            RoleArg::Admin => Role::Admin,
            RoleArg::Citizen => Role::Citizen,
            RoleArg::Integrator => Role::Integrator,
            RoleArg::Auditor => Role::Auditor,
            RoleArg::PaymentProvider => Role::PaymentProvider,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(async_main(cli))
}

async fn async_main(cli: Cli) -> anyhow::Result<()> {
    unione_kit::tls::install_crypto_provider();
    match cli.command {
        Command::Node { config } => {
            let config: unione_node::NodeConfig = config::load(config.as_deref())?;
            let format = if config.log_json {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
            let _telemetry = telemetry::init("unione-node", &config.node_id, format);
            unione_node::run(config).await
        }
        Command::Gateway { config } => {
            let config: unione_gateway::GatewayConfig = config::load(config.as_deref())?;
            let format = if config.log_json {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
            let _telemetry = telemetry::init("unione-gateway", &config.gateway_id, format);
            unione_gateway::run(config).await
        }
        Command::Demo(args) => {
            let _telemetry = telemetry::init("unione-demo", "demo", LogFormat::Text);
            demo::run(args).await
        }
        Command::Certs { action } => match action {
            CertsAction::Init { dir, federation } => {
                if certs::ensure_ca(&dir, &federation)? {
                    println!("created the federation CA in {}", dir.display());
                } else {
                    println!("the federation CA already exists in {}", dir.display());
                }
                Ok(())
            }
            CertsAction::Issue { dir, kind, id } => {
                let kind = match kind {
                    KindArg::Node => Kind::Node,
                    KindArg::Gateway => Kind::Gateway,
                    KindArg::Client => Kind::Client,
                };
                let issued = certs::issue(&dir, kind, &id)?;
                println!(
                    "issued {} ({})\ncertificate: {}\nkey: {}",
                    kind.identity(&id),
                    id,
                    issued.cert.display(),
                    issued.key.display()
                );
                Ok(())
            }
            CertsAction::Fingerprint { cert } => {
                let pem =
                    std::fs::read(&cert).with_context(|| format!("reading {}", cert.display()))?;
                let chain = unione_kit::tls::pem_certificates(&pem)
                    .with_context(|| format!("the certificate {}", cert.display()))?;
                println!("{}", unione_kit::tls::fingerprint(chain[0].as_ref()));
                Ok(())
            }
        },
        Command::Token {
            keys,
            role,
            sub,
            comuni,
            fiscal_number,
            days,
        } => {
            anyhow::ensure!(days > 0, "--days must be at least 1");
            for c in &comuni {
                anyhow::ensure!(
                    unione_kit::Istat::parse(c).is_some(),
                    "--comune {c}: not a six-digit ISTAT code"
                );
            }
            let signer = token::Signer::load(&keys)?;
            println!(
                "{}",
                signer.issue(&sub, role.into(), comuni, fiscal_number, days)
            );
            Ok(())
        }
        Command::Health { target } => {
            let serving = match target {
                HealthTarget::Node { config } => {
                    let config: unione_node::NodeConfig = config::load(config.as_deref())?;
                    let tls = config
                        .tls
                        .mutual_client(&Kind::Node.identity(&config.node_id))?;
                    health::check(&config.listen, tls).await?
                }
                HealthTarget::Gateway { config } => {
                    let config: unione_gateway::GatewayConfig = config::load(config.as_deref())?;
                    let tls = tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(config.tls.ca()?)
                        .domain_name("localhost");
                    health::check(&config.listen, tls).await?
                }
            };
            println!("{}", if serving { "SERVING" } else { "NOT_SERVING" });
            if !serving {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Export(args) => transfer::export(args).await,
        Command::Import(args) => transfer::import(args).await,
        Command::Backup(args) => transfer::backup(args).await,
        Command::TokenKeys { dir } => {
            token::ensure_keys(&dir)?;
            println!(
                "token keys in {} (token.key is secret; give token.pub to gateways)",
                dir.display()
            );
            Ok(())
        }
    }
}
