//! No acknowledged write is lost when the process dies mid-flight (DOMAIN.md, Payments: a
//! receipt the creditor acknowledged is the citizen's proof of payment).
//!
//! The demo federation (the real binary) takes a stream of payments from several payment
//! provider connections at once, with the real provider calls (verify, activate, receipt), and
//! is killed with SIGKILL while receipts are in flight. Started again on the same data, every
//! receipt it had acknowledged is there, sealed, with its position paid; the ledger of every
//! comune still balances; and the receipts that were in flight when it died are accepted when
//! the provider sends them again (as a provider does on a timeout), each paying its notice once.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Proc, bearer, gateway_channel, scratch, unione, wait_for_demo};
use tonic::transport::Channel;
use unione_proto::payments::v1::debt_position_service_client::DebtPositionServiceClient;
use unione_proto::payments::v1::ledger_service_client::LedgerServiceClient;
use unione_proto::payments::v1::payment_provider_service_client::PaymentProviderServiceClient;
use unione_proto::payments::v1::{
    ActivatePaymentRequest, GetReceiptRequest, ListDebtPositionsRequest, SendReceiptRequest,
    VerifyLedgerRequest, VerifyNoticeRequest,
};

const HOST: &str = "127.0.0.45";
const PSP: &str = "CRASH-TEST-PSP";

fn demo_command(data: &std::path::Path) -> std::process::Command {
    let mut cmd = unione();
    cmd.args(["demo", "--data-dir"])
        .arg(data)
        .args(["--host", HOST, "--base-port", "7400"]);
    cmd
}

fn routed<T>(message: T, istat: &str, token: &str) -> tonic::Request<T> {
    let mut request = bearer(message, token);
    request.metadata_mut().insert(
        unione_kit::names::ROUTING_HEADER,
        unione_kit::names::routing_value(
            &unione_kit::names::Istat::parse(istat).expect("an ISTAT code"),
        )
        .parse()
        .expect("ASCII"),
    );
    request.set_timeout(Duration::from_secs(10));
    request
}

/// A notice still to pay: `comuni/{istat}/notices/{number}` and its amount.
#[derive(Debug, Clone)]
struct Due {
    istat: String,
    notice: String,
    amount_cents: i64,
}

/// Every unpaid payment option of the demo's positions, all comuni.
async fn unpaid(channel: &Channel, demo: &serde_json::Value) -> Vec<Due> {
    let mut out = Vec::new();
    let operators = demo["tokens"]["operators"].as_object().expect("operators");
    for (istat, token) in operators {
        let token = token.as_str().expect("token");
        let mut client = DebtPositionServiceClient::new(channel.clone());
        let mut page_token = String::new();
        loop {
            let page = client
                .list_debt_positions(routed(
                    ListDebtPositionsRequest {
                        parent: format!("comuni/{istat}"),
                        page_size: 500,
                        page_token,
                    },
                    istat,
                    token,
                ))
                .await
                .expect("the operator lists the positions")
                .into_inner();
            for position in page.debt_positions {
                for option in position.payment_options.iter().filter(|o| !o.paid) {
                    out.push(Due {
                        istat: istat.clone(),
                        notice: format!("comuni/{istat}/notices/{}", option.notice_number),
                        amount_cents: option.amount_cents,
                    });
                }
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
    }
    out
}

/// What happened to one payment.
#[derive(Debug, Clone)]
enum Outcome {
    /// The receipt was acknowledged: its resource name.
    Acknowledged(String),
    /// The receipt was sent (or about to be) when the connection died.
    InFlight { activation_id: String },
}

async fn pay(
    provider: &mut PaymentProviderServiceClient<Channel>,
    due: &Due,
    psp_token: &str,
    record: &Mutex<BTreeMap<String, Outcome>>,
) -> Result<(), tonic::Status> {
    let verified = provider
        .verify_notice(routed(
            VerifyNoticeRequest {
                name: due.notice.clone(),
            },
            &due.istat,
            psp_token,
        ))
        .await?
        .into_inner();
    let activation = provider
        .activate_payment(routed(
            ActivatePaymentRequest {
                name: due.notice.clone(),
                psp_id: PSP.to_owned(),
                idempotency_key: format!("crash-{}", key(due)),
                amount_cents: verified.amount_cents,
            },
            &due.istat,
            psp_token,
        ))
        .await?
        .into_inner();
    record.lock().expect("record").insert(
        due.notice.clone(),
        Outcome::InFlight {
            activation_id: activation.activation_id.clone(),
        },
    );
    let receipt = provider
        .send_receipt(routed(
            receipt_request(due, &activation.activation_id),
            &due.istat,
            psp_token,
        ))
        .await?
        .into_inner();
    record
        .lock()
        .expect("record")
        .insert(due.notice.clone(), Outcome::Acknowledged(receipt.name));
    Ok(())
}

/// `{istat}-{notice number}`: unique, and within the provider identifiers' alphabet.
fn key(due: &Due) -> String {
    due.notice
        .strip_prefix("comuni/")
        .unwrap_or(&due.notice)
        .replace("/notices/", "-")
}

fn receipt_request(due: &Due, activation_id: &str) -> SendReceiptRequest {
    SendReceiptRequest {
        notice: due.notice.clone(),
        psp_id: PSP.to_owned(),
        receipt_id: format!("crash-receipt-{}", key(due)),
        amount_cents: due.amount_cents,
        payment_time: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp(),
            nanos: 0,
        }),
        activation_id: activation_id.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_receipts_survive_a_sigkill() {
    let (_keep, dir) = scratch("crash");
    let data = dir.join("demo");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let mut demo_proc = Proc::spawn("demo", demo_command(&data), &logs);
    let demo = wait_for_demo(&data, &mut demo_proc, &logs).await;
    let psp_token = demo["tokens"]["payment_provider"]
        .as_str()
        .expect("a payment provider token")
        .to_owned();
    let channel = gateway_channel(&demo).await;
    let dues = unpaid(&channel, &demo).await;
    assert!(
        dues.len() >= 40,
        "the demo leaves enough notices to pay ({})",
        dues.len()
    );

    // Four provider connections pay in parallel until the process dies under them.
    let record = Arc::new(Mutex::new(BTreeMap::<String, Outcome>::new()));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let queue = Arc::new(Mutex::new(dues.clone()));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let mut provider = PaymentProviderServiceClient::new(gateway_channel(&demo).await);
        let (record, refused, queue, psp_token) = (
            record.clone(),
            refused.clone(),
            queue.clone(),
            psp_token.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let Some(due) = queue.lock().expect("queue").pop() else {
                    return;
                };
                match pay(&mut provider, &due, &psp_token, &record).await {
                    Ok(()) => {}
                    // The process is gone: this worker stops.
                    Err(status)
                        if matches!(
                            status.code(),
                            tonic::Code::Unavailable
                                | tonic::Code::Unknown
                                | tonic::Code::Cancelled
                                | tonic::Code::DeadlineExceeded
                                | tonic::Code::Internal
                        ) =>
                    {
                        return;
                    }
                    Err(status) => refused
                        .lock()
                        .expect("refused")
                        .push(format!("{}: {status:?}", due.notice)),
                }
            }
        }));
    }
    // Kill once a third of the receipts are acknowledged, with others in flight.
    let acknowledged = || {
        record
            .lock()
            .expect("record")
            .values()
            .filter(|o| matches!(o, Outcome::Acknowledged(_)))
            .count()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while acknowledged() < dues.len() / 3 {
        assert!(
            tokio::time::Instant::now() < deadline && workers.iter().any(|w| !w.is_finished()),
            "payments do not progress: {} acknowledged; refused: {:?}",
            acknowledged(),
            refused
                .lock()
                .expect("refused")
                .iter()
                .take(3)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    demo_proc.kill();
    for worker in workers {
        worker.await.expect("a worker joins");
    }
    let outcomes = record.lock().expect("record").clone();
    assert!(
        refused.lock().expect("refused").is_empty(),
        "every unpaid notice of the demo can be paid: {:?}",
        refused.lock().expect("refused")
    );
    let acked: Vec<(&String, &String)> = outcomes
        .iter()
        .filter_map(|(notice, o)| match o {
            Outcome::Acknowledged(name) => Some((notice, name)),
            Outcome::InFlight { .. } => None,
        })
        .collect();
    assert!(
        acked.len() < dues.len(),
        "the kill came before every payment was made"
    );

    // Started again on the same data.
    std::fs::remove_file(data.join("demo.json")).ok();
    let mut demo_proc = Proc::spawn("demo-again", demo_command(&data), &logs);
    let demo = wait_for_demo(&data, &mut demo_proc, &logs).await;
    let psp_token = demo["tokens"]["payment_provider"]
        .as_str()
        .expect("token")
        .to_owned();
    let channel = gateway_channel(&demo).await;
    let mut provider = PaymentProviderServiceClient::new(channel.clone());

    // Every acknowledged receipt is there, sealed, and its notice is no longer payable.
    let still_unpaid: Vec<String> = unpaid(&channel, &demo)
        .await
        .into_iter()
        .map(|d| d.notice)
        .collect();
    for (notice, name) in &acked {
        let istat = &notice["comuni/".len().."comuni/".len() + 6];
        let sealed = provider
            .get_receipt(routed(
                GetReceiptRequest {
                    name: (*name).clone(),
                },
                istat,
                &psp_token,
            ))
            .await
            .unwrap_or_else(|s| panic!("acknowledged receipt {name} lost: {s:?}"))
            .into_inner();
        assert_eq!(sealed.sha256.len(), 64, "{name} is sealed");
        assert!(
            !still_unpaid.contains(notice),
            "{notice} was acknowledged as paid but is payable again"
        );
    }

    // The receipts in flight at the kill, sent again, each pay their notice exactly once.
    let mut resent = 0;
    for (notice, outcome) in &outcomes {
        let Outcome::InFlight { activation_id } = outcome else {
            continue;
        };
        let due = dues
            .iter()
            .find(|d| &d.notice == notice)
            .expect("a known notice");
        let first = provider
            .send_receipt(routed(
                receipt_request(due, activation_id),
                &due.istat,
                &psp_token,
            ))
            .await
            .unwrap_or_else(|s| panic!("the in-flight receipt of {notice} is refused: {s:?}"))
            .into_inner();
        let again = provider
            .send_receipt(routed(
                receipt_request(due, activation_id),
                &due.istat,
                &psp_token,
            ))
            .await
            .expect("a redelivery is answered")
            .into_inner();
        assert_eq!(first.name, again.name, "one receipt for {notice}");
        resent += 1;
    }

    // Every comune's ledger balances and counts each receipt once.
    let operators = demo["tokens"]["operators"].as_object().expect("operators");
    for (istat, token) in operators {
        let verified = LedgerServiceClient::new(channel.clone())
            .verify_ledger(routed(
                VerifyLedgerRequest {
                    parent: format!("comuni/{istat}"),
                },
                istat,
                token.as_str().expect("token"),
            ))
            .await
            .expect("the ledger is read")
            .into_inner();
        assert!(
            verified.verified,
            "the ledger of {istat} balances after the crash: {:?}",
            verified.breaches
        );
        assert_eq!(verified.total_debit_cents, verified.total_credit_cents);
    }
    let status = demo_proc.terminate();
    assert!(status.success(), "the demo stops cleanly: {status}");
    eprintln!(
        "{} receipts acknowledged before the kill, {} in flight and sent again",
        acked.len(),
        resent
    );
}
