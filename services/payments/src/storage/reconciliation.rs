//! Reconciliation flows (`payments_reconciliation_flows`, `payments_reconciliation_exceptions`)
//! and the transfers they reported (`payments_reported_transfers`), written in the one write
//! transaction that imports a flow.

use std::collections::{BTreeSet, HashMap};

use sqlx::{AnyConnection, FromRow};
use unione_kit::{Database, Istat};

use super::DATE_FORMAT;
use crate::domain::reconciliation::{
    Flow, MatchedTransfer, NoticeFact, Reconciliation, TransferFact,
};

/// An imported flow as far as a second import needs it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredFlow {
    /// The flow id.
    pub flow_id: String,
    /// The fingerprint of its content (`Flow::fingerprint`).
    pub fingerprint: Vec<u8>,
    /// The encoded result first returned.
    pub response: Vec<u8>,
}

/// The flow `flow_id` of `comune`, if imported.
pub async fn find_flow(
    conn: &mut AnyConnection,
    comune: &Istat,
    flow_id: &str,
) -> Result<Option<StoredFlow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT flow_id, fingerprint, response FROM payments_reconciliation_flows \
         WHERE comune = $1 AND flow_id = $2",
    )
    .bind(comune.as_str())
    .bind(flow_id)
    .fetch_optional(&mut *conn)
    .await
}

/// The encoded result of the flow `flow_id` of `comune`, if imported.
pub async fn get_flow_response(
    db: &Database,
    comune: &Istat,
    flow_id: &str,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    Ok(find_flow(&mut conn, comune, flow_id)
        .await?
        .map(|f| f.response))
}

#[derive(FromRow)]
struct NoticeRow {
    position_id: String,
    option_index: i32,
    receipt_id: Option<String>,
    psp_id: Option<String>,
}

#[derive(FromRow)]
struct TransferRow {
    transfer_index: i32,
    amount_cents: i64,
    iban: String,
    reported: i64,
}

/// What is stored about each of `iuvs` in `comune` (its position, its receipt, its transfers
/// and whether each is reported); IUVs of no notice are absent.
pub async fn notice_facts(
    conn: &mut AnyConnection,
    comune: &Istat,
    iuvs: &BTreeSet<String>,
) -> Result<HashMap<String, NoticeFact>, sqlx::Error> {
    let mut out = HashMap::with_capacity(iuvs.len());
    for iuv in iuvs {
        let row: Option<NoticeRow> = sqlx::query_as(
            "SELECT o.position_id, o.option_index, r.receipt_id, r.psp_id \
             FROM payments_payment_options o LEFT JOIN payments_receipts r \
             ON r.comune = o.comune AND r.iuv = o.iuv WHERE o.comune = $1 AND o.iuv = $2",
        )
        .bind(comune.as_str())
        .bind(iuv.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { continue };
        let transfers: Vec<TransferRow> = sqlx::query_as(
            "SELECT t.transfer_index, t.amount_cents, t.iban, (SELECT COUNT(*) FROM \
             payments_reported_transfers rt WHERE rt.comune = t.comune AND rt.iuv = $3 \
             AND rt.transfer_index = t.transfer_index) AS reported FROM payments_transfers t \
             WHERE t.comune = $1 AND t.position_id = $2 AND t.option_index = $4 \
             ORDER BY t.transfer_index",
        )
        .bind(comune.as_str())
        .bind(row.position_id.as_str())
        .bind(iuv.as_str())
        .bind(row.option_index)
        .fetch_all(&mut *conn)
        .await?;
        out.insert(
            iuv.clone(),
            NoticeFact {
                position_id: row.position_id,
                receipt: row.receipt_id.zip(row.psp_id),
                transfers: transfers
                    .into_iter()
                    .map(|t| TransferFact {
                        index: t.transfer_index,
                        amount_cents: t.amount_cents,
                        iban: t.iban,
                        reported: t.reported > 0,
                    })
                    .collect(),
            },
        );
    }
    Ok(out)
}

/// Inserts an imported flow with its result and its exceptions; call inside the write
/// transaction that reports its transfers. A concurrent import of the same flow id fails on
/// the primary key (see `is_unique_violation`).
pub async fn insert_flow(
    conn: &mut AnyConnection,
    comune: &Istat,
    flow: &Flow,
    result: &Reconciliation,
    response: &[u8],
    now: i64,
) -> Result<(), sqlx::Error> {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    sqlx::query(
        "INSERT INTO payments_reconciliation_flows (comune, flow_id, fingerprint, flow_date, \
         psp_id, settlement_reference, line_count, amount_cents, matched_count, matched_cents, \
         exception_count, create_time, response) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(comune.as_str())
    .bind(flow.flow_id.as_str())
    .bind(flow.fingerprint())
    .bind(flow.flow_date.format(DATE_FORMAT).to_string())
    .bind(flow.psp_id.as_str())
    .bind(flow.settlement_reference.as_str())
    .bind(count(flow.lines.len()))
    .bind(flow.amount_cents)
    .bind(count(result.matched.len()))
    .bind(result.matched_cents())
    .bind(count(result.exceptions.len()))
    .bind(now)
    .bind(response.to_vec())
    .execute(&mut *conn)
    .await?;
    for (i, e) in result.exceptions.iter().enumerate() {
        sqlx::query(
            "INSERT INTO payments_reconciliation_exceptions (comune, flow_id, number, kind, \
             iuv, receipt_id, transfer_index, amount_cents, outcome) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(comune.as_str())
        .bind(flow.flow_id.as_str())
        .bind(count(i + 1))
        .bind(e.kind.code())
        .bind(e.line.iuv.as_str())
        .bind(e.line.receipt_id.as_str())
        .bind(e.line.transfer_index)
        .bind(e.line.amount_cents)
        .bind(e.line.outcome.code())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Marks a transfer REPORTED by `flow_id`; call after [`insert_flow`] in its transaction.
pub async fn insert_reported_transfer(
    conn: &mut AnyConnection,
    comune: &Istat,
    flow_id: &str,
    matched: &MatchedTransfer,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payments_reported_transfers (comune, iuv, transfer_index, flow_id, \
         amount_cents, create_time) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(comune.as_str())
    .bind(matched.iuv.as_str())
    .bind(matched.transfer_index)
    .bind(flow_id)
    .bind(matched.amount_cents)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
