//! The state machine of a debt position (DOMAIN.md "Payments": DRAFT, PUBLISHED, VALID,
//! PARTIALLY_PAID, PAID, REPORTED, EXPIRED, INVALID), as a pure function of the stored facts
//! and the current civil date in Italy.
//!
//! What is written (see [`PositionFacts::written`]) is only what an act decided: the state at
//! creation (VALID, or PUBLISHED with a future validity date), INVALID, or the state a receipt
//! left. What follows from the clock alone is derived at every read by [`effective_state`]:
//! - a PUBLISHED position is VALID from its validity date;
//! - an unpaid option past its due date can no longer be paid ([`NoticeStatus::Expired`]);
//! - a position whose options are all past due and unpaid is EXPIRED;
//! - an installment paid makes the position PARTIALLY_PAID; all installments, or the option
//!   in full, PAID.
//!
//! And the rules of change: invalidation only from PUBLISHED or VALID ([`check_invalidate`]);
//! paid positions cannot be changed; a full-payment option cannot be paid once an installment
//! is paid ([`check_payable`]); a PAID position becomes REPORTED once reconciliation flows
//! reported every transfer of its paid options ([`state_after_reporting`]).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use super::PositionState;

/// How long an activation reserves a notice for the PSP that made it.
pub const ACTIVATION_TTL: Duration = Duration::from_secs(15 * 60);

/// What is stored about a position, as far as its state depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionFacts {
    /// The state last written by an act (creation, invalidation, a receipt).
    pub written: PositionState,
    /// From when the notices can be paid, if set.
    pub validity_date: Option<NaiveDate>,
    /// The options, in order.
    pub options: Vec<OptionFacts>,
}

/// What is stored about one payment option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionFacts {
    /// True for an installment, false for payment in full.
    pub installment: bool,
    /// The last day it can be paid.
    pub due_date: NaiveDate,
    /// True once a receipt for it was recorded.
    pub paid: bool,
}

/// Whether one notice can be paid now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeStatus {
    /// Can be paid.
    Payable,
    /// Already paid (the option, or the position by another option).
    Paid,
    /// Past its due date unpaid.
    Expired,
    /// The position was invalidated.
    Invalid,
    /// Not valid yet (a draft, or published before its validity date).
    NotYetValid,
    /// A payment in full, and an installment is already paid.
    InstallmentPaid,
}

impl NoticeStatus {
    /// The stable code put in an error's metadata (`why`).
    pub fn code(self) -> &'static str {
        match self {
            Self::Payable => "PAYABLE",
            Self::Paid => "ALREADY_PAID",
            Self::Expired => "EXPIRED",
            Self::Invalid => "INVALIDATED",
            Self::NotYetValid => "NOT_YET_VALID",
            Self::InstallmentPaid => "INSTALLMENT_PAID",
        }
    }
}

/// Why paying or changing a position was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The notice cannot be paid (reason `NOTICE_NOT_PAYABLE`, with the status as `why`).
    #[error("the notice cannot be paid: {}", .0.code())]
    NotPayable(NoticeStatus),
    /// An option in full after an installment was paid (reason
    /// `FULL_PAYMENT_AFTER_INSTALLMENT`).
    #[error("an installment of this position is paid: the option in full can no longer be paid")]
    FullPaymentAfterInstallment,
    /// A change the state machine does not allow (reason `INVALID_STATE_TRANSITION`).
    #[error("a position in state {} cannot become {}", .from.code(), .to.code())]
    InvalidStateTransition {
        /// The current state.
        from: PositionState,
        /// The state asked for.
        to: PositionState,
    },
}

impl PaymentError {
    /// The stable reason of the `ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotPayable(_) => "NOTICE_NOT_PAYABLE",
            Self::FullPaymentAfterInstallment => "FULL_PAYMENT_AFTER_INSTALLMENT",
            Self::InvalidStateTransition { .. } => "INVALID_STATE_TRANSITION",
        }
    }
}

/// The civil date in Italy at `instant` (Europe/Rome: CET, or CEST in EU summer time).
pub fn italian_date(instant: DateTime<Utc>) -> NaiveDate {
    unione_kit::italy::date_at(instant.timestamp_micros())
}

/// The state of a position on `today` (the Italian civil date).
pub fn effective_state(facts: &PositionFacts, today: NaiveDate) -> PositionState {
    match facts.written {
        // Acts that the clock does not undo.
        PositionState::Invalid | PositionState::Reported | PositionState::Draft => {
            return facts.written;
        }
        _ => {}
    }
    let full_paid = facts.options.iter().any(|o| !o.installment && o.paid);
    let installments = facts.options.iter().filter(|o| o.installment).count();
    let installments_paid = facts
        .options
        .iter()
        .filter(|o| o.installment && o.paid)
        .count();
    if full_paid || (installments > 0 && installments_paid == installments) {
        return PositionState::Paid;
    }
    if installments_paid > 0 {
        return PositionState::PartiallyPaid;
    }
    if facts.validity_date.is_some_and(|v| v > today) {
        return PositionState::Published;
    }
    if facts.options.iter().all(|o| o.due_date < today) {
        return PositionState::Expired;
    }
    PositionState::Valid
}

/// Whether option `index` of the position can be paid on `today`.
///
/// # Panics
/// If `index` is not an option of the position (callers look the option up first).
pub fn notice_status(facts: &PositionFacts, index: usize, today: NaiveDate) -> NoticeStatus {
    let option = facts.options[index];
    if option.paid {
        return NoticeStatus::Paid;
    }
    match effective_state(facts, today) {
        PositionState::Invalid => return NoticeStatus::Invalid,
        PositionState::Draft | PositionState::Published => return NoticeStatus::NotYetValid,
        PositionState::Paid | PositionState::Reported => return NoticeStatus::Paid,
        _ => {}
    }
    if !option.installment && facts.options.iter().any(|o| o.installment && o.paid) {
        return NoticeStatus::InstallmentPaid;
    }
    if option.due_date < today {
        return NoticeStatus::Expired;
    }
    NoticeStatus::Payable
}

/// Checks that option `index` can be paid on `today`.
pub fn check_payable(
    facts: &PositionFacts,
    index: usize,
    today: NaiveDate,
) -> Result<(), PaymentError> {
    match notice_status(facts, index, today) {
        NoticeStatus::Payable => Ok(()),
        NoticeStatus::InstallmentPaid => Err(PaymentError::FullPaymentAfterInstallment),
        other => Err(PaymentError::NotPayable(other)),
    }
}

/// Checks that the position can be invalidated on `today`: only from PUBLISHED or VALID.
pub fn check_invalidate(facts: &PositionFacts, today: NaiveDate) -> Result<(), PaymentError> {
    match effective_state(facts, today) {
        PositionState::Published | PositionState::Valid => Ok(()),
        from => Err(PaymentError::InvalidStateTransition {
            from,
            to: PositionState::Invalid,
        }),
    }
}

/// The state to write once option `index` is paid (checked with [`check_payable`] first).
pub fn state_after_payment(facts: &PositionFacts, index: usize, today: NaiveDate) -> PositionState {
    let mut after = facts.clone();
    after.options[index].paid = true;
    effective_state(&after, today)
}

/// The state to write once a reconciliation flow reported transfers of the position: REPORTED
/// when the position is PAID and every transfer of its paid options is reported (DOMAIN.md
/// "Payments": flow line -> transfer REPORTED, rolling up), else `None` (no change).
pub fn state_after_reporting(
    facts: &PositionFacts,
    today: NaiveDate,
    paid_transfers_all_reported: bool,
) -> Option<PositionState> {
    (effective_state(facts, today) == PositionState::Paid && paid_transfers_all_reported)
        .then_some(PositionState::Reported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a real date")
    }

    fn opt(installment: bool, due: NaiveDate, paid: bool) -> OptionFacts {
        OptionFacts {
            installment,
            due_date: due,
            paid,
        }
    }

    fn facts(written: PositionState, options: Vec<OptionFacts>) -> PositionFacts {
        PositionFacts {
            written,
            validity_date: None,
            options,
        }
    }

    /// DOMAIN.md "Payments": PUBLISHED until the validity date, then VALID; EXPIRED once every
    /// option is past due unpaid; the due date itself is still payable.
    #[test]
    fn time_moves_published_valid_expired() {
        let due = date(2026, 6, 30);
        let mut f = facts(PositionState::Published, vec![opt(false, due, false)]);
        f.validity_date = Some(date(2026, 3, 1));
        assert_eq!(
            effective_state(&f, date(2026, 2, 28)),
            PositionState::Published
        );
        assert_eq!(
            notice_status(&f, 0, date(2026, 2, 28)),
            NoticeStatus::NotYetValid
        );
        assert_eq!(effective_state(&f, date(2026, 3, 1)), PositionState::Valid);
        assert_eq!(notice_status(&f, 0, due), NoticeStatus::Payable);
        assert_eq!(
            effective_state(&f, date(2026, 7, 1)),
            PositionState::Expired
        );
        assert_eq!(
            check_payable(&f, 0, date(2026, 7, 1)),
            Err(PaymentError::NotPayable(NoticeStatus::Expired))
        );
    }

    /// DOMAIN.md "Payments": an installment paid gives PARTIALLY_PAID, all of them PAID; the
    /// option in full cannot be paid once an installment is paid.
    #[test]
    fn installments_and_full_payment() {
        let due = date(2026, 6, 30);
        let today = date(2026, 1, 10);
        let mut f = facts(
            PositionState::Valid,
            vec![
                opt(false, due, false),
                opt(true, date(2026, 3, 31), false),
                opt(true, due, false),
            ],
        );
        assert_eq!(
            state_after_payment(&f, 1, today),
            PositionState::PartiallyPaid
        );
        f.options[1].paid = true;
        assert_eq!(
            check_payable(&f, 0, today),
            Err(PaymentError::FullPaymentAfterInstallment)
        );
        assert_eq!(check_payable(&f, 2, today), Ok(()));
        assert_eq!(state_after_payment(&f, 2, today), PositionState::Paid);
        // Past the first installment's due date, a partly paid position stays partly paid.
        assert_eq!(
            effective_state(&f, date(2026, 12, 1)),
            PositionState::PartiallyPaid
        );

        let full = facts(PositionState::Valid, f.options.clone());
        let mut paid_in_full = full.clone();
        paid_in_full.options = vec![
            opt(false, due, true),
            opt(true, due, false),
            opt(true, due, false),
        ];
        assert_eq!(effective_state(&paid_in_full, today), PositionState::Paid);
        assert_eq!(
            check_payable(&paid_in_full, 1, today),
            Err(PaymentError::NotPayable(NoticeStatus::Paid))
        );
    }

    /// DOMAIN.md "Payments": invalidation only from PUBLISHED or VALID; paid positions cannot
    /// be changed; an invalidated position cannot be paid.
    #[test]
    fn invalidation() {
        let due = date(2026, 6, 30);
        let today = date(2026, 1, 10);
        let valid = facts(PositionState::Valid, vec![opt(false, due, false)]);
        assert_eq!(check_invalidate(&valid, today), Ok(()));
        let mut published = valid.clone();
        published.validity_date = Some(date(2026, 2, 1));
        assert_eq!(check_invalidate(&published, today), Ok(()));
        for (f, from) in [
            (
                facts(PositionState::Paid, vec![opt(false, due, true)]),
                PositionState::Paid,
            ),
            (
                facts(PositionState::Invalid, vec![opt(false, due, false)]),
                PositionState::Invalid,
            ),
            (valid.clone(), PositionState::Expired),
        ] {
            let day = if from == PositionState::Expired {
                date(2026, 7, 1)
            } else {
                today
            };
            assert_eq!(
                check_invalidate(&f, day),
                Err(PaymentError::InvalidStateTransition {
                    from,
                    to: PositionState::Invalid
                })
            );
        }
        let invalid = facts(PositionState::Invalid, vec![opt(false, due, false)]);
        assert_eq!(
            check_payable(&invalid, 0, today),
            Err(PaymentError::NotPayable(NoticeStatus::Invalid))
        );
    }

    /// DOMAIN.md "Payments": REPORTED follows PAID once every paid transfer is reported; a
    /// partly paid position is not REPORTED; REPORTED is an act the clock does not undo.
    #[test]
    fn reporting() {
        let due = date(2026, 6, 30);
        let today = date(2026, 1, 10);
        let paid = facts(PositionState::Paid, vec![opt(false, due, true)]);
        assert_eq!(
            state_after_reporting(&paid, today, true),
            Some(PositionState::Reported)
        );
        assert_eq!(state_after_reporting(&paid, today, false), None);
        let partly = facts(
            PositionState::PartiallyPaid,
            vec![opt(true, due, true), opt(true, due, false)],
        );
        assert_eq!(state_after_reporting(&partly, today, true), None);
        let reported = facts(PositionState::Reported, vec![opt(false, due, true)]);
        assert_eq!(
            effective_state(&reported, date(2027, 1, 1)),
            PositionState::Reported
        );
    }

    /// The civil date is Italy's: 23:30 UTC is already the next day (CET in winter, CEST in
    /// summer), and summer time starts and ends at 01:00 UTC on the last Sundays of March
    /// and October.
    #[test]
    fn the_date_is_italian() {
        let at = |y, mo, d, h, mi| {
            Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
                .single()
                .expect("a real instant")
        };
        assert_eq!(italian_date(at(2026, 1, 31, 22, 59)), date(2026, 1, 31));
        assert_eq!(italian_date(at(2026, 1, 31, 23, 0)), date(2026, 2, 1));
        assert_eq!(italian_date(at(2026, 6, 30, 21, 59)), date(2026, 6, 30));
        assert_eq!(italian_date(at(2026, 6, 30, 22, 0)), date(2026, 7, 1));
        // Summer time from 29 March to 25 October 2026 (the last Sundays, at 01:00 UTC).
        assert_eq!(italian_date(at(2026, 3, 28, 23, 0)), date(2026, 3, 29));
        assert_eq!(italian_date(at(2026, 3, 29, 22, 0)), date(2026, 3, 30));
        assert_eq!(italian_date(at(2026, 10, 24, 22, 0)), date(2026, 10, 25));
        assert_eq!(italian_date(at(2026, 10, 25, 22, 30)), date(2026, 10, 25));
        assert_eq!(italian_date(at(2026, 10, 25, 23, 0)), date(2026, 10, 26));
    }
}
