//! Storage of the directory: the tables `members`, `nodes`, `provisions` and
//! `revoked_certificates` hold the current directory, and `directory_versions` the history of
//! what was loaded (version, time, content hash, how many entries of each kind). Loading replaces the whole directory in one write transaction, and only when its
//! content hash differs from the current version's.

use anyhow::Context;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use unione_kit::Database;
use unione_kit::storage::{Backend, Migrations};

use crate::directory::{
    Directory, Function, MemberEntry, NodeEntry, Provision, RevokedCertificate,
};

/// The gateway's migrations.
pub fn migrations() -> Migrations {
    Migrations {
        service: "gateway",
        sqlite: sqlx::migrate!("migrations/sqlite"),
        postgres: sqlx::migrate!("migrations/postgres"),
    }
}

/// What loading a directory did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The current version after loading.
    pub version: i64,
    /// Whether the content differed from the previous version (and was stored).
    pub changed: bool,
}

/// The directory the gateway serves, as read from the database.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The version; 0 when nothing was ever loaded.
    pub version: i64,
    /// The content hash of the version (empty for version 0).
    pub content_hash: String,
    /// When the version was loaded, microseconds since the epoch (0 for version 0).
    pub loaded_at: i64,
    /// The directory.
    pub directory: Directory,
}

/// Rows per multi-row INSERT, well under the bind limits of SQLite (32,766) and PostgreSQL
/// (65,535) for the widest table (9 columns).
const ROWS_PER_INSERT: usize = 500;

/// Stores `directory` as a new version unless the current version has the same content.
/// The comparison and the replacement happen in one write transaction.
pub async fn load(db: &Database, directory: &Directory, source: &str) -> anyhow::Result<Loaded> {
    let hash = directory.content_hash();
    let mut tx = db
        .begin_write()
        .await
        .context("beginning the directory load")?;
    if db.backend() == Backend::Postgres {
        // Serializes loads by several gateways sharing one database; SQLite's BEGIN IMMEDIATE
        // already does.
        sqlx::query("LOCK TABLE directory_versions IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
    }
    let current = sqlx::query(
        "SELECT version, content_hash FROM directory_versions ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let (current_version, current_hash) = match current {
        Some(row) => (
            row.try_get::<i64, _>("version")?,
            row.try_get::<String, _>("content_hash")?,
        ),
        None => (0, String::new()),
    };
    if current_version > 0 && current_hash == hash {
        tx.rollback().await?;
        return Ok(Loaded {
            version: current_version,
            changed: false,
        });
    }

    sqlx::query("DELETE FROM provisions")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM nodes").execute(&mut *tx).await?;
    sqlx::query("DELETE FROM members").execute(&mut *tx).await?;
    sqlx::query("DELETE FROM revoked_certificates")
        .execute(&mut *tx)
        .await?;
    insert_members(&mut tx, &directory.members).await?;
    insert_nodes(&mut tx, &directory.nodes).await?;
    insert_provisions(&mut tx, &directory.provisions).await?;
    insert_revocations(&mut tx, &directory.revoked_certificates).await?;

    let version = current_version + 1;
    sqlx::query(
        "INSERT INTO directory_versions \
         (version, loaded_at, content_hash, source, members, nodes, provisions, \
         revoked_certificates) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(version)
    .bind(unione_kit::storage::now_micros())
    .bind(hash)
    .bind(source.to_owned())
    .bind(count(directory.members.len()))
    .bind(count(directory.nodes.len()))
    .bind(count(directory.provisions.len()))
    .bind(count(directory.revoked_certificates.len()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await.context("committing the directory")?;
    Ok(Loaded {
        version,
        changed: true,
    })
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `INSERT INTO {table} ({columns}) VALUES ($1, ..), ..` for `rows` rows. Only placeholders
/// are formatted into the SQL, never values.
fn insert_sql(table: &str, columns: &[&str], rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..columns.len() {
            if col > 0 {
                sql.push_str(", ");
            }
            n += 1;
            sql.push_str(&format!("${n}"));
        }
        sql.push(')');
    }
    sql
}

async fn insert_members(
    tx: &mut Transaction<'static, Any>,
    members: &[MemberEntry],
) -> Result<(), sqlx::Error> {
    const COLUMNS: &[&str] = &[
        "istat",
        "name",
        "fiscal_code",
        "cadastral_code",
        "population",
        "province",
        "peer_group",
        "ipa_code",
        "segregation_code",
    ];
    for chunk in members.chunks(ROWS_PER_INSERT) {
        let sql = insert_sql("members", COLUMNS, chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for m in chunk {
            query = query
                .bind(m.istat.clone())
                .bind(m.name.clone())
                .bind(m.fiscal_code.clone())
                .bind(m.cadastral_code.clone())
                .bind(m.population)
                .bind(m.province.clone())
                .bind(m.peer_group.clone())
                .bind(m.ipa_code.clone())
                .bind(m.segregation_code.clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_nodes(
    tx: &mut Transaction<'static, Any>,
    nodes: &[NodeEntry],
) -> Result<(), sqlx::Error> {
    for chunk in nodes.chunks(ROWS_PER_INSERT) {
        let sql = insert_sql("nodes", &["node_id", "endpoint"], chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for n in chunk {
            query = query.bind(n.node_id.clone()).bind(n.endpoint.clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_provisions(
    tx: &mut Transaction<'static, Any>,
    provisions: &[Provision],
) -> Result<(), sqlx::Error> {
    for chunk in provisions.chunks(ROWS_PER_INSERT) {
        let sql = insert_sql("provisions", &["comune", "function", "node"], chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for p in chunk {
            query = query
                .bind(p.comune.clone())
                .bind(p.function.as_str())
                .bind(p.node.clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_revocations(
    tx: &mut Transaction<'static, Any>,
    revoked: &[RevokedCertificate],
) -> Result<(), sqlx::Error> {
    const COLUMNS: &[&str] = &["fingerprint", "node", "reason", "revoked_at"];
    for chunk in revoked.chunks(ROWS_PER_INSERT) {
        let sql = insert_sql("revoked_certificates", COLUMNS, chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for r in chunk {
            query = query
                .bind(r.fingerprint.clone())
                .bind(r.node.clone())
                .bind(r.reason.clone())
                .bind(r.revoked_at.clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Reads the current directory and its version.
pub async fn snapshot(db: &Database) -> anyhow::Result<Snapshot> {
    let pool = db.pool();
    let mut snapshot = Snapshot::default();
    if let Some(row) = sqlx::query(
        "SELECT version, content_hash, loaded_at FROM directory_versions \
         ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?
    {
        snapshot.version = row.try_get("version")?;
        snapshot.content_hash = row.try_get("content_hash")?;
        snapshot.loaded_at = row.try_get("loaded_at")?;
    }

    for row in sqlx::query(
        "SELECT istat, name, fiscal_code, cadastral_code, population, province, peer_group, \
         ipa_code, segregation_code FROM members ORDER BY istat",
    )
    .fetch_all(pool)
    .await?
    {
        snapshot.directory.members.push(MemberEntry {
            istat: row.try_get("istat")?,
            name: row.try_get("name")?,
            fiscal_code: row.try_get("fiscal_code")?,
            cadastral_code: row.try_get("cadastral_code")?,
            population: row.try_get("population")?,
            province: row.try_get("province")?,
            peer_group: row.try_get("peer_group")?,
            ipa_code: row.try_get("ipa_code")?,
            segregation_code: row.try_get("segregation_code")?,
        });
    }

    for row in sqlx::query("SELECT node_id, endpoint FROM nodes ORDER BY node_id")
        .fetch_all(pool)
        .await?
    {
        snapshot.directory.nodes.push(NodeEntry {
            node_id: row.try_get("node_id")?,
            endpoint: row.try_get("endpoint")?,
        });
    }

    for row in sqlx::query("SELECT comune, function, node FROM provisions")
        .fetch_all(pool)
        .await?
    {
        let function: String = row.try_get("function")?;
        snapshot.directory.provisions.push(Provision {
            comune: row.try_get("comune")?,
            function: Function::parse(&function)
                .with_context(|| format!("the database holds an unknown function `{function}`"))?,
            node: row.try_get("node")?,
        });
    }
    for row in sqlx::query("SELECT fingerprint, node, reason, revoked_at FROM revoked_certificates")
        .fetch_all(pool)
        .await?
    {
        snapshot
            .directory
            .revoked_certificates
            .push(RevokedCertificate {
                fingerprint: row.try_get("fingerprint")?,
                node: row.try_get("node")?,
                reason: row.try_get("reason")?,
                revoked_at: row.try_get("revoked_at")?,
            });
    }
    snapshot
        .directory
        .revoked_certificates
        .sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    // Sorted here rather than in SQL: the function order is the enum's, not the text's.
    snapshot.directory.provisions.sort();
    // Byte order in Rust; PostgreSQL may collate text otherwise.
    snapshot
        .directory
        .members
        .sort_by(|a, b| a.istat.cmp(&b.istat));
    snapshot
        .directory
        .nodes
        .sort_by(|a, b| a.node_id.cmp(&b.node_id));
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{DirectoryFile, ProvisionEntry};
    use unione_kit::storage::testing;

    fn file(population: i64) -> DirectoryFile {
        DirectoryFile {
            members: vec![
                MemberEntry {
                    istat: "011027".into(),
                    name: "Sarzana".into(),
                    fiscal_code: "00160180119".into(),
                    cadastral_code: "I449".into(),
                    population,
                    province: "SP".into(),
                    peer_group: "magra-valley".into(),
                    ipa_code: "c_i449".into(),
                    segregation_code: "01".into(),
                },
                MemberEntry {
                    istat: "011001".into(),
                    name: "Ameglia".into(),
                    ..MemberEntry::default()
                },
            ],
            nodes: vec![NodeEntry {
                node_id: "sarzana".into(),
                endpoint: "https://127.0.0.1:7401".into(),
            }],
            provisions: ["quality", "registry"]
                .into_iter()
                .flat_map(|f| {
                    ["011027", "011001"].map(|c| ProvisionEntry {
                        comune: c.into(),
                        function: f.into(),
                        node: "sarzana".into(),
                    })
                })
                .collect(),
            revoked_certificates: Vec::new(),
        }
    }

    async fn migrated(t: &testing::TestDatabase) {
        t.db.migrate(&migrations())
            .await
            .expect("gateway migrations");
    }

    /// Loading the same content twice keeps the version; changed content bumps it by one and
    /// replaces the directory entirely.
    #[tokio::test]
    async fn loading_is_versioned_and_idempotent() {
        for t in testing::all().await {
            migrated(&t).await;
            let label = t.label;
            let empty = snapshot(&t.db).await.expect("reads");
            assert_eq!(empty.version, 0, "{label}");
            assert!(empty.directory.members.is_empty(), "{label}");

            let first = file(21_800).validate().expect("valid");
            let loaded = load(&t.db, &first, "a.toml").await.expect("loads");
            assert_eq!(
                loaded,
                Loaded {
                    version: 1,
                    changed: true
                },
                "{label}"
            );
            let again = load(&t.db, &first, "a.toml").await.expect("loads");
            assert_eq!(
                again,
                Loaded {
                    version: 1,
                    changed: false
                },
                "{label}"
            );

            let s = snapshot(&t.db).await.expect("reads");
            assert_eq!(s.version, 1, "{label}");
            assert_eq!(s.content_hash, first.content_hash(), "{label}");
            assert_eq!(
                s.directory, first,
                "{label}: the stored directory reads back equal"
            );

            // The same content in another order is the same version.
            let mut reordered = file(21_800);
            reordered.members.reverse();
            reordered.provisions.reverse();
            let reordered = reordered.validate().expect("valid");
            let kept = load(&t.db, &reordered, "b.toml").await.expect("loads");
            assert_eq!(kept.version, 1, "{label}");

            let mut changed = file(22_000);
            changed.provisions.retain(|p| p.function == "registry");
            let changed = changed.validate().expect("valid");
            let bumped = load(&t.db, &changed, "a.toml").await.expect("loads");
            assert_eq!(
                bumped,
                Loaded {
                    version: 2,
                    changed: true
                },
                "{label}"
            );
            let s = snapshot(&t.db).await.expect("reads");
            assert_eq!(s.version, 2, "{label}");
            assert_eq!(s.directory, changed, "{label}: the old rows are gone");
            assert_eq!(s.directory.members[1].population, 22_000, "{label}");

            let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM directory_versions")
                .fetch_one(t.db.pool())
                .await
                .expect("counts");
            assert_eq!(versions, 2, "{label}: the history keeps every version");
        }
    }

    /// More rows than one INSERT carries are stored in chunks, all in the one transaction.
    #[tokio::test]
    async fn large_directories_load_in_chunks() {
        for t in testing::all().await {
            migrated(&t).await;
            let mut big = DirectoryFile {
                nodes: vec![NodeEntry {
                    node_id: "n".into(),
                    endpoint: "https://127.0.0.1:7401".into(),
                }],
                ..DirectoryFile::default()
            };
            for i in 0..1_203 {
                let istat = format!("{:06}", 1_000 + i);
                big.members.push(MemberEntry {
                    istat: istat.clone(),
                    name: format!("Comune {i}"),
                    ..MemberEntry::default()
                });
                big.provisions.push(ProvisionEntry {
                    comune: istat,
                    function: "registry".into(),
                    node: "n".into(),
                });
            }
            let big = big.validate().expect("valid");
            load(&t.db, &big, "big.toml").await.expect("loads");
            let s = snapshot(&t.db).await.expect("reads");
            assert_eq!(s.directory.members.len(), 1_203, "{}", t.label);
            assert_eq!(s.directory, big, "{}", t.label);
        }
    }

    /// A revocation is stored with the directory, makes a new version that counts it, reads
    /// back equal, and goes when a later version no longer lists it.
    #[tokio::test]
    async fn revocations_are_stored_and_versioned() {
        for t in testing::all().await {
            migrated(&t).await;
            let label = t.label;
            load(&t.db, &file(21_800).validate().expect("valid"), "a.toml")
                .await
                .expect("loads");
            let mut revoking = file(21_800);
            revoking.revoked_certificates = ["b", "a"]
                .into_iter()
                .map(|digit| RevokedCertificate {
                    fingerprint: format!("sha256:{}", digit.repeat(64)),
                    // A node no longer listed: its certificate stays revoked.
                    node: if digit == "a" { "luni" } else { "sarzana" }.into(),
                    reason: "key compromise".into(),
                    revoked_at: "2026-12-06".into(),
                })
                .collect();
            let revoking = revoking.validate().expect("valid");
            let loaded = load(&t.db, &revoking, "a.toml").await.expect("loads");
            assert_eq!(
                loaded,
                Loaded {
                    version: 2,
                    changed: true
                },
                "{label}: a revocation is a new version"
            );
            let s = snapshot(&t.db).await.expect("reads");
            assert_eq!(s.directory, revoking, "{label}");
            assert_eq!(s.content_hash, revoking.content_hash(), "{label}");
            let counted: Vec<i64> = sqlx::query_scalar(
                "SELECT revoked_certificates FROM directory_versions ORDER BY version",
            )
            .fetch_all(t.db.pool())
            .await
            .expect("reads the versions");
            assert_eq!(counted, [0, 2], "{label}: the versions show the revocation");

            load(&t.db, &file(21_800).validate().expect("valid"), "a.toml")
                .await
                .expect("loads");
            let s = snapshot(&t.db).await.expect("reads");
            assert_eq!(s.version, 3, "{label}");
            assert!(s.directory.revoked_certificates.is_empty(), "{label}");
        }
    }

    #[test]
    fn insert_statements_number_their_placeholders() {
        assert_eq!(
            insert_sql("nodes", &["node_id", "endpoint"], 2),
            "INSERT INTO nodes (node_id, endpoint) VALUES ($1, $2), ($3, $4)"
        );
    }
}
