//! The management review (ISO 9001:2015 9.3) and the open data export (DOMAIN.md "Quality and
//! benchmarks": open data export, CC BY): how a KPI's value compares with its target, which
//! periods a review or an export covers, and the CSV (RFC 4180) and JSON forms of the export.

use chrono::{Months, NaiveDate};
use serde::Serialize;

use super::{Kpi, Normalisation, Period, PeriodKind, Polarity, Status};

/// The licence of exported measurements.
pub const LICENCE: &str = "CC BY 4.0";

/// How a value compares with its KPI's target, the polarity respected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetStatus {
    /// At the target or better.
    Met,
    /// Worse than the target by no more than the tolerance.
    WithinTolerance,
    /// Worse than the target by more than the tolerance.
    Missed,
}

/// The value compared with the target: as measured, or per 1,000 inhabitants for a normalised
/// KPI (`None` when the population is not known).
pub fn compared_value(kpi: &Kpi, value: f64, population: i64) -> Option<f64> {
    match kpi.normalisation {
        Normalisation::None => Some(value),
        Normalisation::Per1000Inhabitants if population > 0 => {
            Some(value * 1000.0 / population as f64)
        }
        Normalisation::Per1000Inhabitants => None,
    }
}

/// Evaluates `compared` (see [`compared_value`]) against the KPI's target and tolerance: for a
/// higher-is-better KPI, met at or above the target, within tolerance down to target minus
/// tolerance, missed below; mirrored for a lower-is-better one.
pub fn evaluate(kpi: &Kpi, compared: f64) -> TargetStatus {
    // How far the value falls short of the target, in the KPI's bad direction.
    let shortfall = match kpi.polarity {
        Polarity::HigherIsBetter => kpi.target - compared,
        Polarity::LowerIsBetter => compared - kpi.target,
    };
    if shortfall <= 0.0 {
        TargetStatus::Met
    } else if shortfall <= kpi.tolerance {
        TargetStatus::WithinTolerance
    } else {
        TargetStatus::Missed
    }
}

/// Parses a period of any kind: `2026`, `2026-Q1` or `2026-03`.
pub fn parse_any_period(text: &str) -> Option<Period> {
    [PeriodKind::Year, PeriodKind::Quarter, PeriodKind::Month]
        .into_iter()
        .find_map(|kind| Period::parse(kind, text).ok())
}

/// The first and last day of a period.
pub fn period_bounds(period: &Period) -> (NaiveDate, NaiveDate) {
    let start = period.start();
    let months = match period.kind() {
        PeriodKind::Month => 1,
        PeriodKind::Quarter => 3,
        PeriodKind::Year => 12,
    };
    let end = start
        .checked_add_months(Months::new(months))
        .and_then(|d| d.pred_opt())
        .unwrap_or(start);
    (start, end)
}

/// Whether a stored period text lies wholly within `start..=end`; false for a text that is no
/// period.
pub fn period_within(text: &str, start: NaiveDate, end: NaiveDate) -> bool {
    parse_any_period(text).is_some_and(|p| {
        let (s, e) = period_bounds(&p);
        start <= s && e <= end
    })
}

/// One exported measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportRow {
    /// The KPI's id.
    pub kpi_id: String,
    /// Its title.
    pub title: String,
    /// Its unit.
    pub unit: String,
    /// The period.
    pub period: String,
    /// The value, only with status OK.
    pub value: Option<f64>,
    /// The status code (`OK`, `MISSING`, `NOT_APPLICABLE`, `CONFIDENTIAL`).
    pub status: &'static str,
    /// The revision.
    pub revision: i64,
}

/// The header of the CSV export.
pub const CSV_HEADER: [&str; 7] = [
    "kpi_id", "title", "unit", "period", "value", "status", "revision",
];

/// One CSV field (RFC 4180 2.6-2.7): quoted when it holds a comma, a double quote, a CR or a
/// LF, its double quotes doubled.
pub fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// The rows as RFC 4180 CSV: a header line, then one record per row, every line ending CRLF.
pub fn to_csv(rows: &[ExportRow]) -> String {
    let mut out = CSV_HEADER.join(",");
    out.push_str("\r\n");
    for row in rows {
        let fields = [
            csv_field(&row.kpi_id),
            csv_field(&row.title),
            csv_field(&row.unit),
            csv_field(&row.period),
            row.value.map(|v| v.to_string()).unwrap_or_default(),
            row.status.to_owned(),
            row.revision.to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The rows as a JSON array of objects.
pub fn to_json(rows: &[ExportRow]) -> String {
    serde_json::to_string(rows).expect("export rows are plain data")
}

/// The export row of a measurement of `kpi`.
pub fn export_row(
    kpi: &Kpi,
    period: &str,
    status: Status,
    value: Option<f64>,
    revision: i64,
) -> ExportRow {
    ExportRow {
        kpi_id: kpi.id.to_string(),
        title: kpi.title.to_string(),
        unit: kpi.unit.to_string(),
        period: period.to_owned(),
        value,
        status: status.code(),
        revision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::standard_kpi;

    #[test]
    fn polarity_decides_which_side_of_the_target_is_met() {
        // UQ0001: higher is better, target 95, tolerance 2.
        let up = standard_kpi("UQ0001").expect("standard");
        assert_eq!(evaluate(up, 95.0), TargetStatus::Met);
        assert_eq!(evaluate(up, 93.0), TargetStatus::WithinTolerance);
        assert_eq!(evaluate(up, 92.9), TargetStatus::Missed);
        // UQ0002: lower is better, target 20 days, tolerance 5.
        let down = standard_kpi("UQ0002").expect("standard");
        assert_eq!(evaluate(down, 12.0), TargetStatus::Met);
        assert_eq!(evaluate(down, 25.0), TargetStatus::WithinTolerance);
        assert_eq!(evaluate(down, 25.5), TargetStatus::Missed);
    }

    /// DOMAIN.md "per-inhabitant normalisation": a per-1,000 KPI's target is per 1,000
    /// inhabitants, so the measured count is divided by the population before comparing.
    #[test]
    fn normalised_kpis_compare_per_1000_inhabitants() {
        let kpi = Kpi {
            normalisation: Normalisation::Per1000Inhabitants,
            polarity: Polarity::LowerIsBetter,
            target: 2.0,
            tolerance: 0.5,
            ..standard_kpi("UQ0002").expect("standard").clone()
        };
        // 25 events in a comune of 10,000: 2.5 per 1,000, within the tolerance of 2.
        let compared = compared_value(&kpi, 25.0, 10_000).expect("a population");
        assert!((compared - 2.5).abs() < 1e-12);
        assert_eq!(evaluate(&kpi, compared), TargetStatus::WithinTolerance);
        assert_eq!(compared_value(&kpi, 25.0, 0), None);
    }

    #[test]
    fn period_bounds_and_containment() {
        let q = parse_any_period("2026-Q2").expect("a quarter");
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).expect("date");
        assert_eq!(period_bounds(&q), (d(4, 1), d(6, 30)));
        let y = parse_any_period("2026").expect("a year");
        assert_eq!(period_bounds(&y), (d(1, 1), d(12, 31)));
        assert!(period_within("2026-05", d(4, 1), d(6, 30)));
        assert!(!period_within("2026", d(4, 1), d(6, 30)));
        assert!(parse_any_period("2026-13").is_none());
    }

    /// RFC 4180 2.6-2.7: fields with commas, quotes or line breaks are quoted, quotes doubled.
    #[test]
    fn csv_quotes_what_it_must() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
