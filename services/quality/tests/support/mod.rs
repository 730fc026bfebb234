//! What the quality service's test files share: the comuni of the tests, their profiles, and
//! instants and dates written the readable way.

#![allow(dead_code)]

use chrono::NaiveDateTime;
use tonic::Request;
use unione_kit::principal::Principal;
use unione_kit::token::Role;
use unione_kit::{ComuneProfile, Istat};
use unione_proto::google::r#type::Date;

pub const SARZANA: &str = "011027";
pub const ARCOLA: &str = "011002";
pub const LUNI: &str = "011020";

/// A served comune's profile (synthetic codes; 10,000 inhabitants).
pub fn profile(istat: &str, name: &str) -> ComuneProfile {
    ComuneProfile {
        istat: Istat::parse(istat).expect("a six-digit code"),
        name: name.to_owned(),
        fiscal_code: format!("001{istat}00"),
        cadastral_code: "I449".to_owned(),
        segregation_code: "01".to_owned(),
        ipa_code: format!("c_{istat}"),
        population: 10_000,
    }
}

/// A UTC instant `YYYY-MM-DD HH:MM` in microseconds.
pub fn utc(text: &str) -> i64 {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .expect("a test instant")
        .and_utc()
        .timestamp_micros()
}

/// A protobuf date.
pub fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

/// `request` as the gateway sends it for the citizen whose codice fiscale is `cf`.
pub fn by_citizen<T>(cf: &str, mut request: Request<T>) -> Request<T> {
    request.extensions_mut().insert(Principal {
        sub: format!("cit-{cf}"),
        role: Role::Citizen,
        comuni: Vec::new(),
        fiscal_number: Some(cf.to_owned()),
        gateway: "gw-1".to_owned(),
    });
    request
}
