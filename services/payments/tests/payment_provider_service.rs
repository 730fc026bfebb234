//! PaymentProviderService (and the state machine of DebtPositionService) over real storage, on
//! SQLite and (with `TEST_DATABASE_URL`) PostgreSQL. The handlers are called directly, with
//! the routing header the gateway sets, and a clock the tests move.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sha2::{Digest, Sha256};
use tonic::{Code, Request};
use unione_kit::error::{error_info, reason_and_field};
use unione_kit::names::{ROUTING_HEADER, routed};
use unione_kit::principal::Principal;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_kit::{ComuneProfile, Istat, Served};
use unione_payments::domain::receipt;
use unione_payments::{Clock, DebtPositionApi, PaymentProviderApi};
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::debt_position_service_server::DebtPositionService;
use unione_proto::payments::v1::payment_provider_service_server::PaymentProviderService;

const SARZANA: &str = "011027";
const ARCOLA: &str = "011002";
const LUNI: &str = "011020";
const SARZANA_CF: &str = "00110270113";
const DEBTOR: &str = "RCCMNL83S18D969H";
const IBAN: &str = "IT60X0542811101000000123456";
const PSP_A: &str = "PSPAITMM";
const PSP_B: &str = "PSPBITRR";

/// 10 January 2026, 10:00 UTC.
const JAN_10: i64 = 1_768_039_200_000_000;
const MINUTE: i64 = 60_000_000;

use pb::debt_position::State;

fn profile(istat: &str, name: &str, segregation_code: &str) -> ComuneProfile {
    ComuneProfile {
        istat: Istat::parse(istat).expect("a six-digit code"),
        name: name.to_owned(),
        fiscal_code: SARZANA_CF.to_owned(),
        cadastral_code: "I449".to_owned(),
        segregation_code: segregation_code.to_owned(),
        ipa_code: format!("c_{istat}"),
        population: 20_000,
    }
}

/// The payments desk of Sarzana and Arcola (not Luni), with a clock the test moves.
struct Desk {
    positions: DebtPositionApi,
    psp: PaymentProviderApi,
    now: Arc<AtomicI64>,
}

impl Desk {
    fn set(&self, micros: i64) {
        self.now.store(micros, Ordering::SeqCst);
    }

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

    async fn invalidate(&self, name: &str) -> Result<pb::DebtPosition, tonic::Status> {
        self.positions
            .invalidate_debt_position(routed(
                SARZANA,
                pb::InvalidateDebtPositionRequest {
                    name: name.to_owned(),
                    etag: String::new(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn verify(&self, notice: &str) -> Result<pb::VerifyNoticeResponse, tonic::Status> {
        self.psp
            .verify_notice(routed(
                SARZANA,
                pb::VerifyNoticeRequest {
                    name: notice_name(notice),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn activate(
        &self,
        notice: &str,
        psp: &str,
        key: &str,
        cents: i64,
    ) -> Result<pb::Activation, tonic::Status> {
        self.psp
            .activate_payment(routed(
                SARZANA,
                pb::ActivatePaymentRequest {
                    name: notice_name(notice),
                    psp_id: psp.to_owned(),
                    idempotency_key: key.to_owned(),
                    amount_cents: cents,
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn pay(
        &self,
        notice: &str,
        psp: &str,
        receipt_id: &str,
        cents: i64,
    ) -> Result<pb::Receipt, tonic::Status> {
        send(&self.psp, receipt(notice, psp, receipt_id, cents, "")).await
    }
}

async fn desk(t: &TestDatabase) -> Desk {
    t.db.migrate(&unione_payments::migrations())
        .await
        .expect("payments migrations apply");
    let now = Arc::new(AtomicI64::new(JAN_10));
    let read = Arc::clone(&now);
    let clock = Clock::from_fn(move || read.load(Ordering::SeqCst));
    let served = Served::new([
        profile(SARZANA, "Sarzana", "01"),
        profile(ARCOLA, "Arcola", "02"),
    ]);
    Desk {
        positions: DebtPositionApi::with_clock(t.db.clone(), served.clone(), clock.clone()),
        psp: PaymentProviderApi::with_clock(t.db.clone(), served, clock),
        now,
    }
}

fn notice_name(notice: &str) -> String {
    format!("comuni/{SARZANA}/notices/{notice}")
}

fn receipt(
    notice: &str,
    psp: &str,
    receipt_id: &str,
    cents: i64,
    activation_id: &str,
) -> pb::SendReceiptRequest {
    pb::SendReceiptRequest {
        notice: notice_name(notice),
        psp_id: psp.to_owned(),
        receipt_id: receipt_id.to_owned(),
        amount_cents: cents,
        payment_time: Some(prost_types::Timestamp {
            seconds: JAN_10 / 1_000_000,
            nanos: 0,
        }),
        activation_id: activation_id.to_owned(),
    }
}

async fn send(
    psp: &PaymentProviderApi,
    request: pb::SendReceiptRequest,
) -> Result<pb::Receipt, tonic::Status> {
    psp.send_receipt(routed(SARZANA, request))
        .await
        .map(tonic::Response::into_inner)
}

fn date(year: i32, month: i32, day: i32) -> Date {
    Date { year, month, day }
}

fn option(cents: i64, installment: bool, due: Date) -> pb::PaymentOption {
    pb::PaymentOption {
        amount_cents: cents,
        due_date: Some(due),
        installment,
        transfers: vec![pb::Transfer {
            creditor_fiscal_code: SARZANA_CF.to_owned(),
            iban: IBAN.to_owned(),
            amount_cents: cents,
            remittance_information: "TARI 2026".to_owned(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// One option in full, 115.50, due 30 September 2026.
fn in_full() -> pb::DebtPosition {
    pb::DebtPosition {
        debtor_fiscal_code: DEBTOR.to_owned(),
        description: "TARI 2026 - rata unica".to_owned(),
        payment_options: vec![option(11_550, false, date(2026, 9, 30))],
        ..Default::default()
    }
}

/// Pay 100.00 in full, or two installments of 50.00 (31 March and 30 June 2026).
fn full_or_installments() -> pb::DebtPosition {
    pb::DebtPosition {
        debtor_fiscal_code: DEBTOR.to_owned(),
        description: "TARI 2026".to_owned(),
        payment_options: vec![
            option(10_000, false, date(2026, 3, 31)),
            option(5_000, true, date(2026, 3, 31)),
            option(5_000, true, date(2026, 6, 30)),
        ],
        ..Default::default()
    }
}

async fn count(t: &TestDatabase, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.db.pool())
        .await
        .expect("count")
}

async fn receipts(t: &TestDatabase) -> i64 {
    count(t, "SELECT COUNT(*) FROM payments_receipts").await
}

/// The reason of a refusal and its `why` metadata.
fn reason_and_why(status: &tonic::Status) -> (String, Option<String>) {
    let info = error_info(status).expect("an ErrorInfo");
    (info.reason, info.metadata.get("why").cloned())
}

/// DOMAIN.md "Payments" (pagoPA): a PSP verifies the notice, activates it (reserving it from
/// other PSPs for a short time), sends the receipt; the position is then PAID and the sealed
/// receipt can be downloaded and verified.
#[tokio::test]
async fn verify_activate_receipt_gives_paid() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let position = d.create(in_full()).await;
        let notice = position.payment_options[0].notice_number.clone();

        let verified = d.verify(&notice).await.expect("verified");
        assert_eq!(verified.amount_cents, 11_550, "{}", t.label);
        assert_eq!(verified.status, pb::NoticeStatus::Payable as i32);
        assert_eq!(verified.creditor_fiscal_code, SARZANA_CF);
        assert_eq!(verified.creditor_name, "Sarzana");
        assert_eq!(verified.remittance_information, "TARI 2026");
        assert_eq!(verified.due_date, Some(date(2026, 9, 30)));
        assert_eq!(verified.iuv, position.payment_options[0].iuv);

        // A wrong amount cannot be activated.
        let err = d
            .activate(&notice, PSP_A, "k1", 11_549)
            .await
            .expect_err("wrong amount");
        assert_eq!(reason_and_field(&err).0, "AMOUNT_MISMATCH");

        let first = d
            .activate(&notice, PSP_A, "k1", 11_550)
            .await
            .expect("activated");
        assert!(!first.activation_id.is_empty());
        let again = d
            .activate(&notice, PSP_A, "k1", 11_550)
            .await
            .expect("again");
        assert_eq!(
            again, first,
            "{}: same PSP, same key, same activation",
            t.label
        );

        // Another PSP while the reservation is live: ABORTED.
        d.set(JAN_10 + 14 * MINUTE);
        let err = d
            .activate(&notice, PSP_B, "kb", 11_550)
            .await
            .expect_err("reserved");
        assert_eq!(err.code(), Code::Aborted, "{}", t.label);
        assert_eq!(reason_and_field(&err).0, "NOTICE_RESERVED");
        // Once it lapses (15 minutes), the other PSP may activate.
        d.set(JAN_10 + 16 * MINUTE);
        d.activate(&notice, PSP_B, "kb", 11_550)
            .await
            .expect("the reservation lapsed");

        // An activation of another PSP is not this PSP's.
        let err = send(
            &d.psp,
            receipt(&notice, PSP_B, "rb", 11_550, &first.activation_id),
        )
        .await
        .expect_err("not PSP B's activation");
        assert_eq!(reason_and_field(&err).0, "ACTIVATION_MISMATCH");

        let paid = send(
            &d.psp,
            receipt(&notice, PSP_A, "r-1", 11_550, &first.activation_id),
        )
        .await
        .expect("paid");
        assert_eq!(paid.position_state, State::Paid as i32, "{}", t.label);
        assert_eq!(paid.debt_position, position.name);
        assert_eq!(
            paid.name,
            format!("comuni/{SARZANA}/notices/{notice}/receipts/r-1")
        );

        let read = d.get(&position.name).await;
        assert_eq!(read.state, State::Paid as i32, "{}", t.label);
        assert!(read.payment_options[0].paid);
        assert_eq!(
            d.verify(&notice).await.expect("verified").status,
            pb::NoticeStatus::Paid as i32
        );

        // The sealed receipt: its seal is the SHA-256 of the document, as anyone can check.
        let sealed = d
            .psp
            .get_receipt(routed(
                SARZANA,
                pb::GetReceiptRequest {
                    name: paid.name.clone(),
                },
            ))
            .await
            .expect("sealed receipt")
            .into_inner();
        let digest: String = Sha256::digest(sealed.document.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sealed.sha256, digest, "{}", t.label);
        assert!(receipt::verify(&sealed.document, &sealed.sha256));
        let json: serde_json::Value =
            serde_json::from_str(&sealed.document).expect("the document is JSON");
        assert_eq!(json["amount_cents"], 11_550);
        assert_eq!(json["amount_euros"], "115.50");
        assert_eq!(json["receipt_id"], "r-1");
        assert_eq!(json["notice_number"], notice.as_str());
        assert_eq!(json["creditor_fiscal_code"], SARZANA_CF);

        let err = d
            .psp
            .get_receipt(routed(
                SARZANA,
                pb::GetReceiptRequest {
                    name: format!("comuni/{SARZANA}/notices/{notice}/receipts/r-2"),
                },
            ))
            .await
            .expect_err("no such receipt");
        assert_eq!(err.code(), Code::NotFound);
    }
}

/// DOMAIN.md "Payments": receipts arrive at least once; storing one is idempotent on (fiscal
/// code, IUV, receipt id) and the same receipt again returns the first result.
#[tokio::test]
async fn the_same_receipt_five_times_is_one_payment() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let position = d.create(in_full()).await;
        let notice = position.payment_options[0].notice_number.clone();
        let first = d.pay(&notice, PSP_A, "r-1", 11_550).await.expect("paid");
        let etag = d.get(&position.name).await.etag;
        for _ in 0..4 {
            // Later deliveries arrive later: the reply is still the first one, exactly.
            d.set(d.now.load(Ordering::SeqCst) + MINUTE);
            let again = d
                .pay(&notice, PSP_A, "r-1", 11_550)
                .await
                .expect("replayed");
            assert_eq!(again, first, "{}", t.label);
        }
        assert_eq!(receipts(&t).await, 1, "{}", t.label);
        assert_eq!(
            d.get(&position.name).await.etag,
            etag,
            "{}: unchanged",
            t.label
        );
    }
}

/// DOMAIN.md "Payments": the same receipt id with a different amount is an error, and
/// nothing changes.
#[tokio::test]
async fn a_different_amount_under_the_same_receipt_id_is_refused() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let position = d.create(in_full()).await;
        let notice = position.payment_options[0].notice_number.clone();
        let first = d.pay(&notice, PSP_A, "r-1", 11_550).await.expect("paid");
        let before = d.get(&position.name).await;
        let rows = count(
            &t,
            "SELECT COUNT(*) FROM payments_receipts WHERE amount_cents = 11550",
        )
        .await;

        let err = d
            .pay(&notice, PSP_A, "r-1", 11_000)
            .await
            .expect_err("conflict");
        assert_eq!(err.code(), Code::AlreadyExists, "{}", t.label);
        assert_eq!(
            reason_and_field(&err),
            (
                "RECEIPT_CONFLICT".to_owned(),
                Some("amount_cents".to_owned())
            )
        );

        assert_eq!(rows, 1);
        assert_eq!(receipts(&t).await, 1, "{}: no receipt added", t.label);
        assert_eq!(
            d.get(&position.name).await,
            before,
            "{}: unchanged",
            t.label
        );
        assert_eq!(
            d.pay(&notice, PSP_A, "r-1", 11_550).await.expect("replay"),
            first
        );
    }
}

/// DOMAIN.md "Payments": a payment is identified by (creditor, IUV): two providers racing for
/// the same notice, ten receipts at once, exactly one is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_providers_racing_exactly_one_receipt_is_accepted() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let position = d.create(in_full()).await;
        let notice = position.payment_options[0].notice_number.clone();
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let psp = d.psp.clone();
                let request = receipt(
                    &notice,
                    if i % 2 == 0 { PSP_A } else { PSP_B },
                    &format!("race-{i}"),
                    11_550,
                    "",
                );
                tokio::spawn(async move { send(&psp, request).await })
            })
            .collect();
        let mut accepted = 0;
        for task in tasks {
            match task.await.expect("the task ran") {
                Ok(r) => {
                    accepted += 1;
                    assert_eq!(r.position_state, State::Paid as i32);
                }
                Err(err) => {
                    assert_eq!(err.code(), Code::FailedPrecondition, "{}: {err:?}", t.label);
                    assert_eq!(
                        reason_and_why(&err),
                        (
                            "NOTICE_NOT_PAYABLE".to_owned(),
                            Some("ALREADY_PAID".to_owned())
                        )
                    );
                }
            }
        }
        assert_eq!(accepted, 1, "{}", t.label);
        assert_eq!(receipts(&t).await, 1, "{}", t.label);
        assert_eq!(d.get(&position.name).await.state, State::Paid as i32);
    }
}

/// DOMAIN.md "Payments": an installment paid gives PARTIALLY_PAID; the option in full cannot be
/// paid once an installment is paid; all installments paid give PAID.
#[tokio::test]
async fn installments_then_full_payment_refused_then_paid() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let position = d.create(full_or_installments()).await;
        assert_eq!(position.state, State::Valid as i32);
        let notices: Vec<String> = position
            .payment_options
            .iter()
            .map(|o| o.notice_number.clone())
            .collect();

        let first = d.pay(&notices[1], PSP_A, "i-1", 5_000).await.expect("paid");
        assert_eq!(
            first.position_state,
            State::PartiallyPaid as i32,
            "{}",
            t.label
        );
        assert_eq!(
            d.get(&position.name).await.state,
            State::PartiallyPaid as i32
        );

        let err = d
            .pay(&notices[0], PSP_A, "full-1", 10_000)
            .await
            .expect_err("full after installment");
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(reason_and_why(&err).0, "FULL_PAYMENT_AFTER_INSTALLMENT");
        assert_eq!(
            d.verify(&notices[0]).await.expect("verified").status,
            pb::NoticeStatus::InstallmentPaid as i32
        );
        let err = d
            .activate(&notices[0], PSP_A, "k", 10_000)
            .await
            .expect_err("cannot activate either");
        assert_eq!(reason_and_why(&err).0, "FULL_PAYMENT_AFTER_INSTALLMENT");

        // Past the first installment's due date the second is still payable until its own.
        d.set(JAN_10 + 100 * 24 * 60 * MINUTE);
        let last = d.pay(&notices[2], PSP_B, "i-2", 5_000).await.expect("paid");
        assert_eq!(last.position_state, State::Paid as i32, "{}", t.label);
        let read = d.get(&position.name).await;
        assert_eq!(read.state, State::Paid as i32);
        assert_eq!(
            read.payment_options
                .iter()
                .map(|o| o.paid)
                .collect::<Vec<_>>(),
            [false, true, true]
        );
        assert_eq!(receipts(&t).await, 2, "{}", t.label);
    }
}

/// DOMAIN.md "Payments" (state EXPIRED): an unpaid option past its due date can no longer be
/// paid; the due date itself is payable until midnight in Italy (CEST in September).
#[tokio::test]
async fn an_expired_option_is_refused_after_its_due_date() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let position = d.create(in_full()).await;
        let notice = position.payment_options[0].notice_number.clone();

        // 30 September 2026, 21:59 UTC = 23:59 in Italy: still payable.
        let last_minute = 1_790_805_540_000_000;
        d.set(last_minute);
        assert_eq!(
            d.verify(&notice).await.expect("verified").status,
            pb::NoticeStatus::Payable as i32,
            "{}",
            t.label
        );
        // One minute later it is 1 October in Italy.
        d.set(last_minute + MINUTE);
        assert_eq!(
            d.verify(&notice).await.expect("verified").status,
            pb::NoticeStatus::Expired as i32
        );
        assert_eq!(d.get(&position.name).await.state, State::Expired as i32);
        let err = d
            .pay(&notice, PSP_A, "late", 11_550)
            .await
            .expect_err("expired");
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(
            reason_and_why(&err),
            ("NOTICE_NOT_PAYABLE".to_owned(), Some("EXPIRED".to_owned()))
        );
        let err = d.invalidate(&position.name).await.expect_err("expired");
        assert_eq!(reason_and_why(&err).0, "INVALID_STATE_TRANSITION");
        assert_eq!(receipts(&t).await, 0, "{}", t.label);
    }
}

/// DOMAIN.md "Payments": invalidation only from PUBLISHED or VALID, and an invalidated
/// position cannot be paid.
#[tokio::test]
async fn an_invalidated_position_cannot_be_paid() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let position = d.create(in_full()).await;
        let notice = position.payment_options[0].notice_number.clone();
        let invalid = d.invalidate(&position.name).await.expect("invalidated");
        assert_eq!(invalid.state, State::Invalid as i32, "{}", t.label);
        assert_ne!(invalid.etag, position.etag);

        let err = d
            .pay(&notice, PSP_A, "r", 11_550)
            .await
            .expect_err("invalid");
        assert_eq!(
            reason_and_why(&err),
            (
                "NOTICE_NOT_PAYABLE".to_owned(),
                Some("INVALIDATED".to_owned())
            )
        );
        assert_eq!(
            d.verify(&notice).await.expect("verified").status,
            pb::NoticeStatus::Invalid as i32
        );
        let err = d.invalidate(&position.name).await.expect_err("twice");
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(reason_and_why(&err).0, "INVALID_STATE_TRANSITION");
        assert_eq!(receipts(&t).await, 0, "{}", t.label);
    }
}

/// DOMAIN.md "Payments": paid positions cannot be updated; invalidation only from PUBLISHED
/// or VALID.
#[tokio::test]
async fn a_paid_position_cannot_be_invalidated() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let position = d.create(in_full()).await;
        let notice = position.payment_options[0].notice_number.clone();
        d.pay(&notice, PSP_A, "r", 11_550).await.expect("paid");
        let before = d.get(&position.name).await;
        let err = d.invalidate(&position.name).await.expect_err("paid");
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", t.label);
        let info = error_info(&err).expect("ErrorInfo");
        assert_eq!(info.reason, "INVALID_STATE_TRANSITION");
        assert_eq!(info.metadata.get("from").map(String::as_str), Some("PAID"));
        assert_eq!(
            d.get(&position.name).await,
            before,
            "{}: unchanged",
            t.label
        );
    }
}

/// DOMAIN.md "Payments" (state PUBLISHED): with a future validity date the position is
/// PUBLISHED and cannot be paid until that date, then VALID.
#[tokio::test]
async fn a_published_position_is_payable_from_its_validity_date() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let mut draft = in_full();
        draft.validity_date = Some(date(2026, 2, 1));
        let position = d.create(draft).await;
        assert_eq!(position.state, State::Published as i32, "{}", t.label);
        assert_eq!(position.validity_date, Some(date(2026, 2, 1)));
        let notice = position.payment_options[0].notice_number.clone();
        let err = d
            .pay(&notice, PSP_A, "early", 11_550)
            .await
            .expect_err("early");
        assert_eq!(
            reason_and_why(&err),
            (
                "NOTICE_NOT_PAYABLE".to_owned(),
                Some("NOT_YET_VALID".to_owned())
            )
        );
        // 1 February 2026, 00:30 in Italy (23:30 UTC on 31 January).
        d.set(1_769_902_200_000_000);
        assert_eq!(d.get(&position.name).await.state, State::Valid as i32);
        d.pay(&notice, PSP_A, "on-time", 11_550)
            .await
            .expect("paid");
    }
}

/// DOMAIN.md "Payments": keep "well-formed" and "check digits valid" apart; an unknown notice
/// is NOT_FOUND.
#[tokio::test]
async fn malformed_and_bad_check_notice_numbers_are_told_apart() {
    for t in testing::all().await {
        let d = desk(&t).await;
        for (number, reason) in [
            ("30120230000000014", "NOTICE_NUMBER_MALFORMED"),
            ("30120230000000014X", "NOTICE_NUMBER_MALFORMED"),
            ("001202300000000148", "NOTICE_NUMBER_MALFORMED"),
            ("301202300000000149", "NOTICE_NUMBER_CHECK_DIGITS"),
        ] {
            let err = d.verify(number).await.expect_err(number);
            assert_eq!(err.code(), Code::InvalidArgument, "{}: {number}", t.label);
            assert_eq!(
                reason_and_field(&err),
                (reason.to_owned(), Some("name".to_owned())),
                "{number}"
            );
            let err = d.pay(number, PSP_A, "r", 100).await.expect_err(number);
            assert_eq!(reason_and_field(&err).0, reason, "{number}");
        }
        // DOMAIN.md's example notice: valid, but never issued here.
        let err = d.verify("301202300000000148").await.expect_err("unknown");
        assert_eq!(err.code(), Code::NotFound, "{}", t.label);
        let err = d
            .pay("301202300000000148", PSP_A, "r", 100)
            .await
            .expect_err("unknown");
        assert_eq!(err.code(), Code::NotFound);
    }
}

/// AIP-4222 (DOMAIN.md "API style"): the notice's comune must be the routed one and one this
/// node serves; nothing is written otherwise.
#[tokio::test]
async fn routing_mismatch_and_comune_not_served() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let position = d.create(in_full()).await;
        let notice = position.payment_options[0].notice_number.clone();

        let mut request = routed(SARZANA, receipt(&notice, PSP_A, "r", 11_550, ""));
        request.metadata_mut().insert(
            ROUTING_HEADER,
            format!("comune=comuni%2F{ARCOLA}").parse().expect("ascii"),
        );
        let err = d.psp.send_receipt(request).await.expect_err("mismatch");
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", t.label);
        assert_eq!(
            reason_and_field(&err),
            ("ROUTING_MISMATCH".to_owned(), Some("notice".to_owned()))
        );

        let unrouted = Request::new(pb::VerifyNoticeRequest {
            name: notice_name(&notice),
        });
        let err = d.psp.verify_notice(unrouted).await.expect_err("no header");
        assert_eq!(reason_and_field(&err).0, "ROUTING_HEADER_MISSING");

        let err = d
            .psp
            .verify_notice(routed(
                LUNI,
                pb::VerifyNoticeRequest {
                    name: format!("comuni/{LUNI}/notices/{notice}"),
                },
            ))
            .await
            .expect_err("not served");
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(reason_and_field(&err).0, "COMUNE_NOT_SERVED");

        // Arcola is served, but the notice is Sarzana's: not found under Arcola.
        let err = d
            .psp
            .verify_notice(routed(
                ARCOLA,
                pb::VerifyNoticeRequest {
                    name: format!("comuni/{ARCOLA}/notices/{notice}"),
                },
            ))
            .await
            .expect_err("another comune's notice");
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(receipts(&t).await, 0, "{}", t.label);
    }
}

/// AIP-155 (DOMAIN.md "Idempotency keys"): 100 concurrent creates under one request id give
/// one position; the others replay it or are told it is in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_with_one_request_id_give_one_position() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let api = d.positions.clone();
                tokio::spawn(async move {
                    api.create_debt_position(routed(
                        SARZANA,
                        pb::CreateDebtPositionRequest {
                            parent: format!("comuni/{SARZANA}"),
                            debt_position: Some(in_full()),
                            request_id: "one-request".to_owned(),
                        },
                    ))
                    .await
                    .map(tonic::Response::into_inner)
                })
            })
            .collect();
        let mut names = std::collections::BTreeSet::new();
        for task in tasks {
            match task.await.expect("the task ran") {
                Ok(p) => {
                    names.insert(p.name);
                }
                Err(err) => {
                    assert_eq!(err.code(), Code::Aborted, "{}: {err:?}", t.label);
                    assert_eq!(reason_and_field(&err).0, "REQUEST_IN_FLIGHT");
                }
            }
        }
        assert_eq!(names.len(), 1, "{}", t.label);
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM payments_debt_positions").await,
            1,
            "{}",
            t.label
        );
    }
}

/// A request routed to Sarzana, made by the citizen whose codice fiscale is `cf`, as the
/// gateway sends it.
fn by_citizen<T>(cf: &str, message: T) -> Request<T> {
    let mut request = routed(SARZANA, message);
    request.extensions_mut().insert(Principal {
        sub: format!("cit-{cf}"),
        role: Role::Citizen,
        comuni: Vec::new(),
        fiscal_number: Some(cf.to_owned()),
        gateway: "gw-1".to_owned(),
    });
    request
}

/// Issue 8: a citizen sees the positions where they are the debtor, finds the receipt of a
/// paid notice and downloads it; another debtor's position, notice or receipt is NOT_FOUND,
/// exactly as a missing one, whatever name they pass. Creating, invalidating and the
/// provider's own calls are never a citizen's (PERMISSION_DENIED, ROLE_NOT_ALLOWED).
#[tokio::test]
async fn a_citizen_reads_their_own_positions_and_receipts_only() {
    const OTHER: &str = "BNCNNA82B42I449T";
    for t in testing::all().await {
        let l = t.label;
        let desk = desk(&t).await;
        let mine = desk.create(in_full()).await;
        let mut theirs = in_full();
        theirs.debtor_fiscal_code = OTHER.to_owned();
        let theirs = desk.create(theirs).await;
        let my_notice = mine.payment_options[0].notice_number.clone();
        let their_notice = theirs.payment_options[0].notice_number.clone();
        desk.pay(&my_notice, PSP_A, "r-mine", 11_550)
            .await
            .expect("paid by the provider");
        desk.pay(&their_notice, PSP_A, "r-theirs", 11_550)
            .await
            .expect("paid by the provider");

        let list = |cf: &str, size: i32, token: String| {
            desk.positions.list_debt_positions(by_citizen(
                cf,
                pb::ListDebtPositionsRequest {
                    parent: format!("comuni/{SARZANA}"),
                    page_size: size,
                    page_token: token,
                },
            ))
        };
        let page = list(DEBTOR, 0, String::new())
            .await
            .expect("their positions")
            .into_inner();
        assert_eq!(
            page.debt_positions
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            vec![mine.name.as_str()],
            "{l}: only the positions where they are the debtor"
        );
        assert_eq!(page.debt_positions[0].state, State::Paid as i32, "{l}");
        // Newest first, a page at a time, still only theirs.
        desk.set(JAN_10 + MINUTE);
        let newer = desk.create(in_full()).await;
        let first = list(DEBTOR, 1, String::new())
            .await
            .expect("a first page")
            .into_inner();
        assert_eq!(first.debt_positions[0].name, newer.name, "{l}");
        let second = list(DEBTOR, 1, first.next_page_token.clone())
            .await
            .expect("a second page")
            .into_inner();
        assert_eq!(second.debt_positions.len(), 1, "{l}");
        assert_eq!(second.debt_positions[0].name, mine.name, "{l}");
        assert!(second.next_page_token.is_empty(), "{l}");
        let err = list(OTHER, 1, first.next_page_token)
            .await
            .expect_err("another citizen's page token");
        assert_eq!(err.code(), Code::InvalidArgument, "{l}");

        let get = |cf: &str, name: &str| {
            desk.positions.get_debt_position(by_citizen(
                cf,
                pb::GetDebtPositionRequest {
                    name: name.to_owned(),
                },
            ))
        };
        get(DEBTOR, &mine.name).await.expect("their own position");
        let err = get(DEBTOR, &theirs.name)
            .await
            .expect_err("another debtor's position");
        assert_eq!(
            reason_and_field(&err),
            ("RESOURCE_NOT_FOUND".to_owned(), Some("name".to_owned())),
            "{l}"
        );

        let receipts_of = |cf: &str, notice: &str| {
            desk.psp.list_receipts(by_citizen(
                cf,
                pb::ListReceiptsRequest {
                    parent: notice_name(notice),
                    page_size: 0,
                    page_token: String::new(),
                },
            ))
        };
        let found = receipts_of(DEBTOR, &my_notice)
            .await
            .expect("the receipts of their notice")
            .into_inner();
        assert_eq!(found.receipts.len(), 1, "{l}");
        let name = found.receipts[0].name.clone();
        assert_eq!(
            name,
            format!("{}/receipts/r-mine", notice_name(&my_notice)),
            "{l}"
        );
        assert_eq!(found.receipts[0].debt_position, mine.name, "{l}");
        let unpaid = receipts_of(DEBTOR, &newer.payment_options[0].notice_number)
            .await
            .expect("an unpaid notice of theirs")
            .into_inner();
        assert!(unpaid.receipts.is_empty(), "{l}: nothing paid yet");
        let err = receipts_of(DEBTOR, &their_notice)
            .await
            .expect_err("another debtor's notice");
        assert_eq!(err.code(), Code::NotFound, "{l}");

        let download = |cf: &str, name: &str| {
            desk.psp.get_receipt(by_citizen(
                cf,
                pb::GetReceiptRequest {
                    name: name.to_owned(),
                },
            ))
        };
        let sealed = download(DEBTOR, &name)
            .await
            .expect("their own receipt")
            .into_inner();
        assert!(
            receipt::verify(&sealed.document, &sealed.sha256),
            "{l}: the seal checks"
        );
        let their_receipt = format!("{}/receipts/r-theirs", notice_name(&their_notice));
        let err = download(DEBTOR, &their_receipt)
            .await
            .expect_err("another debtor's receipt");
        let missing = download(
            DEBTOR,
            &format!("{}/receipts/r-none", notice_name(&their_notice)),
        )
        .await
        .expect_err("a missing receipt");
        assert_eq!(
            (err.code(), reason_and_field(&err)),
            (missing.code(), reason_and_field(&missing)),
            "{l}: another's receipt reads as a missing one"
        );

        let before = count(&t, "SELECT COUNT(*) FROM payments_debt_positions").await;
        let err = desk
            .positions
            .create_debt_position(by_citizen(
                DEBTOR,
                pb::CreateDebtPositionRequest {
                    parent: format!("comuni/{SARZANA}"),
                    debt_position: Some(in_full()),
                    request_id: String::new(),
                },
            ))
            .await
            .expect_err("a citizen creates no position");
        assert_eq!(reason_and_field(&err).0, "ROLE_NOT_ALLOWED", "{l}");
        let err = desk
            .psp
            .send_receipt(by_citizen(
                DEBTOR,
                receipt(
                    &newer.payment_options[0].notice_number,
                    PSP_B,
                    "r-self",
                    11_550,
                    "",
                ),
            ))
            .await
            .expect_err("a citizen is no payment provider");
        assert_eq!(
            (err.code(), reason_and_field(&err).0),
            (Code::PermissionDenied, "ROLE_NOT_ALLOWED".to_owned()),
            "{l}"
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM payments_debt_positions").await,
            before,
            "{l}: nothing written"
        );
        assert_eq!(receipts(&t).await, 2, "{l}: nothing paid");
    }
}
