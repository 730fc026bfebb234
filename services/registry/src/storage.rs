//! Storage of the registry office over the node's [`Database`] (sqlx `Any`: every statement
//! written once with `$n` placeholders, for SQLite and PostgreSQL). The table is keyed by
//! (comune, id) and every statement names the comune, so each town's data stays strictly apart.
//!
//! Values are stored as the `Any` driver carries them: civil dates as TEXT `YYYY-MM-DD`,
//! instants as i64 microseconds, enums as the stable codes of [`crate::domain`].

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, FromRow};
use unione_kit::storage::Migrations;
use unione_kit::{Database, Istat};

use crate::domain::{Address, RegistrationReason, Resident, Sex};

pub mod access_log;
pub mod cases;
pub mod certificate;
pub mod household;
pub mod moves;
pub mod preservation;
pub mod protocol;
pub mod statistics;
pub mod transfer;

/// The registry service's migrations (table `registry_residents`, migrations table
/// `_migrations_registry`).
pub fn migrations() -> Migrations {
    Migrations {
        service: "registry",
        sqlite: sqlx::migrate!("migrations/sqlite"),
        postgres: sqlx::migrate!("migrations/postgres"),
    }
}

/// A new opaque resident id: 32 lower-case hex digits of a random UUID (never derived from a
/// name or a codice fiscale).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The position of a resident in the name order of ListResidents: the stored sort keys and the
/// id. Page tokens carry it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PageKey {
    /// Sort key of the family name.
    #[serde(rename = "f")]
    pub family_key: String,
    /// Sort key of the given name.
    #[serde(rename = "g")]
    pub given_key: String,
    /// The id.
    #[serde(rename = "i")]
    pub id: String,
}

/// A stored resident record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResident {
    /// The opaque id (the last segment of the resource name).
    pub id: String,
    /// The record's data.
    pub resident: Resident,
    /// 1 when created, one more at each change (the etag derives from it).
    pub revision: i64,
    /// When the record was created, microseconds since the epoch.
    pub create_time: i64,
    /// When the record last changed, microseconds since the epoch.
    pub update_time: i64,
    /// Where the record sorts in lists.
    pub page_key: PageKey,
}

/// The outcome of [`insert_resident`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The record was added.
    Created(Box<StoredResident>),
    /// A current resident of the comune already has this codice fiscale; nothing was written.
    AlreadyResident,
}

#[derive(FromRow)]
struct ResidentRow {
    id: String,
    codice_fiscale: String,
    given_name: String,
    family_name: String,
    given_key: String,
    family_key: String,
    birth_date: String,
    birth_place_code: String,
    sex: String,
    citizenship: String,
    street: String,
    house_number: String,
    postal_code: String,
    locality: String,
    registration_date: String,
    registration_reason: String,
    revision: i64,
    create_time: i64,
    update_time: i64,
}

impl TryFrom<ResidentRow> for StoredResident {
    type Error = sqlx::Error;

    fn try_from(row: ResidentRow) -> Result<Self, Self::Error> {
        Ok(Self {
            page_key: PageKey {
                family_key: row.family_key,
                given_key: row.given_key,
                id: row.id.clone(),
            },
            id: row.id,
            resident: Resident {
                codice_fiscale: row.codice_fiscale,
                given_name: row.given_name,
                family_name: row.family_name,
                birth_date: decode_date(&row.birth_date, "birth_date")?,
                birth_place_code: row.birth_place_code,
                sex: decode_code(&row.sex, "sex", Sex::from_code)?,
                citizenship: row.citizenship,
                address: Address {
                    street: row.street,
                    house_number: row.house_number,
                    postal_code: row.postal_code,
                    locality: row.locality,
                },
                registration_date: decode_date(&row.registration_date, "registration_date")?,
                registration_reason: decode_code(
                    &row.registration_reason,
                    "registration_reason",
                    RegistrationReason::from_code,
                )?,
            },
            revision: row.revision,
            create_time: row.create_time,
            update_time: row.update_time,
        })
    }
}

/// A civil date as stored.
fn encode_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Reads a stored civil date, or a decode error naming the column (never a panic on what the
/// database returns).
fn decode_date(text: &str, column: &str) -> Result<NaiveDate, sqlx::Error> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| sqlx::Error::Decode(format!("bad {column} date: {e}").into()))
}

/// Reads a stored enum code, or a decode error naming the column.
fn decode_code<T>(
    code: &str,
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, sqlx::Error> {
    parse(code).ok_or_else(|| sqlx::Error::Decode(format!("unknown {column} code `{code}`").into()))
}

/// `SELECT` of a resident's columns, followed by `$tail` (SQL stays `&'static str`).
macro_rules! select_residents {
    ($tail:literal) => {
        concat!(
            "SELECT id, codice_fiscale, given_name, family_name, given_key, family_key, ",
            "birth_date, birth_place_code, sex, citizenship, street, house_number, postal_code, ",
            "locality, registration_date, registration_reason, revision, create_time, ",
            "update_time FROM registry_residents",
            $tail
        )
    };
}

/// Adds a resident to `comune` under a new id, with its registration as the first residence
/// event (same id), in the caller's write transaction
/// (`Database::begin_write`), so the caller can store the idempotent response with it.
/// Returns [`Inserted::AlreadyResident`], writing nothing, when a current resident of the
/// comune has the same codice fiscale (the unique index decides, so two concurrent inserts
/// cannot both succeed).
pub async fn insert_resident(
    conn: &mut AnyConnection,
    comune: &Istat,
    resident: &Resident,
    now: i64,
) -> Result<Inserted, sqlx::Error> {
    let id = new_id();
    let (family_key, given_key) = resident.sort_key();
    let done = sqlx::query(
        "INSERT INTO registry_residents (comune, id, codice_fiscale, given_name, family_name, \
         given_key, family_key, birth_date, birth_place_code, sex, citizenship, street, \
         house_number, postal_code, locality, registration_date, registration_reason, \
         revision, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         1, $18, $18) \
         ON CONFLICT (comune, codice_fiscale) WHERE deregistration_date IS NULL DO NOTHING",
    )
    .bind(comune.as_str())
    .bind(id.as_str())
    .bind(resident.codice_fiscale.as_str())
    .bind(resident.given_name.as_str())
    .bind(resident.family_name.as_str())
    .bind(given_key.as_str())
    .bind(family_key.as_str())
    .bind(encode_date(resident.birth_date))
    .bind(resident.birth_place_code.as_str())
    .bind(resident.sex.code())
    .bind(resident.citizenship.as_str())
    .bind(resident.address.street.as_str())
    .bind(resident.address.house_number.as_str())
    .bind(resident.address.postal_code.as_str())
    .bind(resident.address.locality.as_str())
    .bind(encode_date(resident.registration_date))
    .bind(resident.registration_reason.code())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(Inserted::AlreadyResident);
    }
    household::insert_registration(&mut *conn, comune, &id, resident, now).await?;
    Ok(Inserted::Created(Box::new(StoredResident {
        page_key: PageKey {
            family_key,
            given_key,
            id: id.clone(),
        },
        id,
        resident: resident.clone(),
        revision: 1,
        create_time: now,
        update_time: now,
    })))
}

/// A resident of `comune` by id (current or struck off), read on `conn` (inside a
/// transaction, or a connection of the pool).
pub async fn read_resident(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
) -> Result<Option<StoredResident>, sqlx::Error> {
    let row: Option<ResidentRow> =
        sqlx::query_as(select_residents!(" WHERE comune = $1 AND id = $2"))
            .bind(comune.as_str())
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(StoredResident::try_from).transpose()
}

/// A resident of `comune` by id (current or struck off).
pub async fn get_resident(
    db: &Database,
    comune: &Istat,
    id: &str,
) -> Result<Option<StoredResident>, sqlx::Error> {
    let row: Option<ResidentRow> =
        sqlx::query_as(select_residents!(" WHERE comune = $1 AND id = $2"))
            .bind(comune.as_str())
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    row.map(StoredResident::try_from).transpose()
}

/// A resident of `comune` by id, locked for a change in the caller's write transaction: its
/// revision is bumped first (which takes the row lock on PostgreSQL), so that two changes of
/// the same person run one after the other. `None`, changing nothing, when there is no such
/// record.
pub async fn lock_resident(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
    now: i64,
) -> Result<Option<StoredResident>, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE registry_residents SET revision = revision + 1, update_time = $3 \
         WHERE comune = $1 AND id = $2",
    )
    .bind(comune.as_str())
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    let row: Option<ResidentRow> =
        sqlx::query_as(select_residents!(" WHERE comune = $1 AND id = $2"))
            .bind(comune.as_str())
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(StoredResident::try_from).transpose()
}

/// The current residents of `comune` after `after` in name order (from the first when
/// `None`), at most `limit`.
pub async fn list_residents(
    db: &Database,
    comune: &Istat,
    family_key_prefix: &str,
    after: Option<&PageKey>,
    limit: i64,
) -> Result<Vec<StoredResident>, sqlx::Error> {
    // Keys starting with the prefix sort from the prefix itself up to the prefix followed by
    // the last code point, byte by byte (COLLATE "C" on PostgreSQL, BINARY on SQLite).
    let upper = format!("{family_key_prefix}\u{10FFFF}");
    let rows: Vec<ResidentRow> = match after {
        None => {
            sqlx::query_as(select_residents!(
                " WHERE comune = $1 AND deregistration_date IS NULL \
                 AND family_key >= $2 AND family_key < $3 \
                 ORDER BY family_key, given_key, id LIMIT $4"
            ))
            .bind(comune.as_str())
            .bind(family_key_prefix)
            .bind(upper.as_str())
            .bind(limit)
            .fetch_all(db.pool())
            .await?
        }
        Some(key) => {
            sqlx::query_as(select_residents!(
                " WHERE comune = $1 AND deregistration_date IS NULL \
                 AND family_key >= $2 AND family_key < $3 \
                 AND (family_key, given_key, id) > ($4, $5, $6) \
                 ORDER BY family_key, given_key, id LIMIT $7"
            ))
            .bind(comune.as_str())
            .bind(family_key_prefix)
            .bind(upper.as_str())
            .bind(key.family_key.as_str())
            .bind(key.given_key.as_str())
            .bind(key.id.as_str())
            .bind(limit)
            .fetch_all(db.pool())
            .await?
        }
    };
    rows.into_iter().map(StoredResident::try_from).collect()
}

/// How many records `comune` holds (current or struck off).
pub async fn count_residents(db: &Database, comune: &Istat) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM registry_residents WHERE comune = $1")
        .bind(comune.as_str())
        .fetch_one(db.pool())
        .await
}

/// The current resident of `comune` with codice fiscale `codice_fiscale` (upper case), if
/// any: at most one, by the unique index on current records.
pub async fn current_resident_by_codice_fiscale(
    conn: &mut AnyConnection,
    comune: &Istat,
    codice_fiscale: &str,
) -> Result<Option<StoredResident>, sqlx::Error> {
    let row: Option<ResidentRow> = sqlx::query_as(select_residents!(
        " WHERE comune = $1 AND codice_fiscale = $2 AND deregistration_date IS NULL"
    ))
    .bind(comune.as_str())
    .bind(codice_fiscale)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(StoredResident::try_from).transpose()
}
