//! Helpers of the federation end-to-end tests: they start the real `unione` binary that cargo
//! built for them, on a loopback address of their own, and talk to it over TLS.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use unione_proto::federation::v1::directory_service_client::DirectoryServiceClient;
use unione_proto::federation::v1::{FederationHealth, GetFederationHealthRequest, ServingStatus};

/// The binary under test.
pub fn unione() -> Command {
    Command::new(env!("CARGO_BIN_EXE_unione"))
}

/// A child process killed when dropped, so a failing test leaves nothing running.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Proc {
        let log = std::fs::File::create(log_dir.join(format!("{name}.log"))).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("the unione binary starts");
        Proc {
            child,
            name: name.to_owned(),
        }
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop within 30 s of SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the process dies mid-flight, as in a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `demo.json` once the demo has written it (it does so last, when ready).
pub async fn wait_for_demo(data_dir: &Path, proc: &mut Proc, log_dir: &Path) -> serde_json::Value {
    let path = data_dir.join("demo.json");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return serde_json::from_str(&text).expect("demo.json is JSON");
        }
        if let Some(status) = proc.child.try_wait().expect("wait") {
            let log = std::fs::read_to_string(log_dir.join(format!("{}.log", proc.name)))
                .unwrap_or_default();
            panic!("the demo exited early ({status}):\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not become ready within 180 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TLS channel to the gateway, trusting only the federation CA.
pub async fn gateway_channel(demo: &serde_json::Value) -> Channel {
    let ca = std::fs::read(demo["ca"].as_str().expect("ca")).expect("CA file");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    Channel::from_shared(demo["gateway"].as_str().expect("gateway").to_owned())
        .expect("URI")
        .tls_config(tls)
        .expect("TLS")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("the gateway accepts TLS connections")
}

/// A mutual-TLS channel straight to a node, with the given client identity.
pub async fn node_channel(
    endpoint: &str,
    ca: &Path,
    cert: &Path,
    key: &Path,
    node_id: &str,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca).expect("CA")))
        .identity(Identity::from_pem(
            std::fs::read(cert).expect("cert"),
            std::fs::read(key).expect("key"),
        ))
        .domain_name(format!("{node_id}.nodes.unione.internal"));
    Channel::from_shared(endpoint.to_owned())
        .expect("URI")
        .tls_config(tls)
        .expect("TLS")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

pub fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII token"),
    );
    request
}

/// Polls the federation health until `accept` holds (bounded), returning the last view.
pub async fn wait_for_health(
    channel: &Channel,
    token: &str,
    what: &str,
    accept: impl Fn(&FederationHealth) -> bool,
) -> FederationHealth {
    let mut client = DirectoryServiceClient::new(channel.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = client
            .get_federation_health(bearer(GetFederationHealthRequest {}, token))
            .await
            .expect("GetFederationHealth answers")
            .into_inner();
        if accept(&health) {
            return health;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last health: {health:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn all_serving(h: &FederationHealth) -> bool {
    !h.members.is_empty()
        && h.members
            .iter()
            .all(|m| m.status == ServingStatus::Serving as i32)
}

pub fn member_status(h: &FederationHealth, istat: &str) -> i32 {
    h.members
        .iter()
        .find(|m| m.comune == format!("comuni/{istat}"))
        .map(|m| m.status)
        .unwrap_or_default()
}

/// A scratch directory for one test, kept when the test fails (for its logs).
pub fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("unione-{name}-"))
        .tempdir()
        .expect("tempdir");
    let path = dir.path().to_path_buf();
    (dir, path)
}
