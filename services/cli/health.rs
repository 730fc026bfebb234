//! `unione health`: one gRPC health check of a running server, for probes.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tonic::transport::{Channel, ClientTlsConfig};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Whether the server listening on `listen` answers SERVING for the whole server. A server
/// bound to every interface is reached on loopback.
pub async fn check(listen: &str, tls: ClientTlsConfig) -> anyhow::Result<bool> {
    let mut addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("listen: `{listen}`"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let channel = Channel::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3));
    let channel = match channel.connect().await {
        Ok(channel) => channel,
        Err(err) => {
            eprintln!("cannot connect to {addr}: {err}");
            return Ok(false);
        }
    };
    match HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
    {
        Ok(response) => Ok(response.into_inner().status == ServingStatus::Serving as i32),
        Err(status) => {
            eprintln!("health check failed: {status}");
            Ok(false)
        }
    }
}
