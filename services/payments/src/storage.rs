//! Storage of the payments desk over the node's [`Database`] (sqlx `Any`: every statement
//! written once with `$n` placeholders for SQLite and PostgreSQL). Every table is keyed by the
//! comune first and every statement names it, so each town's data stays strictly apart.
//!
//! Stored here: debt positions, their payment options with IUV and notice number, the transfers
//! of each option, and a counter per comune and year from which IUV sequence numbers are drawn
//! inside the transaction that inserts the position, so that a creditor never issues the same
//! IUV twice (and a UNIQUE constraint on (comune, IUV) says so again).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, FromRow};
use unione_kit::storage::Migrations;
use unione_kit::{Database, Istat};

use crate::domain::notice::{self, Iuv, IuvBase, SegregationCode};
use crate::domain::{NewDebtPosition, PositionState};

/// The payments service's migrations (tables `payments_*`, migrations table
/// `_migrations_payments`).
pub fn migrations() -> Migrations {
    Migrations {
        service: "payments",
        sqlite: sqlx::migrate!("migrations/sqlite"),
        postgres: sqlx::migrate!("migrations/postgres"),
    }
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The comune has issued every IUV sequence number of the year (999,999,999).
    #[error("the IUV sequence numbers of {year} are exhausted for this comune")]
    IuvSequenceExhausted {
        /// The year.
        year: i32,
    },
}

/// A stored debt position with its options and transfers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPosition {
    /// The opaque id (32 hex digits).
    pub id: String,
    /// The debtor's fiscal code (personal data: never log it).
    pub debtor_fiscal_code: String,
    /// What the debt is for.
    pub description: String,
    /// The state.
    pub state: PositionState,
    /// 1 when created, one more at each change.
    pub revision: i64,
    /// When created, microseconds since the epoch.
    pub create_time: i64,
    /// When last changed, microseconds since the epoch.
    pub update_time: i64,
    /// The options, in order.
    pub payment_options: Vec<StoredOption>,
}

impl StoredPosition {
    /// The etag (AIP-154): changes whenever the position changes.
    pub fn etag(&self) -> String {
        let digest = Sha256::digest(
            format!("{}/{}/{}", self.id, self.revision, self.update_time).as_bytes(),
        );
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The keyset pagination key: newest first by creation time, then by id.
    pub fn page_key(&self) -> PageKey {
        (self.create_time, self.id.clone())
    }
}

/// A stored payment option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOption {
    /// The 17-digit IUV.
    pub iuv: String,
    /// The 18-digit notice number.
    pub notice_number: String,
    /// The amount in cents.
    pub amount_cents: i64,
    /// The due date.
    pub due_date: NaiveDate,
    /// True for an installment.
    pub installment: bool,
    /// The transfers, in order.
    pub transfers: Vec<StoredTransfer>,
}

/// A stored transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTransfer {
    /// 1 to 5.
    pub index: i32,
    /// The creditor body's 11-digit fiscal code.
    pub creditor_fiscal_code: String,
    /// The IBAN credited.
    pub iban: String,
    /// The amount in cents.
    pub amount_cents: i64,
    /// The remittance information.
    pub remittance_information: String,
}

/// The position a page ends at: (create_time, id).
pub type PageKey = (i64, String);

/// The civil-date format of the `due_date` columns.
const DATE_FORMAT: &str = "%Y-%m-%d";

/// Draws `count` consecutive IUV sequence numbers of `year` for `comune`, returning the first.
/// Must run inside the write transaction that uses them: the counter row stays locked (and on
/// SQLite the whole database) until it commits, so concurrent creates never share a number.
async fn reserve_sequence(
    conn: &mut AnyConnection,
    comune: &Istat,
    year: i32,
    count: i64,
) -> Result<i64, StoreError> {
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO payments_iuv_sequences (comune, year, last_value) VALUES ($1, $2, $3) \
         ON CONFLICT (comune, year) \
         DO UPDATE SET last_value = payments_iuv_sequences.last_value + excluded.last_value \
         RETURNING last_value",
    )
    .bind(comune.as_str())
    .bind(year)
    .bind(count)
    .fetch_one(&mut *conn)
    .await?;
    if last > notice::MAX_SEQUENCE {
        // The caller's transaction rolls back, counter included.
        return Err(StoreError::IuvSequenceExhausted { year });
    }
    Ok(last - count + 1)
}

/// Inserts a validated position for `comune`, giving each option an IUV under `segregation`
/// (base: the Italian year of `now` and the next sequence number). Call inside a write
/// transaction (`Database::begin_write`); nothing is visible until it commits.
pub async fn insert_position(
    conn: &mut AnyConnection,
    comune: &Istat,
    segregation: &SegregationCode,
    position: &NewDebtPosition,
    now: i64,
) -> Result<StoredPosition, StoreError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let instant = DateTime::<Utc>::from_timestamp_micros(now)
        .ok_or_else(|| sqlx::Error::Protocol(format!("instant out of range: {now}")))?;
    let year = notice::iuv_year(instant);
    let count = i64::try_from(position.payment_options().len())
        .expect("a position has at most MAX_INSTALLMENTS options");
    let first = reserve_sequence(conn, comune, year, count).await?;

    let state = position.initial_state();
    sqlx::query(
        "INSERT INTO payments_debt_positions (comune, id, debtor_fiscal_code, description, \
         state, revision, create_time, update_time) VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
    )
    .bind(comune.as_str())
    .bind(id.as_str())
    .bind(position.debtor_fiscal_code())
    .bind(position.description())
    .bind(state.code())
    .bind(now)
    .execute(&mut *conn)
    .await?;

    let mut payment_options = Vec::with_capacity(position.payment_options().len());
    for (i, option) in position.payment_options().iter().enumerate() {
        let option_index = i32::try_from(i).expect("a position has at most MAX_INSTALLMENTS");
        let sequence = first + i64::from(option_index);
        let base =
            IuvBase::new(year, sequence).map_err(|_| StoreError::IuvSequenceExhausted { year })?;
        let iuv = Iuv::new(segregation, &base);
        let notice_number = iuv.notice_number();
        let due_date = option.due_date();
        sqlx::query(
            "INSERT INTO payments_payment_options (comune, position_id, option_index, iuv, \
             notice_number, amount_cents, due_date, installment) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(comune.as_str())
        .bind(id.as_str())
        .bind(option_index)
        .bind(iuv.as_str())
        .bind(notice_number.as_str())
        .bind(option.amount_cents())
        .bind(due_date.format(DATE_FORMAT).to_string())
        .bind(i32::from(option.installment()))
        .execute(&mut *conn)
        .await?;

        let mut transfers = Vec::with_capacity(option.transfers().len());
        for transfer in option.transfers() {
            sqlx::query(
                "INSERT INTO payments_transfers (comune, position_id, option_index, \
                 transfer_index, creditor_fiscal_code, iban, amount_cents, \
                 remittance_information) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(comune.as_str())
            .bind(id.as_str())
            .bind(option_index)
            .bind(transfer.index())
            .bind(transfer.creditor_fiscal_code())
            .bind(transfer.iban())
            .bind(transfer.amount_cents())
            .bind(transfer.remittance_information())
            .execute(&mut *conn)
            .await?;
            transfers.push(StoredTransfer {
                index: transfer.index(),
                creditor_fiscal_code: transfer.creditor_fiscal_code().to_owned(),
                iban: transfer.iban().to_owned(),
                amount_cents: transfer.amount_cents(),
                remittance_information: transfer.remittance_information().to_owned(),
            });
        }
        payment_options.push(StoredOption {
            iuv: iuv.as_str().to_owned(),
            notice_number: notice_number.as_str().to_owned(),
            amount_cents: option.amount_cents(),
            due_date,
            installment: option.installment(),
            transfers,
        });
    }

    Ok(StoredPosition {
        id,
        debtor_fiscal_code: position.debtor_fiscal_code().to_owned(),
        description: position.description().to_owned(),
        state,
        revision: 1,
        create_time: now,
        update_time: now,
        payment_options,
    })
}

#[derive(FromRow)]
struct PositionRow {
    id: String,
    debtor_fiscal_code: String,
    description: String,
    state: String,
    revision: i64,
    create_time: i64,
    update_time: i64,
}

#[derive(FromRow)]
struct OptionRow {
    position_id: String,
    option_index: i32,
    iuv: String,
    notice_number: String,
    amount_cents: i64,
    due_date: String,
    installment: i32,
}

#[derive(FromRow)]
struct TransferRow {
    position_id: String,
    option_index: i32,
    transfer_index: i32,
    creditor_fiscal_code: String,
    iban: String,
    amount_cents: i64,
    remittance_information: String,
}

/// A decode error naming what the database returned that the code cannot read (never a panic).
fn decode_error(what: String) -> sqlx::Error {
    sqlx::Error::Decode(what.into())
}

/// `SELECT` of a position's columns, followed by `$tail` (SQL stays `&'static str`).
macro_rules! select_positions {
    ($tail:literal) => {
        concat!(
            "SELECT id, debtor_fiscal_code, description, state, revision, create_time, ",
            "update_time FROM payments_debt_positions WHERE comune = $1",
            $tail
        )
    };
}

/// The condition that a joined position `p` lies between two keys of the listing order
/// (newest first), both included: at or after `($2, $3)` and at or before `($4, $5)`.
macro_rules! between_keys {
    () => {
        " AND (p.create_time < $2 OR (p.create_time = $2 AND p.id <= $3)) \
          AND (p.create_time > $4 OR (p.create_time = $4 AND p.id >= $5))"
    };
}

/// Reads one position of `comune`.
pub async fn get_position(
    db: &Database,
    comune: &Istat,
    id: &str,
) -> Result<Option<StoredPosition>, sqlx::Error> {
    let row: Option<PositionRow> = sqlx::query_as(select_positions!(" AND id = $2"))
        .bind(comune.as_str())
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    match row {
        Some(row) => Ok(assemble(db, comune, vec![row]).await?.pop()),
        None => Ok(None),
    }
}

/// Lists the positions of `comune`, newest first (create_time desc, id desc), starting after
/// `after` (the last key of the previous page), at most `limit`.
pub async fn list_positions(
    db: &Database,
    comune: &Istat,
    after: Option<&PageKey>,
    limit: i64,
) -> Result<Vec<StoredPosition>, sqlx::Error> {
    let rows: Vec<PositionRow> = match after {
        None => {
            sqlx::query_as(select_positions!(
                " ORDER BY create_time DESC, id DESC LIMIT $2"
            ))
            .bind(comune.as_str())
            .bind(limit)
            .fetch_all(db.pool())
            .await?
        }
        Some((create_time, id)) => {
            sqlx::query_as(select_positions!(
                " AND (create_time < $2 OR (create_time = $2 AND id < $3)) \
                 ORDER BY create_time DESC, id DESC LIMIT $4"
            ))
            .bind(comune.as_str())
            .bind(*create_time)
            .bind(id.as_str())
            .bind(limit)
            .fetch_all(db.pool())
            .await?
        }
    };
    assemble(db, comune, rows).await
}

/// Reads the options and transfers of `rows` (consecutive in the listing order) and builds
/// the positions, in the order of `rows`.
async fn assemble(
    db: &Database,
    comune: &Istat,
    rows: Vec<PositionRow>,
) -> Result<Vec<StoredPosition>, sqlx::Error> {
    let (Some(newest), Some(oldest)) = (rows.first(), rows.last()) else {
        return Ok(Vec::new());
    };
    let option_rows: Vec<OptionRow> = sqlx::query_as(concat!(
        "SELECT o.position_id, o.option_index, o.iuv, o.notice_number, o.amount_cents, ",
        "o.due_date, o.installment FROM payments_payment_options o ",
        "JOIN payments_debt_positions p ON p.comune = o.comune AND p.id = o.position_id ",
        "WHERE o.comune = $1",
        between_keys!(),
        " ORDER BY o.position_id, o.option_index"
    ))
    .bind(comune.as_str())
    .bind(newest.create_time)
    .bind(newest.id.as_str())
    .bind(oldest.create_time)
    .bind(oldest.id.as_str())
    .fetch_all(db.pool())
    .await?;
    let transfer_rows: Vec<TransferRow> = sqlx::query_as(concat!(
        "SELECT t.position_id, t.option_index, t.transfer_index, t.creditor_fiscal_code, ",
        "t.iban, t.amount_cents, t.remittance_information FROM payments_transfers t ",
        "JOIN payments_debt_positions p ON p.comune = t.comune AND p.id = t.position_id ",
        "WHERE t.comune = $1",
        between_keys!(),
        " ORDER BY t.position_id, t.option_index, t.transfer_index"
    ))
    .bind(comune.as_str())
    .bind(newest.create_time)
    .bind(newest.id.as_str())
    .bind(oldest.create_time)
    .bind(oldest.id.as_str())
    .fetch_all(db.pool())
    .await?;

    let mut transfers: HashMap<(String, i32), Vec<StoredTransfer>> = HashMap::new();
    for t in transfer_rows {
        transfers
            .entry((t.position_id, t.option_index))
            .or_default()
            .push(StoredTransfer {
                index: t.transfer_index,
                creditor_fiscal_code: t.creditor_fiscal_code,
                iban: t.iban,
                amount_cents: t.amount_cents,
                remittance_information: t.remittance_information,
            });
    }
    let mut options: HashMap<String, Vec<StoredOption>> = HashMap::new();
    for o in option_rows {
        let due_date = NaiveDate::parse_from_str(&o.due_date, DATE_FORMAT)
            .map_err(|e| decode_error(format!("due_date `{}`: {e}", o.due_date)))?;
        let installment = match o.installment {
            0 => false,
            1 => true,
            other => return Err(decode_error(format!("installment {other}"))),
        };
        let key = (o.position_id, o.option_index);
        let option_transfers = transfers.remove(&key).unwrap_or_default();
        options.entry(key.0).or_default().push(StoredOption {
            iuv: o.iuv,
            notice_number: o.notice_number,
            amount_cents: o.amount_cents,
            due_date,
            installment,
            transfers: option_transfers,
        });
    }
    rows.into_iter()
        .map(|row| {
            let state = PositionState::from_code(&row.state)
                .ok_or_else(|| decode_error(format!("unknown state code `{}`", row.state)))?;
            Ok(StoredPosition {
                payment_options: options.remove(&row.id).unwrap_or_default(),
                id: row.id,
                debtor_fiscal_code: row.debtor_fiscal_code,
                description: row.description,
                state,
                revision: row.revision,
                create_time: row.create_time,
                update_time: row.update_time,
            })
        })
        .collect()
}
