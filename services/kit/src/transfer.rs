//! Moving one comune's data of one service from a node's database to another's (`unione
//! export` / `unione import`), and the SQLite online backup (`unione backup`).
//!
//! Each service says which of its tables hold a comune's data and which column scopes a row
//! to the comune ([`Service`], in each service's `storage::transfer`); this module copies the
//! rows generically over sqlx `Any`, so SQLite and PostgreSQL sources and targets mix freely.
//!
//! The archive is a file of JSON lines:
//!
//! 1. a header ([`Header`]): the format and its version, the service, the comune, the schema
//!    version of the service and of the kit on the source, every table with its columns (name
//!    and type class: `integer`, `real`, `text`, `blob`) and row count, and the SHA-256 of
//!    everything after the header line;
//! 2. one line per row, `{"table": "...", "row": [...]}`, tables in the service's order
//!    (parents before children), rows in primary-key order, values in the header's column
//!    order: JSON null, integers, reals, strings, and blobs as lower-case hex strings.
//!
//! Rows are copied verbatim, so hash chains over them (the protocol register's daily seals,
//! receipt seals, the ledger) verify on the target as on the source. The archive holds
//! personal data and the comune's certificate seal key: it is written readable by its owner
//! only.
//!
//! Import refuses an archive whose hash or row counts do not match, whose schema versions
//! differ from the target's, that names another service, or that carries a row of another
//! comune; it refuses a target that already holds any row of that comune for that service;
//! and it writes every row in one transaction, so a failure leaves the target as it was.
//!
//! The statements are built here from the service's table names and the columns the database
//! itself reports, never from a value; values are always bound (`$n`: sqlx's `QueryBuilder`
//! writes `?` placeholders for `Any`, which PostgreSQL does not read).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

use crate::Istat;
use crate::storage::{Backend, Database, Migrations};

/// The `format` field of every archive.
pub const FORMAT: &str = "unione-transfer";
/// The version of the archive format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Rows per multi-row INSERT (fewer when a table has many columns).
const MAX_BINDS_PER_INSERT: usize = 900;

/// One service's data, as far as a move is concerned.
pub struct Service {
    /// `registry`, `payments` or `quality`.
    pub name: &'static str,
    /// Its migrations: import applies them to a fresh target.
    pub migrations: fn() -> Migrations,
    /// Prefixes of the tables the service owns. Export refuses a database holding a table with
    /// one of these prefixes that [`Service::tables`] does not list, so no table's data can
    /// be left behind silently when a migration adds one.
    pub prefixes: &'static [&'static str],
    /// The tables holding a comune's data, parents before children (the order of import).
    pub tables: &'static [Table],
}

/// A table and how its rows belong to a comune.
pub struct Table {
    /// The table.
    pub name: &'static str,
    /// Which rows are the comune's.
    pub scope: Scope,
}

impl Table {
    /// A table whose `comune` column holds the ISTAT code.
    pub const fn by_comune(name: &'static str) -> Self {
        Self {
            name,
            scope: Scope::Comune("comune"),
        }
    }

    /// The node's idempotency keys of one service for the comune: those whose scope starts
    /// with `{service_comuni}{istat}/` (`service_comuni` as `registry/comuni/`).
    pub const fn idempotency_keys(service_comuni: &'static str) -> Self {
        Self {
            name: "idempotency_keys",
            scope: Scope::Prefix {
                column: "scope",
                before: service_comuni,
                after: "/",
            },
        }
    }
}

/// How a table's rows are scoped to a comune.
pub enum Scope {
    /// The column holds the ISTAT code.
    Comune(&'static str),
    /// The column starts with `{before}{istat}{after}` (the idempotency keys' scope, e.g.
    /// `registry/comuni/011027/`).
    Prefix {
        /// The column.
        column: &'static str,
        /// What comes before the ISTAT code.
        before: &'static str,
        /// What comes after it.
        after: &'static str,
    },
}

impl Scope {
    fn column(&self) -> &'static str {
        match self {
            Scope::Comune(c) | Scope::Prefix { column: c, .. } => c,
        }
    }

    /// The value the condition compares with.
    fn key(&self, istat: &str) -> String {
        match self {
            Scope::Comune(_) => istat.to_owned(),
            Scope::Prefix { before, after, .. } => format!("{before}{istat}{after}"),
        }
    }

    /// Whether a row's scope column value belongs to `istat`.
    fn matches(&self, value: &str, istat: &str) -> bool {
        match self {
            Scope::Comune(_) => value == istat,
            Scope::Prefix { .. } => value.starts_with(&self.key(istat)),
        }
    }

    /// ` WHERE <condition>` comparing with the placeholder `$1`, and the value to bind.
    fn where_clause(&self, istat: &str) -> (String, String) {
        let key = self.key(istat);
        let condition = match self {
            Scope::Comune(column) => format!(" WHERE {column} = $1"),
            Scope::Prefix { column, .. } => {
                format!(" WHERE substr({column}, 1, {}) = $1", key.chars().count())
            }
        };
        (condition, key)
    }
}

/// The class of a column's values, the same on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// SQLite INTEGER; PostgreSQL SMALLINT, INTEGER, BIGINT.
    Integer,
    /// SQLite REAL; PostgreSQL REAL, DOUBLE PRECISION.
    Real,
    /// TEXT.
    Text,
    /// SQLite BLOB; PostgreSQL BYTEA.
    Blob,
}

/// A column of a table in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type class.
    #[serde(rename = "type")]
    pub kind: ColumnType,
}

/// A table in the archive's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableHeader {
    /// The table.
    pub name: String,
    /// Its columns, in the order of every row's values (sorted by name).
    pub columns: Vec<Column>,
    /// How many rows follow.
    pub rows: u64,
}

/// The first line of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the build that wrote it.
    pub format_version: u32,
    /// The service.
    pub service: String,
    /// The comune's ISTAT code.
    pub comune: String,
    /// The last migration applied on the source, per migrations table (`kit` and the
    /// service).
    pub schema_versions: BTreeMap<String, i64>,
    /// `sqlite` or `postgres`.
    pub source_backend: String,
    /// When it was written (RFC 3339, UTC).
    pub created_at: String,
    /// The tables, in the order their rows follow.
    pub tables: Vec<TableHeader>,
    /// SHA-256 (lower-case hex) of every byte after the header line.
    pub content_sha256: String,
}

/// What an export or import moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The service.
    pub service: String,
    /// The comune.
    pub comune: String,
    /// Rows per table, in archive order.
    pub rows: Vec<(String, u64)>,
    /// The archive's content hash.
    pub content_sha256: String,
}

impl Summary {
    /// All rows of all tables.
    pub fn total_rows(&self) -> u64 {
        self.rows.iter().map(|(_, n)| n).sum()
    }

    fn of(header: &Header) -> Self {
        Self {
            service: header.service.clone(),
            comune: header.comune.clone(),
            rows: header
                .tables
                .iter()
                .map(|t| (t.name.clone(), t.rows))
                .collect(),
            content_sha256: header.content_sha256.clone(),
        }
    }
}

/// Why an export, import or backup failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading or writing the archive failed.
    #[error("archive file: {0}")]
    Io(#[from] std::io::Error),
    /// The archive is not one this build can read.
    #[error("not a valid archive: {0}")]
    Malformed(String),
    /// The content does not match the header's hash or counts.
    #[error("the archive is corrupt or incomplete: {0}")]
    Corrupt(String),
    /// The archive is of another service than the one named.
    #[error("the archive holds {found} data, not {expected}")]
    WrongService {
        /// The service named on the command line.
        expected: String,
        /// The archive's.
        found: String,
    },
    /// Source and target schemas differ.
    #[error("schema mismatch: {0} (upgrade the older node first)")]
    Schema(String),
    /// The target already holds data of the comune.
    #[error(
        "the target already holds {service} data of comune {comune} ({rows} rows in {table}); \
         import only into a database with none"
    )]
    TargetHasData {
        /// The service.
        service: String,
        /// The comune.
        comune: String,
        /// The first table found with rows.
        table: String,
        /// How many.
        rows: i64,
    },
    /// The database holds a table of the service that the service's list does not name.
    #[error("table {0} belongs to the service but is not in its transfer list")]
    UnlistedTable(String),
    /// The operation needs SQLite.
    #[error("{0}")]
    Unsupported(String),
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    fn to_json(&self) -> Result<serde_json::Value, TransferError> {
        Ok(match self {
            Value::Null => serde_json::Value::Null,
            Value::Integer(i) => serde_json::Value::from(*i),
            Value::Real(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .ok_or_else(|| {
                    TransferError::Unsupported(format!("a real value that is not finite: {f}"))
                })?,
            Value::Text(s) => serde_json::Value::String(s.clone()),
            Value::Blob(b) => serde_json::Value::String(hex::encode(b)),
        })
    }

    fn from_json(v: &serde_json::Value, kind: ColumnType) -> Option<Self> {
        if v.is_null() {
            return Some(Value::Null);
        }
        Some(match kind {
            ColumnType::Integer => Value::Integer(v.as_i64()?),
            ColumnType::Real => Value::Real(v.as_f64()?),
            ColumnType::Text => Value::Text(v.as_str()?.to_owned()),
            ColumnType::Blob => Value::Blob(hex::decode(v.as_str()?).ok()?),
        })
    }

    fn bind<'q>(self, kind: ColumnType, q: AnyQuery<'q>) -> AnyQuery<'q> {
        match (self, kind) {
            (Value::Null, ColumnType::Integer) => q.bind(None::<i64>),
            // sqlx 0.9.0's Any driver hands PostgreSQL a NULL f64 as a float4 and a NULL f32
            // as a float8 (swapped in `AnyArguments::convert_into`); a float4 parameter in a
            // cached statement then refuses the 8-byte reals of the next batch. Binding the
            // f32 NULL gives PostgreSQL the float8 the column is.
            (Value::Null, ColumnType::Real) => q.bind(None::<f32>),
            (Value::Null, ColumnType::Text) => q.bind(None::<String>),
            (Value::Null, ColumnType::Blob) => q.bind(None::<Vec<u8>>),
            (Value::Integer(i), _) => q.bind(i),
            (Value::Real(f), _) => q.bind(f),
            (Value::Text(s), _) => q.bind(s),
            (Value::Blob(b), _) => q.bind(b),
        }
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// A row line of the archive.
#[derive(Serialize, Deserialize)]
struct RowLine {
    table: String,
    row: Vec<serde_json::Value>,
}

/// Writes `istat`'s data of `service` from `db` to a new archive at `out` (refusing to
/// overwrite a file). The rows are read in one transaction, a consistent snapshot while the
/// node keeps writing.
pub async fn export(
    db: &Database,
    service: &Service,
    istat: &Istat,
    out: &Path,
) -> Result<Summary, TransferError> {
    if out.exists() {
        return Err(TransferError::Io(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists; not overwriting it", out.display()),
        )));
    }
    let mut tx = db.pool().begin().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    check_listed(&mut tx, db.backend(), service).await?;
    let schema_versions = schema_versions(&mut tx, service).await?;

    let body_path = sibling(out, "body");
    let body_file = private_file(&body_path)?;
    let result = async {
        let mut body = HashingWriter::new(BufWriter::new(body_file));
        let mut tables = Vec::with_capacity(service.tables.len());
        for table in service.tables {
            let columns = columns(&mut tx, db.backend(), table.name).await?;
            let key = primary_key(&mut tx, db.backend(), table.name).await?;
            let list: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            let order: Vec<String> = key
                .iter()
                .map(|k| {
                    let text = columns
                        .iter()
                        .any(|c| &c.name == k && c.kind == ColumnType::Text);
                    if text && db.backend() == Backend::Postgres {
                        // Byte order, as SQLite's, whatever the database's collation.
                        format!("{k} COLLATE \"C\"")
                    } else {
                        k.clone()
                    }
                })
                .collect();
            let (condition, scope_key) = table.scope.where_clause(istat.as_str());
            let sql = format!(
                "SELECT {} FROM {}{condition} ORDER BY {}",
                list.join(", "),
                table.name,
                order.join(", ")
            );
            let mut rows = sqlx::query(AssertSqlSafe(sql))
                .bind(scope_key)
                .fetch(&mut *tx);
            let mut count = 0u64;
            while let Some(row) = rows.try_next().await? {
                let mut values = Vec::with_capacity(columns.len());
                for (i, c) in columns.iter().enumerate() {
                    values.push(read_value(&row, i, c.kind)?.to_json()?);
                }
                let line = serde_json::to_string(&RowLine {
                    table: table.name.to_owned(),
                    row: values,
                })
                .map_err(|e| TransferError::Malformed(e.to_string()))?;
                body.write_all(line.as_bytes())?;
                body.write_all(b"\n")?;
                count += 1;
            }
            tables.push(TableHeader {
                name: table.name.to_owned(),
                columns,
                rows: count,
            });
        }
        let content_sha256 = body.finish()?;
        Ok::<_, TransferError>((tables, content_sha256))
    }
    .await;
    drop(tx);
    let (tables, content_sha256) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&body_path);
            return Err(e);
        }
    };
    let header = Header {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        service: service.name.to_owned(),
        comune: istat.as_str().to_owned(),
        schema_versions,
        source_backend: db.backend().as_str().to_owned(),
        created_at: chrono::Utc::now().to_rfc3339(),
        tables,
        content_sha256,
    };
    let assembled = (|| {
        let partial = sibling(out, "partial");
        let mut file = BufWriter::new(private_file(&partial)?);
        serde_json::to_writer(&mut file, &header)
            .map_err(|e| TransferError::Malformed(e.to_string()))?;
        file.write_all(b"\n")?;
        std::io::copy(&mut File::open(&body_path)?, &mut file)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&partial, out)?;
        Ok::<_, TransferError>(())
    })();
    let _ = std::fs::remove_file(&body_path);
    assembled?;
    Ok(Summary::of(&header))
}

/// Reads and checks an archive's header (format, version) without reading the rows.
pub fn read_header(input: &Path) -> Result<Header, TransferError> {
    let mut reader = BufReader::new(File::open(input)?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    parse_header(&line)
}

fn parse_header(line: &str) -> Result<Header, TransferError> {
    let header: Header = serde_json::from_str(line.trim_end())
        .map_err(|e| TransferError::Malformed(format!("header: {e}")))?;
    if header.format != FORMAT {
        return Err(TransferError::Malformed(format!(
            "format {:?}, expected {FORMAT:?}",
            header.format
        )));
    }
    if header.format_version != FORMAT_VERSION {
        return Err(TransferError::Malformed(format!(
            "format version {} (this build reads {FORMAT_VERSION})",
            header.format_version
        )));
    }
    if Istat::parse(&header.comune).is_none() {
        return Err(TransferError::Malformed(format!(
            "comune {:?} is not an ISTAT code",
            header.comune
        )));
    }
    Ok(header)
}

/// Imports an archive of `service` into `db`, applying the service's migrations first (a fresh
/// database gets its schema). All rows or none.
pub async fn import(
    db: &Database,
    service: &Service,
    input: &Path,
) -> Result<Summary, TransferError> {
    let header = read_header(input)?;
    if header.service != service.name {
        return Err(TransferError::WrongService {
            expected: service.name.to_owned(),
            found: header.service,
        });
    }
    // First pass: the content is what the header says, before anything is written.
    verify_content(input, &header)?;

    db.migrate(&(service.migrations)()).await?;
    let mut tx = db.begin_write().await?;
    let target_versions = schema_versions(&mut tx, service).await?;
    if target_versions != header.schema_versions {
        return Err(TransferError::Schema(format!(
            "the archive was written at schema versions {:?}, the target is at {:?}",
            header.schema_versions, target_versions
        )));
    }
    let by_name: BTreeMap<&str, &Table> = service.tables.iter().map(|t| (t.name, t)).collect();
    let listed: Vec<&str> = service.tables.iter().map(|t| t.name).collect();
    let archived: Vec<&str> = header.tables.iter().map(|t| t.name.as_str()).collect();
    if listed != archived {
        return Err(TransferError::Schema(format!(
            "the archive holds tables {archived:?}, this build moves {listed:?}"
        )));
    }
    for table in service.tables {
        let (condition, key) = table.scope.where_clause(&header.comune);
        let sql = format!("SELECT COUNT(*) FROM {}{condition}", table.name);
        let rows: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        if rows > 0 {
            return Err(TransferError::TargetHasData {
                service: service.name.to_owned(),
                comune: header.comune.clone(),
                table: table.name.to_owned(),
                rows,
            });
        }
    }
    for t in &header.tables {
        let target = columns(&mut tx, db.backend(), &t.name).await?;
        let source = &t.columns;
        if &target != source {
            return Err(TransferError::Schema(format!(
                "table {} has columns {:?} in the archive and {:?} on the target",
                t.name, source, target
            )));
        }
    }

    // Second pass: insert, table by table, in batches, hashing again: a file changed since
    // the first pass is refused before the commit.
    let mut reader = BufReader::new(File::open(input)?);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    let mut hasher = Sha256::new();
    let mut pending: Vec<Vec<Value>> = Vec::new();
    let mut current = 0usize;
    let changed = || TransferError::Corrupt("the archive changed while it was read".to_owned());
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        hasher.update(&line);
        let row: RowLine =
            serde_json::from_slice(&line).map_err(|e| TransferError::Malformed(e.to_string()))?;
        while header.tables.get(current).ok_or_else(changed)?.name != row.table {
            flush(&mut tx, &header.tables[current], &mut pending).await?;
            current += 1;
        }
        let table = &header.tables[current];
        let scope = &by_name[table.name.as_str()].scope;
        let values = decode_row(table, &row.row)?;
        let scope_index = table
            .columns
            .iter()
            .position(|c| c.name == scope.column())
            .ok_or_else(|| {
                TransferError::Schema(format!(
                    "table {} has no column {}",
                    table.name,
                    scope.column()
                ))
            })?;
        match &values[scope_index] {
            Value::Text(v) if scope.matches(v, &header.comune) => {}
            other => {
                return Err(TransferError::Corrupt(format!(
                    "a row of {} belongs to {other:?}, not to comune {}",
                    table.name, header.comune
                )));
            }
        }
        pending.push(values);
        if pending.len() * table.columns.len() >= MAX_BINDS_PER_INSERT {
            flush(&mut tx, table, &mut pending).await?;
        }
    }
    if hex::encode(hasher.finalize()) != header.content_sha256 {
        return Err(changed());
    }
    if let Some(table) = header.tables.get(current) {
        flush(&mut tx, table, &mut pending).await?;
    }
    tx.commit().await?;
    Ok(Summary::of(&header))
}

/// Hashes everything after the header and counts each table's rows, checking both against
/// the header and that tables come in the header's order.
fn verify_content(input: &Path, header: &Header) -> Result<(), TransferError> {
    let mut reader = BufReader::new(File::open(input)?);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    let mut hasher = Sha256::new();
    let mut counts = vec![0u64; header.tables.len()];
    let mut current = 0usize;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        hasher.update(&line);
        #[derive(Deserialize)]
        struct TableOnly {
            table: String,
        }
        let row: TableOnly = serde_json::from_slice(&line)
            .map_err(|e| TransferError::Corrupt(format!("a row line: {e}")))?;
        while current < header.tables.len() && header.tables[current].name != row.table {
            current += 1;
        }
        let Some(count) = counts.get_mut(current) else {
            return Err(TransferError::Corrupt(format!(
                "rows of {} out of the header's order",
                row.table
            )));
        };
        *count += 1;
    }
    let hash = hex::encode(hasher.finalize());
    if hash != header.content_sha256 {
        return Err(TransferError::Corrupt(format!(
            "content SHA-256 {hash}, header says {}",
            header.content_sha256
        )));
    }
    for (t, n) in header.tables.iter().zip(&counts) {
        if t.rows != *n {
            return Err(TransferError::Corrupt(format!(
                "{} rows of {}, header says {}",
                n, t.name, t.rows
            )));
        }
    }
    Ok(())
}

fn decode_row(table: &TableHeader, row: &[serde_json::Value]) -> Result<Vec<Value>, TransferError> {
    if row.len() != table.columns.len() {
        return Err(TransferError::Corrupt(format!(
            "a row of {} has {} values for {} columns",
            table.name,
            row.len(),
            table.columns.len()
        )));
    }
    table
        .columns
        .iter()
        .zip(row)
        .map(|(c, v)| {
            Value::from_json(v, c.kind).ok_or_else(|| {
                TransferError::Corrupt(format!(
                    "{}.{}: {v} is not a {:?} value",
                    table.name, c.name, c.kind
                ))
            })
        })
        .collect()
}

async fn flush(
    conn: &mut AnyConnection,
    table: &TableHeader,
    pending: &mut Vec<Vec<Value>>,
) -> Result<(), TransferError> {
    if pending.is_empty() {
        return Ok(());
    }
    let width = table.columns.len();
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let tuples: Vec<String> = (0..pending.len())
        .map(|r| {
            let marks: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name,
        names.join(", "),
        tuples.join(", ")
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for values in pending.drain(..) {
        for (v, c) in values.into_iter().zip(&table.columns) {
            q = v.bind(c.kind, q);
        }
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

fn read_value(row: &sqlx::any::AnyRow, i: usize, kind: ColumnType) -> Result<Value, sqlx::Error> {
    Ok(match kind {
        ColumnType::Integer => row.try_get::<Option<i64>, _>(i)?.map(Value::Integer),
        ColumnType::Real => row.try_get::<Option<f64>, _>(i)?.map(Value::Real),
        ColumnType::Text => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
        ColumnType::Blob => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Blob),
    }
    .unwrap_or(Value::Null))
}

/// A table's columns with their type classes, sorted by name (the same on both backends,
/// whatever order migrations added them in).
async fn columns(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &str,
) -> Result<Vec<Column>, TransferError> {
    let rows: Vec<(String, String)> = match backend {
        Backend::Sqlite => {
            sqlx::query_as("SELECT name, type FROM pragma_table_info($1)")
                .bind(table)
                .fetch_all(&mut *conn)
                .await?
        }
        Backend::Postgres => {
            sqlx::query_as(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    if rows.is_empty() {
        return Err(TransferError::Schema(format!(
            "table {table} does not exist in this database"
        )));
    }
    let mut out = rows
        .into_iter()
        .map(|(name, declared)| {
            let kind = column_type(&declared).ok_or_else(|| {
                TransferError::Unsupported(format!(
                    "column {table}.{name} has type {declared}, which the transfer cannot carry"
                ))
            })?;
            Ok(Column { name, kind })
        })
        .collect::<Result<Vec<_>, TransferError>>()?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The type class of a declared SQLite type or a PostgreSQL `data_type`.
fn column_type(declared: &str) -> Option<ColumnType> {
    let d = declared.to_ascii_lowercase();
    Some(match d.as_str() {
        "smallint" | "integer" | "bigint" | "int" => ColumnType::Integer,
        "real" | "double precision" | "double" | "float" => ColumnType::Real,
        "text" | "character varying" | "varchar" | "character" => ColumnType::Text,
        "blob" | "bytea" => ColumnType::Blob,
        _ => return None,
    })
}

/// A table's primary key columns, in key order.
async fn primary_key(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &str,
) -> Result<Vec<String>, TransferError> {
    let key: Vec<String> = match backend {
        Backend::Sqlite => {
            sqlx::query_scalar("SELECT name FROM pragma_table_info($1) WHERE pk > 0 ORDER BY pk")
                .bind(table)
                .fetch_all(&mut *conn)
                .await?
        }
        Backend::Postgres => {
            sqlx::query_scalar(
                "SELECT a.attname::text FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = to_regclass($1) AND i.indisprimary \
                 ORDER BY array_position(i.indkey::int2[], a.attnum)",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    if key.is_empty() {
        return Err(TransferError::Schema(format!(
            "table {table} has no primary key to order its rows by"
        )));
    }
    Ok(key)
}

/// Refuses a database with a table of the service that the service does not list.
async fn check_listed(
    conn: &mut AnyConnection,
    backend: Backend,
    service: &Service,
) -> Result<(), TransferError> {
    let names: Vec<String> = match backend {
        Backend::Sqlite => {
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut *conn)
                .await?
        }
        Backend::Postgres => {
            sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&mut *conn)
            .await?
        }
    };
    for name in names {
        let owned = service.prefixes.iter().any(|p| name.starts_with(p));
        if owned && !service.tables.iter().any(|t| t.name == name) {
            return Err(TransferError::UnlistedTable(name));
        }
    }
    Ok(())
}

/// The last migration applied, for the kit and the service.
async fn schema_versions(
    conn: &mut AnyConnection,
    service: &Service,
) -> Result<BTreeMap<String, i64>, TransferError> {
    let mut out = BTreeMap::new();
    for name in ["kit", service.name] {
        // Every applied migration: sqlx records a failed one and stops there.
        let sql = format!("SELECT MAX(version) FROM _migrations_{name}");
        let version: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| {
                TransferError::Schema(format!("no {name} schema in this database ({e})"))
            })?;
        let version =
            version.ok_or_else(|| TransferError::Schema(format!("no {name} migration applied")))?;
        out.insert(name.to_owned(), version);
    }
    Ok(out)
}

/// Copies a live SQLite database to `out` (`VACUUM INTO`: one read transaction, a consistent
/// snapshot while the node keeps writing, compacted). Refuses PostgreSQL (use `pg_dump`) and
/// an existing `out`.
pub async fn backup(db: &Database, out: &Path) -> Result<(), TransferError> {
    if db.backend() != Backend::Sqlite {
        return Err(TransferError::Unsupported(
            "the node's database is PostgreSQL: back it up with pg_dump (deploy/OPERATIONS.md)"
                .to_owned(),
        ));
    }
    if out.exists() {
        return Err(TransferError::Io(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists; not overwriting it", out.display()),
        )));
    }
    let target = out
        .to_str()
        .ok_or_else(|| TransferError::Unsupported("the backup path is not UTF-8".to_owned()))?;
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// `PRAGMA integrity_check` of a SQLite database: `ok`, or the problems found.
pub async fn integrity_check(db: &Database) -> Result<String, TransferError> {
    if db.backend() != Backend::Sqlite {
        return Err(TransferError::Unsupported(
            "integrity_check is a SQLite check".to_owned(),
        ));
    }
    let lines: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(db.pool())
        .await?;
    Ok(lines.join("\n"))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_owned()).unwrap_or_default();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

/// A new file readable and writable by its owner only.
fn private_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// A writer that hashes what goes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn finish(mut self) -> std::io::Result<String> {
        self.inner.flush()?;
        Ok(hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_map_to_the_same_class_on_both_backends() {
        for (sqlite, postgres, class) in [
            ("INTEGER", "bigint", ColumnType::Integer),
            ("INTEGER", "integer", ColumnType::Integer),
            ("REAL", "double precision", ColumnType::Real),
            ("TEXT", "text", ColumnType::Text),
            ("BLOB", "bytea", ColumnType::Blob),
        ] {
            assert_eq!(column_type(sqlite), Some(class));
            assert_eq!(column_type(postgres), Some(class));
        }
        assert_eq!(column_type("boolean"), None, "no type is carried by guess");
    }

    #[test]
    fn values_survive_their_json_form() {
        for (v, kind) in [
            (Value::Integer(i64::MIN), ColumnType::Integer),
            (Value::Integer(1_700_000_000_123_456), ColumnType::Integer),
            (Value::Real(0.1 + 0.2), ColumnType::Real),
            (Value::Real(3.0), ColumnType::Real),
            (
                Value::Text("Sarzana \u{e8} \"qui\"\n".to_owned()),
                ColumnType::Text,
            ),
            (Value::Blob(vec![0, 255, 7]), ColumnType::Blob),
            (Value::Null, ColumnType::Blob),
        ] {
            let json = v.to_json().expect("finite");
            let text = serde_json::to_string(&json).expect("serializes");
            let back: serde_json::Value = serde_json::from_str(&text).expect("parses");
            assert_eq!(Value::from_json(&back, kind), Some(v));
        }
        assert!(Value::Real(f64::NAN).to_json().is_err());
    }

    #[test]
    fn prefix_scopes_match_only_their_comune() {
        let scope = Scope::Prefix {
            column: "scope",
            before: "registry/comuni/",
            after: "/",
        };
        assert!(scope.matches("registry/comuni/011001/CreateResident", "011001"));
        assert!(!scope.matches("registry/comuni/011027/CreateResident", "011001"));
        assert!(!scope.matches("payments/comuni/011001/CreateDebtPosition", "011001"));
    }

    // Export and import over a service of the test's own, on every pair of backends.

    use crate::storage::testing;
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};

    const SQLITE_SCHEMA: &str = "\
        CREATE TABLE kitdemo_parents (comune TEXT NOT NULL, id TEXT NOT NULL, n INTEGER NOT NULL, \
            r REAL, b BLOB, note TEXT, PRIMARY KEY (comune, id)); \
        CREATE TABLE kitdemo_children (comune TEXT NOT NULL, parent TEXT NOT NULL, \
            seq INTEGER NOT NULL CHECK (seq >= 1), PRIMARY KEY (comune, parent, seq), \
            FOREIGN KEY (comune, parent) REFERENCES kitdemo_parents (comune, id));";
    const POSTGRES_SCHEMA: &str = "\
        CREATE TABLE kitdemo_parents (comune TEXT NOT NULL, id TEXT NOT NULL, n BIGINT NOT NULL, \
            r DOUBLE PRECISION, b BYTEA, note TEXT, PRIMARY KEY (comune, id)); \
        CREATE TABLE kitdemo_children (comune TEXT NOT NULL, parent TEXT NOT NULL, \
            seq INTEGER NOT NULL CHECK (seq >= 1), PRIMARY KEY (comune, parent, seq), \
            FOREIGN KEY (comune, parent) REFERENCES kitdemo_parents (comune, id));";

    fn demo_migrations() -> Migrations {
        let one = |sql: &'static str| {
            Migrator::with_migrations(vec![Migration::new(
                1,
                "kitdemo".into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )])
        };
        Migrations {
            service: "kitdemo",
            sqlite: one(SQLITE_SCHEMA),
            postgres: one(POSTGRES_SCHEMA),
        }
    }

    const DEMO_TABLES: &[Table] = &[
        Table::by_comune("kitdemo_parents"),
        Table::by_comune("kitdemo_children"),
        Table::idempotency_keys("kitdemo/comuni/"),
    ];

    fn demo() -> Service {
        Service {
            name: "kitdemo",
            migrations: demo_migrations,
            prefixes: &["kitdemo_"],
            tables: DEMO_TABLES,
        }
    }

    /// Rows of two comuni, with every type, NULLs, extremes and keys whose order differs
    /// between byte order and a linguistic collation.
    async fn seed(db: &Database) {
        db.migrate(&demo_migrations()).await.expect("migrates");
        for comune in ["011001", "011027"] {
            for (id, n, r, b, note) in [
                (
                    "B",
                    i64::MAX,
                    Some(0.1 + 0.2),
                    Some(vec![0u8, 1, 255]),
                    None,
                ),
                // Sarzana's "a" has a real where Ameglia's has NULL: importing both into one
                // database reuses one prepared INSERT with a NULL, then a value, in a column.
                (
                    "a",
                    i64::MIN,
                    (comune == "011027").then_some(1.5),
                    None,
                    Some("Sarzana \u{e8} \"qui\""),
                ),
                ("\u{e9}", 0, Some(-3.0), Some(Vec::new()), Some("")),
            ] {
                sqlx::query(
                    "INSERT INTO kitdemo_parents (comune, id, n, r, b, note) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(comune)
                .bind(id)
                .bind(n)
                .bind(r)
                .bind(b)
                .bind(note)
                // A fresh statement each time: see `Value::bind` on NULL reals.
                .persistent(false)
                .execute(db.pool())
                .await
                .expect("a parent");
                for seq in 1..=2i64 {
                    sqlx::query(
                        "INSERT INTO kitdemo_children (comune, parent, seq) VALUES ($1, $2, $3)",
                    )
                    .bind(comune)
                    .bind(id)
                    .bind(seq)
                    .execute(db.pool())
                    .await
                    .expect("a child");
                }
            }
            sqlx::query(
                "INSERT INTO idempotency_keys (scope, request_id, request_hash, response, \
                 claimed_at, created_at) VALUES ($1, 'r1', $2, NULL, 1, 1)",
            )
            .bind(format!("kitdemo/comuni/{comune}/Create"))
            .bind(vec![7u8; 32])
            .execute(db.pool())
            .await
            .expect("a key");
        }
    }

    fn istat(code: &str) -> Istat {
        Istat::parse(code).expect("an ISTAT code")
    }

    /// Rewrites an archive: `edit` changes the header and the row lines; the hash is then
    /// recomputed, so only the checks past the hash can refuse it.
    fn rewrite(
        from: &Path,
        to: &Path,
        edit_header: impl Fn(&mut Header),
        edit_row: impl Fn(&str) -> String,
    ) {
        let text = std::fs::read_to_string(from).expect("archive");
        let (header, body) = text.split_once('\n').expect("a header");
        let body: String = body.lines().map(|l| format!("{}\n", edit_row(l))).collect();
        let mut header: Header = serde_json::from_str(header).expect("header");
        edit_header(&mut header);
        header.content_sha256 = hex::encode(Sha256::digest(body.as_bytes()));
        let header = serde_json::to_string(&header).expect("header");
        std::fs::write(to, format!("{header}\n{body}")).expect("written");
    }

    #[tokio::test]
    async fn a_comune_round_trips_between_every_pair_of_backends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sources = testing::all().await;
        for source in &sources {
            seed(&source.db).await;
            let archive = dir.path().join(format!("from-{}", source.label));
            let exported = export(&source.db, &demo(), &istat("011001"), &archive)
                .await
                .expect("exports");
            assert_eq!(
                exported.rows,
                vec![
                    ("kitdemo_parents".to_owned(), 3),
                    ("kitdemo_children".to_owned(), 6),
                    ("idempotency_keys".to_owned(), 1)
                ]
            );
            for target in testing::all().await {
                let imported = import(&target.db, &demo(), &archive)
                    .await
                    .expect("imports");
                assert_eq!(imported, exported);
                let again = dir
                    .path()
                    .join(format!("{}-to-{}", source.label, target.label));
                let back = export(&target.db, &demo(), &istat("011001"), &again)
                    .await
                    .expect("exports");
                assert_eq!(
                    back.content_sha256, exported.content_sha256,
                    "{} -> {}: every row equal",
                    source.label, target.label
                );
                let other = dir
                    .path()
                    .join(format!("other-{}-{}", source.label, target.label));
                let other = export(&target.db, &demo(), &istat("011027"), &other)
                    .await
                    .expect("exports");
                assert_eq!(other.total_rows(), 0, "only the named comune moved");
                let sarzana = dir
                    .path()
                    .join(format!("sarzana-{}-{}", source.label, target.label));
                export(&source.db, &demo(), &istat("011027"), &sarzana)
                    .await
                    .expect("exports");
                import(&target.db, &demo(), &sarzana)
                    .await
                    .expect("a second comune imports beside the first");
                let refused = import(&target.db, &demo(), &archive).await;
                assert!(
                    matches!(refused, Err(TransferError::TargetHasData { ref table, .. }) if table == "kitdemo_parents"),
                    "{refused:?}"
                );
            }
        }
        if sources.len() == 2 {
            let a = read_header(&dir.path().join("from-sqlite")).expect("header");
            let b = read_header(&dir.path().join("from-postgres")).expect("header");
            assert_eq!(
                a.tables, b.tables,
                "the same columns and types on both backends"
            );
            assert_eq!(
                a.content_sha256, b.content_sha256,
                "the same rows, in the same (byte) order, on both backends"
            );
        }
    }

    #[tokio::test]
    async fn a_refused_import_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = testing::sqlite().await;
        seed(&source.db).await;
        let archive = dir.path().join("archive");
        export(&source.db, &demo(), &istat("011001"), &archive)
            .await
            .expect("exports");
        for target in testing::all().await {
            let empty = |name: &str| dir.path().join(format!("{name}-{}", target.label));
            // The last child breaks a CHECK constraint: the parents inserted before it go too.
            let bad_row = empty("bad-row");
            rewrite(
                &archive,
                &bad_row,
                |_| {},
                |l| {
                    if l.contains("kitdemo_children") && l.ends_with(",2]}") {
                        l.replace(",2]}", ",0]}")
                    } else {
                        l.to_owned()
                    }
                },
            );
            let e = import(&target.db, &demo(), &bad_row).await;
            assert!(matches!(e, Err(TransferError::Database(_))), "{e:?}");
            // A row of another comune, with a valid hash.
            let smuggled = empty("smuggled");
            rewrite(
                &archive,
                &smuggled,
                |_| {},
                |l| l.replace("011001", "011027"),
            );
            let e = import(&target.db, &demo(), &smuggled).await;
            assert!(matches!(e, Err(TransferError::Corrupt(_))), "{e:?}");
            // Another schema version.
            let newer = empty("newer");
            rewrite(
                &archive,
                &newer,
                |h| {
                    h.schema_versions.insert("kitdemo".to_owned(), 2);
                },
                str::to_owned,
            );
            let e = import(&target.db, &demo(), &newer).await;
            assert!(matches!(e, Err(TransferError::Schema(_))), "{e:?}");
            // A byte changed after the export.
            let flipped = empty("flipped");
            let text = std::fs::read_to_string(&archive).expect("archive");
            std::fs::write(&flipped, text.replacen("\"B\"", "\"C\"", 1)).expect("written");
            let e = import(&target.db, &demo(), &flipped).await;
            assert!(matches!(e, Err(TransferError::Corrupt(_))), "{e:?}");

            let after = export(&target.db, &demo(), &istat("011001"), &empty("after"))
                .await
                .expect("exports");
            assert_eq!(
                after.total_rows(),
                0,
                "{}: nothing was written",
                target.label
            );
            import(&target.db, &demo(), &archive)
                .await
                .expect("the good archive still imports");
        }
    }

    #[tokio::test]
    async fn a_table_of_the_service_missing_from_its_list_stops_the_export() {
        let dir = tempfile::tempdir().expect("tempdir");
        for t in testing::all().await {
            seed(&t.db).await;
            sqlx::query("CREATE TABLE kitdemo_forgotten (comune TEXT NOT NULL PRIMARY KEY)")
                .execute(t.db.pool())
                .await
                .expect("created");
            let out = dir.path().join(t.label);
            let e = export(&t.db, &demo(), &istat("011001"), &out).await;
            assert!(
                matches!(e, Err(TransferError::UnlistedTable(ref n)) if n == "kitdemo_forgotten"),
                "{e:?}"
            );
            assert!(!out.exists(), "no partial archive is left");
        }
    }

    #[tokio::test]
    async fn a_backup_is_a_consistent_checked_copy_and_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = testing::sqlite().await;
        seed(&t.db).await;
        let out = dir.path().join("backup.sqlite");
        backup(&t.db, &out).await.expect("backs up");
        let copy = Database::open_sqlite(&out).await.expect("opens");
        assert_eq!(integrity_check(&copy).await.expect("checks"), "ok");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kitdemo_children")
            .fetch_one(copy.pool())
            .await
            .expect("counted");
        assert_eq!(n, 12);
        assert!(
            backup(&t.db, &out).await.is_err(),
            "the backup exists already"
        );
        if let Some(pg) = testing::postgres().await {
            let e = backup(&pg.db, &dir.path().join("pg")).await;
            assert!(matches!(e, Err(TransferError::Unsupported(ref m)) if m.contains("pg_dump")));
        }
    }
}
