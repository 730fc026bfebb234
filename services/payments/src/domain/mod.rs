//! The rules of the payments desk, pure: no tonic, no sqlx, no clock except where an instant is
//! passed in. Each rule names where it comes from in DOMAIN.md.
//!
//! - [`apportion`]: cost sharing among the members of an association (largest remainder).
//! - [`fiscal`]: fiscal codes (11-digit Luhn, 16-character codice fiscale with omocodia).
//! - [`iban`]: Italian IBANs (ISO 13616 mod 97, CIN letter format).
//! - [`notice`]: IUVs and 18-digit notice numbers (aux digit 3, mod 93 check digits).
//! - [`money`]: integer cents, and decimal euros at wire boundaries.
//! - [`position`]: a new debt position, validated.
//! - [`state`]: the state machine of a position, from stored facts and the date.
//! - [`receipt`]: the sealed receipt document.
//! - [`statistics`]: the figures of the quality office's payment indicators.
//! - [`ledger`]: the double-entry journal, its chart of accounts and its invariants.
//! - [`reconciliation`]: reconciliation flows, their totals and the matching of their lines.
//! - [`DomainError`]: every rule a request can break, with reason and field path.

pub mod apportion;
mod error;
pub mod fiscal;
pub mod iban;
pub mod ledger;
pub mod money;
pub mod notice;
pub mod position;
pub mod receipt;
pub mod reconciliation;
pub mod state;
pub mod statistics;

pub use error::DomainError;
pub use position::{
    DateParts, DebtPositionDraft, NewDebtPosition, NewPaymentOption, NewTransfer,
    PaymentOptionDraft, PositionState, TransferDraft,
};
pub use state::{NoticeStatus, OptionFacts, PaymentError, PositionFacts};
