//! Civil time in Italy, the one rule every service counts days by: deadlines, due dates,
//! daily registers and periods are dates as a citizen in Italy reads them, on Europe/Rome time,
//! which is UTC+1 (CET) and UTC+2 (CEST) from 01:00 UTC on the last Sunday of March to 01:00
//! UTC on the last Sunday of October (Directive 2000/84/EC, the same instant across the
//! Union).

use chrono::{DateTime, Datelike, Days, NaiveDate, Weekday};

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// The last Sunday of `month` (March or October) of `year`.
fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let last = NaiveDate::from_ymd_opt(year, month + 1, 1)
        .and_then(|d| d.pred_opt())
        .expect("March and October have a last day");
    let back = last.weekday().num_days_from_sunday();
    last - Days::new(u64::from(back))
}

/// The UTC instant, in microseconds, at which summer time starts (`month` 3) or ends (10).
fn switch_micros(year: i32, month: u32) -> i64 {
    let day = last_sunday(year, month);
    debug_assert_eq!(day.weekday(), Weekday::Sun);
    day.and_hms_opt(1, 0, 0)
        .expect("01:00 exists")
        .and_utc()
        .timestamp_micros()
}

/// The offset from UTC, in hours, of Italian time at the UTC instant `micros`.
fn offset_hours_at(micros: i64) -> i64 {
    let year = DateTime::from_timestamp_micros(micros)
        .map(|t| t.year())
        .unwrap_or(1970);
    if (switch_micros(year, 3)..switch_micros(year, 10)).contains(&micros) {
        2
    } else {
        1
    }
}

/// The date in Italy at the instant `micros` (microseconds since the epoch).
pub fn date_at(micros: i64) -> NaiveDate {
    let local = micros.saturating_add(offset_hours_at(micros) * MICROS_PER_HOUR);
    DateTime::from_timestamp_micros(local)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// The instant, in microseconds since the epoch, at which `date` begins in Italy. Midnight is
/// never inside a switch (they happen at 02:00 and 03:00 local time), so the offset is that of
/// the day before the switch on a switching Sunday.
pub fn start_of_day(date: NaiveDate) -> i64 {
    let summer = last_sunday(date.year(), 3) < date && date <= last_sunday(date.year(), 10);
    let offset = if summer { 2 } else { 1 };
    date.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_micros()
        - offset * MICROS_PER_HOUR
}

/// The first instant, in microseconds since the epoch, after the day `date` in Italy.
pub fn end_of_day(date: NaiveDate) -> i64 {
    start_of_day(date.succ_opt().unwrap_or(date))
}

/// The instants of the dates `start..=end` in Italy, as a half-open range of microseconds.
pub fn range_micros(start: NaiveDate, end: NaiveDate) -> (i64, i64) {
    (start_of_day(start), end_of_day(end))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDateTime;

    use super::*;

    fn utc(text: &str) -> i64 {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
            .expect("a test instant")
            .and_utc()
            .timestamp_micros()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    /// Directive 2000/84/EC: summer time from 01:00 UTC on the last Sunday of March to 01:00
    /// UTC on the last Sunday of October (in 2026: 29 March and 25 October).
    #[test]
    fn italian_dates_follow_cet_and_cest() {
        assert_eq!(last_sunday(2026, 3), day(2026, 3, 29));
        assert_eq!(last_sunday(2026, 10), day(2026, 10, 25));
        // Winter: 23:30 UTC is 00:30 the next day in Rome.
        assert_eq!(date_at(utc("2026-01-31 23:30")), day(2026, 2, 1));
        assert_eq!(date_at(utc("2026-01-31 22:59")), day(2026, 1, 31));
        // Summer: 22:30 UTC is 00:30 the next day.
        assert_eq!(date_at(utc("2026-07-14 22:30")), day(2026, 7, 15));
        assert_eq!(date_at(utc("2026-07-14 21:59")), day(2026, 7, 14));
        // New Year's Eve, 23:30 UTC, is already next year in Rome.
        assert_eq!(date_at(utc("2025-12-31 23:30")), day(2026, 1, 1));

        assert_eq!(start_of_day(day(2026, 2, 1)), utc("2026-01-31 23:00"));
        assert_eq!(start_of_day(day(2026, 7, 15)), utc("2026-07-14 22:00"));
        // Switching Sundays begin on the old offset; the next day on the new one.
        assert_eq!(start_of_day(day(2026, 3, 29)), utc("2026-03-28 23:00"));
        assert_eq!(start_of_day(day(2026, 3, 30)), utc("2026-03-29 22:00"));
        assert_eq!(start_of_day(day(2026, 10, 25)), utc("2026-10-24 22:00"));
        assert_eq!(start_of_day(day(2026, 10, 26)), utc("2026-10-25 23:00"));
        for d in [
            day(2026, 3, 29),
            day(2026, 3, 30),
            day(2026, 10, 25),
            day(2026, 10, 26),
        ] {
            assert_eq!(date_at(start_of_day(d)), d, "{d}");
            assert_eq!(date_at(start_of_day(d) - 1), d.pred_opt().expect("d"));
        }
    }
}
