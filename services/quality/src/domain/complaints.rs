//! Complaints (ISO 10002; DOMAIN.md "Quality and benchmarks"): a unique id at receipt, then
//! acknowledgement, assessment, response and closure, one step at a time. ISO 10002 sets no
//! deadline: each comune commits to its own in its service charter (20 or 30 days is usual);
//! without one, 5 days to acknowledge and 30 to answer. Deadlines are calendar days from the
//! date of receipt in Italy ([`super::calendar`]).

use std::fmt;

use chrono::{Days, NaiveDate};

use super::Channel;
use super::calendar::rome_date;

/// The status of a complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComplaintStatus {
    /// Registered with its id.
    Received,
    /// Receipt acknowledged to the complainant.
    Acknowledged,
    /// Assessed by the office responsible.
    Assessed,
    /// The response was sent.
    Answered,
    /// Closed.
    Closed,
}

codes!(ComplaintStatus {
    Received => "RECEIVED",
    Acknowledged => "ACKNOWLEDGED",
    Assessed => "ASSESSED",
    Answered => "ANSWERED",
    Closed => "CLOSED",
});

impl ComplaintStatus {
    /// The only status that may follow this one.
    pub fn next(self) -> Option<Self> {
        match self {
            Self::Received => Some(Self::Acknowledged),
            Self::Acknowledged => Some(Self::Assessed),
            Self::Assessed => Some(Self::Answered),
            Self::Answered => Some(Self::Closed),
            Self::Closed => None,
        }
    }

    /// Checks a move from this status to `to`: only to the next one.
    pub fn check_transition(self, to: Self) -> Result<(), ComplaintError> {
        if self.next() == Some(to) {
            Ok(())
        } else {
            Err(ComplaintError::InvalidTransition { from: self, to })
        }
    }
}

/// A comune's commitments for complaints, in calendar days from receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charter {
    /// Days to acknowledge.
    pub acknowledgement_days: i32,
    /// Days to answer.
    pub response_days: i32,
}

/// The most days a charter may commit to.
pub const MAX_CHARTER_DAYS: i32 = 365;

impl Default for Charter {
    /// Without a charter of its own: 5 days to acknowledge, 30 to answer.
    fn default() -> Self {
        Self {
            acknowledgement_days: 5,
            response_days: 30,
        }
    }
}

impl Charter {
    /// Checks commitments: each 1 to [`MAX_CHARTER_DAYS`] days, the response not before the
    /// acknowledgement.
    pub fn new(acknowledgement_days: i32, response_days: i32) -> Result<Self, ComplaintError> {
        let days = 1..=MAX_CHARTER_DAYS;
        if !days.contains(&acknowledgement_days) {
            return Err(ComplaintError::InvalidCharter {
                field: "acknowledgement_days",
                why: format!("1 to {MAX_CHARTER_DAYS} days"),
            });
        }
        if !days.contains(&response_days) || response_days < acknowledgement_days {
            return Err(ComplaintError::InvalidCharter {
                field: "response_days",
                why: format!("1 to {MAX_CHARTER_DAYS} days, not fewer than to acknowledge"),
            });
        }
        Ok(Self {
            acknowledgement_days,
            response_days,
        })
    }

    /// The deadlines of a complaint received at `receive_time` (microseconds since the epoch).
    pub fn deadlines(&self, receive_time: i64) -> Deadlines {
        let received = rome_date(receive_time);
        let plus = |days: i32| {
            received
                .checked_add_days(Days::new(u64::try_from(days).unwrap_or(0)))
                .unwrap_or(NaiveDate::MAX)
        };
        Deadlines {
            acknowledgement: plus(self.acknowledgement_days),
            response: plus(self.response_days),
        }
    }
}

/// The last days to acknowledge and to answer a complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Acknowledged on or before this date is in time.
    pub acknowledgement: NaiveDate,
    /// Answered on or before this date is in time.
    pub response: NaiveDate,
}

/// The longest category.
pub const MAX_CATEGORY_CHARS: usize = 64;
/// The longest text.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// The longest contact.
pub const MAX_CONTACT_CHARS: usize = 256;
/// The longest actor.
pub const MAX_ACTOR_CHARS: usize = 128;

/// A complaint as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intake {
    /// Category.
    pub category: String,
    /// Channel.
    pub channel: Channel,
    /// What the citizen wrote.
    pub text: String,
    /// How to reach the complainant, if given.
    pub contact: Option<String>,
}

impl Intake {
    /// Checks a complaint at intake: a category (at most 64 characters), a channel, a text (at
    /// most 10,000 characters) and an optional contact (at most 256).
    pub fn new(
        category: &str,
        channel: Option<Channel>,
        text: &str,
        contact: &str,
    ) -> Result<Self, ComplaintError> {
        let invalid =
            |field: &'static str, why: String| Err(ComplaintError::InvalidComplaint { field, why });
        let category = category.trim();
        if category.is_empty() || category.chars().count() > MAX_CATEGORY_CHARS {
            return invalid("category", format!("1 to {MAX_CATEGORY_CHARS} characters"));
        }
        let Some(channel) = channel else {
            return invalid("channel", "must be given".into());
        };
        if text.trim().is_empty() || text.chars().count() > MAX_TEXT_CHARS {
            return invalid("text", format!("1 to {MAX_TEXT_CHARS} characters"));
        }
        let contact = contact.trim();
        if contact.chars().count() > MAX_CONTACT_CHARS {
            return invalid("contact", format!("at most {MAX_CONTACT_CHARS} characters"));
        }
        Ok(Self {
            category: category.to_owned(),
            channel,
            text: text.to_owned(),
            contact: (!contact.is_empty()).then(|| contact.to_owned()),
        })
    }
}

/// Checks who makes a change: 1 to 128 characters.
pub fn check_actor(actor: &str) -> Result<(), ComplaintError> {
    let actor = actor.trim();
    if actor.is_empty() || actor.chars().count() > MAX_ACTOR_CHARS {
        return Err(ComplaintError::InvalidActor);
    }
    Ok(())
}

/// What the indicators need to know of one complaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The date of receipt.
    pub received: NaiveDate,
    /// Its deadlines.
    pub deadlines: Deadlines,
    /// The date it was acknowledged, if it was.
    pub acknowledged: Option<NaiveDate>,
    /// The date it was answered, if it was.
    pub answered: Option<NaiveDate>,
    /// Whether it is closed.
    pub closed: bool,
}

/// Complaint indicators of a set of complaints, as of a date.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Indicators {
    /// Complaints.
    pub received: i64,
    /// Acknowledged.
    pub acknowledged: i64,
    /// Answered.
    pub answered: i64,
    /// Closed.
    pub closed: i64,
    /// Not answered, response deadline past.
    pub overdue: i64,
    /// Acknowledged or past the acknowledgement deadline.
    pub acknowledgement_due: i64,
    /// Of those, acknowledged on or before the deadline, in percent (0 when none are due).
    pub acknowledged_in_time_share: f64,
    /// Answered or past the response deadline.
    pub response_due: i64,
    /// Of those, answered on or before the deadline, in percent (0 when none are due).
    pub answered_in_time_share: f64,
    /// Median calendar days from receipt to response of the answered ones (0 when none).
    pub median_response_days: f64,
}

/// The indicators of `complaints` as of `today`. A complaint counts for a deadline once it is
/// due: done, or not done with the deadline past (one still open with time left is neither in
/// time nor late yet).
pub fn indicators(complaints: &[Facts], today: NaiveDate) -> Indicators {
    let count = |pred: &dyn Fn(&Facts) -> bool| {
        i64::try_from(complaints.iter().filter(|c| pred(c)).count()).unwrap_or(i64::MAX)
    };
    let share = |hits: i64, of: i64| {
        if of == 0 {
            0.0
        } else {
            hits as f64 / of as f64 * 100.0
        }
    };
    let acknowledgement_due =
        count(&|c| c.acknowledged.is_some() || today > c.deadlines.acknowledgement);
    let acknowledged_in_time = count(&|c| {
        c.acknowledged
            .is_some_and(|d| d <= c.deadlines.acknowledgement)
    });
    let response_due = count(&|c| c.answered.is_some() || today > c.deadlines.response);
    let answered_in_time = count(&|c| c.answered.is_some_and(|d| d <= c.deadlines.response));
    let mut days: Vec<i64> = complaints
        .iter()
        .filter_map(|c| c.answered.map(|d| (d - c.received).num_days()))
        .collect();
    days.sort_unstable();
    let median_response_days = match days.len() {
        0 => 0.0,
        n if n % 2 == 1 => days[n / 2] as f64,
        n => (days[n / 2 - 1] + days[n / 2]) as f64 / 2.0,
    };
    Indicators {
        received: count(&|_| true),
        acknowledged: count(&|c| c.acknowledged.is_some()),
        answered: count(&|c| c.answered.is_some()),
        closed: count(&|c| c.closed),
        overdue: count(&|c| c.answered.is_none() && today > c.deadlines.response),
        acknowledgement_due,
        acknowledged_in_time_share: share(acknowledged_in_time, acknowledgement_due),
        response_due,
        answered_in_time_share: share(answered_in_time, response_due),
        median_response_days,
    }
}

/// What a complaint request may get wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ComplaintError {
    /// A complaint field at intake.
    #[error("invalid complaint {field}: {why}")]
    InvalidComplaint {
        /// The field.
        field: &'static str,
        /// Why.
        why: String,
    },
    /// A service charter field.
    #[error("invalid service charter {field}: {why}")]
    InvalidCharter {
        /// The field.
        field: &'static str,
        /// Why.
        why: String,
    },
    /// The actor of a change.
    #[error("actor must be 1 to {MAX_ACTOR_CHARS} characters")]
    InvalidActor,
    /// A move the workflow does not allow (a precondition, not invalid input).
    #[error(
        "a complaint {from} cannot become {to}: statuses follow RECEIVED, ACKNOWLEDGED, ASSESSED, ANSWERED, CLOSED one step at a time"
    )]
    InvalidTransition {
        /// The current status.
        from: ComplaintStatus,
        /// The status asked for.
        to: ComplaintStatus,
    },
}

impl ComplaintError {
    /// The stable UPPER_SNAKE reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidComplaint { .. } => "INVALID_COMPLAINT",
            Self::InvalidCharter { .. } => "INVALID_SERVICE_CHARTER",
            Self::InvalidActor => "INVALID_ACTOR",
            Self::InvalidTransition { .. } => "INVALID_STATUS_TRANSITION",
        }
    }

    /// The request field at fault, as a path.
    pub fn field(&self) -> String {
        match self {
            Self::InvalidComplaint { field, .. } => format!("complaint.{field}"),
            Self::InvalidCharter { field, .. } => format!("service_charter.{field}"),
            Self::InvalidActor => "actor".into(),
            Self::InvalidTransition { .. } => "status".into(),
        }
    }

    /// Whether the request is well formed but the complaint's state refuses it.
    pub fn is_precondition(&self) -> bool {
        matches!(self, Self::InvalidTransition { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    /// DOMAIN.md "Complaints (ISO 10002)": receipt, acknowledgement, assessment, response,
    /// closure, in that order, one step at a time.
    #[test]
    fn the_workflow_moves_one_step_forward() {
        use ComplaintStatus::*;
        let all = [Received, Acknowledged, Assessed, Answered, Closed];
        for from in all {
            for to in all {
                let ok = from.check_transition(to).is_ok();
                assert_eq!(ok, from.next() == Some(to), "{from} -> {to}");
            }
        }
        assert_eq!(
            Received
                .check_transition(Answered)
                .expect_err("skip")
                .reason(),
            "INVALID_STATUS_TRANSITION"
        );
        assert!(Closed.next().is_none());
    }

    /// Charters commit to 1-365 days, the response not before the acknowledgement.
    #[test]
    fn charters_are_checked() {
        assert_eq!(Charter::default(), Charter::new(5, 30).expect("valid"));
        assert!(Charter::new(20, 20).is_ok());
        assert_eq!(
            Charter::new(0, 30).expect_err("0").field(),
            "service_charter.acknowledgement_days"
        );
        assert_eq!(
            Charter::new(10, 5).expect_err("<").field(),
            "service_charter.response_days"
        );
        assert_eq!(
            Charter::new(5, 366).expect_err(">").field(),
            "service_charter.response_days"
        );
    }

    /// Indicators: due complaints only; the median of an even count is the mean of the two
    /// middle values.
    #[test]
    fn indicators_count_due_complaints() {
        let d = |received: NaiveDate, ack: Option<NaiveDate>, ans: Option<NaiveDate>| Facts {
            received,
            deadlines: Charter::default()
                .deadlines(crate::domain::calendar::rome_midnight_micros(received) + 3_600_000_000),
            acknowledged: ack,
            answered: ans,
            closed: false,
        };
        let r = day(2026, 3, 2);
        let list = [
            // Acknowledged day 2 (in time), answered day 10 (in time).
            d(r, Some(day(2026, 3, 4)), Some(day(2026, 3, 12))),
            // Acknowledged day 6 (late), answered day 31 (late).
            d(r, Some(day(2026, 3, 8)), Some(day(2026, 4, 2))),
            // Never acknowledged, never answered: both late by 15 April.
            d(r, None, None),
        ];
        let i = indicators(&list, day(2026, 4, 15));
        assert_eq!(
            (i.received, i.acknowledged, i.answered, i.overdue),
            (3, 2, 2, 1)
        );
        assert_eq!((i.acknowledgement_due, i.response_due), (3, 3));
        // 1 of 3 in time, both deadlines: 33.33 %.
        assert!((i.acknowledged_in_time_share - 100.0 / 3.0).abs() < 1e-9);
        assert!((i.answered_in_time_share - 100.0 / 3.0).abs() < 1e-9);
        // Response days 10 and 31: median (10 + 31) / 2 = 20.5.
        assert!((i.median_response_days - 20.5).abs() < 1e-12);
        // On 3 March nothing is due yet.
        let early = indicators(&list[2..], day(2026, 3, 3));
        assert_eq!(
            (early.acknowledgement_due, early.acknowledged_in_time_share),
            (0, 0.0)
        );
    }
}
