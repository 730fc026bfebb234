//! The rules of the payments desk, pure: no tonic, no sqlx, no clock except where an instant is
//! passed in. Each rule names where it comes from in DOMAIN.md.
//!
//! - [`fiscal`]: fiscal codes (11-digit Luhn, 16-character codice fiscale with omocodia).
//! - [`iban`]: Italian IBANs (ISO 13616 mod 97, CIN letter format).
//! - [`notice`]: IUVs and 18-digit notice numbers (aux digit 3, mod 93 check digits).
//! - [`money`]: integer cents, and decimal euros at wire boundaries.
//! - [`position`]: a new debt position, validated.
//! - [`DomainError`]: every rule a request can break, with reason and field path.

mod error;
pub mod fiscal;
pub mod iban;
pub mod money;
pub mod notice;
pub mod position;

pub use error::DomainError;
pub use position::{
    DateParts, DebtPositionDraft, NewDebtPosition, NewPaymentOption, NewTransfer,
    PaymentOptionDraft, PositionState, TransferDraft,
};
