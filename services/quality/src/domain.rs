//! The rules of the quality office, with no I/O: the federation's standard KPI catalogue,
//! measurement periods, and what a measurement may carry (DOMAIN.md "Quality and benchmarks",
//! after Kolada's catalogue and status codes).
//!
//! Nothing here knows about gRPC or SQL: the handlers ([`crate::grpc`]) translate the wire into
//! these types, and storage ([`crate::storage`]) keeps them.

use std::borrow::Cow;
use std::fmt;

use chrono::{Datelike, NaiveDate};

/// Whether higher or lower values of a KPI are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Polarity {
    /// Higher is better.
    HigherIsBetter,
    /// Lower is better.
    LowerIsBetter,
}

/// How the values of a KPI are normalised to compare comuni of different size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Normalisation {
    /// Compared as measured.
    None,
    /// Divided by the resident population, per 1,000 inhabitants.
    Per1000Inhabitants,
}

/// The length of the periods a KPI is measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeriodKind {
    /// A calendar month, written `2026-03`.
    Month,
    /// A calendar quarter, written `2026-Q1`.
    Quarter,
    /// A calendar year, written `2026`.
    Year,
}

/// Where the values of a KPI come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Entered by the quality office.
    Reported,
    /// Computed from the registry and payments services.
    Computed,
}

/// The status of a measurement (Kolada's status codes; DOMAIN.md "Quality and benchmarks":
/// "status codes for missing, not applicable, confidential").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// A value is present.
    Ok,
    /// No value was reported.
    Missing,
    /// The KPI does not apply to this comune.
    NotApplicable,
    /// A value exists but may not be published.
    Confidential,
}

/// Stable storage codes of the enums above (UPPER_SNAKE, never renamed: they are data).
macro_rules! codes {
    ($ty:ty { $($variant:ident => $code:literal),+ $(,)? }) => {
        impl $ty {
            /// The stable code of this value, as stored.
            pub fn code(self) -> &'static str {
                match self { $(Self::$variant => $code),+ }
            }

            /// The value of a stored code.
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some(Self::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

codes!(Polarity { HigherIsBetter => "HIGHER_IS_BETTER", LowerIsBetter => "LOWER_IS_BETTER" });
codes!(Normalisation { None => "NONE", Per1000Inhabitants => "PER_1000_INHABITANTS" });
codes!(PeriodKind { Month => "MONTH", Quarter => "QUARTER", Year => "YEAR" });
codes!(Source { Reported => "REPORTED", Computed => "COMPUTED" });
codes!(Status {
    Ok => "OK",
    Missing => "MISSING",
    NotApplicable => "NOT_APPLICABLE",
    Confidential => "CONFIDENTIAL",
});

/// The channel through which a citizen reached the comune (`unione.common.v1.Channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// At the counter (front office).
    Counter,
    /// By telephone.
    Phone,
    /// Through a web front office.
    Web,
    /// At a 24-hour kiosk.
    Kiosk,
    /// By e-mail or certified e-mail (PEC).
    Email,
}

codes!(Channel {
    Counter => "COUNTER",
    Phone => "PHONE",
    Web => "WEB",
    Kiosk => "KIOSK",
    Email => "EMAIL",
});

pub mod calendar;
pub mod complaints;
pub mod improvement;
pub mod indicators;
pub mod review;
pub mod surveys;

/// Units of the standard catalogue. The unit decides which values are possible
/// ([`ValueRange::for_unit`]).
pub mod units {
    /// A percentage, 0 to 100.
    pub const PERCENT: &str = "%";
    /// Calendar days, not negative.
    pub const DAYS: &str = "days";
    /// Minutes, not negative.
    pub const MINUTES: &str = "minutes";
    /// A count of events, a whole number, not negative.
    pub const COUNT: &str = "count";
    /// An index rescaled to 0-100.
    pub const INDEX_0_100: &str = "index 0-100";
    /// Net Promoter Score points, -100 to 100.
    pub const NPS: &str = "NPS points";
}

/// The values a unit admits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueRange {
    /// Smallest value, if bounded below.
    pub min: Option<f64>,
    /// Largest value, if bounded above.
    pub max: Option<f64>,
    /// Whether only whole numbers are possible.
    pub whole: bool,
}

impl ValueRange {
    /// The range of a unit: percentages and 0-100 indexes in 0..=100, NPS in -100..=100, days,
    /// minutes and counts not negative (counts whole); any other unit (e.g. `EUR` of a local
    /// KPI) any finite value.
    pub fn for_unit(unit: &str) -> Self {
        let (min, max, whole) = match unit {
            units::PERCENT | units::INDEX_0_100 => (Some(0.0), Some(100.0), false),
            units::NPS => (Some(-100.0), Some(100.0), false),
            units::DAYS | units::MINUTES => (Some(0.0), None, false),
            units::COUNT => (Some(0.0), None, true),
            _ => (None, None, false),
        };
        Self { min, max, whole }
    }

    /// Whether `value` (finite) is within the range, ignoring wholeness.
    pub fn contains(&self, value: f64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }
}

impl fmt::Display for ValueRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(min), Some(max)) => write!(f, "{min} to {max}"),
            (Some(min), None) => write!(f, "at least {min}"),
            (None, Some(max)) => write!(f, "at most {max}"),
            (None, None) => f.write_str("any finite value"),
        }
    }
}

/// A key performance indicator: one of the federation's standard catalogue, or a comune's own.
#[derive(Debug, Clone, PartialEq)]
pub struct Kpi {
    /// The id, e.g. `UQ0001`; standard KPIs have the same id on every node.
    pub id: Cow<'static, str>,
    /// Short title.
    pub title: Cow<'static, str>,
    /// What is measured and how.
    pub definition: Cow<'static, str>,
    /// Unit of the values as measured (see [`units`]).
    pub unit: Cow<'static, str>,
    /// Whether higher or lower is better.
    pub polarity: Polarity,
    /// How values are normalised for comparison; the target is in normalised terms.
    pub normalisation: Normalisation,
    /// The target value (ISO 9001:2015 6.2: objectives measurable, with a target).
    pub target: f64,
    /// Tolerance around the target within which the KPI counts as met.
    pub tolerance: f64,
    /// The period of measurement.
    pub period: PeriodKind,
    /// Where values come from.
    pub source: Source,
    /// The office responsible (ISO 9001:2015 6.2: objectives with an owner).
    pub owner_office: Cow<'static, str>,
    /// True for the standard catalogue, false for a local KPI.
    pub standard: bool,
}

impl Kpi {
    /// The values this KPI admits, from its unit.
    pub fn value_range(&self) -> ValueRange {
        ValueRange::for_unit(&self.unit)
    }
}

/// The prefix reserved to the standard catalogue's ids.
pub const STANDARD_PREFIX: &str = "UQ";

/// A standard KPI, in the `const` catalogue below.
#[allow(clippy::too_many_arguments)]
const fn standard(
    id: &'static str,
    title: &'static str,
    definition: &'static str,
    unit: &'static str,
    polarity: Polarity,
    normalisation: Normalisation,
    target: f64,
    tolerance: f64,
    period: PeriodKind,
    source: Source,
    owner_office: &'static str,
) -> Kpi {
    Kpi {
        id: Cow::Borrowed(id),
        title: Cow::Borrowed(title),
        definition: Cow::Borrowed(definition),
        unit: Cow::Borrowed(unit),
        polarity,
        normalisation,
        target,
        tolerance,
        period,
        source,
        owner_office: Cow::Borrowed(owner_office),
        standard: true,
    }
}

use Normalisation::{None as AsMeasured, Per1000Inhabitants};
use PeriodKind::{Month, Quarter, Year};
use Polarity::{HigherIsBetter, LowerIsBetter};
use Source::{Computed, Reported};

/// The federation's standard KPI catalogue, the same on every node, ordered by id. These are the
/// indicators every member's quality office keeps (ISO 9001:2015 6.2 objectives in the process
/// sheets and the PEG) and that the federation compares across towns.
pub const STANDARD_KPIS: &[Kpi] = &[
    standard(
        "UQ0001",
        "Cases closed within the legal deadline",
        "Share of the cases (pratiche, Legge 241/1990) completed in the period whose completion \
         came within their deadline: 30 days from registration unless a regulation sets up to \
         90, or 180 for complex procedures, plus the days the clock was suspended for documents \
         (once, at most 30). Denominator: cases completed in the period; withdrawn and cancelled \
         cases are left out.",
        units::PERCENT,
        HigherIsBetter,
        AsMeasured,
        95.0,
        2.0,
        Quarter,
        Computed,
        "Segreteria generale",
    ),
    standard(
        "UQ0002",
        "Median case processing time",
        "Median number of calendar days from registration (protocol number) to completion of the \
         cases completed in the period, not counting the days the clock was suspended to obtain \
         documents.",
        units::DAYS,
        LowerIsBetter,
        AsMeasured,
        20.0,
        5.0,
        Quarter,
        Computed,
        "Segreteria generale",
    ),
    standard(
        "UQ0003",
        "Certificates issued online",
        "Share of the registry certificates (residence, household status, historical residence \
         and others) issued in the period through the online service or the 24-hour kiosks, \
         sealed with a verification code (CAD art. 23), out of all certificates issued, counter \
         included.",
        units::PERCENT,
        HigherIsBetter,
        AsMeasured,
        60.0,
        5.0,
        Quarter,
        Computed,
        "Servizi demografici",
    ),
    standard(
        "UQ0004",
        "Payments on time",
        "Share of the pagoPA payment options and installments falling due in the month that were \
         paid (receipt received) on or before their due date, out of all those falling due; \
         invalidated positions are left out.",
        units::PERCENT,
        HigherIsBetter,
        AsMeasured,
        85.0,
        5.0,
        Month,
        Computed,
        "Servizio finanziario (Ragioneria)",
    ),
    standard(
        "UQ0005",
        "Collection rate",
        "Amount collected on the debt positions falling due in the year (paid receipts, in \
         cents) over the amount falling due in the year, as a percentage.",
        units::PERCENT,
        HigherIsBetter,
        AsMeasured,
        90.0,
        3.0,
        Year,
        Computed,
        "Ufficio tributi",
    ),
    standard(
        "UQ0006",
        "Complaints per 1,000 inhabitants",
        "Complaints received in the year through any channel, each registered with a unique id \
         at receipt (ISO 10002). The value is the count; it is divided by the resident \
         population, per 1,000 inhabitants, to compare towns, and the target is per 1,000 \
         inhabitants.",
        units::COUNT,
        LowerIsBetter,
        Per1000Inhabitants,
        2.0,
        0.5,
        Year,
        Reported,
        "URP - Ufficio relazioni con il pubblico",
    ),
    standard(
        "UQ0007",
        "Complaints answered within the charter's target",
        "Share of the complaints closed in the quarter whose response was sent within the time \
         the service charter commits to (20 or 30 days from receipt: ISO 10002 sets no \
         deadline), out of all complaints closed in the quarter.",
        units::PERCENT,
        HigherIsBetter,
        AsMeasured,
        90.0,
        5.0,
        Quarter,
        Reported,
        "URP - Ufficio relazioni con il pubblico",
    ),
    standard(
        "UQ0008",
        "Citizen satisfaction index",
        "Customer satisfaction index of the yearly survey: the importance-weighted mean of the \
         attribute scores (courtesy, competence, clarity, waiting, opening hours, online \
         services), rescaled to 0-100.",
        units::INDEX_0_100,
        HigherIsBetter,
        AsMeasured,
        75.0,
        5.0,
        Year,
        Reported,
        "Ufficio qualità",
    ),
    standard(
        "UQ0009",
        "Counter waiting time",
        "Mean minutes between taking a ticket and being called at the front-office counters \
         (sportello polifunzionale) in the month, from the queue management system.",
        units::MINUTES,
        LowerIsBetter,
        AsMeasured,
        10.0,
        5.0,
        Month,
        Reported,
        "Sportello polifunzionale",
    ),
    standard(
        "UQ0010",
        "Protocol registrations per 1,000 inhabitants",
        "Registrations in the protocol register (DPR 445/2000), incoming and outgoing, in the \
         year, annulled ones left out; the value is the count, divided by the resident \
         population per 1,000 inhabitants to compare the work the shared back office handles \
         for each town. The target is per 1,000 inhabitants.",
        units::COUNT,
        HigherIsBetter,
        Per1000Inhabitants,
        1200.0,
        200.0,
        Year,
        Reported,
        "Ufficio protocollo",
    ),
    standard(
        "UQ0011",
        "Net Promoter Score of the front office",
        "Share of promoters (9-10) minus share of detractors (0-6) among the answers to \"would \
         you recommend this office\" on a 0-10 scale in the yearly survey, in points from -100 \
         to 100.",
        units::NPS,
        HigherIsBetter,
        AsMeasured,
        30.0,
        10.0,
        Year,
        Reported,
        "Ufficio qualità",
    ),
    standard(
        "UQ0012",
        "Corrective actions effective on time",
        "Share of the corrective actions due in the year (ISO 9001:2015 10.2, raised on \
         nonconformities and audit findings) closed by their due date and found effective at \
         verification, out of all corrective actions due in the year.",
        units::PERCENT,
        HigherIsBetter,
        AsMeasured,
        80.0,
        10.0,
        Year,
        Reported,
        "Ufficio qualità",
    ),
];

/// The standard KPI with this id.
pub fn standard_kpi(id: &str) -> Option<&'static Kpi> {
    STANDARD_KPIS.iter().find(|kpi| kpi.id == id)
}

/// One page of a comune's catalogue, ordered by id: the standard KPIs and `local` merged, those
/// after `after` only, at most `limit`. `local` must already be restricted to ids after
/// `after` and hold at least `limit` of them if there are that many.
pub fn catalogue_page(local: Vec<Kpi>, after: Option<&str>, limit: usize) -> Vec<Kpi> {
    let mut page: Vec<Kpi> = STANDARD_KPIS
        .iter()
        .filter(|kpi| after.is_none_or(|after| kpi.id.as_ref() > after))
        .cloned()
        .chain(local)
        .collect();
    page.sort_by(|a, b| a.id.cmp(&b.id));
    page.truncate(limit);
    page
}

/// Checks a comune's own KPI: an id of 3 to 32 upper-case letters, digits, `_` or `-`, starting
/// with a letter and not with the standard prefix; every text set; target and tolerance finite,
/// tolerance not negative, target possible in the unit.
pub fn check_local_kpi(kpi: &Kpi) -> Result<(), QualityError> {
    let invalid = |field: &'static str, why: &str| {
        Err(QualityError::InvalidKpi {
            field,
            why: why.to_owned(),
        })
    };
    let id = kpi.id.as_ref();
    let id_ok = (3..=32).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_uppercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !id_ok {
        return invalid(
            "kpi_id",
            "3 to 32 of A-Z, 0-9, `_`, `-`, starting with a letter",
        );
    }
    if id.starts_with(STANDARD_PREFIX) {
        return invalid(
            "kpi_id",
            "the UQ prefix is reserved to the standard catalogue",
        );
    }
    if kpi.standard {
        return invalid("standard", "a local KPI is not standard");
    }
    for (field, text) in [
        ("title", &kpi.title),
        ("definition", &kpi.definition),
        ("unit", &kpi.unit),
        ("owner_office", &kpi.owner_office),
    ] {
        if text.trim().is_empty() {
            return invalid(field, "must be set");
        }
    }
    if !kpi.target.is_finite() || !kpi.value_range().contains(kpi.target) {
        return invalid("target", "must be a finite value possible in the unit");
    }
    if !kpi.tolerance.is_finite() || kpi.tolerance < 0.0 {
        return invalid("tolerance", "must be finite and not negative");
    }
    Ok(())
}

/// A measurement period of a given kind, parsed from its only accepted form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    year: i32,
    /// 0 for a year, the quarter 1-4, or the month 1-12.
    part: u8,
    kind: PeriodKind,
}

/// Earliest year accepted in a period.
pub const FIRST_YEAR: i32 = 1900;

impl Period {
    /// Parses `text` as a period of `kind`: `2026` for a year, `2026-Q1` for a quarter,
    /// `2026-03` for a month, exactly (no `2026-3`, `2026-q1`, spaces or other forms). Years
    /// from [`FIRST_YEAR`] to 9999.
    pub fn parse(kind: PeriodKind, text: &str) -> Result<Self, QualityError> {
        let invalid = || QualityError::InvalidPeriod {
            given: text.to_owned(),
            expected: kind,
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let year_text = text.get(..4).ok_or_else(invalid)?;
        if !digits(year_text) {
            return Err(invalid());
        }
        let year: i32 = year_text.parse().map_err(|_| invalid())?;
        if year < FIRST_YEAR {
            return Err(invalid());
        }
        let rest = &text[4..];
        let part = match kind {
            PeriodKind::Year if rest.is_empty() => 0,
            PeriodKind::Quarter => match rest {
                "-Q1" => 1,
                "-Q2" => 2,
                "-Q3" => 3,
                "-Q4" => 4,
                _ => return Err(invalid()),
            },
            PeriodKind::Month => {
                let month = rest.strip_prefix('-').ok_or_else(invalid)?;
                if month.len() != 2 || !digits(month) {
                    return Err(invalid());
                }
                let month: u8 = month.parse().map_err(|_| invalid())?;
                if !(1..=12).contains(&month) {
                    return Err(invalid());
                }
                month
            }
            PeriodKind::Year => return Err(invalid()),
        };
        Ok(Self { year, part, kind })
    }

    /// The kind of period.
    pub fn kind(&self) -> PeriodKind {
        self.kind
    }

    /// The first day of the period.
    pub fn start(&self) -> NaiveDate {
        let month = match self.kind {
            PeriodKind::Year => 1,
            PeriodKind::Quarter => u32::from(self.part) * 3 - 2,
            PeriodKind::Month => u32::from(self.part),
        };
        NaiveDate::from_ymd_opt(self.year, month, 1)
            .expect("a parsed period has a year from 1900 to 9999 and a month from 1 to 12")
    }

    /// The last day of the period.
    pub fn end(&self) -> NaiveDate {
        let (year, month) = match self.kind {
            PeriodKind::Year => (self.year + 1, 1),
            PeriodKind::Quarter if self.part == 4 => (self.year + 1, 1),
            PeriodKind::Quarter => (self.year, u32::from(self.part) * 3 + 1),
            PeriodKind::Month if self.part == 12 => (self.year + 1, 1),
            PeriodKind::Month => (self.year, u32::from(self.part) + 1),
        };
        NaiveDate::from_ymd_opt(year, month, 1)
            .and_then(|next| next.pred_opt())
            .expect("a parsed period ends before the year 10000")
    }

    /// The period before this one, of the same kind.
    pub fn previous(&self) -> Self {
        current_period(self.kind, self.start() - chrono::Duration::days(1))
    }

    /// Whether the period has begun on `today` (a value for a period not yet begun cannot have
    /// been measured).
    pub fn has_begun(&self, today: NaiveDate) -> bool {
        self.start() <= today
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PeriodKind::Year => write!(f, "{:04}", self.year),
            PeriodKind::Quarter => write!(f, "{:04}-Q{}", self.year, self.part),
            PeriodKind::Month => write!(f, "{:04}-{:02}", self.year, self.part),
        }
    }
}

/// The period in which `today` falls, of a kind (for callers that measure the current period).
pub fn current_period(kind: PeriodKind, today: NaiveDate) -> Period {
    let part = match kind {
        PeriodKind::Year => 0,
        PeriodKind::Quarter => u8::try_from(today.month0() / 3 + 1).expect("quarter is 1-4"),
        PeriodKind::Month => u8::try_from(today.month()).expect("month is 1-12"),
    };
    Period {
        year: today.year(),
        part,
        kind,
    }
}

/// A measurement that passed the rules: its period in the KPI's form, its status, and a value
/// exactly when the status is [`Status::Ok`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    period: Period,
    status: Status,
    value: Option<f64>,
}

impl Reading {
    /// Checks a measurement of `kpi` (DOMAIN.md "Quality and benchmarks": values per
    /// municipality x period, with status codes for missing, not applicable, confidential):
    ///
    /// - the period is in the KPI's form and has begun on `today` ([`Period::parse`]);
    /// - [`Status::Ok`] carries a finite value possible in the KPI's unit (a percentage in
    ///   0..=100, a count whole and not negative...);
    /// - any other status carries no value: `value` must be 0, the wire's "not set".
    ///
    /// `status` is `None` when the request did not give one.
    pub fn new(
        kpi: &Kpi,
        period: &str,
        status: Option<Status>,
        value: f64,
        today: NaiveDate,
    ) -> Result<Self, QualityError> {
        if period.is_empty() {
            return Err(QualityError::PeriodRequired);
        }
        let period = Period::parse(kpi.period, period)?;
        if !period.has_begun(today) {
            return Err(QualityError::PeriodNotBegun {
                period: period.to_string(),
            });
        }
        let status = status.ok_or(QualityError::StatusRequired)?;
        let value = match status {
            Status::Ok => {
                if !value.is_finite() {
                    return Err(QualityError::ValueNotFinite);
                }
                let range = kpi.value_range();
                if !range.contains(value) {
                    return Err(QualityError::ValueOutOfRange {
                        value,
                        unit: kpi.unit.to_string(),
                        range,
                    });
                }
                if range.whole && value.fract() != 0.0 {
                    return Err(QualityError::ValueNotWhole { value });
                }
                // One zero: -0.0 and 0.0 are the same measurement.
                Some(if value == 0.0 { 0.0 } else { value })
            }
            other if value != 0.0 => return Err(QualityError::ValueNotAllowed { status: other }),
            _ => None,
        };
        Ok(Self {
            period,
            status,
            value,
        })
    }

    /// The period.
    pub fn period(&self) -> Period {
        self.period
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The value; `Some` exactly when the status is [`Status::Ok`].
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// Whether recording this reading over the current one (`status`, `value`) is a correction.
    /// Recording the same status and value again changes nothing, so it is not: the revision
    /// stays and the history gains nothing.
    pub fn corrects(&self, status: Status, value: Option<f64>) -> bool {
        self.status != status || self.value != value
    }
}

/// What the rules refuse. Each has a stable UPPER_SNAKE reason ([`QualityError::reason`]) and
/// the request field at fault ([`QualityError::field`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QualityError {
    /// No period was given.
    #[error("measurement.period is required")]
    PeriodRequired,
    /// The period is not in the KPI's form.
    #[error("`{given}` is not a {} period of this KPI (write it as {})", kind_word(*.expected), kind_example(*.expected))]
    InvalidPeriod {
        /// The period as given.
        given: String,
        /// The KPI's period.
        expected: PeriodKind,
    },
    /// The period has not begun yet.
    #[error("period {period} has not begun yet")]
    PeriodNotBegun {
        /// The period.
        period: String,
    },
    /// No status was given.
    #[error("measurement.status is required")]
    StatusRequired,
    /// The status is not one this version knows.
    #[error("{0} is not a known measurement status")]
    UnknownStatus(i32),
    /// STATUS_OK with NaN or an infinity.
    #[error("a measurement with STATUS_OK needs a finite value")]
    ValueNotFinite,
    /// A status other than OK with a value.
    #[error("only STATUS_OK carries a value; a {status} measurement must leave value at 0")]
    ValueNotAllowed {
        /// The status given.
        status: Status,
    },
    /// A value impossible in the KPI's unit.
    #[error("{value} is not possible in `{unit}` ({range})")]
    ValueOutOfRange {
        /// The value given.
        value: f64,
        /// The KPI's unit.
        unit: String,
        /// What the unit admits.
        range: ValueRange,
    },
    /// A fractional count.
    #[error("{value} is not a whole number, and this KPI counts")]
    ValueNotWhole {
        /// The value given.
        value: f64,
    },
    /// A local KPI that breaks the catalogue's rules.
    #[error("invalid KPI {field}: {why}")]
    InvalidKpi {
        /// The KPI field at fault.
        field: &'static str,
        /// Why.
        why: String,
    },
}

fn kind_word(kind: PeriodKind) -> &'static str {
    match kind {
        PeriodKind::Month => "monthly",
        PeriodKind::Quarter => "quarterly",
        PeriodKind::Year => "yearly",
    }
}

fn kind_example(kind: PeriodKind) -> &'static str {
    match kind {
        PeriodKind::Month => "`2026-03`",
        PeriodKind::Quarter => "`2026-Q1`",
        PeriodKind::Year => "`2026`",
    }
}

impl QualityError {
    /// The stable UPPER_SNAKE reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::PeriodRequired | Self::StatusRequired => "FIELD_REQUIRED",
            Self::InvalidPeriod { .. } => "INVALID_PERIOD",
            Self::PeriodNotBegun { .. } => "PERIOD_NOT_BEGUN",
            Self::UnknownStatus(_) => "INVALID_STATUS",
            Self::ValueNotFinite => "INVALID_VALUE",
            Self::ValueNotAllowed { .. } => "VALUE_NOT_ALLOWED",
            Self::ValueOutOfRange { .. } => "VALUE_OUT_OF_RANGE",
            Self::ValueNotWhole { .. } => "VALUE_NOT_WHOLE",
            Self::InvalidKpi { .. } => "INVALID_KPI",
        }
    }

    /// The request field at fault, as a path.
    pub fn field(&self) -> String {
        match self {
            Self::PeriodRequired | Self::InvalidPeriod { .. } | Self::PeriodNotBegun { .. } => {
                "measurement.period".into()
            }
            Self::StatusRequired | Self::UnknownStatus(_) => "measurement.status".into(),
            Self::ValueNotFinite
            | Self::ValueNotAllowed { .. }
            | Self::ValueOutOfRange { .. }
            | Self::ValueNotWhole { .. } => "measurement.value".into(),
            Self::InvalidKpi { field, .. } => format!("kpi.{field}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn kpi(id: &str) -> &'static Kpi {
        standard_kpi(id).expect("a standard KPI")
    }

    const TODAY: (i32, u32, u32) = (2026, 11, 23);

    fn today() -> NaiveDate {
        day(TODAY.0, TODAY.1, TODAY.2)
    }

    /// kpis.proto: a period is written `2026` (year), `2026-Q1` (quarter) or `2026-03`
    /// (month), in the KPI's form and no other.
    #[test]
    fn periods_parse_only_in_their_kind_form() {
        let ok = [
            (PeriodKind::Year, "2026"),
            (PeriodKind::Quarter, "2026-Q1"),
            (PeriodKind::Quarter, "2025-Q4"),
            (PeriodKind::Month, "2026-03"),
            (PeriodKind::Month, "2024-12"),
        ];
        for (kind, text) in ok {
            let period = Period::parse(kind, text).expect(text);
            assert_eq!(period.to_string(), text, "canonical form round-trips");
            assert_eq!(period.kind(), kind);
        }
        let bad = [
            (PeriodKind::Year, "2026-Q1"),
            (PeriodKind::Year, "26"),
            (PeriodKind::Year, "2026 "),
            (PeriodKind::Year, "+202"),
            (PeriodKind::Year, "1899"),
            (PeriodKind::Year, ""),
            (PeriodKind::Quarter, "2026"),
            (PeriodKind::Quarter, "2026-q1"),
            (PeriodKind::Quarter, "2026-Q5"),
            (PeriodKind::Quarter, "2026-Q0"),
            (PeriodKind::Quarter, "2026-03"),
            (PeriodKind::Month, "2026-3"),
            (PeriodKind::Month, "2026-13"),
            (PeriodKind::Month, "2026-00"),
            (PeriodKind::Month, "2026-Q1"),
            (PeriodKind::Month, "2026/03"),
            (PeriodKind::Month, "2026-+3"),
            (PeriodKind::Month, "2026-03-01"),
            (PeriodKind::Month, "२०२६-03"),
        ];
        for (kind, text) in bad {
            let err = Period::parse(kind, text).expect_err(text);
            assert_eq!(err.reason(), "INVALID_PERIOD", "{text}");
            assert_eq!(err.field(), "measurement.period");
        }
    }

    /// Periods sort chronologically within a kind, as their text does (ListMeasurements orders
    /// by the stored text).
    #[test]
    fn periods_start_on_their_first_day_and_sort_like_their_text() {
        let q3 = Period::parse(PeriodKind::Quarter, "2026-Q3").expect("valid");
        assert_eq!(q3.start(), day(2026, 7, 1));
        assert!(q3.has_begun(day(2026, 7, 1)));
        assert!(!q3.has_begun(day(2026, 6, 30)));
        let months: Vec<Period> = ["2025-12", "2026-01", "2026-10", "2026-02"]
            .iter()
            .map(|t| Period::parse(PeriodKind::Month, t).expect("valid"))
            .collect();
        let mut by_value = months.clone();
        by_value.sort();
        let mut by_text: Vec<String> = months.iter().map(ToString::to_string).collect();
        by_text.sort();
        assert_eq!(
            by_value.iter().map(ToString::to_string).collect::<Vec<_>>(),
            by_text
        );
        assert_eq!(
            current_period(PeriodKind::Quarter, today()).to_string(),
            "2026-Q4"
        );
        assert_eq!(
            current_period(PeriodKind::Month, today()).to_string(),
            "2026-11"
        );
        assert_eq!(
            current_period(PeriodKind::Year, today()).to_string(),
            "2026"
        );
    }

    /// DOMAIN.md "Quality and benchmarks" (Kolada status codes): a value comes only with the
    /// OK status, finite; missing, not applicable and confidential carry none.
    #[test]
    fn status_ok_needs_a_finite_value_other_statuses_none() {
        let uq8 = kpi("UQ0008");
        let ok = Reading::new(uq8, "2025", Some(Status::Ok), 71.5, today()).expect("valid");
        assert_eq!((ok.status(), ok.value()), (Status::Ok, Some(71.5)));
        let zero = Reading::new(uq8, "2025", Some(Status::Ok), -0.0, today()).expect("valid");
        assert_eq!(zero.value().map(f64::to_bits), Some(0.0_f64.to_bits()));

        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = Reading::new(uq8, "2025", Some(Status::Ok), bad, today()).expect_err("nf");
            assert_eq!(
                (err.reason(), err.field().as_str()),
                ("INVALID_VALUE", "measurement.value")
            );
        }
        for status in [Status::Missing, Status::NotApplicable, Status::Confidential] {
            let none = Reading::new(uq8, "2025", Some(status), 0.0, today()).expect("no value");
            assert_eq!((none.status(), none.value()), (status, None));
            for value in [42.0, f64::NAN] {
                let err = Reading::new(uq8, "2025", Some(status), value, today()).expect_err("v");
                assert_eq!(
                    (err.reason(), err.field().as_str()),
                    ("VALUE_NOT_ALLOWED", "measurement.value")
                );
            }
        }
        let err = Reading::new(uq8, "", Some(Status::Ok), 50.0, today()).expect_err("no period");
        assert_eq!(
            (err.reason(), err.field().as_str()),
            ("FIELD_REQUIRED", "measurement.period")
        );
        let err = Reading::new(uq8, "2025", None, 50.0, today()).expect_err("no status");
        assert_eq!(
            (err.reason(), err.field().as_str()),
            ("FIELD_REQUIRED", "measurement.status")
        );
    }

    /// Values must be possible in the KPI's unit: percentages 0..=100, counts whole and not
    /// negative, NPS -100..=100 (DOMAIN.md: NPS = % promoters minus % detractors).
    #[test]
    fn values_must_be_possible_in_the_unit() {
        let pct = kpi("UQ0001");
        for v in [0.0, 100.0, 97.25] {
            assert!(Reading::new(pct, "2026-Q1", Some(Status::Ok), v, today()).is_ok());
        }
        for v in [120.0, -0.5, 100.000_001] {
            let err = Reading::new(pct, "2026-Q1", Some(Status::Ok), v, today()).expect_err("r");
            assert_eq!(
                (err.reason(), err.field().as_str()),
                ("VALUE_OUT_OF_RANGE", "measurement.value")
            );
        }
        let count = kpi("UQ0006");
        assert!(Reading::new(count, "2025", Some(Status::Ok), 37.0, today()).is_ok());
        let err = Reading::new(count, "2025", Some(Status::Ok), 3.5, today()).expect_err("w");
        assert_eq!(err.reason(), "VALUE_NOT_WHOLE");
        let err = Reading::new(count, "2025", Some(Status::Ok), -1.0, today()).expect_err("n");
        assert_eq!(err.reason(), "VALUE_OUT_OF_RANGE");
        let nps = kpi("UQ0011");
        assert!(Reading::new(nps, "2025", Some(Status::Ok), -35.0, today()).is_ok());
        assert!(Reading::new(nps, "2025", Some(Status::Ok), -101.0, today()).is_err());
        // A local KPI in euros may be negative (a balance).
        assert!(ValueRange::for_unit("EUR").contains(-1_000.0));
    }

    /// A reading must use the KPI's own period form, and a period not yet begun cannot have
    /// been measured.
    #[test]
    fn readings_use_the_kpis_period_and_a_begun_one() {
        let quarterly = kpi("UQ0001");
        let err = Reading::new(quarterly, "2026-03", Some(Status::Ok), 90.0, today())
            .expect_err("month for a quarterly KPI");
        assert_eq!(err.reason(), "INVALID_PERIOD");
        assert!(err.to_string().contains("2026-Q1"), "{err}");
        let err = Reading::new(quarterly, "2027-Q1", Some(Status::Ok), 90.0, today())
            .expect_err("future");
        assert_eq!(
            (err.reason(), err.field().as_str()),
            ("PERIOD_NOT_BEGUN", "measurement.period")
        );
        assert!(Reading::new(quarterly, "2026-Q4", Some(Status::Ok), 90.0, today()).is_ok());
        let monthly = kpi("UQ0009");
        assert!(Reading::new(monthly, "2026-11", Some(Status::Ok), 12.0, today()).is_ok());
        assert!(Reading::new(monthly, "2026-12", Some(Status::Ok), 12.0, today()).is_err());
    }

    /// DOMAIN.md "a correction keeps the earlier value in a history": only a change is a
    /// correction.
    #[test]
    fn only_a_change_is_a_correction() {
        let r = Reading::new(kpi("UQ0008"), "2025", Some(Status::Ok), 70.0, today()).expect("ok");
        assert!(!r.corrects(Status::Ok, Some(70.0)));
        assert!(r.corrects(Status::Ok, Some(69.0)));
        assert!(r.corrects(Status::Confidential, None));
    }

    /// The standard catalogue: ids `UQ` + 4 digits, unique, in order (ListKpis pages by id);
    /// every field set (ISO 9001:2015 6.2: measurable, with a target and an owner); targets
    /// possible in their unit; about ten KPIs.
    #[test]
    fn the_standard_catalogue_is_complete_and_ordered() {
        assert!((10..=20).contains(&STANDARD_KPIS.len()));
        let mut ids = HashSet::new();
        for (i, k) in STANDARD_KPIS.iter().enumerate() {
            let id = k.id.as_ref();
            assert!(
                id.len() == 6
                    && id.starts_with(STANDARD_PREFIX)
                    && id[2..].bytes().all(|b| b.is_ascii_digit()),
                "{id}"
            );
            assert!(ids.insert(id), "duplicate {id}");
            if i > 0 {
                assert!(STANDARD_KPIS[i - 1].id < k.id, "{id} out of order");
            }
            for text in [&k.title, &k.definition, &k.unit, &k.owner_office] {
                assert!(!text.trim().is_empty(), "{id} has an empty text");
            }
            assert!(k.standard, "{id}");
            assert!(k.target.is_finite() && k.tolerance.is_finite() && k.tolerance >= 0.0);
            if k.normalisation == Normalisation::None {
                assert!(k.value_range().contains(k.target), "{id} target");
            }
            assert_eq!(standard_kpi(id), Some(k));
        }
        assert!(standard_kpi("UQ9999").is_none());
        // Both polarities, both sources, every period and normalisation are represented.
        let has = |f: &dyn Fn(&Kpi) -> bool| STANDARD_KPIS.iter().any(f);
        assert!(has(&|k| k.polarity == Polarity::LowerIsBetter));
        assert!(has(&|k| k.source == Source::Computed) && has(&|k| k.source == Source::Reported));
        for kind in [PeriodKind::Month, PeriodKind::Quarter, PeriodKind::Year] {
            assert!(has(&|k| k.period == kind), "{kind}");
        }
        assert!(has(
            &|k| k.normalisation == Normalisation::Per1000Inhabitants
        ));
    }

    /// Stored codes round-trip; they are data and must not change.
    #[test]
    fn codes_round_trip() {
        for s in [
            Status::Ok,
            Status::Missing,
            Status::NotApplicable,
            Status::Confidential,
        ] {
            assert_eq!(Status::from_code(s.code()), Some(s));
        }
        assert_eq!(Status::Ok.code(), "OK");
        assert_eq!(
            Normalisation::from_code("PER_1000_INHABITANTS"),
            Some(Normalisation::Per1000Inhabitants)
        );
        assert_eq!(PeriodKind::from_code("WEEK"), None);
    }

    /// Local KPIs live beside the standard catalogue: their ids may not take the reserved
    /// prefix, and they follow the same completeness rules.
    #[test]
    fn local_kpis_are_checked_and_merge_in_order() {
        let mut local = kpi("UQ0008").clone();
        local.standard = false;
        local.id = "SZ_VERDE".into();
        assert!(check_local_kpi(&local).is_ok());
        for (id, field) in [("UQ0100", "kpi.kpi_id"), ("sz1", "kpi.kpi_id")] {
            let mut bad = local.clone();
            bad.id = id.to_owned().into();
            let err = check_local_kpi(&bad).expect_err(id);
            assert_eq!((err.reason(), err.field().as_str()), ("INVALID_KPI", field));
        }
        let mut bad = local.clone();
        bad.owner_office = " ".into();
        assert_eq!(
            check_local_kpi(&bad).expect_err("office").field(),
            "kpi.owner_office"
        );
        let mut bad = local.clone();
        bad.target = 150.0;
        assert_eq!(check_local_kpi(&bad).expect_err("t").field(), "kpi.target");

        let ids = |page: Vec<Kpi>| {
            page.into_iter()
                .map(|k| k.id.into_owned())
                .collect::<Vec<_>>()
        };
        let mut early = local.clone();
        early.id = "AB01".into();
        let mut late = local.clone();
        late.id = "ZZ01".into();
        // First page: locals sorting before `UQ` come first.
        let page = catalogue_page(vec![early, local.clone()], None, 3);
        assert_eq!(ids(page), vec!["AB01", "SZ_VERDE", "UQ0001"]);
        // After a cursor: standard KPIs after it, then the locals after it.
        let page = catalogue_page(vec![late], Some("UQ0010"), 5);
        assert_eq!(ids(page), vec!["UQ0011", "UQ0012", "ZZ01"]);
    }
}
