//! Storage: one sqlx pool per node, SQLite (a file, WAL, foreign keys on) by default and
//! PostgreSQL when given a URL, through sqlx's `Any` driver so that every query is written once
//! for both. Each service keeps its own migrations (one directory per backend) and its own
//! migrations table, so services can share a node's database and still evolve apart.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, Transaction};

/// The database product behind a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, embedded.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A pool and the backend it talks to.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

/// The migrations of one service, for both backends.
pub struct Migrations {
    /// The service's name; its migrations table is `_migrations_{service}`.
    pub service: &'static str,
    /// The SQLite migrations (`sqlx::migrate!("migrations/sqlite")`).
    pub sqlite: Migrator,
    /// The PostgreSQL migrations (`sqlx::migrate!("migrations/postgres")`).
    pub postgres: Migrator,
}

impl Database {
    /// Opens (creating if needed) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Self, sqlx::Error> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Connects to `sqlite://...` or `postgres://...` and applies the kit's own migrations.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(sqlx::Error::Configuration(
                format!(
                    "unsupported database URL scheme (want sqlite: or postgres:): {}",
                    redact(url)
                )
                .into(),
            ));
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = match backend {
            // One writer at a time is SQLite's rule; readers run beside it under WAL.
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        let db = Self { pool, backend };
        db.migrate(&Migrations {
            service: "kit",
            sqlite: sqlx::migrate!("migrations/sqlite"),
            postgres: sqlx::migrate!("migrations/postgres"),
        })
        .await?;
        Ok(db)
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies a service's migrations for this backend.
    pub async fn migrate(&self, migrations: &Migrations) -> Result<(), sqlx::Error> {
        let mut migrator = match self.backend {
            Backend::Sqlite => Migrator::new_from(&migrations.sqlite),
            Backend::Postgres => Migrator::new_from(&migrations.postgres),
        };
        migrator.dangerous_set_table_name(format!("_migrations_{}", migrations.service));
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| sqlx::Error::Migrate(Box::new(e)))
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so that two writers queue on the busy timeout instead of failing
    /// when a read lock cannot be upgraded.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

trait MigratorExt {
    fn new_from(other: &Migrator) -> Migrator;
}

impl MigratorExt for Migrator {
    fn new_from(other: &Migrator) -> Migrator {
        Migrator::with_migrations(other.iter().cloned().collect())
    }
}

/// A URL with any password replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Microseconds since the Unix epoch, the unit of every stored instant.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A stored instant as a protobuf timestamp.
pub fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1000)
            .expect("under one second of nanoseconds fits i32"),
    }
}

/// Databases for tests: a fresh SQLite file always, and a fresh PostgreSQL schema when
/// `TEST_DATABASE_URL` is set. Storage tests run the same cases on each.
pub mod testing {
    use super::Database;

    /// A database for one test; the SQLite file lives as long as this value.
    pub struct TestDatabase {
        /// `sqlite` or `postgres`, for assertion messages.
        pub label: &'static str,
        /// The database.
        pub db: Database,
        _dir: Option<tempfile::TempDir>,
    }

    /// A fresh SQLite database in a temporary directory.
    pub async fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("a temporary directory can be created");
        let db = Database::open_sqlite(&dir.path().join("test.sqlite"))
            .await
            .expect("SQLite opens");
        TestDatabase {
            label: "sqlite",
            db,
            _dir: Some(dir),
        }
    }

    /// A fresh PostgreSQL schema on `TEST_DATABASE_URL`, or `None` (with a notice on stderr)
    /// when the variable is not set.
    pub async fn postgres() -> Option<TestDatabase> {
        let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!(
                "TEST_DATABASE_URL is not set: the PostgreSQL cases of this test were skipped"
            );
            return None;
        };
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::AnyPool::connect(&base)
            .await
            .expect("TEST_DATABASE_URL is reachable");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .expect("a test schema can be created");
        admin.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        let db = Database::connect(&url)
            .await
            .expect("the test schema opens");
        Some(TestDatabase {
            label: "postgres",
            db,
            _dir: None,
        })
    }

    /// SQLite, then PostgreSQL when configured.
    pub async fn all() -> Vec<TestDatabase> {
        sqlx::any::install_default_drivers();
        let mut out = vec![sqlite().await];
        out.extend(postgres().await);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }

    #[tokio::test]
    async fn both_backends_open_and_migrate() {
        for t in testing::all().await {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys")
                .fetch_one(t.db.pool())
                .await
                .expect("kit migrations applied");
            assert_eq!(n, 0, "{}", t.label);
        }
    }

    #[test]
    fn timestamps_split_seconds_and_nanos() {
        let ts = timestamp(1_700_000_000_123_456);
        assert_eq!((ts.seconds, ts.nanos), (1_700_000_000, 123_456_000));
    }
}
