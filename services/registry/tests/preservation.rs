//! Sealed daily registers sent to preservation (DOMAIN.md "Registry", Protocol register: the
//! daily register is "sealed so it cannot be altered, sent to preservation by the next working
//! day"), on SQLite and (with `TEST_DATABASE_URL`) PostgreSQL: the scheduled job deposits
//! each sealed day into the node's archive directory once, in order, stores the receipt with
//! the day, and leaves the days pending while the archive cannot be written.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use unione_kit::Istat;
use unione_kit::names::routed;
use unione_kit::principal::Principal;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::protocol_service_server::ProtocolService;
use unione_registry::ProtocolApi;
use unione_registry::archive::{DirectoryArchive, MANIFEST_FILE, RECEIPT_FILE};
use unione_registry::domain::preservation::{DOCUMENT_FILE, Manifest, PreservationReceipt};
use unione_registry::storage::preservation as receipts;

mod support;

use support::{ARCOLA, SARZANA};

/// Microseconds of a UTC instant.
fn utc(y: i32, m: u32, d: u32, h: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, 0, 0))
        .expect("a real instant")
        .and_utc()
        .timestamp_micros()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a real day")
}

async fn api(t: &TestDatabase, start: i64) -> (ProtocolApi, Arc<AtomicI64>) {
    support::migrate(t).await;
    let now = Arc::new(AtomicI64::new(start));
    let read = Arc::clone(&now);
    let api = ProtocolApi::with_clock(
        t.db.clone(),
        support::served(),
        Arc::new(move || read.load(Ordering::SeqCst)),
    );
    (api, now)
}

async fn create(api: &ProtocolApi, subject: &str, label: &str) {
    let mut request = routed(
        SARZANA,
        pb::CreateRegistrationRequest {
            parent: format!("comuni/{SARZANA}/registers/GEN"),
            registration: Some(pb::Registration {
                direction: pb::Direction::Incoming.into(),
                subject: subject.to_owned(),
                sender: "Mario Rossi".to_owned(),
                classification: "1.6".to_owned(),
                assignment: "Ufficio protocollo".to_owned(),
                document: Some(pb::Document {
                    file_name: "istanza.pdf".to_owned(),
                    media_type: "application/pdf".to_owned(),
                    content: subject.as_bytes().to_vec(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        },
    );
    request.extensions_mut().insert(Principal {
        sub: "op-1".to_owned(),
        role: Role::Operator,
        comuni: vec![SARZANA.to_owned()],
        fiscal_number: None,
        gateway: "gw-1".to_owned(),
    });
    api.create_registration(request)
        .await
        .unwrap_or_else(|e| panic!("{label}: registers: {e:?}"));
}

async fn daily_routed(api: &ProtocolApi, date: &str) -> pb::DailyRegister {
    api.get_daily_register(routed(
        SARZANA,
        pb::GetDailyRegisterRequest {
            name: format!("comuni/{SARZANA}/registers/GEN/dailyRegisters/{date}"),
        },
    ))
    .await
    .expect("the daily register")
    .into_inner()
}

async fn verify(api: &ProtocolApi) -> pb::VerifyRegisterResponse {
    api.verify_register(routed(
        SARZANA,
        pb::VerifyRegisterRequest {
            parent: format!("comuni/{SARZANA}/registers/GEN"),
        },
    ))
    .await
    .expect("verifies")
    .into_inner()
}

async fn receipt_count(t: &TestDatabase) -> i64 {
    let mut conn = t.db.pool().acquire().await.expect("a connection");
    sqlx::query_scalar("SELECT COUNT(*) FROM protocol_preservations")
        .fetch_one(&mut *conn)
        .await
        .expect("counts")
}

/// Registrations on Monday 2 and Wednesday 4 March 2026, sealed on Thursday 5 at 10:00 in
/// Italy: Monday, Tuesday (empty) and Wednesday.
async fn three_sealed_days(t: &TestDatabase) -> (ProtocolApi, Arc<AtomicI64>) {
    let (api, clock) = api(t, utc(2026, 3, 2, 9)).await;
    create(&api, "Lunedì", t.label).await;
    clock.store(utc(2026, 3, 4, 9), Ordering::SeqCst);
    create(&api, "Mercoledì", t.label).await;
    clock.store(utc(2026, 3, 5, 9), Ordering::SeqCst);
    let (sealed, failures) = api.seal_pending_days().await;
    assert!(failures.is_empty(), "{}: {failures:?}", t.label);
    assert_eq!(sealed, 3, "{}", t.label);
    (api, clock)
}

fn package_dir(root: &Path, date: &str) -> std::path::PathBuf {
    root.join(SARZANA).join("GEN").join(&date[..4]).join(date)
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The job deposits every sealed day into the archive, as the register exported by
/// GetDailyRegister with a manifest of its seal, hash and size, and stores each receipt with
/// its day; a second run sends nothing and duplicates nothing. A day is overdue once the next
/// working day after it is over without a receipt (DOMAIN.md "Registry"): on Thursday morning
/// Monday's and Tuesday's registers are, Wednesday's is not; after the job none is.
#[tokio::test]
async fn sealed_days_are_preserved_once_with_their_receipts() {
    for t in testing::all().await {
        let (api, _clock) = three_sealed_days(&t).await;
        let before = verify(&api).await;
        assert!(before.intact, "{}", t.label);
        assert_eq!(before.preservation_overdue_days, 2, "{}", t.label);
        assert_eq!(
            before.first_preservation_overdue_date.map(|d| d.day),
            Some(2)
        );
        let monday = daily_routed(&api, "2026-03-02").await;
        assert!(monday.preservation_overdue, "{}", t.label);
        assert!(monday.preservation_id.is_empty());
        assert_eq!(monday.preservation_due_date.map(|d| d.day), Some(3));
        assert!(
            !daily_routed(&api, "2026-03-04").await.preservation_overdue,
            "{}: Wednesday's is due by the end of Thursday",
            t.label
        );

        let root = tempfile::tempdir().expect("a temporary directory");
        let archive = DirectoryArchive::new(root.path());
        let (preserved, failures) = api.preserve_pending_days(&archive).await;
        assert!(failures.is_empty(), "{}: {failures:?}", t.label);
        assert_eq!(preserved, 3, "{}", t.label);
        assert_eq!(receipt_count(&t).await, 3, "{}", t.label);

        let mut ids = Vec::new();
        for date in ["2026-03-02", "2026-03-03", "2026-03-04"] {
            let register = daily_routed(&api, date).await;
            let dir = package_dir(root.path(), date);
            let document = std::fs::read(dir.join(DOCUMENT_FILE)).expect("the document");
            assert_eq!(document, register.content, "{}: {date}", t.label);
            let manifest_bytes = std::fs::read(dir.join(MANIFEST_FILE)).expect("the manifest");
            let manifest: Manifest = serde_json::from_slice(&manifest_bytes).expect("a manifest");
            assert_eq!(manifest.comune, SARZANA);
            assert_eq!(manifest.register, "GEN");
            assert_eq!(manifest.day, date);
            assert_eq!(manifest.seal, register.seal);
            assert_eq!(manifest.previous_seal, register.previous_seal);
            assert_eq!(manifest.document_sha256, register.content_sha256);
            assert_eq!(manifest.document_sha256, hex(&document));
            assert_eq!(manifest.document_size, document.len() as u64);
            let receipt: PreservationReceipt = serde_json::from_slice(
                &std::fs::read(dir.join(RECEIPT_FILE)).expect("the receipt"),
            )
            .expect("a receipt");
            assert_eq!(receipt.package_sha256, hex(&manifest_bytes));
            assert_eq!(register.preservation_id, receipt.deposit_id, "{}", t.label);
            assert!(register.preservation_time.is_some());
            assert!(!register.preservation_overdue);
            ids.push(receipt.deposit_id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 3, "{}: one deposit per day", t.label);
        let after = verify(&api).await;
        assert_eq!(after.preservation_overdue_days, 0, "{}", t.label);
        assert_eq!(after.first_preservation_overdue_date, None);

        // Again: nothing pending, nothing deposited twice.
        let (preserved, failures) = api.preserve_pending_days(&archive).await;
        assert!(failures.is_empty(), "{}: {failures:?}", t.label);
        assert_eq!(preserved, 0, "{}", t.label);
        assert_eq!(receipt_count(&t).await, 3, "{}", t.label);
        assert_eq!(
            std::fs::read_dir(root.path().join(SARZANA).join("GEN").join("2026"))
                .expect("the year's packages")
                .count(),
            3,
            "{}",
            t.label
        );
        // Arcola has no registration: nothing of it in the archive.
        assert!(!root.path().join(ARCOLA).exists());
    }
}

/// An archive that cannot be written leaves every day pending, with no receipt, and reports
/// the failure; the next run, with the archive back, deposits them all, in order.
#[tokio::test]
async fn an_unavailable_archive_loses_no_day() {
    for t in testing::all().await {
        let (api, _clock) = three_sealed_days(&t).await;
        let root = tempfile::tempdir().expect("a temporary directory");
        // A directory under a regular file cannot be created, even by root.
        let blocker = root.path().join("archive");
        std::fs::write(&blocker, b"not a directory").expect("a file");
        let archive = DirectoryArchive::new(blocker.join("preservation"));
        let (preserved, failures) = api.preserve_pending_days(&archive).await;
        assert_eq!(preserved, 0, "{}", t.label);
        assert_eq!(failures.len(), 1, "{}: {failures:?}", t.label);
        assert!(
            failures[0].contains("2026-03-02") && failures[0].contains("unavailable"),
            "{}: {failures:?}",
            t.label
        );
        assert_eq!(receipt_count(&t).await, 0, "{}", t.label);
        assert_eq!(verify(&api).await.preservation_overdue_days, 2);

        std::fs::remove_file(&blocker).expect("the archive comes back");
        let (preserved, failures) = api.preserve_pending_days(&archive).await;
        assert!(failures.is_empty(), "{}: {failures:?}", t.label);
        assert_eq!(preserved, 3, "{}", t.label);
        assert_eq!(receipt_count(&t).await, 3, "{}", t.label);
        let mut conn = t.db.pool().acquire().await.expect("a connection");
        let stored = receipts::receipts(
            &mut conn,
            &Istat::parse(SARZANA).expect("an ISTAT code"),
            "GEN",
        )
        .await
        .expect("receipts");
        let days: Vec<NaiveDate> = stored.iter().map(|r| r.day).collect();
        assert_eq!(days, [day(2026, 3, 2), day(2026, 3, 3), day(2026, 3, 4)]);
    }
}

/// A sealed register altered in the database is not sent to preservation (the package would
/// not match its seal); the days before it are.
#[tokio::test]
async fn a_register_that_no_longer_matches_its_seal_is_not_sent() {
    for t in testing::all().await {
        let (api, _clock) = three_sealed_days(&t).await;
        let mut conn = t.db.pool().acquire().await.expect("a connection");
        sqlx::query(
            "UPDATE protocol_registrations SET subject = $1 WHERE comune = $2 AND number = 2",
        )
        .bind("Altered")
        .bind(SARZANA)
        .execute(&mut *conn)
        .await
        .expect("tampered");
        drop(conn);
        let root = tempfile::tempdir().expect("a temporary directory");
        let archive = DirectoryArchive::new(root.path());
        let (preserved, failures) = api.preserve_pending_days(&archive).await;
        assert_eq!(preserved, 2, "{}: Monday and Tuesday", t.label);
        assert_eq!(failures.len(), 1, "{}: {failures:?}", t.label);
        assert!(failures[0].contains("2026-03-04"), "{failures:?}");
        assert!(!package_dir(root.path(), "2026-03-04").exists());
    }
}

/// Storage: a receipt is stored once per day; storing it again keeps the first.
#[tokio::test]
async fn a_receipt_is_stored_once() {
    for t in testing::all().await {
        let (_api, _clock) = api(&t, utc(2026, 3, 2, 9)).await;
        let istat = Istat::parse(SARZANA).expect("an ISTAT code");
        let first = PreservationReceipt {
            deposit_id: "d-1".to_owned(),
            deposited_at: 10,
            package_sha256: "a".repeat(64),
        };
        let second = PreservationReceipt {
            deposit_id: "d-2".to_owned(),
            ..first.clone()
        };
        let mut conn = t.db.pool().acquire().await.expect("a connection");
        let d = day(2026, 3, 2);
        assert!(
            receipts::insert_receipt(&mut conn, &istat, "GEN", d, &first, 11)
                .await
                .expect("stored")
        );
        assert!(
            !receipts::insert_receipt(&mut conn, &istat, "GEN", d, &second, 12)
                .await
                .expect("kept"),
            "{}",
            t.label
        );
        let stored = receipts::get_receipt(&mut conn, &istat, "GEN", d)
            .await
            .expect("read")
            .expect("a receipt");
        assert_eq!(stored.receipt, first, "{}", t.label);
        assert_eq!(stored.recorded_at, 11);
        let arcola = Istat::parse(ARCOLA).expect("an ISTAT code");
        assert_eq!(
            receipts::get_receipt(&mut conn, &arcola, "GEN", d)
                .await
                .expect("read"),
            None,
            "{}: each comune's receipts apart",
            t.label
        );
    }
}
