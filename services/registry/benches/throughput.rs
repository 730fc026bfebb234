//! Throughput of the registry service: protocol registrations and resident look-ups per second,
//! on SQLite and (with `BENCH_DATABASE_URL` or `TEST_DATABASE_URL`) PostgreSQL, each against a
//! baseline measured in the same run on the same database: one bare single-row INSERT per
//! transaction (`begin_write`, insert, commit) at the same concurrency.
//!
//! The handlers are called directly (no network), with the routing header and the principal
//! the gateway sets, as the service tests do. Run with
//! `cargo bench -p unione-registry --bench throughput` (add `-- --quick` for a short run); the
//! table is printed and written to `target/bench-registry.md`. See `services/BENCHMARKS.md`.

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use unione_kit::bench::{PgSchema, Row, baseline, drive, report, write_report};
use unione_kit::names::routed;
use unione_kit::principal::Principal;
use unione_kit::storage::testing;
use unione_kit::token::Role;
use unione_kit::{ComuneProfile, Database, Istat, Served};
use unione_proto::google::r#type::Date;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::protocol_service_server::ProtocolService;
use unione_proto::registry::v1::resident_service_server::ResidentService;
use unione_registry::domain::codice_fiscale;
use unione_registry::{ProtocolApi, ResidentApi};

const SARZANA: &str = "011027";
/// Concurrent callers of every measured operation (and of its baseline).
const CONCURRENCY: usize = 8;

/// How many operations each measurement runs.
struct Sizes {
    registrations: usize,
    residents: usize,
    lookups: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                registrations: 400,
                residents: 200,
                lookups: 2_000,
            }
        } else {
            Self {
                registrations: 4_000,
                residents: 1_000,
                lookups: 20_000,
            }
        }
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `--quick` asks for a short run.
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = Sizes::new(quick);
    let mut rows = Vec::new();

    let sqlite = testing::sqlite().await;
    rows.extend(bench_backend("sqlite", &sqlite.db, &sizes).await);
    sqlite.db.close().await;

    if let Some(pg) = PgSchema::create().await {
        rows.extend(bench_backend("postgres", &pg.db, &sizes).await);
        pg.drop().await;
    }

    let table = report("registry", quick, &rows);
    println!("{table}");
    write_report("bench-registry.md", &table);
}

/// Runs the baseline and the registry's operations on one database.
async fn bench_backend(backend: &'static str, db: &Database, sizes: &Sizes) -> Vec<Row> {
    db.migrate(&unione_registry::migrations())
        .await
        .expect("registry migrations apply");
    eprintln!("{backend}: baseline ({CONCURRENCY} concurrent)");
    let base = baseline(db, sizes.registrations, CONCURRENCY).await;
    let base_rate = base.per_second();
    let mut rows = vec![Row::new(
        "baseline: 1-row INSERT per tx",
        backend,
        base,
        base_rate,
    )];

    eprintln!("{backend}: CreateRegistration");
    let protocol = Arc::new(ProtocolApi::new(db.clone(), served()));
    let stats = drive(sizes.registrations, CONCURRENCY, move |i| {
        let protocol = Arc::clone(&protocol);
        async move {
            protocol
                .create_registration(registration(i))
                .await
                .expect("the registration is accepted");
        }
    })
    .await;
    rows.push(Row::new(
        "CreateRegistration (ProtocolApi)",
        backend,
        stats,
        base_rate,
    ));

    eprintln!("{backend}: seeding {} residents", sizes.residents);
    let residents = Arc::new(ResidentApi::new(db.clone(), served()));
    let names = Arc::new(std::sync::Mutex::new(vec![String::new(); sizes.residents]));
    {
        let (residents, names) = (Arc::clone(&residents), Arc::clone(&names));
        drive(sizes.residents, CONCURRENCY, move |i| {
            let (residents, names) = (Arc::clone(&residents), Arc::clone(&names));
            async move {
                let created = residents
                    .create_resident(routed(
                        SARZANA,
                        pb::CreateResidentRequest {
                            parent: format!("comuni/{SARZANA}"),
                            resident: Some(person(i)),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .expect("the resident is registered")
                    .into_inner();
                names.lock().expect("the lock is not poisoned")[i] = created.name;
            }
        })
        .await;
    }
    let names: Arc<Vec<String>> = Arc::new(
        names
            .lock()
            .expect("the lock is not poisoned")
            .iter()
            .cloned()
            .collect(),
    );

    eprintln!("{backend}: GetResident");
    let stats = drive(sizes.lookups, CONCURRENCY, move |i| {
        let residents = Arc::clone(&residents);
        let name = names[i % names.len()].clone();
        async move {
            let mut request = routed(SARZANA, pb::GetResidentRequest { name });
            request.extensions_mut().insert(operator());
            residents
                .get_resident(request)
                .await
                .expect("the resident is found");
        }
    })
    .await;
    rows.push(Row::new(
        "GetResident (ResidentApi)",
        backend,
        stats,
        base_rate,
    ));
    rows
}

/// This node keeps the registry of Sarzana.
fn served() -> Served {
    Served::new([ComuneProfile {
        istat: Istat::parse(SARZANA).expect("a six-digit code"),
        name: "Sarzana".to_owned(),
        fiscal_code: format!("001{SARZANA}00"),
        cadastral_code: "I449".to_owned(),
        segregation_code: "01".to_owned(),
        ipa_code: format!("c_{SARZANA}"),
        population: 20_000,
    }])
}

fn operator() -> Principal {
    Principal {
        sub: "op-bench".to_owned(),
        role: Role::Operator,
        comuni: vec![SARZANA.to_owned()],
        fiscal_number: None,
        gateway: "gw-bench".to_owned(),
    }
}

/// An outgoing letter with a small (about 2 KiB) document of its own content.
fn registration(i: usize) -> tonic::Request<pb::CreateRegistrationRequest> {
    let subject = format!("Comunicazione n. {i}");
    let mut content = format!("%PDF-1.7 {subject}\n").into_bytes();
    content.resize(2_048, b' ');
    let mut request = routed(
        SARZANA,
        pb::CreateRegistrationRequest {
            parent: format!("comuni/{SARZANA}/registers/GEN"),
            registration: Some(pb::Registration {
                direction: pb::Direction::Outgoing.into(),
                subject,
                recipients: vec!["Regione Liguria".to_owned()],
                classification: "2.1".to_owned(),
                assignment: "Segreteria".to_owned(),
                document: Some(pb::Document {
                    file_name: "lettera.pdf".to_owned(),
                    media_type: "application/pdf".to_owned(),
                    content,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        },
    );
    request.extensions_mut().insert(operator());
    request
}

/// Resident `i`: Mario Rossi, born in Sarzana `i` days after 1 January 1950 (so every codice
/// fiscale differs).
fn person(i: usize) -> pb::Resident {
    let birth = NaiveDate::from_ymd_opt(1950, 1, 1)
        .and_then(|d| d.checked_add_days(Days::new(u64::try_from(i).expect("fits u64"))))
        .expect("a real date");
    let date = |d: NaiveDate| {
        use chrono::Datelike;
        Some(Date {
            year: d.year(),
            month: i32::try_from(d.month()).expect("a month"),
            day: i32::try_from(d.day()).expect("a day"),
        })
    };
    pb::Resident {
        codice_fiscale: codice_fiscale::compute("Rossi", "Mario", birth, false, "I449"),
        given_name: "Mario".to_owned(),
        family_name: "Rossi".to_owned(),
        birth_date: date(birth),
        birth_place_code: "I449".to_owned(),
        sex: pb::Sex::Male.into(),
        citizenship: "IT".to_owned(),
        address: Some(pb::Address {
            street: "Via Mazzini".to_owned(),
            house_number: "12/A".to_owned(),
            postal_code: "19038".to_owned(),
            locality: String::new(),
        }),
        registration_date: date(NaiveDate::from_ymd_opt(2015, 3, 2).expect("a real date")),
        registration_reason: pb::RegistrationReason::ImmigrationFromComune.into(),
        ..Default::default()
    }
}
