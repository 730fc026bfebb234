//! Storage of the personal-data access log (`registry_access_log`, migration 0006): rows are
//! appended, never changed (triggers refuse UPDATE and DELETE on both backends), and read back
//! newest first.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, AssertSqlSafe, FromRow};
use unione_kit::{Database, Istat};

/// Who read, through which method, and why: what every row of one read shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The user's opaque id, or the peer's certificate identity.
    pub principal: String,
    /// The user's role, or `peer`.
    pub role: String,
    /// The full gRPC method.
    pub method: &'static str,
    /// The stated purpose; empty when none was given.
    pub purpose: String,
}

/// One stored row.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredAccess {
    /// The opaque id.
    pub id: String,
    /// When, microseconds since the epoch.
    pub at: i64,
    /// Who.
    pub principal: String,
    /// Their role.
    pub role: String,
    /// The method.
    pub method: String,
    /// The record's resource name.
    pub record: String,
    /// Why.
    pub purpose: String,
}

/// The position of a row in the newest-first order: page tokens carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessPageKey {
    /// The time.
    #[serde(rename = "t")]
    pub at: i64,
    /// The id.
    #[serde(rename = "i")]
    pub id: String,
}

/// Which rows to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFilter {
    /// Only this record, when set.
    pub record: Option<String>,
    /// Only rows at or after this instant (microseconds).
    pub start: i64,
    /// Only rows before this instant (microseconds).
    pub end: i64,
}

/// Rows per INSERT statement: a page of the largest size (500) fits in one; 2 values a row and
/// 6 shared stay well under both backends' bind limits.
pub const ROWS_PER_INSERT: usize = 500;

/// Appends one row per record of `records` for `reading` in `comune` at `at`, all or none: in
/// one statement (atomic by itself, with no round trips to open and close a transaction) up
/// to [`ROWS_PER_INSERT`] records, in one write transaction beyond.
pub async fn append(
    db: &Database,
    comune: &Istat,
    reading: &Reading,
    at: i64,
    records: &[&str],
) -> Result<(), sqlx::Error> {
    if records.len() <= ROWS_PER_INSERT {
        let mut conn = db.pool().acquire().await?;
        return insert(&mut conn, comune, reading, at, records).await;
    }
    let mut tx = db.begin_write().await?;
    for chunk in records.chunks(ROWS_PER_INSERT) {
        insert(&mut tx, comune, reading, at, chunk).await?;
    }
    tx.commit().await
}

/// One multi-row INSERT of `records`.
async fn insert(
    conn: &mut AnyConnection,
    comune: &Istat,
    reading: &Reading,
    at: i64,
    records: &[&str],
) -> Result<(), sqlx::Error> {
    // Only numbered placeholders are written into the statement; every value is bound.
    let tuples: Vec<String> = (0..records.len())
        .map(|row| {
            format!(
                "($1, ${}, $2, $3, $4, $5, ${}, $6)",
                7 + 2 * row,
                8 + 2 * row
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO registry_access_log \
         (comune, id, at, principal, role, method, record, purpose) VALUES {}",
        tuples.join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql))
        .bind(comune.as_str())
        .bind(at)
        .bind(reading.principal.as_str())
        .bind(reading.role.as_str())
        .bind(reading.method)
        .bind(reading.purpose.as_str());
    for record in records {
        query = query.bind(super::new_id()).bind(*record);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// The rows of `comune` in a time range and after a page key, newest first, with `$filter`
/// (more conditions, on placeholders from `$7`) added (SQL stays `&'static str`).
macro_rules! newest_first {
    ($filter:literal) => {
        concat!(
            "SELECT id, at, principal, role, method, record, purpose FROM registry_access_log ",
            "WHERE comune = $1 AND at >= $2 AND at < $3 ",
            "AND (at < $4 OR (at = $4 AND id < $5)) ",
            $filter,
            " ORDER BY at DESC, id DESC LIMIT $6"
        )
    };
}

/// The rows of `comune` that `filter` selects, newest first, after `after` (from the newest
/// when `None`), at most `limit`.
pub async fn list(
    db: &Database,
    comune: &Istat,
    filter: &AccessFilter,
    after: Option<&AccessPageKey>,
    limit: i64,
) -> Result<Vec<StoredAccess>, sqlx::Error> {
    // Past the first page, rows come after the page key in the order; the first page starts
    // below any stored time.
    let (before_at, before_id) = after.map_or((i64::MAX, ""), |key| (key.at, key.id.as_str()));
    let query = match filter.record {
        None => sqlx::query_as(newest_first!("")),
        Some(_) => sqlx::query_as(newest_first!("AND record = $7")),
    };
    let mut query = query
        .bind(comune.as_str())
        .bind(filter.start)
        .bind(filter.end)
        .bind(before_at)
        .bind(before_id)
        .bind(limit);
    if let Some(record) = &filter.record {
        query = query.bind(record.as_str());
    }
    query.fetch_all(db.pool()).await
}
