//! Households and residence events (DPR 223/1989; DOMAIN.md "Registry", Residents).
//!
//! A household is one or more persons living together with ties of marriage, kinship,
//! affinity, adoption, guardianship or affection, with a head. A resident's residence is a
//! history of events, each effective from a date (the declaration date): the registration,
//! changes of address, then possibly emigration or death, which strike the record off. The
//! residence at any date is the last event effective on or before it; a membership is an
//! interval `[start, end)`. Nothing here does I/O.

use chrono::NaiveDate;

use super::resident::{self, Address, CivilDate};

/// A residence event's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The registration (birth, immigration): the first event, made by CreateResident.
    Registration,
    /// A change of address inside the comune.
    AddressChange,
    /// Moved to another comune or abroad: struck off.
    Emigration,
    /// Died: struck off.
    Death,
    /// The previous position restored (ripristino della posizione anagrafica): an emigration
    /// that never took effect, because the destination refused the move for good. The
    /// person is resident again, at the address and in the household they had, from the
    /// emigration's date. Recorded by the registry itself, never asked for.
    Restoration,
}

impl EventKind {
    /// The stable code stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Self::Registration => "REGISTRATION",
            Self::AddressChange => "ADDRESS_CHANGE",
            Self::Emigration => "EMIGRATION",
            Self::Death => "DEATH",
            Self::Restoration => "RESTORATION",
        }
    }

    /// The kind of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "REGISTRATION" => Some(Self::Registration),
            "ADDRESS_CHANGE" => Some(Self::AddressChange),
            "EMIGRATION" => Some(Self::Emigration),
            "DEATH" => Some(Self::Death),
            "RESTORATION" => Some(Self::Restoration),
            _ => None,
        }
    }

    /// True for the events after which the record is struck off.
    pub fn strikes_off(self) -> bool {
        matches!(self, Self::Emigration | Self::Death)
    }
}

/// The tie of a household member to the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relationship {
    /// The head (intestatario).
    Head,
    /// Husband or wife.
    Spouse,
    /// Partner in a civil union.
    CivilPartner,
    /// Son or daughter.
    Child,
    /// Father or mother.
    Parent,
    /// Brother or sister.
    Sibling,
    /// Another relative by blood.
    OtherRelative,
    /// A relative by marriage.
    InLaw,
    /// Under the head's guardianship.
    Ward,
    /// Living together by affection.
    Cohabitant,
}

impl Relationship {
    const ALL: [(Self, &'static str, &'static str); 10] = [
        (Self::Head, "HEAD", "intestatario"),
        (Self::Spouse, "SPOUSE", "coniuge"),
        (Self::CivilPartner, "CIVIL_PARTNER", "unito civilmente"),
        (Self::Child, "CHILD", "figlio/a"),
        (Self::Parent, "PARENT", "genitore"),
        (Self::Sibling, "SIBLING", "fratello/sorella"),
        (Self::OtherRelative, "OTHER_RELATIVE", "altro parente"),
        (Self::InLaw, "IN_LAW", "affine"),
        (Self::Ward, "WARD", "persona in tutela"),
        (Self::Cohabitant, "COHABITANT", "convivente"),
    ];

    /// The stable code stored in the database.
    pub fn code(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(r, _, _)| *r == self)
            .map(|(_, code, _)| *code)
            .expect("invariant: ALL lists every relationship")
    }

    /// The relationship of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, c, _)| *c == code)
            .map(|(r, _, _)| *r)
    }

    /// The Italian wording printed on a certificate.
    pub fn italian(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(r, _, _)| *r == self)
            .map(|(_, _, it)| *it)
            .expect("invariant: ALL lists every relationship")
    }
}

/// One event of a resident's history, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidenceEvent {
    /// What happened.
    pub kind: EventKind,
    /// From when.
    pub effective_date: NaiveDate,
    /// The address from that date (registration, change of address); empty otherwise.
    pub address: Address,
    /// Emigration: the destination comune's ISTAT code or a country code; empty otherwise.
    pub destination: String,
}

/// A resident's standing at a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Not yet registered.
    NotRegistered,
    /// Resident at this address.
    Resident(Address),
    /// Emigrated on or before the date.
    Emigrated,
    /// Died on or before the date.
    Deceased,
}

/// The standing at `date` given a resident's events in the order they were recorded (their
/// effective dates never go back): the last event effective on or before `date` decides.
pub fn standing_at(history: &[ResidenceEvent], date: NaiveDate) -> Standing {
    let Some(last) = history.iter().rfind(|e| e.effective_date <= date) else {
        return Standing::NotRegistered;
    };
    match last.kind {
        EventKind::Registration | EventKind::AddressChange | EventKind::Restoration => {
            Standing::Resident(last.address.clone())
        }
        EventKind::Emigration => Standing::Emigrated,
        EventKind::Death => Standing::Deceased,
    }
}

/// A membership of a household: the interval `[start_date, end_date)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The household's opaque id.
    pub household_id: String,
    /// The member's opaque resident id.
    pub resident_id: String,
    /// The tie to the head.
    pub relationship: Relationship,
    /// The first day as a member.
    pub start_date: NaiveDate,
    /// The first day no longer a member; `None` while a member.
    pub end_date: Option<NaiveDate>,
}

impl Membership {
    /// True when a member on `date`.
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.start_date <= date && self.end_date.is_none_or(|end| end > date)
    }
}

/// The members on `date`, the head first, then by the day they joined and their id.
pub fn members_at(memberships: &[Membership], date: NaiveDate) -> Vec<Membership> {
    let mut members: Vec<Membership> = memberships
        .iter()
        .filter(|m| m.covers(date))
        .cloned()
        .collect();
    members.sort_by(|a, b| {
        (
            a.relationship != Relationship::Head,
            a.start_date,
            &a.resident_id,
        )
            .cmp(&(
                b.relationship != Relationship::Head,
                b.start_date,
                &b.resident_id,
            ))
    });
    members
}

/// What the register knows of a person when a change about them is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonState {
    /// Struck off (emigrated or dead): no further change is possible.
    pub struck_off: bool,
    /// The latest date anything about the person took effect (registration, residence
    /// events, joining or leaving a household): a new change may not take effect before it.
    pub latest_change: NaiveDate,
}

impl PersonState {
    /// The state of a person from their residence events (oldest first, the registration
    /// first) and their household memberships.
    pub fn of(history: &[ResidenceEvent], memberships: &[Membership]) -> Self {
        let struck_off = history.last().is_some_and(|e| e.kind.strikes_off());
        let latest_change = history
            .iter()
            .map(|e| e.effective_date)
            .chain(memberships.iter().map(|m| m.start_date))
            .chain(memberships.iter().filter_map(|m| m.end_date))
            .max()
            .unwrap_or(NaiveDate::MIN);
        Self {
            struck_off,
            latest_change,
        }
    }
}

/// A residence event as received, before any check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventDraft {
    /// The kind, if given.
    pub kind: Option<EventKind>,
    /// The effective date, if given.
    pub effective_date: Option<CivilDate>,
    /// The new address, if given.
    pub address: Option<Address>,
    /// The destination (emigration).
    pub destination: String,
}

impl EventDraft {
    /// Checks a new event against the person's state, field by field then the rules across
    /// fields and state:
    ///
    /// - the kind given, and not a registration (CreateResident records those);
    /// - the effective date complete and real, not after `today`;
    /// - a change of address carries a valid address and no destination; an emigration a
    ///   destination (a six-digit ISTAT code, or an ISO 3166-1 alpha-2 country other than
    ///   `IT`) and no address; a death neither;
    /// - the person not struck off (FAILED_PRECONDITION): a dead or emigrated resident
    ///   cannot change address, emigrate or die again;
    /// - the effective date not before the person's latest change (the registration first).
    pub fn validate(
        self,
        person: &PersonState,
        today: NaiveDate,
    ) -> Result<ResidenceEvent, HouseholdError> {
        let kind = self
            .kind
            .ok_or_else(|| HouseholdError::required("event.kind"))?;
        if matches!(kind, EventKind::Registration | EventKind::Restoration) {
            return Err(HouseholdError::RegistrationNotAllowed);
        }
        let effective_date = effective("event.effective_date", self.effective_date, today)?;
        let given_address = self.address.filter(|a| *a != Address::default());
        let destination = self.destination.trim().to_owned();
        let (address, destination) = match kind {
            EventKind::AddressChange => {
                if !destination.is_empty() {
                    return Err(HouseholdError::not_applicable("event.destination"));
                }
                let address =
                    resident::address(given_address).map_err(|e| HouseholdError::Invalid {
                        field: e.field().replacen("resident.address", "event.address", 1),
                        reason: e.reason(),
                        message: e
                            .to_string()
                            .replacen("resident.address", "event.address", 1),
                    })?;
                (address, String::new())
            }
            EventKind::Emigration => {
                if given_address.is_some() {
                    return Err(HouseholdError::not_applicable("event.address"));
                }
                if destination.is_empty() {
                    return Err(HouseholdError::required("event.destination"));
                }
                if !is_destination(&destination) {
                    return Err(HouseholdError::InvalidDestination);
                }
                (Address::default(), destination)
            }
            EventKind::Death | EventKind::Registration | EventKind::Restoration => {
                if given_address.is_some() {
                    return Err(HouseholdError::not_applicable("event.address"));
                }
                if !destination.is_empty() {
                    return Err(HouseholdError::not_applicable("event.destination"));
                }
                (Address::default(), String::new())
            }
        };
        check_person(person, effective_date, "event.effective_date")?;
        Ok(ResidenceEvent {
            kind,
            effective_date,
            address,
            destination,
        })
    }
}

/// Checks that a change about `person` may take effect on `date`: the person not struck off
/// (FAILED_PRECONDITION), the date not before their latest change.
pub fn check_person(
    person: &PersonState,
    date: NaiveDate,
    field: &'static str,
) -> Result<(), HouseholdError> {
    if person.struck_off {
        return Err(HouseholdError::StruckOff);
    }
    if date < person.latest_change {
        return Err(HouseholdError::BeforeLatestChange {
            field,
            latest: person.latest_change,
        });
    }
    Ok(())
}

/// A required effective date: complete, real, not after `today`.
pub fn effective(
    field: &'static str,
    given: Option<CivilDate>,
    today: NaiveDate,
) -> Result<NaiveDate, HouseholdError> {
    let date = resident::date(field, given).map_err(|e| HouseholdError::Invalid {
        field: e.field().to_owned(),
        reason: e.reason(),
        message: e.to_string(),
    })?;
    if date > today {
        return Err(HouseholdError::InFuture { field });
    }
    Ok(date)
}

/// An optional date to read at: today when not given; otherwise complete, real, not after
/// `today`.
pub fn as_of(
    field: &'static str,
    given: Option<CivilDate>,
    today: NaiveDate,
) -> Result<NaiveDate, HouseholdError> {
    match given {
        None
        | Some(CivilDate {
            year: 0,
            month: 0,
            day: 0,
        }) => Ok(today),
        given => effective(field, given, today),
    }
}

/// True for an emigration destination: an ISTAT code (six digits) or a foreign country
/// (ISO 3166-1 alpha-2, not `IT`).
pub fn is_destination(code: &str) -> bool {
    let istat = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let country = code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) && code != "IT";
    istat || country
}

/// A rule of households and residence events broken by a request. Messages carry no
/// personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HouseholdError {
    /// A required field is empty.
    #[error("{field} is required")]
    Required {
        /// The field path.
        field: String,
    },
    /// A field is invalid (a date, an address), with the reason of the rule it breaks.
    #[error("{message}")]
    Invalid {
        /// The field path.
        field: String,
        /// The stable reason.
        reason: &'static str,
        /// The explanation.
        message: String,
    },
    /// A field given where this kind of request takes none.
    #[error("{field} does not apply to this request")]
    NotApplicable {
        /// The field path.
        field: String,
    },
    /// An enum field holds a value this version does not know.
    #[error("{field} has an unknown value {value}")]
    UnknownEnumValue {
        /// The field path.
        field: String,
        /// The value received.
        value: i32,
    },
    /// A date after today.
    #[error("{field} must not be in the future")]
    InFuture {
        /// The field path.
        field: &'static str,
    },
    /// A date before the person's (or the household's) latest change.
    #[error("{field} must not be before {latest}, the latest change already recorded")]
    BeforeLatestChange {
        /// The field path.
        field: &'static str,
        /// The earliest date allowed.
        latest: NaiveDate,
    },
    /// A registration (or a restoration) asked of CreateResidenceEvent.
    #[error(
        "registrations are recorded by CreateResident, and restorations by the registry when a \
         move fails, not as residence events"
    )]
    RegistrationNotAllowed,
    /// The destination is not an ISTAT code nor a foreign country code.
    #[error(
        "event.destination must be a six-digit ISTAT code or an ISO 3166-1 alpha-2 code other \
         than IT"
    )]
    InvalidDestination,
    /// HEAD asked of AddHouseholdMember.
    #[error("a household has one head, named when it is created")]
    HeadNotAllowed,
    /// The person has emigrated or died: the record is struck off.
    #[error("the resident has emigrated or died: the record admits no further change")]
    StruckOff,
    /// The person is already in a household.
    #[error("the resident already belongs to a household")]
    AlreadyInHousehold {
        /// The field naming the person.
        field: &'static str,
    },
    /// The person is not a current member of this household.
    #[error("the resident is not a current member of this household")]
    NotAMember,
    /// The head cannot leave while others remain.
    #[error("the head can leave only as the last member of the household")]
    HeadHasMembers,
    /// ANPR refused the change; nothing was written.
    #[error("ANPR refused the change ({code}); nothing was changed")]
    AnprRefused {
        /// ANPR's code.
        code: String,
    },
    /// ANPR could not be reached; nothing was written.
    #[error("ANPR is unavailable; nothing was changed, retry later")]
    AnprUnavailable,
}

/// How a [`HouseholdError`] is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HouseholdErrorClass {
    /// Invalid input (INVALID_ARGUMENT).
    Invalid,
    /// The register is not in a state that allows the request (FAILED_PRECONDITION).
    FailedPrecondition,
    /// A dependency is down (UNAVAILABLE).
    Unavailable,
}

impl HouseholdError {
    fn required(field: &str) -> Self {
        Self::Required {
            field: field.to_owned(),
        }
    }

    fn not_applicable(field: &str) -> Self {
        Self::NotApplicable {
            field: field.to_owned(),
        }
    }

    /// The stable UPPER_SNAKE_CASE reason of the `ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Required { .. } => "FIELD_REQUIRED",
            Self::Invalid { reason, .. } => reason,
            Self::NotApplicable { .. } => "FIELD_NOT_APPLICABLE",
            Self::UnknownEnumValue { .. } => "INVALID_ENUM_VALUE",
            Self::InFuture { .. } | Self::BeforeLatestChange { .. } => "INVALID_DATE",
            Self::RegistrationNotAllowed => "INVALID_EVENT_KIND",
            Self::InvalidDestination => "INVALID_DESTINATION",
            Self::HeadNotAllowed => "INVALID_RELATIONSHIP",
            Self::StruckOff => "RESIDENT_STRUCK_OFF",
            Self::AlreadyInHousehold { .. } => "ALREADY_IN_HOUSEHOLD",
            Self::NotAMember => "NOT_A_MEMBER",
            Self::HeadHasMembers => "HEAD_HAS_MEMBERS",
            Self::AnprRefused { .. } => "ANPR_REFUSED",
            Self::AnprUnavailable => "ANPR_UNAVAILABLE",
        }
    }

    /// The request field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Required { field }
            | Self::Invalid { field, .. }
            | Self::NotApplicable { field }
            | Self::UnknownEnumValue { field, .. } => Some(field),
            Self::InFuture { field }
            | Self::BeforeLatestChange { field, .. }
            | Self::AlreadyInHousehold { field } => Some(field),
            Self::RegistrationNotAllowed => Some("event.kind"),
            Self::InvalidDestination => Some("event.destination"),
            Self::HeadNotAllowed => Some("relationship"),
            Self::NotAMember | Self::HeadHasMembers => Some("resident"),
            Self::StruckOff | Self::AnprRefused { .. } | Self::AnprUnavailable => None,
        }
    }

    /// How the error is reported.
    pub fn class(&self) -> HouseholdErrorClass {
        match self {
            Self::StruckOff
            | Self::AlreadyInHousehold { .. }
            | Self::NotAMember
            | Self::HeadHasMembers
            | Self::AnprRefused { .. } => HouseholdErrorClass::FailedPrecondition,
            Self::AnprUnavailable => HouseholdErrorClass::Unavailable,
            _ => HouseholdErrorClass::Invalid,
        }
    }
}

impl From<super::anpr::AnprError> for HouseholdError {
    fn from(err: super::anpr::AnprError) -> Self {
        match err {
            super::anpr::AnprError::Refused { code } => Self::AnprRefused { code },
            super::anpr::AnprError::Unavailable => Self::AnprUnavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("a real date")
    }

    fn at(street: &str) -> Address {
        Address {
            street: street.to_owned(),
            house_number: "1".to_owned(),
            postal_code: "19038".to_owned(),
            locality: String::new(),
        }
    }

    fn event(kind: EventKind, date: NaiveDate, street: &str) -> ResidenceEvent {
        ResidenceEvent {
            kind,
            effective_date: date,
            address: if street.is_empty() {
                Address::default()
            } else {
                at(street)
            },
            destination: String::new(),
        }
    }

    /// DOMAIN.md "Registry": a change of residence takes effect from the declaration date, so
    /// the residence at a date is the last event effective on or before it.
    #[test]
    fn the_standing_at_a_date_is_the_last_event_effective_by_then() {
        let history = [
            event(EventKind::Registration, d(2015, 3, 2), "Via Mazzini"),
            event(EventKind::AddressChange, d(2020, 6, 1), "Via Roma"),
            event(EventKind::Death, d(2024, 1, 10), ""),
        ];
        assert_eq!(
            standing_at(&history, d(2015, 3, 1)),
            Standing::NotRegistered
        );
        assert_eq!(
            standing_at(&history, d(2020, 5, 31)),
            Standing::Resident(at("Via Mazzini"))
        );
        assert_eq!(
            standing_at(&history, d(2020, 6, 1)),
            Standing::Resident(at("Via Roma"))
        );
        assert_eq!(standing_at(&history, d(2024, 1, 10)), Standing::Deceased);
    }

    #[test]
    fn memberships_are_half_open_intervals_and_the_head_comes_first() {
        let m = |id: &str, rel, start, end| Membership {
            household_id: "h".to_owned(),
            resident_id: id.to_owned(),
            relationship: rel,
            start_date: start,
            end_date: end,
        };
        let all = [
            m("b", Relationship::Child, d(2020, 1, 1), Some(d(2022, 1, 1))),
            m("a", Relationship::Head, d(2019, 1, 1), None),
        ];
        let ids = |date| -> Vec<String> {
            members_at(&all, date)
                .into_iter()
                .map(|m| m.resident_id)
                .collect()
        };
        assert_eq!(ids(d(2021, 1, 1)), ["a", "b"]);
        assert_eq!(ids(d(2022, 1, 1)), ["a"]);
        assert_eq!(ids(d(2018, 1, 1)), Vec::<String>::new());
    }

    #[test]
    fn events_are_checked_against_the_person() {
        let today = d(2026, 1, 1);
        let alive = PersonState {
            struck_off: false,
            latest_change: d(2015, 3, 2),
        };
        let draft = |kind, (y, m, day)| EventDraft {
            kind: Some(kind),
            effective_date: Some(CivilDate {
                year: y,
                month: m,
                day,
            }),
            address: Some(at("Via Roma")),
            destination: String::new(),
        };
        let ok = draft(EventKind::AddressChange, (2020, 6, 1))
            .validate(&alive, today)
            .expect("a valid change of address");
        assert_eq!(ok.address, at("Via Roma"));
        let err = draft(EventKind::AddressChange, (2026, 1, 2))
            .validate(&alive, today)
            .expect_err("in the future");
        assert_eq!(
            (err.reason(), err.field()),
            ("INVALID_DATE", Some("event.effective_date"))
        );
        let err = draft(EventKind::AddressChange, (2015, 3, 1))
            .validate(&alive, today)
            .expect_err("before the registration");
        assert_eq!(err.reason(), "INVALID_DATE");
        let dead = PersonState {
            struck_off: true,
            ..alive.clone()
        };
        let err = draft(EventKind::AddressChange, (2020, 6, 1))
            .validate(&dead, today)
            .expect_err("struck off");
        assert_eq!(err.class(), HouseholdErrorClass::FailedPrecondition);
        let err = draft(EventKind::Emigration, (2020, 6, 1))
            .validate(&alive, today)
            .expect_err("an emigration has no address");
        assert_eq!(err.field(), Some("event.address"));
        assert!(is_destination("045003") && is_destination("FR"));
        assert!(!is_destination("IT") && !is_destination("Parigi"));
    }
}
