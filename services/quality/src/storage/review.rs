//! What the management review and the open data export read: every current measurement of a
//! comune, and the ids of its surveys.

use unione_kit::{Database, Istat};

use super::{MeasurementRow, StoredMeasurement};

/// Every current measurement of a comune, as (KPI id, measurement), by KPI id then period.
pub async fn all_measurements(
    db: &Database,
    comune: &Istat,
) -> Result<Vec<(String, StoredMeasurement)>, sqlx::Error> {
    let rows: Vec<(String, String, String, f64, i64, i64)> = sqlx::query_as(
        "SELECT kpi_id, period, status, value, revision, update_time FROM quality_measurements \
         WHERE comune = $1 ORDER BY kpi_id, period",
    )
    .bind(comune.as_str())
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|(kpi_id, period, status, value, revision, update_time)| {
            let m = StoredMeasurement::try_from(MeasurementRow {
                period,
                status,
                value,
                revision,
                update_time,
            })?;
            Ok((kpi_id, m))
        })
        .collect()
}

/// The ids of a comune's surveys, sorted.
pub async fn survey_ids(db: &Database, comune: &Istat) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT survey_id FROM quality_surveys WHERE comune = $1 ORDER BY survey_id")
        .bind(comune.as_str())
        .fetch_all(db.pool())
        .await
}
