//! Civil time in Italy, the one rule every service counts days by: deadlines, due dates,
//! daily registers and periods are dates as a citizen in Italy reads them, on Europe/Rome time,
//! which is UTC+1 (CET) and UTC+2 (CEST) from 01:00 UTC on the last Sunday of March to 01:00
//! UTC on the last Sunday of October (Directive 2000/84/EC, the same instant across the
//! Union).
//!
//! Working days ([`is_working_day`], [`next_working_day`]) are the days a public office is
//! open: not Saturdays, Sundays, nor the national holidays of L. 260/1949 art. 2 as in force
//! (see [`is_national_holiday`]).

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

/// Easter Sunday of `year` in the Gregorian calendar (the anonymous Gregorian algorithm, also
/// known as Meeus/Jones/Butcher).
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
        .expect("Easter falls between 22 March and 25 April")
}

/// Whether `date` is a national holiday in Italy on a weekday or a Sunday alike (L. 27 maggio
/// 1949 n. 260 art. 2 as amended): 1 January, 6 January (Epiphany), Easter Monday, 25 April
/// (Liberation), 1 May (Labour), 2 June (Republic), 15 August (Assumption), 4 October (San
/// Francesco d'Assisi, a national holiday again from 2026 by L. 8 ottobre 2025 n. 151), 1
/// November (All Saints), 8 December (Immaculate Conception), 25 and 26 December. A comune's
/// patron saint's day is local and not counted here.
pub fn is_national_holiday(date: NaiveDate) -> bool {
    let fixed = matches!(
        (date.month(), date.day()),
        (1, 1)
            | (1, 6)
            | (4, 25)
            | (5, 1)
            | (6, 2)
            | (8, 15)
            | (11, 1)
            | (12, 8)
            | (12, 25)
            | (12, 26)
    );
    let san_francesco = date.year() >= 2026 && (date.month(), date.day()) == (10, 4);
    let easter_monday = easter_sunday(date.year()).succ_opt() == Some(date);
    fixed || san_francesco || easter_monday
}

/// Whether `date` is a working day in Italy: neither a Saturday, a Sunday, nor a national
/// holiday ([`is_national_holiday`]).
pub fn is_working_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_national_holiday(date)
}

/// The first working day strictly after `date` ([`is_working_day`]).
pub fn next_working_day(date: NaiveDate) -> NaiveDate {
    let mut day = date;
    loop {
        day = match day.succ_opt() {
            Some(next) => next,
            // The end of chrono's calendar: no later day exists to return.
            None => return day,
        };
        if is_working_day(day) {
            return day;
        }
    }
}

/// `date` itself if it is a working day, else the next working day: how a term whose last day
/// falls on a holiday is extended (art. 2963 c.c., art. 155 c.p.c.).
pub fn working_day_on_or_after(date: NaiveDate) -> NaiveDate {
    if is_working_day(date) {
        date
    } else {
        next_working_day(date)
    }
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

    /// Easter by the anonymous Gregorian algorithm, against known dates.
    #[test]
    fn easter_on_known_dates() {
        assert_eq!(easter_sunday(2024), day(2024, 3, 31));
        assert_eq!(easter_sunday(2025), day(2025, 4, 20));
        assert_eq!(easter_sunday(2026), day(2026, 4, 5));
        assert_eq!(easter_sunday(2019), day(2019, 4, 21));
        assert_eq!(easter_sunday(2038), day(2038, 4, 25));
        assert_eq!(easter_sunday(2285), day(2285, 3, 22));
    }

    /// L. 260/1949 art. 2: weekends and the national holidays are not working days.
    #[test]
    fn working_days_skip_weekends_and_national_holidays() {
        // An ordinary week: Monday 2026-03-02 to Friday are working days, the weekend not.
        for d in 2..=6 {
            assert!(is_working_day(day(2026, 3, d)), "2026-03-0{d}");
        }
        assert!(!is_working_day(day(2026, 3, 7)));
        assert!(!is_working_day(day(2026, 3, 8)));
        // Easter Monday.
        assert!(!is_working_day(day(2024, 4, 1)));
        assert!(!is_working_day(day(2025, 4, 21)));
        assert!(!is_working_day(day(2026, 4, 6)));
        assert!(is_working_day(day(2026, 4, 7)));
        // Fixed holidays on weekdays.
        for (y, m, d) in [
            (2025, 1, 1),
            (2025, 1, 6),
            (2025, 4, 25),
            (2025, 5, 1),
            (2025, 6, 2),
            (2025, 8, 15),
            (2024, 11, 1),
            (2025, 12, 8),
            (2025, 12, 25),
            (2025, 12, 26),
        ] {
            assert!(is_national_holiday(day(y, m, d)), "{y}-{m}-{d}");
            assert!(!is_working_day(day(y, m, d)), "{y}-{m}-{d}");
        }
        // 4 October: a working day in 2024 (a Friday), a holiday from 2026 (L. 151/2025);
        // 2027-10-04 is a Monday.
        assert!(is_working_day(day(2024, 10, 4)));
        assert!(is_national_holiday(day(2026, 10, 4)));
        assert!(!is_working_day(day(2027, 10, 4)));
    }

    /// The next working day skips weekends and holidays, chained.
    #[test]
    fn next_working_day_skips_runs_of_closed_days() {
        // Friday -> Monday.
        assert_eq!(next_working_day(day(2026, 3, 6)), day(2026, 3, 9));
        // Thursday -> Friday.
        assert_eq!(next_working_day(day(2026, 3, 5)), day(2026, 3, 6));
        // Thursday 2026-04-02 -> Friday 3; Friday 3 -> Tuesday 7 (Easter Monday 6).
        assert_eq!(next_working_day(day(2026, 4, 3)), day(2026, 4, 7));
        // Christmas Eve 2025 (Wednesday) -> Monday 29 (25, 26 holidays, then the weekend).
        assert_eq!(next_working_day(day(2025, 12, 24)), day(2025, 12, 29));
        // 31 December 2025 (Wednesday) -> Friday 2 January 2026.
        assert_eq!(next_working_day(day(2025, 12, 31)), day(2026, 1, 2));
        // Friday 2027-10-01 -> Tuesday 5 (San Francesco on Monday 4).
        assert_eq!(next_working_day(day(2027, 10, 1)), day(2027, 10, 5));
        assert_eq!(working_day_on_or_after(day(2026, 3, 9)), day(2026, 3, 9));
        assert_eq!(working_day_on_or_after(day(2026, 3, 7)), day(2026, 3, 9));
    }
}
