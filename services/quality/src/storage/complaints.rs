//! Storage of complaints: each comune's service charter, the complaints with the deadlines
//! fixed at receipt, and the history of their statuses.

use chrono::NaiveDate;
use sqlx::{AnyConnection, FromRow};
use unione_kit::{Database, Istat};

use super::decode_code;
use crate::domain::Channel;
use crate::domain::calendar::rome_date;
use crate::domain::complaints::{Charter, ComplaintStatus, Deadlines, Facts, Intake};

/// The actor recorded for the RECEIVED entry of every complaint's history.
pub const INTAKE_ACTOR: &str = "intake";

/// A stored complaint with its history.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredComplaint {
    /// The id.
    pub complaint_id: String,
    /// What was received.
    pub intake: Intake,
    /// The current status.
    pub status: ComplaintStatus,
    /// When it was received, microseconds since the epoch.
    pub receive_time: i64,
    /// Its deadlines.
    pub deadlines: Deadlines,
    /// Every status entered, oldest first.
    pub history: Vec<StatusChange>,
}

/// One entry of a complaint's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The status entered.
    pub status: ComplaintStatus,
    /// When, microseconds since the epoch.
    pub time: i64,
    /// Who.
    pub actor: String,
}

fn decode_date(text: &str, column: &str) -> Result<NaiveDate, sqlx::Error> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| sqlx::Error::Decode(format!("{column} `{text}` is not a date").into()))
}

fn decode_days(value: i64, column: &str) -> Result<i32, sqlx::Error> {
    i32::try_from(value)
        .map_err(|_| sqlx::Error::Decode(format!("{column} {value} is out of range").into()))
}

/// A comune's charter and when it was set; `None` when never set (the defaults apply).
pub async fn get_charter(
    conn: &mut AnyConnection,
    comune: &Istat,
) -> Result<Option<(Charter, i64)>, sqlx::Error> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT acknowledgement_days, response_days, update_time FROM quality_service_charters \
         WHERE comune = $1",
    )
    .bind(comune.as_str())
    .fetch_optional(conn)
    .await?;
    row.map(|(ack, resp, time)| {
        Ok((
            Charter {
                acknowledgement_days: decode_days(ack, "acknowledgement_days")?,
                response_days: decode_days(resp, "response_days")?,
            },
            time,
        ))
    })
    .transpose()
}

/// Sets a comune's charter (checked with [`Charter::new`]).
pub async fn set_charter(
    conn: &mut AnyConnection,
    comune: &Istat,
    charter: &Charter,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO quality_service_charters \
         (comune, acknowledgement_days, response_days, update_time) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (comune) DO UPDATE SET acknowledgement_days = excluded.acknowledgement_days, \
         response_days = excluded.response_days, update_time = excluded.update_time",
    )
    .bind(comune.as_str())
    .bind(i64::from(charter.acknowledgement_days))
    .bind(i64::from(charter.response_days))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Registers a complaint as RECEIVED at `now`, with its deadlines, in the caller's write
/// transaction.
pub async fn insert_complaint(
    conn: &mut AnyConnection,
    comune: &Istat,
    complaint_id: &str,
    intake: &Intake,
    deadlines: &Deadlines,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO quality_complaints (comune, complaint_id, category, channel, text, contact, \
         status, receive_time, acknowledgement_deadline, response_deadline) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(comune.as_str())
    .bind(complaint_id)
    .bind(intake.category.as_str())
    .bind(intake.channel.code())
    .bind(intake.text.as_str())
    .bind(intake.contact.as_deref())
    .bind(ComplaintStatus::Received.code())
    .bind(now)
    .bind(deadlines.acknowledgement.to_string())
    .bind(deadlines.response.to_string())
    .execute(&mut *conn)
    .await?;
    insert_change(
        conn,
        comune,
        complaint_id,
        1,
        ComplaintStatus::Received,
        now,
        INTAKE_ACTOR,
    )
    .await
}

async fn insert_change(
    conn: &mut AnyConnection,
    comune: &Istat,
    complaint_id: &str,
    seq: i64,
    status: ComplaintStatus,
    now: i64,
    actor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO quality_complaint_history \
         (comune, complaint_id, seq, status, change_time, actor) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(comune.as_str())
    .bind(complaint_id)
    .bind(seq)
    .bind(status.code())
    .bind(now)
    .bind(actor)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(FromRow)]
struct ComplaintRow {
    complaint_id: String,
    category: String,
    channel: String,
    text: String,
    contact: Option<String>,
    status: String,
    receive_time: i64,
    acknowledgement_deadline: String,
    response_deadline: String,
}

/// A complaint of a comune by id, with its history.
pub async fn get_complaint(
    conn: &mut AnyConnection,
    comune: &Istat,
    complaint_id: &str,
) -> Result<Option<StoredComplaint>, sqlx::Error> {
    let row: Option<ComplaintRow> = sqlx::query_as(
        "SELECT complaint_id, category, channel, text, contact, status, receive_time, \
         acknowledgement_deadline, response_deadline FROM quality_complaints \
         WHERE comune = $1 AND complaint_id = $2",
    )
    .bind(comune.as_str())
    .bind(complaint_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let history: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT status, change_time, actor FROM quality_complaint_history \
         WHERE comune = $1 AND complaint_id = $2 ORDER BY seq",
    )
    .bind(comune.as_str())
    .bind(complaint_id)
    .fetch_all(&mut *conn)
    .await?;
    let history = history
        .into_iter()
        .map(|(status, time, actor)| {
            Ok(StatusChange {
                status: decode_code(&status, "status", ComplaintStatus::from_code)?,
                time,
                actor,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(StoredComplaint {
        intake: Intake {
            category: row.category,
            channel: decode_code(&row.channel, "channel", Channel::from_code)?,
            text: row.text,
            contact: row.contact,
        },
        status: decode_code(&row.status, "status", ComplaintStatus::from_code)?,
        receive_time: row.receive_time,
        deadlines: Deadlines {
            acknowledgement: decode_date(
                &row.acknowledgement_deadline,
                "acknowledgement_deadline",
            )?,
            response: decode_date(&row.response_deadline, "response_deadline")?,
        },
        complaint_id: row.complaint_id,
        history,
    }))
}

/// Moves a complaint from `from` to `to` (checked with
/// [`ComplaintStatus::check_transition`]) and records the change, in the caller's write
/// transaction. Returns false, changing nothing, when the complaint is no longer `from` (another
/// change came first).
pub async fn transition(
    conn: &mut AnyConnection,
    comune: &Istat,
    complaint_id: &str,
    from: ComplaintStatus,
    to: ComplaintStatus,
    actor: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    // Compare-and-set on the status: of two concurrent changes from the same status, one
    // updates the row and the other finds it changed.
    let sql = match to {
        ComplaintStatus::Acknowledged => {
            "UPDATE quality_complaints SET status = $3, acknowledge_time = $5 \
             WHERE comune = $1 AND complaint_id = $2 AND status = $4"
        }
        ComplaintStatus::Answered => {
            "UPDATE quality_complaints SET status = $3, answer_time = $5 \
             WHERE comune = $1 AND complaint_id = $2 AND status = $4"
        }
        _ => {
            "UPDATE quality_complaints SET status = $3 \
             WHERE comune = $1 AND complaint_id = $2 AND status = $4"
        }
    };
    let mut query = sqlx::query(sql)
        .bind(comune.as_str())
        .bind(complaint_id)
        .bind(to.code())
        .bind(from.code());
    if matches!(
        to,
        ComplaintStatus::Acknowledged | ComplaintStatus::Answered
    ) {
        query = query.bind(now);
    }
    let done = query.execute(&mut *conn).await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    let seq: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM quality_complaint_history WHERE comune = $1 AND complaint_id = $2",
    )
    .bind(comune.as_str())
    .bind(complaint_id)
    .fetch_one(&mut *conn)
    .await?;
    insert_change(conn, comune, complaint_id, seq + 1, to, now, actor).await?;
    Ok(true)
}

#[derive(FromRow)]
struct FactsRow {
    receive_time: i64,
    acknowledgement_deadline: String,
    response_deadline: String,
    acknowledge_time: Option<i64>,
    answer_time: Option<i64>,
    status: String,
}

/// What the indicators need of every complaint received in `from..until` (microseconds).
pub async fn received_between(
    db: &Database,
    comune: &Istat,
    from: i64,
    until: i64,
) -> Result<Vec<Facts>, sqlx::Error> {
    let rows: Vec<FactsRow> = sqlx::query_as(
        "SELECT receive_time, acknowledgement_deadline, response_deadline, acknowledge_time, \
         answer_time, status FROM quality_complaints \
         WHERE comune = $1 AND receive_time >= $2 AND receive_time < $3",
    )
    .bind(comune.as_str())
    .bind(from)
    .bind(until)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Facts {
                received: rome_date(row.receive_time),
                deadlines: Deadlines {
                    acknowledgement: decode_date(
                        &row.acknowledgement_deadline,
                        "acknowledgement_deadline",
                    )?,
                    response: decode_date(&row.response_deadline, "response_deadline")?,
                },
                acknowledged: row.acknowledge_time.map(rome_date),
                answered: row.answer_time.map(rome_date),
                closed: decode_code(&row.status, "status", ComplaintStatus::from_code)?
                    == ComplaintStatus::Closed,
            })
        })
        .collect()
}

/// Records the citizen who filed complaint `complaint_id` (their codice fiscale), in the
/// write transaction that inserted it.
pub async fn set_filer(
    conn: &mut AnyConnection,
    comune: &Istat,
    complaint_id: &str,
    filer: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE quality_complaints SET filer = $3 WHERE comune = $1 AND complaint_id = $2")
        .bind(comune.as_str())
        .bind(complaint_id)
        .bind(filer)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The codice fiscale of the citizen who filed complaint `complaint_id`, if a citizen did.
pub async fn filer(
    conn: &mut AnyConnection,
    comune: &Istat,
    complaint_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let filer: Option<Option<String>> = sqlx::query_scalar(
        "SELECT filer FROM quality_complaints WHERE comune = $1 AND complaint_id = $2",
    )
    .bind(comune.as_str())
    .bind(complaint_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(filer.flatten())
}

/// The position a page of complaints ends at: (receive_time, complaint_id), newest first.
pub type ComplaintPageKey = (i64, String);

/// The complaints of `comune`, newest first (receive_time desc, id desc), after `after`, at
/// most `limit`; only those filed by `filer` (a codice fiscale) when given.
pub async fn list_complaints(
    conn: &mut AnyConnection,
    comune: &Istat,
    filer: Option<&str>,
    after: Option<&ComplaintPageKey>,
    limit: i64,
) -> Result<Vec<StoredComplaint>, sqlx::Error> {
    let (after_time, after_id) = after.map_or((i64::MAX, ""), |(t, id)| (*t, id.as_str()));
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT complaint_id FROM quality_complaints WHERE comune = $1 \
         AND ($2 = '' OR filer = $2) \
         AND (receive_time < $3 OR (receive_time = $3 AND ($4 = '' OR complaint_id < $4))) \
         ORDER BY receive_time DESC, complaint_id DESC LIMIT $5",
    )
    .bind(comune.as_str())
    .bind(filer.unwrap_or(""))
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut complaints = Vec::with_capacity(ids.len());
    for id in ids {
        complaints.extend(get_complaint(conn, comune, &id).await?);
    }
    Ok(complaints)
}
