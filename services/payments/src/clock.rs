//! The clock of the payments desk, injectable so that tests can move time (due dates, validity
//! dates, activation lapses). Every rule that depends on time takes the instant from here and
//! passes it down: the domain and storage never read the system clock.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::state::italian_date;

/// Gives the current instant in microseconds since the epoch.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(unione_kit::storage::now_micros))
    }

    /// A clock that reads `now` (microseconds since the epoch) at every call.
    pub fn from_fn(now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// Now, in microseconds since the epoch.
    pub fn now_micros(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// The instant of `micros`, clamped into chrono's range (never a panic on stored data).
pub fn instant(micros: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The Italian civil date at `micros`.
pub fn today(micros: i64) -> NaiveDate {
    italian_date(instant(micros))
}
