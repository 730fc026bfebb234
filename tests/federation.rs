//! End-to-end tests of the federation: the real `unione` binary, real gateways and nodes on
//! loopback, mutual TLS, SQLite databases on disk.
//!
//! Each test uses a loopback address of its own (127.0.0.x) so tests can run in parallel with
//! fixed ports and no race for them.

mod common;

use std::path::Path;

use common::*;
use unione_kit::names::routed;
use unione_proto::federation::v1::directory_service_client::DirectoryServiceClient;
use unione_proto::federation::v1::node_service_client::NodeServiceClient;
use unione_proto::federation::v1::{
    GetNodeInfoRequest, ListMembersRequest, ListProvisionsRequest, ServingStatus,
};
use unione_proto::registry::v1::ListResidentsRequest;
use unione_proto::registry::v1::resident_service_client::ResidentServiceClient;

fn demo_command(data: &Path, host: &str) -> std::process::Command {
    let mut cmd = unione();
    cmd.args(["demo", "--data-dir"])
        .arg(data)
        .args(["--host", host, "--base-port", "7400"]);
    cmd
}

async fn count_residents(demo: &serde_json::Value, node: &str, istat: &str) -> usize {
    let endpoint = demo["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["id"] == node)
        .and_then(|n| n["endpoint"].as_str())
        .expect("node in demo.json");
    let channel = node_channel(
        endpoint,
        Path::new(demo["ca"].as_str().expect("ca")),
        Path::new(demo["seeder_cert"].as_str().expect("cert")),
        Path::new(demo["seeder_key"].as_str().expect("key")),
        node,
    )
    .await
    .expect("the node accepts the seeder's certificate");
    let mut client = ResidentServiceClient::new(channel);
    let mut total = 0;
    let mut token = String::new();
    loop {
        let page = client
            .list_residents(routed(
                istat,
                ListResidentsRequest {
                    parent: format!("comuni/{istat}"),
                    page_size: 100,
                    page_token: token,
                    ..ListResidentsRequest::default()
                },
            ))
            .await
            .expect("ListResidents answers")
            .into_inner();
        total += page.residents.len();
        if page.next_page_token.is_empty() {
            return total;
        }
        token = page.next_page_token;
    }
}

/// The demo's shape: six Magra valley comuni, one node each plus Sarzana as capofila running
/// Ameglia's registry; every member healthy through the gateway; data seeded; and a restart on
/// the same data directory keeps everything (no reseeding, no lost or duplicated record).
#[tokio::test(flavor = "multi_thread")]
async fn demo_federation_comes_up_healthy_and_restarts_on_the_same_data() {
    let (_keep, data) = scratch("demo");
    let logs = data.join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let host = "127.0.0.41";

    let mut demo_proc = Proc::spawn("demo-1", demo_command(&data, host), &logs);
    let demo = wait_for_demo(&data, &mut demo_proc, &logs).await;
    let admin = demo["tokens"]["admin"]
        .as_str()
        .expect("admin token")
        .to_owned();
    assert_eq!(
        demo["tokens"]["operators"]
            .as_object()
            .expect("operators")
            .len(),
        6
    );
    assert_eq!(
        demo["citizen_fiscal_number"].as_str().expect("cf").len(),
        16
    );

    let channel = gateway_channel(&demo).await;
    let health = wait_for_health(&channel, &admin, "every member healthy", all_serving).await;
    assert_eq!(health.members.len(), 6);

    let mut directory = DirectoryServiceClient::new(channel.clone());
    let members = directory
        .list_members(bearer(
            ListMembersRequest {
                page_size: 0,
                page_token: String::new(),
            },
            &admin,
        ))
        .await
        .expect("ListMembers")
        .into_inner()
        .members;
    let names: Vec<&str> = members.iter().map(|m| m.display_name.as_str()).collect();
    for town in [
        "Sarzana",
        "Castelnuovo Magra",
        "Luni",
        "Santo Stefano di Magra",
        "Arcola",
        "Ameglia",
    ] {
        assert!(names.contains(&town), "{town} is a member: {names:?}");
    }
    let provisions = directory
        .list_provisions(bearer(
            ListProvisionsRequest {
                comune: "comuni/011001".into(),
                page_size: 0,
                page_token: String::new(),
            },
            &admin,
        ))
        .await
        .expect("ListProvisions")
        .into_inner()
        .provisions;
    let registry = provisions
        .iter()
        .find(|p| p.function == unione_proto::common::v1::Function::Registry as i32)
        .expect("Ameglia has a registry provider");
    assert_eq!(
        registry.node, "nodes/sarzana",
        "the capofila runs Ameglia's registry"
    );

    let sarzana_before = count_residents(&demo, "sarzana", "011027").await;
    let ameglia_before = count_residents(&demo, "sarzana", "011001").await;
    assert!(
        sarzana_before >= 20 && ameglia_before >= 5,
        "seeded: {sarzana_before} and {ameglia_before}"
    );

    assert!(
        demo_proc.terminate().success(),
        "the demo stops cleanly on SIGTERM"
    );
    assert!(
        !data.join("demo.json").exists(),
        "a stopped demo withdraws its demo.json"
    );

    let mut demo_proc = Proc::spawn("demo-2", demo_command(&data, host), &logs);
    let demo2 = wait_for_demo(&data, &mut demo_proc, &logs).await;
    assert_eq!(
        demo2["citizen_fiscal_number"],
        demo["citizen_fiscal_number"]
    );
    let channel = gateway_channel(&demo2).await;
    wait_for_health(
        &channel,
        &admin,
        "every member healthy after restart",
        all_serving,
    )
    .await;
    assert_eq!(
        count_residents(&demo2, "sarzana", "011027").await,
        sarzana_before
    );
    assert_eq!(
        count_residents(&demo2, "sarzana", "011001").await,
        ameglia_before
    );
    assert!(demo_proc.terminate().success());
}

/// Nodes and gateway as separate processes from the demo's configuration files: a node killed
/// mid-test (SIGKILL) shows as unhealthy while the others stay healthy; a node presenting a
/// certificate from another CA is refused by the gateway; a node refuses a client whose
/// certificate the federation CA did not issue.
#[tokio::test(flavor = "multi_thread")]
async fn killed_node_is_unhealthy_and_foreign_certificates_are_refused() {
    let (_keep, data) = scratch("procs");
    let logs = data.join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let host = "127.0.0.42";

    // Prepare certificates, configuration and data with the demo, then stop it.
    let mut demo_proc = Proc::spawn("demo", demo_command(&data, host), &logs);
    let demo = wait_for_demo(&data, &mut demo_proc, &logs).await;
    assert!(demo_proc.terminate().success());
    let admin = demo["tokens"]["admin"].as_str().expect("admin").to_owned();
    let config = data.join("config");

    let mut nodes = Vec::new();
    for id in [
        "sarzana",
        "castelnuovo-magra",
        "santo-stefano-magra",
        "arcola",
        "ameglia",
    ] {
        let mut cmd = unione();
        cmd.args(["node", "--config"])
            .arg(config.join(format!("{id}.toml")));
        nodes.push(Proc::spawn(id, cmd, &logs));
    }
    // Luni's node presents a certificate for the right identity, from another CA.
    let foreign = data.join("foreign-ca");
    unione_kit::certs::ensure_ca(&foreign, "Not the federation").expect("foreign CA");
    let forged = unione_kit::certs::issue(&foreign, unione_kit::certs::Kind::Node, "luni")
        .expect("foreign cert");
    let mut cmd = unione();
    cmd.args(["node", "--config"])
        .arg(config.join("luni.toml"))
        .env("UNIONE_TLS__CERT", &forged.cert)
        .env("UNIONE_TLS__KEY", &forged.key);
    let luni = Proc::spawn("luni-forged", cmd, &logs);
    let mut cmd = unione();
    cmd.args(["gateway", "--config"])
        .arg(config.join("gateway.toml"));
    let _gateway = Proc::spawn("gateway", cmd, &logs);

    let channel = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let ca = std::fs::read(demo["ca"].as_str().expect("ca")).expect("CA");
            let tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                .domain_name("localhost");
            let attempt = tonic::transport::Channel::from_shared(
                demo["gateway"].as_str().expect("gw").to_owned(),
            )
            .expect("URI")
            .tls_config(tls)
            .expect("TLS")
            .connect()
            .await;
            match attempt {
                Ok(c) => break c,
                Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                Err(e) => panic!("the gateway process did not come up: {e}"),
            }
        }
    };
    let others = ["011027", "011011", "011026", "011002", "011001"];
    let health = wait_for_health(
        &channel,
        &admin,
        "all but Luni serving, Luni refused",
        |h| {
            others
                .iter()
                .all(|c| member_status(h, c) == ServingStatus::Serving as i32)
                && member_status(h, "011020") == ServingStatus::NotServing as i32
        },
    )
    .await;
    let luni_health = health
        .members
        .iter()
        .find(|m| m.comune == "comuni/011020")
        .expect("Luni listed");
    assert!(
        luni_health.functions.iter().all(|f| !f.detail.is_empty()),
        "a refused node's functions say why: {luni_health:?}"
    );
    luni.kill();

    // `unione health` is a probe: it checks a server with the TLS files it serves with.
    let probe = |what: &str, file: &str| {
        unione()
            .args(["health", what, "--config"])
            .arg(config.join(file))
            .output()
            .expect("the binary runs")
    };
    let ok = probe("node", "arcola.toml");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "SERVING");
    assert!(probe("gateway", "gateway.toml").status.success());

    // Kill Arcola's node as in a crash: Arcola goes unhealthy, the others stay healthy.
    let arcola_index = 3;
    nodes.remove(arcola_index).kill();
    let still = ["011027", "011011", "011026", "011001"];
    wait_for_health(
        &channel,
        &admin,
        "Arcola unhealthy, the others serving",
        |h| {
            member_status(h, "011002") == ServingStatus::NotServing as i32
                && still
                    .iter()
                    .all(|c| member_status(h, c) == ServingStatus::Serving as i32)
        },
    )
    .await;

    let down = probe("node", "arcola.toml");
    assert_eq!(down.status.code(), Some(1), "a dead node fails its probe");

    // A node refuses a client certificate from another CA.
    let intruder = unione_kit::certs::issue(&foreign, unione_kit::certs::Kind::Client, "intruder")
        .expect("cert");
    let sarzana = demo["nodes"][0]["endpoint"].as_str().expect("endpoint");
    let refused = match node_channel(
        sarzana,
        Path::new(demo["ca"].as_str().expect("ca")),
        &intruder.cert,
        &intruder.key,
        "sarzana",
    )
    .await
    {
        Err(_) => true,
        Ok(channel) => NodeServiceClient::new(channel)
            .get_node_info(GetNodeInfoRequest {})
            .await
            .is_err(),
    };
    assert!(
        refused,
        "a node must refuse a client certificate the federation CA did not issue"
    );
    // ...and accepts one it did.
    let good = node_channel(
        sarzana,
        Path::new(demo["ca"].as_str().expect("ca")),
        Path::new(demo["seeder_cert"].as_str().expect("cert")),
        Path::new(demo["seeder_key"].as_str().expect("key")),
        "sarzana",
    )
    .await
    .expect("federation client certificate accepted");
    // A principal header is believed only from a gateway: from any other peer it is refused.
    let mut forged = tonic::Request::new(GetNodeInfoRequest {});
    let principal = unione_kit::principal::Principal {
        sub: "intruder".into(),
        role: unione_kit::token::Role::Admin,
        comuni: Vec::new(),
        fiscal_number: None,
        gateway: String::new(),
    };
    forged.metadata_mut().insert(
        unione_kit::principal::PRINCIPAL_HEADER,
        principal.encode().parse().expect("ASCII"),
    );
    let status = NodeServiceClient::new(good.clone())
        .get_node_info(forged)
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        unione_kit::error::reason_and_field(&status).0,
        "PRINCIPAL_NOT_TRUSTED"
    );
    let info = NodeServiceClient::new(good)
        .get_node_info(GetNodeInfoRequest {})
        .await
        .expect("NodeInfo")
        .into_inner();
    assert_eq!(info.node_id, "sarzana");
    assert_eq!(
        info.comuni.len(),
        2,
        "the capofila serves Sarzana and Ameglia"
    );

    for node in nodes {
        assert!(node.terminate().success(), "nodes stop cleanly on SIGTERM");
    }
}

/// The README's Python example runs against a test federation, so the integration
/// instructions cannot rot. Needs UNIONE_PYTHON: a Python with grpcio and grpcio-tools
/// (`.ci/run` makes one); skipped with a notice otherwise.
#[tokio::test(flavor = "multi_thread")]
async fn readme_python_example_runs_against_the_demo() {
    let Ok(python) = std::env::var("UNIONE_PYTHON") else {
        eprintln!("UNIONE_PYTHON is not set: the README's Python example was skipped");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let start = readme
        .find("```python\n")
        .expect("the README has a Python example")
        + "```python\n".len();
    let end = start + readme[start..].find("```").expect("closed code block");
    let example = &readme[start..end];

    let (_keep, data) = scratch("python");
    let logs = data.join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let mut demo_proc = Proc::spawn("demo", demo_command(&data, "127.0.0.43"), &logs);
    let demo = wait_for_demo(&data, &mut demo_proc, &logs).await;
    let channel = gateway_channel(&demo).await;
    wait_for_health(
        &channel,
        demo["tokens"]["admin"].as_str().expect("admin"),
        "every member healthy",
        all_serving,
    )
    .await;

    // Generate the stubs from the protos the README names.
    let command_at = readme
        .find("grpc_tools.protoc")
        .expect("the README generates stubs");
    let command_end = command_at + readme[command_at..].find("```").expect("closed block");
    let protos: Vec<&str> = readme[command_at..command_end]
        .split_whitespace()
        .filter(|word| word.ends_with(".proto"))
        .collect();
    assert!(protos.len() >= 4, "the README names the protos: {protos:?}");
    let generated = data.join("gen");
    std::fs::create_dir_all(&generated).expect("gen dir");
    let status = std::process::Command::new(&python)
        .current_dir(root)
        .args(["-m", "grpc_tools.protoc", "-Iproto"])
        .arg(format!("--python_out={}", generated.display()))
        .arg(format!("--grpc_python_out={}", generated.display()))
        .args(&protos)
        .status()
        .expect("python runs");
    assert!(
        status.success(),
        "grpc_tools.protoc generates the Python stubs"
    );

    let script = data.join("example.py");
    std::fs::write(&script, example).expect("write example");
    let output = std::process::Command::new(&python)
        .arg(&script)
        .arg(data.join("demo.json"))
        .env("PYTHONPATH", &generated)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the example fails:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("011027 Sarzana"),
        "the example lists Sarzana:\n{stdout}"
    );
    assert!(
        stdout.contains("SERVING"),
        "the example shows health:\n{stdout}"
    );
    assert!(demo_proc.terminate().success());
}

fn with_token_and_route<T>(
    message: T,
    token: Option<&str>,
    istat: Option<&str>,
) -> tonic::Request<T> {
    let mut request = match istat {
        Some(istat) => routed(istat, message),
        None => tonic::Request::new(message),
    };
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ASCII token"),
        );
    }
    request
}

/// The code and reason with which the gateway (or the node behind it) refuses a
/// ListResidents call.
async fn refusal(
    client: &mut ResidentServiceClient<tonic::transport::Channel>,
    parent: &str,
    token: Option<&str>,
    route: Option<&str>,
) -> (tonic::Code, String) {
    let status = client
        .list_residents(with_token_and_route(residents_of(parent), token, route))
        .await
        .expect_err("refused");
    (
        status.code(),
        unione_kit::error::reason_and_field(&status).0,
    )
}

fn residents_of(istat: &str) -> ListResidentsRequest {
    ListResidentsRequest {
        parent: format!("comuni/{istat}"),
        page_size: 500,
        ..ListResidentsRequest::default()
    }
}

/// Calls reach the services through the gateway, routed by the comune in the routing header
/// (AIP-4222) to the node the directory names, the capofila included, with no code written for
/// each method; an operator acts only for their comune; the node refuses a body that names
/// another comune than the header; and refusals say nothing about what exists.
#[tokio::test(flavor = "multi_thread")]
async fn calls_are_routed_by_comune_through_the_gateway() {
    use tonic::Code;
    use unione_kit::error::reason_and_field;
    use unione_proto::payments::v1::ListDebtPositionsRequest;
    use unione_proto::payments::v1::debt_position_service_client::DebtPositionServiceClient;

    let (_keep, data) = scratch("routing");
    let logs = data.join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let mut demo_proc = Proc::spawn("demo", demo_command(&data, "127.0.0.44"), &logs);
    let demo = wait_for_demo(&data, &mut demo_proc, &logs).await;
    let admin = demo["tokens"]["admin"].as_str().expect("admin").to_owned();
    let sarzana_op = demo["tokens"]["operators"]["011027"]
        .as_str()
        .expect("operator")
        .to_owned();
    let luni_op = demo["tokens"]["operators"]["011020"]
        .as_str()
        .expect("operator")
        .to_owned();
    let citizen = demo["tokens"]["citizen"]
        .as_str()
        .expect("citizen")
        .to_owned();
    let channel = gateway_channel(&demo).await;
    let mut residents = ResidentServiceClient::new(channel.clone());
    // The demo seeded everything through the gateway; this test's own calls start here.
    let since = std::time::SystemTime::now();

    // Sarzana's operator reads Sarzana's residents through the gateway: the same as the node holds.
    let page = residents
        .list_residents(with_token_and_route(
            residents_of("011027"),
            Some(&sarzana_op),
            Some("011027"),
        ))
        .await
        .expect("routed to Sarzana's node")
        .into_inner();
    assert_eq!(
        page.residents.len(),
        count_residents(&demo, "sarzana", "011027").await
    );
    assert!(
        page.residents
            .iter()
            .all(|r| r.name.starts_with("comuni/011027/residents/"))
    );

    // Ameglia's registry is run by the capofila's node; its payments desk by its own node.
    let ameglia = residents
        .list_residents(with_token_and_route(
            residents_of("011001"),
            Some(&admin),
            Some("011001"),
        ))
        .await
        .expect("routed to the capofila")
        .into_inner();
    assert_eq!(
        ameglia.residents.len(),
        count_residents(&demo, "sarzana", "011001").await
    );
    let positions = DebtPositionServiceClient::new(channel.clone())
        .list_debt_positions(with_token_and_route(
            ListDebtPositionsRequest {
                parent: "comuni/011001".into(),
                page_size: 10,
                page_token: String::new(),
            },
            Some(&admin),
            Some("011001"),
        ))
        .await
        .expect("routed to Ameglia's own node")
        .into_inner();
    assert!(!positions.debt_positions.is_empty());

    // Refusals, each for one reason, none saying whether the comune or the record exists.
    let cases = [
        (
            "another town's operator",
            "011027",
            Some(&luni_op),
            Some("011027"),
            Code::PermissionDenied,
            "COMUNE_OUT_OF_SCOPE",
        ),
        (
            "another town's operator, a non-member comune",
            "011015",
            Some(&luni_op),
            Some("011015"),
            Code::PermissionDenied,
            "COMUNE_OUT_OF_SCOPE",
        ),
        // Routed for Sarzana, the body asks for Ameglia (served by the same node): the node refuses.
        (
            "a body naming another comune than the header",
            "011001",
            Some(&sarzana_op),
            Some("011027"),
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
        ),
        (
            "no token",
            "011027",
            None,
            Some("011027"),
            Code::Unauthenticated,
            "TOKEN_MISSING",
        ),
        (
            "no routing header",
            "011027",
            Some(&admin),
            None,
            Code::InvalidArgument,
            "ROUTING_HEADER_MISSING",
        ),
        (
            "a non-member comune",
            "011015",
            Some(&admin),
            Some("011015"),
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
        ),
    ];
    for (why, parent, token, route, code, reason) in cases {
        let refused = refusal(&mut residents, parent, token.map(String::as_str), route).await;
        assert_eq!(refused, (code, reason.to_owned()), "{why}");
    }

    // A citizen listing a comune's residents gets their own record and no one else's.
    let own = residents
        .list_residents(with_token_and_route(
            residents_of("011027"),
            Some(&citizen),
            Some("011027"),
        ))
        .await
        .expect("a citizen lists their own record")
        .into_inner();
    assert_eq!(own.residents.len(), 1, "{own:?}");
    assert_eq!(
        own.residents[0].codice_fiscale,
        demo["citizen_fiscal_number"].as_str().expect("cf")
    );

    // The list of members is public; everything else needs a token.
    let members = DirectoryServiceClient::new(channel.clone())
        .list_members(ListMembersRequest::default())
        .await
        .expect("anyone may list the members")
        .into_inner()
        .members;
    assert_eq!(members.len(), 6);

    // Anyone may verify a certificate's code, with no token: the seal is checked.
    use unione_proto::registry::v1::VerifyCertificateRequest;
    use unione_proto::registry::v1::certificate_service_client::CertificateServiceClient;
    let verified = CertificateServiceClient::new(channel.clone())
        .verify_certificate(routed(
            "011027",
            VerifyCertificateRequest {
                parent: "comuni/011027".into(),
                verification_code: demo["certificate_code"].as_str().expect("code").to_owned(),
            },
        ))
        .await
        .expect("a certificate's code verifies with no token")
        .into_inner();
    assert!(verified.seal_valid, "{verified:?}");

    // The demo paid notices and settled them with a reconciliation flow: the double-entry
    // ledger of each comune verifies.
    use unione_proto::payments::v1::VerifyLedgerRequest;
    use unione_proto::payments::v1::ledger_service_client::LedgerServiceClient;
    let ledger = LedgerServiceClient::new(channel.clone())
        .verify_ledger(with_token_and_route(
            VerifyLedgerRequest {
                parent: "comuni/011027".into(),
            },
            Some(&sarzana_op),
            Some("011027"),
        ))
        .await
        .expect("VerifyLedger")
        .into_inner();
    assert!(ledger.verified, "{ledger:?}");

    // The provider calls are for payment providers only, for the creditors they serve.
    use unione_proto::payments::v1::VerifyNoticeRequest;
    use unione_proto::payments::v1::payment_provider_service_client::PaymentProviderServiceClient;
    let psp = demo["tokens"]["payment_provider"]
        .as_str()
        .expect("psp token")
        .to_owned();
    let notice = {
        let page = DebtPositionServiceClient::new(channel.clone())
            .list_debt_positions(with_token_and_route(
                ListDebtPositionsRequest {
                    parent: "comuni/011027".into(),
                    page_size: 1,
                    page_token: String::new(),
                },
                Some(&admin),
                Some("011027"),
            ))
            .await
            .expect("positions")
            .into_inner();
        format!(
            "comuni/011027/notices/{}",
            page.debt_positions[0].payment_options[0].notice_number
        )
    };
    let mut provider = PaymentProviderServiceClient::new(channel.clone());
    let verified = provider
        .verify_notice(with_token_and_route(
            VerifyNoticeRequest {
                name: notice.clone(),
            },
            Some(&psp),
            Some("011027"),
        ))
        .await
        .expect("a payment provider verifies a notice")
        .into_inner();
    assert!(verified.amount_cents > 0);
    let status = provider
        .verify_notice(with_token_and_route(
            VerifyNoticeRequest { name: notice },
            Some(&sarzana_op),
            Some("011027"),
        ))
        .await
        .expect_err("operators do not make provider calls");
    assert_eq!(
        (status.code(), reason_and_field(&status).0),
        (Code::PermissionDenied, "ROLE_NOT_ALLOWED".to_owned())
    );
    assert_eq!(
        refusal(&mut residents, "011027", Some(&psp), Some("011027")).await,
        (Code::PermissionDenied, "ROLE_NOT_ALLOWED".to_owned())
    );

    // Every routed call is in the audit log, with who, what, for which comune, where and the
    // outcome; the chain verifies; usage is metered per comune and function.
    use unione_proto::federation::v1::audit_service_client::AuditServiceClient;
    use unione_proto::federation::v1::{
        GetUsageRequest, ListAuditEntriesRequest, VerifyAuditLogRequest,
    };
    let mut audit = AuditServiceClient::new(channel.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let entries = loop {
        let entries = audit
            .list_audit_entries(bearer(
                ListAuditEntriesRequest {
                    start_time: Some(since.into()),
                    page_size: 1000,
                    ..Default::default()
                },
                &admin,
            ))
            .await
            .expect("ListAuditEntries")
            .into_inner()
            .entries;
        if entries
            .iter()
            .filter(|e| e.method.contains("ResidentService"))
            .count()
            >= 9
        {
            break entries;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the audit log did not get the calls: {entries:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let served = entries
        .iter()
        .find(|e| e.principal == "operator-011027" && e.comune == "comuni/011027" && e.code == 0)
        .expect("Sarzana's operator's call is audited");
    assert_eq!(
        served.method,
        "/unione.registry.v1.ResidentService/ListResidents"
    );
    assert_eq!(served.node, "nodes/sarzana");
    assert!(
        entries
            .iter()
            .any(|e| e.principal == "operator-011020" && e.code == Code::PermissionDenied as i32),
        "refused calls are audited too"
    );
    let first = audit
        .list_audit_entries(bearer(
            ListAuditEntriesRequest {
                page_size: 1,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("ListAuditEntries")
        .into_inner()
        .entries;
    assert!(
        first[0].method.starts_with("directory.load"),
        "the directory load is the log's first entry: {first:?}"
    );
    let verified = audit
        .verify_audit_log(bearer(VerifyAuditLogRequest {}, &admin))
        .await
        .expect("VerifyAuditLog")
        .into_inner();
    assert!(verified.intact, "{verified:?}");
    assert!(verified.entries_checked >= entries.len() as i64);
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let usage = audit
        .get_usage(bearer(
            GetUsageRequest {
                month,
                comune: "comuni/011027".into(),
            },
            &admin,
        ))
        .await
        .expect("GetUsage")
        .into_inner()
        .records;
    let registry = usage
        .iter()
        .find(|u| u.function == unione_proto::common::v1::Function::Registry as i32)
        .expect("Sarzana's registry calls are metered");
    assert!(registry.calls >= 3 && registry.errors >= 2, "{registry:?}");
    let status = audit
        .verify_audit_log(bearer(VerifyAuditLogRequest {}, &sarzana_op))
        .await
        .expect_err("operators do not read the audit log");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(demo_proc.terminate().success());
}
