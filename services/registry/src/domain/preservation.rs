//! The boundary with the preservation system (conservazione; DOMAIN.md "Registry", Protocol
//! register: the daily register is "sealed so it cannot be altered, sent to preservation by
//! the next working day"; DPCM 3/12/2013 art. 7, AgID Linee guida 2021 on preservation).
//!
//! Every sealed daily register goes to preservation through one
//! [`PreservationService::deposit`] call, as a [`PreservationPackage`] (a "pacchetto di
//! versamento": the daily register document as GetDailyRegister exports it, with its seal).
//! A day is preserved once the [`PreservationReceipt`] is stored with it; on
//! [`PreservationError`] nothing is stored and the day is sent again on the next run. A
//! deposit must be idempotent: the same day deposited again changes nothing and gives the
//! same receipt. The archive directory of [`crate::archive::DirectoryArchive`] is the one
//! implementation today; a connector to an accredited preservation service implements the
//! same trait.
//!
//! When a day is due: by the end of the first working day after it ([`due_date`],
//! [`is_overdue`]); Saturdays, Sundays and national holidays are not working days
//! ([`unione_kit::italy::is_working_day`]).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A sealed daily register, as sent to preservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreservationPackage {
    /// ISTAT code of the comune.
    pub comune: String,
    /// The register code.
    pub register: String,
    /// The day of the register, in Italy.
    pub day: NaiveDate,
    /// The day's seal, hex.
    pub seal: String,
    /// The seal of the previous sealed day, hex (empty for the first).
    pub previous_seal: String,
    /// When the day was sealed, microseconds since the epoch.
    pub sealed_at: i64,
    /// The daily register document: the canonical JSON of GetDailyRegister's `content`.
    pub document: Vec<u8>,
}

impl PreservationPackage {
    /// The manifest of the package, describing the document ([`Manifest`]).
    pub fn manifest(&self) -> Manifest {
        Manifest {
            kind: MANIFEST_KIND.to_owned(),
            comune: self.comune.clone(),
            register: self.register.clone(),
            day: self.day.format("%Y-%m-%d").to_string(),
            seal: self.seal.clone(),
            previous_seal: self.previous_seal.clone(),
            sealed_at: self.sealed_at,
            document: DOCUMENT_FILE.to_owned(),
            document_sha256: super::protocol::sha256_hex(&self.document),
            document_size: u64::try_from(self.document.len()).unwrap_or(u64::MAX),
        }
    }
}

/// What a package's manifest says, as JSON (`manifest.json` in the archive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_KIND`].
    pub kind: String,
    /// ISTAT code of the comune.
    pub comune: String,
    /// The register code.
    pub register: String,
    /// The day, `yyyy-mm-dd`.
    pub day: String,
    /// The day's seal, hex.
    pub seal: String,
    /// The previous sealed day's seal, hex (empty for the first).
    pub previous_seal: String,
    /// When the day was sealed, microseconds since the epoch.
    pub sealed_at: i64,
    /// The file name of the document in the package.
    pub document: String,
    /// SHA-256 of the document, hex.
    pub document_sha256: String,
    /// Size of the document, in bytes.
    pub document_size: u64,
}

/// The `kind` of every manifest.
pub const MANIFEST_KIND: &str = "unione.registry.v1.DailyRegisterPackage";
/// The file name of the daily register document in a package.
pub const DOCUMENT_FILE: &str = "registro-giornaliero.json";

/// The preservation system accepted a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreservationReceipt {
    /// The archive's id of the deposit.
    pub deposit_id: String,
    /// When the archive first accepted it, microseconds since the epoch.
    pub deposited_at: i64,
    /// SHA-256 of the package's manifest, hex (the manifest carries the document's hash).
    pub package_sha256: String,
}

/// The preservation system did not accept a package: nothing is recorded, and the day is
/// sent again on the next run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreservationError {
    /// The archive could not be reached or written; retrying may succeed.
    #[error("the preservation archive is unavailable: {0}")]
    Unavailable(String),
    /// The archive already holds a different package for that day: it never replaces one.
    #[error("the preservation archive holds another package for that day")]
    Conflict,
}

/// The preservation system that every sealed daily register is sent to.
#[async_trait::async_trait]
pub trait PreservationService: Send + Sync + std::fmt::Debug {
    /// Deposits `package`; the same package deposited again gives the same receipt and
    /// changes nothing.
    async fn deposit(
        &self,
        package: &PreservationPackage,
    ) -> Result<PreservationReceipt, PreservationError>;
}

/// The last day by which the daily register of `day` must be in preservation: the next
/// working day after it (DOMAIN.md "Registry": "sent to preservation by the next working
/// day").
pub fn due_date(day: NaiveDate) -> NaiveDate {
    unione_kit::italy::next_working_day(day)
}

/// Whether the daily register of `day`, not yet preserved, is overdue at the instant `now`
/// (microseconds since the epoch): its due date ([`due_date`]) is over in Italy.
pub fn is_overdue(day: NaiveDate, now: i64) -> bool {
    now >= unione_kit::italy::end_of_day(due_date(day))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    /// DOMAIN.md "Registry": sent to preservation by the next working day. Friday's register
    /// is due on Monday; Thursday 2 April 2026 on Friday 3; Friday 3 on Tuesday 7 (Easter
    /// Monday is a holiday); overdue from the first instant after the due day in Italy.
    #[test]
    fn due_by_the_end_of_the_next_working_day() {
        assert_eq!(due_date(day(2026, 3, 6)), day(2026, 3, 9));
        assert_eq!(due_date(day(2026, 4, 2)), day(2026, 4, 3));
        assert_eq!(due_date(day(2026, 4, 3)), day(2026, 4, 7));
        let monday_end = unione_kit::italy::end_of_day(day(2026, 3, 9));
        assert!(!is_overdue(day(2026, 3, 6), monday_end - 1));
        assert!(is_overdue(day(2026, 3, 6), monday_end));
    }

    /// The manifest names the document with its hash and size.
    #[test]
    fn the_manifest_describes_the_document() {
        let package = PreservationPackage {
            comune: "011027".to_owned(),
            register: "GEN".to_owned(),
            day: day(2026, 3, 6),
            seal: "ab".repeat(32),
            previous_seal: String::new(),
            sealed_at: 7,
            document: b"{}".to_vec(),
        };
        let m = package.manifest();
        assert_eq!(m.day, "2026-03-06");
        assert_eq!(m.document_size, 2);
        assert_eq!(
            m.document_sha256,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(m.kind, MANIFEST_KIND);
    }
}
