//! `unione export`, `unione import` and `unione backup`: moving one comune's data of one
//! service between nodes' databases, and backing up a node's SQLite database while it runs.
//! The database is the one the node's configuration names (`database_url`, or
//! `{data_dir}/node.sqlite`); the work is `unione_kit::transfer`'s, the table lists each
//! service's `storage::transfer`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use unione_kit::config;
use unione_kit::storage::redact;
use unione_kit::transfer::{self, Service, Summary};
use unione_kit::{Database, Istat};

/// A service whose data can move.
#[derive(Clone, Copy, ValueEnum)]
pub enum ServiceArg {
    Registry,
    Payments,
    Quality,
}

impl ServiceArg {
    fn service(self) -> Service {
        match self {
            Self::Registry => unione_registry::storage::transfer::service(),
            Self::Payments => unione_payments::storage::transfer::service(),
            Self::Quality => unione_quality::storage::transfer::service(),
        }
    }
}

#[derive(Args)]
pub struct ExportArgs {
    /// The source node's TOML configuration file (for its database).
    #[arg(long, short, env = "UNIONE_CONFIG")]
    config: Option<PathBuf>,
    /// The service whose data moves.
    #[arg(long, value_enum)]
    service: ServiceArg,
    /// The comune's ISTAT code.
    #[arg(long)]
    comune: String,
    /// The archive to write (must not exist; written readable by its owner only).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The target node's TOML configuration file (for its database).
    #[arg(long, short, env = "UNIONE_CONFIG")]
    config: Option<PathBuf>,
    /// The service whose data moves (must be the archive's).
    #[arg(long, value_enum)]
    service: ServiceArg,
    /// The archive written by `unione export`.
    #[arg(long = "in")]
    input: PathBuf,
}

#[derive(Args)]
pub struct BackupArgs {
    /// The node's TOML configuration file (for its database).
    #[arg(long, short, env = "UNIONE_CONFIG")]
    config: Option<PathBuf>,
    /// The backup file to write (must not exist).
    #[arg(long)]
    out: PathBuf,
}

/// The node's database; `create` makes the SQLite data directory of a node that has not run
/// yet (the target of an import).
async fn open(config: Option<&Path>, create: bool) -> anyhow::Result<Database> {
    let config: unione_node::NodeConfig = config::load(config)?;
    if create && config.database_url.is_empty() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data directory {}", config.data_dir))?;
    }
    let url = config.database_url();
    Database::connect(&url)
        .await
        .with_context(|| format!("opening the node's database {}", redact(&url)))
}

fn print(verb: &str, summary: &Summary) {
    println!(
        "{verb} {} data of comune {}: {} rows (content SHA-256 {})",
        summary.service,
        summary.comune,
        summary.total_rows(),
        summary.content_sha256
    );
    for (table, rows) in &summary.rows {
        println!("  {table}: {rows}");
    }
}

pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let istat = Istat::parse(&args.comune)
        .with_context(|| format!("--comune {}: not a six-digit ISTAT code", args.comune))?;
    let db = open(args.config.as_deref(), false).await?;
    let summary = transfer::export(&db, &args.service.service(), &istat, &args.out)
        .await
        .with_context(|| format!("exporting to {}", args.out.display()))?;
    db.close().await;
    print("exported", &summary);
    println!("archive: {}", args.out.display());
    Ok(())
}

pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let db = open(args.config.as_deref(), true).await?;
    let summary = transfer::import(&db, &args.service.service(), &args.input)
        .await
        .with_context(|| format!("importing {}", args.input.display()))?;
    db.close().await;
    print("imported", &summary);
    Ok(())
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let db = open(args.config.as_deref(), false).await?;
    transfer::backup(&db, &args.out)
        .await
        .with_context(|| format!("backing up to {}", args.out.display()))?;
    db.close().await;
    let copy = Database::open_sqlite(&args.out)
        .await
        .context("opening the backup")?;
    let check = transfer::integrity_check(&copy).await?;
    copy.close().await;
    anyhow::ensure!(
        check == "ok",
        "the backup fails PRAGMA integrity_check: {check}"
    );
    println!(
        "backed up to {} (PRAGMA integrity_check: ok)",
        args.out.display()
    );
    Ok(())
}
