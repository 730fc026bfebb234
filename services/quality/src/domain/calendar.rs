//! Calendar days in Italy, for the quality office's periods and deadlines: the kit's one rule
//! of Italian civil time ([`unione_kit::italy`]), under the names this crate reads them by.

pub use unione_kit::italy::{
    date_at as rome_date, range_micros as rome_range_micros, start_of_day as rome_midnight_micros,
};
