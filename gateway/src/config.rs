//! The configuration of a gateway (`unione gateway --config gateway.toml`): defaults, then the
//! TOML file, then `UNIONE_*` variables, then [`Validate::validate`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde::{Deserialize, Serialize};
use unione_kit::config::Validate;
use unione_kit::server::Limits;
use unione_kit::tls::TlsFiles;

/// Gateway configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    /// The gateway id; its certificate names `{gateway_id}.gateways.unione.internal`.
    pub gateway_id: String,
    /// The client-facing gRPC listen address (TLS; clients authenticate with a token).
    pub listen: String,
    /// Where the gateway keeps its SQLite database when `database_url` is empty.
    pub data_dir: String,
    /// `postgres://...` or `sqlite://...`; empty: `{data_dir}/gateway.sqlite`.
    pub database_url: String,
    /// Address of the Prometheus `/metrics` endpoint; empty: none.
    pub metrics_listen: String,
    /// Log lines as JSON instead of text.
    pub log_json: bool,
    /// The TOML directory loaded at start; empty: serve the directory the database holds.
    pub directory_file: String,
    /// The directory holding the keys that verify user tokens: `token.pub` (the federation's
    /// own, from `unione token-keys`) and/or `jwks.json` (an identity provider's JWKS: Ed25519
    /// and P-256 keys, `alg` EdDSA or ES256).
    pub token_keys_dir: String,
    /// The token issuers (`iss`) trusted: `unione` for the federation's own tokens, and an
    /// OpenID Connect provider's issuer URL when its keys are in `jwks.json`.
    pub token_issuers: Vec<String>,
    /// How often every node is probed, in milliseconds.
    pub health_interval_ms: u64,
    /// How long one probe of a node may take, in milliseconds.
    pub probe_timeout_ms: u64,
    /// Calls per second admitted for one user (token subject), per gateway instance.
    pub calls_per_second_per_principal: u32,
    /// Calls per second admitted for one comune, per gateway instance.
    pub calls_per_second_per_comune: u32,
    /// HTTP/2 connections kept to each node.
    pub node_connections: usize,
    /// The deadline, in milliseconds, given to routed calls that carry none.
    pub default_deadline_ms: u64,
    /// Attempts in all for a routed call to a method the proto declares free of side effects
    /// (`idempotency_level = NO_SIDE_EFFECTS`) when the node cannot be reached or answers
    /// UNAVAILABLE; 1 turns retries off. Other methods are never retried.
    pub retry_max_attempts: u32,
    /// The wait before the first retry, in milliseconds; it doubles for each further one.
    pub retry_initial_backoff_ms: u64,
    /// The longest wait between two attempts, in milliseconds.
    pub retry_max_backoff_ms: u64,
    /// How often the directory is re-read (the file, then the database), in milliseconds.
    pub directory_refresh_ms: u64,
    /// How long the gateway keeps routing on its last good directory when it cannot read a
    /// new one, in milliseconds; past that it refuses routed calls.
    pub directory_max_staleness_ms: u64,
    /// How often the benchmark snapshot is refreshed from every member with a quality
    /// provision, in milliseconds (a member is also read again soon after a measurement of
    /// its is recorded through the gateway).
    pub benchmark_refresh_ms: u64,
    /// Members read at once when refreshing the benchmark snapshot.
    pub benchmark_concurrency: usize,
    /// How long one read of a member's published measurements may take, in milliseconds.
    pub benchmark_call_timeout_ms: u64,
    /// How old a member's data may be, in milliseconds, and still be shown in a comparison;
    /// older data (the member unreachable since) is listed as missing, unreachable.
    pub benchmark_max_age_ms: u64,
    /// Calls per second this gateway admits to the methods that need no token (verifying a
    /// certificate, listing the members), with bursts of twice as many.
    pub public_calls_per_second: u32,
    /// The federation CA and the gateway's certificate and key: the server identity for
    /// clients, and the client identity for mutual TLS to the nodes.
    pub tls: TlsFiles,
    /// Concurrency, message size and time limits of the client-facing listener.
    pub limits: Limits,
    /// The web front (the citizens' front office and the benchmark dashboard).
    pub web: WebConfig,
}

/// The gateway's web front: static pages and the small JSON API they call, which the gateway
/// turns into gRPC calls to its own client-facing listener with the caller's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebConfig {
    /// The HTTP listen address; empty: no web front.
    pub listen: String,
    /// The certificate (PEM, full chain) served to browsers: one from a public CA, not the
    /// federation's. Empty (with `key` empty): plain HTTP, allowed only on a loopback address
    /// (behind a TLS-terminating proxy, or for the demo).
    pub cert: String,
    /// The private key (PEM) of `cert`.
    pub key: String,
    /// Seconds of inactivity after which a kiosk (`?kiosk=1`) signs the citizen out.
    pub kiosk_idle_seconds: u32,
    /// A file holding a payment provider token: when set, the front office offers a
    /// simulated payment provider (for demos and tests, never with real money) that pays a
    /// notice with the real provider calls (verify, activate, receipt) under that token.
    pub simulated_psp_token_file: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: String::new(),
            cert: String::new(),
            key: String::new(),
            kiosk_idle_seconds: 90,
            simulated_psp_token_file: String::new(),
        }
    }
}

impl WebConfig {
    /// The listen address, if the web front is on.
    pub fn listen_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        self.listen
            .parse()
            .map(Some)
            .with_context(|| format!("web.listen: `{}` is not an address:port", self.listen))
    }

    /// True when pages are served over HTTPS.
    pub fn tls(&self) -> bool {
        !self.cert.is_empty()
    }
}

impl Validate for WebConfig {
    fn validate(&self) -> anyhow::Result<()> {
        let addr = self.listen_addr()?;
        ensure!(
            self.cert.is_empty() == self.key.is_empty(),
            "web.cert and web.key go together: give both (HTTPS) or neither (plain HTTP)"
        );
        if let Some(addr) = addr {
            ensure!(
                self.tls() || addr.ip().is_loopback(),
                "web.listen {addr} is not a loopback address: serve the web front over HTTPS \
                 (web.cert and web.key) or put it behind a TLS-terminating proxy on loopback"
            );
        }
        ensure!(
            (15..=3600).contains(&self.kiosk_idle_seconds),
            "web.kiosk_idle_seconds must be 15 to 3600 (got {})",
            self.kiosk_idle_seconds
        );
        Ok(())
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            gateway_id: String::new(),
            listen: "127.0.0.1:7443".to_owned(),
            data_dir: "./data".to_owned(),
            database_url: String::new(),
            metrics_listen: String::new(),
            log_json: false,
            directory_file: String::new(),
            token_keys_dir: String::new(),
            token_issuers: vec![unione_kit::token::ISSUER.to_owned()],
            health_interval_ms: 2000,
            probe_timeout_ms: 1500,
            public_calls_per_second: 50,
            calls_per_second_per_principal: 500,
            calls_per_second_per_comune: 5_000,
            node_connections: 4,
            default_deadline_ms: 30_000,
            retry_max_attempts: 3,
            retry_initial_backoff_ms: 50,
            retry_max_backoff_ms: 1_000,
            directory_refresh_ms: 60_000,
            directory_max_staleness_ms: 600_000,
            benchmark_refresh_ms: 300_000,
            benchmark_concurrency: 16,
            benchmark_call_timeout_ms: 5_000,
            benchmark_max_age_ms: 86_400_000,
            tls: TlsFiles::default(),
            limits: Limits::default(),
            web: WebConfig::default(),
        }
    }
}

impl GatewayConfig {
    /// The listen address.
    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen
            .parse()
            .with_context(|| format!("listen: `{}` is not an address:port", self.listen))
    }

    /// The metrics address, if any.
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        if self.metrics_listen.is_empty() {
            return Ok(None);
        }
        self.metrics_listen.parse().map(Some).with_context(|| {
            format!(
                "metrics_listen: `{}` is not an address:port",
                self.metrics_listen
            )
        })
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            let path = PathBuf::from(&self.data_dir).join("gateway.sqlite");
            format!("sqlite://{}?mode=rwc", path.display())
        } else {
            self.database_url.clone()
        }
    }

    /// The probe interval.
    pub fn health_interval(&self) -> Duration {
        Duration::from_millis(self.health_interval_ms)
    }

    /// The bound on one probe.
    pub fn probe_timeout(&self) -> Duration {
        Duration::from_millis(self.probe_timeout_ms)
    }

    /// The deadline of routed calls that carry none.
    pub fn default_deadline(&self) -> Duration {
        Duration::from_millis(self.default_deadline_ms)
    }

    /// How routed calls are retried.
    pub fn retry_policy(&self) -> crate::retry::RetryPolicy {
        crate::retry::RetryPolicy {
            max_attempts: self.retry_max_attempts,
            initial_backoff: Duration::from_millis(self.retry_initial_backoff_ms),
            max_backoff: Duration::from_millis(self.retry_max_backoff_ms),
        }
    }

    /// The directory refresh interval.
    pub fn directory_refresh(&self) -> Duration {
        Duration::from_millis(self.directory_refresh_ms)
    }

    /// How the benchmark snapshot is refreshed.
    pub fn benchmark_pacing(&self) -> crate::benchmarks::Pacing {
        crate::benchmarks::Pacing {
            interval: Duration::from_millis(self.benchmark_refresh_ms),
            concurrency: self.benchmark_concurrency,
            call_timeout: Duration::from_millis(self.benchmark_call_timeout_ms),
        }
    }

    /// How old benchmark data may be and still be shown.
    pub fn benchmark_max_age(&self) -> Duration {
        Duration::from_millis(self.benchmark_max_age_ms)
    }

    /// How long a directory may go without a successful refresh.
    pub fn directory_max_staleness(&self) -> Duration {
        Duration::from_millis(self.directory_max_staleness_ms)
    }
}

impl Validate for GatewayConfig {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            !self.gateway_id.is_empty()
                && self
                    .gateway_id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "gateway_id must be lowercase letters, digits and dashes (got `{}`)",
            self.gateway_id
        );
        self.listen_addr()?;
        self.metrics_addr()?;
        ensure!(
            !self.tls.ca.is_empty() && !self.tls.cert.is_empty() && !self.tls.key.is_empty(),
            "tls.ca, tls.cert and tls.key are required: the gateway serves clients over TLS and \
             reaches the nodes over mutual TLS"
        );
        ensure!(
            !self.token_keys_dir.is_empty(),
            "token_keys_dir is required: every directory call carries a token verified with \
             its token.pub"
        );
        ensure!(
            !self.token_issuers.is_empty() && self.token_issuers.iter().all(|i| !i.is_empty()),
            "token_issuers must name at least one issuer (`unione` for the federation's own tokens)"
        );
        ensure!(
            self.health_interval_ms >= 100,
            "health_interval_ms must be at least 100 (got {})",
            self.health_interval_ms
        );
        ensure!(
            self.probe_timeout_ms >= 10,
            "probe_timeout_ms must be at least 10 (got {})",
            self.probe_timeout_ms
        );
        ensure!(
            self.calls_per_second_per_principal > 0 && self.calls_per_second_per_comune > 0,
            "calls_per_second_per_principal and calls_per_second_per_comune must be at least 1"
        );
        ensure!(
            (1..=64).contains(&self.node_connections),
            "node_connections must be 1 to 64 (got {})",
            self.node_connections
        );
        ensure!(
            self.default_deadline_ms >= 10,
            "default_deadline_ms must be at least 10"
        );
        ensure!(
            (1..=10).contains(&self.retry_max_attempts),
            "retry_max_attempts must be 1 to 10 (got {})",
            self.retry_max_attempts
        );
        ensure!(
            self.retry_initial_backoff_ms >= 1
                && self.retry_max_backoff_ms >= self.retry_initial_backoff_ms,
            "retry_initial_backoff_ms must be at least 1 and retry_max_backoff_ms at least as \
             long (got {} and {})",
            self.retry_initial_backoff_ms,
            self.retry_max_backoff_ms
        );
        ensure!(
            self.directory_refresh_ms >= 100,
            "directory_refresh_ms must be at least 100 (got {})",
            self.directory_refresh_ms
        );
        ensure!(
            self.directory_max_staleness_ms >= self.directory_refresh_ms,
            "directory_max_staleness_ms must be at least directory_refresh_ms"
        );
        ensure!(
            self.benchmark_refresh_ms >= 100,
            "benchmark_refresh_ms must be at least 100 (got {})",
            self.benchmark_refresh_ms
        );
        ensure!(
            (1..=1024).contains(&self.benchmark_concurrency),
            "benchmark_concurrency must be 1 to 1024 (got {})",
            self.benchmark_concurrency
        );
        ensure!(
            self.benchmark_call_timeout_ms >= 10,
            "benchmark_call_timeout_ms must be at least 10 (got {})",
            self.benchmark_call_timeout_ms
        );
        ensure!(
            self.benchmark_max_age_ms >= self.benchmark_refresh_ms,
            "benchmark_max_age_ms must be at least benchmark_refresh_ms: data is shown until \
             the next refresh at least"
        );
        ensure!(
            self.public_calls_per_second > 0,
            "public_calls_per_second must be at least 1"
        );
        self.limits.validate()?;
        self.web.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> GatewayConfig {
        GatewayConfig {
            gateway_id: "gateway".into(),
            token_keys_dir: "/keys".into(),
            tls: TlsFiles {
                ca: "ca.pem".into(),
                cert: "gw.pem".into(),
                key: "gw.key".into(),
            },
            ..GatewayConfig::default()
        }
    }

    #[test]
    fn defaults_and_required_keys() {
        let c = GatewayConfig::default();
        assert_eq!(c.listen, "127.0.0.1:7443");
        assert_eq!((c.health_interval_ms, c.probe_timeout_ms), (2000, 1500));
        assert!(
            c.validate().is_err(),
            "gateway_id, tls and token keys are required"
        );
        valid()
            .validate()
            .expect("a complete configuration is valid");

        let err = GatewayConfig {
            token_keys_dir: String::new(),
            ..valid()
        }
        .validate()
        .expect_err("no token keys");
        assert!(err.to_string().contains("token_keys_dir"), "{err}");
        let err = GatewayConfig {
            metrics_listen: "nowhere".into(),
            ..valid()
        }
        .validate()
        .expect_err("bad metrics address");
        assert!(err.to_string().contains("metrics_listen"), "{err}");
    }

    #[test]
    fn the_web_front_is_plain_http_only_on_loopback() {
        let web = |listen: &str, cert: &str, key: &str| GatewayConfig {
            web: WebConfig {
                listen: listen.into(),
                cert: cert.into(),
                key: key.into(),
                ..WebConfig::default()
            },
            ..valid()
        };
        web("", "", "").validate().expect("no web front");
        web("127.0.0.1:8080", "", "")
            .validate()
            .expect("plain HTTP on loopback");
        let err = web("0.0.0.0:8080", "", "")
            .validate()
            .expect_err("plain HTTP on every interface");
        assert!(err.to_string().contains("web.listen"), "{err}");
        web("0.0.0.0:8443", "web.pem", "web.key")
            .validate()
            .expect("HTTPS anywhere");
        let err = web("0.0.0.0:8443", "web.pem", "")
            .validate()
            .expect_err("a certificate without its key");
        assert!(err.to_string().contains("web.key"), "{err}");
    }

    #[test]
    fn benchmark_keys_have_defaults_and_bounds() {
        let c = valid();
        assert_eq!(
            (
                c.benchmark_refresh_ms,
                c.benchmark_concurrency,
                c.benchmark_call_timeout_ms,
                c.benchmark_max_age_ms
            ),
            (300_000, 16, 5_000, 86_400_000)
        );
        for (bad, key) in [
            (
                GatewayConfig {
                    benchmark_concurrency: 0,
                    ..valid()
                },
                "benchmark_concurrency",
            ),
            (
                GatewayConfig {
                    benchmark_refresh_ms: 50,
                    ..valid()
                },
                "benchmark_refresh_ms",
            ),
            (
                GatewayConfig {
                    benchmark_max_age_ms: 1_000,
                    ..valid()
                },
                "benchmark_max_age_ms",
            ),
        ] {
            let err = bad.validate().expect_err(key);
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn the_database_defaults_to_a_file_in_the_data_directory() {
        let c = GatewayConfig {
            data_dir: "/var/lib/unione".into(),
            ..valid()
        };
        assert_eq!(
            c.database_url(),
            "sqlite:///var/lib/unione/gateway.sqlite?mode=rwc"
        );
    }
}
