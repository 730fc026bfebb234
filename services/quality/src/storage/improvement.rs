//! Storage of improvement: quality objectives, nonconformities with their corrective actions,
//! and the history of every change with its actor (`quality_improvement_history`, one sequence
//! per objective and per nonconformity; an action's changes go in its nonconformity's).

use chrono::NaiveDate;
use sqlx::{AnyConnection, FromRow};
use unione_kit::Istat;

use super::decode_code;
use crate::domain::improvement::{
    Check, CorrectiveAction, Effectiveness, Nonconformity, NonconformitySource, Objective,
    ObjectiveStatus,
};

/// One change of an objective or a nonconformity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// When, microseconds since the epoch.
    pub time: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub change: String,
}

/// A stored objective.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObjective {
    /// The id.
    pub objective_id: String,
    /// The objective as set.
    pub objective: Objective,
    /// Its status.
    pub status: ObjectiveStatus,
    /// When it was set.
    pub create_time: i64,
    /// Its changes, oldest first.
    pub history: Vec<Change>,
}

/// A stored corrective action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAction {
    /// The nonconformity it corrects.
    pub nonconformity_id: String,
    /// Its id.
    pub action_id: String,
    /// The action as planned.
    pub action: CorrectiveAction,
    /// Its last effectiveness check.
    pub check: Option<Check>,
    /// When it was added.
    pub create_time: i64,
}

/// A stored nonconformity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNonconformity {
    /// The id.
    pub nonconformity_id: String,
    /// The nonconformity as recorded, with its current root cause.
    pub nonconformity: Nonconformity,
    /// When it was recorded.
    pub create_time: i64,
    /// When it was closed.
    pub close_time: Option<i64>,
    /// Its corrective actions, by id.
    pub actions: Vec<StoredAction>,
    /// Its changes, oldest first.
    pub history: Vec<Change>,
}

/// The history subject of an objective.
pub fn objective_subject(objective_id: &str) -> String {
    format!("objectives/{objective_id}")
}

/// The history subject of a nonconformity.
pub fn nonconformity_subject(nonconformity_id: &str) -> String {
    format!("nonconformities/{nonconformity_id}")
}

fn decode_date(text: &str, column: &str) -> Result<NaiveDate, sqlx::Error> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| sqlx::Error::Decode(format!("{column} `{text}` is not a date").into()))
}

fn encode_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Records a change of `subject`, the next in its sequence.
pub async fn add_change(
    conn: &mut AnyConnection,
    comune: &Istat,
    subject: &str,
    actor: &str,
    change: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let seq: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM quality_improvement_history \
         WHERE comune = $1 AND subject = $2",
    )
    .bind(comune.as_str())
    .bind(subject)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO quality_improvement_history (comune, subject, seq, change_time, actor, change) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(comune.as_str())
    .bind(subject)
    .bind(seq)
    .bind(now)
    .bind(actor)
    .bind(change)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The changes of `subject`, oldest first.
pub async fn history(
    conn: &mut AnyConnection,
    comune: &Istat,
    subject: &str,
) -> Result<Vec<Change>, sqlx::Error> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT change_time, actor, change FROM quality_improvement_history \
         WHERE comune = $1 AND subject = $2 ORDER BY seq",
    )
    .bind(comune.as_str())
    .bind(subject)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(time, actor, change)| Change {
            time,
            actor,
            change,
        })
        .collect())
}

#[derive(FromRow)]
struct ObjectiveRow {
    objective_id: String,
    title: String,
    kpi_id: Option<String>,
    measure: String,
    target_value: f64,
    owner_office: String,
    due_date: String,
    status: String,
    create_time: i64,
}

impl ObjectiveRow {
    fn decode(self, history: Vec<Change>) -> Result<StoredObjective, sqlx::Error> {
        Ok(StoredObjective {
            objective: Objective {
                title: self.title,
                kpi_id: self.kpi_id,
                measure: self.measure,
                target_value: self.target_value,
                owner_office: self.owner_office,
                due_date: decode_date(&self.due_date, "due_date")?,
            },
            status: decode_code(&self.status, "status", ObjectiveStatus::from_code)?,
            objective_id: self.objective_id,
            create_time: self.create_time,
            history,
        })
    }
}

/// `SELECT` of an objective's columns, followed by `$tail`.
macro_rules! select_objectives {
    ($tail:literal) => {
        concat!(
            "SELECT objective_id, title, kpi_id, measure, target_value, owner_office, due_date, ",
            "status, create_time FROM quality_objectives",
            $tail
        )
    };
}

/// Adds an objective, PLANNED, with its first history entry.
pub async fn insert_objective(
    conn: &mut AnyConnection,
    comune: &Istat,
    objective_id: &str,
    objective: &Objective,
    actor: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO quality_objectives (comune, objective_id, title, kpi_id, measure, \
         target_value, owner_office, due_date, status, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(comune.as_str())
    .bind(objective_id)
    .bind(objective.title.as_str())
    .bind(objective.kpi_id.as_deref())
    .bind(objective.measure.as_str())
    .bind(objective.target_value)
    .bind(objective.owner_office.as_str())
    .bind(encode_date(objective.due_date))
    .bind(ObjectiveStatus::Planned.code())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    add_change(
        conn,
        comune,
        &objective_subject(objective_id),
        actor,
        "CREATED",
        now,
    )
    .await
}

/// An objective with its history.
pub async fn get_objective(
    conn: &mut AnyConnection,
    comune: &Istat,
    objective_id: &str,
) -> Result<Option<StoredObjective>, sqlx::Error> {
    let row: Option<ObjectiveRow> = sqlx::query_as(select_objectives!(
        " WHERE comune = $1 AND objective_id = $2"
    ))
    .bind(comune.as_str())
    .bind(objective_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let history = history(conn, comune, &objective_subject(objective_id)).await?;
    row.decode(history).map(Some)
}

/// Objectives with ids after `after`, by id, at most `limit`: only open ones when `open_only`,
/// only open ones due before `overdue_on` when given (a `YYYY-MM-DD` date).
pub async fn list_objectives(
    conn: &mut AnyConnection,
    comune: &Istat,
    after: Option<&str>,
    open_only: bool,
    overdue_on: Option<NaiveDate>,
    limit: i64,
) -> Result<Vec<StoredObjective>, sqlx::Error> {
    let rows: Vec<ObjectiveRow> = sqlx::query_as(select_objectives!(
        " WHERE comune = $1 AND objective_id > $2 \
         AND ($3 = 0 OR status IN ('PLANNED', 'IN_PROGRESS')) \
         AND ($4 = '' OR due_date < $4) ORDER BY objective_id LIMIT $5"
    ))
    .bind(comune.as_str())
    .bind(after.unwrap_or(""))
    .bind(i64::from(open_only || overdue_on.is_some()))
    .bind(overdue_on.map(encode_date).unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let history = history(conn, comune, &objective_subject(&row.objective_id)).await?;
        out.push(row.decode(history)?);
    }
    Ok(out)
}

/// Moves an objective from `from` to `to`, recording the change; false, changing nothing,
/// when it is no longer in `from`.
pub async fn set_objective_status(
    conn: &mut AnyConnection,
    comune: &Istat,
    objective_id: &str,
    from: ObjectiveStatus,
    to: ObjectiveStatus,
    actor: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE quality_objectives SET status = $4 \
         WHERE comune = $1 AND objective_id = $2 AND status = $3",
    )
    .bind(comune.as_str())
    .bind(objective_id)
    .bind(from.code())
    .bind(to.code())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    add_change(
        conn,
        comune,
        &objective_subject(objective_id),
        actor,
        &format!("STATUS {to}"),
        now,
    )
    .await?;
    Ok(true)
}

#[derive(FromRow)]
struct NonconformityRow {
    nonconformity_id: String,
    description: String,
    source: String,
    detection_date: String,
    root_cause: String,
    create_time: i64,
    close_time: Option<i64>,
}

#[derive(FromRow)]
struct ActionRow {
    nonconformity_id: String,
    action_id: String,
    action: String,
    owner_office: String,
    due_date: String,
    check_date: Option<String>,
    result: Option<String>,
    create_time: i64,
}

impl TryFrom<ActionRow> for StoredAction {
    type Error = sqlx::Error;

    fn try_from(row: ActionRow) -> Result<Self, Self::Error> {
        let check = match (row.check_date, row.result) {
            (Some(date), Some(result)) => Some(Check {
                date: decode_date(&date, "check_date")?,
                result: decode_code(&result, "result", Effectiveness::from_code)?,
            }),
            _ => None,
        };
        Ok(Self {
            action: CorrectiveAction {
                action: row.action,
                owner_office: row.owner_office,
                due_date: decode_date(&row.due_date, "due_date")?,
            },
            nonconformity_id: row.nonconformity_id,
            action_id: row.action_id,
            check,
            create_time: row.create_time,
        })
    }
}

/// `SELECT` of an action's columns, followed by `$tail`.
macro_rules! select_actions {
    ($tail:literal) => {
        concat!(
            "SELECT nonconformity_id, action_id, action, owner_office, due_date, check_date, ",
            "result, create_time FROM quality_corrective_actions",
            $tail
        )
    };
}

impl NonconformityRow {
    async fn load(
        self,
        conn: &mut AnyConnection,
        comune: &Istat,
    ) -> Result<StoredNonconformity, sqlx::Error> {
        let actions: Vec<ActionRow> = sqlx::query_as(select_actions!(
            " WHERE comune = $1 AND nonconformity_id = $2 ORDER BY action_id"
        ))
        .bind(comune.as_str())
        .bind(self.nonconformity_id.as_str())
        .fetch_all(&mut *conn)
        .await?;
        let history = history(conn, comune, &nonconformity_subject(&self.nonconformity_id)).await?;
        Ok(StoredNonconformity {
            nonconformity: Nonconformity {
                description: self.description,
                source: decode_code(&self.source, "source", NonconformitySource::from_code)?,
                detection_date: decode_date(&self.detection_date, "detection_date")?,
                root_cause: self.root_cause,
            },
            nonconformity_id: self.nonconformity_id,
            create_time: self.create_time,
            close_time: self.close_time,
            actions: actions
                .into_iter()
                .map(StoredAction::try_from)
                .collect::<Result<_, _>>()?,
            history,
        })
    }
}

/// Adds a nonconformity, open, with its first history entry.
pub async fn insert_nonconformity(
    conn: &mut AnyConnection,
    comune: &Istat,
    nonconformity_id: &str,
    nc: &Nonconformity,
    actor: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO quality_nonconformities (comune, nonconformity_id, description, source, \
         detection_date, root_cause, create_time, close_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
    )
    .bind(comune.as_str())
    .bind(nonconformity_id)
    .bind(nc.description.as_str())
    .bind(nc.source.code())
    .bind(encode_date(nc.detection_date))
    .bind(nc.root_cause.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    add_change(
        conn,
        comune,
        &nonconformity_subject(nonconformity_id),
        actor,
        "CREATED",
        now,
    )
    .await
}

/// A nonconformity with its actions and history.
pub async fn get_nonconformity(
    conn: &mut AnyConnection,
    comune: &Istat,
    nonconformity_id: &str,
) -> Result<Option<StoredNonconformity>, sqlx::Error> {
    let row: Option<NonconformityRow> = sqlx::query_as(
        "SELECT nonconformity_id, description, source, detection_date, root_cause, create_time, \
         close_time FROM quality_nonconformities WHERE comune = $1 AND nonconformity_id = $2",
    )
    .bind(comune.as_str())
    .bind(nonconformity_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => row.load(conn, comune).await.map(Some),
        None => Ok(None),
    }
}

/// Like [`get_nonconformity`], in a write transaction, locking the nonconformity's row until
/// the transaction ends (PostgreSQL; SQLite's write transaction holds the database), so that
/// changes to it and its actions queue.
pub async fn lock_nonconformity(
    conn: &mut AnyConnection,
    comune: &Istat,
    nonconformity_id: &str,
) -> Result<Option<StoredNonconformity>, sqlx::Error> {
    let row: Option<NonconformityRow> = sqlx::query_as(
        "UPDATE quality_nonconformities SET root_cause = root_cause \
         WHERE comune = $1 AND nonconformity_id = $2 \
         RETURNING nonconformity_id, description, source, detection_date, root_cause, \
         create_time, close_time",
    )
    .bind(comune.as_str())
    .bind(nonconformity_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => row.load(conn, comune).await.map(Some),
        None => Ok(None),
    }
}

/// Nonconformities with ids after `after`, by id, at most `limit`; only open ones when
/// `open_only`.
pub async fn list_nonconformities(
    conn: &mut AnyConnection,
    comune: &Istat,
    after: Option<&str>,
    open_only: bool,
    limit: i64,
) -> Result<Vec<StoredNonconformity>, sqlx::Error> {
    let rows: Vec<NonconformityRow> = sqlx::query_as(
        "SELECT nonconformity_id, description, source, detection_date, root_cause, create_time, \
         close_time FROM quality_nonconformities WHERE comune = $1 AND nonconformity_id > $2 \
         AND ($3 = 0 OR close_time IS NULL) ORDER BY nonconformity_id LIMIT $4",
    )
    .bind(comune.as_str())
    .bind(after.unwrap_or(""))
    .bind(i64::from(open_only))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(row.load(conn, comune).await?);
    }
    Ok(out)
}

/// Sets the root cause of a nonconformity locked with [`lock_nonconformity`].
pub async fn set_root_cause(
    conn: &mut AnyConnection,
    comune: &Istat,
    nonconformity_id: &str,
    root_cause: &str,
    actor: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE quality_nonconformities SET root_cause = $3 \
         WHERE comune = $1 AND nonconformity_id = $2",
    )
    .bind(comune.as_str())
    .bind(nonconformity_id)
    .bind(root_cause)
    .execute(&mut *conn)
    .await?;
    add_change(
        conn,
        comune,
        &nonconformity_subject(nonconformity_id),
        actor,
        "ROOT_CAUSE",
        now,
    )
    .await
}

/// Closes a nonconformity locked with [`lock_nonconformity`].
pub async fn close_nonconformity(
    conn: &mut AnyConnection,
    comune: &Istat,
    nonconformity_id: &str,
    actor: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE quality_nonconformities SET close_time = $3 \
         WHERE comune = $1 AND nonconformity_id = $2 AND close_time IS NULL",
    )
    .bind(comune.as_str())
    .bind(nonconformity_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    add_change(
        conn,
        comune,
        &nonconformity_subject(nonconformity_id),
        actor,
        "CLOSED",
        now,
    )
    .await
}

/// Adds a corrective action to a nonconformity locked with [`lock_nonconformity`].
pub async fn insert_action(
    conn: &mut AnyConnection,
    comune: &Istat,
    nonconformity_id: &str,
    action_id: &str,
    action: &CorrectiveAction,
    actor: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO quality_corrective_actions (comune, nonconformity_id, action_id, action, \
         owner_office, due_date, check_date, result, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7)",
    )
    .bind(comune.as_str())
    .bind(nonconformity_id)
    .bind(action_id)
    .bind(action.action.as_str())
    .bind(action.owner_office.as_str())
    .bind(encode_date(action.due_date))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    add_change(
        conn,
        comune,
        &nonconformity_subject(nonconformity_id),
        actor,
        &format!("ACTION_ADDED {action_id}"),
        now,
    )
    .await
}

/// Records the check of an action of a nonconformity locked with [`lock_nonconformity`].
pub async fn check_action(
    conn: &mut AnyConnection,
    comune: &Istat,
    nonconformity_id: &str,
    action_id: &str,
    check: Check,
    actor: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE quality_corrective_actions SET check_date = $4, result = $5 \
         WHERE comune = $1 AND nonconformity_id = $2 AND action_id = $3",
    )
    .bind(comune.as_str())
    .bind(nonconformity_id)
    .bind(action_id)
    .bind(encode_date(check.date))
    .bind(check.result.code())
    .execute(&mut *conn)
    .await?;
    add_change(
        conn,
        comune,
        &nonconformity_subject(nonconformity_id),
        actor,
        &format!("ACTION_CHECKED {action_id} {}", check.result),
        now,
    )
    .await
}

/// Corrective actions of one nonconformity (or of all, `nonconformity_id` `None`) after the
/// key `after` (nonconformity id, action id), by that key, at most `limit`; only those overdue
/// on `overdue_on` when given.
pub async fn list_actions(
    conn: &mut AnyConnection,
    comune: &Istat,
    nonconformity_id: Option<&str>,
    after: Option<(String, String)>,
    overdue_on: Option<NaiveDate>,
    limit: i64,
) -> Result<Vec<StoredAction>, sqlx::Error> {
    let (after_nc, after_action) = after.unwrap_or_default();
    let rows: Vec<ActionRow> = sqlx::query_as(select_actions!(
        " WHERE comune = $1 AND ($2 = '' OR nonconformity_id = $2) \
         AND (nonconformity_id > $3 OR (nonconformity_id = $3 AND action_id > $4)) \
         AND ($5 = '' OR (due_date < $5 AND (result IS NULL OR result <> 'EFFECTIVE'))) \
         ORDER BY nonconformity_id, action_id LIMIT $6"
    ))
    .bind(comune.as_str())
    .bind(nonconformity_id.unwrap_or(""))
    .bind(after_nc)
    .bind(after_action)
    .bind(overdue_on.map(encode_date).unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(StoredAction::try_from).collect()
}
