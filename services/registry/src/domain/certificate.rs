//! Registry certificates (DOMAIN.md "Registry": residence, household status, historical
//! residence at a date; "a digital certificate carries a seal and a verification code (QR
//! 'contrassegno', CAD art. 23) with which anyone can check it against the original").
//!
//! A certificate's content is the canonical JSON of [`CertificateContent`] (fields in a fixed
//! order, no whitespace); the seal is the Ed25519 signature of those bytes by the issuing
//! comune's key; the verification code is 12 characters from [`CODE_ALPHABET`]. The PDF is
//! drawn by [`super::pdf`].

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// The characters of a verification code: digits and capitals without 0, 1, I and O, which
/// are read for one another.
pub const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// The length of a verification code (60 bits).
pub const CODE_LEN: usize = 12;
/// Where a citizen checks a certificate; the QR code carries this followed by the code.
pub const VERIFY_URL: &str = "https://unione.example/verifica/";

/// What a certificate certifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateKind {
    /// Residence today.
    Residence,
    /// Household status today (stato di famiglia).
    HouseholdStatus,
    /// Residence at a past date.
    HistoricalResidence,
}

impl CertificateKind {
    /// The stable code stored in the database and in the content.
    pub fn code(self) -> &'static str {
        match self {
            Self::Residence => "RESIDENCE",
            Self::HouseholdStatus => "HOUSEHOLD_STATUS",
            Self::HistoricalResidence => "HISTORICAL_RESIDENCE",
        }
    }

    /// The kind of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "RESIDENCE" => Some(Self::Residence),
            "HOUSEHOLD_STATUS" => Some(Self::HouseholdStatus),
            "HISTORICAL_RESIDENCE" => Some(Self::HistoricalResidence),
            _ => None,
        }
    }

    /// The title printed on the certificate.
    pub fn title(self) -> &'static str {
        match self {
            Self::Residence => "CERTIFICATO DI RESIDENZA",
            Self::HouseholdStatus => "CERTIFICATO DI STATO DI FAMIGLIA",
            Self::HistoricalResidence => "CERTIFICATO STORICO DI RESIDENZA",
        }
    }
}

/// The sealed data of a certificate. Serialised in this field order, it is the canonical
/// content ([`CertificateContent::canonical_json`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateContent {
    /// `CERTIFICATE_TYPE` code ([`CertificateKind::code`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// The verification code.
    pub verification_code: String,
    /// The issuing comune.
    pub comune: ComuneInfo,
    /// The person certified.
    pub person: PersonInfo,
    /// The date certified, `YYYY-MM-DD`.
    pub as_of: String,
    /// The address at `as_of`.
    pub address: AddressInfo,
    /// The household at `as_of` (household status only), the head first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub household: Vec<MemberInfo>,
    /// The channel of the request (`COUNTER`, `WEB`, `KIOSK`, ...).
    pub channel: String,
    /// When it was issued, RFC 3339 UTC with microseconds.
    pub issue_time: String,
}

/// The issuing comune in a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComuneInfo {
    /// ISTAT code.
    pub istat: String,
    /// Name.
    pub name: String,
}

/// The person in a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonInfo {
    /// Codice fiscale.
    pub codice_fiscale: String,
    /// Family name(s).
    pub family_name: String,
    /// Given name(s).
    pub given_name: String,
    /// Birth date, `YYYY-MM-DD`.
    pub birth_date: String,
    /// Cadastral code of the place of birth.
    pub birth_place_code: String,
}

/// An address in a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressInfo {
    /// Street.
    pub street: String,
    /// House number.
    pub house_number: String,
    /// CAP.
    pub postal_code: String,
    /// Locality, possibly empty.
    pub locality: String,
}

/// A household member in a household status certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The person.
    pub person: PersonInfo,
    /// `RELATIONSHIP` code of the tie to the head.
    pub relationship: String,
}

impl CertificateContent {
    /// The canonical JSON that is sealed: fields in declaration order, no whitespace.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("invariant: the content is plain strings")
    }

    /// The lines printed on the certificate (Italian), before the verification block.
    pub fn lines(&self, kind: CertificateKind, comune_name: &str) -> Vec<String> {
        let p = &self.person;
        let a = &self.address;
        let mut lines = vec![
            format!("COMUNE DI {}", comune_name.to_uppercase()),
            format!("Ufficio anagrafe - codice ISTAT {}", self.comune.istat),
            String::new(),
            kind.title().to_owned(),
            String::new(),
            "L'ufficiale d'anagrafe, visti gli atti d'ufficio, certifica che".to_owned(),
            format!("{} {}", p.family_name, p.given_name),
            format!(
                "nato/a il {} (luogo {}), codice fiscale {}",
                p.birth_date, p.birth_place_code, p.codice_fiscale
            ),
        ];
        let place = if a.locality.is_empty() {
            format!("{} {}, {}", a.street, a.house_number, a.postal_code)
        } else {
            format!(
                "{} {}, {} {}",
                a.street, a.house_number, a.postal_code, a.locality
            )
        };
        match kind {
            CertificateKind::HistoricalResidence => {
                lines.push(format!("alla data del {} era residente in", self.as_of));
            }
            _ => lines.push(format!("e' residente, alla data del {}, in", self.as_of)),
        }
        lines.push(place);
        if !self.household.is_empty() {
            lines.push(String::new());
            lines.push("e che la sua famiglia anagrafica e' composta da:".to_owned());
            for m in &self.household {
                lines.push(format!(
                    "- {} {}, nato/a il {}, {} ({})",
                    m.person.family_name,
                    m.person.given_name,
                    m.person.birth_date,
                    m.person.codice_fiscale,
                    m.relationship
                ));
            }
        }
        lines.push(String::new());
        lines.push(format!(
            "Rilasciato il {} (canale {})",
            self.issue_time, self.channel
        ));
        lines.push(format!("Codice di verifica: {}", self.verification_code));
        lines.push(format!("Verifica: {VERIFY_URL}{}", self.verification_code));
        lines.push("Contrassegno a stampa ai sensi dell'art. 23 del CAD.".to_owned());
        lines
    }
}

/// A verification code from 12 random bytes (each byte's low five bits pick a character, so
/// every character is equally likely).
pub fn verification_code(random: [u8; CODE_LEN]) -> String {
    random
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(b & 31)]))
        .collect()
}

/// A code as typed by someone checking a certificate: upper-cased, spaces and dashes dropped;
/// `None` unless 12 characters of [`CODE_ALPHABET`] remain.
pub fn normalize_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// A new Ed25519 key: its PKCS#8 document and its 32-byte public key.
pub fn generate_key() -> Result<(Vec<u8>, Vec<u8>), SealError> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| SealError::KeyGeneration)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| SealError::BadKey)?;
    Ok((pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec()))
}

/// The seal of `content`: its Ed25519 signature with the comune's key.
pub fn seal(pkcs8: &[u8], content: &str) -> Result<Vec<u8>, SealError> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| SealError::BadKey)?;
    Ok(pair.sign(content.as_bytes()).as_ref().to_vec())
}

/// True when `seal` is the signature of `content` by the key whose public half is given.
pub fn seal_verifies(public_key: &[u8], content: &str, seal: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(content.as_bytes(), seal)
        .is_ok()
}

/// A certificate that cannot be issued. Messages carry no personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The person was not resident at the date certified (FAILED_PRECONDITION).
    #[error("the person is not resident in this comune at the date certified")]
    NotResident {
        /// `certificate.resident`, or `certificate.as_of` for a historical certificate.
        field: &'static str,
    },
    /// A household status asked of a person in no household (FAILED_PRECONDITION).
    #[error("the person belongs to no household at the date certified")]
    NoHousehold,
    /// The verification code is not 12 characters of the code alphabet (INVALID_ARGUMENT).
    #[error("verification_code must be 12 characters of 23456789ABCDEFGHJKLMNPQRSTUVWXYZ")]
    InvalidCode,
}

impl CertificateError {
    /// The stable UPPER_SNAKE_CASE reason of the `ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotResident { .. } => "NOT_RESIDENT",
            Self::NoHousehold => "NO_HOUSEHOLD",
            Self::InvalidCode => "INVALID_VERIFICATION_CODE",
        }
    }

    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::NotResident { field } => field,
            Self::NoHousehold => "certificate.resident",
            Self::InvalidCode => "verification_code",
        }
    }

    /// True for invalid input (INVALID_ARGUMENT); otherwise FAILED_PRECONDITION.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Self::InvalidCode)
    }
}

/// A seal key that cannot be made or read (an internal error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The system random source failed.
    #[error("could not generate a seal key")]
    KeyGeneration,
    /// The stored key is not an Ed25519 PKCS#8 document.
    #[error("the stored seal key is unreadable")]
    BadKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet() {
        let code = verification_code([0, 1, 31, 32, 255, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(code.len(), CODE_LEN);
        assert!(!code.contains(['0', '1', 'I', 'O']));
        assert_eq!(normalize_code(&code.to_lowercase()), Some(code.clone()));
        let dashed = format!("{}-{}-{}", &code[..4], &code[4..8], &code[8..]);
        assert_eq!(normalize_code(&dashed), Some(code));
        assert_eq!(normalize_code("OOOOIIII1111"), None);
        assert_eq!(normalize_code("ABC"), None);
    }

    /// DOMAIN.md "Registry" (CAD art. 23): a modified document fails verification.
    #[test]
    fn a_seal_verifies_its_content_only() {
        let (pkcs8, public) = generate_key().expect("a key");
        let sealed = seal(&pkcs8, "{\"a\":1}").expect("sealed");
        assert!(seal_verifies(&public, "{\"a\":1}", &sealed));
        assert!(!seal_verifies(&public, "{\"a\":2}", &sealed));
        let (_, other) = generate_key().expect("another key");
        assert!(!seal_verifies(&other, "{\"a\":1}", &sealed));
    }
}
