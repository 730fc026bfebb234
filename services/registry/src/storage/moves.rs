//! Storage of moves between member comuni (table `registry_moves`, one row per side). At the
//! origin the row is the outbox the dispatcher delivers from, written in the transaction of
//! the emigration; at the destination it makes a delivery idempotent on the move id.

use chrono::NaiveDate;
use sqlx::{AnyConnection, FromRow};
use unione_kit::Istat;

use super::{decode_code, decode_date, encode_date};
use crate::domain::Address;
use crate::domain::household::Relationship;
use crate::domain::moves::MoveState;

/// Which side of a move a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The origin: the person emigrates; the row is in the dispatcher's outbox.
    Out,
    /// The destination: the person immigrates.
    In,
}

impl Direction {
    fn code(self) -> &'static str {
        match self {
            Self::Out => "OUT",
            Self::In => "IN",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        match code {
            "OUT" => Some(Self::Out),
            "IN" => Some(Self::In),
            _ => None,
        }
    }
}

/// One side of a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMove {
    /// The opaque id, the same on both sides.
    pub id: String,
    /// Which side this row is.
    pub direction: Direction,
    /// The origin comune's ISTAT code.
    pub origin: String,
    /// The destination comune's ISTAT code.
    pub destination: String,
    /// The person's record on this side.
    pub resident_id: String,
    /// The person's record at the origin.
    pub origin_resident_id: String,
    /// From when.
    pub effective_date: NaiveDate,
    /// The address at the destination.
    pub address: Address,
    /// The destination household to join; empty for a new one.
    pub household_id: String,
    /// The tie to that household's head; `None` with a new household.
    pub relationship: Option<Relationship>,
    /// Where it stands.
    pub state: MoveState,
    /// The person's record at the destination, once known.
    pub destination_resident_id: String,
    /// Deliveries tried (origin).
    pub attempts: i64,
    /// When the next delivery is due, microseconds since the epoch (origin, PENDING).
    pub next_attempt_time: i64,
    /// The last delivery error, no personal data.
    pub last_error: String,
    /// Who started it (the operator at the origin, the sending node at the destination).
    pub recorded_by: String,
    /// When it was recorded.
    pub create_time: i64,
    /// When it was completed.
    pub complete_time: Option<i64>,
}

#[derive(FromRow)]
struct MoveRow {
    id: String,
    direction: String,
    origin: String,
    destination: String,
    resident_id: String,
    origin_resident_id: String,
    effective_date: String,
    street: String,
    house_number: String,
    postal_code: String,
    locality: String,
    household_id: String,
    relationship: String,
    state: String,
    destination_resident_id: String,
    attempts: i64,
    next_attempt_time: i64,
    last_error: String,
    recorded_by: String,
    create_time: i64,
    complete_time: Option<i64>,
}

impl TryFrom<MoveRow> for StoredMove {
    type Error = sqlx::Error;

    fn try_from(row: MoveRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            direction: decode_code(&row.direction, "direction", Direction::from_code)?,
            origin: row.origin,
            destination: row.destination,
            resident_id: row.resident_id,
            origin_resident_id: row.origin_resident_id,
            effective_date: decode_date(&row.effective_date, "effective_date")?,
            address: Address {
                street: row.street,
                house_number: row.house_number,
                postal_code: row.postal_code,
                locality: row.locality,
            },
            household_id: row.household_id,
            relationship: if row.relationship.is_empty() {
                None
            } else {
                Some(decode_code(
                    &row.relationship,
                    "relationship",
                    Relationship::from_code,
                )?)
            },
            state: decode_code(&row.state, "state", MoveState::from_code)?,
            destination_resident_id: row.destination_resident_id,
            attempts: row.attempts,
            next_attempt_time: row.next_attempt_time,
            last_error: row.last_error,
            recorded_by: row.recorded_by,
            create_time: row.create_time,
            complete_time: row.complete_time,
        })
    }
}

macro_rules! select_moves {
    ($tail:literal) => {
        concat!(
            "SELECT id, direction, origin, destination, resident_id, origin_resident_id, \
             effective_date, street, house_number, postal_code, locality, household_id, \
             relationship, state, destination_resident_id, attempts, next_attempt_time, \
             last_error, recorded_by, create_time, complete_time FROM registry_moves",
            $tail
        )
    };
}

/// Records one side of a move in `comune`, in the caller's write transaction.
pub async fn insert_move(
    conn: &mut AnyConnection,
    comune: &Istat,
    m: &StoredMove,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_moves (comune, id, direction, origin, destination, resident_id, \
         origin_resident_id, effective_date, street, house_number, postal_code, locality, \
         household_id, relationship, state, destination_resident_id, attempts, \
         next_attempt_time, last_error, recorded_by, create_time, complete_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22)",
    )
    .bind(comune.as_str())
    .bind(m.id.as_str())
    .bind(m.direction.code())
    .bind(m.origin.as_str())
    .bind(m.destination.as_str())
    .bind(m.resident_id.as_str())
    .bind(m.origin_resident_id.as_str())
    .bind(encode_date(m.effective_date))
    .bind(m.address.street.as_str())
    .bind(m.address.house_number.as_str())
    .bind(m.address.postal_code.as_str())
    .bind(m.address.locality.as_str())
    .bind(m.household_id.as_str())
    .bind(m.relationship.map_or("", Relationship::code))
    .bind(m.state.code())
    .bind(m.destination_resident_id.as_str())
    .bind(m.attempts)
    .bind(m.next_attempt_time)
    .bind(m.last_error.as_str())
    .bind(m.recorded_by.as_str())
    .bind(m.create_time)
    .bind(m.complete_time)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A move of `comune` by id (either side).
pub async fn get_move(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
) -> Result<Option<StoredMove>, sqlx::Error> {
    let row: Option<MoveRow> = sqlx::query_as(select_moves!(" WHERE comune = $1 AND id = $2"))
        .bind(comune.as_str())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(StoredMove::try_from).transpose()
}

/// The outgoing moves of this node's database still pending and due at `now`, the oldest
/// due first, at most `limit`.
pub async fn due_moves(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> Result<Vec<StoredMove>, sqlx::Error> {
    let rows: Vec<MoveRow> = sqlx::query_as(select_moves!(
        " WHERE state = 'PENDING' AND direction = 'OUT' AND next_attempt_time <= $1 \
         ORDER BY next_attempt_time, comune, id LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(StoredMove::try_from).collect()
}

/// When the next pending outgoing move is due, if any.
pub async fn next_due(conn: &mut AnyConnection) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MIN(next_attempt_time) FROM registry_moves \
         WHERE state = 'PENDING' AND direction = 'OUT'",
    )
    .fetch_one(&mut *conn)
    .await
}

/// Records a delivery's outcome on a pending outgoing move: `state` (COMPLETED with the
/// destination's resident, FAILED, or still PENDING until `next_attempt_time`), one more
/// attempt, and the error (empty on success). Changes nothing once the move is no longer
/// pending.
#[allow(clippy::too_many_arguments)]
pub async fn record_attempt(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
    state: MoveState,
    destination_resident_id: &str,
    next_attempt_time: i64,
    last_error: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let complete_time = (state == MoveState::Completed).then_some(now);
    sqlx::query(
        "UPDATE registry_moves SET state = $3, destination_resident_id = $4, \
         attempts = attempts + 1, next_attempt_time = $5, last_error = $6, \
         complete_time = $7 \
         WHERE comune = $1 AND id = $2 AND state = 'PENDING' AND direction = 'OUT'",
    )
    .bind(comune.as_str())
    .bind(id)
    .bind(state.code())
    .bind(destination_resident_id)
    .bind(next_attempt_time)
    .bind(last_error)
    .bind(complete_time)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
