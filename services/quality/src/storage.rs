//! Storage of the quality office over the node's [`Database`] (sqlx `Any`: every statement
//! written once with `$n` placeholders for SQLite and PostgreSQL). Every table is keyed by the
//! comune first, and every statement names it, so each town's data stays strictly apart.
//!
//! The standard catalogue is not stored: it is [`crate::domain::STANDARD_KPIS`]. Stored here are
//! the comuni's own KPIs, the current measurements (one per comune, KPI and period, with a
//! revision) and the history of every value a correction replaced.

use sqlx::{AnyConnection, FromRow};
use unione_kit::storage::Migrations;
use unione_kit::{Database, Istat};

use crate::domain::{Kpi, Normalisation, PeriodKind, Polarity, Reading, Source, Status};

pub mod complaints;
pub mod computations;
pub mod improvement;
pub mod review;
pub mod surveys;
pub mod transfer;

/// The quality service's migrations (tables `quality_*`, migrations table
/// `_migrations_quality`).
pub fn migrations() -> Migrations {
    Migrations {
        service: "quality",
        sqlite: sqlx::migrate!("migrations/sqlite"),
        postgres: sqlx::migrate!("migrations/postgres"),
    }
}

/// A stored measurement of one KPI for one period (the current one, or an earlier revision in
/// the history).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMeasurement {
    /// The period, in the KPI's form.
    pub period: String,
    /// The status.
    pub status: Status,
    /// The value; `Some` exactly when the status is OK.
    pub value: Option<f64>,
    /// 1 when first recorded, one more at each correction.
    pub revision: i64,
    /// When this revision was recorded, microseconds since the epoch.
    pub update_time: i64,
}

#[derive(FromRow)]
struct MeasurementRow {
    period: String,
    status: String,
    value: f64,
    revision: i64,
    update_time: i64,
}

impl TryFrom<MeasurementRow> for StoredMeasurement {
    type Error = sqlx::Error;

    fn try_from(row: MeasurementRow) -> Result<Self, Self::Error> {
        let status = decode_code(&row.status, "status", Status::from_code)?;
        Ok(Self {
            period: row.period,
            status,
            value: (status == Status::Ok).then_some(row.value),
            revision: row.revision,
            update_time: row.update_time,
        })
    }
}

#[derive(FromRow)]
struct LocalKpiRow {
    kpi_id: String,
    title: String,
    definition: String,
    unit: String,
    polarity: String,
    normalisation: String,
    target: f64,
    tolerance: f64,
    period: String,
    source: String,
    owner_office: String,
}

impl TryFrom<LocalKpiRow> for Kpi {
    type Error = sqlx::Error;

    fn try_from(row: LocalKpiRow) -> Result<Self, Self::Error> {
        Ok(Self {
            polarity: decode_code(&row.polarity, "polarity", Polarity::from_code)?,
            normalisation: decode_code(
                &row.normalisation,
                "normalisation",
                Normalisation::from_code,
            )?,
            period: decode_code(&row.period, "period", PeriodKind::from_code)?,
            source: decode_code(&row.source, "source", Source::from_code)?,
            id: row.kpi_id.into(),
            title: row.title.into(),
            definition: row.definition.into(),
            unit: row.unit.into(),
            target: row.target,
            tolerance: row.tolerance,
            owner_office: row.owner_office.into(),
            standard: false,
        })
    }
}

/// Reads a stored enum code, or a decode error naming the column (never a panic on what the
/// database returns).
fn decode_code<T>(
    code: &str,
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, sqlx::Error> {
    parse(code).ok_or_else(|| sqlx::Error::Decode(format!("unknown {column} code `{code}`").into()))
}

/// `SELECT` of a local KPI's columns, followed by `$tail` (SQL stays `&'static str`).
macro_rules! select_local_kpis {
    ($tail:literal) => {
        concat!(
            "SELECT kpi_id, title, definition, unit, polarity, normalisation, target, ",
            "tolerance, period, source, owner_office FROM quality_local_kpis",
            $tail
        )
    };
}

/// Adds a comune's own KPI, checked beforehand with [`crate::domain::check_local_kpi`].
/// Returns false, changing nothing, when the comune already has a KPI with that id.
pub async fn insert_local_kpi(
    db: &Database,
    comune: &Istat,
    kpi: &Kpi,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO quality_local_kpis (comune, kpi_id, title, definition, unit, polarity, \
         normalisation, target, tolerance, period, source, owner_office, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (comune, kpi_id) DO NOTHING",
    )
    .bind(comune.as_str())
    .bind(kpi.id.as_ref())
    .bind(kpi.title.as_ref())
    .bind(kpi.definition.as_ref())
    .bind(kpi.unit.as_ref())
    .bind(kpi.polarity.code())
    .bind(kpi.normalisation.code())
    .bind(kpi.target)
    .bind(kpi.tolerance)
    .bind(kpi.period.code())
    .bind(kpi.source.code())
    .bind(kpi.owner_office.as_ref())
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A comune's own KPI by id.
pub async fn get_local_kpi(
    db: &Database,
    comune: &Istat,
    kpi_id: &str,
) -> Result<Option<Kpi>, sqlx::Error> {
    let row: Option<LocalKpiRow> =
        sqlx::query_as(select_local_kpis!(" WHERE comune = $1 AND kpi_id = $2"))
            .bind(comune.as_str())
            .bind(kpi_id)
            .fetch_optional(db.pool())
            .await?;
    row.map(Kpi::try_from).transpose()
}

/// A comune's own KPIs with ids after `after` (all when `None`), by id, at most `limit`.
pub async fn list_local_kpis(
    db: &Database,
    comune: &Istat,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Kpi>, sqlx::Error> {
    let rows: Vec<LocalKpiRow> = sqlx::query_as(select_local_kpis!(
        " WHERE comune = $1 AND kpi_id > $2 ORDER BY kpi_id LIMIT $3"
    ))
    .bind(comune.as_str())
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter().map(Kpi::try_from).collect()
}

/// Records `reading` as the measurement of `kpi_id` for its period, in the caller's write
/// transaction (`Database::begin_write`), so the caller can store the idempotent response with
/// it.
///
/// The first recording is revision 1. A later one that changes the status or the value is a
/// correction: the current row moves to `quality_measurement_history` and the new value
/// becomes the next revision. One that changes nothing returns the current measurement as it
/// is ([`Reading::corrects`]).
pub async fn record_measurement(
    conn: &mut AnyConnection,
    comune: &Istat,
    kpi_id: &str,
    reading: &Reading,
    now: i64,
) -> Result<StoredMeasurement, sqlx::Error> {
    let period = reading.period().to_string();
    let status = reading.status();
    let value = reading.value();
    // Two attempts: a first recording that loses a race with another first recording (the
    // other's INSERT commits first, ours does nothing) reads the winner and corrects it.
    for _ in 0..2 {
        // Reads the current row and, on PostgreSQL, locks it until the transaction ends, in one
        // statement: two corrections queue instead of both superseding the same revision, and
        // a row committed by another transaction after this statement is never taken for one
        // this transaction holds. On SQLite the transaction already holds the database's write
        // lock (BEGIN IMMEDIATE).
        let current: Option<MeasurementRow> = sqlx::query_as(
            "UPDATE quality_measurements SET revision = revision \
             WHERE comune = $1 AND kpi_id = $2 AND period = $3 \
             RETURNING period, status, value, revision, update_time",
        )
        .bind(comune.as_str())
        .bind(kpi_id)
        .bind(period.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(current) = current.map(StoredMeasurement::try_from).transpose()? else {
            let inserted = sqlx::query(
                "INSERT INTO quality_measurements \
                 (comune, kpi_id, period, status, value, revision, update_time) \
                 VALUES ($1, $2, $3, $4, $5, 1, $6) \
                 ON CONFLICT (comune, kpi_id, period) DO NOTHING",
            )
            .bind(comune.as_str())
            .bind(kpi_id)
            .bind(period.as_str())
            .bind(status.code())
            .bind(value.unwrap_or(0.0))
            .bind(now)
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() == 1 {
                return Ok(StoredMeasurement {
                    period,
                    status,
                    value,
                    revision: 1,
                    update_time: now,
                });
            }
            continue;
        };
        if !reading.corrects(current.status, current.value) {
            return Ok(current);
        }
        sqlx::query(
            "INSERT INTO quality_measurement_history \
             (comune, kpi_id, period, revision, status, value, update_time, supersede_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(comune.as_str())
        .bind(kpi_id)
        .bind(period.as_str())
        .bind(current.revision)
        .bind(current.status.code())
        .bind(current.value.unwrap_or(0.0))
        .bind(current.update_time)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        let revision = current.revision + 1;
        sqlx::query(
            "UPDATE quality_measurements SET status = $4, value = $5, revision = $6, \
             update_time = $7 WHERE comune = $1 AND kpi_id = $2 AND period = $3",
        )
        .bind(comune.as_str())
        .bind(kpi_id)
        .bind(period.as_str())
        .bind(status.code())
        .bind(value.unwrap_or(0.0))
        .bind(revision)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        return Ok(StoredMeasurement {
            period,
            status,
            value,
            revision,
            update_time: now,
        });
    }
    Err(sqlx::Error::Protocol(
        "a measurement row conflicted on insert but could not be read under lock".into(),
    ))
}

/// The current measurements of a KPI with periods after `after` (all when `None`), by period,
/// at most `limit`. A KPI's periods all have one form, whose text sorts chronologically.
pub async fn list_measurements(
    db: &Database,
    comune: &Istat,
    kpi_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<StoredMeasurement>, sqlx::Error> {
    let rows: Vec<MeasurementRow> = sqlx::query_as(
        "SELECT period, status, value, revision, update_time FROM quality_measurements \
         WHERE comune = $1 AND kpi_id = $2 AND period > $3 ORDER BY period LIMIT $4",
    )
    .bind(comune.as_str())
    .bind(kpi_id)
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter().map(StoredMeasurement::try_from).collect()
}

/// The earlier revisions of a measurement, oldest first (the current one is not included).
pub async fn measurement_history(
    db: &Database,
    comune: &Istat,
    kpi_id: &str,
    period: &str,
) -> Result<Vec<StoredMeasurement>, sqlx::Error> {
    let rows: Vec<MeasurementRow> = sqlx::query_as(
        "SELECT period, status, value, revision, update_time FROM quality_measurement_history \
         WHERE comune = $1 AND kpi_id = $2 AND period = $3 ORDER BY revision",
    )
    .bind(comune.as_str())
    .bind(kpi_id)
    .bind(period)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter().map(StoredMeasurement::try_from).collect()
}
