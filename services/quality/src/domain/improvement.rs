//! Improvement (ISO 9001:2015; DOMAIN.md "Quality and benchmarks"): quality objectives that are
//! measurable, with a target, an owner and a due date (6.2); nonconformities with their root
//! cause and corrective actions, whose effectiveness is checked before the nonconformity is
//! closed (10.2). Dates are calendar dates in Italy ([`super::calendar`]).

use std::fmt;

use chrono::NaiveDate;

use super::Kpi;

/// The status of a quality objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectiveStatus {
    /// Set, work not started.
    Planned,
    /// Being pursued.
    InProgress,
    /// Reached.
    Achieved,
    /// Not reached.
    NotAchieved,
    /// Withdrawn.
    Cancelled,
}

codes!(ObjectiveStatus {
    Planned => "PLANNED",
    InProgress => "IN_PROGRESS",
    Achieved => "ACHIEVED",
    NotAchieved => "NOT_ACHIEVED",
    Cancelled => "CANCELLED",
});

impl ObjectiveStatus {
    /// Whether the objective is still being pursued (PLANNED or IN_PROGRESS).
    pub fn is_open(self) -> bool {
        matches!(self, Self::Planned | Self::InProgress)
    }

    /// Checks a move: PLANNED to IN_PROGRESS or CANCELLED; IN_PROGRESS to ACHIEVED,
    /// NOT_ACHIEVED or CANCELLED; nothing from the others.
    pub fn check_transition(self, to: Self) -> Result<(), ImprovementError> {
        use ObjectiveStatus::{Achieved, Cancelled, InProgress, NotAchieved, Planned};
        let allowed = matches!(
            (self, to),
            (Planned, InProgress | Cancelled) | (InProgress, Achieved | NotAchieved | Cancelled)
        );
        if allowed {
            Ok(())
        } else {
            Err(ImprovementError::InvalidTransition { from: self, to })
        }
    }
}

/// Whether something open with `due` is overdue on `today`: due before today.
pub fn is_overdue(due: NaiveDate, today: NaiveDate) -> bool {
    due < today
}

/// Where a nonconformity was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonconformitySource {
    /// An audit.
    Audit,
    /// A citizen's complaint.
    Complaint,
    /// A KPI off its target.
    KpiOffTarget,
    /// Anything else.
    Other,
}

codes!(NonconformitySource {
    Audit => "AUDIT",
    Complaint => "COMPLAINT",
    KpiOffTarget => "KPI_OFF_TARGET",
    Other => "OTHER",
});

/// The result of the check of a corrective action's effectiveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effectiveness {
    /// The action removed the cause.
    Effective,
    /// It did not.
    NotEffective,
}

codes!(Effectiveness {
    Effective => "EFFECTIVE",
    NotEffective => "NOT_EFFECTIVE",
});

/// The longest objective title.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest description of how a free-text objective is measured.
pub const MAX_MEASURE_CHARS: usize = 1_000;
/// The longest office name.
pub const MAX_OFFICE_CHARS: usize = 128;
/// The longest description, root cause or action.
pub const MAX_LONG_TEXT_CHARS: usize = 4_000;

/// A quality objective as set (ISO 9001:2015 6.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// What is to be achieved.
    pub title: String,
    /// The KPI of the comune that measures it, if any.
    pub kpi_id: Option<String>,
    /// How it is measured, when there is no KPI (may also accompany one).
    pub measure: String,
    /// The target value.
    pub target_value: f64,
    /// The office responsible.
    pub owner_office: String,
    /// When it is due.
    pub due_date: NaiveDate,
}

/// Checks a text field: trimmed, `min..=max` characters.
fn text(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<String, ImprovementError> {
    let value = value.trim();
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ImprovementError::InvalidText { field, min, max });
    }
    Ok(value.to_owned())
}

impl Objective {
    /// Checks an objective: a title, an owner office, a finite target (possible in the KPI's
    /// unit when a KPI measures it), and a KPI or a description of the measure (6.2: objectives
    /// are measurable).
    pub fn new(
        title: &str,
        kpi: Option<&Kpi>,
        measure: &str,
        target_value: f64,
        owner_office: &str,
        due_date: NaiveDate,
    ) -> Result<Self, ImprovementError> {
        let title = text("objective.title", title, 1, MAX_TITLE_CHARS)?;
        let measure = text("objective.measure", measure, 0, MAX_MEASURE_CHARS)?;
        if kpi.is_none() && measure.is_empty() {
            return Err(ImprovementError::NotMeasurable);
        }
        if !target_value.is_finite() {
            return Err(ImprovementError::InvalidTarget {
                why: "must be a finite number".into(),
            });
        }
        if let Some(kpi) = kpi {
            let range = kpi.value_range();
            if !range.contains(target_value) {
                return Err(ImprovementError::InvalidTarget {
                    why: format!("not possible in `{}` ({range})", kpi.unit),
                });
            }
        }
        let owner_office = text("objective.owner_office", owner_office, 1, MAX_OFFICE_CHARS)?;
        Ok(Self {
            title,
            kpi_id: kpi.map(|k| k.id.to_string()),
            measure,
            target_value,
            owner_office,
            due_date,
        })
    }
}

/// A nonconformity as recorded (ISO 9001:2015 10.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonconformity {
    /// What does not conform.
    pub description: String,
    /// Where it was found.
    pub source: NonconformitySource,
    /// When it was detected.
    pub detection_date: NaiveDate,
    /// Its root cause; empty until analysed.
    pub root_cause: String,
}

impl Nonconformity {
    /// Checks a nonconformity: a description, a source, a detection date not after `today`, an
    /// optional root cause.
    pub fn new(
        description: &str,
        source: Option<NonconformitySource>,
        detection_date: NaiveDate,
        root_cause: &str,
        today: NaiveDate,
    ) -> Result<Self, ImprovementError> {
        let description = text(
            "nonconformity.description",
            description,
            1,
            MAX_LONG_TEXT_CHARS,
        )?;
        let source = source.ok_or(ImprovementError::Required("nonconformity.source"))?;
        if detection_date > today {
            return Err(ImprovementError::DateInFuture {
                field: "nonconformity.detection_date",
            });
        }
        let root_cause = check_root_cause("nonconformity.root_cause", root_cause, 0)?;
        Ok(Self {
            description,
            source,
            detection_date,
            root_cause,
        })
    }
}

/// Checks a root cause given in `field`: at most 4,000 characters, at least `min`.
pub fn check_root_cause(
    field: &'static str,
    root_cause: &str,
    min: usize,
) -> Result<String, ImprovementError> {
    text(field, root_cause, min, MAX_LONG_TEXT_CHARS)
}

/// A corrective action as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrectiveAction {
    /// What is to be done.
    pub action: String,
    /// The office responsible.
    pub owner_office: String,
    /// When it is due.
    pub due_date: NaiveDate,
}

impl CorrectiveAction {
    /// Checks a corrective action: what, who, by when.
    pub fn new(
        action: &str,
        owner_office: &str,
        due_date: NaiveDate,
    ) -> Result<Self, ImprovementError> {
        Ok(Self {
            action: text("corrective_action.action", action, 1, MAX_LONG_TEXT_CHARS)?,
            owner_office: text(
                "corrective_action.owner_office",
                owner_office,
                1,
                MAX_OFFICE_CHARS,
            )?,
            due_date,
        })
    }
}

/// The last check of a corrective action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// When.
    pub date: NaiveDate,
    /// With what result.
    pub result: Effectiveness,
}

impl Check {
    /// Checks a check: dated not after `today` and not before the nonconformity's detection.
    pub fn new(
        date: NaiveDate,
        result: Effectiveness,
        detection_date: NaiveDate,
        today: NaiveDate,
    ) -> Result<Self, ImprovementError> {
        if date > today {
            return Err(ImprovementError::DateInFuture {
                field: "check_date",
            });
        }
        if date < detection_date {
            return Err(ImprovementError::CheckBeforeDetection);
        }
        Ok(Self { date, result })
    }
}

/// Whether an action is overdue on `today`: not checked effective, its due date past.
pub fn action_overdue(due_date: NaiveDate, check: Option<Check>, today: NaiveDate) -> bool {
    check.is_none_or(|c| c.result != Effectiveness::Effective) && is_overdue(due_date, today)
}

/// Checks that a nonconformity may close (10.2: corrective actions with their results): it is
/// open, has a root cause, at least one corrective action, and every action's last check found
/// it effective.
pub fn check_closable(
    closed: bool,
    root_cause: &str,
    checks: &[Option<Check>],
) -> Result<(), ImprovementError> {
    if closed {
        return Err(ImprovementError::Closed);
    }
    if root_cause.trim().is_empty() {
        return Err(ImprovementError::RootCauseMissing);
    }
    let pending = checks
        .iter()
        .filter(|c| c.is_none_or(|c| c.result != Effectiveness::Effective))
        .count();
    if checks.is_empty() || pending > 0 {
        return Err(ImprovementError::ActionsNotEffective {
            actions: checks.len(),
            pending,
        });
    }
    Ok(())
}

/// What the improvement rules refuse. Each has a stable UPPER_SNAKE reason
/// ([`ImprovementError::reason`]) and the request field at fault ([`ImprovementError::field`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImprovementError {
    /// A required field is missing.
    #[error("{0} is required")]
    Required(&'static str),
    /// A text out of its length.
    #[error("{field} must be {min} to {max} characters")]
    InvalidText {
        /// The field.
        field: &'static str,
        /// Fewest characters.
        min: usize,
        /// Most characters.
        max: usize,
    },
    /// An objective with neither a KPI nor a measure.
    #[error("an objective must be measurable: give objective.kpi or objective.measure")]
    NotMeasurable,
    /// An impossible target.
    #[error("objective.target_value {why}")]
    InvalidTarget {
        /// Why.
        why: String,
    },
    /// A date after today.
    #[error("{field} is in the future")]
    DateInFuture {
        /// The field.
        field: &'static str,
    },
    /// An effectiveness check dated before the nonconformity was detected.
    #[error("check_date is before the nonconformity was detected")]
    CheckBeforeDetection,
    /// A move of an objective the lifecycle does not allow.
    #[error(
        "an objective {from} cannot become {to}: PLANNED goes to IN_PROGRESS or CANCELLED, IN_PROGRESS to ACHIEVED, NOT_ACHIEVED or CANCELLED"
    )]
    InvalidTransition {
        /// The current status.
        from: ObjectiveStatus,
        /// The status asked for.
        to: ObjectiveStatus,
    },
    /// A change to a closed nonconformity.
    #[error("the nonconformity is closed")]
    Closed,
    /// Closing without a root cause.
    #[error("the nonconformity has no root cause yet (ISO 9001:2015 10.2)")]
    RootCauseMissing,
    /// Closing before every corrective action was checked effective.
    #[error(
        "a nonconformity closes only when its corrective actions were checked effective (ISO 9001:2015 10.2): {pending} of {actions} are not"
    )]
    ActionsNotEffective {
        /// Its actions.
        actions: usize,
        /// Of those, not checked effective (all, when there are none).
        pending: usize,
    },
}

impl ImprovementError {
    /// The stable UPPER_SNAKE reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Required(_) | Self::NotMeasurable => "FIELD_REQUIRED",
            Self::InvalidText { .. } => "INVALID_TEXT",
            Self::InvalidTarget { .. } => "INVALID_TARGET",
            Self::DateInFuture { .. } => "DATE_IN_FUTURE",
            Self::CheckBeforeDetection => "INVALID_CHECK_DATE",
            Self::InvalidTransition { .. } => "INVALID_STATUS_TRANSITION",
            Self::Closed => "NONCONFORMITY_CLOSED",
            Self::RootCauseMissing => "ROOT_CAUSE_MISSING",
            Self::ActionsNotEffective { .. } => "CORRECTIVE_ACTIONS_NOT_EFFECTIVE",
        }
    }

    /// The request field at fault, as a path.
    pub fn field(&self) -> String {
        match self {
            Self::Required(field)
            | Self::InvalidText { field, .. }
            | Self::DateInFuture { field } => (*field).into(),
            Self::NotMeasurable => "objective.measure".into(),
            Self::InvalidTarget { .. } => "objective.target_value".into(),
            Self::CheckBeforeDetection => "check_date".into(),
            Self::InvalidTransition { .. } => "status".into(),
            Self::Closed | Self::RootCauseMissing | Self::ActionsNotEffective { .. } => {
                "name".into()
            }
        }
    }

    /// Whether the request is well formed but the state of the resource refuses it.
    pub fn is_precondition(&self) -> bool {
        matches!(
            self,
            Self::InvalidTransition { .. }
                | Self::Closed
                | Self::RootCauseMissing
                | Self::ActionsNotEffective { .. }
        )
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.date, self.result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    /// ISO 9001:2015 10.2: a nonconformity closes only once its actions were checked effective.
    #[test]
    fn closing_needs_every_action_checked_effective() {
        let effective = Some(Check {
            date: day(2026, 3, 1),
            result: Effectiveness::Effective,
        });
        let not = Some(Check {
            date: day(2026, 3, 1),
            result: Effectiveness::NotEffective,
        });
        assert_eq!(
            check_closable(false, "cause", &[]),
            Err(ImprovementError::ActionsNotEffective {
                actions: 0,
                pending: 0
            })
        );
        assert!(check_closable(false, "cause", &[effective, None]).is_err());
        assert!(check_closable(false, "cause", &[effective, not]).is_err());
        assert_eq!(
            check_closable(false, " ", &[effective]),
            Err(ImprovementError::RootCauseMissing)
        );
        assert_eq!(
            check_closable(true, "cause", &[effective]),
            Err(ImprovementError::Closed)
        );
        assert_eq!(
            check_closable(false, "cause", &[effective, effective]),
            Ok(())
        );
    }

    #[test]
    fn objective_lifecycle_moves() {
        use ObjectiveStatus::*;
        assert!(Planned.check_transition(InProgress).is_ok());
        assert!(Planned.check_transition(Cancelled).is_ok());
        assert!(Planned.check_transition(Achieved).is_err());
        assert!(InProgress.check_transition(Achieved).is_ok());
        assert!(InProgress.check_transition(NotAchieved).is_ok());
        assert!(Achieved.check_transition(InProgress).is_err());
        assert!(Cancelled.check_transition(Planned).is_err());
    }

    #[test]
    fn overdue_is_strictly_after_the_due_date() {
        let due = day(2026, 3, 31);
        assert!(!action_overdue(due, None, day(2026, 3, 31)));
        assert!(action_overdue(due, None, day(2026, 4, 1)));
        let effective = Some(Check {
            date: day(2026, 3, 30),
            result: Effectiveness::Effective,
        });
        assert!(!action_overdue(due, effective, day(2026, 4, 1)));
    }
}
