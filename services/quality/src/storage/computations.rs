//! The explanations of computed measurements (`quality_computations`): the latest computation
//! of a KPI for a period, written in the transaction that records its measurement.

use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow};
use unione_kit::{Database, Istat};

/// How a computed measurement was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredComputation {
    /// The rule, in words.
    pub method: String,
    /// The figures used, by name.
    pub inputs: Vec<(String, f64)>,
    /// The calls made, with their ranges of days.
    pub sources: Vec<String>,
    /// When it ran, microseconds since the epoch.
    pub compute_time: i64,
}

#[derive(FromRow)]
struct ComputationRow {
    period: String,
    method: String,
    inputs: String,
    sources: String,
    compute_time: i64,
}

impl TryFrom<ComputationRow> for (String, StoredComputation) {
    type Error = sqlx::Error;

    fn try_from(row: ComputationRow) -> Result<Self, Self::Error> {
        let decode = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
        Ok((
            row.period,
            StoredComputation {
                method: row.method,
                inputs: serde_json::from_str(&row.inputs).map_err(decode)?,
                sources: serde_json::from_str(&row.sources).map_err(decode)?,
                compute_time: row.compute_time,
            },
        ))
    }
}

/// Records (or replaces) the computation of `kpi_id` for `period`.
pub async fn record_computation(
    conn: &mut AnyConnection,
    comune: &Istat,
    kpi_id: &str,
    period: &str,
    computation: &StoredComputation,
) -> Result<(), sqlx::Error> {
    let encode = |e: serde_json::Error| sqlx::Error::Encode(Box::new(e));
    sqlx::query(
        "INSERT INTO quality_computations \
         (comune, kpi_id, period, method, inputs, sources, compute_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (comune, kpi_id, period) DO UPDATE SET method = excluded.method, \
         inputs = excluded.inputs, sources = excluded.sources, \
         compute_time = excluded.compute_time",
    )
    .bind(comune.as_str())
    .bind(kpi_id)
    .bind(period)
    .bind(computation.method.as_str())
    .bind(serde_json::to_string(&computation.inputs).map_err(encode)?)
    .bind(serde_json::to_string(&computation.sources).map_err(encode)?)
    .bind(computation.compute_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// The computations of `kpi_id` for the periods `from..=to` (as text, the KPI's form sorts in
/// time order), by period.
pub async fn computations(
    db: &Database,
    comune: &Istat,
    kpi_id: &str,
    from: &str,
    to: &str,
) -> Result<HashMap<String, StoredComputation>, sqlx::Error> {
    let rows: Vec<ComputationRow> = sqlx::query_as(
        "SELECT period, method, inputs, sources, compute_time FROM quality_computations \
         WHERE comune = $1 AND kpi_id = $2 AND period >= $3 AND period <= $4",
    )
    .bind(comune.as_str())
    .bind(kpi_id)
    .bind(from)
    .bind(to)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter().map(TryFrom::try_from).collect()
}

#[cfg(test)]
mod tests {
    use unione_kit::storage::testing;

    use super::*;

    #[tokio::test]
    async fn the_latest_computation_of_a_period_is_kept() {
        for t in testing::all().await {
            let db = t.db;
            db.migrate(&crate::storage::migrations())
                .await
                .expect("migrated");
            let sarzana = Istat::parse("011027").expect("istat");
            let luni = Istat::parse("011020").expect("istat");
            let first = StoredComputation {
                method: "100 x a / b".into(),
                inputs: vec![("a".into(), 1.0), ("b".into(), 4.0)],
                sources: vec!["call 2026-07-01..2026-09-30".into()],
                compute_time: 10,
            };
            let second = StoredComputation {
                inputs: vec![("a".into(), 2.0), ("b".into(), 4.0)],
                compute_time: 20,
                ..first.clone()
            };
            for c in [&first, &second] {
                let mut tx = db.begin_write().await.expect("tx");
                record_computation(&mut tx, &sarzana, "UQ0001", "2026-Q3", c)
                    .await
                    .expect("recorded");
                tx.commit().await.expect("committed");
            }
            let mut tx = db.begin_write().await.expect("tx");
            record_computation(&mut tx, &luni, "UQ0001", "2026-Q3", &first)
                .await
                .expect("recorded");
            tx.commit().await.expect("committed");

            let got = computations(&db, &sarzana, "UQ0001", "2026-Q1", "2026-Q4")
                .await
                .expect("read");
            assert_eq!(got.len(), 1);
            assert_eq!(got.get("2026-Q3"), Some(&second));
            let none = computations(&db, &sarzana, "UQ0001", "2027-Q1", "2027-Q4")
                .await
                .expect("read");
            assert!(none.is_empty(), "{}", t.label);
        }
    }
}
