//! The KPIs computed from operational data (the standard catalogue's `SOURCE_COMPUTED` ones):
//! which figures each needs, and the rule that turns the figures into a value, explained.
//!
//! The figures are aggregates that the comune's own registry and payments services answer
//! (counts and sums, never a person): the quality office never reads their tables. A share with
//! nothing to divide by has no value: the measurement is MISSING and the explanation says why.

use std::fmt;

use super::{Period, Status};

/// What a computed KPI is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The registry's cases (`RegistryStatisticsService.GetCaseStatistics`).
    Cases,
    /// The registry's certificates (`RegistryStatisticsService.GetCertificateStatistics`).
    Certificates,
    /// The payments desk's collection (`PaymentStatisticsService.GetCollectionStatistics`).
    Collection,
}

impl Needs {
    /// The call that answers these figures.
    pub fn method(self) -> &'static str {
        match self {
            Self::Cases => "unione.registry.v1.RegistryStatisticsService/GetCaseStatistics",
            Self::Certificates => {
                "unione.registry.v1.RegistryStatisticsService/GetCertificateStatistics"
            }
            Self::Collection => {
                "unione.payments.v1.PaymentStatisticsService/GetCollectionStatistics"
            }
        }
    }
}

/// Which figures the computed KPI `kpi_id` needs; `None` for a KPI that is not computed.
pub fn needs(kpi_id: &str) -> Option<Needs> {
    match kpi_id {
        "UQ0001" | "UQ0002" => Some(Needs::Cases),
        "UQ0003" => Some(Needs::Certificates),
        "UQ0004" | "UQ0005" => Some(Needs::Collection),
        _ => None,
    }
}

/// The cases of a comune over a period.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CaseFigures {
    /// Completed in the period.
    pub completed: i64,
    /// Of those, completed within their deadline.
    pub completed_within_deadline: i64,
    /// Median days from registration to completion, suspensions left out.
    pub median_processing_days: f64,
    /// Open at the period's end past their deadline.
    pub overdue_open: i64,
    /// Withdrawn or cancelled in the period.
    pub withdrawn_or_cancelled: i64,
}

/// The certificates a comune issued over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CertificateFigures {
    /// All of them.
    pub issued: i64,
    /// Through the online service.
    pub online: i64,
    /// At a 24-hour kiosk.
    pub kiosk: i64,
    /// At the counter.
    pub counter: i64,
}

/// The payment options of a comune falling due over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CollectionFigures {
    /// Falling due in the period.
    pub due: i64,
    /// Of those, paid on or before their due date.
    pub paid_on_time: i64,
    /// Of those, paid at all.
    pub paid: i64,
    /// The amount falling due, in cents.
    pub due_amount_cents: i64,
    /// The amount collected on them, in cents.
    pub collected_amount_cents: i64,
    /// Options of invalidated positions (left out).
    pub invalidated: i64,
}

/// The figures a service answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figures {
    /// See [`CaseFigures`].
    Cases(CaseFigures),
    /// See [`CertificateFigures`].
    Certificates(CertificateFigures),
    /// See [`CollectionFigures`].
    Collection(CollectionFigures),
}

/// A computed value with its explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Computed {
    /// OK with a value, or MISSING when the rule has nothing to divide by.
    pub status: Status,
    /// The value (0 unless OK).
    pub value: f64,
    /// The rule, in words.
    pub method: String,
    /// The figures used, by name.
    pub inputs: Vec<(String, f64)>,
}

/// Figures that do not fit the KPI (a programming error in the caller, reported, not a panic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("KPI {kpi_id} is not computed from these figures")]
pub struct WrongFigures {
    /// The KPI.
    pub kpi_id: String,
}

/// Rounds to two decimals, the precision every computed share and median is published with.
fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// `100 x part / whole`, or `None` when `whole` is 0.
fn percent(part: i64, whole: i64) -> Option<f64> {
    // Counts of one comune's cases, certificates or payments in a period are far below 2^53.
    #[allow(clippy::cast_precision_loss)]
    (whole > 0).then(|| round2((100.0 * part as f64 / whole as f64).min(100.0)))
}

#[allow(clippy::cast_precision_loss)]
fn input(name: &str, value: i64) -> (String, f64) {
    (name.to_owned(), value as f64)
}

/// Computes the KPI `kpi_id` from `figures` (DOMAIN.md "Quality and benchmarks"; the rules are
/// the KPI definitions of the standard catalogue):
///
/// - UQ0001: 100 x cases completed within the deadline / cases completed;
/// - UQ0002: the median processing days of the cases completed;
/// - UQ0003: 100 x (certificates issued online + at a kiosk) / certificates issued;
/// - UQ0004: 100 x options paid on or before their due date / options falling due;
/// - UQ0005: 100 x amount collected / amount falling due.
pub fn compute(kpi_id: &str, figures: &Figures) -> Result<Computed, WrongFigures> {
    let wrong = || WrongFigures {
        kpi_id: kpi_id.to_owned(),
    };
    let (value, method, inputs, empty) = match (kpi_id, figures) {
        ("UQ0001", Figures::Cases(c)) => (
            percent(c.completed_within_deadline, c.completed),
            "100 x completed_within_deadline / completed",
            vec![
                input("completed", c.completed),
                input("completed_within_deadline", c.completed_within_deadline),
                input("overdue_open", c.overdue_open),
                input("withdrawn_or_cancelled", c.withdrawn_or_cancelled),
            ],
            "no case was completed in the period",
        ),
        ("UQ0002", Figures::Cases(c)) => (
            (c.completed > 0).then(|| round2(c.median_processing_days)),
            "median of the processing days of the completed cases",
            vec![
                input("completed", c.completed),
                (
                    "median_processing_days".to_owned(),
                    c.median_processing_days,
                ),
                input("overdue_open", c.overdue_open),
            ],
            "no case was completed in the period",
        ),
        ("UQ0003", Figures::Certificates(c)) => (
            percent(c.online + c.kiosk, c.issued),
            "100 x (online + kiosk) / issued",
            vec![
                input("issued", c.issued),
                input("online", c.online),
                input("kiosk", c.kiosk),
                input("counter", c.counter),
            ],
            "no certificate was issued in the period",
        ),
        ("UQ0004", Figures::Collection(c)) => (
            percent(c.paid_on_time, c.due),
            "100 x paid_on_time / due",
            vec![
                input("due", c.due),
                input("paid_on_time", c.paid_on_time),
                input("paid", c.paid),
                input("invalidated", c.invalidated),
            ],
            "no payment fell due in the period",
        ),
        ("UQ0005", Figures::Collection(c)) => (
            percent(c.collected_amount_cents, c.due_amount_cents),
            "100 x collected_amount_cents / due_amount_cents",
            vec![
                input("due_amount_cents", c.due_amount_cents),
                input("collected_amount_cents", c.collected_amount_cents),
                input("due", c.due),
                input("paid", c.paid),
                input("invalidated", c.invalidated),
            ],
            "no payment fell due in the period",
        ),
        _ => return Err(wrong()),
    };
    Ok(match value {
        Some(value) => Computed {
            status: Status::Ok,
            value,
            method: method.to_owned(),
            inputs,
        },
        None => Computed {
            status: Status::Missing,
            value: 0.0,
            method: format!("{method}: {empty}"),
            inputs,
        },
    })
}

/// The call of `needs` for `period`, as recorded in an explanation.
pub fn source(needs: Needs, period: &Period) -> String {
    format!("{} {}..{}", needs.method(), period.start(), period.end())
}

impl fmt::Display for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PeriodKind, STANDARD_KPIS, Source};

    #[test]
    fn every_computed_kpi_of_the_catalogue_has_its_figures_and_no_other() {
        for kpi in STANDARD_KPIS {
            assert_eq!(
                needs(&kpi.id).is_some(),
                kpi.source == Source::Computed,
                "{}",
                kpi.id
            );
        }
    }

    #[test]
    fn shares_and_medians_against_hand_computed_values() {
        // 17 of 20 cases within the deadline: 85%.
        let cases = Figures::Cases(CaseFigures {
            completed: 20,
            completed_within_deadline: 17,
            median_processing_days: 12.5,
            overdue_open: 3,
            withdrawn_or_cancelled: 2,
        });
        let uq1 = compute("UQ0001", &cases).expect("cases");
        assert_eq!((uq1.status, uq1.value), (Status::Ok, 85.0));
        assert!(uq1.inputs.contains(&("overdue_open".to_owned(), 3.0)));
        let uq2 = compute("UQ0002", &cases).expect("cases");
        assert_eq!(uq2.value, 12.5);

        // 2 of 3 certificates online or at a kiosk: 66.67%.
        let certificates = Figures::Certificates(CertificateFigures {
            issued: 3,
            online: 1,
            kiosk: 1,
            counter: 1,
        });
        assert_eq!(
            compute("UQ0003", &certificates)
                .expect("certificates")
                .value,
            66.67
        );

        // 7 of 9 on time; 123,456 of 200,000 cents collected: 61.73%.
        let collection = Figures::Collection(CollectionFigures {
            due: 9,
            paid_on_time: 7,
            paid: 8,
            due_amount_cents: 200_000,
            collected_amount_cents: 123_456,
            invalidated: 1,
        });
        assert_eq!(compute("UQ0004", &collection).expect("c").value, 77.78);
        assert_eq!(compute("UQ0005", &collection).expect("c").value, 61.73);
    }

    #[test]
    fn nothing_to_divide_by_is_missing_and_says_why() {
        let none = Figures::Collection(CollectionFigures::default());
        let uq4 = compute("UQ0004", &none).expect("collection");
        assert_eq!((uq4.status, uq4.value), (Status::Missing, 0.0));
        assert!(uq4.method.contains("no payment fell due"), "{}", uq4.method);
        let uq2 = compute("UQ0002", &Figures::Cases(CaseFigures::default())).expect("cases");
        assert_eq!(uq2.status, Status::Missing);
    }

    #[test]
    fn figures_of_another_kind_are_refused() {
        let cases = Figures::Cases(CaseFigures::default());
        assert!(compute("UQ0003", &cases).is_err());
        assert!(compute("UQ0008", &cases).is_err(), "a reported KPI");
    }

    #[test]
    fn the_source_names_the_call_and_the_days() {
        let q3 = Period::parse(PeriodKind::Quarter, "2026-Q3").expect("quarter");
        assert_eq!(
            source(Needs::Cases, &q3),
            "unione.registry.v1.RegistryStatisticsService/GetCaseStatistics 2026-07-01..2026-09-30"
        );
        let feb = Period::parse(PeriodKind::Month, "2028-02").expect("month");
        assert_eq!(feb.end().to_string(), "2028-02-29");
        let dec = Period::parse(PeriodKind::Month, "2026-12").expect("month");
        assert_eq!(dec.end().to_string(), "2026-12-31");
        assert_eq!(dec.previous().to_string(), "2026-11");
        let q1 = Period::parse(PeriodKind::Quarter, "2027-Q1").expect("quarter");
        assert_eq!(q1.previous().to_string(), "2026-Q4");
        let y = Period::parse(PeriodKind::Year, "2026").expect("year");
        assert_eq!(
            (y.end().to_string(), y.previous().to_string()),
            ("2026-12-31".to_owned(), "2025".to_owned())
        );
    }
}
