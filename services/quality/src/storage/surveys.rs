//! Storage of satisfaction surveys: the definition with its questions in order, and the
//! anonymous responses with their answers (nothing about who answered).

use sqlx::{AnyConnection, FromRow};
use unione_kit::{Database, Istat};

use super::decode_code;
use crate::domain::Channel;
use crate::domain::surveys::{Question, Scale, Survey};

/// A stored survey.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSurvey {
    /// The id.
    pub survey_id: String,
    /// The definition.
    pub survey: Survey,
    /// When it was defined, microseconds since the epoch.
    pub create_time: i64,
}

#[derive(FromRow)]
struct SurveyRow {
    survey_id: String,
    title: String,
    channel: String,
    min_sample_size: i64,
    create_time: i64,
}

#[derive(FromRow)]
struct QuestionRow {
    text: String,
    scale: String,
    importance: f64,
}

fn decode_int<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T, sqlx::Error> {
    T::try_from(value)
        .map_err(|_| sqlx::Error::Decode(format!("{column} {value} is out of range").into()))
}

/// Adds a survey checked with [`Survey::new`], in the caller's write transaction.
pub async fn insert_survey(
    conn: &mut AnyConnection,
    comune: &Istat,
    survey_id: &str,
    survey: &Survey,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO quality_surveys \
         (comune, survey_id, title, channel, min_sample_size, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(comune.as_str())
    .bind(survey_id)
    .bind(survey.title.as_str())
    .bind(survey.channel.code())
    .bind(i64::from(survey.min_sample_size))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for (position, q) in survey.questions.iter().enumerate() {
        sqlx::query(
            "INSERT INTO quality_survey_questions \
             (comune, survey_id, position, text, scale, importance) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(comune.as_str())
        .bind(survey_id)
        .bind(i64::try_from(position).expect("at most 50 questions"))
        .bind(q.text.as_str())
        .bind(q.scale.code())
        .bind(q.importance)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A survey of a comune by id.
pub async fn get_survey(
    db: &Database,
    comune: &Istat,
    survey_id: &str,
) -> Result<Option<StoredSurvey>, sqlx::Error> {
    let row: Option<SurveyRow> = sqlx::query_as(
        "SELECT survey_id, title, channel, min_sample_size, create_time FROM quality_surveys \
         WHERE comune = $1 AND survey_id = $2",
    )
    .bind(comune.as_str())
    .bind(survey_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let questions: Vec<QuestionRow> = sqlx::query_as(
        "SELECT text, scale, importance FROM quality_survey_questions \
         WHERE comune = $1 AND survey_id = $2 ORDER BY position",
    )
    .bind(comune.as_str())
    .bind(survey_id)
    .fetch_all(db.pool())
    .await?;
    let questions = questions
        .into_iter()
        .map(|q| {
            Ok(Question {
                scale: decode_code(&q.scale, "scale", Scale::from_code)?,
                text: q.text,
                importance: q.importance,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(StoredSurvey {
        survey: Survey {
            channel: decode_code(&row.channel, "channel", Channel::from_code)?,
            title: row.title,
            questions,
            min_sample_size: decode_int(row.min_sample_size, "min_sample_size")?,
        },
        survey_id: row.survey_id,
        create_time: row.create_time,
    }))
}

/// Adds a response whose answers were checked with [`Survey::check_answers`], in the caller's
/// write transaction.
pub async fn insert_response(
    conn: &mut AnyConnection,
    comune: &Istat,
    survey_id: &str,
    response_id: &str,
    answers: &[i32],
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO quality_survey_responses (comune, survey_id, response_id, submit_time) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(comune.as_str())
    .bind(survey_id)
    .bind(response_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for (position, &answer) in answers.iter().enumerate() {
        sqlx::query(
            "INSERT INTO quality_survey_answers \
             (comune, survey_id, response_id, position, answer) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(comune.as_str())
        .bind(survey_id)
        .bind(response_id)
        .bind(i64::try_from(position).expect("at most 50 answers"))
        .bind(i64::from(answer))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The answers of every response submitted in `from..until` (microseconds), each in question
/// order.
pub async fn responses_between(
    db: &Database,
    comune: &Istat,
    survey_id: &str,
    from: i64,
    until: i64,
) -> Result<Vec<Vec<i32>>, sqlx::Error> {
    // Two single-table range reads and a merge here, rather than a join: on PostgreSQL a
    // join of freshly loaded tables (no planner statistics yet) was planned as a nested loop
    // over sequential scans, a thousand times slower (services/BENCHMARKS.md).
    let in_period: Vec<(String,)> = sqlx::query_as(
        "SELECT response_id FROM quality_survey_responses \
         WHERE comune = $1 AND survey_id = $2 AND submit_time >= $3 AND submit_time < $4",
    )
    .bind(comune.as_str())
    .bind(survey_id)
    .bind(from)
    .bind(until)
    .fetch_all(db.pool())
    .await?;
    let in_period: std::collections::HashSet<String> =
        in_period.into_iter().map(|(id,)| id).collect();
    let answers: Vec<(String, i64)> = sqlx::query_as(
        "SELECT response_id, answer FROM quality_survey_answers \
         WHERE comune = $1 AND survey_id = $2 ORDER BY response_id, position",
    )
    .bind(comune.as_str())
    .bind(survey_id)
    .fetch_all(db.pool())
    .await?;
    let rows = answers
        .into_iter()
        .filter(|(response_id, _)| in_period.contains(response_id));
    let mut out: Vec<Vec<i32>> = Vec::new();
    let mut current: Option<String> = None;
    for (response_id, answer) in rows {
        if current.as_deref() != Some(response_id.as_str()) {
            out.push(Vec::new());
            current = Some(response_id);
        }
        out.last_mut()
            .expect("a response was started")
            .push(decode_int(answer, "answer")?);
    }
    Ok(out)
}

/// The position a page of surveys ends at: (create_time, survey_id), newest first.
pub type SurveyPageKey = (i64, String);

/// The surveys of `comune` with their questions, newest first (create_time desc, id desc),
/// after `after`, at most `limit`.
pub async fn list_surveys(
    db: &Database,
    comune: &Istat,
    after: Option<&SurveyPageKey>,
    limit: i64,
) -> Result<Vec<StoredSurvey>, sqlx::Error> {
    let (after_time, after_id) = after.map_or((i64::MAX, ""), |(t, id)| (*t, id.as_str()));
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT survey_id FROM quality_surveys WHERE comune = $1 \
         AND (create_time < $2 OR (create_time = $2 AND ($3 = '' OR survey_id < $3))) \
         ORDER BY create_time DESC, survey_id DESC LIMIT $4",
    )
    .bind(comune.as_str())
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut surveys = Vec::with_capacity(ids.len());
    for id in ids {
        surveys.extend(get_survey(db, comune, &id).await?);
    }
    Ok(surveys)
}
