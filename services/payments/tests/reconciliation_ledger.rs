//! ReconciliationService and LedgerService over real storage, on SQLite and (with
//! `TEST_DATABASE_URL`) PostgreSQL, together with the services whose facts the ledger records
//! (positions created, receipts stored). The handlers are called directly, with the routing
//! header the gateway sets and a fixed clock.

use std::sync::Arc;

use tonic::Code;
use unione_kit::error::reason_and_field;
use unione_kit::names::routed;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::{ComuneProfile, Istat, Served};
use unione_payments::{Clock, DebtPositionApi, LedgerApi, PaymentProviderApi, ReconciliationApi};
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::debt_position_service_server::DebtPositionService;
use unione_proto::payments::v1::ledger_service_server::LedgerService;
use unione_proto::payments::v1::payment_provider_service_server::PaymentProviderService;
use unione_proto::payments::v1::reconciliation_service_server::ReconciliationService;

const SARZANA: &str = "011027";
const SARZANA_CF: &str = "00110270113";
/// Another creditor body (a multi-beneficiary transfer goes to it).
const PROVINCE_CF: &str = "00743110157";
const DEBTOR: &str = "RCCMNL83S18D969H";
const IBAN: &str = "IT60X0542811101000000123456";
const PSP: &str = "PSPAITMM";

/// 10 January 2026, 10:00 UTC.
const JAN_10: i64 = 1_768_039_200_000_000;

use pb::debt_position::State;
use pb::ledger_breach::Kind as BreachKind;
use pb::reconciliation_exception::Kind as ExceptionKind;

/// The payments desk of Sarzana with a fixed clock.
#[derive(Clone)]
struct Desk {
    positions: DebtPositionApi,
    psp: PaymentProviderApi,
    flows: ReconciliationApi,
    ledger: LedgerApi,
}

async fn desk(t: &TestDatabase) -> Desk {
    t.db.migrate(&unione_payments::migrations())
        .await
        .expect("payments migrations apply");
    let clock = Clock::from_fn(|| JAN_10);
    let served = Served::new([ComuneProfile {
        istat: Istat::parse(SARZANA).expect("a six-digit code"),
        name: "Sarzana".to_owned(),
        fiscal_code: SARZANA_CF.to_owned(),
        cadastral_code: "I449".to_owned(),
        segregation_code: "01".to_owned(),
        ipa_code: "c_i449".to_owned(),
        population: 22_000,
    }]);
    Desk {
        positions: DebtPositionApi::with_clock(t.db.clone(), served.clone(), clock.clone()),
        psp: PaymentProviderApi::with_clock(t.db.clone(), served.clone(), clock.clone()),
        flows: ReconciliationApi::with_clock(t.db.clone(), served.clone(), clock),
        ledger: LedgerApi::new(t.db.clone(), served),
    }
}

impl Desk {
    async fn create(&self, position: pb::DebtPosition) -> pb::DebtPosition {
        self.positions
            .create_debt_position(routed(
                SARZANA,
                pb::CreateDebtPositionRequest {
                    parent: format!("comuni/{SARZANA}"),
                    debt_position: Some(position),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("created")
            .into_inner()
    }

    async fn get(&self, name: &str) -> pb::DebtPosition {
        self.positions
            .get_debt_position(routed(
                SARZANA,
                pb::GetDebtPositionRequest {
                    name: name.to_owned(),
                },
            ))
            .await
            .expect("read")
            .into_inner()
    }

    async fn pay(
        &self,
        option: &pb::PaymentOption,
        receipt_id: &str,
    ) -> Result<pb::Receipt, tonic::Status> {
        self.psp
            .send_receipt(routed(
                SARZANA,
                pb::SendReceiptRequest {
                    notice: format!("comuni/{SARZANA}/notices/{}", option.notice_number),
                    psp_id: PSP.to_owned(),
                    receipt_id: receipt_id.to_owned(),
                    amount_cents: option.amount_cents,
                    payment_time: Some(prost_types::Timestamp {
                        seconds: JAN_10 / 1_000_000,
                        nanos: 0,
                    }),
                    activation_id: String::new(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn verify(&self) -> pb::VerifyLedgerResponse {
        self.ledger
            .verify_ledger(routed(
                SARZANA,
                pb::VerifyLedgerRequest {
                    parent: format!("comuni/{SARZANA}"),
                },
            ))
            .await
            .expect("verified")
            .into_inner()
    }

    async fn import(
        &self,
        flow: pb::ReconciliationFlow,
    ) -> Result<pb::ReconciliationFlow, tonic::Status> {
        self.flows
            .import_reconciliation_flow(routed(
                SARZANA,
                pb::ImportReconciliationFlowRequest {
                    parent: format!("comuni/{SARZANA}"),
                    flow: Some(flow),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn get_flow(&self, flow_id: &str) -> Result<pb::ReconciliationFlow, tonic::Status> {
        self.flows
            .get_reconciliation_flow(routed(
                SARZANA,
                pb::GetReconciliationFlowRequest {
                    name: format!("comuni/{SARZANA}/reconciliationFlows/{flow_id}"),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }
}

fn date(year: i32, month: i32, day: i32) -> Date {
    Date { year, month, day }
}

fn transfer(creditor: &str, cents: i64) -> pb::Transfer {
    pb::Transfer {
        creditor_fiscal_code: creditor.to_owned(),
        iban: IBAN.to_owned(),
        amount_cents: cents,
        remittance_information: "TARI 2026".to_owned(),
        ..Default::default()
    }
}

fn option(installment: bool, transfers: Vec<pb::Transfer>) -> pb::PaymentOption {
    pb::PaymentOption {
        amount_cents: transfers.iter().map(|t| t.amount_cents).sum(),
        due_date: Some(date(2026, 9, 30)),
        installment,
        transfers,
        ..Default::default()
    }
}

/// 115.50 in full, multi-beneficiary: 100.00 to Sarzana, 15.50 to the province.
fn two_beneficiaries() -> pb::DebtPosition {
    pb::DebtPosition {
        debtor_fiscal_code: DEBTOR.to_owned(),
        description: "TARI 2026 - rata unica".to_owned(),
        payment_options: vec![option(
            false,
            vec![transfer(SARZANA_CF, 10_000), transfer(PROVINCE_CF, 1_550)],
        )],
        ..Default::default()
    }
}

/// 100.00 in full, or installments of 60.00 and 50.00 (the installments cost more).
fn full_or_installments() -> pb::DebtPosition {
    pb::DebtPosition {
        debtor_fiscal_code: DEBTOR.to_owned(),
        description: "TARI 2026".to_owned(),
        payment_options: vec![
            option(false, vec![transfer(SARZANA_CF, 10_000)]),
            option(true, vec![transfer(SARZANA_CF, 6_000)]),
            option(true, vec![transfer(SARZANA_CF, 5_000)]),
        ],
        ..Default::default()
    }
}

/// A flow line.
fn line(
    iuv: &str,
    receipt_id: &str,
    transfer_index: i32,
    cents: i64,
    outcome: i32,
) -> pb::FlowLine {
    pb::FlowLine {
        iuv: iuv.to_owned(),
        receipt_id: receipt_id.to_owned(),
        transfer_index,
        amount_cents: cents,
        outcome,
    }
}

/// A flow of PSP whose totals are those of its lines.
fn flow(flow_id: &str, lines: Vec<pb::FlowLine>) -> pb::ReconciliationFlow {
    pb::ReconciliationFlow {
        header: Some(pb::FlowHeader {
            flow_id: flow_id.to_owned(),
            flow_date: Some(date(2026, 1, 11)),
            psp_id: PSP.to_owned(),
            settlement_reference: format!("TRN-{flow_id}"),
            creditor_fiscal_code: SARZANA_CF.to_owned(),
        }),
        totals: Some(pb::FlowTotals {
            count: i64::try_from(lines.len()).expect("few lines"),
            amount_cents: lines.iter().map(|l| l.amount_cents).sum(),
        }),
        lines,
        ..Default::default()
    }
}

async fn count(t: &TestDatabase, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.db.pool())
        .await
        .expect("count")
}

/// Everything a flow import may write: flows, exceptions, reported transfers, journal
/// transactions and entries, and the revisions of the positions.
async fn footprint(t: &TestDatabase) -> [i64; 6] {
    [
        count(t, "SELECT COUNT(*) FROM payments_reconciliation_flows").await,
        count(t, "SELECT COUNT(*) FROM payments_reconciliation_exceptions").await,
        count(t, "SELECT COUNT(*) FROM payments_reported_transfers").await,
        count(t, "SELECT COUNT(*) FROM payments_journal_transactions").await,
        count(t, "SELECT COUNT(*) FROM payments_journal_entries").await,
        count(
            t,
            "SELECT CAST(COALESCE(SUM(revision), 0) AS BIGINT) FROM payments_debt_positions",
        )
        .await,
    ]
}

/// The balance (debits - credits) of one account.
async fn balance(t: &TestDatabase, account: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(debit_cents - credit_cents), 0) AS BIGINT) \
         FROM payments_journal_entries \
         WHERE account = $1",
    )
    .bind(account)
    .fetch_one(t.db.pool())
    .await
    .expect("a balance")
}

fn kinds(flow: &pb::ReconciliationFlow) -> Vec<ExceptionKind> {
    flow.exceptions.iter().map(|e| e.kind()).collect()
}

fn position_id(position: &pb::DebtPosition) -> &str {
    position
        .name
        .rsplit('/')
        .next()
        .expect("a resource name has segments")
}

/// Issue 4 "Ledger": every movement of money is a balanced transaction. Creating positions
/// recognises their receivable against each beneficiary per transfer; receipts move it to the
/// PSP's clearing account; paying by installments instead of in full changes the plan (DOMAIN.md
/// "Payments": a full-payment option cannot be paid once an installment is paid) and leaves
/// exactly the installments owed.
#[tokio::test]
async fn the_ledger_balances_after_creates_and_receipts() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let empty = d.verify().await;
        assert!(empty.verified, "{}", t.label);
        assert_eq!(empty.transaction_count, 0);

        let a = d.create(two_beneficiaries()).await;
        let b = d.create(full_or_installments()).await;
        let v = d.verify().await;
        assert!(v.verified, "{}: {:?}", t.label, v.breaches);
        assert_eq!(v.transaction_count, 2, "{}", t.label);
        // A: 115.50 in full; B: the option in full (100.00) is what is recognised.
        assert_eq!(v.total_debit_cents, 11_550 + 10_000, "{}", t.label);
        assert_eq!(
            balance(&t, &format!("receivable:{}", position_id(&a))).await,
            11_550
        );
        assert_eq!(
            balance(&t, &format!("creditor:{PROVINCE_CF}")).await,
            -1_550
        );

        d.pay(&a.payment_options[0], "r-a").await.expect("paid");
        d.pay(&b.payment_options[1], "r-b1").await.expect("paid");
        let v = d.verify().await;
        assert!(v.verified, "{}: {:?}", t.label, v.breaches);
        assert_eq!(v.receipt_count, 2, "{}", t.label);
        assert_eq!(v.receipt_total_cents, 11_550 + 6_000);
        assert_eq!(v.clearing_debit_cents, v.receipt_total_cents);
        assert_eq!(v.total_debit_cents, v.total_credit_cents);
        assert_eq!(
            balance(&t, &format!("receivable:{}", position_id(&a))).await,
            0
        );
        // B changed plan: 60.00 + 50.00 owed, 60.00 paid.
        let b_receivable = format!("receivable:{}", position_id(&b));
        assert_eq!(balance(&t, &b_receivable).await, 5_000, "{}", t.label);
        assert_eq!(
            count(
                &t,
                "SELECT COUNT(*) FROM payments_journal_transactions WHERE kind = 'PLAN_CHANGED'"
            )
            .await,
            1
        );
        d.pay(&b.payment_options[2], "r-b2").await.expect("paid");
        assert_eq!(balance(&t, &b_receivable).await, 0, "{}", t.label);
        assert_eq!(
            balance(&t, &format!("psp-clearing:{PSP}")).await,
            11_550 + 11_000
        );
        assert!(d.verify().await.verified, "{}", t.label);
    }
}

/// Issue 4 "Ledger": the journal is append-only (the database refuses updates and deletes),
/// and VerifyLedger reports a breach, with details, when a journal row is altered behind the
/// service's back anyway (the guard dropped, an entry's amount changed in the database).
#[tokio::test]
async fn verify_ledger_detects_a_journal_row_altered_in_the_database() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let a = d.create(two_beneficiaries()).await;
        d.pay(&a.payment_options[0], "r-a").await.expect("paid");
        assert!(d.verify().await.verified, "{}", t.label);

        // The journal is append-only: the database refuses an update and a delete.
        let refused = sqlx::query("UPDATE payments_journal_entries SET debit_cents = 0")
            .execute(t.db.pool())
            .await;
        assert!(refused.is_err(), "{}: update refused", t.label);
        let refused = sqlx::query("DELETE FROM payments_journal_transactions")
            .execute(t.db.pool())
            .await;
        assert!(refused.is_err(), "{}: delete refused", t.label);
        assert!(d.verify().await.verified, "{}", t.label);

        // Someone with the rights to drop the guard alters a row anyway.
        let drop: &'static str = if t.label == "sqlite" {
            "DROP TRIGGER payments_journal_entries_append_only"
        } else {
            "DROP TRIGGER payments_journal_entries_append_only ON payments_journal_entries"
        };
        sqlx::query(drop)
            .execute(t.db.pool())
            .await
            .expect("the guard dropped");
        // The clearing debit of the receipt, one cent more.
        sqlx::query(
            "UPDATE payments_journal_entries SET debit_cents = debit_cents + 1 \
             WHERE account = $1 AND debit_cents > 0",
        )
        .bind(format!("psp-clearing:{PSP}"))
        .execute(t.db.pool())
        .await
        .expect("altered");
        let v = d.verify().await;
        assert!(!v.verified, "{}", t.label);
        let found: Vec<(BreachKind, i64, i64)> = v
            .breaches
            .iter()
            .map(|b| (b.kind(), b.expected_cents, b.actual_cents))
            .collect();
        assert_eq!(
            found,
            vec![
                (BreachKind::UnbalancedTransaction, 11_551, 11_550),
                (BreachKind::ReceiptMismatch, 11_550, 11_551),
            ],
            "{}",
            t.label
        );
        assert_eq!(v.breaches[1].iuv, a.payment_options[0].iuv);
        assert!(!v.breaches[0].transaction_id.is_empty());
        assert!(!v.breaches[0].detail.is_empty());

        // A receivable credited twice: the position would be paid beyond its amount.
        sqlx::query(
            "UPDATE payments_journal_entries SET credit_cents = credit_cents * 2 \
             WHERE account = $1 AND credit_cents > 0",
        )
        .bind(format!("receivable:{}", position_id(&a)))
        .execute(t.db.pool())
        .await
        .expect("altered");
        let v = d.verify().await;
        assert!(
            v.breaches
                .iter()
                .any(|b| b.kind() == BreachKind::OverpaidPosition
                    && b.account == format!("receivable:{}", position_id(&a))),
            "{}: {:?}",
            t.label,
            v.breaches
        );
    }
}

/// DOMAIN.md "Payments": receipts arrive at least once. Hundreds of receipts, each delivered
/// again, some under another receipt id for an already paid notice (refused), sent
/// concurrently, leave exactly one payment per notice and a ledger that balances and agrees
/// with the receipts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_receipts_with_redeliveries_leave_the_ledger_verified() {
    const POSITIONS: usize = 400;
    for t in testing::all().await {
        let d = desk(&t).await;
        let started = std::time::Instant::now();
        let mut options = Vec::with_capacity(POSITIONS);
        for i in 0..POSITIONS {
            let p = if i % 3 == 0 {
                d.create(full_or_installments()).await
            } else {
                d.create(two_beneficiaries()).await
            };
            options.push(p.payment_options[usize::from(i % 3 == 0)].clone());
        }
        // Every notice once, again (redelivery), and a quarter under another receipt id: 1,100
        // deliveries, shuffled deterministically, several at a time.
        let mut deliveries: Vec<(usize, String)> = Vec::new();
        for i in 0..POSITIONS {
            deliveries.push((i, format!("r-{i}")));
            deliveries.push((i, format!("r-{i}")));
            if i % 4 == 0 {
                deliveries.push((i, format!("other-{i}")));
            }
        }
        let mut seed: u64 = 0x5eed;
        for i in (1..deliveries.len()).rev() {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let j = usize::try_from(seed >> 33).expect("fits") % (i + 1);
            deliveries.swap(i, j);
        }
        let options = Arc::new(options);
        let mut accepted_first: std::collections::BTreeMap<usize, String> = Default::default();
        // PostgreSQL runs writers side by side: eight at a time races them. SQLite has one
        // writer at a time and waiting writers back off in its busy handler (sleeps of up to
        // 100 ms), so racing there only slows the test (the race of two PSPs on SQLite is in
        // payment_provider_service.rs); one at a time keeps it bounded.
        let parallel = if t.label == "sqlite" { 1 } else { 8 };
        for chunk in deliveries.chunks(parallel) {
            let tasks: Vec<_> = chunk
                .iter()
                .cloned()
                .map(|(i, receipt_id)| {
                    let d = d.clone();
                    let options = Arc::clone(&options);
                    tokio::spawn(async move {
                        let r = d.pay(&options[i], &receipt_id).await;
                        (i, receipt_id, r)
                    })
                })
                .collect();
            for task in tasks {
                let (i, receipt_id, r) = task.await.expect("the task ran");
                match r {
                    Ok(receipt) => {
                        let first = accepted_first.entry(i).or_insert(receipt_id.clone());
                        assert_eq!(
                            *first, receipt.receipt_id,
                            "{}: one receipt per notice",
                            t.label
                        );
                    }
                    Err(err) => {
                        assert_eq!(err.code(), Code::FailedPrecondition, "{}: {err:?}", t.label);
                        assert_eq!(reason_and_field(&err).0, "NOTICE_NOT_PAYABLE");
                    }
                }
            }
        }
        eprintln!(
            "{}: {} deliveries in {:?}",
            t.label,
            deliveries.len(),
            started.elapsed()
        );
        assert_eq!(accepted_first.len(), POSITIONS, "{}", t.label);
        let receipts = count(&t, "SELECT COUNT(*) FROM payments_receipts").await;
        assert_eq!(receipts, i64::try_from(POSITIONS).expect("fits"));
        let v = d.verify().await;
        assert!(v.verified, "{}: {:?}", t.label, v.breaches);
        assert_eq!(v.receipt_count, receipts);
        assert_eq!(v.clearing_debit_cents, v.receipt_total_cents);
        let expected: i64 = options.iter().map(|o| o.amount_cents).sum();
        assert_eq!(v.receipt_total_cents, expected, "{}", t.label);
    }
}

/// Issue 4 "Reconciliation": importing the same flow twice changes nothing and returns the
/// first result, even with its lines in another order; the same flow id with other content
/// is refused; GetReconciliationFlow returns the stored result.
#[tokio::test]
async fn a_flow_imported_twice_changes_nothing() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let a = d.create(two_beneficiaries()).await;
        let iuv = a.payment_options[0].iuv.clone();
        d.pay(&a.payment_options[0], "r-a").await.expect("paid");
        let lines = vec![
            line(&iuv, "r-a", 1, 10_000, 0),
            line(&iuv, "r-a", 2, 1_550, 0),
            line("01202600000099999", "r-x", 1, 500, 0),
        ];
        let first = d.import(flow("F1", lines.clone())).await.expect("imported");
        assert_eq!(first.matched_count, 2, "{}", t.label);
        assert_eq!(first.matched_amount_cents, 11_550);
        assert_eq!(kinds(&first), vec![ExceptionKind::UnknownIuv]);
        assert_eq!(first.reported_positions, vec![a.name.clone()]);
        assert_eq!(
            first.name,
            format!("comuni/{SARZANA}/reconciliationFlows/F1")
        );
        let after_first = footprint(&t).await;

        let mut reversed = lines.clone();
        reversed.reverse();
        let again = d.import(flow("F1", reversed)).await.expect("replayed");
        assert_eq!(again, first, "{}: the first result", t.label);
        assert_eq!(
            footprint(&t).await,
            after_first,
            "{}: nothing changed",
            t.label
        );

        let mut other = lines;
        other[2].amount_cents = 501;
        let err = d
            .import(flow("F1", other))
            .await
            .expect_err("other content");
        assert_eq!(err.code(), Code::AlreadyExists, "{}", t.label);
        assert_eq!(
            reason_and_field(&err),
            (
                "FLOW_ID_REUSED".to_owned(),
                Some("flow.header.flow_id".to_owned())
            )
        );
        assert_eq!(footprint(&t).await, after_first, "{}", t.label);
        assert_eq!(d.get_flow("F1").await.expect("stored"), first);
        assert!(d.verify().await.verified, "{}", t.label);
    }
}

/// DOMAIN.md "Payments": a flow's totals are the count of its lines and the sum of their
/// amounts. A mismatch is refused naming the total at fault, and nothing is stored.
#[tokio::test]
async fn a_totals_mismatch_is_refused_with_nothing_stored() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let a = d.create(two_beneficiaries()).await;
        let iuv = a.payment_options[0].iuv.clone();
        d.pay(&a.payment_options[0], "r-a").await.expect("paid");
        let before = footprint(&t).await;
        let good = flow(
            "F-T",
            vec![
                line(&iuv, "r-a", 1, 10_000, 0),
                line(&iuv, "r-a", 2, 1_550, 0),
            ],
        );
        for (field, change) in [
            ("flow.totals.count", (1i64, 0i64)),
            ("flow.totals.amount_cents", (0, -1)),
        ] {
            let mut bad = good.clone();
            let totals = bad.totals.as_mut().expect("totals");
            totals.count += change.0;
            totals.amount_cents += change.1;
            let err = d.import(bad).await.expect_err("totals mismatch");
            assert_eq!(err.code(), Code::InvalidArgument, "{}", t.label);
            assert_eq!(
                reason_and_field(&err),
                ("FLOW_TOTALS_MISMATCH".to_owned(), Some(field.to_owned())),
                "{}",
                t.label
            );
            assert_eq!(footprint(&t).await, before, "{}: nothing stored", t.label);
        }
        let err = d.get_flow("F-T").await.expect_err("not imported");
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(d.get(&a.name).await.state, State::Paid as i32);
        // The good flow is then accepted.
        d.import(good).await.expect("imported");
    }
}

/// DOMAIN.md "Payments": flag unknown IUVs, amount mismatches, lines without a matching
/// receipt, duplicates; and revoked payments (outcome 3) and unknown transfers. Exceptions
/// change nothing: only the matched line is reported and settled.
#[tokio::test]
async fn each_exception_kind_is_reported() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let paid = d.create(two_beneficiaries()).await;
        let unpaid = d.create(two_beneficiaries()).await;
        let p = paid.payment_options[0].iuv.clone();
        let u = unpaid.payment_options[0].iuv.clone();
        d.pay(&paid.payment_options[0], "r-p").await.expect("paid");
        let f = d
            .import(flow(
                "F-X",
                vec![
                    line(&p, "r-p", 1, 10_000, 0),
                    line(&p, "r-p", 1, 10_000, 4),
                    line(&p, "r-p", 2, 1_549, 0),
                    line(&p, "r-p", 3, 100, 0),
                    line(&p, "r-p", 2, 1_550, 3),
                    line(&u, "r-u", 1, 10_000, 8),
                    line(&p, "r-other", 2, 1_550, 9),
                    line("01202600000099999", "r-z", 1, 700, 0),
                ],
            ))
            .await
            .expect("imported");
        assert_eq!(f.matched_count, 1, "{}", t.label);
        let mut found = kinds(&f);
        found.sort_by_key(|k| *k as i32);
        assert_eq!(
            found,
            vec![
                ExceptionKind::UnknownIuv,
                ExceptionKind::AmountMismatch,
                ExceptionKind::LineWithoutReceipt,
                ExceptionKind::LineWithoutReceipt,
                ExceptionKind::Revoked,
                ExceptionKind::DuplicateLine,
                ExceptionKind::UnknownTransfer,
            ],
            "{}",
            t.label
        );
        let mismatch = f
            .exceptions
            .iter()
            .find(|e| e.kind() == ExceptionKind::AmountMismatch)
            .expect("an amount mismatch");
        assert_eq!(mismatch.expected_amount_cents, 1_550);
        assert_eq!(mismatch.line.as_ref().map(|l| l.amount_cents), Some(1_549));
        assert_eq!(
            count(
                &t,
                "SELECT COUNT(*) FROM payments_reconciliation_exceptions"
            )
            .await,
            7
        );
        // A transfer reported by an earlier flow is a duplicate in a later one.
        let later = d
            .import(flow("F-Y", vec![line(&p, "r-p", 1, 10_000, 0)]))
            .await
            .expect("imported");
        assert_eq!(
            kinds(&later),
            vec![ExceptionKind::DuplicateLine],
            "{}",
            t.label
        );
        assert_eq!(later.matched_count, 0);
        assert_eq!(
            balance(&t, &format!("bank:{IBAN}")).await,
            10_000,
            "{}",
            t.label
        );
        assert_eq!(d.get(&paid.name).await.state, State::Paid as i32);
        assert!(d.verify().await.verified, "{}", t.label);
    }
}

/// DOMAIN.md "Payments": flow line -> transfer REPORTED, rolling up: a paid position is
/// REPORTED once every transfer of its paid options is; a partly paid one is not. The
/// settlement moves the money from the PSP's clearing account to the bank.
#[tokio::test]
async fn positions_become_reported_when_all_their_transfers_are() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let a = d.create(two_beneficiaries()).await;
        let b = d.create(full_or_installments()).await;
        let ia = a.payment_options[0].iuv.clone();
        let ib = b.payment_options[1].iuv.clone();
        d.pay(&a.payment_options[0], "r-a").await.expect("paid");
        d.pay(&b.payment_options[1], "r-b1").await.expect("paid");

        let f1 = d
            .import(flow(
                "F-1",
                vec![
                    line(&ia, "r-a", 1, 10_000, 0),
                    line(&ib, "r-b1", 1, 6_000, 0),
                ],
            ))
            .await
            .expect("imported");
        assert!(f1.exceptions.is_empty(), "{}: {:?}", t.label, f1.exceptions);
        assert!(f1.reported_positions.is_empty(), "{}", t.label);
        let read = d.get(&a.name).await;
        assert_eq!(
            read.state,
            State::Paid as i32,
            "{}: one transfer of two",
            t.label
        );
        let reported: Vec<bool> = read.payment_options[0]
            .transfers
            .iter()
            .map(|x| x.reported)
            .collect();
        assert_eq!(reported, vec![true, false]);
        assert_eq!(
            d.get(&b.name).await.state,
            State::PartiallyPaid as i32,
            "{}: an installment still due",
            t.label
        );

        let f2 = d
            .import(flow("F-2", vec![line(&ia, "r-a", 2, 1_550, 4)]))
            .await
            .expect("imported");
        assert_eq!(f2.reported_positions, vec![a.name.clone()], "{}", t.label);
        assert_eq!(
            d.get(&a.name).await.state,
            State::Reported as i32,
            "{}",
            t.label
        );

        // B: the last installment paid and reported makes it REPORTED too.
        d.pay(&b.payment_options[2], "r-b2").await.expect("paid");
        let ib2 = b.payment_options[2].iuv.clone();
        let f3 = d
            .import(flow("F-3", vec![line(&ib2, "r-b2", 1, 5_000, 0)]))
            .await
            .expect("imported");
        assert_eq!(f3.reported_positions, vec![b.name.clone()], "{}", t.label);
        assert_eq!(d.get(&b.name).await.state, State::Reported as i32);

        // Everything collected was settled: clearing is empty, the bank holds it all.
        assert_eq!(
            balance(&t, &format!("psp-clearing:{PSP}")).await,
            0,
            "{}",
            t.label
        );
        assert_eq!(balance(&t, &format!("bank:{IBAN}")).await, 11_550 + 11_000);
        assert!(d.verify().await.verified, "{}", t.label);
    }
}
