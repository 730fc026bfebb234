//! Apportionments of a shared cost (`payments_apportionments`) and the debt positions issued
//! from them (`payments_apportionment_positions`). The computation is stored as the encoded
//! result first returned and never changed; issuing writes its positions (through
//! [`super::insert_position`]) and marks the apportionment issued in one write transaction.

use sqlx::{AnyConnection, FromRow};
use unione_kit::{Database, Istat};

/// A new apportionment, as stored.
#[derive(Debug, Clone, Copy)]
pub struct NewApportionment<'a> {
    /// The opaque id.
    pub id: &'a str,
    /// The shared function.
    pub function_name: &'a str,
    /// The year.
    pub year: i32,
    /// The total cost, in cents.
    pub total_cents: i64,
    /// The encoded computation (members, bases, shares, explanation).
    pub computation: &'a [u8],
    /// Who computed it (the principal's id).
    pub create_by: &'a str,
    /// When, microseconds since the epoch.
    pub create_time: i64,
}

/// A stored apportionment and what was issued from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApportionment {
    /// The opaque id.
    pub id: String,
    /// The encoded computation.
    pub computation: Vec<u8>,
    /// The fingerprint of the issue's parameters, once issued.
    pub issue_fingerprint: Option<Vec<u8>>,
    /// When issued, microseconds since the epoch.
    pub issue_time: Option<i64>,
    /// The positions issued, by member ISTAT code.
    pub issued: Vec<IssuedPosition>,
}

/// The position issued to one member.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct IssuedPosition {
    /// The member's ISTAT code.
    pub member_istat: String,
    /// The position's id.
    pub position_id: String,
    /// Its amount, in cents.
    pub amount_cents: i64,
}

#[derive(FromRow)]
struct ApportionmentRow {
    id: String,
    computation: Vec<u8>,
    issue_fingerprint: Option<Vec<u8>>,
    issue_time: Option<i64>,
}

/// Inserts a computed apportionment of `comune`. Call inside a write transaction.
pub async fn insert_apportionment(
    conn: &mut AnyConnection,
    comune: &Istat,
    new: &NewApportionment<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payments_apportionments (comune, id, function_name, year, total_cents, \
         computation, create_by, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(comune.as_str())
    .bind(new.id)
    .bind(new.function_name)
    .bind(new.year)
    .bind(new.total_cents)
    .bind(new.computation)
    .bind(new.create_by)
    .bind(new.create_time)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Locks the apportionment `id` of `comune` until the transaction ends (a no-op update takes
/// the row lock on PostgreSQL; SQLite's write transaction holds the database). False if none.
pub async fn lock_apportionment(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE payments_apportionments SET year = year WHERE comune = $1 AND id = $2")
            .bind(comune.as_str())
            .bind(id)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Reads the apportionment `id` of `comune` on `conn`, with the positions issued from it.
pub async fn read_apportionment(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
) -> Result<Option<StoredApportionment>, sqlx::Error> {
    let row: Option<ApportionmentRow> = sqlx::query_as(
        "SELECT id, computation, issue_fingerprint, issue_time FROM payments_apportionments \
         WHERE comune = $1 AND id = $2",
    )
    .bind(comune.as_str())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let issued: Vec<IssuedPosition> = sqlx::query_as(
        "SELECT member_istat, position_id, amount_cents FROM payments_apportionment_positions \
         WHERE comune = $1 AND apportionment_id = $2 ORDER BY member_istat",
    )
    .bind(comune.as_str())
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(StoredApportionment {
        id: row.id,
        computation: row.computation,
        issue_fingerprint: row.issue_fingerprint,
        issue_time: row.issue_time,
        issued,
    }))
}

/// Reads the apportionment `id` of `comune`.
pub async fn get_apportionment(
    db: &Database,
    comune: &Istat,
    id: &str,
) -> Result<Option<StoredApportionment>, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    read_apportionment(&mut conn, comune, id).await
}

/// Records that the position `position_id` was issued to `member_istat` from the
/// apportionment `id`. Call in the transaction that inserted the position.
pub async fn insert_issued_position(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
    issued: &IssuedPosition,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payments_apportionment_positions (comune, apportionment_id, member_istat, \
         position_id, amount_cents) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(comune.as_str())
    .bind(id)
    .bind(issued.member_istat.as_str())
    .bind(issued.position_id.as_str())
    .bind(issued.amount_cents)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks the apportionment `id` of `comune` issued, once: false if it already was.
pub async fn mark_issued(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
    fingerprint: &[u8],
    issue_by: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE payments_apportionments SET issue_fingerprint = $3, issue_by = $4, \
         issue_time = $5 WHERE comune = $1 AND id = $2 AND issue_time IS NULL",
    )
    .bind(comune.as_str())
    .bind(id)
    .bind(fingerprint)
    .bind(issue_by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
