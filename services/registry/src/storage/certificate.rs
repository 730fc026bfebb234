//! Storage of certificates and of each comune's seal key (tables `registry_certificates`,
//! `registry_certificate_keys`). A certificate's content and seal are stored exactly as
//! issued and never changed; verification reads them back and checks the seal.

use sqlx::{AnyConnection, FromRow};
use unione_kit::Istat;

use crate::domain::certificate::CertificateKind;

use super::decode_code;

/// A comune's seal key.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey {
    /// The Ed25519 key, PKCS#8.
    pub pkcs8: Vec<u8>,
    /// Its public half, 32 bytes.
    pub public_key: Vec<u8>,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// A stored certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCertificate {
    /// The opaque id.
    pub id: String,
    /// The verification code.
    pub verification_code: String,
    /// What it certifies.
    pub kind: CertificateKind,
    /// The person's resident id.
    pub resident_id: String,
    /// The date certified, `YYYY-MM-DD`.
    pub as_of: String,
    /// The channel code (`COUNTER`, `WEB`, `KIOSK`, ...).
    pub channel: String,
    /// The sealed content (canonical JSON).
    pub content: String,
    /// The Ed25519 signature of `content`.
    pub seal: Vec<u8>,
    /// The principal who issued it (opaque id).
    pub issued_by: String,
    /// When it was issued, microseconds since the epoch.
    pub issue_time: i64,
}

#[derive(FromRow)]
struct CertificateRow {
    id: String,
    verification_code: String,
    kind: String,
    resident_id: String,
    as_of: String,
    channel: String,
    content: String,
    seal: Vec<u8>,
    issued_by: String,
    issue_time: i64,
}

impl TryFrom<CertificateRow> for StoredCertificate {
    type Error = sqlx::Error;

    fn try_from(row: CertificateRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            verification_code: row.verification_code,
            kind: decode_code(&row.kind, "kind", CertificateKind::from_code)?,
            resident_id: row.resident_id,
            as_of: row.as_of,
            channel: row.channel,
            content: row.content,
            seal: row.seal,
            issued_by: row.issued_by,
            issue_time: row.issue_time,
        })
    }
}

/// The seal key of `comune`, if one was made.
pub async fn seal_key(
    conn: &mut AnyConnection,
    comune: &Istat,
) -> Result<Option<SealKey>, sqlx::Error> {
    let row: Option<(Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT pkcs8, public_key FROM registry_certificate_keys WHERE comune = $1")
            .bind(comune.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(pkcs8, public_key)| SealKey { pkcs8, public_key }))
}

/// Stores the first seal key of `comune`; does nothing if it already has one (read it back
/// with [`seal_key`]).
pub async fn insert_seal_key(
    conn: &mut AnyConnection,
    comune: &Istat,
    key: &SealKey,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_certificate_keys (comune, pkcs8, public_key, create_time) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (comune) DO NOTHING",
    )
    .bind(comune.as_str())
    .bind(key.pkcs8.as_slice())
    .bind(key.public_key.as_slice())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Stores an issued certificate of `comune`.
pub async fn insert_certificate(
    conn: &mut AnyConnection,
    comune: &Istat,
    cert: &StoredCertificate,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_certificates (comune, id, verification_code, kind, resident_id, \
         as_of, channel, content, seal, issued_by, issue_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(comune.as_str())
    .bind(cert.id.as_str())
    .bind(cert.verification_code.as_str())
    .bind(cert.kind.code())
    .bind(cert.resident_id.as_str())
    .bind(cert.as_of.as_str())
    .bind(cert.channel.as_str())
    .bind(cert.content.as_str())
    .bind(cert.seal.as_slice())
    .bind(cert.issued_by.as_str())
    .bind(cert.issue_time)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The certificate of `comune` with this verification code.
pub async fn find_by_code(
    conn: &mut AnyConnection,
    comune: &Istat,
    code: &str,
) -> Result<Option<StoredCertificate>, sqlx::Error> {
    let row: Option<CertificateRow> = sqlx::query_as(
        "SELECT id, verification_code, kind, resident_id, as_of, channel, content, seal, \
         issued_by, issue_time FROM registry_certificates \
         WHERE comune = $1 AND verification_code = $2",
    )
    .bind(comune.as_str())
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(StoredCertificate::try_from).transpose()
}

/// How many certificates `comune` has issued.
pub async fn count_certificates(
    conn: &mut AnyConnection,
    comune: &Istat,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM registry_certificates WHERE comune = $1")
        .bind(comune.as_str())
        .fetch_one(&mut *conn)
        .await
}

/// Which certificates a listing reads: every one of the comune, or only those about one
/// resident record, or only those about the records with one codice fiscale.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateFilter {
    /// Only certificates about this resident id.
    pub resident_id: Option<String>,
    /// Only certificates about records with this codice fiscale (upper case).
    pub codice_fiscale: Option<String>,
}

/// The position a page of certificates ends at: (issue_time, id), newest first.
pub type CertificatePageKey = (i64, String);

/// The certificate `id` of `comune`.
pub async fn get_certificate(
    conn: &mut AnyConnection,
    comune: &Istat,
    id: &str,
) -> Result<Option<StoredCertificate>, sqlx::Error> {
    let row: Option<CertificateRow> = sqlx::query_as(
        "SELECT id, verification_code, kind, resident_id, as_of, channel, content, seal, \
         issued_by, issue_time FROM registry_certificates WHERE comune = $1 AND id = $2",
    )
    .bind(comune.as_str())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(StoredCertificate::try_from).transpose()
}

/// The certificates of `comune` that `filter` selects, newest first (issue_time desc, id
/// desc), after `after`, at most `limit`.
pub async fn list_certificates(
    conn: &mut AnyConnection,
    comune: &Istat,
    filter: &CertificateFilter,
    after: Option<&CertificatePageKey>,
    limit: i64,
) -> Result<Vec<StoredCertificate>, sqlx::Error> {
    // An empty filter value selects everything; `after` defaults past the newest.
    let (after_time, after_id) = after.map_or((i64::MAX, ""), |(t, id)| (*t, id.as_str()));
    let rows: Vec<CertificateRow> = sqlx::query_as(
        "SELECT c.id, c.verification_code, c.kind, c.resident_id, c.as_of, c.channel, \
         c.content, c.seal, c.issued_by, c.issue_time FROM registry_certificates c \
         JOIN registry_residents r ON r.comune = c.comune AND r.id = c.resident_id \
         WHERE c.comune = $1 AND ($2 = '' OR c.resident_id = $2) \
         AND ($3 = '' OR r.codice_fiscale = $3) \
         AND (c.issue_time < $4 OR (c.issue_time = $4 AND ($5 = '' OR c.id < $5))) \
         ORDER BY c.issue_time DESC, c.id DESC LIMIT $6",
    )
    .bind(comune.as_str())
    .bind(filter.resident_id.as_deref().unwrap_or(""))
    .bind(filter.codice_fiscale.as_deref().unwrap_or(""))
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(StoredCertificate::try_from).collect()
}
