//! A resident moving between two member comuni on two nodes, through the real gateway
//! (DOMAIN.md "Registry", Residents: moves between members run "with the same two-sided
//! discipline"; issue 3: "Neither side may end up with the person in both towns or in
//! neither, even if one node is down during the move (it completes when the node is back)").
//! Real nodes (`unione_node`) with their move dispatchers, the real gateway, mutual TLS,
//! SQLite.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use unione_gateway::directory::{DirectoryFile, NodeEntry, ProvisionEntry};
use unione_gateway::{GatewayConfig, RunningGateway};
use unione_kit::certs::Kind;
use unione_kit::error::reason_and_field;
use unione_kit::names::routed;
use unione_kit::tls::TlsFiles;
use unione_kit::token::Role;
use unione_node::config::OperationalDataConfig;
use unione_node::{Function, NodeConfig, RunningNode};
use unione_proto::google::r#type::Date;
use unione_proto::registry::v1 as registry;
use unione_proto::registry::v1::household_service_client::HouseholdServiceClient;
use unione_proto::registry::v1::move_service_client::MoveServiceClient;
use unione_proto::registry::v1::resident_service_client::ResidentServiceClient;
use unione_registry::domain::codice_fiscale;

/// The origin: Luni, on node `luni`.
const LUNI: &str = "011020";
/// The destination: Sarzana, on node `sarzana`.
const SARZANA: &str = "011027";

fn date(y: i32, m: i32, d: i32) -> Option<Date> {
    Some(Date {
        year: y,
        month: m,
        day: d,
    })
}

fn address(street: &str, locality: &str) -> registry::Address {
    registry::Address {
        street: street.to_owned(),
        house_number: "3".to_owned(),
        postal_code: "19038".to_owned(),
        locality: locality.to_owned(),
    }
}

fn resident(family: &str, given: &str) -> registry::Resident {
    let birth = NaiveDate::from_ymd_opt(1984, 5, 17).expect("a real date");
    registry::Resident {
        codice_fiscale: codice_fiscale::compute(family, given, birth, true, "I449"),
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        birth_date: date(1984, 5, 17),
        birth_place_code: "I449".to_owned(),
        sex: registry::Sex::Female.into(),
        citizenship: "IT".to_owned(),
        address: Some(address("Via Appia", "Luni")),
        registration_date: date(2015, 3, 2),
        registration_reason: registry::RegistrationReason::Birth.into(),
        ..Default::default()
    }
}

/// Two comuni on two nodes, each delivering moves through the gateway.
struct Federation {
    gateway: RunningGateway,
    luni: Option<RunningNode>,
    sarzana: Option<RunningNode>,
    luni_config: NodeConfig,
    sarzana_config: NodeConfig,
    sarzana_addr: SocketAddr,
    /// A client channel with no identity.
    channel: Channel,
    luni_operator: String,
    sarzana_operator: String,
    admin: String,
}

fn node_config(root: &Path, id: &str, istat: &str, tls: TlsFiles) -> NodeConfig {
    NodeConfig {
        node_id: id.to_owned(),
        listen: "127.0.0.1:0".to_owned(),
        data_dir: root.join(id).display().to_string(),
        tls,
        comuni: vec![support::served(istat, id, 10_000, &[Function::Registry])],
        ..NodeConfig::default()
    }
}

impl Federation {
    async fn start(root: &Path) -> Self {
        unione_kit::tls::install_crypto_provider();
        let (keys, signer) = support::secrets(root);
        let operator = |istat: &str| {
            signer.issue(
                &format!("op-{istat}"),
                Role::Operator,
                vec![istat.to_owned()],
                None,
                1,
            )
        };
        let (luni_operator, sarzana_operator) = (operator(LUNI), operator(SARZANA));
        let admin = signer.issue("admin-1", Role::Admin, Vec::new(), None, 1);

        let luni_listener = unione_kit::server::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bound");
        let sarzana_listener = unione_kit::server::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bound");
        let luni_addr = luni_listener.local_addr().expect("addr");
        let sarzana_addr = sarzana_listener.local_addr().expect("addr");
        let directory = DirectoryFile {
            members: vec![
                support::member(LUNI, "Luni"),
                support::member(SARZANA, "Sarzana"),
            ],
            nodes: vec![
                NodeEntry {
                    node_id: "luni".into(),
                    endpoint: format!("https://{luni_addr}"),
                },
                NodeEntry {
                    node_id: "sarzana".into(),
                    endpoint: format!("https://{sarzana_addr}"),
                },
            ],
            provisions: vec![
                ProvisionEntry {
                    comune: LUNI.into(),
                    function: "registry".into(),
                    node: "luni".into(),
                },
                ProvisionEntry {
                    comune: SARZANA.into(),
                    function: "registry".into(),
                    node: "sarzana".into(),
                },
            ],
            revoked_certificates: Vec::new(),
        };
        let file = root.join("directory.toml");
        std::fs::write(&file, toml::to_string(&directory).expect("toml")).expect("written");
        let gateway = unione_gateway::start(GatewayConfig {
            probe_timeout_ms: 500,
            ..support::gateway_config(root, &file, &keys)
        })
        .await
        .expect("the gateway starts");
        let od = OperationalDataConfig {
            gateway: format!("https://{}", gateway.addr),
            gateway_tls_name: "localhost".to_owned(),
            move_retry_interval_ms: 200,
            ..OperationalDataConfig::default()
        };
        let certs_dir = root.join("certs");
        let luni_config = NodeConfig {
            operational_data: od.clone(),
            ..node_config(
                root,
                "luni",
                LUNI,
                support::tls_files(&certs_dir, Kind::Node, "luni"),
            )
        };
        let sarzana_config = NodeConfig {
            operational_data: od,
            ..node_config(
                root,
                "sarzana",
                SARZANA,
                support::tls_files(&certs_dir, Kind::Node, "sarzana"),
            )
        };
        let luni = unione_node::start_on(luni_config.clone(), luni_listener)
            .await
            .expect("the node starts");
        let sarzana = unione_node::start_on(sarzana_config.clone(), sarzana_listener)
            .await
            .expect("the node starts");
        let channel = support::client(&gateway, root).await;
        Self {
            gateway,
            luni: Some(luni),
            sarzana: Some(sarzana),
            luni_config,
            sarzana_config,
            sarzana_addr,
            channel,
            luni_operator,
            sarzana_operator,
            admin,
        }
    }

    /// A channel to the gateway presenting node `id`'s certificate, as its dispatcher does.
    async fn as_node(&self, config: &NodeConfig) -> Channel {
        Endpoint::from_shared(format!("https://{}", self.gateway.addr))
            .expect("endpoint")
            .tls_config(config.tls.mutual_client("localhost").expect("TLS"))
            .expect("TLS")
            .connect()
            .await
            .expect("the gateway accepts the node")
    }

    async fn stop_sarzana(&mut self) {
        let node = self.sarzana.take().expect("running");
        node.stop().await.expect("the node stops");
    }

    /// Sarzana again, on the same data directory and address.
    async fn restart_sarzana(&mut self) {
        let listener = unione_kit::server::bind(self.sarzana_addr)
            .await
            .expect("the same address again");
        self.sarzana = Some(
            unione_node::start_on(self.sarzana_config.clone(), listener)
                .await
                .expect("the node starts again"),
        );
    }

    async fn stop(mut self) {
        if let Some(n) = self.sarzana.take() {
            n.stop().await.expect("the node stops");
        }
        if let Some(n) = self.luni.take() {
            n.stop().await.expect("the node stops");
        }
        self.gateway.stop().await.expect("the gateway stops");
    }
}

fn call<T>(token: &str, istat: &str, message: T) -> tonic::Request<T> {
    support::authorized(token, routed(istat, message))
}

/// Registers a resident at Luni and starts their move to Sarzana (a new household there).
async fn start_move(f: &Federation, family: &str) -> (registry::Resident, registry::Move) {
    start_move_joining(
        f,
        family,
        String::new(),
        registry::Relationship::Unspecified,
    )
    .await
}

/// Like [`start_move`], the person joining `household` at Sarzana as `relationship`
/// (an empty `household`: a new one with them as head).
async fn start_move_joining(
    f: &Federation,
    family: &str,
    household: String,
    relationship: registry::Relationship,
) -> (registry::Resident, registry::Move) {
    let person = ResidentServiceClient::new(f.channel.clone())
        .create_resident(call(
            &f.luni_operator,
            LUNI,
            registry::CreateResidentRequest {
                parent: format!("comuni/{LUNI}"),
                resident: Some(resident(family, "Anna")),
                request_id: format!("create-{family}"),
            },
        ))
        .await
        .expect("registered at Luni")
        .into_inner();
    let started = MoveServiceClient::new(f.channel.clone())
        .create_move(call(
            &f.luni_operator,
            LUNI,
            registry::CreateMoveRequest {
                parent: format!("comuni/{LUNI}"),
                r#move: Some(registry::Move {
                    origin_resident: person.name.clone(),
                    destination: format!("comuni/{SARZANA}"),
                    effective_date: date(2026, 1, 12),
                    address: Some(address("Via Bertoloni", "Sarzana")),
                    household,
                    relationship: relationship as i32,
                    ..Default::default()
                }),
                request_id: format!("move-{family}"),
            },
        ))
        .await
        .expect("the move starts at Luni")
        .into_inner();
    (person, started)
}

async fn get_move(f: &Federation, token: &str, istat: &str, id: &str) -> registry::Move {
    MoveServiceClient::new(f.channel.clone())
        .get_move(call(
            token,
            istat,
            registry::GetMoveRequest {
                name: format!("comuni/{istat}/moves/{id}"),
            },
        ))
        .await
        .expect("the move")
        .into_inner()
}

/// Polls the move at the origin until `done`, for at most 60 seconds.
async fn wait_for_move(
    f: &Federation,
    id: &str,
    what: &str,
    done: impl Fn(&registry::Move) -> bool,
) -> registry::Move {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = get_move(f, &f.luni_operator, LUNI, id).await;
        if done(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn residence(
    f: &Federation,
    token: &str,
    istat: &str,
    name: &str,
) -> registry::ResidenceAtDate {
    HouseholdServiceClient::new(f.channel.clone())
        .get_residence_at_date(call(
            token,
            istat,
            registry::GetResidenceAtDateRequest {
                name: name.to_owned(),
                date: date(2026, 2, 1),
            },
        ))
        .await
        .expect("the residence")
        .into_inner()
}

async fn events(
    f: &Federation,
    token: &str,
    istat: &str,
    name: &str,
) -> Vec<registry::ResidenceEvent> {
    HouseholdServiceClient::new(f.channel.clone())
        .list_residence_events(call(
            token,
            istat,
            registry::ListResidenceEventsRequest {
                parent: name.to_owned(),
                page_size: 50,
                page_token: String::new(),
            },
        ))
        .await
        .expect("the events")
        .into_inner()
        .events
}

async fn current_residents(f: &Federation, token: &str, istat: &str) -> Vec<registry::Resident> {
    ResidentServiceClient::new(f.channel.clone())
        .list_residents(call(
            token,
            istat,
            registry::ListResidentsRequest {
                parent: format!("comuni/{istat}"),
                page_size: 500,
                page_token: String::new(),
                ..registry::ListResidentsRequest::default()
            },
        ))
        .await
        .expect("the residents")
        .into_inner()
        .residents
}

fn move_id(m: &registry::Move) -> String {
    m.name.rsplit('/').next().expect("an id").to_owned()
}

/// The final state of a completed move, checked once on both sides: resident in exactly one
/// comune (the destination) with the address and a household given, emigrated at the origin
/// to the destination, and both histories showing the move with the same id and date.
async fn check_completed(f: &Federation, person: &registry::Resident, m: &registry::Move) {
    let id = move_id(m);
    assert_eq!(m.state, registry::MoveState::Completed as i32);
    let origin_side = residence(f, &f.luni_operator, LUNI, &person.name).await;
    assert_eq!(
        origin_side.status,
        registry::ResidenceStatus::Emigrated as i32
    );
    let origin_events = events(f, &f.luni_operator, LUNI, &person.name).await;
    let emigration = origin_events.last().expect("the emigration");
    assert_eq!(
        emigration.kind,
        registry::ResidenceEventKind::Emigration as i32
    );
    assert_eq!(emigration.destination, SARZANA);
    assert_eq!(emigration.r#move, format!("comuni/{LUNI}/moves/{id}"));
    assert_eq!(emigration.effective_date, date(2026, 1, 12));

    let at_destination = get_move(f, &f.sarzana_operator, SARZANA, &id).await;
    assert_eq!(at_destination.state, registry::MoveState::Completed as i32);
    assert_eq!(at_destination.destination_resident, m.destination_resident);
    assert_eq!(at_destination.origin_resident, person.name);
    let moved = &m.destination_resident;
    assert!(
        moved.starts_with(&format!("comuni/{SARZANA}/residents/")),
        "{moved}"
    );
    let dest_side = residence(f, &f.sarzana_operator, SARZANA, moved).await;
    assert_eq!(dest_side.status, registry::ResidenceStatus::Resident as i32);
    assert_eq!(dest_side.address, Some(address("Via Bertoloni", "Sarzana")));
    assert!(
        dest_side
            .household
            .starts_with(&format!("comuni/{SARZANA}/households/"))
    );
    assert_eq!(dest_side.relationship, registry::Relationship::Head as i32);
    let dest_events = events(f, &f.sarzana_operator, SARZANA, moved).await;
    assert_eq!(dest_events.len(), 1, "{dest_events:?}");
    assert_eq!(
        dest_events[0].kind,
        registry::ResidenceEventKind::Registration as i32
    );
    assert_eq!(
        dest_events[0].r#move,
        format!("comuni/{SARZANA}/moves/{id}")
    );
    assert_eq!(dest_events[0].effective_date, date(2026, 1, 12));

    // Exactly one comune has the person as a current resident.
    let cf = &person.codice_fiscale;
    let in_luni = current_residents(f, &f.luni_operator, LUNI).await;
    let in_sarzana = current_residents(f, &f.sarzana_operator, SARZANA).await;
    assert!(!in_luni.iter().any(|r| &r.codice_fiscale == cf));
    assert_eq!(
        in_sarzana
            .iter()
            .filter(|r| &r.codice_fiscale == cf)
            .count(),
        1
    );
    let registered = in_sarzana
        .iter()
        .find(|r| &r.codice_fiscale == cf)
        .expect("at Sarzana");
    assert_eq!(
        registered.registration_reason,
        registry::RegistrationReason::ImmigrationFromComune as i32
    );
    assert_eq!(registered.registration_date, date(2026, 1, 12));
}

/// Both nodes up: the move completes; a redelivery changes nothing and answers the same;
/// the delivering method is open to a node only, and to nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_between_two_nodes_completes_and_a_redelivery_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = Federation::start(dir.path()).await;
    let (person, started) = start_move(&f, "Rossi").await;
    assert_eq!(started.origin, format!("comuni/{LUNI}"));
    let done = wait_for_move(&f, &move_id(&started), "the move to complete", |m| {
        m.state == registry::MoveState::Completed as i32
    })
    .await;
    check_completed(&f, &person, &done).await;

    // The origin's node delivers the same move again: the same answer, nothing changes.
    let luni_node = f.as_node(&f.luni_config).await;
    let origin_record = ResidentServiceClient::new(f.channel.clone())
        .get_resident(call(
            &f.luni_operator,
            LUNI,
            registry::GetResidentRequest {
                name: person.name.clone(),
            },
        ))
        .await
        .expect("the record at Luni")
        .into_inner();
    let redelivery = registry::DeliverMoveRequest {
        parent: format!("comuni/{SARZANA}"),
        r#move: Some(done.clone()),
        resident: Some(origin_record.clone()),
    };
    let before = current_residents(&f, &f.sarzana_operator, SARZANA).await;
    let again = MoveServiceClient::new(luni_node.clone())
        .deliver_move(routed(SARZANA, redelivery.clone()))
        .await
        .expect("a redelivery is acknowledged")
        .into_inner();
    assert_eq!(again.resident, done.destination_resident);
    assert_eq!(
        again.r#move,
        format!("comuni/{SARZANA}/moves/{}", move_id(&done))
    );
    assert_eq!(
        current_residents(&f, &f.sarzana_operator, SARZANA).await,
        before
    );
    check_completed(&f, &person, &done).await;

    // A node may call nothing else for a comune it does not serve.
    let denied = ResidentServiceClient::new(luni_node.clone())
        .list_residents(routed(
            SARZANA,
            registry::ListResidentsRequest {
                parent: format!("comuni/{SARZANA}"),
                page_size: 10,
                page_token: String::new(),
                ..registry::ListResidentsRequest::default()
            },
        ))
        .await
        .expect_err("not Luni's node's comune");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let denied = MoveServiceClient::new(luni_node.clone())
        .get_move(routed(
            SARZANA,
            registry::GetMoveRequest {
                name: format!("comuni/{SARZANA}/moves/{}", move_id(&done)),
            },
        ))
        .await
        .expect_err("not Luni's node's comune");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    // Nor deliver a move whose origin it does not serve.
    let mut forged = redelivery.clone();
    if let Some(m) = forged.r#move.as_mut() {
        m.name = format!("comuni/{SARZANA}/moves/forged");
        m.origin_resident = format!("comuni/{SARZANA}/residents/x");
    }
    forged.parent = format!("comuni/{LUNI}");
    let denied = MoveServiceClient::new(luni_node.clone())
        .deliver_move(routed(LUNI, forged))
        .await
        .expect_err("Luni's node does not serve Sarzana");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert_eq!(reason_and_field(&denied).0, "SENDER_NOT_ORIGIN");

    // No token may deliver a move, whatever its role.
    for token in [&f.sarzana_operator, &f.luni_operator, &f.admin] {
        let refused = MoveServiceClient::new(f.channel.clone())
            .deliver_move(call(token, SARZANA, redelivery.clone()))
            .await
            .expect_err("tokens may not deliver moves");
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
    assert_eq!(
        current_residents(&f, &f.sarzana_operator, SARZANA).await,
        before
    );
    f.stop().await;
}

/// The destination's node is down when the move starts: the move is pending (the person
/// struck off at the origin, the emigration marked with the pending move, nothing at the
/// destination) and completes by itself when the node is back on the same data and address.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_completes_when_the_destination_node_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut f = Federation::start(dir.path()).await;
    f.stop_sarzana().await;
    let (person, started) = start_move(&f, "Bianchi").await;
    let id = move_id(&started);
    let pending = wait_for_move(&f, &id, "a failed delivery", |m| m.attempts >= 2).await;
    assert_eq!(pending.state, registry::MoveState::Pending as i32);
    assert!(!pending.last_error.is_empty());
    assert!(pending.destination_resident.is_empty());
    // Not final: the emigration at the origin names the pending move.
    let origin_events = events(&f, &f.luni_operator, LUNI, &person.name).await;
    let emigration = origin_events.last().expect("the emigration");
    assert_eq!(
        emigration.kind,
        registry::ResidenceEventKind::Emigration as i32
    );
    assert_eq!(emigration.r#move, format!("comuni/{LUNI}/moves/{id}"));
    let unreachable = MoveServiceClient::new(f.channel.clone())
        .get_move(call(
            &f.sarzana_operator,
            SARZANA,
            registry::GetMoveRequest {
                name: format!("comuni/{SARZANA}/moves/{id}"),
            },
        ))
        .await
        .expect_err("Sarzana is down");
    assert_eq!(unreachable.code(), Code::Unavailable, "{unreachable:?}");

    f.restart_sarzana().await;
    let done = wait_for_move(&f, &id, "the move to complete", |m| {
        m.state == registry::MoveState::Completed as i32
    })
    .await;
    check_completed(&f, &person, &done).await;
    f.stop().await;
}

/// A move the destination refuses for good (the household to join does not exist there) ends
/// FAILED, and the origin restores the person's previous position in the same step (DOMAIN.md
/// "Registry": the person is never in neither comune): resident again at Luni, at the
/// address they had, from the emigration's date, with both the emigration and the
/// restoration in the history; Sarzana has no record of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_move_refused_for_good_restores_the_person_at_the_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = Federation::start(dir.path()).await;
    let (person, started) = start_move_joining(
        &f,
        "Verdi",
        format!("comuni/{SARZANA}/households/0123456789abcdef"),
        registry::Relationship::Cohabitant,
    )
    .await;
    let id = move_id(&started);
    let failed = wait_for_move(&f, &id, "the refusal", |m| {
        m.state == registry::MoveState::Failed as i32
    })
    .await;
    assert!(!failed.last_error.is_empty(), "the reason is kept");
    assert!(failed.destination_resident.is_empty());

    // Luni: resident again, at the old address, from the emigration's date on.
    let at_luni = residence(&f, &f.luni_operator, LUNI, &person.name).await;
    assert_eq!(
        at_luni.status,
        registry::ResidenceStatus::Resident as i32,
        "{at_luni:?}"
    );
    assert_eq!(at_luni.address, person.address);
    let history = events(&f, &f.luni_operator, LUNI, &person.name).await;
    let kinds: Vec<i32> = history.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            registry::ResidenceEventKind::Registration as i32,
            registry::ResidenceEventKind::Emigration as i32,
            registry::ResidenceEventKind::Restoration as i32,
        ]
    );
    let restoration = history.last().expect("the restoration");
    assert_eq!(restoration.effective_date, date(2026, 1, 12));
    assert_eq!(restoration.r#move, format!("comuni/{LUNI}/moves/{id}"));
    assert!(
        current_residents(&f, &f.luni_operator, LUNI)
            .await
            .iter()
            .any(|r| r.name == person.name),
        "listed among Luni's current residents"
    );
    // Sarzana: nobody with that codice fiscale.
    assert!(
        !current_residents(&f, &f.sarzana_operator, SARZANA)
            .await
            .iter()
            .any(|r| r.codice_fiscale == person.codice_fiscale),
        "not registered at Sarzana"
    );
    f.stop().await;
}
