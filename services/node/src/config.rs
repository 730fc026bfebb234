//! The configuration of a node (`unione node --config node.toml`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, ensure};
use serde::{Deserialize, Serialize};
use unione_kit::config::Validate;
use unione_kit::server::Limits;
use unione_kit::tls::TlsFiles;
use unione_kit::{ComuneProfile, Istat};

/// A shared function a node can run for a comune.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Function {
    /// The registry office.
    Registry,
    /// The payments desk.
    Payments,
    /// The quality office.
    Quality,
}

impl Function {
    /// Every function.
    pub const ALL: [Function; 3] = [Function::Registry, Function::Payments, Function::Quality];

    /// The protobuf enum value.
    pub fn to_proto(self) -> unione_proto::common::v1::Function {
        use unione_proto::common::v1::Function as P;
        match self {
            Self::Registry => P::Registry,
            Self::Payments => P::Payments,
            Self::Quality => P::Quality,
        }
    }

    /// The lowercase name, as in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::Payments => "payments",
            Self::Quality => "quality",
        }
    }
}

/// A comune served by this node, and the functions run for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedComune {
    /// What the services need to know about the comune.
    #[serde(flatten)]
    pub profile: ComuneProfile,
    /// The functions this node runs for it.
    pub functions: Vec<Function>,
}

/// Node configuration: defaults, then the TOML file, then `UNIONE_*` variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeConfig {
    /// The node id; its certificate names `{node_id}.nodes.unione.internal`.
    pub node_id: String,
    /// The gRPC listen address (mutual TLS).
    pub listen: String,
    /// Where the node keeps its SQLite database when `database_url` is empty.
    pub data_dir: String,
    /// `postgres://...` for PostgreSQL, or `sqlite://...`; empty: `{data_dir}/node.sqlite`.
    pub database_url: String,
    /// Address of the Prometheus `/metrics` endpoint; empty: none.
    pub metrics_listen: String,
    /// Log lines as JSON instead of text.
    pub log_json: bool,
    /// The federation CA and this node's certificate and key.
    pub tls: TlsFiles,
    /// Concurrency, message size and time limits.
    pub limits: Limits,
    /// The comuni served and their functions.
    pub comuni: Vec<ServedComune>,
    /// Where the quality office reads the figures of the computed KPIs.
    pub operational_data: OperationalDataConfig,
    /// The registry office's settings (preservation of the sealed daily registers).
    pub registry: RegistryConfig,
}

/// The registry office's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryConfig {
    /// The preservation archive: the directory into which every sealed daily register of the
    /// protocol is deposited as a package (document, manifest, receipt), by a scheduled job;
    /// empty: nothing is sent to preservation, and the daily registers show as overdue once
    /// the next working day after them is over.
    pub preservation_dir: String,
    /// How often the job sends the sealed days not yet preserved (and retries those the
    /// archive did not accept), in seconds (10 to 86400).
    pub preservation_interval_s: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            preservation_dir: String::new(),
            preservation_interval_s: 900,
        }
    }
}

/// How a node's quality office reaches its comuni's registry and payments services for the
/// computed KPIs, and how its registry delivers moves of residents to other member comuni:
/// through the federation gateway, like any client, under the node's own certificate
/// (`tls`), which lets it act for the comuni the directory says the node serves (and deliver
/// a move to any member comune).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OperationalDataConfig {
    /// The gateway's client endpoint, `https://host:port`; empty: KPIs are not computed here,
    /// and moves to other comuni are not started here (moves from them are still received).
    pub gateway: String,
    /// The name the gateway's certificate carries (the federation CA of `tls.ca` issued it).
    pub gateway_tls_name: String,
    /// How often the computed KPIs of the current and the previous period are recomputed, in
    /// seconds; 0: only on demand (`KpiService.ComputeMeasurement`).
    pub recompute_interval_s: u64,
    /// The wait before retrying the delivery of a move, in milliseconds, doubling with each
    /// failure up to 32 times this (100 to 3,600,000).
    pub move_retry_interval_ms: u64,
}

impl Default for OperationalDataConfig {
    fn default() -> Self {
        Self {
            gateway: String::new(),
            gateway_tls_name: "localhost".to_owned(),
            recompute_interval_s: 3600,
            move_retry_interval_ms: 5000,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            listen: "127.0.0.1:7401".to_owned(),
            data_dir: "./data".to_owned(),
            database_url: String::new(),
            metrics_listen: String::new(),
            log_json: false,
            tls: TlsFiles::default(),
            limits: Limits::default(),
            comuni: Vec::new(),
            operational_data: OperationalDataConfig::default(),
            registry: RegistryConfig::default(),
        }
    }
}

impl NodeConfig {
    /// The listen address.
    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen
            .parse()
            .map_err(|_| anyhow::anyhow!("listen: `{}` is not an address:port", self.listen))
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            let path = PathBuf::from(&self.data_dir).join("node.sqlite");
            format!("sqlite://{}?mode=rwc", path.display())
        } else {
            self.database_url.clone()
        }
    }

    /// The comuni for which this node runs `function`.
    pub fn served(&self, function: Function) -> unione_kit::Served {
        unione_kit::Served::new(
            self.comuni
                .iter()
                .filter(|c| c.functions.contains(&function))
                .map(|c| c.profile.clone()),
        )
    }
}

impl Validate for NodeConfig {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            !self.node_id.is_empty()
                && self
                    .node_id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "node_id must be lowercase letters, digits and dashes (got `{}`)",
            self.node_id
        );
        self.listen_addr()?;
        if !self.metrics_listen.is_empty() {
            self.metrics_listen.parse::<SocketAddr>().map_err(|_| {
                anyhow::anyhow!(
                    "metrics_listen: `{}` is not an address:port",
                    self.metrics_listen
                )
            })?;
        }
        ensure!(
            !self.tls.ca.is_empty() && !self.tls.cert.is_empty() && !self.tls.key.is_empty(),
            "tls.ca, tls.cert and tls.key are required: nodes only speak mutual TLS"
        );
        self.limits.validate()?;
        let od = &self.operational_data;
        ensure!(
            (100..=3_600_000).contains(&od.move_retry_interval_ms),
            "operational_data.move_retry_interval_ms must be from 100 to 3600000 (got {})",
            od.move_retry_interval_ms
        );
        if !od.gateway.is_empty() {
            ensure!(
                od.gateway.starts_with("https://"),
                "operational_data.gateway must be an https:// endpoint (got `{}`)",
                od.gateway
            );
            ensure!(
                !od.gateway_tls_name.is_empty(),
                "operational_data.gateway_tls_name is required with operational_data.gateway"
            );
            ensure!(
                od.recompute_interval_s == 0 || od.recompute_interval_s >= 10,
                "operational_data.recompute_interval_s must be 0 (off) or at least 10"
            );
        }
        ensure!(
            (10..=86_400).contains(&self.registry.preservation_interval_s),
            "registry.preservation_interval_s must be from 10 to 86400 (got {})",
            self.registry.preservation_interval_s
        );
        ensure!(
            !self.comuni.is_empty(),
            "comuni: a node serves at least one comune"
        );
        let mut seen = BTreeSet::<&Istat>::new();
        for c in &self.comuni {
            let p = &c.profile;
            if !seen.insert(&p.istat) {
                bail!("comuni: {} is listed twice", p.istat);
            }
            ensure!(
                !c.functions.is_empty(),
                "comuni {}: functions is empty",
                p.istat
            );
            ensure!(
                p.fiscal_code.len() == 11 && p.fiscal_code.bytes().all(|b| b.is_ascii_digit()),
                "comuni {}: fiscal_code must be 11 digits",
                p.istat
            );
            ensure!(
                p.segregation_code.len() == 2
                    && p.segregation_code.bytes().all(|b| b.is_ascii_digit()),
                "comuni {}: segregation_code must be 2 digits",
                p.istat
            );
            ensure!(!p.name.is_empty(), "comuni {}: name is empty", p.istat);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid configuration of a node serving Sarzana's registry, with every other key at
    /// its default.
    fn sarzana() -> NodeConfig {
        NodeConfig {
            node_id: "sarzana".to_owned(),
            tls: TlsFiles {
                ca: "ca.pem".to_owned(),
                cert: "node.pem".to_owned(),
                key: "node.key".to_owned(),
            },
            comuni: vec![ServedComune {
                profile: ComuneProfile {
                    istat: Istat::parse("011027").expect("a six-digit code"),
                    name: "Sarzana".to_owned(),
                    fiscal_code: "00143110119".to_owned(),
                    cadastral_code: "I449".to_owned(),
                    segregation_code: "01".to_owned(),
                    ipa_code: "c_i449".to_owned(),
                    population: 22_000,
                },
                functions: vec![Function::Registry],
            }],
            ..NodeConfig::default()
        }
    }

    /// Preservation is off by default and runs every 15 minutes when on; an interval outside
    /// 10..=86400 seconds stops the node at start, naming the key.
    #[test]
    fn the_preservation_interval_is_checked() {
        let mut config = sarzana();
        assert_eq!(config.registry.preservation_dir, "");
        assert_eq!(config.registry.preservation_interval_s, 900);
        config.validate().expect("the defaults are valid");
        for bad in [0, 9, 86_401] {
            config.registry.preservation_interval_s = bad;
            let err = config.validate().expect_err("out of range");
            assert!(
                err.to_string().contains("registry.preservation_interval_s"),
                "{err}"
            );
        }
    }

    /// The retry interval of move deliveries has a default and a range; a value outside it
    /// stops the node at start, naming the key.
    #[test]
    fn the_move_retry_interval_is_checked() {
        let config = |ms: u64| NodeConfig {
            operational_data: OperationalDataConfig {
                move_retry_interval_ms: ms,
                ..OperationalDataConfig::default()
            },
            ..sarzana()
        };
        assert_eq!(
            OperationalDataConfig::default().move_retry_interval_ms,
            5000
        );
        for ok in [100, 5000, 3_600_000] {
            config(ok).validate().expect("in range");
        }
        for bad in [0, 99, 3_600_001] {
            let err = config(bad).validate().expect_err("out of range");
            assert!(
                err.to_string()
                    .contains("operational_data.move_retry_interval_ms"),
                "{err}"
            );
        }
    }
}
