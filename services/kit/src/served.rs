//! The comuni a service answers for on this node, with what it needs to know about each.
//!
//! The directory says which node provides which function for which comune; a node is
//! configured with the same (its `[[comuni]]` table), and each service refuses calls for a
//! comune it does not serve, and calls whose body names another comune than the routing
//! header (see [`crate::names::check_routed_comune`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataMap;

use crate::error::ApiError;
use crate::names::{Istat, check_routed_comune};

/// What a service knows about a comune it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComuneProfile {
    /// The ISTAT code.
    pub istat: Istat,
    /// The comune's name, e.g. `Sarzana`.
    pub name: String,
    /// The 11-digit numeric fiscal code (creditor id in pagoPA).
    pub fiscal_code: String,
    /// The cadastral code, e.g. `I449`.
    pub cadastral_code: String,
    /// The pagoPA segregation code, two digits.
    pub segregation_code: String,
    /// The IPA code of the administration.
    pub ipa_code: String,
    /// Resident population.
    pub population: i64,
}

/// The comuni one service serves on this node.
#[derive(Debug, Clone, Default)]
pub struct Served {
    comuni: Arc<BTreeMap<Istat, ComuneProfile>>,
}

impl Served {
    /// The set of comuni.
    pub fn new(profiles: impl IntoIterator<Item = ComuneProfile>) -> Self {
        Self {
            comuni: Arc::new(profiles.into_iter().map(|p| (p.istat.clone(), p)).collect()),
        }
    }

    /// The profile of a served comune.
    pub fn get(&self, istat: &Istat) -> Option<&ComuneProfile> {
        self.comuni.get(istat)
    }

    /// Every served comune, by ISTAT code.
    pub fn iter(&self) -> impl Iterator<Item = &ComuneProfile> {
        self.comuni.values()
    }

    /// Checks a call: the body's comune (`istat`, read from `field`) must be the routed one
    /// and one this service serves here (else FAILED_PRECONDITION `COMUNE_NOT_SERVED`).
    pub fn check(
        &self,
        metadata: &MetadataMap,
        istat: &Istat,
        field: &str,
    ) -> Result<&ComuneProfile, ApiError> {
        check_routed_comune(metadata, istat, field)?;
        self.comuni.get(istat).ok_or_else(|| {
            ApiError::failed_precondition(
                "COMUNE_NOT_SERVED",
                format!("this node does not provide this function for comuni/{istat}"),
            )
            .with_field(field)
        })
    }
}
