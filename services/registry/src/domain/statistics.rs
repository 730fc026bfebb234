//! The figures of the registry office for its quality office's indicators
//! (`unione.registry.v1.RegistryStatisticsService`), with no I/O: a range of Italian calendar
//! days, what counts as a case completed within its deadline (L. 241/1990 art. 2, the clock of
//! [`crate::domain::cases::clock`]), the median processing days, and the certificates by
//! channel. Only counts leave: never a case, a name or a codice fiscale.

use chrono::NaiveDate;

use crate::domain::cases::{Action, Transition, clock};
use crate::domain::protocol::end_of_italian_day;

/// The longest range: `end_date` at most this many days after `start_date`.
pub const MAX_RANGE_DAYS: i64 = 366;

/// A range of Italian calendar days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    start: NaiveDate,
    end: NaiveDate,
}

/// Why a range is refused; both name `end_date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The end is before the start (reason `INVALID_DATE_RANGE`).
    #[error("end_date is before start_date")]
    EndBeforeStart,
    /// The end is more than [`MAX_RANGE_DAYS`] after the start (reason `DATE_RANGE_TOO_LONG`).
    #[error("end_date must be at most {MAX_RANGE_DAYS} days after start_date")]
    TooLong,
}

impl RangeError {
    /// The stable reason of the `ErrorInfo`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::EndBeforeStart => "INVALID_DATE_RANGE",
            Self::TooLong => "DATE_RANGE_TOO_LONG",
        }
    }
}

impl DayRange {
    /// `start` to `end` included: `end` on or after `start`, at most [`MAX_RANGE_DAYS`] later.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Self, RangeError> {
        match (end - start).num_days() {
            days if days < 0 => Err(RangeError::EndBeforeStart),
            days if days > MAX_RANGE_DAYS => Err(RangeError::TooLong),
            _ => Ok(Self { start, end }),
        }
    }

    /// The first day.
    pub fn start(self) -> NaiveDate {
        self.start
    }

    /// The last day.
    pub fn end(self) -> NaiveDate {
        self.end
    }

    /// True when `day` is in the range.
    pub fn contains(self, day: NaiveDate) -> bool {
        self.start <= day && day <= self.end
    }

    /// The instants of the range, microseconds since the epoch: from Italian midnight at the
    /// start of the first day (included) to Italian midnight after the last (excluded).
    pub fn instants(self) -> (i64, i64) {
        let before = self.start.pred_opt().unwrap_or(self.start);
        (end_of_italian_day(before), end_of_italian_day(self.end))
    }
}

/// What the figures need of one case: its submission (registration) day, its legal days and
/// its history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    /// The Italian day of the submission, registered in the protocol the same day.
    pub submission_date: NaiveDate,
    /// The legal days when submitted.
    pub legal_days: i64,
    /// Every transition, oldest first.
    pub history: Vec<Transition>,
}

/// The figures of `CaseStatistics`.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseFigures {
    /// Cases whose final decision (accepted or rejected) fell in the range.
    pub completed: i64,
    /// Of those, the ones decided on or before their deadline.
    pub completed_within_deadline: i64,
    /// The median of their processing days (suspensions left out); 0 when none.
    pub median_processing_days: f64,
    /// Cases still open at the end of the range (or on `today`, if earlier) past their deadline.
    pub overdue_open: i64,
    /// Cases withdrawn or cancelled in the range.
    pub withdrawn_or_cancelled: i64,
}

/// The figures of `cases` over `range`, on `today` (DOMAIN.md "Registry", Cases; L. 241/1990
/// art. 2). A case is completed on the Italian day of its acceptance or rejection; it is
/// within its deadline when that day is on or before the deadline of [`clock`] (submission
/// date + legal days + the days suspended for an integration or a refusal notice, each within
/// its cap), and its processing days are the days the clock ran. Withdrawn and cancelled
/// cases are counted apart and in no other figure. A case not closed by the reference day
/// (the range's last day, or `today` when the range is not over) is overdue when that day is
/// after its deadline. What happened after the reference day is left out, so a range's
/// figures do not depend on later events (but for a range not over yet).
pub fn case_figures(cases: &[CaseRecord], range: DayRange, today: NaiveDate) -> CaseFigures {
    let reference = range.end().min(today);
    let mut days = Vec::new();
    let mut figures = CaseFigures {
        completed: 0,
        completed_within_deadline: 0,
        median_processing_days: 0.0,
        overdue_open: 0,
        withdrawn_or_cancelled: 0,
    };
    for case in cases {
        if case.submission_date > reference {
            continue;
        }
        let known: Vec<Transition> = case
            .history
            .iter()
            .take_while(|t| t.day() <= reference)
            .cloned()
            .collect();
        match known.iter().find(|t| t.to.is_final()) {
            Some(closing) if range.contains(closing.day()) => match closing.action {
                Action::Accept | Action::Reject => {
                    let at_close =
                        clock(case.submission_date, case.legal_days, &known, closing.day());
                    figures.completed += 1;
                    figures.completed_within_deadline += i64::from(!at_close.overdue);
                    days.push(at_close.days_elapsed);
                }
                _ => figures.withdrawn_or_cancelled += 1,
            },
            // Closed before the range.
            Some(_) => {}
            None => {
                let now = clock(case.submission_date, case.legal_days, &known, reference);
                figures.overdue_open += i64::from(now.overdue);
            }
        }
    }
    figures.median_processing_days = median(&mut days);
    figures
}

/// The median of `values` (the mean of the two middle ones for an even count); 0 when empty.
pub fn median(values: &mut [i64]) -> f64 {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2] as f64,
        _ => (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0,
    }
}

/// The figures of `CertificateStatistics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CertificateFigures {
    /// Every certificate issued in the range, whatever the channel.
    pub issued: i64,
    /// Requested through the web front office (the online service).
    pub online: i64,
    /// Issued at a 24-hour kiosk.
    pub kiosk: i64,
    /// Issued at the counter.
    pub counter: i64,
}

/// The figures of the certificates issued in a range, from their count per stored channel
/// code (`WEB`, `KIOSK`, `COUNTER`; phone and e-mail requests count in `issued` only).
pub fn certificate_figures<'a>(
    by_channel: impl IntoIterator<Item = (&'a str, i64)>,
) -> CertificateFigures {
    let mut figures = CertificateFigures::default();
    for (channel, count) in by_channel {
        figures.issued += count;
        match channel {
            "WEB" => figures.online += count,
            "KIOSK" => figures.kiosk += count,
            "COUNTER" => figures.counter += count,
            _ => {}
        }
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a real day")
    }

    #[test]
    fn a_range_is_ordered_and_at_most_366_days_long() {
        assert_eq!(
            DayRange::new(day(2026, 3, 2), day(2026, 3, 1)),
            Err(RangeError::EndBeforeStart)
        );
        assert!(DayRange::new(day(2026, 3, 1), day(2026, 3, 1)).is_ok());
        assert!(DayRange::new(day(2024, 1, 1), day(2025, 1, 1)).is_ok());
        assert_eq!(
            DayRange::new(day(2024, 1, 1), day(2025, 1, 2)),
            Err(RangeError::TooLong)
        );
    }

    /// Italian midnight: 23:00 UTC the day before in winter (CET), 22:00 UTC in summer (CEST).
    #[test]
    fn a_range_runs_from_italian_midnight_to_italian_midnight() {
        let utc = |y, m, d, h| {
            day(y, m, d)
                .and_hms_opt(h, 0, 0)
                .expect("an hour")
                .and_utc()
                .timestamp_micros()
        };
        let range = DayRange::new(day(2026, 1, 1), day(2026, 6, 30)).expect("a range");
        assert_eq!(
            range.instants(),
            (utc(2025, 12, 31, 23), utc(2026, 6, 30, 22))
        );
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [9, 1, 5]), 5.0);
        assert_eq!(median(&mut [30, 10, 20, 13]), 16.5);
    }

    #[test]
    fn certificates_count_by_channel_and_all_count_as_issued() {
        let figures = certificate_figures([("WEB", 3), ("KIOSK", 2), ("COUNTER", 4), ("EMAIL", 1)]);
        assert_eq!(
            figures,
            CertificateFigures {
                issued: 10,
                online: 3,
                kiosk: 2,
                counter: 4,
            }
        );
    }
}
