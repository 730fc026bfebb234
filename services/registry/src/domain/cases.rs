//! Cases (pratiche, istanze) under Legge 241/1990 (DOMAIN.md "Registry", Cases), with no I/O:
//! procedure types and their legal deadline, the state machine of a case, and its clock.
//!
//! The clock is computed from the history, never stored ([`clock`]): deadline = submission
//! date + legal days + suspended days, in calendar days of the Italian civil date
//! ([`crate::domain::protocol::italian_date`]); a deadline that falls on a day that is not a
//! working day (a Saturday, a Sunday, a national holiday: [`unione_kit::italy`]) moves to the
//! next working day, as terms are computed in Italian administrative practice (art. 2963
//! c.c., art. 155 c.p.c.). Two suspensions exist:
//! - an integration request (art. 2 c. 7): once per case, counted for at most
//!   [`MAX_INTEGRATION_DAYS`] days. **Domain decision:** after 30 days the clock resumes by
//!   itself, whether or not the applicant has answered; the case stays waiting for the
//!   integration (the applicant may still send it, the office may still decide), but the
//!   days beyond the 30th run against the deadline.
//! - a refusal notice (art. 10-bis): the applicant has [`ANSWER_DAYS`] days to answer; the
//!   clock stops from the notice to the answer, or for [`ANSWER_DAYS`] days without one.
//!
//! A period of suspension is counted from the day it starts to the day it ends (a notice
//! answered on the day it was sent suspends nothing).

use chrono::{Duration, NaiveDate};

use crate::domain::protocol::italian_date;

/// The default legal deadline (L. 241/1990 art. 2 c. 2).
pub const DEFAULT_LEGAL_DAYS: i64 = 30;
/// The longest deadline a regulation may set (art. 2 c. 3).
pub const MAX_LEGAL_DAYS: i64 = 90;
/// The longest deadline of a complex procedure (art. 2 c. 4).
pub const MAX_COMPLEX_LEGAL_DAYS: i64 = 180;
/// The longest suspension for an integration (art. 2 c. 7).
pub const MAX_INTEGRATION_DAYS: i64 = 30;
/// The days the applicant has to answer a refusal notice (art. 10-bis).
pub const ANSWER_DAYS: i64 = 10;
/// Longest title, subject, office, classification, reason, in characters.
pub const MAX_TEXT_CHARS: usize = 500;
/// Longest free-text data of an application, in characters.
pub const MAX_DATA_CHARS: usize = 100_000;

/// A rule of cases broken by a request. Each variant has a stable reason
/// ([`CaseError::reason`]), names the field at fault when there is one ([`CaseError::field`])
/// and falls in one [`CaseErrorClass`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// A required field is empty.
    #[error("{field} is required")]
    Required {
        /// The field path.
        field: &'static str,
    },
    /// A text field is longer than allowed.
    #[error("{field} must be at most {max} characters")]
    TooLong {
        /// The field path.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// A text field holds control characters.
    #[error("{field} must not contain control characters")]
    InvalidCharacters {
        /// The field path.
        field: &'static str,
    },
    /// The procedure code is not 1 to 32 upper-case letters, digits, `-` or `_`.
    #[error("procedure_type.code must be 1 to 32 upper-case letters, digits, '-' or '_'")]
    InvalidCode,
    /// The legal deadline is outside what the law allows.
    #[error(
        "procedure_type.legal_days must be 1 to {max} (90, or 180 for a complex procedure; 0 for the default 30)"
    )]
    InvalidLegalDays {
        /// The limit that applies.
        max: i64,
    },
    /// A procedure type with this code already exists in the comune.
    #[error("a procedure type with this code already exists in this comune")]
    ProcedureTypeExists,
    /// The applicant is not a valid codice fiscale.
    #[error("case.applicant is not a valid codice fiscale")]
    InvalidApplicant,
    /// The action is not allowed in the case's state.
    #[error("a case in state {state} cannot be {action}")]
    InvalidTransition {
        /// The state's code.
        state: &'static str,
        /// The action, as a past participle.
        action: &'static str,
    },
    /// An integration was already requested: the clock is suspended once only.
    #[error("an integration was already requested for this case: the clock is suspended once")]
    IntegrationAlreadyRequested,
    /// A refusal notice was already sent.
    #[error("a refusal notice was already sent for this case")]
    RefusalNoticeAlreadySent,
    /// A rejection needs a refusal notice first (art. 10-bis).
    #[error("a case can be rejected only after a refusal notice (L. 241/1990 art. 10-bis)")]
    RefusalNoticeRequired,
    /// The applicant's 10 days to answer the refusal notice are not over.
    #[error("the applicant's 10 days to answer the refusal notice are not over")]
    AnswerPeriodOpen,
    /// The applicant's 10 days to answer the refusal notice are over.
    #[error("the 10 days to answer the refusal notice are over")]
    AnswerPeriodOver,
}

/// How a [`CaseError`] is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseErrorClass {
    /// Invalid input.
    Invalid,
    /// Already exists.
    Conflict,
    /// The case is not in a state that allows the request.
    FailedPrecondition,
}

impl CaseError {
    /// The stable UPPER_SNAKE_CASE reason of the `ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Required { .. } => "FIELD_REQUIRED",
            Self::TooLong { .. } => "FIELD_TOO_LONG",
            Self::InvalidCharacters { .. } => "INVALID_CHARACTERS",
            Self::InvalidCode => "INVALID_PROCEDURE_CODE",
            Self::InvalidLegalDays { .. } => "INVALID_LEGAL_DAYS",
            Self::ProcedureTypeExists => "PROCEDURE_TYPE_EXISTS",
            Self::InvalidApplicant => "INVALID_CODICE_FISCALE",
            Self::InvalidTransition { .. } => "INVALID_CASE_TRANSITION",
            Self::IntegrationAlreadyRequested => "INTEGRATION_ALREADY_REQUESTED",
            Self::RefusalNoticeAlreadySent => "REFUSAL_NOTICE_ALREADY_SENT",
            Self::RefusalNoticeRequired => "REFUSAL_NOTICE_REQUIRED",
            Self::AnswerPeriodOpen => "ANSWER_PERIOD_OPEN",
            Self::AnswerPeriodOver => "ANSWER_PERIOD_OVER",
        }
    }

    /// The request field at fault, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Required { field }
            | Self::TooLong { field, .. }
            | Self::InvalidCharacters { field } => Some(field),
            Self::InvalidCode | Self::ProcedureTypeExists => Some("procedure_type.code"),
            Self::InvalidLegalDays { .. } => Some("procedure_type.legal_days"),
            Self::InvalidApplicant => Some("case.applicant"),
            _ => Some("name"),
        }
    }

    /// How the error is reported.
    pub fn class(&self) -> CaseErrorClass {
        match self {
            Self::Required { .. }
            | Self::TooLong { .. }
            | Self::InvalidCharacters { .. }
            | Self::InvalidCode
            | Self::InvalidLegalDays { .. }
            | Self::InvalidApplicant => CaseErrorClass::Invalid,
            Self::ProcedureTypeExists => CaseErrorClass::Conflict,
            _ => CaseErrorClass::FailedPrecondition,
        }
    }
}

/// A required free-text field: trimmed, non-empty, at most `max` characters, no control
/// characters.
pub fn text(field: &'static str, value: &str, max: usize) -> Result<String, CaseError> {
    let value = optional_text(field, value, max)?;
    if value.is_empty() {
        return Err(CaseError::Required { field });
    }
    Ok(value)
}

/// An optional free-text field: trimmed, at most `max` characters, no control characters.
pub fn optional_text(field: &'static str, value: &str, max: usize) -> Result<String, CaseError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(CaseError::TooLong { field, max });
    }
    if value.chars().any(char::is_control) {
        return Err(CaseError::InvalidCharacters { field });
    }
    Ok(value.to_owned())
}

/// Free text that may hold line breaks (the data of an application): at most `max`
/// characters, no control characters but newlines and tabs.
pub fn multiline_text(field: &'static str, value: &str, max: usize) -> Result<String, CaseError> {
    if value.chars().count() > max {
        return Err(CaseError::TooLong { field, max });
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(CaseError::InvalidCharacters { field });
    }
    Ok(value.to_owned())
}

/// A procedure type as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcedureType {
    /// The code, unique in the comune.
    pub code: String,
    /// The title.
    pub title: String,
    /// The legal deadline in days.
    pub legal_days: i64,
    /// A complex procedure (deadline up to 180 days).
    pub complex: bool,
    /// The owning office.
    pub office: String,
    /// The classification its cases are registered with.
    pub classification: String,
}

/// A procedure type as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcedureTypeDraft {
    /// The code.
    pub code: String,
    /// The title.
    pub title: String,
    /// The legal deadline in days; 0 for the default.
    pub legal_days: i64,
    /// Complex.
    pub complex: bool,
    /// The owning office.
    pub office: String,
    /// The classification.
    pub classification: String,
}

impl ProcedureTypeDraft {
    /// Checks a procedure type (L. 241/1990 art. 2): a code of 1 to 32 upper-case letters,
    /// digits, `-` or `_`; a title, office and classification; legal days 0 (the default
    /// [`DEFAULT_LEGAL_DAYS`]) or 1 to [`MAX_LEGAL_DAYS`], or to [`MAX_COMPLEX_LEGAL_DAYS`]
    /// when complex.
    pub fn validate(self) -> Result<ProcedureType, CaseError> {
        let code = self.code.trim();
        if code.is_empty() {
            return Err(CaseError::Required {
                field: "procedure_type.code",
            });
        }
        if code.len() > 32
            || !code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(CaseError::InvalidCode);
        }
        let title = text("procedure_type.title", &self.title, MAX_TEXT_CHARS)?;
        let max = if self.complex {
            MAX_COMPLEX_LEGAL_DAYS
        } else {
            MAX_LEGAL_DAYS
        };
        let legal_days = match self.legal_days {
            0 => DEFAULT_LEGAL_DAYS,
            d if (1..=max).contains(&d) => d,
            _ => return Err(CaseError::InvalidLegalDays { max }),
        };
        let office = text("procedure_type.office", &self.office, MAX_TEXT_CHARS)?;
        let classification = text(
            "procedure_type.classification",
            &self.classification,
            MAX_TEXT_CHARS,
        )?;
        Ok(ProcedureType {
            code: code.to_owned(),
            title,
            legal_days,
            complex: self.complex,
            office,
            classification,
        })
    }
}

/// The state of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseState {
    /// Submitted and registered in the protocol.
    Submitted,
    /// Taken in charge by the office.
    InProgress,
    /// Waiting for the applicant's integration.
    IntegrationRequested,
    /// A refusal notice was sent; the applicant may answer.
    RefusalNoticeSent,
    /// Accepted.
    Accepted,
    /// Rejected.
    Rejected,
    /// Withdrawn by the applicant.
    Withdrawn,
    /// Cancelled by the office.
    Cancelled,
}

impl CaseState {
    /// Every state.
    pub const ALL: [Self; 8] = [
        Self::Submitted,
        Self::InProgress,
        Self::IntegrationRequested,
        Self::RefusalNoticeSent,
        Self::Accepted,
        Self::Rejected,
        Self::Withdrawn,
        Self::Cancelled,
    ];

    /// The stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Self::Submitted => "SUBMITTED",
            Self::InProgress => "IN_PROGRESS",
            Self::IntegrationRequested => "INTEGRATION_REQUESTED",
            Self::RefusalNoticeSent => "REFUSAL_NOTICE_SENT",
            Self::Accepted => "ACCEPTED",
            Self::Rejected => "REJECTED",
            Self::Withdrawn => "WITHDRAWN",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// The state of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// True for accepted, rejected, withdrawn and cancelled: no transition leaves them.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Accepted | Self::Rejected | Self::Withdrawn | Self::Cancelled
        )
    }
}

/// Who performs an action: the applicant or the office handling the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The applicant (or an operator on their behalf).
    Applicant,
    /// The office.
    Office,
}

/// What a transition does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Submitted (the first entry of every history).
    Submit,
    /// Taken in charge.
    TakeInCharge,
    /// Integration requested (suspends the clock).
    RequestIntegration,
    /// Integration sent (resumes the clock).
    Resubmit,
    /// Refusal notice sent (art. 10-bis; suspends the clock).
    SendRefusalNotice,
    /// Refusal notice answered (resumes the clock).
    AnswerRefusalNotice,
    /// Accepted.
    Accept,
    /// Rejected.
    Reject,
    /// Withdrawn by the applicant.
    Withdraw,
    /// Cancelled by the office.
    Cancel,
}

impl Action {
    /// Every action.
    pub const ALL: [Self; 10] = [
        Self::Submit,
        Self::TakeInCharge,
        Self::RequestIntegration,
        Self::Resubmit,
        Self::SendRefusalNotice,
        Self::AnswerRefusalNotice,
        Self::Accept,
        Self::Reject,
        Self::Withdraw,
        Self::Cancel,
    ];

    /// The stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Self::Submit => "SUBMIT",
            Self::TakeInCharge => "TAKE_IN_CHARGE",
            Self::RequestIntegration => "REQUEST_INTEGRATION",
            Self::Resubmit => "RESUBMIT",
            Self::SendRefusalNotice => "SEND_REFUSAL_NOTICE",
            Self::AnswerRefusalNotice => "ANSWER_REFUSAL_NOTICE",
            Self::Accept => "ACCEPT",
            Self::Reject => "REJECT",
            Self::Withdraw => "WITHDRAW",
            Self::Cancel => "CANCEL",
        }
    }

    /// The action of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.code() == code)
    }

    /// Who performs it.
    pub fn party(self) -> Party {
        match self {
            Self::Submit | Self::Resubmit | Self::AnswerRefusalNotice | Self::Withdraw => {
                Party::Applicant
            }
            _ => Party::Office,
        }
    }

    /// True when the history entry must carry a reason.
    pub fn needs_reason(self) -> bool {
        matches!(
            self,
            Self::RequestIntegration
                | Self::SendRefusalNotice
                | Self::AnswerRefusalNotice
                | Self::Accept
                | Self::Reject
                | Self::Cancel
        )
    }

    fn participle(self) -> &'static str {
        match self {
            Self::Submit => "submitted",
            Self::TakeInCharge => "taken in charge",
            Self::RequestIntegration => "sent an integration request",
            Self::Resubmit => "resubmitted",
            Self::SendRefusalNotice => "sent a refusal notice",
            Self::AnswerRefusalNotice => "answered",
            Self::Accept => "accepted",
            Self::Reject => "rejected",
            Self::Withdraw => "withdrawn",
            Self::Cancel => "cancelled",
        }
    }
}

/// One transition in a case's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Position in the history, from 1.
    pub seq: i64,
    /// What was done.
    pub action: Action,
    /// The state before (`None` for the submission).
    pub from: Option<CaseState>,
    /// The state after.
    pub to: CaseState,
    /// When, microseconds since the epoch.
    pub at: i64,
    /// Who: the principal's opaque id.
    pub actor: String,
    /// Why.
    pub reason: String,
}

impl Transition {
    /// The Italian civil date of the transition.
    pub fn day(&self) -> NaiveDate {
        italian_date(self.at)
    }
}

/// What the state machine looks at: the current state and the history so far.
#[derive(Debug, Clone, Copy)]
pub struct CaseFacts<'a> {
    /// The current state.
    pub state: CaseState,
    /// The history, oldest first.
    pub history: &'a [Transition],
}

impl CaseFacts<'_> {
    fn happened(&self, action: Action) -> bool {
        self.history.iter().any(|t| t.action == action)
    }

    /// The day of the last refusal notice, if one was sent.
    fn notice_day(&self) -> Option<NaiveDate> {
        self.history
            .iter()
            .rev()
            .find(|t| t.action == Action::SendRefusalNotice)
            .map(Transition::day)
    }

    /// The state `action` leads to on `today`, or why it may not happen (DOMAIN.md "Registry",
    /// Cases; L. 241/1990 artt. 2 and 10-bis):
    /// - the office takes a submitted case in charge;
    /// - it may request an integration of a case in progress, once;
    /// - the applicant sends the integration of a case waiting for it;
    /// - the office may send a refusal notice (once) on a case in progress or waiting for an
    ///   integration; the applicant answers within [`ANSWER_DAYS`] days;
    /// - the office accepts a case in progress, waiting for an integration, or under a notice;
    /// - it rejects only after a refusal notice, answered or with its days over;
    /// - the applicant withdraws and the office cancels any open case.
    pub fn next(&self, action: Action, today: NaiveDate) -> Result<CaseState, CaseError> {
        use CaseState as S;
        let invalid = || CaseError::InvalidTransition {
            state: self.state.code(),
            action: action.participle(),
        };
        let answer_until = self.notice_day().map(|d| d + Duration::days(ANSWER_DAYS));
        match (action, self.state) {
            (Action::TakeInCharge, S::Submitted) => Ok(S::InProgress),
            (Action::RequestIntegration, S::InProgress) => {
                if self.happened(Action::RequestIntegration) {
                    Err(CaseError::IntegrationAlreadyRequested)
                } else {
                    Ok(S::IntegrationRequested)
                }
            }
            (Action::RequestIntegration, S::IntegrationRequested) => {
                Err(CaseError::IntegrationAlreadyRequested)
            }
            (Action::Resubmit, S::IntegrationRequested) => Ok(S::InProgress),
            (Action::SendRefusalNotice, S::InProgress | S::IntegrationRequested) => {
                if self.happened(Action::SendRefusalNotice) {
                    Err(CaseError::RefusalNoticeAlreadySent)
                } else {
                    Ok(S::RefusalNoticeSent)
                }
            }
            (Action::AnswerRefusalNotice, S::RefusalNoticeSent) => match answer_until {
                Some(until) if today > until => Err(CaseError::AnswerPeriodOver),
                _ => Ok(S::InProgress),
            },
            (Action::Accept, S::InProgress | S::IntegrationRequested | S::RefusalNoticeSent) => {
                Ok(S::Accepted)
            }
            (Action::Reject, S::RefusalNoticeSent) => match answer_until {
                Some(until) if today > until => Ok(S::Rejected),
                _ => Err(CaseError::AnswerPeriodOpen),
            },
            (Action::Reject, S::InProgress | S::IntegrationRequested) => {
                if self.happened(Action::AnswerRefusalNotice) {
                    Ok(S::Rejected)
                } else {
                    Err(CaseError::RefusalNoticeRequired)
                }
            }
            (Action::Withdraw | Action::Cancel, state) if !state.is_final() => Ok(match action {
                Action::Withdraw => S::Withdrawn,
                _ => S::Cancelled,
            }),
            _ => Err(invalid()),
        }
    }
}

/// Why the clock is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspension {
    /// Waiting for an integration.
    Integration,
    /// Waiting for the answer to a refusal notice.
    RefusalNotice,
}

impl Suspension {
    /// The most days this suspension counts.
    pub fn cap(self) -> i64 {
        match self {
            Self::Integration => MAX_INTEGRATION_DAYS,
            Self::RefusalNotice => ANSWER_DAYS,
        }
    }

    fn of(state: CaseState) -> Option<Self> {
        match state {
            CaseState::IntegrationRequested => Some(Self::Integration),
            CaseState::RefusalNoticeSent => Some(Self::RefusalNotice),
            _ => None,
        }
    }
}

/// The clock of a case on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseClock {
    /// The last day on which the case may be concluded in time.
    pub deadline: NaiveDate,
    /// Days the clock has run since the submission, suspensions excluded.
    pub days_elapsed: i64,
    /// Days from the reference day (today, or the closing day) to the deadline; negative
    /// when overdue.
    pub days_remaining: i64,
    /// The reference day is after the deadline.
    pub overdue: bool,
    /// Why the clock is stopped on the reference day, if it is.
    pub suspension: Option<Suspension>,
    /// Days suspended, each period counted within its cap.
    pub suspended_days: i64,
}

/// The clock of a case submitted on `submitted` with `legal_days`, after `history`, on
/// `today` (or on the day it closed, when closed): deadline = submission date + legal days +
/// suspended days, calendar days (DOMAIN.md "Registry", Cases; L. 241/1990 art. 2), moved to
/// the next working day when it falls on a Saturday, a Sunday or a national holiday (art.
/// 2963 c.c., art. 155 c.p.c.). A
/// suspension counts from the day it starts to the day its state is left, at most its
/// [`Suspension::cap`]; a suspension still open counts to the reference day, and the clock
/// runs again once its cap is reached.
pub fn clock(
    submitted: NaiveDate,
    legal_days: i64,
    history: &[Transition],
    today: NaiveDate,
) -> CaseClock {
    let mut suspended_days = 0;
    let mut open: Option<(Suspension, NaiveDate)> = None;
    let mut reference = today;
    for t in history {
        let day = t.day();
        if let Some((kind, start)) = open.take() {
            suspended_days += (day - start).num_days().clamp(0, kind.cap());
        }
        open = Suspension::of(t.to).map(|kind| (kind, day));
        if t.to.is_final() {
            reference = day;
        }
    }
    let mut suspension = None;
    if let Some((kind, start)) = open {
        let running = (reference - start).num_days().max(0);
        suspended_days += running.min(kind.cap());
        // The last day of the cap is still suspended (the applicant may answer a notice on
        // its tenth day); the clock runs again from the day after.
        if running <= kind.cap() {
            suspension = Some(kind);
        }
    }
    let deadline = unione_kit::italy::working_day_on_or_after(
        submitted + Duration::days(legal_days + suspended_days),
    );
    CaseClock {
        deadline,
        days_elapsed: ((reference - submitted).num_days() - suspended_days).max(0),
        days_remaining: (deadline - reference).num_days(),
        overdue: reference > deadline,
        suspension,
        suspended_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a real day")
    }

    /// Noon in Italy (10:00 UTC in summer, 11:00 UTC in winter; noon is safe for both).
    fn at(date: NaiveDate) -> i64 {
        date.and_hms_opt(10, 0, 0)
            .expect("10:00 exists")
            .and_utc()
            .timestamp_micros()
    }

    fn t(
        seq: i64,
        action: Action,
        from: Option<CaseState>,
        to: CaseState,
        on: NaiveDate,
    ) -> Transition {
        Transition {
            seq,
            action,
            from,
            to,
            at: at(on),
            actor: "x".to_owned(),
            reason: String::new(),
        }
    }

    /// L. 241/1990 art. 2: 30 days by default, up to 90, up to 180 for complex procedures.
    #[test]
    fn legal_days_within_the_law() {
        let draft = |legal_days, complex| ProcedureTypeDraft {
            code: "SUOLO".to_owned(),
            title: "Suolo pubblico".to_owned(),
            legal_days,
            complex,
            office: "SUAP".to_owned(),
            classification: "6.3".to_owned(),
        };
        assert_eq!(draft(0, false).validate().expect("default").legal_days, 30);
        assert_eq!(draft(90, false).validate().expect("90").legal_days, 90);
        assert_eq!(
            draft(91, false).validate(),
            Err(CaseError::InvalidLegalDays { max: 90 })
        );
        assert_eq!(draft(180, true).validate().expect("180").legal_days, 180);
        assert_eq!(
            draft(181, true).validate(),
            Err(CaseError::InvalidLegalDays { max: 180 })
        );
        assert_eq!(
            draft(-1, false).validate().expect_err("negative").field(),
            Some("procedure_type.legal_days")
        );
    }

    /// DOMAIN.md "Registry", Cases: an integration suspends the clock for at most 30 days;
    /// beyond them the clock runs again by itself.
    #[test]
    fn integration_suspension_is_capped_at_30_days() {
        let s = day(2026, 3, 2);
        let history = vec![
            t(1, Action::Submit, None, CaseState::Submitted, s),
            t(
                2,
                Action::TakeInCharge,
                Some(CaseState::Submitted),
                CaseState::InProgress,
                s,
            ),
            t(
                3,
                Action::RequestIntegration,
                Some(CaseState::InProgress),
                CaseState::IntegrationRequested,
                day(2026, 3, 10),
            ),
        ];
        let during = clock(s, 30, &history, day(2026, 3, 20));
        assert_eq!(during.suspension, Some(Suspension::Integration));
        assert_eq!(during.suspended_days, 10);
        assert_eq!(during.days_elapsed, 8);
        let after = clock(s, 30, &history, day(2026, 4, 20));
        assert_eq!(after.suspension, None, "the clock resumed after 30 days");
        assert_eq!(after.suspended_days, 30);
        // 2 March + 30 + 30 is 1 May, Labour Day: the term ends on Monday 4 May.
        assert_eq!(after.deadline, day(2026, 5, 4));
    }

    /// Art. 2963 c.c., art. 155 c.p.c.: a term whose last day is not a working day ends on
    /// the next working day. Submitted on 4 March 2026: 30 days end on Friday 3 April, a
    /// working day; 32 days on Sunday 5 April (Easter), moved past Easter Monday to Tuesday 7.
    #[test]
    fn a_deadline_on_a_holiday_moves_to_the_next_working_day() {
        let s = day(2026, 3, 4);
        let history = vec![t(1, Action::Submit, None, CaseState::Submitted, s)];
        assert_eq!(clock(s, 30, &history, s).deadline, day(2026, 4, 3));
        let easter = clock(s, 32, &history, day(2026, 4, 6));
        assert_eq!(easter.deadline, day(2026, 4, 7));
        assert!(
            !easter.overdue,
            "Easter Monday is before the moved deadline"
        );
        assert_eq!(easter.days_remaining, 1);
        // Saturday 4 April 2026 (31 days): past the weekend and Easter Monday to Tuesday 7.
        assert_eq!(clock(s, 31, &history, s).deadline, day(2026, 4, 7));
        // Saturday 14 March 2026 (12 February + 30 days) moves to Monday 16.
        let feb = day(2026, 2, 12);
        let submitted = vec![t(1, Action::Submit, None, CaseState::Submitted, feb)];
        assert_eq!(clock(feb, 30, &submitted, feb).deadline, day(2026, 3, 16));
    }
}
