//! The audit log and the usage meters (DOMAIN.md, Federation: "every cross-organisation call
//! logged with who, what, when, and kept tamper-evident").
//!
//! Every routed call and every directory change becomes an entry. Entries are written by one
//! background writer per gateway, in batches (one transaction each, gathering for up to 5 ms),
//! so the routing path never waits on the database; the channel is bounded, so under a
//! database stall calls slow down rather than entries being dropped. Entries still in the channel when a gateway is killed
//! (not stopped) are lost: a clean stop flushes them.
//!
//! Each entry's hash is SHA-256 over the previous entry's hash and its own fields (each
//! length-prefixed), so changing, inserting or deleting any entry breaks the chain from there
//! on; the tables also refuse UPDATE and DELETE. Gateways sharing one PostgreSQL database
//! serialize their batches with a table lock, so the chain stays one chain.

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use unione_kit::Database;
use unione_kit::storage::Backend;

use crate::directory::Function;

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Entries waiting for the writer before callers wait.
const QUEUE: usize = 8192;
/// Entries per transaction at most.
const BATCH: usize = 512;
/// How long the writer gathers entries after the first of a batch before writing them: at a
/// steady trickle of calls, one transaction for every few calls instead of one each.
const GATHER: Duration = Duration::from_millis(5);

/// One event to audit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// When it happened, microseconds since the epoch.
    pub at: i64,
    /// The user's id (empty when not authenticated).
    pub principal: String,
    /// The user's role.
    pub role: String,
    /// `comuni/{istat}`, or empty.
    pub comune: String,
    /// The gRPC method, or an administrative action such as `directory.load`.
    pub method: String,
    /// `nodes/{id}`, or empty.
    pub node: String,
    /// The function called, for the usage meters.
    pub function: Option<Function>,
    /// The gRPC status code.
    pub code: i32,
    /// Time to the response headers.
    pub latency_micros: i64,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its sequence number.
    pub sequence: i64,
    /// The gateway that wrote it.
    pub gateway: String,
    /// The event.
    pub entry: Entry,
    /// The previous entry's hash.
    pub previous_hash: String,
    /// Its hash.
    pub hash: String,
}

/// The hash of an entry, chained to `previous`.
pub fn entry_hash(previous: &str, sequence: i64, gateway: &str, e: &Entry) -> String {
    let mut hasher = Sha256::new();
    let fields: [&[u8]; 12] = [
        b"unione-audit-v1",
        previous.as_bytes(),
        &sequence.to_be_bytes(),
        &e.at.to_be_bytes(),
        gateway.as_bytes(),
        e.principal.as_bytes(),
        e.role.as_bytes(),
        e.comune.as_bytes(),
        e.method.as_bytes(),
        e.node.as_bytes(),
        &e.code.to_be_bytes(),
        &e.latency_micros.to_be_bytes(),
    ];
    for field in fields {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    hex::encode(hasher.finalize())
}

/// Where routed calls send their entries.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Entry>,
}

impl AuditSink {
    /// Queues an entry (waits when the writer is behind).
    pub async fn record(&self, entry: Entry) {
        if self.tx.send(entry).await.is_err() {
            tracing::error!("the audit writer has stopped: an entry could not be recorded");
        }
    }
}

/// Starts the writer. It stops once every sink is dropped and the queue is written.
pub fn spawn_writer(db: Database, gateway: String) -> (AuditSink, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Entry>(QUEUE);
    let task = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            let window = tokio::time::sleep(GATHER);
            tokio::pin!(window);
            while batch.len() < BATCH {
                let room = BATCH - batch.len();
                tokio::select! {
                    received = rx.recv_many(&mut batch, room) => {
                        if received == 0 {
                            break; // every sink is gone: write what is here, then stop
                        }
                    }
                    () = &mut window => break,
                }
            }
            // An entry is never dropped for a passing database error: retry the batch.
            let mut delay = Duration::from_millis(50);
            while let Err(err) = append(&db, &gateway, &batch).await {
                tracing::error!(error = %err, entries = batch.len(), "writing the audit log failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            batch.clear();
        }
    });
    (AuditSink { tx }, task)
}

fn month_of(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_default()
}

/// Appends entries in one transaction, chaining them, and adds them to the usage meters.
pub async fn append(db: &Database, gateway: &str, entries: &[Entry]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
    }
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    let (mut sequence, mut previous) = last.unwrap_or((0, GENESIS.to_owned()));
    let mut usage: BTreeMap<(String, String, &'static str), (i64, i64)> = BTreeMap::new();
    for e in entries {
        sequence += 1;
        let hash = entry_hash(&previous, sequence, gateway, e);
        sqlx::query(
            "INSERT INTO audit_log (sequence, at, gateway, principal, role, comune, method, node, code, \
             latency_micros, previous_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(sequence)
        .bind(e.at)
        .bind(gateway)
        .bind(e.principal.as_str())
        .bind(e.role.as_str())
        .bind(e.comune.as_str())
        .bind(e.method.as_str())
        .bind(e.node.as_str())
        .bind(e.code)
        .bind(e.latency_micros)
        .bind(previous.as_str())
        .bind(hash.as_str())
        .execute(&mut *tx)
        .await?;
        previous = hash;
        if let (Some(function), false) = (e.function, e.comune.is_empty()) {
            let meter = usage
                .entry((month_of(e.at), e.comune.clone(), function.as_str()))
                .or_default();
            meter.0 += 1;
            meter.1 += i64::from(e.code != 0);
        }
    }
    for ((month, comune, function), (calls, errors)) in usage {
        sqlx::query(
            "INSERT INTO usage_meters (month, comune, function, calls, errors) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (month, comune, function) DO UPDATE SET calls = usage_meters.calls + excluded.calls, \
             errors = usage_meters.errors + excluded.errors",
        )
        .bind(month)
        .bind(comune)
        .bind(function)
        .bind(calls)
        .bind(errors)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

fn stored(row: &sqlx::any::AnyRow) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        sequence: row.try_get("sequence")?,
        gateway: row.try_get("gateway")?,
        entry: Entry {
            at: row.try_get("at")?,
            principal: row.try_get("principal")?,
            role: row.try_get("role")?,
            comune: row.try_get("comune")?,
            method: row.try_get("method")?,
            node: row.try_get("node")?,
            function: None,
            code: row.try_get("code")?,
            latency_micros: row.try_get("latency_micros")?,
        },
        previous_hash: row.try_get("previous_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Entries after `after` (a sequence), within `[start, end)` (microseconds), in order.
pub async fn list(
    db: &Database,
    start: i64,
    end: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<Stored>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT sequence, at, gateway, principal, role, comune, method, node, code, latency_micros, \
         previous_hash, hash FROM audit_log WHERE sequence > $1 AND at >= $2 AND at < $3 \
         ORDER BY sequence LIMIT $4",
    )
    .bind(after)
    .bind(start)
    .bind(end)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(stored).collect()
}

/// The result of verifying the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Entries checked.
    pub checked: i64,
    /// The first entry that does not match, if any, and why.
    pub broken: Option<(i64, String)>,
    /// The last entry's hash.
    pub head: String,
}

/// Recomputes the whole chain.
pub async fn verify(db: &Database) -> Result<Verification, sqlx::Error> {
    let mut expected_sequence = 1;
    let mut previous = GENESIS.to_owned();
    let mut checked = 0;
    loop {
        let page = list(db, i64::MIN, i64::MAX, expected_sequence - 1, 1000).await?;
        if page.is_empty() {
            return Ok(Verification {
                checked,
                broken: None,
                head: previous,
            });
        }
        for s in page {
            let fail = |why: &str| Verification {
                checked,
                broken: Some((expected_sequence, why.to_owned())),
                head: previous.clone(),
            };
            if s.sequence != expected_sequence {
                return Ok(fail("an entry is missing"));
            }
            if s.previous_hash != previous {
                return Ok(fail("the entry does not chain to the previous one"));
            }
            if entry_hash(&previous, s.sequence, &s.gateway, &s.entry) != s.hash {
                return Ok(fail("the entry's content does not match its hash"));
            }
            previous = s.hash;
            expected_sequence += 1;
            checked += 1;
        }
    }
}

/// One usage meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// `comuni/{istat}`.
    pub comune: String,
    /// The function.
    pub function: String,
    /// Calls.
    pub calls: i64,
    /// Errors among them.
    pub errors: i64,
}

/// The meters of a month (`YYYY-MM`), optionally of one comune.
pub async fn usage(
    db: &Database,
    month: &str,
    comune: Option<&str>,
) -> Result<Vec<Usage>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT comune, function, calls, errors FROM usage_meters WHERE month = $1 AND ($2 = '' OR comune = $2) \
         ORDER BY comune, function",
    )
    .bind(month)
    .bind(comune.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Usage {
                comune: r.try_get("comune")?,
                function: r.try_get("function")?,
                calls: r.try_get("calls")?,
                errors: r.try_get("errors")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use unione_kit::storage::testing;

    fn entry(i: i64, comune: &str, code: i32) -> Entry {
        Entry {
            at: 1_795_000_000_000_000 + i,
            principal: format!("op-{i}"),
            role: "operator".into(),
            comune: comune.into(),
            method: "/unione.registry.v1.ResidentService/ListResidents".into(),
            node: "nodes/sarzana".into(),
            function: Some(Function::Registry),
            code,
            latency_micros: 100 + i,
        }
    }

    async fn db(t: &testing::TestDatabase) -> &Database {
        t.db.migrate(&crate::store::migrations())
            .await
            .expect("migrations");
        &t.db
    }

    /// DOMAIN.md, Federation: the log is tamper-evident. A modified entry and a deleted entry
    /// are both detected, at the first entry that no longer matches; the tables refuse UPDATE
    /// and DELETE in the first place.
    #[tokio::test]
    async fn the_chain_verifies_and_tampering_is_detected() {
        for t in testing::all().await {
            let db = db(&t).await;
            append(
                db,
                "gw1",
                &(1..=5)
                    .map(|i| entry(i, "comuni/011027", 0))
                    .collect::<Vec<_>>(),
            )
            .await
            .expect("append");
            append(db, "gw2", &[entry(6, "comuni/011001", 7)])
                .await
                .expect("append");
            let v = verify(db).await.expect("verify");
            assert_eq!((v.checked, v.broken.clone()), (6, None), "{}", t.label);
            assert_eq!(v.head.len(), 64);

            let refused =
                sqlx::query("UPDATE audit_log SET principal = 'someone-else' WHERE sequence = 3")
                    .execute(db.pool())
                    .await;
            assert!(refused.is_err(), "{}: the log is append-only", t.label);

            // An attacker with database rights removes the guard and edits an entry.
            match db.backend() {
                Backend::Sqlite => {
                    sqlx::query("DROP TRIGGER audit_log_no_update")
                        .execute(db.pool())
                        .await
                        .expect("drop");
                    sqlx::query("DROP TRIGGER audit_log_no_delete")
                        .execute(db.pool())
                        .await
                        .expect("drop");
                }
                Backend::Postgres => {
                    sqlx::query("DROP TRIGGER audit_log_no_change ON audit_log")
                        .execute(db.pool())
                        .await
                        .expect("drop");
                }
            }
            sqlx::query("UPDATE audit_log SET principal = 'someone-else' WHERE sequence = 3")
                .execute(db.pool())
                .await
                .expect("tampered");
            let v = verify(db).await.expect("verify");
            assert_eq!(
                v.broken.map(|b| b.0),
                Some(3),
                "{}: the edit is found at entry 3",
                t.label
            );

            sqlx::query("UPDATE audit_log SET principal = 'op-3' WHERE sequence = 3")
                .execute(db.pool())
                .await
                .expect("restored");
            assert_eq!(
                verify(db).await.expect("verify").broken,
                None,
                "{}",
                t.label
            );
            sqlx::query("DELETE FROM audit_log WHERE sequence = 4")
                .execute(db.pool())
                .await
                .expect("deleted");
            let v = verify(db).await.expect("verify");
            assert_eq!(
                v.broken.map(|b| b.0),
                Some(4),
                "{}: the deletion is found at entry 4",
                t.label
            );
        }
    }

    /// Usage meters count calls and errors per comune, function and month.
    #[tokio::test]
    async fn usage_is_metered_per_comune_function_and_month() {
        for t in testing::all().await {
            let db = db(&t).await;
            let mut entries: Vec<Entry> = (1..=4).map(|i| entry(i, "comuni/011027", 0)).collect();
            entries.push(entry(5, "comuni/011027", 7));
            entries.push(entry(6, "comuni/011001", 0));
            entries.push(Entry {
                function: None,
                comune: String::new(),
                method: "directory.load".into(),
                ..entry(7, "", 0)
            });
            append(db, "gw", &entries[..3]).await.expect("append");
            append(db, "gw", &entries[3..]).await.expect("append");
            let month = month_of(entries[0].at);
            let all = usage(db, &month, None).await.expect("usage");
            assert_eq!(
                all,
                vec![
                    Usage {
                        comune: "comuni/011001".into(),
                        function: "registry".into(),
                        calls: 1,
                        errors: 0
                    },
                    Usage {
                        comune: "comuni/011027".into(),
                        function: "registry".into(),
                        calls: 5,
                        errors: 1
                    },
                ],
                "{}",
                t.label
            );
            assert_eq!(
                usage(db, &month, Some("comuni/011001"))
                    .await
                    .expect("usage")
                    .len(),
                1
            );
            assert!(usage(db, "1999-01", None).await.expect("usage").is_empty());
        }
    }

    /// The writer drains its queue before stopping: a clean stop loses nothing.
    #[tokio::test]
    async fn the_writer_flushes_on_stop() {
        let t = testing::sqlite().await;
        let db = db(&t).await;
        let (sink, task) = spawn_writer(db.clone(), "gw".into());
        for i in 0..1500 {
            sink.record(entry(i, "comuni/011027", 0)).await;
        }
        drop(sink);
        task.await.expect("writer stops");
        let v = verify(db).await.expect("verify");
        assert_eq!((v.checked, v.broken), (1500, None));
    }
}
