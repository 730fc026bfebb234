//! One node (and, when asked, one gateway) set up as an operator would on a plain server:
//! the federation CA and certificates made with the kit's `certs`, token keys, and TOML
//! configuration files, for the tests that start the binary as systemd or a restore would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use unione_kit::certs::{self, Kind};

use crate::common::{Proc, unione};

/// The one comune the standalone node serves (Luni), with the quality office.
pub const LUNI: &str = "011020";

/// Paths of a standalone setup.
pub struct Setup {
    /// The certificates' directory.
    pub certs: PathBuf,
    /// The token keys' directory.
    pub keys: PathBuf,
}

/// Creates the CA, a certificate for node `n1`, one for gateway `gw` and the token keys under
/// `etc` (the layout of `/etc/unione`).
pub fn setup(etc: &Path) -> Setup {
    let certs = etc.join("certs");
    let keys = etc.join("keys");
    certs::ensure_ca(&certs, "Unione test").expect("a CA");
    certs::issue(&certs, Kind::Node, "n1").expect("a node certificate");
    certs::issue(&certs, Kind::Gateway, "gw").expect("a gateway certificate");
    unione_kit::token::ensure_keys(&keys).expect("token keys");
    Setup { certs, keys }
}

impl Setup {
    fn tls(&self, kind: Kind, id: &str) -> String {
        let issued = certs::paths(&self.certs, kind, id);
        format!(
            "[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\n",
            certs::ca_cert_path(&self.certs).display().to_string(),
            issued.cert.display().to_string(),
            issued.key.display().to_string()
        )
    }

    /// A node configuration listening on `listen`; `data_dir` when given (otherwise the
    /// environment or the default decides).
    pub fn node_toml(&self, listen: &str, data_dir: Option<&Path>) -> String {
        let data_dir = data_dir
            .map(|d| format!("data_dir = {:?}\n", d.display().to_string()))
            .unwrap_or_default();
        format!(
            "node_id = \"n1\"\nlisten = \"{listen}\"\n{data_dir}{}\n[[comuni]]\nistat = \"{LUNI}\"\n\
             name = \"Luni\"\nfiscal_code = \"00743110157\"\ncadastral_code = \"G143\"\n\
             segregation_code = \"03\"\nipa_code = \"c_g143\"\npopulation = 8300\n\
             functions = [\"quality\"]\n",
            self.tls(Kind::Node, "n1")
        )
    }

    /// A gateway configuration listening on `listen`.
    pub fn gateway_toml(&self, listen: &str) -> String {
        format!(
            "gateway_id = \"gw\"\nlisten = \"{listen}\"\ntoken_keys_dir = {:?}\n{}",
            self.keys.display().to_string(),
            self.tls(Kind::Gateway, "gw")
        )
    }

    /// The gateway's certificate and key: a client the node believes about the principal.
    pub fn gateway_identity(&self) -> (PathBuf, PathBuf) {
        let issued = certs::paths(&self.certs, Kind::Gateway, "gw");
        (issued.cert, issued.key)
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        certs::ca_cert_path(&self.certs)
    }
}

/// Polls `unione health <kind> --config` (bounded) until it exits 0, failing if the server
/// exits first.
pub fn wait_healthy(kind: &str, config: &Path, proc: &mut Proc, logs: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = unione()
            .args(["health", kind, "--config"])
            .arg(config)
            .output()
            .expect("unione health runs")
            .status;
        if status.success() {
            return;
        }
        if let Some(exit) = proc.child.try_wait().expect("wait") {
            let log = std::fs::read_to_string(logs.join(format!("{}.log", proc.name)))
                .unwrap_or_default();
            panic!("{} exited ({exit}):\n{log}", proc.name);
        }
        assert!(
            Instant::now() < deadline,
            "{} not healthy within 60 s",
            proc.name
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
