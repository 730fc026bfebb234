//! The gateway end to end, in process: a federation CA and certificates in a temporary
//! directory, small real nodes (tonic servers with the kit's ServerBuilder serving
//! NodeService and gRPC health under mutual TLS), and the gateway on an ephemeral port.
//!
//! Rules checked (DOMAIN.md, Federation): organisations identify each other by mutual TLS with
//! certificates from the federation's CA, so a node with another CA's certificate, or another
//! node's, is refused; the end user travels as a separately authenticated principal (a token);
//! the metaservices (members, health) answer what the directory and the probes say.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as HealthStatus;
use tonic_health::pb::health_client::HealthClient;
use unione_gateway::directory::{DirectoryFile, MemberEntry, NodeEntry, ProvisionEntry};
use unione_gateway::{GatewayConfig, RunningGateway};
use unione_kit::certs::{self, Kind};
use unione_kit::error::reason_and_field;
use unione_kit::metrics::Metrics;
use unione_kit::server::{Limits, ServerBuilder};
use unione_kit::tls::TlsFiles;
use unione_kit::token::{self, Role};
use unione_proto::common::v1::Function;
use unione_proto::federation::v1::directory_service_client::DirectoryServiceClient;
use unione_proto::federation::v1::node_service_server::{NodeService, NodeServiceServer};
use unione_proto::federation::v1::{
    FederationHealth, GetFederationHealthRequest, GetMemberRequest, GetNodeInfoRequest,
    ListMembersRequest, ListNodesRequest, ListProvisionsRequest, MemberHealth, NodeInfo,
    ServedComune, ServingStatus,
};

const SARZANA: &str = "011027";
const AMEGLIA: &str = "011001";
const LUNI: &str = "011020";
const ARCOLA: &str = "011002";
const BOLANO: &str = "011004";

/// A node's NodeService: answers what the test says it serves.
struct FakeNodeInfo(NodeInfo);

#[tonic::async_trait]
impl NodeService for FakeNodeInfo {
    async fn get_node_info(
        &self,
        _request: Request<GetNodeInfoRequest>,
    ) -> Result<Response<NodeInfo>, Status> {
        Ok(Response::new(self.0.clone()))
    }
}

/// A small real node.
struct Node {
    health: tonic_health::server::HealthReporter,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Node {
    /// Serves NodeService (claiming `served`) and the health of `healthy` services on
    /// `listener`, under mutual TLS with `tls`.
    async fn start(
        listener: TcpListener,
        tls: &TlsFiles,
        node_id: &str,
        served: &[(&str, &[Function])],
        healthy: &[&str],
    ) -> Self {
        let info = NodeInfo {
            node_id: node_id.to_owned(),
            version: "test".to_owned(),
            comuni: served
                .iter()
                .map(|(istat, functions)| ServedComune {
                    comune: format!("comuni/{istat}"),
                    functions: functions.iter().map(|f| *f as i32).collect(),
                })
                .collect(),
            storage_backend: "sqlite".to_owned(),
        };
        let mut builder = ServerBuilder::new();
        builder.add(NodeServiceServer::new(FakeNodeInfo(info)));
        let health = builder.health();
        for service in healthy {
            health
                .set_service_status(*service, tonic_health::ServingStatus::Serving)
                .await;
        }
        let tls = tls.mutual_server().expect("node TLS files");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(builder.serve(
            listener,
            Some(tls),
            Limits::default(),
            Metrics::new(),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            health,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .await
            .expect("node task joins")
            .expect("node served");
    }
}

struct Pki {
    dir: PathBuf,
    ca: PathBuf,
}

impl Pki {
    fn new(dir: PathBuf, federation: &str) -> Self {
        certs::ensure_ca(&dir, federation).expect("CA created");
        Self {
            ca: certs::ca_cert_path(&dir),
            dir,
        }
    }

    /// A certificate for `id`, verified against `trusted` (usually this PKI's own CA).
    fn files(&self, kind: Kind, id: &str, trusted: &Path) -> TlsFiles {
        let issued = certs::issue(&self.dir, kind, id).expect("certificate issued");
        TlsFiles {
            ca: trusted.display().to_string(),
            cert: issued.cert.display().to_string(),
            key: issued.key.display().to_string(),
        }
    }
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

fn member(istat: &str, name: &str) -> MemberEntry {
    MemberEntry {
        istat: istat.to_owned(),
        name: name.to_owned(),
        province: "SP".to_owned(),
        peer_group: "magra-valley".to_owned(),
        ..MemberEntry::default()
    }
}

fn provision(comune: &str, function: &str, node: &str) -> ProvisionEntry {
    ProvisionEntry {
        comune: comune.to_owned(),
        function: function.to_owned(),
        node: node.to_owned(),
    }
}

fn gateway_config(dir: &Path, tls: TlsFiles, keys: &Path, directory: &Path) -> GatewayConfig {
    GatewayConfig {
        gateway_id: "gateway".to_owned(),
        listen: "127.0.0.1:0".to_owned(),
        data_dir: dir.join("gateway").display().to_string(),
        directory_file: directory.display().to_string(),
        token_keys_dir: keys.display().to_string(),
        health_interval_ms: 150,
        probe_timeout_ms: 1000,
        tls,
        ..GatewayConfig::default()
    }
}

async fn start_gateway(config: GatewayConfig) -> RunningGateway {
    let (listener, _) = bind().await;
    unione_gateway::start_on(config, listener)
        .await
        .expect("the gateway starts")
}

async fn client_channel(gateway: &RunningGateway, ca: &Path) -> Channel {
    let ca = Certificate::from_pem(std::fs::read(ca).expect("CA readable"));
    Channel::from_shared(format!("https://{}", gateway.addr))
        .expect("endpoint")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(ca)
                .domain_name("localhost"),
        )
        .expect("client TLS")
        .connect()
        .await
        .expect("the gateway accepts TLS connections")
}

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

async fn health(channel: &Channel, token: &str) -> FederationHealth {
    DirectoryServiceClient::new(channel.clone())
        .get_federation_health(authorized(GetFederationHealthRequest {}, token))
        .await
        .expect("GetFederationHealth answers")
        .into_inner()
}

/// Polls the federation health until `done` holds, for at most ten seconds.
async fn wait_for(
    channel: &Channel,
    token: &str,
    what: &str,
    done: impl Fn(&HashMap<String, MemberHealth>) -> bool,
) -> HashMap<String, MemberHealth> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = health(channel, token).await;
        let by_comune: HashMap<String, MemberHealth> = h
            .members
            .into_iter()
            .map(|m| (m.comune.trim_start_matches("comuni/").to_owned(), m))
            .collect();
        if done(&by_comune) {
            return by_comune;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}; last health: {by_comune:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn status_of(h: &HashMap<String, MemberHealth>, istat: &str) -> ServingStatus {
    h.get(istat)
        .map_or(ServingStatus::Unspecified, MemberHealth::status)
}

fn detail_of(h: &HashMap<String, MemberHealth>, istat: &str, f: Function) -> String {
    h.get(istat)
        .and_then(|m| m.functions.iter().find(|x| x.function() == f))
        .map(|x| x.detail.clone())
        .unwrap_or_default()
}

/// The whole path: tokens on the client listener, health and reflection open, nodes probed
/// over mutual TLS by the identity the directory gives them, unconfirmed provisions, a
/// stopped and restarted node, a node hanging in the handshake that delays no one else.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn federation_health_follows_the_nodes() {
    unione_kit::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let federation = Pki::new(dir.path().join("certs"), "Test federation");
    let foreign = Pki::new(dir.path().join("other-ca"), "Another federation");
    let keys = dir.path().join("keys");
    token::ensure_keys(&keys).expect("token keys");
    let signer = token::Signer::load(&keys).expect("signer");
    let admin = signer.issue("admin-1", Role::Admin, Vec::new(), None, 1);

    // Sarzana: a proper node, serving its own registry and payments and Ameglia's registry.
    let sarzana_tls = federation.files(Kind::Node, "sarzana", &federation.ca);
    let (listener, sarzana_addr) = bind().await;
    let sarzana_served: &[(&str, &[Function])] = &[
        (SARZANA, &[Function::Registry, Function::Payments]),
        (AMEGLIA, &[Function::Registry]),
    ];
    let sarzana_healthy = [
        "unione.registry.v1.ResidentService",
        "unione.payments.v1.DebtPositionService",
    ];
    let sarzana = Node::start(
        listener,
        &sarzana_tls,
        "sarzana",
        sarzana_served,
        &sarzana_healthy,
    )
    .await;

    // Luni: the right name, but a certificate from another CA (it trusts ours for clients,
    // so only the gateway's own check can refuse it).
    let luni_tls = foreign.files(Kind::Node, "luni", &federation.ca);
    let (listener, luni_addr) = bind().await;
    let luni = Node::start(
        listener,
        &luni_tls,
        "luni",
        &[(LUNI, &[Function::Registry])],
        &["unione.registry.v1.ResidentService"],
    )
    .await;

    // Arcola: a federation certificate, but Sarzana's, not Arcola's.
    let (listener, arcola_addr) = bind().await;
    let arcola = Node::start(
        listener,
        &sarzana_tls,
        "arcola",
        &[(ARCOLA, &[Function::Registry])],
        &["unione.registry.v1.ResidentService"],
    )
    .await;

    // Bolano: accepts connections and never answers (a hung host).
    let (hung, bolano_addr) = bind().await;
    let hung_task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });

    let directory = DirectoryFile {
        members: vec![
            member(SARZANA, "Sarzana"),
            member(AMEGLIA, "Ameglia"),
            member(LUNI, "Luni"),
            member(ARCOLA, "Arcola"),
            member(BOLANO, "Bolano"),
        ],
        nodes: [
            ("sarzana", sarzana_addr),
            ("luni", luni_addr),
            ("arcola", arcola_addr),
            ("bolano", bolano_addr),
        ]
        .into_iter()
        .map(|(id, addr)| NodeEntry {
            node_id: id.to_owned(),
            endpoint: format!("https://{addr}"),
        })
        .collect(),
        provisions: vec![
            provision(SARZANA, "registry", "sarzana"),
            provision(SARZANA, "payments", "sarzana"),
            provision(AMEGLIA, "registry", "sarzana"),
            // The directory says so; the node does not confirm it.
            provision(AMEGLIA, "quality", "sarzana"),
            provision(LUNI, "registry", "luni"),
            provision(ARCOLA, "registry", "arcola"),
            provision(BOLANO, "registry", "bolano"),
        ],
        revoked_certificates: Vec::new(),
    };
    let directory_path = dir.path().join("directory.toml");
    std::fs::write(
        &directory_path,
        toml::to_string(&directory).expect("directory serializes"),
    )
    .expect("directory written");

    let gateway_tls = federation.files(Kind::Gateway, "gateway", &federation.ca);
    let config = gateway_config(dir.path(), gateway_tls, &keys, &directory_path);
    let gateway = start_gateway(config).await;
    assert_eq!(gateway.directory_version, 1);
    let channel = client_channel(&gateway, &federation.ca).await;

    // No token: UNAUTHENTICATED, reason TOKEN_MISSING.
    let err = DirectoryServiceClient::new(channel.clone())
        .get_federation_health(GetFederationHealthRequest {})
        .await
        .expect_err("a call without a token is refused");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(reason_and_field(&err).0, "TOKEN_MISSING");
    // A token signed by another key: TOKEN_INVALID.
    let other_keys = dir.path().join("other-keys");
    token::ensure_keys(&other_keys).expect("keys");
    let forged = token::Signer::load(&other_keys).expect("signer").issue(
        "admin-1",
        Role::Admin,
        Vec::new(),
        None,
        1,
    );
    let err = DirectoryServiceClient::new(channel.clone())
        .list_members(authorized(ListMembersRequest::default(), &forged))
        .await
        .expect_err("a token from another key is refused");
    assert_eq!(reason_and_field(&err).0, "TOKEN_INVALID");
    // Health stays open.
    let open = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "unione.federation.v1.DirectoryService".to_owned(),
        })
        .await
        .expect("health needs no token")
        .into_inner();
    assert_eq!(open.status(), HealthStatus::Serving);

    // The directory through the API.
    let mut api = DirectoryServiceClient::new(channel.clone());
    let members = api
        .list_members(authorized(ListMembersRequest::default(), &admin))
        .await
        .expect("lists")
        .into_inner();
    let codes: Vec<&str> = members
        .members
        .iter()
        .map(|m| m.istat_code.as_str())
        .collect();
    assert_eq!(codes, [AMEGLIA, ARCOLA, BOLANO, LUNI, SARZANA]);
    let nodes = api
        .list_nodes(authorized(ListNodesRequest::default(), &admin))
        .await
        .expect("lists")
        .into_inner();
    assert_eq!(nodes.nodes[0].name, "nodes/arcola");
    assert_eq!(
        nodes.nodes[0].certificate_identity,
        "arcola.nodes.unione.internal"
    );
    let provisions = api
        .list_provisions(authorized(
            ListProvisionsRequest {
                comune: format!("comuni/{SARZANA}"),
                ..ListProvisionsRequest::default()
            },
            &admin,
        ))
        .await
        .expect("lists")
        .into_inner();
    assert_eq!(provisions.provisions.len(), 2);
    let err = api
        .get_member(authorized(
            GetMemberRequest {
                name: "comuni/099999".to_owned(),
            },
            &admin,
        ))
        .await
        .expect_err("not a member");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason_and_field(&err).0, "RESOURCE_NOT_FOUND");

    // Probes: Sarzana serves; the refused, unconfirmed and hung ones do not, each saying why.
    let h = wait_for(
        &channel,
        &admin,
        "Sarzana serving, the others settled",
        |h| {
            status_of(h, SARZANA) == ServingStatus::Serving
                && [AMEGLIA, LUNI, ARCOLA, BOLANO]
                    .iter()
                    .all(|c| status_of(h, c) == ServingStatus::NotServing)
        },
    )
    .await;
    let sarzana_health = &h[SARZANA];
    assert_eq!(sarzana_health.functions.len(), 2);
    assert!(sarzana_health.functions.iter().all(|f| {
        f.status() == ServingStatus::Serving
            && f.detail.is_empty()
            && f.check_time.is_some()
            && f.latency_micros > 0
            && f.node == "nodes/sarzana"
    }));
    // Ameglia: the registry serves, the quality office is not confirmed by the node.
    let ameglia = &h[AMEGLIA];
    assert_eq!(
        ameglia
            .functions
            .iter()
            .map(|f| (f.function(), f.status()))
            .collect::<Vec<_>>(),
        [
            (Function::Registry, ServingStatus::Serving),
            (Function::Quality, ServingStatus::NotServing)
        ]
    );
    let unconfirmed = detail_of(&h, AMEGLIA, Function::Quality);
    assert!(
        unconfirmed.contains("node does not serve quality for comuni/011001"),
        "{unconfirmed}"
    );
    let foreign_ca = detail_of(&h, LUNI, Function::Registry);
    assert!(
        foreign_ca.contains("invalid peer certificate: UnknownIssuer"),
        "a certificate from another CA fails the handshake: {foreign_ca}"
    );
    let wrong_name = detail_of(&h, ARCOLA, Function::Registry);
    assert!(
        wrong_name.contains("not valid for name \"arcola.nodes.unione.internal\""),
        "another node's certificate fails the handshake: {wrong_name}"
    );
    let hung_detail = detail_of(&h, BOLANO, Function::Registry);
    assert!(
        hung_detail.contains("no answer within 1000 ms"),
        "{hung_detail}"
    );

    // The hung node delays no one: Sarzana is probed every 150 ms while Bolano's probes each
    // take the full second.
    let mut times = std::collections::BTreeSet::new();
    let sample_until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < sample_until {
        let h = health(&channel, &admin).await;
        if let Some(t) = h
            .members
            .iter()
            .find(|m| m.comune == format!("comuni/{SARZANA}"))
            .and_then(|m| m.functions.first())
            .and_then(|f| f.check_time)
        {
            times.insert((t.seconds, t.nanos));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        times.len() >= 4,
        "Sarzana was probed {} times in 1.5 s beside a hung node",
        times.len()
    );

    // A function whose service reports NOT_SERVING takes its member down with it, alone.
    let payments = "unione.payments.v1.DebtPositionService";
    sarzana
        .health
        .set_service_status(payments, tonic_health::ServingStatus::NotServing)
        .await;
    let h = wait_for(&channel, &admin, "Sarzana's payments not serving", |h| {
        status_of(h, SARZANA) == ServingStatus::NotServing
    })
    .await;
    let statuses: Vec<(Function, ServingStatus)> = h[SARZANA]
        .functions
        .iter()
        .map(|f| (f.function(), f.status()))
        .collect();
    assert_eq!(
        statuses,
        [
            (Function::Registry, ServingStatus::Serving),
            (Function::Payments, ServingStatus::NotServing)
        ]
    );
    let detail = detail_of(&h, SARZANA, Function::Payments);
    assert!(
        detail.contains(payments) && detail.contains("NOT_SERVING"),
        "{detail}"
    );
    sarzana
        .health
        .set_service_status(payments, tonic_health::ServingStatus::Serving)
        .await;
    wait_for(&channel, &admin, "Sarzana's payments serving again", |h| {
        status_of(h, SARZANA) == ServingStatus::Serving
    })
    .await;

    // Sarzana stops: its members go NOT_SERVING; it comes back on the same port: SERVING.
    sarzana.stop().await;
    let h = wait_for(&channel, &admin, "Sarzana not serving once stopped", |h| {
        status_of(h, SARZANA) == ServingStatus::NotServing
    })
    .await;
    assert!(!detail_of(&h, SARZANA, Function::Registry).is_empty());
    let listener = TcpListener::bind(sarzana_addr)
        .await
        .expect("Sarzana's port can be bound again");
    let sarzana = Node::start(
        listener,
        &sarzana_tls,
        "sarzana",
        sarzana_served,
        &sarzana_healthy,
    )
    .await;
    wait_for(
        &channel,
        &admin,
        "Sarzana serving again after a restart",
        |h| status_of(h, SARZANA) == ServingStatus::Serving,
    )
    .await;

    gateway.stop().await.expect("the gateway stops cleanly");
    for node in [sarzana, luni, arcola] {
        node.stop().await;
    }
    hung_task.abort();
}

/// Restarting on the same data keeps the directory version when the file did not change, and
/// a changed file is a new version (the gateway's side of the versioned directory).
#[tokio::test]
async fn restarting_keeps_the_directory_version_until_the_file_changes() {
    unione_kit::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let federation = Pki::new(dir.path().join("certs"), "Test federation");
    let keys = dir.path().join("keys");
    token::ensure_keys(&keys).expect("token keys");
    let admin = token::Signer::load(&keys).expect("signer").issue(
        "admin-1",
        Role::Admin,
        Vec::new(),
        None,
        1,
    );
    let mut directory = DirectoryFile {
        members: vec![member(SARZANA, "Sarzana")],
        nodes: Vec::new(),
        provisions: Vec::new(),
        revoked_certificates: Vec::new(),
    };
    let path = dir.path().join("directory.toml");
    std::fs::write(&path, toml::to_string(&directory).expect("toml")).expect("written");
    let config = gateway_config(
        dir.path(),
        federation.files(Kind::Gateway, "gateway", &federation.ca),
        &keys,
        &path,
    );

    let first = start_gateway(GatewayConfig {
        metrics_listen: "127.0.0.1:0".to_owned(),
        ..config.clone()
    })
    .await;
    assert_eq!(first.directory_version, 1);
    assert!(
        first.metrics_addr.is_some_and(|a| a.port() != 0),
        "the metrics endpoint is bound when configured"
    );
    first.stop().await.expect("stops");

    let second = start_gateway(config.clone()).await;
    assert_eq!(second.directory_version, 1, "same file, same version");
    assert!(second.metrics_addr.is_none());
    second.stop().await.expect("stops");

    directory.members.push(member(AMEGLIA, "Ameglia"));
    std::fs::write(&path, toml::to_string(&directory).expect("toml")).expect("written");
    let third = start_gateway(config.clone()).await;
    assert_eq!(
        third.directory_version, 2,
        "a changed file is a new version"
    );
    let channel = client_channel(&third, &federation.ca).await;
    let health = health(&channel, &admin).await;
    assert_eq!(health.directory_version, 2);
    assert_eq!(health.members.len(), 2);
    // A member with no provider has nothing to probe.
    assert!(
        health
            .members
            .iter()
            .all(|m| m.status() == ServingStatus::Unspecified && m.functions.is_empty())
    );
    third.stop().await.expect("stops");

    // Without a directory file the gateway serves what the database holds.
    let from_db = start_gateway(GatewayConfig {
        directory_file: String::new(),
        ..config.clone()
    })
    .await;
    assert_eq!(from_db.directory_version, 2);
    from_db.stop().await.expect("stops");

    // An invalid file stops the start, naming the entry.
    directory
        .provisions
        .push(provision(SARZANA, "registry", "nowhere"));
    std::fs::write(&path, toml::to_string(&directory).expect("toml")).expect("written");
    let (listener, _) = bind().await;
    let err = unione_gateway::start_on(config, listener)
        .await
        .err()
        .expect("an invalid directory is refused");
    let text = format!("{err:#}");
    assert!(text.contains("node nowhere is not listed"), "{text}");
}

/// The directory changes while the gateway runs, with no restart (DOMAIN.md, Federation): a
/// new member served by a new node appears, is probed and becomes healthy; the change is a new
/// version. Calls keep flowing throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_directory_changes_at_run_time() {
    unione_kit::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let federation = Pki::new(dir.path().join("certs"), "Test federation");
    let keys = dir.path().join("keys");
    token::ensure_keys(&keys).expect("token keys");
    let admin = token::Signer::load(&keys).expect("signer").issue(
        "admin-1",
        Role::Admin,
        Vec::new(),
        None,
        1,
    );
    let (first_listener, first_addr) = bind().await;
    let sarzana = Node::start(
        first_listener,
        &federation.files(Kind::Node, "sarzana", &federation.ca),
        "sarzana",
        &[(SARZANA, &[Function::Registry])],
        &["unione.registry.v1.ResidentService"],
    )
    .await;
    let mut directory = DirectoryFile {
        members: vec![member(SARZANA, "Sarzana")],
        nodes: vec![NodeEntry {
            node_id: "sarzana".into(),
            endpoint: format!("https://{first_addr}"),
        }],
        provisions: vec![provision(SARZANA, "registry", "sarzana")],
        revoked_certificates: Vec::new(),
    };
    let path = dir.path().join("directory.toml");
    std::fs::write(&path, toml::to_string(&directory).expect("toml")).expect("written");
    let gateway = start_gateway(GatewayConfig {
        directory_refresh_ms: 200,
        directory_max_staleness_ms: 60_000,
        ..gateway_config(
            dir.path(),
            federation.files(Kind::Gateway, "gateway", &federation.ca),
            &keys,
            &path,
        )
    })
    .await;
    let channel = client_channel(&gateway, &federation.ca).await;
    wait_for(&channel, &admin, "Sarzana serving", |h| {
        status_of(h, SARZANA) == ServingStatus::Serving
    })
    .await;

    let (second_listener, second_addr) = bind().await;
    let ameglia = Node::start(
        second_listener,
        &federation.files(Kind::Node, "ameglia", &federation.ca),
        "ameglia",
        &[(AMEGLIA, &[Function::Registry])],
        &["unione.registry.v1.ResidentService"],
    )
    .await;
    directory.members.push(member(AMEGLIA, "Ameglia"));
    directory.nodes.push(NodeEntry {
        node_id: "ameglia".into(),
        endpoint: format!("https://{second_addr}"),
    });
    directory
        .provisions
        .push(provision(AMEGLIA, "registry", "ameglia"));
    std::fs::write(&path, toml::to_string(&directory).expect("toml")).expect("written");

    let h = wait_for(
        &channel,
        &admin,
        "Ameglia joined and serving, Sarzana still serving",
        |h| {
            status_of(h, AMEGLIA) == ServingStatus::Serving
                && status_of(h, SARZANA) == ServingStatus::Serving
        },
    )
    .await;
    assert_eq!(h.len(), 2);
    assert_eq!(
        health(&channel, &admin).await.directory_version,
        2,
        "the change is a new version"
    );
    assert_eq!(
        gateway.directory_version, 1,
        "the gateway was not restarted"
    );

    gateway.stop().await.expect("stops");
    sarzana.stop().await;
    ameglia.stop().await;
}
