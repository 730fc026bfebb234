//! The figures of the payments desk for its quality office's indicators
//! (`unione.payments.v1.PaymentStatisticsService`), pure: which payment options fall due in a
//! range of Italian calendar days, which count, and which were paid on time. Only counts and
//! sums leave: never a debtor.
//!
//! **Domain decision, one debt counted once:** a position may offer payment in full beside an
//! installment plan (DOMAIN.md "Payments"): two ways to pay the same debt. The plan the debtor
//! took counts: the installments once one of them is paid, else the option in full (paid or
//! not); a position with installments only counts them all.

use chrono::NaiveDate;

use super::position::{DateParts, civil_date};
use super::state::italian_date;
use crate::clock::instant;

/// The longest range: `end_date` at most this many days after `start_date`.
pub const MAX_RANGE_DAYS: i64 = 366;

/// Why a range of days is refused, on the field it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// A date is missing (reason `FIELD_REQUIRED`).
    #[error("{0} is required")]
    Required(&'static str),
    /// A date is not a calendar date with a 4-digit year (reason `INVALID_DATE`).
    #[error("{0} is not a calendar date")]
    InvalidDate(&'static str),
    /// The end is before the start (reason `INVALID_DATE_RANGE`, on `end_date`).
    #[error("end_date is before start_date")]
    EndBeforeStart,
    /// The end is more than [`MAX_RANGE_DAYS`] after the start (reason `DATE_RANGE_TOO_LONG`,
    /// on `end_date`).
    #[error("end_date must be at most {MAX_RANGE_DAYS} days after start_date")]
    TooLong,
}

impl RangeError {
    /// The stable reason of the `ErrorInfo`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required(_) => "FIELD_REQUIRED",
            Self::InvalidDate(_) => "INVALID_DATE",
            Self::EndBeforeStart => "INVALID_DATE_RANGE",
            Self::TooLong => "DATE_RANGE_TOO_LONG",
        }
    }

    /// The request field at fault.
    pub fn field(self) -> &'static str {
        match self {
            Self::Required(field) | Self::InvalidDate(field) => field,
            Self::EndBeforeStart | Self::TooLong => "end_date",
        }
    }
}

/// The range `start_date` to `end_date`, both included: two calendar dates, the end on or
/// after the start and at most [`MAX_RANGE_DAYS`] later.
pub fn day_range(
    start: Option<DateParts>,
    end: Option<DateParts>,
) -> Result<(NaiveDate, NaiveDate), RangeError> {
    let date = |field, parts: Option<DateParts>| {
        let parts = parts.ok_or(RangeError::Required(field))?;
        civil_date(parts).ok_or(RangeError::InvalidDate(field))
    };
    let (start, end) = (date("start_date", start)?, date("end_date", end)?);
    match (end - start).num_days() {
        days if days < 0 => Err(RangeError::EndBeforeStart),
        days if days > MAX_RANGE_DAYS => Err(RangeError::TooLong),
        _ => Ok((start, end)),
    }
}

/// The receipt of a paid option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paid {
    /// The amount collected, in cents.
    pub amount_cents: i64,
    /// When the debtor paid (the receipt's payment time), microseconds since the epoch.
    pub payment_time: i64,
}

/// What the figures need of one payment option falling due in the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionRecord {
    /// An installment (else payment in full).
    pub installment: bool,
    /// Its position offers payment in full.
    pub position_has_full_option: bool,
    /// An installment of its position is paid (whatever its due date).
    pub position_installment_paid: bool,
    /// Its position was invalidated.
    pub invalidated: bool,
    /// The last day it can be paid.
    pub due_date: NaiveDate,
    /// The amount due, in cents.
    pub amount_cents: i64,
    /// Its receipt, if paid.
    pub paid: Option<Paid>,
}

impl OptionRecord {
    /// True when the option is the one its debt is counted by (the module's domain
    /// decision): an installment when its position has no option in full or an installment
    /// was paid; the option in full when no installment was paid.
    pub fn counts(&self) -> bool {
        if self.installment {
            !self.position_has_full_option || self.position_installment_paid
        } else {
            !self.position_installment_paid
        }
    }

    /// True when paid on or before the due date, Italian time: the Italian calendar day of the
    /// payment, not the UTC one (a payment at 00:10 in Rome on the day after is late).
    pub fn paid_on_time(&self) -> bool {
        self.paid
            .is_some_and(|p| italian_date(instant(p.payment_time)) <= self.due_date)
    }
}

/// The figures of `CollectionStatistics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectionFigures {
    /// Options falling due (invalidated positions left out).
    pub due: i64,
    /// Of those, paid on or before their due date.
    pub paid_on_time: i64,
    /// Of those, paid at all.
    pub paid: i64,
    /// The amount falling due, in cents.
    pub due_cents: i64,
    /// The amount collected on them, in cents.
    pub collected_cents: i64,
    /// Options of invalidated positions falling due, counted apart.
    pub invalidated: i64,
}

/// The figures of the options falling due in a range (DOMAIN.md "Payments"): each debt once
/// ([`OptionRecord::counts`]); those of invalidated positions counted apart and in no other
/// figure; paid on time by [`OptionRecord::paid_on_time`]; collected is what the receipts say.
pub fn collection_figures(options: &[OptionRecord]) -> CollectionFigures {
    let mut figures = CollectionFigures::default();
    for option in options.iter().filter(|o| o.counts()) {
        if option.invalidated {
            figures.invalidated += 1;
            continue;
        }
        figures.due += 1;
        figures.due_cents += option.amount_cents;
        if let Some(paid) = option.paid {
            figures.paid += 1;
            figures.collected_cents += paid.amount_cents;
            figures.paid_on_time += i64::from(option.paid_on_time());
        }
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, d).expect("a January day")
    }

    fn option(installment: bool, has_full: bool, installment_paid: bool) -> OptionRecord {
        OptionRecord {
            installment,
            position_has_full_option: has_full,
            position_installment_paid: installment_paid,
            invalidated: false,
            due_date: day(31),
            amount_cents: 100,
            paid: None,
        }
    }

    #[test]
    fn a_range_is_two_dates_ordered_and_at_most_366_days_apart() {
        let parts = |year, month, day| Some(DateParts { year, month, day });
        let range = |start, end| day_range(start, end);
        assert_eq!(
            range(None, parts(2026, 1, 1)),
            Err(RangeError::Required("start_date"))
        );
        assert_eq!(
            range(parts(2026, 1, 1), parts(2026, 2, 30)),
            Err(RangeError::InvalidDate("end_date"))
        );
        assert_eq!(
            range(parts(2026, 1, 2), parts(2026, 1, 1)),
            Err(RangeError::EndBeforeStart)
        );
        assert!(range(parts(2026, 1, 1), parts(2026, 1, 1)).is_ok());
        assert!(range(parts(2026, 1, 1), parts(2027, 1, 2)).is_ok());
        assert_eq!(
            range(parts(2026, 1, 1), parts(2027, 1, 3)),
            Err(RangeError::TooLong)
        );
    }

    /// One debt counted once: the plan taken, else the option in full.
    #[test]
    fn a_debt_offered_in_full_and_by_installments_counts_once() {
        // In full only, installments only: each counts.
        assert!(option(false, true, false).counts());
        assert!(option(true, false, false).counts());
        // Both offered, nothing paid (or paid in full): the option in full counts.
        assert!(option(false, true, false).counts());
        assert!(!option(true, true, false).counts());
        // Both offered, an installment paid: the installments count.
        assert!(!option(false, true, true).counts());
        assert!(option(true, true, true).counts());
    }

    /// The Italian day decides: 23:30 in Rome on the due date is on time, 00:10 the day after
    /// is late although it is still the due date in UTC (23:10 UTC in winter).
    #[test]
    fn on_time_is_the_italian_day_of_the_payment() {
        let utc = |d: u32, h: u32, m: u32| {
            day(d)
                .and_hms_opt(h, m, 0)
                .expect("a time")
                .and_utc()
                .timestamp_micros()
        };
        let paid_at = |payment_time| OptionRecord {
            paid: Some(Paid {
                amount_cents: 100,
                payment_time,
            }),
            ..option(false, false, false)
        };
        assert!(paid_at(utc(31, 22, 30)).paid_on_time());
        assert!(!paid_at(utc(31, 23, 10)).paid_on_time());
    }
}
