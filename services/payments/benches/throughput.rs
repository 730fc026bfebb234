//! Throughput of the payments service: debt positions created and receipts recorded per
//! second, on SQLite and (with `BENCH_DATABASE_URL` or `TEST_DATABASE_URL`) PostgreSQL, each
//! against a baseline measured in the same run on the same database: one bare single-row
//! INSERT per transaction (`begin_write`, insert, commit) at the same concurrency.
//!
//! The handlers are called directly (no network), with the routing header the gateway sets, as
//! the service tests do. Receipts are sent without a prior activation (the service allows it),
//! each for a different notice of a position seeded beforehand. Run with
//! `cargo bench -p unione-payments --bench throughput` (add `-- --quick` for a short run); the
//! table is printed and written to `target/bench-payments.md`. See `services/BENCHMARKS.md`.

use std::sync::{Arc, Mutex};

use chrono::Datelike;
use unione_kit::bench::{PgSchema, Row, baseline, drive, report, write_report};
use unione_kit::names::routed;
use unione_kit::storage::testing;
use unione_kit::{ComuneProfile, Database, Istat, Served};
use unione_payments::{DebtPositionApi, PaymentProviderApi};
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::debt_position_service_server::DebtPositionService;
use unione_proto::payments::v1::payment_provider_service_server::PaymentProviderService;

const SARZANA: &str = "011027";
const SARZANA_CF: &str = "00110270113";
const DEBTOR: &str = "RCCMNL83S18D969H";
const IBAN: &str = "IT60X0542811101000000123456";
const PSP: &str = "PSPAITMM";
const AMOUNT: i64 = 11_550;
/// Concurrent callers of every measured operation (and of its baseline).
const CONCURRENCY: usize = 8;

/// How many operations each measurement runs.
struct Sizes {
    positions: usize,
    receipts: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                positions: 400,
                receipts: 400,
            }
        } else {
            Self {
                positions: 4_000,
                receipts: 4_000,
            }
        }
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `--quick` asks for a short run.
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = Sizes::new(quick);
    let mut rows = Vec::new();

    let sqlite = testing::sqlite().await;
    rows.extend(bench_backend("sqlite", &sqlite.db, &sizes).await);
    sqlite.db.close().await;

    if let Some(pg) = PgSchema::create().await {
        rows.extend(bench_backend("postgres", &pg.db, &sizes).await);
        pg.drop().await;
    }

    let table = report("payments", quick, &rows);
    println!("{table}");
    write_report("bench-payments.md", &table);
}

/// Runs the baseline and the payments operations on one database.
async fn bench_backend(backend: &'static str, db: &Database, sizes: &Sizes) -> Vec<Row> {
    db.migrate(&unione_payments::migrations())
        .await
        .expect("payments migrations apply");
    eprintln!("{backend}: baseline ({CONCURRENCY} concurrent)");
    let base = baseline(db, sizes.positions.max(sizes.receipts), CONCURRENCY).await;
    let base_rate = base.per_second();
    let mut rows = vec![Row::new(
        "baseline: 1-row INSERT per tx",
        backend,
        base,
        base_rate,
    )];
    let positions = Arc::new(DebtPositionApi::new(db.clone(), served()));
    let psp = Arc::new(PaymentProviderApi::new(db.clone(), served()));

    eprintln!("{backend}: CreateDebtPosition");
    let stats = {
        let positions = Arc::clone(&positions);
        drive(sizes.positions, CONCURRENCY, move |_| {
            let positions = Arc::clone(&positions);
            async move {
                create_position(&positions).await;
            }
        })
        .await
    };
    rows.push(Row::new(
        "CreateDebtPosition (DebtPositionApi)",
        backend,
        stats,
        base_rate,
    ));

    eprintln!("{backend}: seeding {} positions to pay", sizes.receipts);
    let notices = Arc::new(Mutex::new(Vec::with_capacity(sizes.receipts)));
    {
        let notices = Arc::clone(&notices);
        drive(sizes.receipts, CONCURRENCY, move |_| {
            let (positions, notices) = (Arc::clone(&positions), Arc::clone(&notices));
            async move {
                let created = create_position(&positions).await;
                let notice = created
                    .payment_options
                    .first()
                    .expect("one payment option")
                    .notice_number
                    .clone();
                notices
                    .lock()
                    .expect("the lock is not poisoned")
                    .push(notice);
            }
        })
        .await;
    }
    let notices: Arc<Vec<String>> =
        Arc::new(notices.lock().expect("the lock is not poisoned").clone());

    eprintln!("{backend}: SendReceipt");
    let stats = drive(sizes.receipts, CONCURRENCY, move |i| {
        let psp = Arc::clone(&psp);
        let notice = notices[i].clone();
        async move {
            let now = chrono::Utc::now();
            psp.send_receipt(routed(
                SARZANA,
                pb::SendReceiptRequest {
                    notice: format!("comuni/{SARZANA}/notices/{notice}"),
                    psp_id: PSP.to_owned(),
                    receipt_id: format!("bench-{i}"),
                    amount_cents: AMOUNT,
                    payment_time: Some(prost_types::Timestamp {
                        seconds: now.timestamp(),
                        nanos: 0,
                    }),
                    activation_id: String::new(),
                },
            ))
            .await
            .expect("the receipt is recorded");
        }
    })
    .await;
    rows.push(Row::new(
        "SendReceipt (PaymentProviderApi)",
        backend,
        stats,
        base_rate,
    ));
    rows
}

/// This node keeps the payments desk of Sarzana.
fn served() -> Served {
    Served::new([ComuneProfile {
        istat: Istat::parse(SARZANA).expect("a six-digit code"),
        name: "Sarzana".to_owned(),
        fiscal_code: SARZANA_CF.to_owned(),
        cadastral_code: "I449".to_owned(),
        segregation_code: "01".to_owned(),
        ipa_code: format!("c_{SARZANA}"),
        population: 20_000,
    }])
}

/// Creates a position payable in full (115.50, one transfer, due 30 September next year).
async fn create_position(positions: &DebtPositionApi) -> pb::DebtPosition {
    let due = Date {
        year: chrono::Utc::now().year() + 1,
        month: 9,
        day: 30,
    };
    positions
        .create_debt_position(routed(
            SARZANA,
            pb::CreateDebtPositionRequest {
                parent: format!("comuni/{SARZANA}"),
                debt_position: Some(pb::DebtPosition {
                    debtor_fiscal_code: DEBTOR.to_owned(),
                    description: "TARI - rata unica".to_owned(),
                    payment_options: vec![pb::PaymentOption {
                        amount_cents: AMOUNT,
                        due_date: Some(due),
                        installment: false,
                        transfers: vec![pb::Transfer {
                            creditor_fiscal_code: SARZANA_CF.to_owned(),
                            iban: IBAN.to_owned(),
                            amount_cents: AMOUNT,
                            remittance_information: "TARI".to_owned(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("the position is created")
        .into_inner()
}
