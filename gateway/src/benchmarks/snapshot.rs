//! The snapshot of published measurements: per member, what its quality office's open data
//! export said when the gateway last read it, and when a read last failed. Kept in the
//! gateway's database (tables `benchmark_members`, `benchmark_measurements`) so a restarted
//! gateway compares at once, and in memory, indexed by comune, KPI and period, for serving.
//!
//! A member's data is replaced whole at each successful read, in one write transaction, then
//! in memory: a comparison sees a member's old data or its new data, never a mix.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use sqlx::Row;
use unione_kit::Database;
use unione_quality::domain::Status;

/// One published measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Published {
    /// The status.
    pub status: Status,
    /// The value, as measured; `Some` exactly when the status is OK.
    pub value: Option<f64>,
    /// The revision.
    pub revision: i64,
}

/// One row read from a member: KPI id, period, measurement.
pub type Reading = (String, String, Published);

/// What the snapshot holds for one member.
#[derive(Debug, Clone, Default)]
pub struct MemberData {
    /// Last successful read, microseconds since the epoch; 0: never.
    pub read_at: i64,
    /// Last failed read, microseconds; 0: never.
    pub failed_at: i64,
    /// Why the last read failed; empty when it did not.
    pub failure: String,
    /// KPI id -> period -> measurement.
    pub values: HashMap<String, HashMap<String, Published>>,
}

impl MemberData {
    /// The measurement of a KPI for a period, if published.
    pub fn get(&self, kpi: &str, period: &str) -> Option<&Published> {
        self.values.get(kpi)?.get(period)
    }

    /// Whether the last read failed (after the last success).
    pub fn failing(&self) -> bool {
        self.failed_at > self.read_at
    }
}

/// The in-memory snapshot: ISTAT code -> what is known of the member.
#[derive(Default)]
pub struct Snapshot {
    members: RwLock<HashMap<String, Arc<MemberData>>>,
}

impl Snapshot {
    /// Reads the snapshot kept in the database.
    pub async fn load(db: &Database) -> anyhow::Result<Self> {
        let mut members: HashMap<String, MemberData> = HashMap::new();
        for row in sqlx::query("SELECT comune, read_at, failed_at, failure FROM benchmark_members")
            .fetch_all(db.pool())
            .await
            .context("reading benchmark_members")?
        {
            let comune: String = row.try_get("comune")?;
            members.insert(
                comune,
                MemberData {
                    read_at: row.try_get("read_at")?,
                    failed_at: row.try_get("failed_at")?,
                    failure: row.try_get("failure")?,
                    values: HashMap::new(),
                },
            );
        }
        let rows = sqlx::query(
            "SELECT comune, kpi_id, period, status, value, revision FROM benchmark_measurements",
        )
        .fetch_all(db.pool())
        .await
        .context("reading benchmark_measurements")?;
        for row in rows {
            let comune: String = row.try_get("comune")?;
            let code: String = row.try_get("status")?;
            let status = Status::from_code(&code)
                .with_context(|| format!("unknown status `{code}` in benchmark_measurements"))?;
            let value: f64 = row.try_get("value")?;
            let published = Published {
                status,
                value: (status == Status::Ok).then_some(value),
                revision: row.try_get("revision")?,
            };
            members
                .entry(comune)
                .or_default()
                .values
                .entry(row.try_get("kpi_id")?)
                .or_default()
                .insert(row.try_get("period")?, published);
        }
        Ok(Self {
            members: RwLock::new(members.into_iter().map(|(k, v)| (k, Arc::new(v))).collect()),
        })
    }

    /// What is known of a member.
    pub fn member(&self, istat: &str) -> Option<Arc<MemberData>> {
        self.read().get(istat).cloned()
    }

    /// Runs `f` over the whole snapshot, under its read lock (keep it short).
    pub fn with_members<T>(&self, f: impl FnOnce(&HashMap<String, Arc<MemberData>>) -> T) -> T {
        f(&self.read())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<MemberData>>> {
        self.members
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn install(&self, istat: &str, data: MemberData) {
        self.members
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(istat.to_owned(), Arc::new(data));
    }

    /// Replaces a member's data with what was just read at `at`, in the database then here.
    pub async fn store_read(
        &self,
        db: &Database,
        istat: &str,
        readings: Vec<Reading>,
        at: i64,
    ) -> anyhow::Result<()> {
        let previous = self.member(istat);
        let mut tx = db.begin_write().await?;
        sqlx::query("DELETE FROM benchmark_measurements WHERE comune = $1")
            .bind(istat.to_owned())
            .execute(&mut *tx)
            .await?;
        // One statement per row, prepared once: the same SQL on SQLite and PostgreSQL (sqlx's
        // QueryBuilder writes `?` placeholders for `Any`), and a member publishes few rows.
        for (kpi, period, m) in &readings {
            sqlx::query(
                "INSERT INTO benchmark_measurements \
                 (comune, kpi_id, period, status, value, revision) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(istat.to_owned())
            .bind(kpi.clone())
            .bind(period.clone())
            .bind(m.status.code())
            .bind(m.value.unwrap_or(0.0))
            .bind(m.revision)
            .execute(&mut *tx)
            .await?;
        }
        let failed_at = previous.as_ref().map_or(0, |p| p.failed_at);
        upsert_member(&mut tx, istat, at, failed_at, "").await?;
        tx.commit().await?;

        let mut values: HashMap<String, HashMap<String, Published>> = HashMap::new();
        for (kpi, period, m) in readings {
            values.entry(kpi).or_default().insert(period, m);
        }
        self.install(
            istat,
            MemberData {
                read_at: at,
                failed_at,
                failure: String::new(),
                values,
            },
        );
        Ok(())
    }

    /// Records that reading a member failed at `at`, keeping its data.
    pub async fn store_failure(
        &self,
        db: &Database,
        istat: &str,
        failure: &str,
        at: i64,
    ) -> anyhow::Result<()> {
        let previous = self.member(istat).map(|p| (*p).clone()).unwrap_or_default();
        let mut tx = db.begin_write().await?;
        upsert_member(&mut tx, istat, previous.read_at, at, failure).await?;
        tx.commit().await?;
        self.install(
            istat,
            MemberData {
                failed_at: at,
                failure: failure.to_owned(),
                ..previous
            },
        );
        Ok(())
    }
}

async fn upsert_member(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    istat: &str,
    read_at: i64,
    failed_at: i64,
    failure: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO benchmark_members (comune, read_at, failed_at, failure) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (comune) DO UPDATE SET read_at = excluded.read_at, \
         failed_at = excluded.failed_at, failure = excluded.failure",
    )
    .bind(istat.to_owned())
    .bind(read_at)
    .bind(failed_at)
    .bind(failure.to_owned())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: f64) -> Published {
        Published {
            status: Status::Ok,
            value: Some(value),
            revision: 1,
        }
    }

    /// A read replaces the member's data whole; a failure keeps it and is remembered; both
    /// survive a restart (the snapshot is read back from the database).
    #[tokio::test]
    async fn reads_and_failures_are_kept_across_restarts() {
        for t in unione_kit::storage::testing::all().await {
            let db = t.db.clone();
            db.migrate(&crate::store::migrations())
                .await
                .expect("migrated");
            let snapshot = Snapshot::load(&db).await.expect("empty snapshot");
            assert!(snapshot.member("011027").is_none());
            let first = vec![
                ("UQ0001".to_owned(), "2026-Q1".to_owned(), ok(93.5)),
                ("UQ0006".to_owned(), "2025".to_owned(), ok(40.0)),
                (
                    "UQ0008".to_owned(),
                    "2025".to_owned(),
                    Published {
                        status: Status::Confidential,
                        value: None,
                        revision: 2,
                    },
                ),
            ];
            snapshot
                .store_read(&db, "011027", first, 10)
                .await
                .expect("stored");
            let second = vec![("UQ0001".to_owned(), "2026-Q1".to_owned(), ok(94.0))];
            snapshot
                .store_read(&db, "011027", second, 20)
                .await
                .expect("stored");
            snapshot
                .store_failure(&db, "011027", "UNAVAILABLE: node down", 30)
                .await
                .expect("stored");

            for view in [
                snapshot.member("011027").expect("known"),
                Snapshot::load(&db)
                    .await
                    .expect("reloaded")
                    .member("011027")
                    .expect("known after a restart"),
            ] {
                assert_eq!((view.read_at, view.failed_at), (20, 30));
                assert!(view.failing());
                assert_eq!(view.failure, "UNAVAILABLE: node down");
                assert_eq!(view.get("UQ0001", "2026-Q1"), Some(&ok(94.0)));
                assert_eq!(view.get("UQ0006", "2025"), None, "replaced whole");
            }
        }
    }
}
