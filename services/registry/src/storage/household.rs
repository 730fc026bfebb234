//! Storage of residence events and households (tables `registry_residence_events`,
//! `registry_households`, `registry_household_members`). Writes take the caller's write
//! transaction, after [`super::lock_resident`]; every statement names the comune.
//!
//! Events are never changed; a membership changes once, when its end date is set.

use chrono::NaiveDate;
use sqlx::{AnyConnection, FromRow};
use unione_kit::Istat;

use super::{decode_code, decode_date, encode_date, new_id};
use crate::domain::household::{EventKind, Membership, Relationship, ResidenceEvent};
use crate::domain::{Address, Resident};

/// A stored residence event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The opaque id (the registration's is the resident's id).
    pub id: String,
    /// The position in the resident's history, from 1 (the registration).
    pub seq: i64,
    /// The event.
    pub event: ResidenceEvent,
    /// ANPR's reference; empty when no connector is configured.
    pub anpr_reference: String,
    /// When it was recorded, microseconds since the epoch.
    pub create_time: i64,
    /// The move between member comuni the event is part of (its id); empty otherwise.
    pub move_id: String,
}

/// A stored household (its composition is read with [`memberships_of_household`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHousehold {
    /// The opaque id.
    pub id: String,
    /// The date it was formed.
    pub start_date: NaiveDate,
    /// When it was created, microseconds since the epoch.
    pub create_time: i64,
}

#[derive(FromRow)]
struct EventRow {
    id: String,
    seq: i64,
    kind: String,
    effective_date: String,
    street: String,
    house_number: String,
    postal_code: String,
    locality: String,
    destination: String,
    anpr_reference: String,
    create_time: i64,
    move_id: String,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = sqlx::Error;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            seq: row.seq,
            event: ResidenceEvent {
                kind: decode_code(&row.kind, "kind", EventKind::from_code)?,
                effective_date: decode_date(&row.effective_date, "effective_date")?,
                address: Address {
                    street: row.street,
                    house_number: row.house_number,
                    postal_code: row.postal_code,
                    locality: row.locality,
                },
                destination: row.destination,
            },
            anpr_reference: row.anpr_reference,
            create_time: row.create_time,
            move_id: row.move_id,
        })
    }
}

#[derive(FromRow)]
struct MemberRow {
    household_id: String,
    resident_id: String,
    relationship: String,
    start_date: String,
    end_date: Option<String>,
}

impl TryFrom<MemberRow> for Membership {
    type Error = sqlx::Error;

    fn try_from(row: MemberRow) -> Result<Self, Self::Error> {
        Ok(Self {
            household_id: row.household_id,
            resident_id: row.resident_id,
            relationship: decode_code(&row.relationship, "relationship", Relationship::from_code)?,
            start_date: decode_date(&row.start_date, "start_date")?,
            end_date: row
                .end_date
                .as_deref()
                .map(|d| decode_date(d, "end_date"))
                .transpose()?,
        })
    }
}

/// Records a new resident's registration as their first event (same id as the resident).
pub(super) async fn insert_registration(
    conn: &mut AnyConnection,
    comune: &Istat,
    resident_id: &str,
    resident: &Resident,
    now: i64,
) -> Result<(), sqlx::Error> {
    let event = ResidenceEvent {
        kind: EventKind::Registration,
        effective_date: resident.registration_date,
        address: resident.address.clone(),
        destination: String::new(),
    };
    insert_event_row(
        conn,
        comune,
        resident_id,
        resident_id,
        1,
        &event,
        "",
        "",
        now,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn insert_event_row(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
    resident_id: &str,
    seq: i64,
    event: &ResidenceEvent,
    anpr_reference: &str,
    recorded_by: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_residence_events (comune, id, resident_id, seq, kind, \
         effective_date, street, house_number, postal_code, locality, destination, \
         anpr_reference, recorded_by, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(comune.as_str())
    .bind(id)
    .bind(resident_id)
    .bind(seq)
    .bind(event.kind.code())
    .bind(encode_date(event.effective_date))
    .bind(event.address.street.as_str())
    .bind(event.address.house_number.as_str())
    .bind(event.address.postal_code.as_str())
    .bind(event.address.locality.as_str())
    .bind(event.destination.as_str())
    .bind(anpr_reference)
    .bind(recorded_by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records an event of a resident locked with [`super::lock_resident`] and applies it to the
/// record: a change of address replaces the current address; an emigration or a death
/// strikes the record off and ends the person's household membership on that date; a
/// restoration undoes an emigration that never took effect.
pub async fn insert_event(
    conn: &mut AnyConnection,
    comune: &Istat,
    resident_id: &str,
    event: &ResidenceEvent,
    anpr_reference: &str,
    recorded_by: &str,
    now: i64,
) -> Result<StoredEvent, sqlx::Error> {
    let seq: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM registry_residence_events \
         WHERE comune = $1 AND resident_id = $2",
    )
    .bind(comune.as_str())
    .bind(resident_id)
    .fetch_one(&mut *conn)
    .await?;
    let id = new_id();
    insert_event_row(
        conn,
        comune,
        &id,
        resident_id,
        seq,
        event,
        anpr_reference,
        recorded_by,
        now,
    )
    .await?;
    match event.kind {
        EventKind::AddressChange => {
            sqlx::query(
                "UPDATE registry_residents SET street = $3, house_number = $4, \
                 postal_code = $5, locality = $6 WHERE comune = $1 AND id = $2",
            )
            .bind(comune.as_str())
            .bind(resident_id)
            .bind(event.address.street.as_str())
            .bind(event.address.house_number.as_str())
            .bind(event.address.postal_code.as_str())
            .bind(event.address.locality.as_str())
            .execute(&mut *conn)
            .await?;
        }
        EventKind::Emigration | EventKind::Death => {
            sqlx::query(
                "UPDATE registry_residents SET deregistration_date = $3 \
                 WHERE comune = $1 AND id = $2",
            )
            .bind(comune.as_str())
            .bind(resident_id)
            .bind(encode_date(event.effective_date))
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE registry_household_members SET end_date = $3 \
                 WHERE comune = $1 AND resident_id = $2 AND end_date IS NULL",
            )
            .bind(comune.as_str())
            .bind(resident_id)
            .bind(encode_date(event.effective_date))
            .execute(&mut *conn)
            .await?;
        }
        EventKind::Restoration => {
            // The emigration never took effect: the record is current again, and the household
            // membership it ended runs on (the residence events keep both facts).
            sqlx::query(
                "UPDATE registry_residents SET deregistration_date = NULL \
                 WHERE comune = $1 AND id = $2",
            )
            .bind(comune.as_str())
            .bind(resident_id)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE registry_household_members SET end_date = NULL \
                 WHERE comune = $1 AND resident_id = $2 AND end_date = $3",
            )
            .bind(comune.as_str())
            .bind(resident_id)
            .bind(encode_date(event.effective_date))
            .execute(&mut *conn)
            .await?;
        }
        EventKind::Registration => {}
    }
    Ok(StoredEvent {
        id,
        seq,
        event: event.clone(),
        anpr_reference: anpr_reference.to_owned(),
        create_time: now,
        move_id: String::new(),
    })
}

/// Marks event `event_id` of `comune` as part of move `move_id`.
pub async fn set_event_move(
    conn: &mut AnyConnection,
    comune: &Istat,
    event_id: &str,
    move_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE registry_residence_events SET move_id = $3 WHERE comune = $1 AND id = $2")
        .bind(comune.as_str())
        .bind(event_id)
        .bind(move_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A resident's events after position `after` (from the first when 0), oldest first, at
/// most `limit`.
pub async fn events(
    conn: &mut AnyConnection,
    comune: &Istat,
    resident_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT id, seq, kind, effective_date, street, house_number, postal_code, locality, \
         destination, anpr_reference, create_time, move_id FROM registry_residence_events \
         WHERE comune = $1 AND resident_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
    )
    .bind(comune.as_str())
    .bind(resident_id)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(StoredEvent::try_from).collect()
}

/// Every residence event of a resident, oldest first.
pub async fn history(
    conn: &mut AnyConnection,
    comune: &Istat,
    resident_id: &str,
) -> Result<Vec<ResidenceEvent>, sqlx::Error> {
    Ok(events(conn, comune, resident_id, 0, i64::MAX)
        .await?
        .into_iter()
        .map(|e| e.event)
        .collect())
}

/// Creates a household `id` (from [`new_id`]) formed on `start_date`, with no member yet.
pub async fn insert_household(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
    start_date: NaiveDate,
    created_by: &str,
    now: i64,
) -> Result<StoredHousehold, sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_households (comune, id, start_date, created_by, create_time) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(comune.as_str())
    .bind(id)
    .bind(encode_date(start_date))
    .bind(created_by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(StoredHousehold {
        id: id.to_owned(),
        start_date,
        create_time: now,
    })
}

/// A household of `comune` by id.
pub async fn get_household(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
) -> Result<Option<StoredHousehold>, sqlx::Error> {
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT id, start_date, create_time FROM registry_households \
         WHERE comune = $1 AND id = $2",
    )
    .bind(comune.as_str())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|(id, start, create_time)| {
        Ok(StoredHousehold {
            id,
            start_date: decode_date(&start, "start_date")?,
            create_time,
        })
    })
    .transpose()
}

/// Adds a member from `start_date`.
pub async fn insert_membership(
    conn: &mut AnyConnection,
    comune: &Istat,
    membership: &Membership,
    recorded_by: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_household_members (comune, household_id, resident_id, \
         relationship, start_date, end_date, recorded_by, create_time) \
         VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
    )
    .bind(comune.as_str())
    .bind(membership.household_id.as_str())
    .bind(membership.resident_id.as_str())
    .bind(membership.relationship.code())
    .bind(encode_date(membership.start_date))
    .bind(recorded_by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ends a resident's current membership of a household on `end_date`.
pub async fn end_membership(
    conn: &mut AnyConnection,
    comune: &Istat,
    household_id: &str,
    resident_id: &str,
    end_date: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE registry_household_members SET end_date = $4 \
         WHERE comune = $1 AND household_id = $2 AND resident_id = $3 AND end_date IS NULL",
    )
    .bind(comune.as_str())
    .bind(household_id)
    .bind(resident_id)
    .bind(encode_date(end_date))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every membership, past and current, of a household.
pub async fn memberships_of_household(
    conn: &mut AnyConnection,
    comune: &Istat,
    household_id: &str,
) -> Result<Vec<Membership>, sqlx::Error> {
    let rows: Vec<MemberRow> = sqlx::query_as(
        "SELECT household_id, resident_id, relationship, start_date, end_date \
         FROM registry_household_members WHERE comune = $1 AND household_id = $2 \
         ORDER BY start_date, resident_id",
    )
    .bind(comune.as_str())
    .bind(household_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(Membership::try_from).collect()
}

/// Every membership, past and current, of a resident, oldest first.
pub async fn memberships_of_resident(
    conn: &mut AnyConnection,
    comune: &Istat,
    resident_id: &str,
) -> Result<Vec<Membership>, sqlx::Error> {
    let rows: Vec<MemberRow> = sqlx::query_as(
        "SELECT household_id, resident_id, relationship, start_date, end_date \
         FROM registry_household_members WHERE comune = $1 AND resident_id = $2 \
         ORDER BY start_date, household_id",
    )
    .bind(comune.as_str())
    .bind(resident_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(Membership::try_from).collect()
}

/// How many rows the household and event tables hold for `comune` (events, households,
/// memberships), for tests that check nothing changed.
pub async fn count_rows(
    conn: &mut AnyConnection,
    comune: &Istat,
) -> Result<(i64, i64, i64), sqlx::Error> {
    let mut counts = [0_i64; 3];
    for (i, sql) in [
        "SELECT COUNT(*) FROM registry_residence_events WHERE comune = $1",
        "SELECT COUNT(*) FROM registry_households WHERE comune = $1",
        "SELECT COUNT(*) FROM registry_household_members WHERE comune = $1",
    ]
    .into_iter()
    .enumerate()
    {
        counts[i] = sqlx::query_scalar(sql)
            .bind(comune.as_str())
            .fetch_one(&mut *conn)
            .await?;
    }
    Ok((counts[0], counts[1], counts[2]))
}
