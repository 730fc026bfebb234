//! Storage of the protocol register (migration `0002_protocol.sql`): registrations as
//! registered (never updated), their history, the content-addressed blobs, the per-year
//! counters and the daily seals.
//!
//! Every write runs in the caller's `Database::begin_write` transaction and starts with
//! [`lock_register`], which serializes the writes of one register on both backends; the
//! caller reads the clock after it, so that instants grow with commits and a day sealed is
//! never written again. The number comes from [`next_number`] in the same transaction as the
//! insert: a registration that rolls back gives its number back, so numbers have no gaps.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, FromRow};
use unione_kit::Istat;

use crate::domain::protocol::{
    Change, DayEvent, Direction, DocumentRef, Event, EventKind, NewRegistration,
    RegistrationRecord, StoredRegistration, italian_date, join_recipients,
};

use super::{decode_code, decode_date, encode_date};

/// The position of a registration in ListRegistrations: register, year, number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PageKey {
    /// The register code.
    #[serde(rename = "r")]
    pub register: String,
    /// The year.
    #[serde(rename = "y")]
    pub year: i64,
    /// The number.
    #[serde(rename = "n")]
    pub number: i64,
}

/// A sealed day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// The day.
    pub day: NaiveDate,
    /// The previous sealed day's seal (empty for the first).
    pub previous_seal: String,
    /// SHA-256 of the content, hex.
    pub content_sha256: String,
    /// The seal, hex.
    pub seal: String,
    /// When it was sealed, microseconds since the epoch.
    pub sealed_at: i64,
    /// Who sealed it.
    pub sealed_by: String,
}

/// Takes the write lock of a register (creating its row on first use). Call first in every
/// write transaction of the register.
pub async fn lock_register(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO protocol_registers (comune, register, writes) VALUES ($1, $2, 1) \
         ON CONFLICT (comune, register) DO UPDATE SET writes = protocol_registers.writes + 1",
    )
    .bind(comune.as_str())
    .bind(register)
    .execute(conn)
    .await?;
    Ok(())
}

/// The next number of `register` for `year`, taken in the caller's transaction (DOMAIN.md
/// "Protocol register": progressive, renewed each calendar year; gapless because a rolled
/// back transaction gives it back).
pub async fn next_number(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
    year: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO protocol_counters (comune, register, year, last_number) \
         VALUES ($1, $2, $3, 1) \
         ON CONFLICT (comune, register, year) \
         DO UPDATE SET last_number = protocol_counters.last_number + 1 \
         RETURNING last_number",
    )
    .bind(comune.as_str())
    .bind(register)
    .bind(year)
    .fetch_one(conn)
    .await
}

/// The last sealed day of a register, if any.
pub async fn last_sealed_day(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
) -> Result<Option<NaiveDate>, sqlx::Error> {
    let day: Option<String> = sqlx::query_scalar(
        "SELECT MAX(day) FROM protocol_seals WHERE comune = $1 AND register = $2",
    )
    .bind(comune.as_str())
    .bind(register)
    .fetch_one(conn)
    .await?;
    day.map(|d| decode_date(&d, "day")).transpose()
}

/// Stores a numbered registration and its documents' content (content-addressed: a blob
/// already stored is kept as it is).
#[allow(clippy::too_many_arguments)] // one row's worth of values, each named at the call
pub async fn insert_registration(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: String,
    register: &str,
    number: i64,
    now: i64,
    operator: &str,
    new: &NewRegistration,
) -> Result<RegistrationRecord, sqlx::Error> {
    let registration_date = italian_date(now);
    for (doc, content) in &new.documents {
        sqlx::query(
            "INSERT INTO protocol_blobs (comune, sha256, size, content) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (comune, sha256) DO NOTHING",
        )
        .bind(comune.as_str())
        .bind(doc.sha256.as_str())
        .bind(doc.size_bytes)
        .bind(content.as_slice())
        .execute(&mut *conn)
        .await?;
    }
    let record = RegistrationRecord {
        id,
        register: register.to_owned(),
        year: i64::from(chrono::Datelike::year(&registration_date)),
        number,
        registered_at: now,
        registration_date,
        direction: new.direction,
        subject: new.subject.clone(),
        sender: new.sender.clone(),
        recipients: new.recipients.clone(),
        classification: new.classification.clone(),
        assignment: new.assignment.clone(),
        documents: new.documents.iter().map(|(d, _)| d.clone()).collect(),
        operator: operator.to_owned(),
    };
    let documents =
        serde_json::to_string(&record.documents).expect("document references serialize");
    sqlx::query(
        "INSERT INTO protocol_registrations (comune, id, register, year, number, registered_at, \
         registration_date, direction, subject, sender, recipients, classification, assignment, \
         documents, operator) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(comune.as_str())
    .bind(record.id.as_str())
    .bind(register)
    .bind(record.year)
    .bind(number)
    .bind(now)
    .bind(encode_date(registration_date))
    .bind(record.direction.code())
    .bind(record.subject.as_str())
    .bind(record.sender.as_str())
    .bind(join_recipients(&record.recipients))
    .bind(record.classification.as_str())
    .bind(record.assignment.as_str())
    .bind(documents)
    .bind(operator)
    .execute(&mut *conn)
    .await?;
    Ok(record)
}

/// Appends changes to a registration's history, all at `now`, after its `revision - 1`
/// existing entries.
pub async fn append_events(
    conn: &mut AnyConnection,
    comune: &Istat,
    stored: &StoredRegistration,
    changes: Vec<Change>,
    now: i64,
    operator: &str,
) -> Result<Vec<Event>, sqlx::Error> {
    let mut out = Vec::new();
    for (seq, c) in (stored.revision()..).zip(changes) {
        sqlx::query(
            "INSERT INTO protocol_events (comune, registration_id, seq, register, at, day, kind, \
             old_value, new_value, operator, reason, authorising_act) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(comune.as_str())
        .bind(stored.record.id.as_str())
        .bind(seq)
        .bind(stored.record.register.as_str())
        .bind(now)
        .bind(encode_date(italian_date(now)))
        .bind(c.kind.code())
        .bind(c.old_value.as_str())
        .bind(c.new_value.as_str())
        .bind(operator)
        .bind(c.reason.as_str())
        .bind(c.authorising_act.as_str())
        .execute(&mut *conn)
        .await?;
        out.push(Event {
            seq,
            at: now,
            kind: c.kind,
            old_value: c.old_value,
            new_value: c.new_value,
            operator: operator.to_owned(),
            reason: c.reason,
            authorising_act: c.authorising_act,
        });
    }
    Ok(out)
}

#[derive(FromRow)]
struct RegistrationRow {
    id: String,
    register: String,
    year: i64,
    number: i64,
    registered_at: i64,
    registration_date: String,
    direction: String,
    subject: String,
    sender: String,
    recipients: String,
    classification: String,
    assignment: String,
    documents: String,
    operator: String,
}

impl TryFrom<RegistrationRow> for RegistrationRecord {
    type Error = sqlx::Error;

    fn try_from(row: RegistrationRow) -> Result<Self, Self::Error> {
        let documents: Vec<DocumentRef> = serde_json::from_str(&row.documents)
            .map_err(|e| sqlx::Error::Decode(format!("bad documents: {e}").into()))?;
        Ok(Self {
            id: row.id,
            register: row.register,
            year: row.year,
            number: row.number,
            registered_at: row.registered_at,
            registration_date: decode_date(&row.registration_date, "registration_date")?,
            direction: decode_code(&row.direction, "direction", Direction::from_code)?,
            subject: row.subject,
            sender: row.sender,
            recipients: if row.recipients.is_empty() {
                Vec::new()
            } else {
                row.recipients.lines().map(str::to_owned).collect()
            },
            classification: row.classification,
            assignment: row.assignment,
            documents,
            operator: row.operator,
        })
    }
}

#[derive(FromRow)]
struct EventRow {
    registration_id: String,
    year: i64,
    number: i64,
    seq: i64,
    at: i64,
    kind: String,
    old_value: String,
    new_value: String,
    operator: String,
    reason: String,
    authorising_act: String,
}

impl TryFrom<EventRow> for DayEvent {
    type Error = sqlx::Error;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        Ok(Self {
            registration_id: row.registration_id,
            year: row.year,
            number: row.number,
            event: Event {
                seq: row.seq,
                at: row.at,
                kind: decode_code(&row.kind, "kind", EventKind::from_code)?,
                old_value: row.old_value,
                new_value: row.new_value,
                operator: row.operator,
                reason: row.reason,
                authorising_act: row.authorising_act,
            },
        })
    }
}

/// `SELECT` of a registration's columns, followed by `$tail`.
macro_rules! select_registrations {
    ($tail:literal) => {
        concat!(
            "SELECT id, register, year, number, registered_at, registration_date, direction, ",
            "subject, sender, recipients, classification, assignment, documents, operator ",
            "FROM protocol_registrations",
            $tail
        )
    };
}

/// `SELECT` of events with their registration's year and number, followed by `$tail`.
/// (Static SQL only: sqlx's `QueryBuilder` over `Any` writes `?` placeholders, which
/// PostgreSQL refuses.)
macro_rules! concat_events {
    ($tail:literal) => {
        concat!(
            "SELECT e.registration_id, r.year, r.number, e.seq, e.at, e.kind, ",
            "e.old_value, e.new_value, e.operator, e.reason, e.authorising_act ",
            "FROM protocol_events e JOIN protocol_registrations r ",
            "ON r.comune = e.comune AND r.id = e.registration_id ",
            $tail
        )
    };
}

/// Attaches to each record its events from `events` (sorted by registration and seq).
fn attach(records: Vec<RegistrationRecord>, events: Vec<DayEvent>) -> Vec<StoredRegistration> {
    let mut by_id: std::collections::HashMap<String, Vec<Event>> = std::collections::HashMap::new();
    for e in events {
        by_id.entry(e.registration_id).or_default().push(e.event);
    }
    records
        .into_iter()
        .map(|record| StoredRegistration {
            events: by_id.remove(&record.id).unwrap_or_default(),
            record,
        })
        .collect()
}

fn decode_events(rows: Vec<EventRow>) -> Result<Vec<DayEvent>, sqlx::Error> {
    rows.into_iter().map(DayEvent::try_from).collect()
}

/// A registration of `comune` in `register` by id, with its history.
pub async fn get_registration(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
    id: &str,
) -> Result<Option<StoredRegistration>, sqlx::Error> {
    let row: Option<RegistrationRow> = sqlx::query_as(select_registrations!(
        " WHERE comune = $1 AND register = $2 AND id = $3"
    ))
    .bind(comune.as_str())
    .bind(register)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let record = RegistrationRecord::try_from(row)?;
    let rows: Vec<EventRow> = sqlx::query_as(concat_events!(
        "WHERE e.comune = $1 AND e.registration_id = $2 ORDER BY e.seq"
    ))
    .bind(comune.as_str())
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(attach(vec![record], decode_events(rows)?).pop())
}

/// Registrations of `comune` (in `register`, of `year`, when given) after `after` in
/// (register, year, number) order, at most `limit`, with their histories.
pub async fn list_registrations(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: Option<&str>,
    year: Option<i64>,
    after: Option<&PageKey>,
    limit: i64,
) -> Result<Vec<StoredRegistration>, sqlx::Error> {
    // One statement for every filter: an empty register or a zero year matches all, and the
    // first page starts after ("", 0, 0), before every real key.
    let register = register.unwrap_or("");
    let year = year.unwrap_or(0);
    let start = after.cloned().unwrap_or(PageKey {
        register: String::new(),
        year: 0,
        number: 0,
    });
    let rows: Vec<RegistrationRow> = sqlx::query_as(select_registrations!(
        " WHERE comune = $1 AND ($2 = '' OR register = $2) AND ($3 = 0 OR year = $3) \
         AND (register, year, number) > ($4, $5, $6) \
         ORDER BY register, year, number LIMIT $7"
    ))
    .bind(comune.as_str())
    .bind(register)
    .bind(year)
    .bind(start.register.as_str())
    .bind(start.year)
    .bind(start.number)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let records = rows
        .into_iter()
        .map(RegistrationRecord::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(Vec::new());
    };
    let rows: Vec<EventRow> = sqlx::query_as(concat_events!(
        "WHERE e.comune = $1 AND ($2 = '' OR r.register = $2) AND ($3 = 0 OR r.year = $3) \
         AND (r.register, r.year, r.number) >= ($4, $5, $6) \
         AND (r.register, r.year, r.number) <= ($7, $8, $9) \
         ORDER BY e.registration_id, e.seq"
    ))
    .bind(comune.as_str())
    .bind(register)
    .bind(year)
    .bind(first.register.as_str())
    .bind(first.year)
    .bind(first.number)
    .bind(last.register.as_str())
    .bind(last.year)
    .bind(last.number)
    .fetch_all(&mut *conn)
    .await?;
    Ok(attach(records, decode_events(rows)?))
}

/// The registrations made on `day` in a register, by number.
pub async fn registrations_on(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
    day: NaiveDate,
) -> Result<Vec<RegistrationRecord>, sqlx::Error> {
    let rows: Vec<RegistrationRow> = sqlx::query_as(select_registrations!(
        " WHERE comune = $1 AND register = $2 AND registration_date = $3 ORDER BY year, number"
    ))
    .bind(comune.as_str())
    .bind(register)
    .bind(encode_date(day))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(RegistrationRecord::try_from).collect()
}

/// The events of `day` in a register, by time, then registration and sequence.
pub async fn events_on(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
    day: NaiveDate,
) -> Result<Vec<DayEvent>, sqlx::Error> {
    let rows: Vec<EventRow> = sqlx::query_as(concat_events!(
        "WHERE e.comune = $1 AND e.register = $2 AND e.day = $3 \
         ORDER BY e.at, r.year, r.number, e.seq"
    ))
    .bind(comune.as_str())
    .bind(register)
    .bind(encode_date(day))
    .fetch_all(conn)
    .await?;
    decode_events(rows)
}

/// A row of `protocol_seals`, as every query of seals selects it.
#[derive(FromRow)]
pub(super) struct SealRow {
    day: String,
    previous_seal: String,
    content_sha256: String,
    seal: String,
    sealed_at: i64,
    sealed_by: String,
}

impl TryFrom<SealRow> for Seal {
    type Error = sqlx::Error;

    fn try_from(row: SealRow) -> Result<Self, Self::Error> {
        Ok(Self {
            day: decode_date(&row.day, "day")?,
            previous_seal: row.previous_seal,
            content_sha256: row.content_sha256,
            seal: row.seal,
            sealed_at: row.sealed_at,
            sealed_by: row.sealed_by,
        })
    }
}

/// The seal of a day, if sealed.
pub async fn get_seal(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
    day: NaiveDate,
) -> Result<Option<Seal>, sqlx::Error> {
    let row: Option<SealRow> = sqlx::query_as(
        "SELECT day, previous_seal, content_sha256, seal, sealed_at, sealed_by \
         FROM protocol_seals WHERE comune = $1 AND register = $2 AND day = $3",
    )
    .bind(comune.as_str())
    .bind(register)
    .bind(encode_date(day))
    .fetch_optional(conn)
    .await?;
    row.map(Seal::try_from).transpose()
}

/// Every seal of a register, by day.
pub async fn seals(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
) -> Result<Vec<Seal>, sqlx::Error> {
    let rows: Vec<SealRow> = sqlx::query_as(
        "SELECT day, previous_seal, content_sha256, seal, sealed_at, sealed_by \
         FROM protocol_seals WHERE comune = $1 AND register = $2 ORDER BY day",
    )
    .bind(comune.as_str())
    .bind(register)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Seal::try_from).collect()
}

/// Stores the seal of a day.
pub async fn insert_seal(
    conn: &mut AnyConnection,
    comune: &Istat,
    register: &str,
    seal: &Seal,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO protocol_seals (comune, register, day, previous_seal, content_sha256, seal, \
         sealed_at, sealed_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(comune.as_str())
    .bind(register)
    .bind(encode_date(seal.day))
    .bind(seal.previous_seal.as_str())
    .bind(seal.content_sha256.as_str())
    .bind(seal.seal.as_str())
    .bind(seal.sealed_at)
    .bind(seal.sealed_by.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Row counts of the protocol tables for `comune` (registrations, events, blobs), for tests
/// and checks that a refused request wrote nothing.
pub async fn counts(
    conn: &mut AnyConnection,
    comune: &Istat,
) -> Result<(i64, i64, i64), sqlx::Error> {
    let mut out = [0_i64; 3];
    for (i, sql) in [
        "SELECT COUNT(*) FROM protocol_registrations WHERE comune = $1",
        "SELECT COUNT(*) FROM protocol_events WHERE comune = $1",
        "SELECT COUNT(*) FROM protocol_blobs WHERE comune = $1",
    ]
    .into_iter()
    .enumerate()
    {
        out[i] = sqlx::query_scalar(sql)
            .bind(comune.as_str())
            .fetch_one(&mut *conn)
            .await?;
    }
    Ok((out[0], out[1], out[2]))
}

/// The content stored for `comune` under `sha256`, if any.
pub async fn get_blob(
    conn: &mut AnyConnection,
    comune: &Istat,
    sha256: &str,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT content FROM protocol_blobs WHERE comune = $1 AND sha256 = $2")
        .bind(comune.as_str())
        .bind(sha256)
        .fetch_optional(conn)
        .await
}

/// The registers of `comune` that hold registrations, with the first day of each.
pub async fn registers_with_first_day(
    conn: &mut AnyConnection,
    comune: &Istat,
) -> Result<Vec<(String, NaiveDate)>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT register, MIN(registration_date) FROM protocol_registrations \
         WHERE comune = $1 GROUP BY register ORDER BY register",
    )
    .bind(comune.as_str())
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(register, day)| Ok((register, decode_date(&day, "registration_date")?)))
        .collect()
}
