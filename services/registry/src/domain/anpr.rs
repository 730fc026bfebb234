//! The boundary with ANPR, the national resident register (DOMAIN.md "Registry", Residents:
//! "a comune's registry software updates ANPR first and applies the change locally only when
//! ANPR accepts it").
//!
//! Every residence event and every change of a household goes through one
//! [`AnprConnector::notify`] call, made before the change is written here; the change is
//! written only on [`AnprAck`], and nothing is written on [`AnprError`]. A connector to the
//! real ANPR web services implements this trait; until one is configured, [`NoAnpr`] stands
//! in for it.

use chrono::NaiveDate;

use super::Address;
use super::household::Relationship;

/// A change of the register, as sent to ANPR. Residents are identified by codice fiscale (as
/// ANPR knows them), households by this register's opaque id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnprChange {
    /// ISTAT code of the comune whose register changes.
    pub comune: String,
    /// The codice fiscale of the person the change is about.
    pub codice_fiscale: String,
    /// The date the change takes effect.
    pub effective_date: NaiveDate,
    /// What changes.
    pub kind: AnprChangeKind,
}

/// What an [`AnprChange`] changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnprChangeKind {
    /// A change of address inside the comune.
    AddressChange {
        /// The new address.
        address: Address,
    },
    /// Emigration to another comune (ISTAT code) or abroad (ISO country code).
    Emigration {
        /// Where to.
        destination: String,
    },
    /// Immigration from another comune (ISTAT code) of the federation, as part of a move
    /// (`moves.proto`): the destination registers the person at `address`.
    Immigration {
        /// Where from.
        origin: String,
        /// The address in the comune.
        address: Address,
    },
    /// Death.
    Death,
    /// The previous position restored: an emigration that never took effect (the
    /// destination refused the move for good).
    Restoration {
        /// The destination of the emigration undone.
        destination: String,
    },
    /// A new household with this person as head.
    HouseholdFormed {
        /// The household's id.
        household: String,
    },
    /// The person joins a household.
    HouseholdJoined {
        /// The household's id.
        household: String,
        /// The tie to the head.
        relationship: Relationship,
    },
    /// The person leaves a household.
    HouseholdLeft {
        /// The household's id.
        household: String,
    },
}

/// ANPR accepted a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnprAck {
    /// ANPR's reference for the change, stored with it; empty from [`NoAnpr`].
    pub reference: String,
}

/// ANPR did not accept a change: nothing is written locally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnprError {
    /// ANPR refused the change (its own checks failed); retrying will not help.
    #[error("ANPR refused the change ({code})")]
    Refused {
        /// ANPR's error code, without personal data.
        code: String,
    },
    /// ANPR could not be reached or did not answer; retrying may succeed.
    #[error("ANPR is unavailable")]
    Unavailable,
}

/// The connector to ANPR that every change of residence and household goes through, before
/// it is applied locally.
#[async_trait::async_trait]
pub trait AnprConnector: Send + Sync + std::fmt::Debug {
    /// Sends `change` to ANPR and waits for its answer.
    async fn notify(&self, change: &AnprChange) -> Result<AnprAck, AnprError>;
}

/// No ANPR connector: this comune's register is authoritative until an ANPR connector is
/// configured. Accepts every change (the register's own rules have already been checked) and
/// gives an empty reference, so the stored events show that ANPR was not involved.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAnpr;

#[async_trait::async_trait]
impl AnprConnector for NoAnpr {
    async fn notify(&self, _change: &AnprChange) -> Result<AnprAck, AnprError> {
        Ok(AnprAck::default())
    }
}
