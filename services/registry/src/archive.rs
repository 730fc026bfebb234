//! The preservation archive of a node: a directory (`registry.preservation_dir`) that receives
//! each sealed daily register as a package ([`crate::domain::preservation`]), laid out as
//!
//! ```text
//! {dir}/{comune}/{register}/{yyyy}/{yyyy-mm-dd}/
//!     registro-giornaliero.json   the daily register document, as GetDailyRegister exports it
//!     manifest.json               comune, register, day, seal, previous seal, document hash, size
//!     ricevuta.json               the receipt: deposit id, time, SHA-256 of manifest.json
//! ```
//!
//! Every file is written to a temporary file in the same directory, flushed to disk and
//! renamed into place, so a reader never sees half a file; the receipt is written last, so a
//! package without `ricevuta.json` is incomplete and is written again by the next deposit. A
//! package with a receipt is never changed: depositing it again returns the stored receipt,
//! and a different package for the same day is refused ([`PreservationError::Conflict`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use unione_kit::storage::now_micros;

use crate::domain::preservation::{
    DOCUMENT_FILE, PreservationError, PreservationPackage, PreservationReceipt, PreservationService,
};
use crate::domain::protocol::sha256_hex;

/// The file name of a package's manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The file name of a package's receipt, written last.
pub const RECEIPT_FILE: &str = "ricevuta.json";

/// The clock of the archive: microseconds since the epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A preservation archive in a directory of the node's file system.
#[derive(Clone)]
pub struct DirectoryArchive {
    root: PathBuf,
    clock: Clock,
}

impl std::fmt::Debug for DirectoryArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryArchive")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl DirectoryArchive {
    /// The archive under `root` (created on the first deposit), on the system clock.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_clock(root, Arc::new(now_micros))
    }

    /// The archive with another clock for the deposit times (tests).
    pub fn with_clock(root: impl Into<PathBuf>, clock: Clock) -> Self {
        Self {
            root: root.into(),
            clock,
        }
    }

    /// The directory of the package of `comune`, `register` and `day`.
    pub fn package_dir(&self, comune: &str, register: &str, day: chrono::NaiveDate) -> PathBuf {
        self.root
            .join(comune)
            .join(register)
            .join(day.format("%Y").to_string())
            .join(day.format("%Y-%m-%d").to_string())
    }
}

#[async_trait::async_trait]
impl PreservationService for DirectoryArchive {
    async fn deposit(
        &self,
        package: &PreservationPackage,
    ) -> Result<PreservationReceipt, PreservationError> {
        for part in [&package.comune, &package.register] {
            if part.is_empty()
                || !part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(PreservationError::Unavailable(format!(
                    "`{part}` cannot name a directory"
                )));
            }
        }
        let dir = self.package_dir(&package.comune, &package.register, package.day);
        let package = package.clone();
        let now = (self.clock)();
        tokio::task::spawn_blocking(move || deposit_in(&dir, &package, now))
            .await
            .map_err(|e| PreservationError::Unavailable(format!("the deposit task failed: {e}")))?
    }
}

fn unavailable(what: &str, path: &Path, err: &std::io::Error) -> PreservationError {
    PreservationError::Unavailable(format!("{what} {}: {err}", path.display()))
}

/// Writes the package into `dir`, or returns the receipt already there.
fn deposit_in(
    dir: &Path,
    package: &PreservationPackage,
    now: i64,
) -> Result<PreservationReceipt, PreservationError> {
    let mut manifest = serde_json::to_vec_pretty(&package.manifest())
        .map_err(|e| PreservationError::Unavailable(format!("manifest: {e}")))?;
    manifest.push(b'\n');
    let manifest_sha256 = sha256_hex(&manifest);
    let receipt_path = dir.join(RECEIPT_FILE);
    match std::fs::read(&receipt_path) {
        Ok(bytes) => return existing(dir, &bytes, &manifest_sha256),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(unavailable("reading", &receipt_path, &err)),
    }
    std::fs::create_dir_all(dir).map_err(|e| unavailable("creating", dir, &e))?;
    write_atomically(dir, DOCUMENT_FILE, &package.document)?;
    write_atomically(dir, MANIFEST_FILE, &manifest)?;
    let receipt = PreservationReceipt {
        deposit_id: uuid::Uuid::new_v4().to_string(),
        deposited_at: now,
        package_sha256: manifest_sha256,
    };
    let mut bytes = serde_json::to_vec_pretty(&receipt)
        .map_err(|e| PreservationError::Unavailable(format!("receipt: {e}")))?;
    bytes.push(b'\n');
    write_atomically(dir, RECEIPT_FILE, &bytes)?;
    Ok(receipt)
}

/// The receipt of a package already deposited, if it is the same package.
fn existing(
    dir: &Path,
    receipt: &[u8],
    manifest_sha256: &str,
) -> Result<PreservationReceipt, PreservationError> {
    let receipt: PreservationReceipt = serde_json::from_slice(receipt).map_err(|e| {
        PreservationError::Unavailable(format!("{}: {e}", dir.join(RECEIPT_FILE).display()))
    })?;
    let path = dir.join(MANIFEST_FILE);
    let stored = std::fs::read(&path).map_err(|e| unavailable("reading", &path, &e))?;
    if receipt.package_sha256 == manifest_sha256 && sha256_hex(&stored) == manifest_sha256 {
        Ok(receipt)
    } else {
        Err(PreservationError::Conflict)
    }
}

/// Writes `bytes` to `dir/name` through a temporary file, flushed, then renamed; the directory
/// is flushed after the rename so the new name survives a crash.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PreservationError> {
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let target = dir.join(name);
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if let Err(err) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(unavailable("writing", &target, &err));
    }
    // Flushing a directory is not supported everywhere (it is on Linux); the rename is done.
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn package(seal: &str) -> PreservationPackage {
        PreservationPackage {
            comune: "011027".to_owned(),
            register: "GEN".to_owned(),
            day: NaiveDate::from_ymd_opt(2026, 3, 6).expect("valid date"),
            seal: seal.to_owned(),
            previous_seal: String::new(),
            sealed_at: 1,
            document: b"{\"date\":\"2026-03-06\"}".to_vec(),
        }
    }

    /// A deposit writes the document, the manifest and the receipt, and nothing temporary; the
    /// same package again gives the same receipt and rewrites nothing; another package for
    /// the same day is refused.
    #[tokio::test]
    async fn deposits_are_atomic_and_idempotent() {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let archive = DirectoryArchive::with_clock(tmp.path(), Arc::new(|| 42));
        let first = archive.deposit(&package("aa")).await.expect("deposited");
        assert_eq!(first.deposited_at, 42);
        let dir = archive.package_dir("011027", "GEN", package("aa").day);
        assert!(dir.ends_with("011027/GEN/2026/2026-03-06"));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("the package directory")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        assert_eq!(names, [MANIFEST_FILE, DOCUMENT_FILE, RECEIPT_FILE]);
        let manifest = std::fs::read(dir.join(MANIFEST_FILE)).expect("the manifest");
        assert_eq!(sha256_hex(&manifest), first.package_sha256);
        let modified = std::fs::metadata(dir.join(RECEIPT_FILE))
            .and_then(|m| m.modified())
            .expect("a time");

        let later = DirectoryArchive::with_clock(tmp.path(), Arc::new(|| 99));
        let again = later
            .deposit(&package("aa"))
            .await
            .expect("deposited again");
        assert_eq!(again, first);
        let still = std::fs::metadata(dir.join(RECEIPT_FILE))
            .and_then(|m| m.modified())
            .expect("a time");
        assert_eq!(still, modified);

        assert_eq!(
            later.deposit(&package("bb")).await,
            Err(PreservationError::Conflict)
        );
    }

    /// An archive that cannot be written is unavailable, and leaves no receipt.
    #[tokio::test]
    async fn an_unwritable_archive_is_unavailable() {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        // A path under a regular file cannot be created, even by root.
        let blocker = tmp.path().join("not-a-directory");
        std::fs::write(&blocker, b"x").expect("a file");
        let archive = DirectoryArchive::new(blocker.join("archive"));
        let err = archive
            .deposit(&package("aa"))
            .await
            .expect_err("unavailable");
        assert!(matches!(err, PreservationError::Unavailable(_)), "{err}");
    }
}
