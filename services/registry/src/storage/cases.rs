//! Storage of cases (migration `0004_cases.sql`): procedure types, cases and the history of
//! their transitions. The clock is not stored: [`crate::domain::cases::clock`] computes it
//! from the submission date, the legal days and the history read here.
//!
//! A submission is written in the caller's `Database::begin_write` transaction together with
//! its protocol registration ([`crate::storage::protocol`]), so a failed submission takes no
//! protocol number. A transition starts with [`lock_case`], which bumps the revision (the row
//! lock on PostgreSQL), so two transitions of one case run one after the other.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, FromRow};
use unione_kit::Istat;

use crate::domain::cases::{Action, CaseState, ProcedureType, Transition};
use crate::domain::protocol::DocumentRef;

use super::{decode_code, decode_date, encode_date};

/// A stored procedure type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProcedureType {
    /// The type.
    pub procedure: ProcedureType,
    /// When it was created, microseconds since the epoch.
    pub create_time: i64,
}

/// The protocol registration of a case's submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolRef {
    /// The registration's id.
    pub registration_id: String,
    /// Its register.
    pub register: String,
    /// Its year.
    pub year: i64,
    /// Its number.
    pub number: i64,
}

/// A case as stored, with its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCase {
    /// The opaque id.
    pub id: String,
    /// The procedure type's code.
    pub procedure_code: String,
    /// The applicant's codice fiscale.
    pub applicant: String,
    /// The subject.
    pub subject: String,
    /// The free-text data.
    pub data: String,
    /// The attached documents.
    pub documents: Vec<DocumentRef>,
    /// The office handling it.
    pub office: String,
    /// The legal days when submitted.
    pub legal_days: i64,
    /// The current state.
    pub state: CaseState,
    /// The protocol registration of the submission.
    pub protocol: ProtocolRef,
    /// When submitted, microseconds since the epoch.
    pub submitted_at: i64,
    /// The Italian civil date of the submission.
    pub submission_date: NaiveDate,
    /// 1 when submitted, one more per transition.
    pub revision: i64,
    /// Every transition, oldest first.
    pub history: Vec<Transition>,
}

/// The position of a case in ListCases: submission time, then id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PageKey {
    /// Submission time.
    #[serde(rename = "t")]
    pub submitted_at: i64,
    /// The id.
    #[serde(rename = "i")]
    pub id: String,
}

/// What ListCases filters on in SQL (the overdue filter needs the clock and is applied by the
/// caller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// Only this state.
    pub state: Option<CaseState>,
    /// Only this office.
    pub office: Option<String>,
    /// Only this applicant.
    pub applicant: Option<String>,
}

#[derive(FromRow)]
struct ProcedureRow {
    code: String,
    title: String,
    legal_days: i64,
    complex: i64,
    office: String,
    classification: String,
    create_time: i64,
}

impl From<ProcedureRow> for StoredProcedureType {
    fn from(row: ProcedureRow) -> Self {
        Self {
            procedure: ProcedureType {
                code: row.code,
                title: row.title,
                legal_days: row.legal_days,
                complex: row.complex != 0,
                office: row.office,
                classification: row.classification,
            },
            create_time: row.create_time,
        }
    }
}

/// Adds a procedure type; `false`, writing nothing, when the comune already has one with this
/// code.
pub async fn insert_procedure_type(
    conn: &mut AnyConnection,
    comune: &Istat,
    procedure: &ProcedureType,
    created_by: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO registry_procedure_types (comune, code, title, legal_days, complex, office, \
         classification, created_by, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (comune, code) DO NOTHING",
    )
    .bind(comune.as_str())
    .bind(procedure.code.as_str())
    .bind(procedure.title.as_str())
    .bind(procedure.legal_days)
    .bind(i64::from(procedure.complex))
    .bind(procedure.office.as_str())
    .bind(procedure.classification.as_str())
    .bind(created_by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A procedure type of `comune` by code.
pub async fn get_procedure_type(
    conn: &mut AnyConnection,
    comune: &Istat,
    code: &str,
) -> Result<Option<StoredProcedureType>, sqlx::Error> {
    let row: Option<ProcedureRow> = sqlx::query_as(
        "SELECT code, title, legal_days, complex, office, classification, create_time \
         FROM registry_procedure_types WHERE comune = $1 AND code = $2",
    )
    .bind(comune.as_str())
    .bind(code)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(StoredProcedureType::from))
}

/// The procedure types of `comune` after the code `after` (from the first when empty), by
/// code, at most `limit`.
pub async fn list_procedure_types(
    conn: &mut AnyConnection,
    comune: &Istat,
    after: &str,
    limit: i64,
) -> Result<Vec<StoredProcedureType>, sqlx::Error> {
    let rows: Vec<ProcedureRow> = sqlx::query_as(
        "SELECT code, title, legal_days, complex, office, classification, create_time \
         FROM registry_procedure_types WHERE comune = $1 AND code > $2 ORDER BY code LIMIT $3",
    )
    .bind(comune.as_str())
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(StoredProcedureType::from).collect())
}

/// Stores a new case (its history must hold the submission only), in the caller's write
/// transaction, after its protocol registration.
pub async fn insert_case(
    conn: &mut AnyConnection,
    comune: &Istat,
    case: &StoredCase,
) -> Result<(), sqlx::Error> {
    let documents = serde_json::to_string(&case.documents).expect("document references serialize");
    sqlx::query(
        "INSERT INTO registry_cases (comune, id, procedure_code, applicant, subject, data, \
         documents, office, legal_days, state, protocol_registration, protocol_register, \
         protocol_year, protocol_number, submitted_at, submission_date, revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(comune.as_str())
    .bind(case.id.as_str())
    .bind(case.procedure_code.as_str())
    .bind(case.applicant.as_str())
    .bind(case.subject.as_str())
    .bind(case.data.as_str())
    .bind(documents)
    .bind(case.office.as_str())
    .bind(case.legal_days)
    .bind(case.state.code())
    .bind(case.protocol.registration_id.as_str())
    .bind(case.protocol.register.as_str())
    .bind(case.protocol.year)
    .bind(case.protocol.number)
    .bind(case.submitted_at)
    .bind(encode_date(case.submission_date))
    .bind(case.revision)
    .execute(&mut *conn)
    .await?;
    for t in &case.history {
        insert_transition(&mut *conn, comune, &case.id, t).await?;
    }
    Ok(())
}

async fn insert_transition(
    conn: &mut AnyConnection,
    comune: &Istat,
    case_id: &str,
    t: &Transition,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_case_events (comune, case_id, seq, action, from_state, to_state, \
         at, actor, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(comune.as_str())
    .bind(case_id)
    .bind(t.seq)
    .bind(t.action.code())
    .bind(t.from.map(CaseState::code))
    .bind(t.to.code())
    .bind(t.at)
    .bind(t.actor.as_str())
    .bind(t.reason.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends a transition to a case locked with [`lock_case`] and sets its state.
pub async fn append_transition(
    conn: &mut AnyConnection,
    comune: &Istat,
    case_id: &str,
    t: &Transition,
) -> Result<(), sqlx::Error> {
    insert_transition(&mut *conn, comune, case_id, t).await?;
    sqlx::query("UPDATE registry_cases SET state = $3 WHERE comune = $1 AND id = $2")
        .bind(comune.as_str())
        .bind(case_id)
        .bind(t.to.code())
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(FromRow)]
struct CaseRow {
    id: String,
    procedure_code: String,
    applicant: String,
    subject: String,
    data: String,
    documents: String,
    office: String,
    legal_days: i64,
    state: String,
    protocol_registration: String,
    protocol_register: String,
    protocol_year: i64,
    protocol_number: i64,
    submitted_at: i64,
    submission_date: String,
    revision: i64,
}

impl CaseRow {
    fn decode(self, history: Vec<Transition>) -> Result<StoredCase, sqlx::Error> {
        let documents: Vec<DocumentRef> = serde_json::from_str(&self.documents)
            .map_err(|e| sqlx::Error::Decode(format!("bad documents: {e}").into()))?;
        Ok(StoredCase {
            id: self.id,
            procedure_code: self.procedure_code,
            applicant: self.applicant,
            subject: self.subject,
            data: self.data,
            documents,
            office: self.office,
            legal_days: self.legal_days,
            state: decode_code(&self.state, "state", CaseState::from_code)?,
            protocol: ProtocolRef {
                registration_id: self.protocol_registration,
                register: self.protocol_register,
                year: self.protocol_year,
                number: self.protocol_number,
            },
            submitted_at: self.submitted_at,
            submission_date: decode_date(&self.submission_date, "submission_date")?,
            revision: self.revision,
            history,
        })
    }
}

#[derive(FromRow)]
struct EventRow {
    case_id: String,
    seq: i64,
    action: String,
    from_state: Option<String>,
    to_state: String,
    at: i64,
    actor: String,
    reason: String,
}

impl EventRow {
    fn decode(self) -> Result<(String, Transition), sqlx::Error> {
        let from = self
            .from_state
            .map(|s| decode_code(&s, "from_state", CaseState::from_code))
            .transpose()?;
        Ok((
            self.case_id,
            Transition {
                seq: self.seq,
                action: decode_code(&self.action, "action", Action::from_code)?,
                from,
                to: decode_code(&self.to_state, "to_state", CaseState::from_code)?,
                at: self.at,
                actor: self.actor,
                reason: self.reason,
            },
        ))
    }
}

/// `SELECT` of a case's columns, followed by `$tail`.
macro_rules! select_cases {
    ($tail:literal) => {
        concat!(
            "SELECT id, procedure_code, applicant, subject, data, documents, office, legal_days, ",
            "state, protocol_registration, protocol_register, protocol_year, protocol_number, ",
            "submitted_at, submission_date, revision FROM registry_cases",
            $tail
        )
    };
}

/// A case of `comune` by id, with its history.
pub async fn get_case(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
) -> Result<Option<StoredCase>, sqlx::Error> {
    let row: Option<CaseRow> = sqlx::query_as(select_cases!(" WHERE comune = $1 AND id = $2"))
        .bind(comune.as_str())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT case_id, seq, action, from_state, to_state, at, actor, reason \
         FROM registry_case_events WHERE comune = $1 AND case_id = $2 ORDER BY seq",
    )
    .bind(comune.as_str())
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let history = events
        .into_iter()
        .map(|e| e.decode().map(|(_, t)| t))
        .collect::<Result<Vec<_>, _>>()?;
    row.decode(history).map(Some)
}

/// A case of `comune` by id, locked for a transition in the caller's write transaction: its
/// revision is bumped first (the row lock on PostgreSQL). `None`, changing nothing, when
/// there is no such case.
pub async fn lock_case(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
) -> Result<Option<StoredCase>, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE registry_cases SET revision = revision + 1 WHERE comune = $1 AND id = $2",
    )
    .bind(comune.as_str())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    get_case(conn, comune, id).await
}

/// Cases of `comune` matching `filter`, after `after` in (submission time, id) order, at
/// most `limit`, with their histories.
pub async fn list_cases(
    conn: &mut AnyConnection,
    comune: &Istat,
    filter: &CaseFilter,
    after: Option<&PageKey>,
    limit: i64,
) -> Result<Vec<StoredCase>, sqlx::Error> {
    // One statement for every filter: an empty value matches all, and the first page starts
    // after (-1, ""), before every real key.
    let state = filter.state.map(CaseState::code).unwrap_or("");
    let office = filter.office.as_deref().unwrap_or("");
    let applicant = filter.applicant.as_deref().unwrap_or("");
    let start = after.cloned().unwrap_or(PageKey {
        submitted_at: -1,
        id: String::new(),
    });
    let rows: Vec<CaseRow> = sqlx::query_as(select_cases!(
        " WHERE comune = $1 AND ($2 = '' OR state = $2) AND ($3 = '' OR office = $3) \
         AND ($4 = '' OR applicant = $4) AND (submitted_at, id) > ($5, $6) \
         ORDER BY submitted_at, id LIMIT $7"
    ))
    .bind(comune.as_str())
    .bind(state)
    .bind(office)
    .bind(applicant)
    .bind(start.submitted_at)
    .bind(start.id.as_str())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(Vec::new());
    };
    // The histories of every case in the page's key range (a few more than needed when a
    // filter skipped some), in one statement.
    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT e.case_id, e.seq, e.action, e.from_state, e.to_state, e.at, e.actor, e.reason \
         FROM registry_case_events e JOIN registry_cases c \
         ON c.comune = e.comune AND c.id = e.case_id \
         WHERE e.comune = $1 AND (c.submitted_at, c.id) >= ($2, $3) \
         AND (c.submitted_at, c.id) <= ($4, $5) ORDER BY e.case_id, e.seq",
    )
    .bind(comune.as_str())
    .bind(first.submitted_at)
    .bind(first.id.as_str())
    .bind(last.submitted_at)
    .bind(last.id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let mut by_case: std::collections::HashMap<String, Vec<Transition>> =
        std::collections::HashMap::new();
    for e in events {
        let (case_id, t) = e.decode()?;
        by_case.entry(case_id).or_default().push(t);
    }
    rows.into_iter()
        .map(|row| {
            let history = by_case.remove(&row.id).unwrap_or_default();
            row.decode(history)
        })
        .collect()
}

/// Row counts of the case tables for `comune` (procedure types, cases, transitions), for
/// tests and checks that a refused request wrote nothing.
pub async fn counts(
    conn: &mut AnyConnection,
    comune: &Istat,
) -> Result<(i64, i64, i64), sqlx::Error> {
    let mut out = [0_i64; 3];
    for (i, sql) in [
        "SELECT COUNT(*) FROM registry_procedure_types WHERE comune = $1",
        "SELECT COUNT(*) FROM registry_cases WHERE comune = $1",
        "SELECT COUNT(*) FROM registry_case_events WHERE comune = $1",
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
