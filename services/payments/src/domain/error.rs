//! The rules a new debt position can break, each with a stable UPPER_SNAKE_CASE reason and the
//! exact path of the request field at fault (`debt_position.payment_options[0].transfers[1].iban`).
//! The gRPC layer turns every one into INVALID_ARGUMENT with an `ErrorInfo`
//! (see `crate::grpc`). Messages never quote a fiscal code or an IBAN.

use super::fiscal::FiscalCodeError;
use super::iban::IbanError;
use super::money::MoneyError;

/// A rule of DOMAIN.md "Payments" or "Check digits" that the input breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A required field is empty (reason `FIELD_REQUIRED`).
    #[error("{field} is required")]
    Required {
        /// The field.
        field: String,
    },
    /// A fiscal code fails its layout or check character (reason `INVALID_FISCAL_CODE`).
    #[error("{field} is not a valid fiscal code: {cause}")]
    FiscalCode {
        /// The field.
        field: String,
        /// What is wrong with it.
        cause: FiscalCodeError,
    },
    /// An IBAN fails its layout or check digits (reason `INVALID_IBAN`).
    #[error("{field} is not a valid Italian IBAN: {cause}")]
    Iban {
        /// The field.
        field: String,
        /// What is wrong with it.
        cause: IbanError,
    },
    /// A text is longer than allowed (reason `FIELD_TOO_LONG`).
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// The field.
        field: String,
        /// The longest allowed, in characters.
        max: usize,
    },
    /// An amount is outside 1 cent..999,999,999.99 euros (reason `INVALID_AMOUNT`).
    #[error("{field}: {cause}")]
    Amount {
        /// The field.
        field: String,
        /// What is wrong with it.
        cause: MoneyError,
    },
    /// A due date that is not a calendar date (reason `INVALID_DUE_DATE`).
    #[error("{field} is not a real calendar date")]
    DueDate {
        /// The field.
        field: String,
    },
    /// The options are not one payment in full or 2..N installments (reason
    /// `INVALID_PAYMENT_PLAN`).
    #[error("{field}: {why}")]
    PaymentPlan {
        /// The field.
        field: String,
        /// Which rule.
        why: &'static str,
    },
    /// More than 5 transfers in one option (reason `TOO_MANY_TRANSFERS`).
    #[error("{field} has {count} transfers; a payment option has 1 to 5")]
    TooManyTransfers {
        /// The field.
        field: String,
        /// How many were given.
        count: usize,
    },
    /// An option's amount is not exactly the sum of its transfers (reason `AMOUNT_MISMATCH`).
    #[error("{field} is {amount} cents but its transfers add up to {sum} cents")]
    AmountMismatch {
        /// The field (the option's `amount_cents`).
        field: String,
        /// The option's amount.
        amount: i64,
        /// The sum of its transfers.
        sum: i64,
    },
    /// A date that is not a calendar date (reason `INVALID_DATE`).
    #[error("{field} is not a real calendar date")]
    Date {
        /// The field.
        field: String,
    },
    /// An identifier outside 1 to 64 of `A-Z a-z 0-9 . _ -` (reason `INVALID_ID`).
    #[error("{field} must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'")]
    Id {
        /// The field.
        field: String,
    },
    /// A flow's creditor is not the comune it is imported for (reason `CREDITOR_MISMATCH`).
    #[error("{field} is not the fiscal code of this comune")]
    CreditorMismatch {
        /// The field.
        field: String,
    },
    /// A transfer index outside 1 to 5 (reason `INVALID_TRANSFER_INDEX`).
    #[error("{field} must be 1 to 5")]
    TransferIndex {
        /// The field.
        field: String,
    },
    /// A flow line's outcome is not 0, 3, 4, 8 or 9 (reason `INVALID_OUTCOME`).
    #[error("{field} must be an outcome code: 0, 3, 4, 8 or 9")]
    Outcome {
        /// The field.
        field: String,
    },
    /// A flow's declared totals are not those of its lines (reason `FLOW_TOTALS_MISMATCH`).
    #[error("{field} declares {declared} but the lines give {actual}")]
    FlowTotals {
        /// The total at fault (`flow.totals.count` or `flow.totals.amount_cents`).
        field: String,
        /// What the flow declares.
        declared: i64,
        /// What its lines give.
        actual: i64,
    },
    /// A basis of a cost apportionment that cannot be used: negative, too large, or zero for
    /// every member (reason `INVALID_BASIS`).
    #[error("{field}: {why}")]
    Basis {
        /// The field.
        field: String,
        /// Which rule.
        why: &'static str,
    },
    /// The percentages of an apportionment's mix are out of 0..100 or do not sum to 100
    /// (reason `INVALID_MIX`).
    #[error("{field}: {why}")]
    Mix {
        /// The field.
        field: String,
        /// Which rule.
        why: &'static str,
    },
    /// A member listed twice in an apportionment (reason `DUPLICATE_MEMBER`).
    #[error("{field} lists a member already listed")]
    DuplicateMember {
        /// The field.
        field: String,
    },
    /// An ISTAT code that is not 6 digits (reason `INVALID_ISTAT`).
    #[error("{field} must be a 6-digit ISTAT code")]
    Istat {
        /// The field.
        field: String,
    },
    /// More members than an apportionment takes (reason `TOO_MANY_MEMBERS`).
    #[error("{field} has {count} members; at most 1000")]
    TooManyMembers {
        /// The field.
        field: String,
        /// How many were given.
        count: usize,
    },
}

impl DomainError {
    /// The stable reason of the `ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Required { .. } => "FIELD_REQUIRED",
            Self::FiscalCode { .. } => "INVALID_FISCAL_CODE",
            Self::Iban { .. } => "INVALID_IBAN",
            Self::TooLong { .. } => "FIELD_TOO_LONG",
            Self::Amount { .. } => "INVALID_AMOUNT",
            Self::DueDate { .. } => "INVALID_DUE_DATE",
            Self::PaymentPlan { .. } => "INVALID_PAYMENT_PLAN",
            Self::TooManyTransfers { .. } => "TOO_MANY_TRANSFERS",
            Self::AmountMismatch { .. } => "AMOUNT_MISMATCH",
            Self::Date { .. } => "INVALID_DATE",
            Self::Id { .. } => "INVALID_ID",
            Self::CreditorMismatch { .. } => "CREDITOR_MISMATCH",
            Self::TransferIndex { .. } => "INVALID_TRANSFER_INDEX",
            Self::Outcome { .. } => "INVALID_OUTCOME",
            Self::FlowTotals { .. } => "FLOW_TOTALS_MISMATCH",
            Self::Basis { .. } => "INVALID_BASIS",
            Self::Mix { .. } => "INVALID_MIX",
            Self::DuplicateMember { .. } => "DUPLICATE_MEMBER",
            Self::Istat { .. } => "INVALID_ISTAT",
            Self::TooManyMembers { .. } => "TOO_MANY_MEMBERS",
        }
    }

    /// The path of the request field at fault.
    pub fn field(&self) -> &str {
        match self {
            Self::Required { field }
            | Self::FiscalCode { field, .. }
            | Self::Iban { field, .. }
            | Self::TooLong { field, .. }
            | Self::Amount { field, .. }
            | Self::DueDate { field }
            | Self::PaymentPlan { field, .. }
            | Self::TooManyTransfers { field, .. }
            | Self::AmountMismatch { field, .. }
            | Self::Date { field }
            | Self::Id { field }
            | Self::CreditorMismatch { field }
            | Self::TransferIndex { field }
            | Self::Outcome { field }
            | Self::FlowTotals { field, .. }
            | Self::Basis { field, .. }
            | Self::Mix { field, .. }
            | Self::DuplicateMember { field }
            | Self::Istat { field }
            | Self::TooManyMembers { field, .. } => field,
        }
    }
}
