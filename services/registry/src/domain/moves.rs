//! Moves of residents between member comuni (DOMAIN.md "Registry", Residents: "run moves
//! between members with the same two-sided discipline"): the origin records the emigration
//! and the move in one transaction; its dispatcher delivers the move to the destination,
//! which registers the immigration, idempotently on the move id, until it acknowledges.
//!
//! The rules here have no I/O: checking a move as asked for, when to retry a delivery, and
//! whether the node delivering a move may be the origin's.

use std::time::Duration;

use chrono::NaiveDate;

use super::household::{self, HouseholdError, Relationship};
use super::resident;
use super::{Address, CivilDate};

/// Where a move stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveState {
    /// Emigrated at the origin, not yet acknowledged by the destination.
    Pending,
    /// Registered at the destination too.
    Completed,
    /// The destination refused it for good; the origin restored the previous position.
    Failed,
}

impl MoveState {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }

    /// The state of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "PENDING" => Self::Pending,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            _ => return None,
        })
    }
}

/// Where the person goes in the destination's households.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HouseholdPlan {
    /// A new household with the person as head.
    New,
    /// Joins this household (its opaque id at the destination) with this tie to the head.
    Join {
        /// The household's id.
        household: String,
        /// The tie to the head (never [`Relationship::Head`]).
        relationship: Relationship,
    },
}

/// A move as asked for, before any check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoveDraft {
    /// The origin comune's ISTAT code.
    pub origin: String,
    /// The destination comune's ISTAT code, if given.
    pub destination: String,
    /// The effective date, if given.
    pub effective_date: Option<CivilDate>,
    /// The address at the destination, if given.
    pub address: Option<Address>,
    /// The destination household's id; empty for a new one.
    pub household: String,
    /// The tie to that household's head, if given.
    pub relationship: Option<Relationship>,
}

/// A checked move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The origin comune's ISTAT code.
    pub origin: String,
    /// The destination comune's ISTAT code.
    pub destination: String,
    /// From when, on both sides.
    pub effective_date: NaiveDate,
    /// The address at the destination.
    pub address: Address,
    /// The household at the destination.
    pub household: HouseholdPlan,
}

impl MoveDraft {
    /// Checks a move field by field: the destination another comune than the origin; the
    /// effective date complete, real and not after `today`; a valid address; a household to
    /// join with a tie other than HEAD, or none (a new household, the person its head) and no
    /// tie. Whether the person may move on that date is checked against their history with
    /// [`household::check_person`].
    pub fn validate(self, today: NaiveDate) -> Result<Move, HouseholdError> {
        if self.destination.is_empty() {
            return Err(HouseholdError::Required {
                field: "move.destination".to_owned(),
            });
        }
        if self.destination == self.origin {
            return Err(HouseholdError::InvalidDestination);
        }
        let effective_date =
            household::effective("move.effective_date", self.effective_date, today)?;
        let address = resident::address(self.address.filter(|a| *a != Address::default()))
            .map_err(|e| HouseholdError::Invalid {
                field: e.field().replacen("resident.address", "move.address", 1),
                reason: e.reason(),
                message: e
                    .to_string()
                    .replacen("resident.address", "move.address", 1),
            })?;
        let household = match (self.household.is_empty(), self.relationship) {
            (true, None) => HouseholdPlan::New,
            (true, Some(_)) => {
                return Err(HouseholdError::NotApplicable {
                    field: "move.relationship".to_owned(),
                });
            }
            (false, None) => {
                return Err(HouseholdError::Required {
                    field: "move.relationship".to_owned(),
                });
            }
            (false, Some(Relationship::Head)) => return Err(HouseholdError::HeadNotAllowed),
            (false, Some(relationship)) => HouseholdPlan::Join {
                household: self.household,
                relationship,
            },
        };
        Ok(Move {
            origin: self.origin,
            destination: self.destination,
            effective_date,
            address,
            household,
        })
    }
}

/// The wait before delivery attempt `attempts + 1`, after `attempts` failed ones: `base`,
/// doubling with each failure, at most 32 times `base`, so that a node back after a long
/// outage is reached within 32 `base` of its return.
pub fn retry_delay(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1 << attempts.saturating_sub(1).min(5))
}

/// True when a node acting for `sender_comuni` (the comuni the directory says it serves)
/// may deliver a move from `origin`: it must serve the origin.
pub fn plausible_sender(sender_comuni: &[String], origin: &str) -> bool {
    sender_comuni.iter().any(|c| c == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: i32, d: i32) -> Option<CivilDate> {
        Some(CivilDate {
            year: y,
            month: m,
            day: d,
        })
    }

    fn draft() -> MoveDraft {
        MoveDraft {
            origin: "011020".into(),
            destination: "011027".into(),
            effective_date: date(2026, 3, 2),
            address: Some(Address {
                street: "Via Mazzini".into(),
                house_number: "12".into(),
                postal_code: "19038".into(),
                locality: "Sarzana".into(),
            }),
            household: String::new(),
            relationship: None,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 10).expect("a real date")
    }

    /// A move goes to another comune (DOMAIN.md "Registry", Residents: moves between
    /// members), from a date not in the future, to a valid address.
    #[test]
    fn a_move_names_another_comune_a_past_date_and_an_address() {
        let ok = draft().validate(today()).expect("valid");
        assert_eq!(ok.household, HouseholdPlan::New);
        let same = MoveDraft {
            destination: "011020".into(),
            ..draft()
        };
        assert_eq!(
            same.validate(today()),
            Err(HouseholdError::InvalidDestination)
        );
        let future = MoveDraft {
            effective_date: date(2026, 3, 11),
            ..draft()
        };
        assert!(matches!(
            future.validate(today()),
            Err(HouseholdError::InFuture { .. })
        ));
        let no_address = MoveDraft {
            address: None,
            ..draft()
        };
        let err = no_address.validate(today()).expect_err("refused");
        assert!(err.field().is_some_and(|f| f.starts_with("move.address")));
    }

    /// Joining a household needs a tie to its head other than HEAD; a new household takes
    /// none (DPR 223/1989 art. 4: one head per household).
    #[test]
    fn a_household_to_join_needs_a_tie_other_than_head() {
        let join = |relationship| MoveDraft {
            household: "h1".into(),
            relationship,
            ..draft()
        };
        assert!(matches!(
            join(None).validate(today()),
            Err(HouseholdError::Required { .. })
        ));
        assert_eq!(
            join(Some(Relationship::Head)).validate(today()),
            Err(HouseholdError::HeadNotAllowed)
        );
        assert_eq!(
            join(Some(Relationship::Spouse))
                .validate(today())
                .expect("valid")
                .household,
            HouseholdPlan::Join {
                household: "h1".into(),
                relationship: Relationship::Spouse
            }
        );
        let tie_without_household = MoveDraft {
            relationship: Some(Relationship::Child),
            ..draft()
        };
        assert!(tie_without_household.validate(today()).is_err());
    }

    #[test]
    fn retries_back_off_doubling_up_to_32_times_the_base() {
        let base = Duration::from_millis(100);
        let delays: Vec<u128> = (0..9).map(|n| retry_delay(base, n).as_millis()).collect();
        assert_eq!(
            delays,
            vec![100, 100, 200, 400, 800, 1600, 3200, 3200, 3200]
        );
    }

    #[test]
    fn only_a_node_serving_the_origin_may_deliver_its_moves() {
        let serves = vec!["011020".to_owned(), "011001".to_owned()];
        assert!(plausible_sender(&serves, "011020"));
        assert!(!plausible_sender(&serves, "011027"));
        assert!(!plausible_sender(&[], "011020"));
    }

    #[test]
    fn states_round_trip_their_codes() {
        for s in [MoveState::Pending, MoveState::Completed, MoveState::Failed] {
            assert_eq!(MoveState::from_code(s.code()), Some(s));
        }
        assert_eq!(MoveState::from_code("DONE"), None);
    }
}
