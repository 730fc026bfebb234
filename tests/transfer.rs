//! Moving a function to another provider moves its data (issue 9): `unione export` writes one
//! comune's data of one service, `unione import` loads it on another node, and everything
//! arrives: every row of every table (compared through the archive's content hash, which
//! covers each row), the protocol register's chain of daily seals (DPR 445/2000: the daily
//! register is sealed so it cannot be altered) and the double-entry ledger still verify, on
//! SQLite and PostgreSQL and across the two. The data is the demo federation's, written
//! through the gateway by the real binary; the move at the end is made with the real commands
//! and read back through the target node.

mod common;
mod standalone;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use unione_kit::names::routed;
use unione_kit::principal::Principal;
use unione_kit::storage::testing;
use unione_kit::token::Role;
use unione_kit::transfer::{self, Service, Summary, TransferError};
use unione_kit::{Database, Istat};
use unione_node::NodeConfig;
use unione_node::config::Function;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::protocol_service_client::ProtocolServiceClient;
use unione_proto::registry::v1::protocol_service_server::ProtocolService;
use unione_proto::registry::v1::resident_service_client::ResidentServiceClient;
use unione_registry::ProtocolApi;

/// Ameglia: its registry office is run by the capofila's node (Sarzana).
const AMEGLIA: &str = "011001";
/// Sarzana, the capofila.
const SARZANA: &str = "011027";

fn istat(code: &str) -> Istat {
    Istat::parse(code).expect("a six-digit code")
}

fn node_config(demo: &serde_json::Value, node: &str) -> (PathBuf, NodeConfig) {
    let path = demo["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["id"] == node)
        .and_then(|n| n["config"].as_str())
        .map(PathBuf::from)
        .expect("the node's configuration in demo.json");
    let config = unione_kit::config::load(Some(&path)).expect("the demo's node config loads");
    (path, config)
}

/// Seals every day of the comune's registers on the source, through the protocol service, on a
/// clock three days on (a day is sealed once it is over).
async fn seal_days(db: &Database, config: &NodeConfig, comune: &str) -> usize {
    let later = chrono::Utc::now().timestamp_micros() + 3 * 86_400_000_000;
    let api = ProtocolApi::with_clock(
        db.clone(),
        config.served(Function::Registry),
        Arc::new(move || later),
    );
    let days: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT register, MIN(registration_date), MAX(registration_date) \
         FROM protocol_registrations WHERE comune = $1 GROUP BY register",
    )
    .bind(comune)
    .fetch_all(db.pool())
    .await
    .expect("the registers are read");
    let mut sealed = 0;
    for (register, first, last) in days {
        let parse = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("a day");
        let (mut day, last) = (parse(&first), parse(&last));
        while day <= last {
            let mut request = routed(
                comune,
                pb::SealDailyRegisterRequest {
                    name: format!("comuni/{comune}/registers/{register}/dailyRegisters/{day}"),
                },
            );
            request.extensions_mut().insert(Principal {
                sub: "protocol-officer".to_owned(),
                role: Role::Operator,
                comuni: vec![comune.to_owned()],
                fiscal_number: None,
                gateway: "gw".to_owned(),
            });
            api.seal_daily_register(request)
                .await
                .expect("a day that is over is sealed");
            sealed += 1;
            day = day.succ_opt().expect("a next day");
        }
    }
    sealed
}

/// VerifyRegister of one of the comune's registers, routed to it.
fn verify_request(comune: &str, register: &str) -> tonic::Request<pb::VerifyRegisterRequest> {
    routed(
        comune,
        pb::VerifyRegisterRequest {
            parent: format!("comuni/{comune}/registers/{register}"),
        },
    )
}

/// Every register of the comune verifies on `db` (VerifyRegister), and how many days it
/// checked.
async fn verify_registers(db: &Database, config: &NodeConfig, comune: &str) -> i64 {
    let api = ProtocolApi::new(db.clone(), config.served(Function::Registry));
    let registers: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT register FROM protocol_seals WHERE comune = $1")
            .bind(comune)
            .fetch_all(db.pool())
            .await
            .expect("the seals are read");
    let mut days = 0;
    for register in registers {
        let v = api
            .verify_register(verify_request(comune, &register))
            .await
            .expect("VerifyRegister answers")
            .into_inner();
        assert!(v.intact, "register {register} of {comune} verifies: {v:?}");
        days += i64::from(v.days_checked);
    }
    days
}

/// The ledger of the comune verifies on `db`; the receipts it compared.
async fn verify_ledger(db: &Database, comune: &str) -> i64 {
    let (entries, receipts) = unione_payments::storage::load_journal(db, &istat(comune))
        .await
        .expect("the journal loads");
    let v = unione_payments::domain::ledger::verify(&entries, &receipts);
    assert!(
        v.breaches.is_empty(),
        "the ledger verifies: {:?}",
        v.breaches
    );
    v.receipt_count
}

fn rows(summary: &Summary, table: &str) -> u64 {
    summary
        .rows
        .iter()
        .find(|(t, _)| t == table)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("{table} is in the archive"))
}

/// What a service's move must carry, so the comparison cannot pass on an empty archive.
fn assert_seeded(service: &str, summary: &Summary) {
    let needed: &[&str] = match service {
        "registry" => &[
            "registry_residents",
            "registry_residence_events",
            "registry_households",
            "registry_household_members",
            "registry_certificate_keys",
            "registry_certificates",
            "protocol_blobs",
            "protocol_registrations",
            "protocol_events",
            "protocol_seals",
            "registry_cases",
            "registry_case_events",
            "idempotency_keys",
        ],
        "payments" => &[
            "payments_debt_positions",
            "payments_receipts",
            "payments_journal_entries",
            "payments_reconciliation_flows",
            "payments_reported_transfers",
            "payments_apportionments",
        ],
        _ => &[
            "quality_measurements",
            "quality_survey_answers",
            "quality_complaints",
            "quality_complaint_history",
            "quality_nonconformities",
        ],
    };
    for table in needed {
        assert!(rows(summary, table) > 0, "the demo seeded {table}");
    }
}

/// Imports `archive` into `target`, checks that exporting it again gives the same content,
/// and returns that export's path.
async fn import_and_compare(
    target: &Database,
    service: &Service,
    comune: &str,
    archive: &Path,
    expected: &Summary,
    out: PathBuf,
) -> PathBuf {
    let imported = transfer::import(target, service, archive)
        .await
        .unwrap_or_else(|e| panic!("{} imports into {:?}: {e}", service.name, target.backend()));
    assert_eq!(&imported, expected);
    let again = transfer::export(target, service, &istat(comune), &out)
        .await
        .expect("the target exports");
    assert_eq!(
        again.rows,
        expected.rows,
        "{} rows per table on {:?}",
        service.name,
        target.backend()
    );
    assert_eq!(
        again.content_sha256,
        expected.content_sha256,
        "every row of {} arrived unchanged on {:?}",
        service.name,
        target.backend()
    );
    out
}

/// Rewrites an archive's first row line with `edit`, fixing the header's hash when `rehash`.
fn tamper(archive: &Path, out: &Path, edit: impl Fn(&str) -> String, rehash: bool) {
    use sha2::Digest;
    let text = std::fs::read_to_string(archive).expect("archive");
    let (header, body) = text.split_once('\n').expect("a header line");
    let (first, rest) = body.split_once('\n').expect("a row line");
    let body = format!("{}\n{rest}", edit(first));
    let mut header: serde_json::Value = serde_json::from_str(header).expect("JSON header");
    if rehash {
        header["content_sha256"] = hex::encode(sha2::Sha256::digest(body.as_bytes())).into();
    }
    std::fs::write(out, format!("{header}\n{body}")).expect("tampered archive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_moves_to_another_node_with_all_its_data() {
    let (_guard, dir) = scratch("transfer");
    let data = dir.join("demo");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let mut cmd = unione();
    cmd.args(["demo", "--data-dir"]).arg(&data).args([
        "--host",
        "127.0.0.51",
        "--base-port",
        "7400",
    ]);
    let mut proc = Proc::spawn("demo", cmd, &logs);
    let demo = wait_for_demo(&data, &mut proc, &logs).await;
    assert!(proc.terminate().success(), "the demo stops cleanly");

    let (sarzana_toml, sarzana) = node_config(&demo, "sarzana");
    let (ameglia_toml, ameglia) = node_config(&demo, "ameglia");
    let source = Database::connect(&sarzana.database_url())
        .await
        .expect("Sarzana's node database opens");
    let sealed = seal_days(&source, &sarzana, AMEGLIA).await;
    assert!(sealed >= 1, "Ameglia's protocol has a sealed day");
    let annulled: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM protocol_events WHERE comune = $1 AND kind = 'ANNULLED'",
    )
    .bind(AMEGLIA)
    .fetch_one(source.pool())
    .await
    .expect("events counted");
    assert!(
        annulled >= 1,
        "the demo annulled one of Ameglia's registrations"
    );

    let work = dir.join("archives");
    std::fs::create_dir_all(&work).expect("archive dir");
    let registry = unione_registry::storage::transfer::service();
    let other_before = transfer::export(
        &source,
        &registry,
        &istat(SARZANA),
        &work.join("sarzana-before"),
    )
    .await
    .expect("Sarzana's registry exports");
    assert!(other_before.total_rows() > 0);

    // Ameglia's registry (beside Sarzana's on the capofila's node), Sarzana's payments and
    // quality office: each to every backend, and from PostgreSQL back to SQLite.
    let moves = [
        (registry, AMEGLIA),
        (unione_payments::storage::transfer::service(), SARZANA),
        (unione_quality::storage::transfer::service(), SARZANA),
    ];
    for (service, comune) in &moves {
        let name = service.name;
        let archive = work.join(format!("{name}-{comune}.jsonl"));
        let exported = transfer::export(&source, service, &istat(comune), &archive)
            .await
            .expect("the source exports");
        assert_seeded(name, &exported);
        let header = transfer::read_header(&archive).expect("the header reads");
        assert_eq!(
            (header.service.as_str(), header.comune.as_str()),
            (name, *comune)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&archive)
                .expect("archive")
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o077,
                0,
                "personal data: the archive is its owner's alone"
            );
        }

        for target in testing::all().await {
            let label = target.label;
            let again = import_and_compare(
                &target.db,
                service,
                comune,
                &archive,
                &exported,
                work.join(format!("{name}-{label}.jsonl")),
            )
            .await;
            match name {
                "registry" => {
                    let days = verify_registers(&target.db, &sarzana, comune).await;
                    assert_eq!(
                        days,
                        i64::try_from(rows(&exported, "protocol_seals")).expect("few"),
                        "every sealed day verifies on {label}"
                    );
                    let others = transfer::export(
                        &target.db,
                        service,
                        &istat(SARZANA),
                        &work.join(format!("sarzana-on-{label}")),
                    )
                    .await
                    .expect("exports");
                    assert_eq!(others.total_rows(), 0, "no other comune's data moved");
                }
                "payments" => {
                    assert!(
                        verify_ledger(&target.db, comune).await > 0,
                        "receipts compared"
                    );
                }
                _ => {}
            }

            // A second import into a target holding the comune's data is refused, and
            // changes nothing.
            let refused = transfer::import(&target.db, service, &archive).await;
            assert!(
                matches!(refused, Err(TransferError::TargetHasData { .. })),
                "{refused:?}"
            );

            // SQLite -> PostgreSQL -> SQLite.
            if label == "postgres" {
                let back = testing::sqlite().await;
                import_and_compare(
                    &back.db,
                    service,
                    comune,
                    &again,
                    &exported,
                    work.join(format!("{name}-back.jsonl")),
                )
                .await;
                if name == "payments" {
                    verify_ledger(&back.db, comune).await;
                }
            }
        }
    }

    // Refusals: a corrupted archive, a row of another comune (even with a fixed hash), the
    // archive of another service. Nothing is written.
    let archive = work.join(format!("registry-{AMEGLIA}.jsonl"));
    let fresh = testing::sqlite().await;
    let registry = &moves[0].0;
    let corrupt = work.join("corrupt.jsonl");
    tamper(
        &archive,
        &corrupt,
        |l| l.replacen(AMEGLIA, SARZANA, 1),
        false,
    );
    let e = transfer::import(&fresh.db, registry, &corrupt).await;
    assert!(matches!(e, Err(TransferError::Corrupt(_))), "{e:?}");
    let smuggled = work.join("smuggled.jsonl");
    tamper(
        &archive,
        &smuggled,
        |l| l.replacen(AMEGLIA, SARZANA, 1),
        true,
    );
    let e = transfer::import(&fresh.db, registry, &smuggled).await;
    assert!(matches!(e, Err(TransferError::Corrupt(_))), "{e:?}");
    let e = transfer::import(&fresh.db, &moves[1].0, &archive).await;
    assert!(
        matches!(e, Err(TransferError::WrongService { .. })),
        "{e:?}"
    );
    let empty = transfer::export(&fresh.db, registry, &istat(AMEGLIA), &work.join("fresh"))
        .await
        .expect("exports");
    assert_eq!(empty.total_rows(), 0, "a refused import writes nothing");

    // The source is untouched: Sarzana's registry as before.
    let other_after = transfer::export(
        &source,
        registry,
        &istat(SARZANA),
        &work.join("sarzana-after"),
    )
    .await
    .expect("exports");
    assert_eq!(other_after.content_sha256, other_before.content_sha256);
    source.close().await;

    // The real move: Ameglia's registry from the capofila's node to Ameglia's own, with the
    // commands, then read through the target node.
    let cli_archive = dir.join("ameglia-registry.jsonl");
    let out = unione()
        .args(["export", "--config"])
        .arg(&sarzana_toml)
        .args(["--service", "registry", "--comune", AMEGLIA, "--out"])
        .arg(&cli_archive)
        .output()
        .expect("unione export runs");
    assert!(
        out.status.success(),
        "export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let import = |config: &Path| {
        unione()
            .args(["import", "--config"])
            .arg(config)
            .args(["--service", "registry", "--in"])
            .arg(&cli_archive)
            .output()
            .expect("unione import runs")
    };
    let out = import(&ameglia_toml);
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = import(&ameglia_toml);
    assert!(!again.status.success(), "a second import is refused");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds registry data"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // Ameglia's node now runs Ameglia's registry (the directory would now name it).
    let mut config: toml::Value =
        toml::from_str(&std::fs::read_to_string(&ameglia_toml).expect("config")).expect("TOML");
    for comune in config["comuni"].as_array_mut().expect("comuni") {
        if comune["istat"].as_str() == Some(AMEGLIA) {
            comune["functions"]
                .as_array_mut()
                .expect("functions")
                .push("registry".into());
        }
    }
    std::fs::write(&ameglia_toml, toml::to_string(&config).expect("TOML")).expect("config");
    let target = start_node(&ameglia_toml, "ameglia", &logs);
    let origin = start_node(&sarzana_toml, "sarzana", &logs);
    let read = |endpoint: String, node: &'static str| {
        let demo = demo.clone();
        async move {
            let channel = node_channel(
                &endpoint,
                Path::new(demo["ca"].as_str().expect("ca")),
                Path::new(demo["seeder_cert"].as_str().expect("cert")),
                Path::new(demo["seeder_key"].as_str().expect("key")),
                node,
            )
            .await
            .expect("the node accepts the seeder");
            let mut residents = ResidentServiceClient::new(channel.clone());
            let mut names = Vec::new();
            let mut token = String::new();
            loop {
                let page = residents
                    .list_residents(routed(
                        AMEGLIA,
                        pb::ListResidentsRequest {
                            parent: format!("comuni/{AMEGLIA}"),
                            page_size: 100,
                            page_token: token,
                            ..pb::ListResidentsRequest::default()
                        },
                    ))
                    .await
                    .expect("ListResidents answers")
                    .into_inner();
                names.extend(
                    page.residents
                        .into_iter()
                        .map(|r| (r.name, r.family_name, r.etag)),
                );
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
            let register = unione_registry::domain::protocol::DEFAULT_REGISTER;
            let verified = ProtocolServiceClient::new(channel)
                .verify_register(verify_request(AMEGLIA, register))
                .await
                .expect("VerifyRegister answers")
                .into_inner();
            (names, verified)
        }
    };
    let endpoint = |config: &NodeConfig| format!("https://{}", config.listen);
    let (moved, moved_register) = read(endpoint(&ameglia), "ameglia").await;
    let (original, original_register) = read(endpoint(&sarzana), "sarzana").await;
    assert!(
        !moved.is_empty(),
        "Ameglia's residents are served by Ameglia's node"
    );
    assert_eq!(moved, original, "the same residents, the same revisions");
    assert!(
        moved_register.intact && moved_register.days_checked >= 1,
        "{moved_register:?}"
    );
    assert_eq!(moved_register, original_register);
    assert!(target.terminate().success());
    assert!(origin.terminate().success());
}

/// Starts `unione node --config` and waits until `unione health node` says SERVING.
fn start_node(config: &Path, name: &str, logs: &Path) -> Proc {
    let mut cmd = unione();
    cmd.args(["node", "--config"]).arg(config);
    let mut proc = Proc::spawn(name, cmd, logs);
    standalone::wait_healthy("node", config, &mut proc, logs);
    proc
}

/// Creates complaints on the node until `stop`, recording each acknowledged one (its name and
/// text) in `acked` the moment the node answers.
async fn write_complaints(
    channel: tonic::transport::Channel,
    writer: usize,
    acked: Arc<std::sync::Mutex<Vec<(String, String)>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    use unione_proto::common::v1::Channel as Via;
    use unione_proto::quality::v1::complaint_service_client::ComplaintServiceClient;
    use unione_proto::quality::v1::{Complaint, CreateComplaintRequest};
    let mut client = ComplaintServiceClient::new(channel);
    let principal = Principal {
        sub: format!("op-{writer}"),
        role: Role::Operator,
        comuni: vec![standalone::LUNI.to_owned()],
        fiscal_number: None,
        gateway: String::new(),
    }
    .encode();
    let mut i = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let text = format!("writer {writer}, complaint {i}: the counter closed early");
        let mut request = routed(
            standalone::LUNI,
            CreateComplaintRequest {
                parent: format!("comuni/{}", standalone::LUNI),
                complaint: Some(Complaint {
                    category: "opening-hours".to_owned(),
                    channel: Via::Counter as i32,
                    text: text.clone(),
                    ..Complaint::default()
                }),
                request_id: format!("backup-{writer}-{i}"),
            },
        );
        request.metadata_mut().insert(
            unione_kit::principal::PRINCIPAL_HEADER,
            principal.parse().expect("ASCII"),
        );
        let created = client
            .create_complaint(request)
            .await
            .expect("the live node takes complaints")
            .into_inner();
        acked
            .lock()
            .expect("not poisoned")
            .push((created.name, text));
        i += 1;
    }
}

/// `unione backup` copies a live SQLite node while it takes writes: the copy passes `PRAGMA
/// integrity_check`, a node started on it serves, and every write the node acknowledged
/// before the backup began is in it (deploy/OPERATIONS.md, "Backing up and restoring").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_node_is_backed_up_under_writes_and_restored() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use unione_proto::quality::v1::GetComplaintRequest;
    use unione_proto::quality::v1::complaint_service_client::ComplaintServiceClient;

    let (_guard, dir) = scratch("backup");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let setup = standalone::setup(&dir.join("etc"));
    let listen = "127.0.0.52:7401";
    let live_toml = dir.join("node.toml");
    std::fs::write(&live_toml, setup.node_toml(listen, Some(&dir.join("live")))).expect("config");
    let live = start_node(&live_toml, "live", &logs);

    let (cert, key) = setup.gateway_identity();
    let channel = node_channel(&format!("https://{listen}"), &setup.ca(), &cert, &key, "n1")
        .await
        .expect("the node accepts the gateway's certificate");
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            tokio::spawn(write_complaints(
                channel.clone(),
                w,
                Arc::clone(&acked),
                Arc::clone(&stop),
            ))
        })
        .collect();
    let count = || acked.lock().expect("not poisoned").len();
    while count() < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let before: Vec<(String, String)> = acked.lock().expect("not poisoned").clone();
    let backup = dir.join("backup.sqlite");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_unione"))
        .args(["backup", "--config"])
        .arg(&live_toml)
        .arg("--out")
        .arg(&backup)
        .output()
        .await
        .expect("unione backup runs");
    let during = count();
    // A few more writes after the backup, which the copy need not have.
    while count() < during + 20 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.expect("a writer finished");
    }
    assert!(
        out.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        during > before.len(),
        "the node took writes while it was backed up"
    );
    assert!(live.terminate().success(), "the live node stops cleanly");

    let copy = Database::open_sqlite(&backup)
        .await
        .expect("the backup opens");
    assert_eq!(
        transfer::integrity_check(&copy).await.expect("checked"),
        "ok",
        "PRAGMA integrity_check on the backup"
    );
    copy.close().await;
    let second = transfer::backup(
        &Database::open_sqlite(&dir.join("other.sqlite"))
            .await
            .expect("opens"),
        &backup,
    )
    .await;
    assert!(second.is_err(), "a backup never overwrites a file");

    // Restore: a node on the copy, in a data directory of its own.
    let restored_dir = dir.join("restored");
    std::fs::create_dir_all(&restored_dir).expect("dir");
    std::fs::copy(&backup, restored_dir.join("node.sqlite")).expect("restore copy");
    let restored_toml = dir.join("restored.toml");
    std::fs::write(&restored_toml, setup.node_toml(listen, Some(&restored_dir))).expect("config");
    let restored = start_node(&restored_toml, "restored", &logs);
    let channel = node_channel(&format!("https://{listen}"), &setup.ca(), &cert, &key, "n1")
        .await
        .expect("the restored node accepts the gateway's certificate");
    let mut client = ComplaintServiceClient::new(channel);
    for (name, text) in &before {
        let complaint = client
            .get_complaint(routed(
                standalone::LUNI,
                GetComplaintRequest { name: name.clone() },
            ))
            .await
            .unwrap_or_else(|e| panic!("{name}, acknowledged before the backup, is restored: {e}"))
            .into_inner();
        assert_eq!(&complaint.text, text);
    }
    assert!(restored.terminate().success());
}

/// The `unione export`, `import` and `backup` lines of the operations guide and the README
/// use only flags the real binary has.
#[test]
fn the_documented_transfer_commands_exist_in_the_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for doc in ["deploy/OPERATIONS.md", "README.md"] {
        let text = std::fs::read_to_string(root.join(doc)).expect("the document");
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(at) = words.windows(2).position(|w| {
                w[0].trim_start_matches('`') == "unione"
                    && ["export", "import", "backup"].contains(&w[1])
            }) else {
                continue;
            };
            let command = words[at + 1];
            let help = unione()
                .args([command, "--help"])
                .output()
                .expect("unione --help runs");
            assert!(help.status.success(), "`unione {command}` exists");
            let help = String::from_utf8_lossy(&help.stdout);
            for flag in words[at + 2..]
                .iter()
                .map(|w| w.trim_matches(|c| c == '`' || c == '.' || c == ','))
                .filter(|w| w.starts_with("--"))
            {
                assert!(
                    help.contains(flag),
                    "{doc}: `unione {command}` has no {flag}"
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 6,
        "the documents name the commands ({checked} lines)"
    );
}
