//! PaymentStatisticsService over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL, against figures computed by hand. Positions are created, paid and invalidated
//! through DebtPositionService and PaymentProviderService on a clock the test moves (DOMAIN.md
//! "Payments": options in full or by installments, each with its due date; receipts carry the
//! time the debtor paid). Days are Italian calendar days (Europe/Rome).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::NaiveDate;
use tonic::{Code, Request};
use unione_kit::error::reason_and_field;
use unione_kit::names::routed;
use unione_kit::principal::Principal;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_kit::{ComuneProfile, Istat, Served};
use unione_payments::{Clock, DebtPositionApi, PaymentProviderApi, StatisticsApi};
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::debt_position_service_server::DebtPositionService;
use unione_proto::payments::v1::payment_provider_service_server::PaymentProviderService;
use unione_proto::payments::v1::payment_statistics_service_server::PaymentStatisticsService;

const SARZANA: &str = "011027";
const ARCOLA: &str = "011002";
const LUNI: &str = "011020";
const CREDITOR_CF: &str = "00110270113";
const DEBTOR: &str = "RCCMNL83S18D969H";
const IBAN: &str = "IT60X0542811101000000123456";
const PSP: &str = "PSPAITMM";

/// Microseconds of `h:m` UTC on a day of 2026.
fn utc(m: u32, d: u32, h: u32, min: u32) -> i64 {
    NaiveDate::from_ymd_opt(2026, m, d)
        .and_then(|day| day.and_hms_opt(h, min, 0))
        .expect("a real instant")
        .and_utc()
        .timestamp_micros()
}

/// 09:00 UTC (10:00 or 11:00 in Italy: the same calendar day).
fn morning(m: u32, d: u32) -> i64 {
    utc(m, d, 9, 0)
}

fn day(m: i32, d: i32) -> Option<Date> {
    Some(Date {
        year: 2026,
        month: m,
        day: d,
    })
}

fn profile(istat: &str, name: &str, segregation_code: &str) -> ComuneProfile {
    ComuneProfile {
        istat: Istat::parse(istat).expect("a six-digit code"),
        name: name.to_owned(),
        fiscal_code: CREDITOR_CF.to_owned(),
        cadastral_code: "I449".to_owned(),
        segregation_code: segregation_code.to_owned(),
        ipa_code: format!("c_{istat}"),
        population: 20_000,
    }
}

/// The payments desk of Sarzana and Arcola (not Luni), on a clock the test moves.
struct Desk {
    positions: DebtPositionApi,
    psp: PaymentProviderApi,
    statistics: StatisticsApi,
    now: Arc<AtomicI64>,
}

async fn desk(t: &TestDatabase) -> Desk {
    t.db.migrate(&unione_payments::migrations())
        .await
        .expect("payments migrations apply");
    let now = Arc::new(AtomicI64::new(morning(1, 10)));
    let read = Arc::clone(&now);
    let clock = Clock::from_fn(move || read.load(Ordering::SeqCst));
    let served = Served::new([
        profile(SARZANA, "Sarzana", "01"),
        profile(ARCOLA, "Arcola", "02"),
    ]);
    Desk {
        positions: DebtPositionApi::with_clock(t.db.clone(), served.clone(), clock.clone()),
        psp: PaymentProviderApi::with_clock(t.db.clone(), served.clone(), clock),
        statistics: StatisticsApi::new(t.db.clone(), served),
        now,
    }
}

/// An option of `euros`, due on `due` (month, day).
fn option(euros: i64, installment: bool, due: (i32, i32)) -> pb::PaymentOption {
    pb::PaymentOption {
        amount_cents: euros * 100,
        due_date: day(due.0, due.1),
        installment,
        transfers: vec![pb::Transfer {
            creditor_fiscal_code: CREDITOR_CF.to_owned(),
            iban: IBAN.to_owned(),
            amount_cents: euros * 100,
            remittance_information: "TARI 2026".to_owned(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

impl Desk {
    /// Creates a position of `istat` with `options`; returns it (its notices in order).
    async fn create(&self, istat: &str, options: Vec<pb::PaymentOption>) -> pb::DebtPosition {
        self.positions
            .create_debt_position(routed(
                istat,
                pb::CreateDebtPositionRequest {
                    parent: format!("comuni/{istat}"),
                    debt_position: Some(pb::DebtPosition {
                        debtor_fiscal_code: DEBTOR.to_owned(),
                        description: "TARI 2026".to_owned(),
                        payment_options: options,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("created")
            .into_inner()
    }

    /// Pays option `index` of `position` with a receipt received at `received` that says
    /// the debtor paid at `paid_at`.
    async fn pay(
        &self,
        istat: &str,
        position: &pb::DebtPosition,
        index: usize,
        received: i64,
        paid_at: i64,
    ) {
        self.now.store(received, Ordering::SeqCst);
        let option = &position.payment_options[index];
        self.psp
            .send_receipt(routed(
                istat,
                pb::SendReceiptRequest {
                    notice: format!("comuni/{istat}/notices/{}", option.notice_number),
                    psp_id: PSP.to_owned(),
                    receipt_id: format!("R-{}", option.iuv),
                    amount_cents: option.amount_cents,
                    payment_time: Some(prost_types::Timestamp {
                        seconds: paid_at / 1_000_000,
                        nanos: 0,
                    }),
                    activation_id: String::new(),
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("option {index} of {} is paid: {e:?}", position.name));
    }

    async fn ask(
        &self,
        request: Request<pb::GetCollectionStatisticsRequest>,
    ) -> Result<pb::CollectionStatistics, tonic::Status> {
        self.statistics
            .get_collection_statistics(request)
            .await
            .map(tonic::Response::into_inner)
    }
}

fn request(
    istat: &str,
    start: Option<Date>,
    end: Option<Date>,
) -> pb::GetCollectionStatisticsRequest {
    pb::GetCollectionStatisticsRequest {
        parent: format!("comuni/{istat}"),
        start_date: start,
        end_date: end,
    }
}

/// A request routed to `istat`, made by an operator of it.
fn as_operator<T>(istat: &str, message: T) -> Request<T> {
    let mut request = routed(istat, message);
    request.extensions_mut().insert(Principal {
        sub: "op-1".to_owned(),
        role: Role::Operator,
        comuni: vec![istat.to_owned()],
        fiscal_number: None,
        gateway: "gw-1".to_owned(),
    });
    request
}

/// Seeds Sarzana's positions (and one of Arcola's), created on 10 January 2026:
/// - P1 100.00 in full due 15 Mar, paid 10 Mar: on time.
/// - P2 200.00 in full due 31 Mar, paid at 23:30 in Italy on 31 Mar (21:30 UTC): on time.
/// - P3 300.00 in full due 31 Mar, paid at 00:10 in Italy on 1 Apr (22:10 UTC on 31 Mar):
///   late (the desk took the receipt at 23:00 on 31 Mar, when the notice was still payable;
///   the receipt's payment time is what counts).
/// - P4 400.00 in full due 20 Mar and P5 500.00 due 1 Mar: unpaid.
/// - P6 600.00 due 28 Feb and P7 700.00 due 1 Apr: outside March.
/// - P8 800.00 due 25 Mar: invalidated.
/// - P9 600.00 in full or 300.00 + 300.00 (10 Mar, 10 Apr), the first installment paid 5 Mar:
///   the installments count, so March holds 300.00 paid on time.
/// - P10 1,000.00 in full or 500.00 + 500.00 (20 Mar, 20 Apr), nothing paid: the option in
///   full counts, 1,000.00 unpaid.
/// - P11 700.00 in full or 350.00 + 350.00 (12 Mar, 12 Apr), paid in full 11 Mar: 700.00 on
///   time.
/// - P12 three installments of 250.00 (15 Feb, 15 Mar, 15 Apr), the first two paid 10 Feb and
///   14 Mar: March holds the second, on time.
/// - Arcola's 900.00 due 15 Mar, paid: never in Sarzana's figures.
async fn seed(d: &Desk) {
    let s = SARZANA;
    let full = |euros, due| vec![option(euros, false, due)];
    let p1 = d.create(s, full(100, (3, 15))).await;
    let p2 = d.create(s, full(200, (3, 31))).await;
    let p3 = d.create(s, full(300, (3, 31))).await;
    d.create(s, full(400, (3, 20))).await;
    d.create(s, full(500, (3, 1))).await;
    d.create(s, full(600, (2, 28))).await;
    d.create(s, full(700, (4, 1))).await;
    let p8 = d.create(s, full(800, (3, 25))).await;
    let plan = |euros, first: (i32, i32), second: (i32, i32)| {
        vec![
            option(euros, false, first),
            option(euros / 2, true, first),
            option(euros / 2, true, second),
        ]
    };
    let p9 = d.create(s, plan(600, (3, 10), (4, 10))).await;
    d.create(s, plan(1_000, (3, 20), (4, 20))).await;
    let p11 = d.create(s, plan(700, (3, 12), (4, 12))).await;
    let p12 = d
        .create(
            s,
            vec![
                option(250, true, (2, 15)),
                option(250, true, (3, 15)),
                option(250, true, (4, 15)),
            ],
        )
        .await;
    let arcola = d.create(ARCOLA, full(900, (3, 15))).await;

    d.positions
        .invalidate_debt_position(routed(
            s,
            pb::InvalidateDebtPositionRequest {
                name: p8.name.clone(),
                etag: String::new(),
            },
        ))
        .await
        .expect("P8 is invalidated");
    d.pay(s, &p12, 0, morning(2, 10), morning(2, 10)).await;
    d.pay(s, &p9, 1, morning(3, 5), morning(3, 5)).await;
    d.pay(s, &p1, 0, morning(3, 10), morning(3, 10)).await;
    d.pay(s, &p11, 0, morning(3, 11), morning(3, 11)).await;
    d.pay(s, &p12, 1, morning(3, 14), morning(3, 14)).await;
    d.pay(ARCOLA, &arcola, 0, morning(3, 14), morning(3, 14))
        .await;
    d.pay(s, &p2, 0, utc(3, 31, 21, 0), utc(3, 31, 21, 30))
        .await;
    d.pay(s, &p3, 0, utc(3, 31, 21, 0), utc(3, 31, 22, 10))
        .await;
}

/// DOMAIN.md "Payments": the options falling due in March 2026, each debt counted once (the
/// plan the debtor took), paid on time when the Italian day of the payment is on or before
/// the due date, the amounts in cents, and the options of an invalidated position apart.
#[tokio::test]
async fn collection_figures_match_the_hand_computed_table() {
    for t in testing::all().await {
        let l = t.label;
        let d = desk(&t).await;
        seed(&d).await;
        let march = d
            .ask(as_operator(
                SARZANA,
                request(SARZANA, day(3, 1), day(3, 31)),
            ))
            .await
            .unwrap_or_else(|e| panic!("{l}: {e:?}"));
        assert_eq!(
            march,
            pb::CollectionStatistics {
                // P1, P2, P3, P4, P5, P9's first installment, P10 in full, P11 in full, P12's
                // second installment.
                due_count: 9,
                // P1, P2, P9, P11, P12 (P3 was paid on 1 April in Italy).
                paid_on_time_count: 5,
                paid_count: 6,
                due_amount_cents: 375_000,
                // 100 + 200 + 300 + 300 + 700 + 250 euros.
                collected_amount_cents: 185_000,
                // P8.
                invalidated_count: 1,
            },
            "{l}: March"
        );

        // April: P7 (700, unpaid), P9's second installment (300, unpaid), P12's third (250,
        // unpaid); P10's and P11's April installments do not count: those debts count by
        // their options in full, due in March.
        let april = d
            .ask(as_operator(
                SARZANA,
                request(SARZANA, day(4, 1), day(4, 30)),
            ))
            .await
            .unwrap_or_else(|e| panic!("{l}: {e:?}"));
        assert_eq!(
            april,
            pb::CollectionStatistics {
                due_count: 3,
                due_amount_cents: 125_000,
                ..Default::default()
            },
            "{l}: April"
        );

        // One day, the last of March: P2 on time, P3 late.
        let last_day = d
            .ask(as_operator(
                SARZANA,
                request(SARZANA, day(3, 31), day(3, 31)),
            ))
            .await
            .unwrap_or_else(|e| panic!("{l}: {e:?}"));
        assert_eq!(
            (
                last_day.due_count,
                last_day.paid_count,
                last_day.paid_on_time_count
            ),
            (2, 2, 1),
            "{l}: 31 March"
        );

        // Arcola's figures hold its own position only.
        let arcola = d
            .ask(as_operator(ARCOLA, request(ARCOLA, day(3, 1), day(3, 31))))
            .await
            .unwrap_or_else(|e| panic!("{l}: {e:?}"));
        assert_eq!(
            (arcola.due_count, arcola.collected_amount_cents),
            (1, 90_000),
            "{l}: Arcola"
        );
    }
}

/// Bad input is refused with the field at fault (INVALID_ARGUMENT), a comune not served here
/// or not the routed one with FAILED_PRECONDITION, a citizen with PERMISSION_DENIED; nothing
/// is written.
#[tokio::test]
async fn bad_requests_are_refused_with_the_field() {
    for t in testing::all().await {
        let l = t.label;
        let d = desk(&t).await;
        seed(&d).await;
        let rows = "SELECT COUNT(*) FROM payments_receipts";
        let before: i64 = sqlx::query_scalar(rows)
            .fetch_one(t.db.pool())
            .await
            .expect("counts");
        let refusals = [
            (
                "no start date",
                SARZANA,
                request(SARZANA, None, day(3, 31)),
                Code::InvalidArgument,
                "FIELD_REQUIRED",
                Some("start_date"),
            ),
            (
                "no end date",
                SARZANA,
                request(SARZANA, day(3, 1), None),
                Code::InvalidArgument,
                "FIELD_REQUIRED",
                Some("end_date"),
            ),
            (
                "30 February",
                SARZANA,
                request(SARZANA, day(2, 30), day(3, 31)),
                Code::InvalidArgument,
                "INVALID_DATE",
                Some("start_date"),
            ),
            (
                "end before start",
                SARZANA,
                request(SARZANA, day(3, 31), day(3, 1)),
                Code::InvalidArgument,
                "INVALID_DATE_RANGE",
                Some("end_date"),
            ),
            (
                "367 days",
                SARZANA,
                request(
                    SARZANA,
                    day(1, 1),
                    Some(Date {
                        year: 2027,
                        month: 1,
                        day: 3,
                    }),
                ),
                Code::InvalidArgument,
                "DATE_RANGE_TOO_LONG",
                Some("end_date"),
            ),
            (
                "Luni, not served here",
                LUNI,
                request(LUNI, day(3, 1), day(3, 31)),
                Code::FailedPrecondition,
                "COMUNE_NOT_SERVED",
                Some("parent"),
            ),
            (
                "routed to Sarzana, asking for Arcola",
                SARZANA,
                request(ARCOLA, day(3, 1), day(3, 31)),
                Code::FailedPrecondition,
                "ROUTING_MISMATCH",
                Some("parent"),
            ),
        ];
        for (label, routed_to, message, code, reason, field) in refusals {
            let status = d
                .ask(as_operator(routed_to, message))
                .await
                .expect_err(label);
            assert_eq!(status.code(), code, "{l}: {label}: {status:?}");
            let (got_reason, got_field) = reason_and_field(&status);
            assert_eq!(
                (got_reason.as_str(), got_field.as_deref()),
                (reason, field),
                "{l}: {label}"
            );
        }
        let mut citizen = as_operator(SARZANA, request(SARZANA, day(3, 1), day(3, 31)));
        citizen.extensions_mut().insert(Principal {
            sub: "cit-1".to_owned(),
            role: Role::Citizen,
            comuni: Vec::new(),
            fiscal_number: Some(DEBTOR.to_owned()),
            gateway: "gw-1".to_owned(),
        });
        let status = d.ask(citizen).await.expect_err("a citizen is refused");
        assert_eq!(status.code(), Code::PermissionDenied, "{l}: {status:?}");
        assert_eq!(reason_and_field(&status).0, "ROLE_NOT_ALLOWED", "{l}");
        let after: i64 = sqlx::query_scalar(rows)
            .fetch_one(t.db.pool())
            .await
            .expect("counts");
        assert_eq!(after, before, "{l}: nothing changed");
    }
}
