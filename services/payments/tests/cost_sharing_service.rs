//! CostSharingService over real storage, on SQLite and (with `TEST_DATABASE_URL`) PostgreSQL:
//! a capofila (Sarzana) shares the cost of a function among its members (DOMAIN.md "The
//! setting": gestione associata) and issues each member's share as a debt position, once.
//! The handlers are called directly, with the routing header the gateway sets, the principal
//! a node receives from a gateway, and a fixed clock.

use tonic::{Code, Request};
use unione_kit::error::reason_and_field;
use unione_kit::names::routed;
use unione_kit::principal::Principal;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_kit::{ComuneProfile, Istat, Served};
use unione_payments::{Clock, CostSharingApi, DebtPositionApi, LedgerApi};
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1 as pb;
use unione_proto::payments::v1::cost_sharing_service_server::CostSharingService;
use unione_proto::payments::v1::debt_position_service_server::DebtPositionService;
use unione_proto::payments::v1::ledger_service_server::LedgerService;

const SARZANA: &str = "011027";
const SARZANA_CF: &str = "00110270113";
const CASTELNUOVO: &str = "011011";
const CASTELNUOVO_CF: &str = "00110110111";
const LUNI: &str = "011020";
const LUNI_CF: &str = "00110200110";
const IBAN: &str = "IT60X0542811101000000123456";

/// 10 January 2026, 10:00 UTC.
const JAN_10: i64 = 1_768_039_200_000_000;

struct Desk {
    sharing: CostSharingApi,
    positions: DebtPositionApi,
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
        sharing: CostSharingApi::with_clock(t.db.clone(), served.clone(), clock.clone()),
        positions: DebtPositionApi::with_clock(t.db.clone(), served.clone(), clock),
        ledger: LedgerApi::new(t.db.clone(), served),
    }
}

fn as_user<T>(message: T) -> Request<T> {
    let mut request = routed(SARZANA, message);
    request.extensions_mut().insert(Principal {
        sub: "ragioneria.bianchi".to_owned(),
        role: Role::Operator,
        comuni: vec![SARZANA.to_owned()],
        fiscal_number: None,
        gateway: "gw-1".to_owned(),
    });
    request
}

fn member(istat: &str, fiscal_code: &str, population: i64, usage: i64) -> pb::ApportionmentMember {
    pb::ApportionmentMember {
        istat: istat.to_owned(),
        fiscal_code: fiscal_code.to_owned(),
        population,
        usage,
        quota: 0,
    }
}

/// 1,000.00 euros of the associated protocol office in 2025, by population.
fn by_population() -> pb::Apportionment {
    pb::Apportionment {
        function: "Ufficio protocollo associato".to_owned(),
        year: 2025,
        total_cost_cents: 100_000,
        method: Some(pb::ApportionmentMethod {
            population_percent: 100,
            usage_percent: 0,
            quota_percent: 0,
        }),
        members: vec![
            member(LUNI, LUNI_CF, 4_300, 100),
            member(SARZANA, SARZANA_CF, 21_800, 100),
            member(CASTELNUOVO, CASTELNUOVO_CF, 8_200, 300),
        ],
        ..Default::default()
    }
}

fn compute_request(a: pb::Apportionment, request_id: &str) -> pb::ComputeApportionmentRequest {
    pb::ComputeApportionmentRequest {
        parent: format!("comuni/{SARZANA}"),
        apportionment: Some(a),
        request_id: request_id.to_owned(),
    }
}

fn issue_request(name: &str, day: i32) -> pb::IssueApportionmentRequest {
    pb::IssueApportionmentRequest {
        name: name.to_owned(),
        creditor_iban: IBAN.to_owned(),
        due_date: Some(Date {
            year: 2026,
            month: 3,
            day,
        }),
    }
}

impl Desk {
    async fn compute(&self, a: pb::Apportionment) -> Result<pb::Apportionment, tonic::Status> {
        self.sharing
            .compute_apportionment(as_user(compute_request(a, "")))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn issue(&self, name: &str, day: i32) -> Result<pb::Apportionment, tonic::Status> {
        self.sharing
            .issue_apportionment(as_user(issue_request(name, day)))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn get(&self, name: &str) -> Result<pb::Apportionment, tonic::Status> {
        self.sharing
            .get_apportionment(routed(
                SARZANA,
                pb::GetApportionmentRequest {
                    name: name.to_owned(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }
}

async fn count(t: &TestDatabase, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.db.pool())
        .await
        .expect("count")
}

#[track_caller]
fn assert_refused(
    result: Result<pb::Apportionment, tonic::Status>,
    code: Code,
    reason: &str,
    field: Option<&str>,
) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    let (got_reason, got_field) = reason_and_field(&status);
    assert_eq!(got_reason, reason, "{status:?}");
    assert_eq!(got_field.as_deref(), field, "{status:?}");
}

fn shares(a: &pb::Apportionment) -> Vec<(&str, i64, bool)> {
    a.shares
        .iter()
        .map(|s| (s.istat.as_str(), s.share_cents, s.remainder_cent))
        .collect()
}

/// The hand-computed example of `domain::apportion` through the RPC: 100000 cents among
/// 21800 / 8200 / 4300 inhabitants: floors 63556 + 23906 + 12536 = 99998, the two remainder
/// cents to Sarzana (remainder 29200 of 34300) and Castelnuovo (24200); Luni (15200) none.
/// The result is stored and read again, explained line by line.
#[tokio::test]
async fn compute_stores_an_explained_apportionment() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let a = d.compute(by_population()).await.expect("computed");
        assert!(
            a.name.starts_with("comuni/011027/apportionments/"),
            "{}",
            a.name
        );
        assert_eq!(
            shares(&a),
            vec![
                (CASTELNUOVO, 23_907, true),
                (LUNI, 12_536, false),
                (SARZANA, 63_557, true),
            ],
            "{}",
            t.label
        );
        assert_eq!(a.shares.iter().map(|s| s.share_cents).sum::<i64>(), 100_000);
        assert_eq!(a.remainder_cents, 2);
        assert_eq!(a.population_total, 34_300);
        assert_eq!(a.denominator, "3430000");
        let sarzana = &a.shares[2];
        assert_eq!(sarzana.fiscal_code, SARZANA_CF);
        assert_eq!(sarzana.exact_share, "21800000/343");
        assert_eq!(sarzana.floor_cents, 63_556);
        assert!(
            sarzana.explanation.contains("63556.8513"),
            "{}",
            sarzana.explanation
        );
        assert!(a.issued.is_empty());

        let again = d.get(&a.name).await.expect("read");
        assert_eq!(again, a, "{}", t.label);
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM payments_apportionments").await,
            1
        );
    }
}

/// 50% population + 50% usage (usage 100 / 300 / 100 cases): 41779 / 41953 / 16268, as
/// computed by hand in `domain::apportion::tests::mix_by_hand`.
#[tokio::test]
async fn compute_a_mix() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let mut input = by_population();
        input.method = Some(pb::ApportionmentMethod {
            population_percent: 50,
            usage_percent: 50,
            quota_percent: 0,
        });
        let a = d.compute(input).await.expect("computed");
        assert_eq!(
            shares(&a),
            vec![
                (CASTELNUOVO, 41_953, false),
                (LUNI, 16_268, false),
                (SARZANA, 41_779, true),
            ],
            "{}",
            t.label
        );
        assert_eq!(a.usage_total, 500);
    }
}

/// AIP-155 / DOMAIN.md "Payments" (idempotency keys): the same request id replays the first
/// apportionment; nothing new is stored.
#[tokio::test]
async fn compute_is_idempotent_on_the_request_id() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let first = d
            .sharing
            .compute_apportionment(as_user(compute_request(by_population(), "k-1")))
            .await
            .expect("computed")
            .into_inner();
        let second = d
            .sharing
            .compute_apportionment(as_user(compute_request(by_population(), "k-1")))
            .await
            .expect("replayed")
            .into_inner();
        assert_eq!(first, second, "{}", t.label);
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM payments_apportionments").await,
            1
        );
    }
}

/// Issuing creates one debt position per member from the capofila (not for the capofila's
/// own share): debtor the member's fiscal code, one transfer to the capofila's fiscal code and
/// IBAN, the due date given; the ledger records them and verifies. Issuing again creates
/// nothing and returns the first result; other parameters are refused.
#[tokio::test]
async fn issuing_creates_one_position_per_member_once() {
    for t in testing::all().await {
        let d = desk(&t).await;
        let a = d.compute(by_population()).await.expect("computed");
        let issued = d.issue(&a.name, 31).await.expect("issued");
        assert!(issued.issue_time.is_some());
        let members: Vec<(&str, i64)> = issued
            .issued
            .iter()
            .map(|i| (i.istat.as_str(), i.amount_cents))
            .collect();
        assert_eq!(
            members,
            vec![(CASTELNUOVO, 23_907), (LUNI, 12_536)],
            "{}",
            t.label
        );
        for (i, (debtor, amount)) in [(CASTELNUOVO_CF, 23_907), (LUNI_CF, 12_536)]
            .into_iter()
            .enumerate()
        {
            let p = d
                .positions
                .get_debt_position(routed(
                    SARZANA,
                    pb::GetDebtPositionRequest {
                        name: issued.issued[i].debt_position.clone(),
                    },
                ))
                .await
                .expect("the issued position exists")
                .into_inner();
            assert_eq!(p.debtor_fiscal_code, debtor);
            assert_eq!(p.payment_options.len(), 1);
            let option = &p.payment_options[0];
            assert_eq!(option.amount_cents, amount);
            assert!(!option.installment);
            assert_eq!(
                option.due_date,
                Some(Date {
                    year: 2026,
                    month: 3,
                    day: 31
                })
            );
            assert_eq!(option.notice_number.len(), 18);
            assert_eq!(option.transfers.len(), 1);
            assert_eq!(option.transfers[0].creditor_fiscal_code, SARZANA_CF);
            assert_eq!(option.transfers[0].iban, IBAN);
            assert_eq!(option.transfers[0].amount_cents, amount);
        }
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM payments_debt_positions").await,
            2
        );

        let again = d.issue(&a.name, 31).await.expect("issued again");
        assert_eq!(again, issued, "{}", t.label);
        assert_eq!(d.get(&a.name).await.expect("read"), issued);
        assert_refused(
            d.issue(&a.name, 30).await,
            Code::FailedPrecondition,
            "APPORTIONMENT_ALREADY_ISSUED",
            Some("name"),
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM payments_debt_positions").await,
            2,
            "{}",
            t.label
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM payments_journal_transactions").await,
            2
        );
        let v = d
            .ledger
            .verify_ledger(routed(
                SARZANA,
                pb::VerifyLedgerRequest {
                    parent: format!("comuni/{SARZANA}"),
                },
            ))
            .await
            .expect("verified")
            .into_inner();
        assert!(v.verified, "{}: {:?}", t.label, v.breaches);
        assert_eq!(v.total_debit_cents, 23_907 + 12_536);
    }
}

/// Concurrent issues of the same apportionment: exactly one set of positions.
#[tokio::test]
async fn concurrent_issues_create_the_positions_once() {
    for t in testing::all().await {
        let d = std::sync::Arc::new(desk(&t).await);
        let a = d.compute(by_population()).await.expect("computed");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let d = d.clone();
            let name = a.name.clone();
            tasks.push(tokio::spawn(async move { d.issue(&name, 31).await }));
        }
        let mut results = Vec::new();
        for task in tasks {
            if let Ok(issued) = task.await.expect("joined") {
                results.push(issued);
            }
        }
        assert!(!results.is_empty(), "{}", t.label);
        assert!(results.windows(2).all(|w| w[0] == w[1]), "{}", t.label);
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM payments_debt_positions").await,
            2,
            "{}",
            t.label
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM payments_apportionment_positions").await,
            2
        );
    }
}

/// Bad input is refused with its reason and the field at fault, and nothing is stored.
#[tokio::test]
async fn bad_input_is_refused_with_the_field() {
    for t in testing::all().await {
        let d = desk(&t).await;

        let mut zero = by_population();
        zero.total_cost_cents = 0;
        assert_refused(
            d.compute(zero).await,
            Code::InvalidArgument,
            "INVALID_AMOUNT",
            Some("apportionment.total_cost_cents"),
        );

        let mut empty = by_population();
        empty.members.clear();
        assert_refused(
            d.compute(empty).await,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("apportionment.members"),
        );

        let mut mix = by_population();
        mix.method = Some(pb::ApportionmentMethod {
            population_percent: 50,
            usage_percent: 40,
            quota_percent: 0,
        });
        assert_refused(
            d.compute(mix).await,
            Code::InvalidArgument,
            "INVALID_MIX",
            Some("apportionment.method"),
        );

        let mut negative = by_population();
        negative.members[2].population = -1;
        assert_refused(
            d.compute(negative).await,
            Code::InvalidArgument,
            "INVALID_BASIS",
            Some("apportionment.members[2].population"),
        );

        let mut all_zero = by_population();
        all_zero.method = Some(pb::ApportionmentMethod {
            population_percent: 0,
            usage_percent: 0,
            quota_percent: 100,
        });
        assert_refused(
            d.compute(all_zero).await,
            Code::InvalidArgument,
            "INVALID_BASIS",
            Some("apportionment.method.quota_percent"),
        );

        let mut bad_cf = by_population();
        bad_cf.members[1].fiscal_code = "00110270112".to_owned();
        assert_refused(
            d.compute(bad_cf).await,
            Code::InvalidArgument,
            "INVALID_FISCAL_CODE",
            Some("apportionment.members[1].fiscal_code"),
        );

        let mut no_function = by_population();
        no_function.function.clear();
        assert_refused(
            d.compute(no_function).await,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("apportionment.function"),
        );

        let anonymous = d
            .sharing
            .compute_apportionment(routed(SARZANA, compute_request(by_population(), "")))
            .await
            .map(tonic::Response::into_inner);
        assert_refused(anonymous, Code::Unauthenticated, "PRINCIPAL_REQUIRED", None);

        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM payments_apportionments").await,
            0,
            "{}",
            t.label
        );

        let a = d.compute(by_population()).await.expect("computed");
        let mut bad_iban = issue_request(&a.name, 31);
        bad_iban.creditor_iban = "IT60X0542811101000000123457".to_owned();
        assert_refused(
            d.sharing
                .issue_apportionment(as_user(bad_iban))
                .await
                .map(tonic::Response::into_inner),
            Code::InvalidArgument,
            "INVALID_IBAN",
            Some("creditor_iban"),
        );
        assert_refused(
            d.issue(&a.name, 32).await,
            Code::InvalidArgument,
            "INVALID_DUE_DATE",
            Some("due_date"),
        );
        let unknown = format!("comuni/{SARZANA}/apportionments/nope");
        assert_refused(
            d.issue(&unknown, 31).await,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("name"),
        );
        assert_refused(
            d.get(&unknown).await,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("name"),
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM payments_debt_positions").await,
            0,
            "{}",
            t.label
        );
    }
}
