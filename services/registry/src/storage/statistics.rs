//! The reads behind the registry office's figures (`RegistryStatisticsService`): aggregates
//! over the certificates, and the clock facts of the cases a range needs (never an applicant,
//! a subject or a reason). Each call's figures come from one statement, so from one snapshot.

use std::collections::BTreeMap;

use sqlx::FromRow;
use unione_kit::{Database, Istat};

use crate::domain::cases::{Action, CaseState, Transition};
use crate::domain::statistics::CaseRecord;

use super::{decode_code, decode_date};

/// How many certificates `comune` issued from `from` (included) to `until` (excluded),
/// microseconds since the epoch, per stored channel code.
pub async fn certificates_by_channel(
    db: &Database,
    comune: &Istat,
    from: i64,
    until: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT channel, COUNT(*) FROM registry_certificates \
         WHERE comune = $1 AND issue_time >= $2 AND issue_time < $3 \
         GROUP BY channel ORDER BY channel",
    )
    .bind(comune.as_str())
    .bind(from)
    .bind(until)
    .fetch_all(db.pool())
    .await
}

#[derive(FromRow)]
struct EventRow {
    case_id: String,
    submission_date: String,
    legal_days: i64,
    seq: i64,
    action: String,
    from_state: Option<String>,
    to_state: String,
    at: i64,
}

/// The cases of `comune` submitted before `until` and not closed before `from` (microseconds
/// since the epoch), each with its transitions before `until`, oldest first: every case
/// closed in the range, or still open at its end. Actor and reason are not read.
pub async fn cases_in_range(
    db: &Database,
    comune: &Istat,
    from: i64,
    until: i64,
) -> Result<Vec<CaseRecord>, sqlx::Error> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT c.id AS case_id, c.submission_date, c.legal_days, e.seq, e.action, \
         e.from_state, e.to_state, e.at \
         FROM registry_cases c JOIN registry_case_events e \
         ON e.comune = c.comune AND e.case_id = c.id \
         WHERE c.comune = $1 AND c.submitted_at < $3 AND e.at < $3 \
         AND NOT EXISTS (SELECT 1 FROM registry_case_events f \
             WHERE f.comune = c.comune AND f.case_id = c.id AND f.at < $2 \
             AND f.to_state IN ('ACCEPTED', 'REJECTED', 'WITHDRAWN', 'CANCELLED')) \
         ORDER BY c.id, e.seq",
    )
    .bind(comune.as_str())
    .bind(from)
    .bind(until)
    .fetch_all(db.pool())
    .await?;
    let mut cases: BTreeMap<String, CaseRecord> = BTreeMap::new();
    for row in rows {
        let transition = Transition {
            seq: row.seq,
            action: decode_code(&row.action, "action", Action::from_code)?,
            from: row
                .from_state
                .as_deref()
                .map(|s| decode_code(s, "from_state", CaseState::from_code))
                .transpose()?,
            to: decode_code(&row.to_state, "to_state", CaseState::from_code)?,
            at: row.at,
            actor: String::new(),
            reason: String::new(),
        };
        match cases.get_mut(&row.case_id) {
            Some(case) => case.history.push(transition),
            None => {
                let case = CaseRecord {
                    submission_date: decode_date(&row.submission_date, "submission_date")?,
                    legal_days: row.legal_days,
                    history: vec![transition],
                };
                cases.insert(row.case_id, case);
            }
        }
    }
    Ok(cases.into_values().collect())
}
