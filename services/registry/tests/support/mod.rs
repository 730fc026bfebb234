//! Helpers shared by the household and certificate tests: a node serving Sarzana and Arcola
//! (not Luni), residents created through ResidentService, requests routed and made by an
//! operator as the gateway sends them.

#![allow(dead_code)]

use chrono::NaiveDate;
use tonic::{Code, Request};
use unione_kit::error::reason_and_field;
use unione_kit::names::routed;
use unione_kit::principal::Principal;
use unione_kit::storage::testing::TestDatabase;
use unione_kit::token::Role;
use unione_kit::{ComuneProfile, Istat, Served};
use unione_proto::google::r#type::Date;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::resident_service_server::ResidentService;
use unione_registry::ResidentApi;
use unione_registry::domain::codice_fiscale;

pub const SARZANA: &str = "011027";
pub const ARCOLA: &str = "011002";
pub const LUNI: &str = "011020";

fn profile(istat: &str, name: &str, cadastral: &str) -> ComuneProfile {
    ComuneProfile {
        istat: Istat::parse(istat).expect("a six-digit code"),
        name: name.to_owned(),
        fiscal_code: format!("001{istat}00"),
        cadastral_code: cadastral.to_owned(),
        segregation_code: "01".to_owned(),
        ipa_code: format!("c_{istat}"),
        population: 20_000,
    }
}

/// This node runs the registry of Sarzana and Arcola, not Luni.
pub fn served() -> Served {
    Served::new([
        profile(SARZANA, "Sarzana", "I449"),
        profile(ARCOLA, "Arcola", "A373"),
    ])
}

pub async fn migrate(t: &TestDatabase) {
    t.db.migrate(&unione_registry::migrations())
        .await
        .expect("registry migrations apply");
}

pub fn date(y: i32, m: i32, d: i32) -> Option<Date> {
    Some(Date {
        year: y,
        month: m,
        day: d,
    })
}

/// A request routed to `istat`, made by the operator `op-1` of that comune.
pub fn as_operator<T>(istat: &str, message: T) -> Request<T> {
    as_principal(istat, message, Role::Operator, None)
}

/// A request routed to `istat`, made by a user with `role`.
pub fn as_principal<T>(
    istat: &str,
    message: T,
    role: Role,
    fiscal_number: Option<&str>,
) -> Request<T> {
    let mut request = routed(istat, message);
    request.extensions_mut().insert(Principal {
        sub: "op-1".to_owned(),
        role,
        comuni: vec![istat.to_owned()],
        fiscal_number: fiscal_number.map(str::to_owned),
        gateway: "gw-1".to_owned(),
    });
    request
}

/// A resident born in Sarzana, registered on 2015-03-02 at Via Mazzini 12/A.
pub fn person(family: &str, given: &str, (y, m, d): (i32, u32, u32), female: bool) -> pb::Resident {
    let birth = NaiveDate::from_ymd_opt(y, m, d).expect("a real date");
    pb::Resident {
        codice_fiscale: codice_fiscale::compute(family, given, birth, female, "I449"),
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        birth_date: date(
            y,
            i32::try_from(m).expect("month"),
            i32::try_from(d).expect("day"),
        ),
        birth_place_code: "I449".to_owned(),
        sex: if female {
            pb::Sex::Female
        } else {
            pb::Sex::Male
        }
        .into(),
        citizenship: "IT".to_owned(),
        address: Some(address("Via Mazzini", "12/A")),
        registration_date: date(2015, 3, 2),
        registration_reason: pb::RegistrationReason::ImmigrationFromComune.into(),
        ..Default::default()
    }
}

pub fn address(street: &str, number: &str) -> pb::Address {
    pb::Address {
        street: street.to_owned(),
        house_number: number.to_owned(),
        postal_code: "19038".to_owned(),
        locality: String::new(),
    }
}

/// Registers `resident` in `istat` and returns the stored record.
pub async fn register(t: &TestDatabase, istat: &str, resident: pb::Resident) -> pb::Resident {
    ResidentApi::new(t.db.clone(), served())
        .create_resident(routed(
            istat,
            pb::CreateResidentRequest {
                parent: format!("comuni/{istat}"),
                resident: Some(resident),
                request_id: String::new(),
            },
        ))
        .await
        .expect("the resident is registered")
        .into_inner()
}

pub async fn get_resident(t: &TestDatabase, istat: &str, name: &str) -> pb::Resident {
    ResidentApi::new(t.db.clone(), served())
        .get_resident(routed(
            istat,
            pb::GetResidentRequest {
                name: name.to_owned(),
            },
        ))
        .await
        .expect("the resident exists")
        .into_inner()
}

pub async fn count(t: &TestDatabase, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.db.pool())
        .await
        .expect("counts")
}

pub fn assert_error(
    status: &tonic::Status,
    code: Code,
    reason: &str,
    field: Option<&str>,
    label: &str,
) {
    assert_eq!(status.code(), code, "{label}: {status:?}");
    let (got_reason, got_field) = reason_and_field(status);
    assert_eq!(got_reason, reason, "{label}: {status:?}");
    assert_eq!(got_field.as_deref(), field, "{label}: {status:?}");
}
