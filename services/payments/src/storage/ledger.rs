//! The journal (`payments_journal_transactions`, `payments_journal_entries`): append-only, one
//! header row and its entries per transaction. There is no update or delete here, by design.

use sqlx::{AnyConnection, FromRow};
use unione_kit::storage::Backend;
use unione_kit::{Database, Istat};

use crate::domain::ledger::{EntryFact, JournalTransaction, ReceiptFact};

/// Appends a balanced transaction to the journal of `comune`, returning its id. Call inside
/// the write transaction that stores the fact it records, so both commit or neither.
pub async fn append_transaction(
    conn: &mut AnyConnection,
    comune: &Istat,
    transaction: &JournalTransaction,
    now: i64,
) -> Result<String, sqlx::Error> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    sqlx::query(
        "INSERT INTO payments_journal_transactions (comune, id, kind, reference, create_time) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(comune.as_str())
    .bind(id.as_str())
    .bind(transaction.kind.code())
    .bind(transaction.reference.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for (i, posting) in transaction.postings.iter().enumerate() {
        let line = i32::try_from(i + 1).expect("a transaction has few entries");
        sqlx::query(
            "INSERT INTO payments_journal_entries (comune, transaction_id, line, account, \
             debit_cents, credit_cents) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(comune.as_str())
        .bind(id.as_str())
        .bind(line)
        .bind(posting.account.as_str())
        .bind(posting.debit_cents)
        .bind(posting.credit_cents)
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

#[derive(FromRow)]
struct EntryRow {
    transaction_id: String,
    kind: String,
    reference: String,
    account: String,
    debit_cents: i64,
    credit_cents: i64,
}

/// Every journal entry and every receipt of `comune`, read from one snapshot (a repeatable
/// read on PostgreSQL; a read transaction under WAL on SQLite), for `domain::ledger::verify`.
pub async fn load_journal(
    db: &Database,
    comune: &Istat,
) -> Result<(Vec<EntryFact>, Vec<ReceiptFact>), sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    let rows: Vec<EntryRow> = sqlx::query_as(
        "SELECT e.transaction_id, t.kind, t.reference, e.account, e.debit_cents, \
         e.credit_cents FROM payments_journal_entries e \
         JOIN payments_journal_transactions t ON t.comune = e.comune AND t.id = e.transaction_id \
         WHERE e.comune = $1 ORDER BY e.transaction_id, e.line",
    )
    .bind(comune.as_str())
    .fetch_all(&mut *tx)
    .await?;
    let receipts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT iuv, amount_cents FROM payments_receipts WHERE comune = $1 ORDER BY iuv",
    )
    .bind(comune.as_str())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((
        rows.into_iter()
            .map(|r| EntryFact {
                transaction_id: r.transaction_id,
                kind: r.kind,
                reference: r.reference,
                account: r.account,
                debit_cents: r.debit_cents,
                credit_cents: r.credit_cents,
            })
            .collect(),
        receipts
            .into_iter()
            .map(|(iuv, amount_cents)| ReceiptFact { iuv, amount_cents })
            .collect(),
    ))
}
