//! Debt positions (DOMAIN.md "Payments", the pagoPA model): what a debtor owes a comune and the
//! ways it can be paid. A [`DebtPositionDraft`] is the input as it arrives; [`NewDebtPosition::
//! validate`] turns it into a [`NewDebtPosition`] that keeps every rule, or names the first
//! field that breaks one.
//!
//! The rules of this foundation:
//! - the debtor's fiscal code is checked: an 11-digit numeric code (Luhn) or a 16-character
//!   codice fiscale (check letter, omocodia);
//! - the description has 1 to [`MAX_TEXT_CHARS`] characters;
//! - at most one option to pay in full (`installment = false`) and either no installments or
//!   2 to [`MAX_INSTALLMENTS`] of them (`installment = true`): pay in full, by installments,
//!   or either way;
//! - an optional validity date, a real date: from then on the notices can be paid;
//! - each option: an amount of at least 1 cent, a real due date, 1 to [`MAX_TRANSFERS`]
//!   transfers, and an amount equal to the sum of its transfers exactly, in cents;
//! - each transfer: an 11-digit creditor fiscal code (Luhn), a valid Italian IBAN, an amount of
//!   at least 1 cent, remittance information of 1 to [`MAX_TEXT_CHARS`] characters.
//!
//! New positions are created [`PositionState::Valid`] (payable), or
//! [`PositionState::Published`] when their validity date is in the future; the states that
//! follow are in [`super::state`].

use chrono::NaiveDate;

use super::error::DomainError;
use super::{fiscal, iban, money};

/// Longest description and remittance information, in characters.
pub const MAX_TEXT_CHARS: usize = 140;
/// Most transfers in one payment option (pagoPA: more beneficiaries need a capofila).
pub const MAX_TRANSFERS: usize = 5;
/// Most installments in one position.
pub const MAX_INSTALLMENTS: usize = 100;

/// The request field that holds a position.
const ROOT: &str = "debt_position";

/// The states of a position (DOMAIN.md "Payments").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PositionState {
    /// Being prepared; no notice can be paid.
    Draft,
    /// Published; payable from its validity date.
    Published,
    /// Payable. Every position created in this foundation starts here.
    Valid,
    /// Some installments paid.
    PartiallyPaid,
    /// Paid in full.
    Paid,
    /// Paid and reconciled against the reconciliation flows.
    Reported,
    /// Past its due date unpaid.
    Expired,
    /// Invalidated by the creditor.
    Invalid,
}

impl PositionState {
    /// Every state.
    pub const ALL: [Self; 8] = [
        Self::Draft,
        Self::Published,
        Self::Valid,
        Self::PartiallyPaid,
        Self::Paid,
        Self::Reported,
        Self::Expired,
        Self::Invalid,
    ];

    /// The state of a position just created.
    pub const INITIAL: Self = Self::Valid;

    /// The stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Published => "PUBLISHED",
            Self::Valid => "VALID",
            Self::PartiallyPaid => "PARTIALLY_PAID",
            Self::Paid => "PAID",
            Self::Reported => "REPORTED",
            Self::Expired => "EXPIRED",
            Self::Invalid => "INVALID",
        }
    }

    /// The state of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// A civil date as it arrives (`google.type.Date`), not yet checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateParts {
    /// Year.
    pub year: i32,
    /// Month, 1-12.
    pub month: i32,
    /// Day, 1-31.
    pub day: i32,
}

/// A new position as it arrives, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DebtPositionDraft {
    /// The debtor's codice fiscale or 11-digit fiscal code.
    pub debtor_fiscal_code: String,
    /// What the debt is for.
    pub description: String,
    /// The options, in order.
    pub payment_options: Vec<PaymentOptionDraft>,
    /// From when the notices can be paid, if given.
    pub validity_date: Option<DateParts>,
}

/// A payment option as it arrives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaymentOptionDraft {
    /// The amount in cents.
    pub amount_cents: i64,
    /// The due date, if given.
    pub due_date: Option<DateParts>,
    /// True for an installment.
    pub installment: bool,
    /// The transfers, in order.
    pub transfers: Vec<TransferDraft>,
}

/// A transfer as it arrives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferDraft {
    /// The creditor body's 11-digit fiscal code.
    pub creditor_fiscal_code: String,
    /// The IBAN credited.
    pub iban: String,
    /// The amount in cents.
    pub amount_cents: i64,
    /// The remittance information (causale).
    pub remittance_information: String,
}

/// A new position that keeps every rule; built only by [`NewDebtPosition::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDebtPosition {
    debtor_fiscal_code: String,
    description: String,
    payment_options: Vec<NewPaymentOption>,
    validity_date: Option<NaiveDate>,
}

/// A checked payment option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPaymentOption {
    amount_cents: i64,
    due_date: NaiveDate,
    installment: bool,
    transfers: Vec<NewTransfer>,
}

/// A checked transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    index: i32,
    creditor_fiscal_code: String,
    iban: String,
    amount_cents: i64,
    remittance_information: String,
}

impl NewDebtPosition {
    /// Checks a draft against the rules of this module, reporting the first broken rule with
    /// the path of its field.
    pub fn validate(draft: DebtPositionDraft) -> Result<Self, DomainError> {
        let debtor_field = format!("{ROOT}.debtor_fiscal_code");
        if draft.debtor_fiscal_code.is_empty() {
            return Err(DomainError::Required {
                field: debtor_field,
            });
        }
        fiscal::check_any(&draft.debtor_fiscal_code).map_err(|cause| DomainError::FiscalCode {
            field: debtor_field,
            cause,
        })?;
        check_text(&draft.description, &format!("{ROOT}.description"))?;
        check_plan(&draft.payment_options)?;
        let validity_date = match draft.validity_date {
            None => None,
            Some(parts) => Some(civil_date(parts).ok_or(DomainError::DueDate {
                field: format!("{ROOT}.validity_date"),
            })?),
        };
        let payment_options = draft
            .payment_options
            .into_iter()
            .enumerate()
            .map(|(i, option)| {
                NewPaymentOption::validate(option, &format!("{ROOT}.payment_options[{i}]"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            debtor_fiscal_code: draft.debtor_fiscal_code,
            description: draft.description,
            payment_options,
            validity_date,
        })
    }

    /// The debtor's fiscal code (personal data: never log it).
    pub fn debtor_fiscal_code(&self) -> &str {
        &self.debtor_fiscal_code
    }

    /// What the debt is for.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The options, in order: one in full, or the installments.
    pub fn payment_options(&self) -> &[NewPaymentOption] {
        &self.payment_options
    }

    /// From when the notices can be paid, if given.
    pub fn validity_date(&self) -> Option<NaiveDate> {
        self.validity_date
    }

    /// The state a position created on `today` (the Italian civil date) starts in:
    /// [`PositionState::Published`] until a future validity date, else
    /// [`PositionState::INITIAL`] (VALID).
    pub fn initial_state(&self, today: NaiveDate) -> PositionState {
        match self.validity_date {
            Some(validity) if validity > today => PositionState::Published,
            _ => PositionState::INITIAL,
        }
    }
}

impl NewPaymentOption {
    fn validate(draft: PaymentOptionDraft, path: &str) -> Result<Self, DomainError> {
        let amount_field = format!("{path}.amount_cents");
        let amount_cents =
            money::check_cents(draft.amount_cents).map_err(|cause| DomainError::Amount {
                field: amount_field.clone(),
                cause,
            })?;
        let due_field = format!("{path}.due_date");
        let parts = draft.due_date.ok_or_else(|| DomainError::Required {
            field: due_field.clone(),
        })?;
        let due_date = civil_date(parts).ok_or(DomainError::DueDate { field: due_field })?;
        let transfers_field = format!("{path}.transfers");
        match draft.transfers.len() {
            0 => {
                return Err(DomainError::Required {
                    field: transfers_field,
                });
            }
            n if n > MAX_TRANSFERS => {
                return Err(DomainError::TooManyTransfers {
                    field: transfers_field,
                    count: n,
                });
            }
            _ => {}
        }
        let transfers: Vec<NewTransfer> = draft
            .transfers
            .into_iter()
            .enumerate()
            .map(|(i, t)| NewTransfer::validate(t, i, &format!("{transfers_field}[{i}]")))
            .collect::<Result<_, _>>()?;
        // Each transfer is at most MAX_CENTS and there are at most 5: the sum cannot overflow,
        // but it is checked all the same.
        let sum = money::checked_sum(transfers.iter().map(|t| t.amount_cents)).unwrap_or(i64::MAX);
        if sum != amount_cents {
            return Err(DomainError::AmountMismatch {
                field: amount_field,
                amount: amount_cents,
                sum,
            });
        }
        Ok(Self {
            amount_cents,
            due_date,
            installment: draft.installment,
            transfers,
        })
    }

    /// The amount in cents, equal to the sum of the transfers.
    pub fn amount_cents(&self) -> i64 {
        self.amount_cents
    }

    /// The due date.
    pub fn due_date(&self) -> NaiveDate {
        self.due_date
    }

    /// True for an installment, false for payment in full.
    pub fn installment(&self) -> bool {
        self.installment
    }

    /// The transfers, 1 to 5, in order.
    pub fn transfers(&self) -> &[NewTransfer] {
        &self.transfers
    }
}

impl NewTransfer {
    fn validate(draft: TransferDraft, position: usize, path: &str) -> Result<Self, DomainError> {
        let creditor_field = format!("{path}.creditor_fiscal_code");
        if draft.creditor_fiscal_code.is_empty() {
            return Err(DomainError::Required {
                field: creditor_field,
            });
        }
        fiscal::check_numeric(&draft.creditor_fiscal_code).map_err(|cause| {
            DomainError::FiscalCode {
                field: creditor_field,
                cause,
            }
        })?;
        let iban_field = format!("{path}.iban");
        if draft.iban.is_empty() {
            return Err(DomainError::Required { field: iban_field });
        }
        iban::check(&draft.iban).map_err(|cause| DomainError::Iban {
            field: iban_field,
            cause,
        })?;
        let amount_cents =
            money::check_cents(draft.amount_cents).map_err(|cause| DomainError::Amount {
                field: format!("{path}.amount_cents"),
                cause,
            })?;
        check_text(
            &draft.remittance_information,
            &format!("{path}.remittance_information"),
        )?;
        Ok(Self {
            index: i32::try_from(position + 1).expect("at most MAX_TRANSFERS transfers"),
            creditor_fiscal_code: draft.creditor_fiscal_code,
            iban: draft.iban,
            amount_cents,
            remittance_information: draft.remittance_information,
        })
    }

    /// 1 to 5, in order.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// The creditor body's 11-digit fiscal code.
    pub fn creditor_fiscal_code(&self) -> &str {
        &self.creditor_fiscal_code
    }

    /// The IBAN credited.
    pub fn iban(&self) -> &str {
        &self.iban
    }

    /// The amount in cents.
    pub fn amount_cents(&self) -> i64 {
        self.amount_cents
    }

    /// The remittance information (causale).
    pub fn remittance_information(&self) -> &str {
        &self.remittance_information
    }
}

/// At most one option in full, and no installments or 2..=MAX_INSTALLMENTS of them.
fn check_plan(options: &[PaymentOptionDraft]) -> Result<(), DomainError> {
    let field = format!("{ROOT}.payment_options");
    if options.is_empty() {
        return Err(DomainError::Required { field });
    }
    if let Some(i) = options
        .iter()
        .enumerate()
        .filter(|(_, o)| !o.installment)
        .nth(1)
        .map(|(i, _)| i)
    {
        return Err(DomainError::PaymentPlan {
            field: format!("{field}[{i}].installment"),
            why: "a position has at most one option to pay in full",
        });
    }
    let installments: Vec<usize> = (0..options.len())
        .filter(|&i| options[i].installment)
        .collect();
    match installments.as_slice() {
        [single] => Err(DomainError::PaymentPlan {
            field: format!("{field}[{single}].installment"),
            why: "installments come two or more; a single option is payment in full",
        }),
        many if many.len() > MAX_INSTALLMENTS => Err(DomainError::PaymentPlan {
            field,
            why: "a position has at most 100 installments",
        }),
        _ => Ok(()),
    }
}

/// A required text of 1 to MAX_TEXT_CHARS characters, not blank.
fn check_text(text: &str, field: &str) -> Result<(), DomainError> {
    if text.trim().is_empty() {
        return Err(DomainError::Required {
            field: field.to_owned(),
        });
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(DomainError::TooLong {
            field: field.to_owned(),
            max: MAX_TEXT_CHARS,
        });
    }
    Ok(())
}

/// A real calendar date with a 4-digit year (stored as `YYYY-MM-DD`).
pub(super) fn civil_date(parts: DateParts) -> Option<NaiveDate> {
    if !(1000..=9999).contains(&parts.year) {
        return None;
    }
    let month = u32::try_from(parts.month).ok()?;
    let day = u32::try_from(parts.day).ok()?;
    NaiveDate::from_ymd_opt(parts.year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMUNE_CF: &str = "00743110157";
    const IBAN: &str = "IT60X0542811101000000123456";

    fn transfer(cents: i64) -> TransferDraft {
        TransferDraft {
            creditor_fiscal_code: COMUNE_CF.into(),
            iban: IBAN.into(),
            amount_cents: cents,
            remittance_information: "TARI 2026".into(),
        }
    }

    fn option(cents: i64, transfers: Vec<TransferDraft>, installment: bool) -> PaymentOptionDraft {
        PaymentOptionDraft {
            amount_cents: cents,
            due_date: Some(DateParts {
                year: 2026,
                month: 6,
                day: 30,
            }),
            installment,
            transfers,
        }
    }

    fn draft(options: Vec<PaymentOptionDraft>) -> DebtPositionDraft {
        DebtPositionDraft {
            debtor_fiscal_code: "RCCMNL83S18D969H".into(),
            description: "TARI 2026 - rata unica".into(),
            payment_options: options,
            validity_date: None,
        }
    }

    fn refused(d: DebtPositionDraft) -> (&'static str, String) {
        let err = NewDebtPosition::validate(d).expect_err("refused");
        (err.reason(), err.field().to_owned())
    }

    /// DOMAIN.md "Payments": the option amount equals the sum of its transfers, exactly, in
    /// cents; transfers are numbered 1 to 5 in order.
    #[test]
    fn amount_equals_the_sum_of_transfers() {
        let ok = NewDebtPosition::validate(draft(vec![option(
            15_000,
            vec![transfer(10_000), transfer(4_999), transfer(1)],
            false,
        )]))
        .expect("valid");
        let o = &ok.payment_options()[0];
        assert_eq!(o.amount_cents(), 15_000);
        assert_eq!(
            o.transfers()
                .iter()
                .map(NewTransfer::index)
                .collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(
            ok.initial_state(NaiveDate::from_ymd_opt(2026, 1, 1).expect("a real date")),
            PositionState::Valid
        );

        // One cent off either way is refused, on the option's amount.
        for amount in [14_999, 15_001] {
            assert_eq!(
                refused(draft(vec![option(
                    amount,
                    vec![transfer(10_000), transfer(4_999), transfer(1)],
                    false
                )])),
                (
                    "AMOUNT_MISMATCH",
                    "debt_position.payment_options[0].amount_cents".into()
                )
            );
        }
    }

    /// DOMAIN.md "Payments": 1 to 5 transfers per option.
    #[test]
    fn one_to_five_transfers() {
        let five = (0..5).map(|_| transfer(100)).collect();
        assert!(NewDebtPosition::validate(draft(vec![option(500, five, false)])).is_ok());
        let six = (0..6).map(|_| transfer(100)).collect();
        assert_eq!(
            refused(draft(vec![option(600, six, false)])),
            (
                "TOO_MANY_TRANSFERS",
                "debt_position.payment_options[0].transfers".into()
            )
        );
        assert_eq!(
            refused(draft(vec![option(600, vec![], false)])),
            (
                "FIELD_REQUIRED",
                "debt_position.payment_options[0].transfers".into()
            )
        );
    }

    /// DOMAIN.md "Check digits" applied to a position: debtor (either kind) and creditor
    /// (11 digits only), IBAN check digits; each error names its exact field.
    #[test]
    fn codes_are_checked_with_exact_fields() {
        let mut d = draft(vec![option(200, vec![transfer(100), transfer(100)], false)]);
        d.debtor_fiscal_code = "00743110157".into();
        assert!(
            NewDebtPosition::validate(d.clone()).is_ok(),
            "a firm as debtor"
        );
        d.debtor_fiscal_code = "00743110158".into();
        assert_eq!(
            refused(d.clone()),
            (
                "INVALID_FISCAL_CODE",
                "debt_position.debtor_fiscal_code".into()
            )
        );

        let mut d = draft(vec![option(200, vec![transfer(100), transfer(100)], false)]);
        d.payment_options[0].transfers[1].iban = "IT61X0542811101000000123456".into();
        assert_eq!(
            refused(d),
            (
                "INVALID_IBAN",
                "debt_position.payment_options[0].transfers[1].iban".into()
            )
        );

        let mut d = draft(vec![option(200, vec![transfer(100), transfer(100)], false)]);
        d.payment_options[0].transfers[0].creditor_fiscal_code = "RCCMNL83S18D969H".into();
        assert_eq!(
            refused(d),
            (
                "INVALID_FISCAL_CODE",
                "debt_position.payment_options[0].transfers[0].creditor_fiscal_code".into()
            )
        );
    }

    /// DOMAIN.md "Payments": pay in full (one option) or installments, each with its own amount
    /// and due date; this foundation does not mix the two.
    #[test]
    fn payment_plans() {
        let installments = draft(vec![
            option(100, vec![transfer(100)], true),
            option(100, vec![transfer(100)], true),
        ]);
        assert!(NewDebtPosition::validate(installments).is_ok());
        assert_eq!(
            refused(draft(vec![option(100, vec![transfer(100)], true)])),
            (
                "INVALID_PAYMENT_PLAN",
                "debt_position.payment_options[0].installment".into()
            )
        );
        // One installment beside the option in full is not an installment plan.
        assert_eq!(
            refused(draft(vec![
                option(100, vec![transfer(100)], true),
                option(200, vec![transfer(200)], false),
            ])),
            (
                "INVALID_PAYMENT_PLAN",
                "debt_position.payment_options[0].installment".into()
            )
        );
        // Pay in full or by installments (DOMAIN.md "Payments": a full-payment option beside
        // installments), but never two options in full.
        assert!(
            NewDebtPosition::validate(draft(vec![
                option(200, vec![transfer(200)], false),
                option(100, vec![transfer(100)], true),
                option(100, vec![transfer(100)], true),
            ]))
            .is_ok()
        );
        assert_eq!(
            refused(draft(vec![
                option(200, vec![transfer(200)], false),
                option(200, vec![transfer(200)], false),
            ])),
            (
                "INVALID_PAYMENT_PLAN",
                "debt_position.payment_options[1].installment".into()
            )
        );
        assert_eq!(
            refused(draft(vec![])),
            ("FIELD_REQUIRED", "debt_position.payment_options".into())
        );
        let many = |n: usize| {
            draft(
                (0..n)
                    .map(|_| option(100, vec![transfer(100)], true))
                    .collect(),
            )
        };
        assert!(NewDebtPosition::validate(many(MAX_INSTALLMENTS)).is_ok());
        assert_eq!(
            refused(many(MAX_INSTALLMENTS + 1)),
            (
                "INVALID_PAYMENT_PLAN",
                "debt_position.payment_options".into()
            )
        );
    }

    #[test]
    fn amounts_dates_and_texts() {
        assert_eq!(
            refused(draft(vec![option(0, vec![transfer(0)], false)])),
            (
                "INVALID_AMOUNT",
                "debt_position.payment_options[0].amount_cents".into()
            )
        );
        assert_eq!(
            refused(draft(vec![option(
                100,
                vec![transfer(101), transfer(-1)],
                false
            )])),
            (
                "INVALID_AMOUNT",
                "debt_position.payment_options[0].transfers[1].amount_cents".into()
            )
        );
        let mut d = draft(vec![option(100, vec![transfer(100)], false)]);
        d.payment_options[0].due_date = Some(DateParts {
            year: 2026,
            month: 2,
            day: 29,
        });
        assert_eq!(
            refused(d.clone()),
            (
                "INVALID_DUE_DATE",
                "debt_position.payment_options[0].due_date".into()
            )
        );
        d.payment_options[0].due_date = None;
        assert_eq!(
            refused(d),
            (
                "FIELD_REQUIRED",
                "debt_position.payment_options[0].due_date".into()
            )
        );

        let mut d = draft(vec![option(100, vec![transfer(100)], false)]);
        d.description = "è".repeat(140);
        assert!(
            NewDebtPosition::validate(d.clone()).is_ok(),
            "140 characters"
        );
        d.description.push('x');
        assert_eq!(
            refused(d.clone()),
            ("FIELD_TOO_LONG", "debt_position.description".into())
        );
        d.description = "   ".into();
        assert_eq!(
            refused(d),
            ("FIELD_REQUIRED", "debt_position.description".into())
        );
        let mut d = draft(vec![option(100, vec![transfer(100)], false)]);
        d.payment_options[0].transfers[0].remittance_information = String::new();
        assert_eq!(
            refused(d),
            (
                "FIELD_REQUIRED",
                "debt_position.payment_options[0].transfers[0].remittance_information".into()
            )
        );
    }

    #[test]
    fn state_codes_round_trip() {
        for s in PositionState::ALL {
            assert_eq!(PositionState::from_code(s.code()), Some(s));
        }
        assert_eq!(PositionState::from_code("valid"), None);
    }
}
