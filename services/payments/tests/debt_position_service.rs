//! DebtPositionService handlers over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL. The handlers are called directly, with the routing header the gateway sets.

use std::collections::BTreeSet;

use tonic::{Code, Request};
use unione_kit::error::reason_and_field;
use unione_kit::names::{ROUTING_HEADER, routed};
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::{ComuneProfile, Istat, Served};
use unione_payments::domain::notice::{self, validate_notice_number};
use unione_payments::{Clock, DebtPositionApi};
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::debt_position_service_server::DebtPositionService;

const SARZANA: &str = "011027";
const ARCOLA: &str = "011002";
const LUNI: &str = "011020";

/// The debtor: DOMAIN.md's codice fiscale example with its check letter.
const DEBTOR: &str = "RCCMNL83S18D969H";
/// Creditor bodies (11-digit fiscal codes, Luhn check digit).
const SARZANA_CF: &str = "00110270113";
const PROVINCE_CF: &str = "00743110157";
/// Valid Italian IBANs.
const IBAN_A: &str = "IT60X0542811101000000123456";
const IBAN_B: &str = "IT63X0306909606100000063137";

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

/// This node runs the payments desk of Sarzana (segregation code 01) and Arcola (02), not Luni.
fn served() -> Served {
    Served::new([
        profile(SARZANA, "Sarzana", "01"),
        profile(ARCOLA, "Arcola", "02"),
    ])
}

/// 10 January 2026, 10:00 UTC: before every due date of these tests (30 September 2026).
const NOW: i64 = 1_768_039_200_000_000;

async fn api(t: &TestDatabase) -> DebtPositionApi {
    t.db.migrate(&unione_payments::migrations())
        .await
        .expect("payments migrations apply");
    DebtPositionApi::with_clock(t.db.clone(), served(), Clock::from_fn(|| NOW))
}

fn transfer(creditor: &str, iban: &str, cents: i64) -> pb::Transfer {
    pb::Transfer {
        creditor_fiscal_code: creditor.to_owned(),
        iban: iban.to_owned(),
        amount_cents: cents,
        remittance_information: "TARI 2026".to_owned(),
        ..Default::default()
    }
}

fn option(cents: i64, installment: bool, transfers: Vec<pb::Transfer>) -> pb::PaymentOption {
    pb::PaymentOption {
        amount_cents: cents,
        due_date: Some(Date {
            year: 2026,
            month: 9,
            day: 30,
        }),
        installment,
        transfers,
        ..Default::default()
    }
}

/// Payment in full, multi-beneficiary: 100.00 to the comune and 15.50 to another body.
fn in_full() -> pb::DebtPosition {
    pb::DebtPosition {
        debtor_fiscal_code: DEBTOR.to_owned(),
        description: "TARI 2026 - rata unica".to_owned(),
        payment_options: vec![option(
            11_550,
            false,
            vec![
                transfer(SARZANA_CF, IBAN_A, 10_000),
                transfer(PROVINCE_CF, IBAN_B, 1_550),
            ],
        )],
        ..Default::default()
    }
}

/// `n` installments of 50.00 each.
fn installments(n: usize) -> pb::DebtPosition {
    pb::DebtPosition {
        debtor_fiscal_code: "00743110157".to_owned(),
        description: "Canone unico 2026 - rate".to_owned(),
        payment_options: (0..n)
            .map(|_| option(5_000, true, vec![transfer(SARZANA_CF, IBAN_A, 5_000)]))
            .collect(),
        ..Default::default()
    }
}

fn create(
    istat: &str,
    position: pb::DebtPosition,
    request_id: &str,
) -> Request<pb::CreateDebtPositionRequest> {
    routed(
        istat,
        pb::CreateDebtPositionRequest {
            parent: format!("comuni/{istat}"),
            debt_position: Some(position),
            request_id: request_id.to_owned(),
        },
    )
}

fn list(istat: &str, page_size: i32, page_token: &str) -> Request<pb::ListDebtPositionsRequest> {
    routed(
        istat,
        pb::ListDebtPositionsRequest {
            parent: format!("comuni/{istat}"),
            page_size,
            page_token: page_token.to_owned(),
        },
    )
}

fn get(istat: &str, name: &str) -> Request<pb::GetDebtPositionRequest> {
    routed(
        istat,
        pb::GetDebtPositionRequest {
            name: name.to_owned(),
        },
    )
}

/// Rows in every payments table, and the idempotency keys.
async fn counts(t: &TestDatabase) -> [i64; 5] {
    let mut out = [0; 5];
    for (slot, sql) in out.iter_mut().zip([
        "SELECT COUNT(*) FROM payments_debt_positions",
        "SELECT COUNT(*) FROM payments_payment_options",
        "SELECT COUNT(*) FROM payments_transfers",
        "SELECT COUNT(*) FROM payments_iuv_sequences",
        "SELECT COUNT(*) FROM idempotency_keys",
    ]) {
        *slot = sqlx::query_scalar(sql)
            .fetch_one(t.db.pool())
            .await
            .expect("count");
    }
    out
}

/// The sequence number inside an IUV: the 9 digits after segregation code and year.
fn sequence_of(iuv: &str) -> i64 {
    iuv[6..15].parse().expect("9 digits")
}

/// AIP-132/158 and AIP-122: create, get and list newest first across pages; each comune sees
/// only its own positions; a page token only works for the parent it was issued for.
#[tokio::test]
async fn create_get_and_list_across_pages() {
    for t in testing::all().await {
        let api = api(&t).await;
        let mut created = Vec::new();
        for i in 0..7 {
            let position = if i % 3 == 0 {
                installments(2)
            } else {
                in_full()
            };
            let p = api
                .create_debt_position(create(SARZANA, position, ""))
                .await
                .expect("created")
                .into_inner();
            created.push(p);
        }
        let arcola = api
            .create_debt_position(create(ARCOLA, in_full(), ""))
            .await
            .expect("created")
            .into_inner();

        // What was created comes back, with the output-only fields set.
        let first = &created[0];
        assert!(first.name.starts_with("comuni/011027/debtPositions/"));
        assert_eq!(first.state, pb::debt_position::State::Valid as i32);
        assert!(first.create_time.is_some() && !first.etag.is_empty());
        assert_eq!(first.payment_options.len(), 2);
        assert_eq!(first.payment_options[0].transfers[0].index, 1);
        let got = api
            .get_debt_position(get(SARZANA, &first.name))
            .await
            .expect("found")
            .into_inner();
        assert_eq!(&got, first, "{}", t.label);
        let in_full_got = api
            .get_debt_position(get(SARZANA, &created[1].name))
            .await
            .expect("found")
            .into_inner();
        assert_eq!(in_full_got, created[1], "{}", t.label);
        assert_eq!(
            in_full_got.payment_options[0]
                .transfers
                .iter()
                .map(|t| (t.index, t.amount_cents))
                .collect::<Vec<_>>(),
            vec![(1, 10_000), (2, 1_550)]
        );

        // Newest first: create_time descending, then id descending.
        let mut expected = created.clone();
        expected.sort_by(|a, b| {
            let key = |p: &pb::DebtPosition| {
                let ts = p.create_time.expect("set");
                (ts.seconds, ts.nanos, p.name.clone())
            };
            key(b).cmp(&key(a))
        });
        let mut listed = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = api
                .list_debt_positions(list(SARZANA, 3, &token))
                .await
                .expect("listed")
                .into_inner();
            pages += 1;
            assert!(page.debt_positions.len() <= 3);
            listed.extend(page.debt_positions);
            if page.next_page_token.is_empty() {
                break;
            }
            // A token is bound to its parent.
            let (reason, field) = reason_and_field(
                &api.list_debt_positions(list(ARCOLA, 3, &page.next_page_token))
                    .await
                    .expect_err("another parent"),
            );
            assert_eq!(
                (reason.as_str(), field.as_deref()),
                ("INVALID_PAGE_TOKEN", Some("page_token"))
            );
            token = page.next_page_token;
        }
        assert_eq!(pages, 3, "{}", t.label);
        assert_eq!(listed, expected, "{}", t.label);

        // Each comune apart: Arcola lists only its own, and cannot be read through Sarzana.
        let arcola_list = api
            .list_debt_positions(list(ARCOLA, 0, ""))
            .await
            .expect("listed")
            .into_inner();
        assert_eq!(arcola_list.debt_positions, vec![arcola.clone()]);
        assert!(arcola_list.next_page_token.is_empty());
        let id = arcola.name.rsplit('/').next().expect("an id");
        let err = api
            .get_debt_position(get(
                SARZANA,
                &format!("comuni/{SARZANA}/debtPositions/{id}"),
            ))
            .await
            .expect_err("not Sarzana's");
        assert_eq!(err.code(), Code::NotFound, "{}", t.label);
        assert_eq!(reason_and_field(&err).0, "RESOURCE_NOT_FOUND");
        let err = api
            .get_debt_position(get(SARZANA, "comuni/011027/residents/x"))
            .await
            .expect_err("not a position name");
        assert_eq!(
            reason_and_field(&err),
            ("INVALID_RESOURCE_NAME".to_owned(), Some("name".to_owned()))
        );
    }
}

/// DOMAIN.md "Payments": each option has its own notice number = aux digit 3 + IUV, the IUV
/// being segregation code, base (year and sequence) and check digits mod 93. IUVs are unique
/// per creditor and drawn in sequence, per comune.
#[tokio::test]
async fn iuvs_are_unique_sequential_and_check() {
    for t in testing::all().await {
        let api = api(&t).await;
        let year =
            notice::iuv_year(chrono::DateTime::from_timestamp_micros(NOW).expect("an instant"));
        let mut iuvs = Vec::new();
        for position in [in_full(), installments(3), in_full()] {
            let p = api
                .create_debt_position(create(SARZANA, position, ""))
                .await
                .expect("created")
                .into_inner();
            for o in &p.payment_options {
                assert_eq!(o.notice_number, format!("3{}", o.iuv));
                let notice = validate_notice_number(&o.notice_number).expect("check digits valid");
                assert_eq!(notice.segregation_code(), "01");
                assert_eq!(&o.iuv[2..6], year.to_string());
                iuvs.push(o.iuv.clone());
            }
        }
        let sequences: Vec<i64> = iuvs.iter().map(|iuv| sequence_of(iuv)).collect();
        assert_eq!(sequences, vec![1, 2, 3, 4, 5], "{}", t.label);
        assert_eq!(
            iuvs.iter().collect::<BTreeSet<_>>().len(),
            iuvs.len(),
            "{}",
            t.label
        );

        // Arcola has its own counter and its own segregation code.
        let a = api
            .create_debt_position(create(ARCOLA, in_full(), ""))
            .await
            .expect("created")
            .into_inner();
        let iuv = &a.payment_options[0].iuv;
        assert_eq!((&iuv[..2], sequence_of(iuv)), ("02", 1), "{}", t.label);
    }
}

/// DOMAIN.md "Payments" and "Check digits": a transfer sum that differs from the option amount,
/// a sixth transfer, a bad IBAN, a bad debtor code are refused with INVALID_ARGUMENT, the
/// ErrorInfo reason and the exact field, and nothing is written.
#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing() {
    for t in testing::all().await {
        let api = api(&t).await;
        let mut mismatch = in_full();
        mismatch.payment_options[0].amount_cents += 1;
        let mut six = in_full();
        six.payment_options[0] = option(
            600,
            false,
            (0..6).map(|_| transfer(SARZANA_CF, IBAN_A, 100)).collect(),
        );
        let mut bad_iban = in_full();
        bad_iban.payment_options[0].transfers[1].iban = "IT63X0306909606100000063138".to_owned();
        let mut bad_debtor = in_full();
        bad_debtor.debtor_fiscal_code = "RCCMNL83S18D969A".to_owned();
        let mut bad_creditor = installments(2);
        bad_creditor.payment_options[1].transfers[0].creditor_fiscal_code =
            "00743110158".to_owned();

        let cases = [
            (
                Some(mismatch),
                "AMOUNT_MISMATCH",
                "debt_position.payment_options[0].amount_cents",
            ),
            (
                Some(six),
                "TOO_MANY_TRANSFERS",
                "debt_position.payment_options[0].transfers",
            ),
            (
                Some(bad_iban),
                "INVALID_IBAN",
                "debt_position.payment_options[0].transfers[1].iban",
            ),
            (
                Some(bad_debtor),
                "INVALID_FISCAL_CODE",
                "debt_position.debtor_fiscal_code",
            ),
            (
                Some(bad_creditor),
                "INVALID_FISCAL_CODE",
                "debt_position.payment_options[1].transfers[0].creditor_fiscal_code",
            ),
            (None, "FIELD_REQUIRED", "debt_position"),
        ];
        for (i, (position, reason, field)) in cases.into_iter().enumerate() {
            let request = routed(
                SARZANA,
                pb::CreateDebtPositionRequest {
                    parent: format!("comuni/{SARZANA}"),
                    debt_position: position,
                    request_id: format!("bad-{i}"),
                },
            );
            let err = api
                .create_debt_position(request)
                .await
                .expect_err("refused");
            assert_eq!(err.code(), Code::InvalidArgument, "{}: {reason}", t.label);
            assert_eq!(
                reason_and_field(&err),
                (reason.to_owned(), Some(field.to_owned())),
                "{}",
                t.label
            );
        }
        assert_eq!(counts(&t).await, [0; 5], "{}: nothing written", t.label);
    }
}

/// AIP-4222 (DOMAIN.md "API style"): a call whose body names another comune than the routing
/// header is refused, and so is a comune this node does not serve; nothing is written.
#[tokio::test]
async fn routing_mismatch_and_comune_not_served() {
    for t in testing::all().await {
        let api = api(&t).await;
        let mut request = create(SARZANA, in_full(), "");
        request.metadata_mut().insert(
            ROUTING_HEADER,
            format!("comune=comuni%2F{ARCOLA}").parse().expect("ascii"),
        );
        let err = api
            .create_debt_position(request)
            .await
            .expect_err("mismatch");
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", t.label);
        assert_eq!(
            reason_and_field(&err),
            ("ROUTING_MISMATCH".to_owned(), Some("parent".to_owned()))
        );

        let mut listing = list(SARZANA, 0, "");
        listing.metadata_mut().insert(
            ROUTING_HEADER,
            format!("comune=comuni%2F{ARCOLA}").parse().expect("ascii"),
        );
        let err = api
            .list_debt_positions(listing)
            .await
            .expect_err("mismatch");
        assert_eq!(reason_and_field(&err).0, "ROUTING_MISMATCH");

        let mut getting = get(ARCOLA, "comuni/011027/debtPositions/abc");
        getting.metadata_mut().insert(
            ROUTING_HEADER,
            format!("comune=comuni%2F{ARCOLA}").parse().expect("ascii"),
        );
        let err = api.get_debt_position(getting).await.expect_err("mismatch");
        assert_eq!(
            reason_and_field(&err),
            ("ROUTING_MISMATCH".to_owned(), Some("name".to_owned()))
        );

        let unrouted = Request::new(pb::CreateDebtPositionRequest {
            parent: format!("comuni/{SARZANA}"),
            debt_position: Some(in_full()),
            request_id: String::new(),
        });
        let err = api
            .create_debt_position(unrouted)
            .await
            .expect_err("no header");
        assert_eq!(reason_and_field(&err).0, "ROUTING_HEADER_MISSING");

        let err = api
            .create_debt_position(create(LUNI, in_full(), ""))
            .await
            .expect_err("not served");
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", t.label);
        assert_eq!(
            reason_and_field(&err),
            ("COMUNE_NOT_SERVED".to_owned(), Some("parent".to_owned()))
        );
        let err = api
            .list_debt_positions(list(LUNI, 0, ""))
            .await
            .expect_err("not served");
        assert_eq!(reason_and_field(&err).0, "COMUNE_NOT_SERVED");

        assert_eq!(counts(&t).await, [0; 5], "{}: nothing written", t.label);
    }
}

/// A served comune without a usable segregation code cannot issue notices.
#[tokio::test]
async fn a_comune_without_segregation_code_cannot_create() {
    let t = testing::sqlite().await;
    t.db.migrate(&unione_payments::migrations())
        .await
        .expect("migrations apply");
    let api = DebtPositionApi::new(t.db.clone(), Served::new([profile(SARZANA, "Sarzana", "")]));
    let err = api
        .create_debt_position(create(SARZANA, in_full(), ""))
        .await
        .expect_err("no segregation code");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason_and_field(&err).0, "COMUNE_NOT_CONFIGURED");
    assert_eq!(counts(&t).await, [0; 5]);
}

/// DOMAIN.md "Payments", idempotency keys: the first response is stored and replayed to
/// retries (same position, same notice numbers, one position created); the same key with a
/// different request is refused.
#[tokio::test]
async fn idempotent_retry_replays_and_key_reuse_is_refused() {
    for t in testing::all().await {
        let api = api(&t).await;
        let first = api
            .create_debt_position(create(SARZANA, installments(2), "req-1"))
            .await
            .expect("created")
            .into_inner();
        // A retry may even echo output-only fields: they are ignored.
        let mut echoed = installments(2);
        echoed.name = "comuni/011027/debtPositions/whatever".to_owned();
        echoed.payment_options[0].iuv = "x".to_owned();
        let retry = api
            .create_debt_position(create(SARZANA, echoed, "req-1"))
            .await
            .expect("replayed")
            .into_inner();
        assert_eq!(retry, first, "{}", t.label);
        let notices = |p: &pb::DebtPosition| {
            p.payment_options
                .iter()
                .map(|o| o.notice_number.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(notices(&retry), notices(&first));
        assert_eq!(
            counts(&t).await[..3],
            [1, 2, 2],
            "{}: one position",
            t.label
        );

        let err = api
            .create_debt_position(create(SARZANA, installments(3), "req-1"))
            .await
            .expect_err("another request under the same key");
        assert_eq!(err.code(), Code::AlreadyExists, "{}", t.label);
        assert_eq!(
            reason_and_field(&err),
            (
                "IDEMPOTENCY_KEY_REUSED".to_owned(),
                Some("request_id".to_owned())
            )
        );
        // The key is scoped to the comune: Arcola may use it for its own request.
        api.create_debt_position(create(ARCOLA, installments(3), "req-1"))
            .await
            .expect("another comune's key");
        assert_eq!(counts(&t).await[0], 2, "{}", t.label);

        // Without a request id, the same body creates a second position.
        api.create_debt_position(create(SARZANA, installments(2), ""))
            .await
            .expect("created");
        assert_eq!(counts(&t).await[0], 3, "{}", t.label);
    }
}

/// DOMAIN.md "Payments": IUVs are unique per creditor even under concurrent creates, the
/// counter being drawn inside each insert's write transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_get_distinct_iuvs() {
    for t in testing::all().await {
        let api = api(&t).await;
        let mut tasks = Vec::new();
        for i in 0..20 {
            let api = api.clone();
            tasks.push(tokio::spawn(async move {
                let position = if i % 4 == 0 {
                    installments(2)
                } else {
                    in_full()
                };
                let request_id = if i % 2 == 0 {
                    format!("conc-{i}")
                } else {
                    String::new()
                };
                api.create_debt_position(create(SARZANA, position, &request_id))
                    .await
                    .map(tonic::Response::into_inner)
            }));
        }
        let mut iuvs = Vec::new();
        for task in tasks {
            let p = task.await.expect("task ran").expect("created");
            iuvs.extend(p.payment_options.into_iter().map(|o| o.iuv));
        }
        // 5 positions with 2 installments, 15 in full.
        assert_eq!(iuvs.len(), 25, "{}", t.label);
        let distinct: BTreeSet<&String> = iuvs.iter().collect();
        assert_eq!(distinct.len(), 25, "{}: distinct IUVs", t.label);
        let sequences: BTreeSet<i64> = iuvs.iter().map(|iuv| sequence_of(iuv)).collect();
        assert_eq!(
            sequences,
            (1..=25).collect::<BTreeSet<i64>>(),
            "{}: no gaps",
            t.label
        );
        assert_eq!(counts(&t).await[..3], [20, 25, 40], "{}", t.label);
    }
}
