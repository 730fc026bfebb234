//! Storage of the payments desk over the node's [`Database`] (sqlx `Any`: every statement
//! written once with `$n` placeholders for SQLite and PostgreSQL). Every table is keyed by the
//! comune first and every statement names it, so each town's data stays strictly apart.
//!
//! Stored here: debt positions, their payment options with IUV and notice number, the transfers
//! of each option, and a counter per comune and year from which IUV sequence numbers are drawn
//! inside the transaction that inserts the position, so that a creditor never issues the same
//! IUV twice (and a UNIQUE constraint on (comune, IUV) says so again).
//!
//! Paying adds the activations (short reservations of a notice by one PSP) and the receipts,
//! one per paid IUV (UNIQUE (comune, iuv)), written in the transaction that locks the position
//! ([`lock_position`]) and checks its state, so two PSPs racing for a notice cannot both pay.
//!
//! The double-entry journal (`storage/ledger.rs`: [`append_transaction`], [`load_journal`])
//! and the reconciliation flows (`storage/reconciliation.rs`: [`insert_flow`] and the rest);
//! their rows are written inside the same transactions as the facts they
//! record. Apportionments of a shared cost and the positions issued from them are in
//! `storage/cost_sharing.rs` ([`insert_apportionment`] and the rest).

mod cost_sharing;
mod ledger;
mod reconciliation;
pub mod statistics;
pub mod transfer;

pub use cost_sharing::{
    IssuedPosition, NewApportionment, StoredApportionment, get_apportionment, insert_apportionment,
    insert_issued_position, lock_apportionment, mark_issued, read_apportionment,
};

pub use ledger::{append_transaction, load_journal};
pub use reconciliation::{
    StoredFlow, find_flow, get_flow_response, insert_flow, insert_reported_transfer, notice_facts,
};

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, FromRow};
use unione_kit::storage::Migrations;
use unione_kit::{Database, Istat};

use crate::clock;
use crate::domain::ledger::{LedgerOption, LedgerTransfer};
use crate::domain::notice::{self, Iuv, IuvBase, SegregationCode};
use crate::domain::{NewDebtPosition, OptionFacts, PositionFacts, PositionState};

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
    /// From when the notices can be paid, if set.
    pub validity_date: Option<NaiveDate>,
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

    /// What the state machine needs (`domain::state`).
    pub fn facts(&self) -> PositionFacts {
        PositionFacts {
            written: self.state,
            validity_date: self.validity_date,
            options: self
                .payment_options
                .iter()
                .map(|o| OptionFacts {
                    installment: o.installment,
                    due_date: o.due_date,
                    paid: o.paid,
                })
                .collect(),
        }
    }

    /// What the ledger needs (`domain::ledger`).
    pub fn ledger_options(&self) -> Vec<LedgerOption> {
        self.payment_options
            .iter()
            .map(|o| LedgerOption {
                installment: o.installment,
                transfers: o
                    .transfers
                    .iter()
                    .map(|t| LedgerTransfer {
                        creditor_fiscal_code: t.creditor_fiscal_code.clone(),
                        amount_cents: t.amount_cents,
                    })
                    .collect(),
            })
            .collect()
    }

    /// True when every transfer of every paid option is reported.
    pub fn paid_transfers_all_reported(&self) -> bool {
        self.payment_options
            .iter()
            .filter(|o| o.paid)
            .flat_map(|o| &o.transfers)
            .all(|t| t.reported)
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
    /// True once a receipt for it is recorded.
    pub paid: bool,
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
    /// True once a reconciliation flow reported it.
    pub reported: bool,
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

    let state = position.initial_state(clock::today(now));
    sqlx::query(
        "INSERT INTO payments_debt_positions (comune, id, debtor_fiscal_code, description, \
         state, revision, create_time, update_time, validity_date) \
         VALUES ($1, $2, $3, $4, $5, 1, $6, $6, $7)",
    )
    .bind(comune.as_str())
    .bind(id.as_str())
    .bind(position.debtor_fiscal_code())
    .bind(position.description())
    .bind(state.code())
    .bind(now)
    .bind(
        position
            .validity_date()
            .map(|d| d.format(DATE_FORMAT).to_string()),
    )
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
                reported: false,
            });
        }
        payment_options.push(StoredOption {
            iuv: iuv.as_str().to_owned(),
            notice_number: notice_number.as_str().to_owned(),
            amount_cents: option.amount_cents(),
            due_date,
            installment: option.installment(),
            paid: false,
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
        validity_date: position.validity_date(),
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
    validity_date: Option<String>,
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
    paid: i64,
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
    reported: i64,
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
            "update_time, validity_date FROM payments_debt_positions WHERE comune = $1",
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
    let mut conn = db.pool().acquire().await?;
    read_position(&mut conn, comune, id).await
}

/// Reads one position of `comune` on `conn` (inside a transaction: what it has written).
pub async fn read_position(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
) -> Result<Option<StoredPosition>, sqlx::Error> {
    let row: Option<PositionRow> = sqlx::query_as(select_positions!(" AND id = $2"))
        .bind(comune.as_str())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => Ok(assemble(conn, comune, vec![row]).await?.pop()),
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
    let mut conn = db.pool().acquire().await?;
    let rows: Vec<PositionRow> = match after {
        None => {
            sqlx::query_as(select_positions!(
                " ORDER BY create_time DESC, id DESC LIMIT $2"
            ))
            .bind(comune.as_str())
            .bind(limit)
            .fetch_all(&mut *conn)
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
            .fetch_all(&mut *conn)
            .await?
        }
    };
    assemble(&mut conn, comune, rows).await
}

/// Lists the positions of `comune` whose debtor is `debtor_fiscal_code`, newest first, after
/// `after`, at most `limit`. Each is assembled on its own, so the options read are only the
/// debtor's, however many other positions lie between theirs.
pub async fn list_positions_of_debtor(
    db: &Database,
    comune: &Istat,
    debtor_fiscal_code: &str,
    after: Option<&PageKey>,
    limit: i64,
) -> Result<Vec<StoredPosition>, sqlx::Error> {
    let mut conn = db.pool().acquire().await?;
    let (after_time, after_id) = after.map_or((i64::MAX, ""), |(t, id)| (*t, id.as_str()));
    let rows: Vec<PositionRow> = sqlx::query_as(select_positions!(
        " AND debtor_fiscal_code = $2 \
         AND (create_time < $3 OR (create_time = $3 AND ($4 = '' OR id < $4))) \
         ORDER BY create_time DESC, id DESC LIMIT $5"
    ))
    .bind(comune.as_str())
    .bind(debtor_fiscal_code)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut positions = Vec::with_capacity(rows.len());
    for row in rows {
        positions.extend(assemble(&mut conn, comune, vec![row]).await?);
    }
    Ok(positions)
}

/// Reads the options and transfers of `rows` (consecutive in the listing order) and builds
/// the positions, in the order of `rows`.
async fn assemble(
    conn: &mut AnyConnection,
    comune: &Istat,
    rows: Vec<PositionRow>,
) -> Result<Vec<StoredPosition>, sqlx::Error> {
    let (Some(newest), Some(oldest)) = (rows.first(), rows.last()) else {
        return Ok(Vec::new());
    };
    // One position (every Get, every receipt): by its key, not by a range of the comune's.
    let single = (rows.len() == 1).then_some(newest.id.as_str());
    let option_rows: Vec<OptionRow> = match single {
        Some(id) => sqlx::query_as(concat!(
            "SELECT o.position_id, o.option_index, o.iuv, o.notice_number, o.amount_cents, ",
            "o.due_date, o.installment, (SELECT COUNT(*) FROM payments_receipts r ",
            "WHERE r.comune = o.comune AND r.iuv = o.iuv) AS paid FROM payments_payment_options o ",
            "WHERE o.comune = $1 AND o.position_id = $2 ORDER BY o.option_index"
        ))
        .bind(comune.as_str())
        .bind(id)
        .fetch_all(&mut *conn)
        .await?,
        None => sqlx::query_as(concat!(
            "SELECT o.position_id, o.option_index, o.iuv, o.notice_number, o.amount_cents, ",
            "o.due_date, o.installment, (SELECT COUNT(*) FROM payments_receipts r ",
            "WHERE r.comune = o.comune AND r.iuv = o.iuv) AS paid FROM payments_payment_options o ",
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
        .fetch_all(&mut *conn)
        .await?,
    };
    let transfer_rows: Vec<TransferRow> = match single {
        Some(id) => sqlx::query_as(concat!(
            "SELECT t.position_id, t.option_index, t.transfer_index, t.creditor_fiscal_code, ",
            "t.iban, t.amount_cents, t.remittance_information, (SELECT COUNT(*) FROM ",
            "payments_reported_transfers rt WHERE rt.comune = t.comune AND rt.iuv = o.iuv ",
            "AND rt.transfer_index = t.transfer_index) AS reported FROM payments_transfers t ",
            "JOIN payments_payment_options o ON o.comune = t.comune ",
            "AND o.position_id = t.position_id AND o.option_index = t.option_index ",
            "WHERE t.comune = $1 AND t.position_id = $2 ORDER BY t.option_index, t.transfer_index"
        ))
        .bind(comune.as_str())
        .bind(id)
        .fetch_all(&mut *conn)
        .await?,
        None => {
            sqlx::query_as(concat!(
                "SELECT t.position_id, t.option_index, t.transfer_index, t.creditor_fiscal_code, ",
                "t.iban, t.amount_cents, t.remittance_information, (SELECT COUNT(*) FROM ",
                "payments_reported_transfers rt WHERE rt.comune = t.comune AND rt.iuv = o.iuv ",
                "AND rt.transfer_index = t.transfer_index) AS reported FROM payments_transfers t ",
                "JOIN payments_payment_options o ON o.comune = t.comune ",
                "AND o.position_id = t.position_id AND o.option_index = t.option_index ",
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
            .fetch_all(&mut *conn)
            .await?
        }
    };

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
                reported: t.reported > 0,
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
            paid: o.paid > 0,
            transfers: option_transfers,
        });
    }
    rows.into_iter()
        .map(|row| {
            let state = PositionState::from_code(&row.state)
                .ok_or_else(|| decode_error(format!("unknown state code `{}`", row.state)))?;
            let validity_date = row
                .validity_date
                .as_deref()
                .map(|d| {
                    NaiveDate::parse_from_str(d, DATE_FORMAT)
                        .map_err(|e| decode_error(format!("validity_date `{d}`: {e}")))
                })
                .transpose()?;
            Ok(StoredPosition {
                payment_options: options.remove(&row.id).unwrap_or_default(),
                id: row.id,
                debtor_fiscal_code: row.debtor_fiscal_code,
                description: row.description,
                state,
                revision: row.revision,
                create_time: row.create_time,
                update_time: row.update_time,
                validity_date,
            })
        })
        .collect()
}

/// Locks position `id` of `comune` until the transaction ends (a row lock on PostgreSQL; on
/// SQLite the write transaction already holds the database), so that every payment or change
/// of one position runs one at a time. False if there is no such position.
pub async fn lock_position(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE payments_debt_positions SET revision = revision WHERE comune = $1 AND id = $2",
    )
    .bind(comune.as_str())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes the state an act decided (a receipt, an invalidation): one more revision.
pub async fn write_state(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
    state: PositionState,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments_debt_positions SET state = $3, revision = revision + 1, \
         update_time = $4 WHERE comune = $1 AND id = $2",
    )
    .bind(comune.as_str())
    .bind(id)
    .bind(state.code())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Where a notice is: its position and the index of its option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeLocation {
    /// The position's id.
    pub position_id: String,
    /// The option's 0-based index.
    pub option_index: usize,
}

/// Finds the option whose notice number is `notice_number` in `comune`.
pub async fn find_notice(
    conn: &mut AnyConnection,
    comune: &Istat,
    notice_number: &str,
) -> Result<Option<NoticeLocation>, sqlx::Error> {
    let row: Option<(String, i32)> = sqlx::query_as(
        "SELECT position_id, option_index FROM payments_payment_options \
         WHERE comune = $1 AND notice_number = $2",
    )
    .bind(comune.as_str())
    .bind(notice_number)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|(position_id, index)| {
        let option_index =
            usize::try_from(index).map_err(|_| decode_error(format!("option_index {index}")))?;
        Ok(NoticeLocation {
            position_id,
            option_index,
        })
    })
    .transpose()
}

/// A reservation of a notice by one PSP.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredActivation {
    /// The opaque id (32 hex digits).
    pub id: String,
    /// The IUV reserved.
    pub iuv: String,
    /// The PSP holding it.
    pub psp_id: String,
    /// The PSP's key for it.
    pub idempotency_key: String,
    /// The amount in cents.
    pub amount_cents: i64,
    /// When made, microseconds since the epoch.
    pub create_time: i64,
    /// When it lapses, microseconds since the epoch.
    pub expire_time: i64,
}

/// The activation of `iuv` by `psp_id` under `key`, if any.
pub async fn find_activation_by_key(
    conn: &mut AnyConnection,
    comune: &Istat,
    iuv: &str,
    psp_id: &str,
    key: &str,
) -> Result<Option<StoredActivation>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, iuv, psp_id, idempotency_key, amount_cents, create_time, expire_time \
         FROM payments_activations \
         WHERE comune = $1 AND iuv = $2 AND psp_id = $3 AND idempotency_key = $4",
    )
    .bind(comune.as_str())
    .bind(iuv)
    .bind(psp_id)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
}

/// An activation of `comune` by id, if any.
pub async fn find_activation(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
) -> Result<Option<StoredActivation>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, iuv, psp_id, idempotency_key, amount_cents, create_time, expire_time \
         FROM payments_activations WHERE comune = $1 AND id = $2",
    )
    .bind(comune.as_str())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// True if a PSP other than `psp_id` holds a reservation of `iuv` still live at `now`.
pub async fn reserved_by_other(
    conn: &mut AnyConnection,
    comune: &Istat,
    iuv: &str,
    psp_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM payments_activations \
         WHERE comune = $1 AND iuv = $2 AND psp_id <> $3 AND expire_time > $4",
    )
    .bind(comune.as_str())
    .bind(iuv)
    .bind(psp_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// Inserts an activation; call inside the write transaction that checked the notice.
pub async fn insert_activation(
    conn: &mut AnyConnection,
    comune: &Istat,
    activation: &StoredActivation,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payments_activations (comune, id, iuv, psp_id, idempotency_key, \
         amount_cents, create_time, expire_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(comune.as_str())
    .bind(activation.id.as_str())
    .bind(activation.iuv.as_str())
    .bind(activation.psp_id.as_str())
    .bind(activation.idempotency_key.as_str())
    .bind(activation.amount_cents)
    .bind(activation.create_time)
    .bind(activation.expire_time)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The receipt of a paid option.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StoredReceipt {
    /// The IUV paid.
    pub iuv: String,
    /// The PSP's receipt id.
    pub receipt_id: String,
    /// The position paid.
    pub position_id: String,
    /// The option paid, 0-based.
    pub option_index: i32,
    /// The PSP that took the payment.
    pub psp_id: String,
    /// The amount in cents.
    pub amount_cents: i64,
    /// When the payer paid, microseconds since the epoch.
    pub payment_time: i64,
    /// The activation the payment followed, or empty.
    pub activation_id: String,
    /// When recorded, microseconds since the epoch.
    pub create_time: i64,
    /// The encoded response first returned, replayed to retries.
    pub response: Vec<u8>,
    /// The receipt document exactly as sealed.
    pub document: String,
    /// The seal of `document`.
    pub seal: String,
}

/// The receipt of `iuv` in `comune`, if it is paid.
pub async fn find_receipt(
    conn: &mut AnyConnection,
    comune: &Istat,
    iuv: &str,
) -> Result<Option<StoredReceipt>, sqlx::Error> {
    sqlx::query_as(
        "SELECT iuv, receipt_id, position_id, option_index, psp_id, amount_cents, payment_time, \
         activation_id, create_time, response, document, seal FROM payments_receipts \
         WHERE comune = $1 AND iuv = $2",
    )
    .bind(comune.as_str())
    .bind(iuv)
    .fetch_optional(&mut *conn)
    .await
}

/// The receipt `receipt_id` of the notice `notice_number` in `comune`, if any.
pub async fn get_receipt(
    db: &Database,
    comune: &Istat,
    notice_number: &str,
    receipt_id: &str,
) -> Result<Option<StoredReceipt>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.iuv, r.receipt_id, r.position_id, r.option_index, r.psp_id, r.amount_cents, \
         r.payment_time, r.activation_id, r.create_time, r.response, r.document, r.seal \
         FROM payments_receipts r JOIN payments_payment_options o \
         ON o.comune = r.comune AND o.iuv = r.iuv \
         WHERE r.comune = $1 AND o.notice_number = $2 AND r.receipt_id = $3",
    )
    .bind(comune.as_str())
    .bind(notice_number)
    .bind(receipt_id)
    .fetch_optional(db.pool())
    .await
}

/// Inserts the receipt of a paid option; call inside the write transaction that locked the
/// position and checked that the option can be paid. A second receipt for the same IUV fails
/// on UNIQUE (comune, iuv) (see [`is_unique_violation`]).
pub async fn insert_receipt(
    conn: &mut AnyConnection,
    comune: &Istat,
    receipt: &StoredReceipt,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payments_receipts (comune, iuv, receipt_id, position_id, option_index, \
         psp_id, amount_cents, payment_time, activation_id, create_time, response, document, \
         seal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(comune.as_str())
    .bind(receipt.iuv.as_str())
    .bind(receipt.receipt_id.as_str())
    .bind(receipt.position_id.as_str())
    .bind(receipt.option_index)
    .bind(receipt.psp_id.as_str())
    .bind(receipt.amount_cents)
    .bind(receipt.payment_time)
    .bind(receipt.activation_id.as_str())
    .bind(receipt.create_time)
    .bind(receipt.response.clone())
    .bind(receipt.document.as_str())
    .bind(receipt.seal.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// True when `err` is a UNIQUE or PRIMARY KEY violation (a concurrent writer got there first).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}
