//! The rules of the registry office, with no I/O: the codice fiscale (DOMAIN.md "Check
//! digits"), what a resident record must hold (DOMAIN.md "Registry", DPR 223/1989), and the
//! errors those rules raise; households and residence events ([`household`]), the ANPR
//! boundary ([`anpr`]), the preservation boundary ([`preservation`]), certificates
//! ([`certificate`], [`pdf`]). Nothing here knows about gRPC or SQL.

pub mod anpr;
pub mod cases;
pub mod certificate;
pub mod codice_fiscale;
pub mod household;
pub mod moves;
pub mod pdf;
pub mod preservation;
pub mod protocol;
pub mod resident;
pub mod statistics;

pub use codice_fiscale::{CodiceFiscaleError, Mismatch};
pub use resident::{
    Address, CivilDate, RegistrationReason, Resident, ResidentDraft, Sex, sort_key,
};

/// A rule of the registry broken by a request. Each variant has a stable reason
/// ([`RegistryError::reason`]) and names the request field at fault
/// ([`RegistryError::field`]); messages never carry personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// A required field is empty.
    #[error("{field} is required")]
    Required {
        /// The field path.
        field: &'static str,
    },
    /// A text field is longer than allowed.
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// The field path.
        field: &'static str,
        /// The limit, in characters.
        max: usize,
    },
    /// A text field holds control characters.
    #[error("{field} must not contain control characters")]
    InvalidCharacters {
        /// The field path.
        field: &'static str,
    },
    /// The codice fiscale is malformed or its check letter is wrong.
    #[error("resident.codice_fiscale is not a valid codice fiscale: {0}")]
    InvalidCodiceFiscale(#[from] CodiceFiscaleError),
    /// The codice fiscale is valid but disagrees with the birth date or sex.
    #[error("resident.codice_fiscale does not agree with the resident's {0}")]
    CodiceFiscaleMismatch(Mismatch),
    /// A date is partial or does not exist.
    #[error("{field} must be a complete, real calendar date")]
    InvalidDate {
        /// The field path.
        field: &'static str,
    },
    /// The birth date is after today.
    #[error("resident.birth_date must not be in the future")]
    BirthDateInFuture,
    /// The registration takes effect before the person was born.
    #[error("resident.registration_date must not be before the birth date")]
    RegistrationBeforeBirth,
    /// The CAP is not five digits.
    #[error("resident.address.postal_code must be five digits")]
    InvalidPostalCode,
    /// The citizenship is not two upper-case letters.
    #[error("resident.citizenship must be an ISO 3166-1 alpha-2 code (two upper-case letters)")]
    InvalidCitizenship,
    /// The place of birth is not a letter and three digits.
    #[error("resident.birth_place_code must be a cadastral code: a letter and three digits")]
    InvalidPlaceCode,
    /// An enum field holds a value this version does not know.
    #[error("{field} has an unknown value {value}")]
    UnknownEnumValue {
        /// The field path.
        field: &'static str,
        /// The value received.
        value: i32,
    },
    /// A current resident of the comune already has this codice fiscale.
    #[error("a resident with this codice fiscale is already registered in this comune")]
    AlreadyRegistered,
}

impl RegistryError {
    /// The stable UPPER_SNAKE_CASE reason of the `ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Required { .. } => "FIELD_REQUIRED",
            Self::TooLong { .. } => "FIELD_TOO_LONG",
            Self::InvalidCharacters { .. } => "INVALID_CHARACTERS",
            Self::InvalidCodiceFiscale(_) => "INVALID_CODICE_FISCALE",
            Self::CodiceFiscaleMismatch(_) => "CODICE_FISCALE_MISMATCH",
            Self::InvalidDate { .. } | Self::BirthDateInFuture | Self::RegistrationBeforeBirth => {
                "INVALID_DATE"
            }
            Self::InvalidPostalCode => "INVALID_POSTAL_CODE",
            Self::InvalidCitizenship => "INVALID_CITIZENSHIP",
            Self::InvalidPlaceCode => "INVALID_PLACE_CODE",
            Self::UnknownEnumValue { .. } => "INVALID_ENUM_VALUE",
            Self::AlreadyRegistered => "RESIDENT_ALREADY_REGISTERED",
        }
    }

    /// The request field at fault, as a path from the request (`resident.codice_fiscale`).
    pub fn field(&self) -> &'static str {
        match self {
            Self::Required { field }
            | Self::TooLong { field, .. }
            | Self::InvalidCharacters { field }
            | Self::InvalidDate { field }
            | Self::UnknownEnumValue { field, .. } => field,
            Self::InvalidCodiceFiscale(_)
            | Self::CodiceFiscaleMismatch(_)
            | Self::AlreadyRegistered => "resident.codice_fiscale",
            Self::BirthDateInFuture => "resident.birth_date",
            Self::RegistrationBeforeBirth => "resident.registration_date",
            Self::InvalidPostalCode => "resident.address.postal_code",
            Self::InvalidCitizenship => "resident.citizenship",
            Self::InvalidPlaceCode => "resident.birth_place_code",
        }
    }

    /// True when the request is well formed but conflicts with what is stored (ALREADY_EXISTS
    /// on the wire); every other error is invalid input.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::AlreadyRegistered)
    }
}
