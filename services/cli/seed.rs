//! Realistic synthetic data for the demo, written through the services' own gRPC APIs over
//! mutual TLS (a client certificate from the federation CA), exactly as any client would.
//! Deterministic: the same names, codes and amounts on every machine, and each create carries a
//! `request_id`, so a seeding interrupted half-way can simply be run again.

use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::{Channel, ClientTlsConfig};
use unione_kit::certs::Kind;
use unione_kit::names::routed;
use unione_kit::tls::TlsFiles;
use unione_node::Function;
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1::debt_position_service_client::DebtPositionServiceClient;
use unione_proto::payments::v1::{
    CreateDebtPositionRequest, DebtPosition, PaymentOption, Transfer,
};
use unione_proto::quality::v1::kpi_service_client::KpiServiceClient;
use unione_proto::quality::v1::{
    CreateMeasurementRequest, ListKpisRequest, Measurement, kpi, measurement,
};
use unione_proto::registry::v1::resident_service_client::ResidentServiceClient;
use unione_proto::registry::v1::{
    Address, CreateResidentRequest, RegistrationReason, Resident, Sex,
};

use crate::demo::{TOWNS, Town, nodes, synthetic_fiscal_code};

const MALE_NAMES: &[&str] = &[
    "Marco",
    "Luca",
    "Giovanni",
    "Andrea",
    "Francesco",
    "Alessandro",
    "Matteo",
    "Lorenzo",
    "Davide",
    "Simone",
    "Paolo",
    "Stefano",
    "Roberto",
    "Giuseppe",
    "Riccardo",
    "Filippo",
    "Tommaso",
    "Enrico",
    "Fabio",
    "Massimo",
];
const FEMALE_NAMES: &[&str] = &[
    "Giulia",
    "Francesca",
    "Chiara",
    "Sara",
    "Martina",
    "Elena",
    "Alessia",
    "Valentina",
    "Federica",
    "Silvia",
    "Laura",
    "Paola",
    "Anna",
    "Maria",
    "Elisa",
    "Beatrice",
    "Sofia",
    "Caterina",
    "Ilaria",
    "Roberta",
];
const SURNAMES: &[&str] = &[
    "Rossi",
    "Bianchi",
    "Lombardi",
    "Bertoni",
    "Cozzani",
    "Benassi",
    "Lazzoni",
    "Figoli",
    "Musetti",
    "Lorenzini",
    "Bonati",
    "Franchini",
    "Giannoni",
    "Bernardini",
    "Paganini",
    "Ricci",
    "Ferrari",
    "Moretti",
    "Conti",
    "Marchi",
    "Tonelli",
    "Baldini",
    "Vatteroni",
    "Landi",
    "Ratti",
    "Dell'Amico",
    "Pucciarelli",
    "Ghirlanda",
];
const STREETS: &[&str] = &[
    "Via Mazzini",
    "Via Garibaldi",
    "Piazza Matteotti",
    "Via Cavour",
    "Via XX Settembre",
    "Via Aurelia",
    "Via Brigate Partigiane",
    "Via Sarzanese",
    "Via Canale",
    "Via Provinciale",
    "Via della Pace",
    "Via Fontevivo",
];
/// Places of birth: cadastral codes of nearby towns, and foreign countries with citizenship.
const BIRTH_PLACES: &[(&str, &str)] = &[
    ("E463", "IT"), // La Spezia
    ("D969", "IT"), // Genova
    ("F023", "IT"), // Massa
    ("B832", "IT"), // Carrara
    ("Z100", "AL"), // Albania
    ("Z129", "RO"), // Romania
    ("Z330", "MA"), // Morocco
];

fn postal_code(istat: &str) -> &'static str {
    match istat {
        "011027" => "19038",
        "011011" => "19033",
        "011020" => "19034",
        "011026" => "19037",
        "011002" => "19021",
        _ => "19031",
    }
}

/// An Italian IBAN with valid ISO 13616 check digits (synthetic bank and account).
pub fn synthetic_iban(abi: &str, cab: &str, account: &str) -> String {
    let bban = format!("X{abi}{cab}{account}");
    let rearranged = format!("{bban}IT00");
    let mut remainder: u32 = 0;
    for c in rearranged.chars() {
        let digits = if c.is_ascii_digit() {
            c.to_string()
        } else {
            (c as u32 - 'A' as u32 + 10).to_string()
        };
        for d in digits.chars() {
            remainder = (remainder * 10 + d.to_digit(10).expect("digits")) % 97;
        }
    }
    format!("IT{:02}{bban}", 98 - remainder)
}

async fn connect(tls: &TlsFiles, node_id: &str, endpoint: &str) -> anyhow::Result<Channel> {
    let config: ClientTlsConfig = tls.mutual_client(&Kind::Node.identity(node_id))?;
    Channel::from_shared(endpoint.to_owned())?
        .tls_config(config)?
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("connecting to node {node_id}"))
}

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

/// Seeds every node; returns the codice fiscale of the demo citizen (a resident of Sarzana).
pub async fn seed(tls: &TlsFiles, endpoints: &[(String, String)]) -> anyhow::Result<String> {
    let mut citizen = String::new();
    for (node_id, comuni) in nodes() {
        let endpoint = &endpoints
            .iter()
            .find(|(id, _)| id == node_id)
            .context("node endpoint")?
            .1;
        let channel = connect(tls, node_id, endpoint).await?;
        for (istat, functions) in comuni {
            let town = TOWNS
                .iter()
                .find(|t| t.istat == istat)
                .context("demo town")?;
            let mut rng = StdRng::seed_from_u64(istat.parse::<u64>().unwrap_or(1));
            let people = people(town, &mut rng);
            if functions.contains(&Function::Registry) {
                seed_residents(channel.clone(), town, &people).await?;
                if istat == "011027" {
                    citizen = people[0].codice_fiscale.clone();
                }
            }
            if functions.contains(&Function::Payments) {
                seed_payments(channel.clone(), town, &people, &mut rng).await?;
            }
            if functions.contains(&Function::Quality) {
                seed_quality(channel.clone(), town, &mut rng).await?;
            }
            tracing::info!(node = node_id, comune = istat, "seeded");
        }
    }
    Ok(citizen)
}

/// The residents of a demo town, about one in two hundred of its population.
fn people(town: &Town, rng: &mut StdRng) -> Vec<Resident> {
    let count = usize::try_from(town.population / 200).unwrap_or(20).max(20);
    let mut out: Vec<Resident> = Vec::with_capacity(count);
    while out.len() < count {
        let female = rng.random_bool(0.5);
        let given = if female { FEMALE_NAMES } else { MALE_NAMES }[rng.random_range(0..20)];
        let family = SURNAMES[rng.random_range(0..SURNAMES.len())];
        let (year, month, day) = (
            rng.random_range(1935..2024),
            rng.random_range(1..=12),
            rng.random_range(1..=28),
        );
        let (place, citizenship) = if rng.random_bool(0.6) {
            (town.cadastral, "IT")
        } else {
            BIRTH_PLACES[rng.random_range(0..BIRTH_PLACES.len())]
        };
        let sex = if female { Sex::Female } else { Sex::Male };
        let birth = chrono::NaiveDate::from_ymd_opt(year, month, day).expect("day 1-28 exists");
        let codice_fiscale =
            unione_registry::domain::codice_fiscale::compute(family, given, birth, female, place);
        if out.iter().any(|r| r.codice_fiscale == codice_fiscale) {
            continue; // a homonym: skip rather than model omocodia in the demo
        }
        let registered = (year + rng.random_range(0..20)).clamp(year, 2026);
        let reason = if place == town.cadastral && registered == year {
            RegistrationReason::Birth
        } else if citizenship == "IT" {
            RegistrationReason::ImmigrationFromComune
        } else {
            RegistrationReason::ImmigrationFromAbroad
        };
        let (reg_month, reg_day) = if reason == RegistrationReason::Birth {
            (month, day)
        } else {
            (rng.random_range(1..=12), rng.random_range(1..=28))
        };
        let registration = chrono::NaiveDate::from_ymd_opt(registered, reg_month, reg_day)
            .filter(|d| *d >= birth)
            .unwrap_or(birth)
            .min(chrono::Utc::now().date_naive());
        out.push(Resident {
            name: String::new(),
            codice_fiscale,
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            birth_date: date(
                year,
                i32::try_from(month).expect("month"),
                i32::try_from(day).expect("day"),
            ),
            birth_place_code: place.to_owned(),
            sex: sex as i32,
            citizenship: citizenship.to_owned(),
            address: Some(Address {
                street: STREETS[rng.random_range(0..STREETS.len())].to_owned(),
                house_number: rng.random_range(1..120).to_string(),
                postal_code: postal_code(town.istat).to_owned(),
                locality: String::new(),
            }),
            registration_date: {
                use chrono::Datelike;
                date(
                    registration.year(),
                    i32::try_from(registration.month()).expect("m"),
                    i32::try_from(registration.day()).expect("d"),
                )
            },
            registration_reason: reason as i32,
            create_time: None,
            etag: String::new(),
        });
    }
    out
}

async fn seed_residents(channel: Channel, town: &Town, people: &[Resident]) -> anyhow::Result<()> {
    let mut client = ResidentServiceClient::new(channel);
    for (i, person) in people.iter().enumerate() {
        let request = CreateResidentRequest {
            parent: format!("comuni/{}", town.istat),
            resident: Some(person.clone()),
            request_id: format!("demo-resident-{}-{i}", town.istat),
        };
        client
            .create_resident(routed(town.istat, request))
            .await
            .with_context(|| format!("creating resident {i} of {}", town.name))?;
    }
    Ok(())
}

async fn seed_payments(
    channel: Channel,
    town: &Town,
    people: &[Resident],
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let mut client = DebtPositionServiceClient::new(channel);
    let comune_cf = synthetic_fiscal_code(town.istat);
    let comune_iban = synthetic_iban("05034", "49840", &format!("0000{}00", town.istat));
    // The province collects TEFA (the environmental levy, 5% of TARI) with the comune's bill.
    let province_cf = synthetic_fiscal_code("011000");
    let province_iban = synthetic_iban("03069", "10700", "100000046011");
    // The State takes 16.79 EUR of the electronic identity card's 22.21 EUR fee.
    let state_cf = synthetic_fiscal_code("000000");
    let state_iban = synthetic_iban("01000", "03245", "348013350300");
    let transfer = |cf: &str, iban: &str, cents: i64, why: &str| Transfer {
        index: 0,
        creditor_fiscal_code: cf.to_owned(),
        iban: iban.to_owned(),
        amount_cents: cents,
        remittance_information: why.to_owned(),
    };
    for (i, person) in people.iter().take(people.len().min(30)).enumerate() {
        let (description, options) = match i % 3 {
            0 => {
                // TARI 2026 in two installments, each shared with the province.
                let total: i64 = rng.random_range(18_000..52_000);
                let half = total / 2;
                let options = [(half, 5, 31), (total - half, 11, 30)]
                    .into_iter()
                    .map(|(amount, month, day)| {
                        let tefa = amount * 5 / 105;
                        PaymentOption {
                            iuv: String::new(),
                            notice_number: String::new(),
                            amount_cents: amount,
                            due_date: date(2026, month, day),
                            installment: true,
                            transfers: vec![
                                transfer(&comune_cf, &comune_iban, amount - tefa, "TARI 2026"),
                                transfer(&province_cf, &province_iban, tefa, "TEFA 2026"),
                            ],
                        }
                    })
                    .collect();
                (format!("TARI 2026 - {}", town.name), options)
            }
            1 => {
                let amount: i64 = rng.random_range(40..90) * 450;
                let option = PaymentOption {
                    iuv: String::new(),
                    notice_number: String::new(),
                    amount_cents: amount,
                    due_date: date(2026, 12, 15),
                    installment: false,
                    transfers: vec![transfer(
                        &comune_cf,
                        &comune_iban,
                        amount,
                        "Mensa scolastica ottobre-novembre 2026",
                    )],
                };
                (
                    "Mensa scolastica, ottobre-novembre 2026".to_owned(),
                    vec![option],
                )
            }
            _ => {
                let option = PaymentOption {
                    iuv: String::new(),
                    notice_number: String::new(),
                    amount_cents: 2_221,
                    due_date: date(2026, 12, 31),
                    installment: false,
                    transfers: vec![
                        transfer(&state_cf, &state_iban, 1_679, "Corrispettivo CIE"),
                        transfer(&comune_cf, &comune_iban, 542, "Diritti di segreteria CIE"),
                    ],
                };
                ("Carta d'identita' elettronica".to_owned(), vec![option])
            }
        };
        let request = CreateDebtPositionRequest {
            parent: format!("comuni/{}", town.istat),
            debt_position: Some(DebtPosition {
                name: String::new(),
                debtor_fiscal_code: person.codice_fiscale.clone(),
                description,
                state: 0,
                payment_options: options,
                create_time: None,
                etag: String::new(),
            }),
            request_id: format!("demo-position-{}-{i}", town.istat),
        };
        client
            .create_debt_position(routed(town.istat, request))
            .await
            .with_context(|| format!("creating debt position {i} of {}", town.name))?;
    }
    Ok(())
}

fn periods(period: kpi::Period) -> Vec<String> {
    match period {
        kpi::Period::Year => vec!["2024".into(), "2025".into()],
        kpi::Period::Quarter => [
            "2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3",
        ]
        .map(String::from)
        .to_vec(),
        _ => (1..=10).map(|m| format!("2026-{m:02}")).collect(),
    }
}

async fn seed_quality(channel: Channel, town: &Town, rng: &mut StdRng) -> anyhow::Result<()> {
    let mut client = KpiServiceClient::new(channel);
    let parent = format!("comuni/{}", town.istat);
    let kpis = client
        .list_kpis(routed(
            town.istat,
            ListKpisRequest {
                parent: parent.clone(),
                page_size: 500,
                page_token: String::new(),
            },
        ))
        .await
        .context("listing KPIs")?
        .into_inner()
        .kpis;
    // Each town has its own level: some do better than target, some worse.
    let level: f64 = rng.random_range(-0.15..0.15);
    for k in kpis.iter().filter(|k| k.standard) {
        let better = if k.polarity == kpi::Polarity::LowerIsBetter as i32 {
            -1.0
        } else {
            1.0
        };
        let period = kpi::Period::try_from(k.period).unwrap_or(kpi::Period::Year);
        for (i, p) in periods(period).into_iter().enumerate() {
            let noise: f64 = rng.random_range(-0.08..0.08);
            let mut value = k.target * (1.0 + better * level + noise);
            if k.normalisation == kpi::Normalisation::Per1000Inhabitants as i32 {
                // Stored as the raw count; the target is per 1,000 inhabitants.
                value *= town.population as f64 / 1000.0;
            }
            let value = match k.unit.as_str() {
                "%" | "index 0-100" => ((value.clamp(0.0, 100.0)) * 10.0).round() / 10.0,
                "NPS points" => value.clamp(-100.0, 100.0).round(),
                "count" => value.max(0.0).round(),
                _ => (value.max(0.0) * 10.0).round() / 10.0,
            };
            // Now and then a period is not reported.
            let missing = rng.random_bool(0.04);
            let request = CreateMeasurementRequest {
                parent: format!("{parent}/kpis/{}", k.kpi_id),
                measurement: Some(Measurement {
                    name: String::new(),
                    period: p,
                    value: if missing { 0.0 } else { value },
                    status: if missing {
                        measurement::Status::Missing
                    } else {
                        measurement::Status::Ok
                    } as i32,
                    revision: 0,
                    update_time: None,
                }),
                request_id: format!("demo-measurement-{}-{}-{i}", town.istat, k.kpi_id),
            };
            client
                .create_measurement(routed(town.istat, request))
                .await
                .with_context(|| format!("recording {} for {}", k.kpi_id, town.name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_ibans_carry_valid_check_digits() {
        // The ISO 13616 check of a well-known valid Italian IBAN, recomputed.
        assert_eq!(
            synthetic_iban("05428", "11101", "000000123456"),
            "IT60X0542811101000000123456"
        );
    }
}
