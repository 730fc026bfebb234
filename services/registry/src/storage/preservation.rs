//! Storage of the preservation receipts of the sealed daily registers (table
//! `protocol_preservations`; [`crate::domain::preservation`]). A sealed day without a receipt
//! is still to be sent; a receipt is written once and never changed.

use chrono::NaiveDate;
use sqlx::{AnyConnection, FromRow};
use unione_kit::Istat;

use super::protocol::{Seal, SealRow};
use super::{decode_date, encode_date};
use crate::domain::preservation::PreservationReceipt;

/// The receipt stored with a preserved day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    /// The day.
    pub day: NaiveDate,
    /// The archive's receipt.
    pub receipt: PreservationReceipt,
    /// When this node stored it, microseconds since the epoch.
    pub recorded_at: i64,
}

#[derive(FromRow)]
struct ReceiptRow {
    day: String,
    deposit_id: String,
    deposited_at: i64,
    package_sha256: String,
    recorded_at: i64,
}

impl TryFrom<ReceiptRow> for StoredReceipt {
    type Error = sqlx::Error;

    fn try_from(row: ReceiptRow) -> Result<Self, Self::Error> {
        Ok(Self {
            day: decode_date(&row.day, "day")?,
            receipt: PreservationReceipt {
                deposit_id: row.deposit_id,
                deposited_at: row.deposited_at,
                package_sha256: row.package_sha256,
            },
            recorded_at: row.recorded_at,
        })
    }
}

/// The receipt of a day, if preserved.
pub async fn get_receipt(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
    day: NaiveDate,
) -> Result<Option<StoredReceipt>, sqlx::Error> {
    let row: Option<ReceiptRow> = sqlx::query_as(
        "SELECT day, deposit_id, deposited_at, package_sha256, recorded_at \
         FROM protocol_preservations WHERE comune = $1 AND register = $2 AND day = $3",
    )
    .bind(comune.as_str())
    .bind(register)
    .bind(encode_date(day))
    .fetch_optional(conn)
    .await?;
    row.map(StoredReceipt::try_from).transpose()
}

/// Every receipt of a register, by day.
pub async fn receipts(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
) -> Result<Vec<StoredReceipt>, sqlx::Error> {
    let rows: Vec<ReceiptRow> = sqlx::query_as(
        "SELECT day, deposit_id, deposited_at, package_sha256, recorded_at \
         FROM protocol_preservations WHERE comune = $1 AND register = $2 ORDER BY day",
    )
    .bind(comune.as_str())
    .bind(register)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(StoredReceipt::try_from).collect()
}

/// Stores the receipt of a day; a receipt already stored for that day is kept as it is
/// (returns false then).
pub async fn insert_receipt(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
    day: NaiveDate,
    receipt: &PreservationReceipt,
    recorded_at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO protocol_preservations (comune, register, day, deposit_id, deposited_at, \
         package_sha256, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (comune, register, day) DO NOTHING",
    )
    .bind(comune.as_str())
    .bind(register)
    .bind(encode_date(day))
    .bind(receipt.deposit_id.as_str())
    .bind(receipt.deposited_at)
    .bind(receipt.package_sha256.as_str())
    .bind(recorded_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The registers of `comune` that have sealed days.
pub async fn sealed_registers(
    conn: &mut AnyConnection,
    comune: &Istat,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT register FROM protocol_seals WHERE comune = $1 ORDER BY register",
    )
    .bind(comune.as_str())
    .fetch_all(conn)
    .await
}

/// The sealed days of a register that have no receipt yet, oldest first.
pub async fn unpreserved_seals(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
) -> Result<Vec<Seal>, sqlx::Error> {
    let rows: Vec<SealRow> = sqlx::query_as(
        "SELECT s.day, s.previous_seal, s.content_sha256, s.seal, s.sealed_at, s.sealed_by \
         FROM protocol_seals s LEFT JOIN protocol_preservations p \
         ON p.comune = s.comune AND p.register = s.register AND p.day = s.day \
         WHERE s.comune = $1 AND s.register = $2 AND p.day IS NULL ORDER BY s.day",
    )
    .bind(comune.as_str())
    .bind(register)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Seal::try_from).collect()
}
