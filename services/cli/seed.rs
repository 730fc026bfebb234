//! Realistic synthetic data for the demo, written through the gateway with each town's
//! operator token, exactly as any client would: every call is routed by its comune, carries the
//! operator as its principal, and lands in the audit log.
//! Deterministic: the same names, codes and amounts on every machine, and each create carries a
//! `request_id`, so a seeding interrupted half-way can simply be run again.

use std::collections::BTreeMap;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;
use unione_kit::names::routed;
use unione_node::Function;
use unione_proto::common::v1::Channel as Contact;
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1::cost_sharing_service_client::CostSharingServiceClient;
use unione_proto::payments::v1::debt_position_service_client::DebtPositionServiceClient;
use unione_proto::payments::v1::payment_provider_service_client::PaymentProviderServiceClient;
use unione_proto::payments::v1::reconciliation_service_client::ReconciliationServiceClient;
use unione_proto::payments::v1::{
    ActivatePaymentRequest, CreateDebtPositionRequest, DebtPosition, PaymentOption,
    SendReceiptRequest, Transfer, VerifyNoticeRequest,
};
use unione_proto::payments::v1::{
    Apportionment, ApportionmentMember, ApportionmentMethod, ComputeApportionmentRequest,
    IssueApportionmentRequest,
};
use unione_proto::payments::v1::{
    FlowHeader, FlowLine, FlowTotals, ImportReconciliationFlowRequest, ReconciliationFlow,
};
use unione_proto::quality::v1::complaint_service_client::ComplaintServiceClient;
use unione_proto::quality::v1::improvement_service_client::ImprovementServiceClient;
use unione_proto::quality::v1::kpi_service_client::KpiServiceClient;
use unione_proto::quality::v1::survey_service_client::SurveyServiceClient;
use unione_proto::quality::v1::{
    CheckCorrectiveActionRequest, CorrectiveAction, CreateCorrectiveActionRequest,
    CreateNonconformityRequest, CreateObjectiveRequest, EffectivenessResult, Nonconformity,
    NonconformitySource, Objective, SetRootCauseRequest,
};
use unione_proto::quality::v1::{
    Complaint, ComplaintStatus, CreateComplaintRequest, CreateMeasurementRequest,
    CreateSurveyRequest, CreateSurveyResponseRequest, ListKpisRequest, Measurement, Question,
    Survey, SurveyResponse, TransitionComplaintRequest, kpi, measurement, question,
};
use unione_proto::registry::v1::case_service_client::CaseServiceClient;
use unione_proto::registry::v1::certificate_service_client::CertificateServiceClient;
use unione_proto::registry::v1::household_service_client::HouseholdServiceClient;
use unione_proto::registry::v1::protocol_service_client::ProtocolServiceClient;
use unione_proto::registry::v1::resident_service_client::ResidentServiceClient;
use unione_proto::registry::v1::{
    AcceptCaseRequest, Case, CreateProcedureTypeRequest, ProcedureType, RequestIntegrationRequest,
    SubmitCaseRequest, TakeCaseInChargeRequest,
};
use unione_proto::registry::v1::{
    AddHouseholdMemberRequest, Certificate, CertificateType, CreateHouseholdRequest,
    CreateResidenceEventRequest, IssueCertificateRequest, Relationship, ResidenceEvent,
    ResidenceEventKind,
};
use unione_proto::registry::v1::{
    Address, AnnulRegistrationRequest, CorrectFieldRequest, CorrectableField,
    CreateRegistrationRequest, CreateResidentRequest, Direction, Document, Registration,
    RegistrationReason, Resident, Sex, UpdateRegistrationRequest,
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

/// A request for `istat` as its operator: the routing header and the bearer token.
fn call<T>(istat: &str, token: &str, message: T) -> tonic::Request<T> {
    let mut request = routed(istat, message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

/// What the seeding leaves for the demo's users to try.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Seeded {
    /// The demo citizen's codice fiscale (a resident of Sarzana).
    pub citizen_fiscal_number: String,
    /// The verification code of a certificate issued to that citizen.
    pub certificate_code: String,
}

/// Seeds every comune through the gateway (`gateway`) with its operator's token
/// (`operators`, by ISTAT code), paying some notices as the payment provider of `psp_token`.
pub async fn seed(
    gateway: Channel,
    operators: &BTreeMap<String, String>,
    psp_token: &str,
) -> anyhow::Result<Seeded> {
    let mut seeded = Seeded::default();
    for (node_id, comuni) in nodes() {
        for (istat, functions) in comuni {
            let town = TOWNS
                .iter()
                .find(|t| t.istat == istat)
                .context("demo town")?;
            let token = operators.get(istat).context("an operator token per town")?;
            let op = Operator { istat, token };
            let mut rng = StdRng::seed_from_u64(istat.parse::<u64>().unwrap_or(1));
            let people = people(town, &mut rng);
            if functions.contains(&Function::Registry) {
                let residents = seed_residents(gateway.clone(), &op, &people).await?;
                let code = seed_households(gateway.clone(), &op, &residents).await?;
                seed_protocol(gateway.clone(), &op, &people).await?;
                seed_cases(gateway.clone(), &op, &people).await?;
                if istat == "011027" {
                    seeded.citizen_fiscal_number = people[0].codice_fiscale.clone();
                    seeded.certificate_code = code;
                }
            }
            if functions.contains(&Function::Payments) {
                let psp = Operator {
                    istat,
                    token: psp_token,
                };
                seed_payments(gateway.clone(), &op, &psp, town, &people, &mut rng).await?;
            }
            if functions.contains(&Function::Quality) {
                seed_quality(gateway.clone(), &op, town, &mut rng).await?;
                seed_listening(gateway.clone(), &op, &mut rng).await?;
                seed_improvement(gateway.clone(), &op).await?;
            }
            tracing::info!(node = node_id, comune = istat, "seeded");
        }
    }
    share_registry_costs(gateway, operators).await?;
    Ok(seeded)
}

/// Gestione associata: Sarzana runs the registry office for Ameglia too; its yearly cost is
/// shared half by population and half by usage (the residents each registry holds), and
/// Ameglia's share is billed to it as a debt position.
async fn share_registry_costs(
    gateway: Channel,
    operators: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let capofila = "011027";
    let op = Operator {
        istat: capofila,
        token: operators.get(capofila).context("Sarzana's operator")?,
    };
    let member = |istat: &str| -> anyhow::Result<ApportionmentMember> {
        let town = TOWNS
            .iter()
            .find(|t| t.istat == istat)
            .context("demo town")?;
        Ok(ApportionmentMember {
            istat: istat.to_owned(),
            fiscal_code: synthetic_fiscal_code(istat),
            population: town.population,
            usage: town.population / 200,
            quota: 0,
        })
    };
    let mut client = CostSharingServiceClient::new(gateway);
    let apportionment = client
        .compute_apportionment(op.call(ComputeApportionmentRequest {
            parent: format!("comuni/{capofila}"),
            apportionment: Some(Apportionment {
                function: "Ufficio anagrafe associato".to_owned(),
                year: 2026,
                total_cost_cents: 18_650_000,
                method: Some(ApportionmentMethod {
                    population_percent: 50,
                    usage_percent: 50,
                    quota_percent: 0,
                }),
                members: vec![member(capofila)?, member("011001")?],
                ..Apportionment::default()
            }),
            request_id: "demo-apportionment-registry-2026".to_owned(),
        }))
        .await
        .context("apportioning the registry office's cost")?
        .into_inner();
    let today = chrono::Utc::now().date_naive() + chrono::Duration::days(60);
    use chrono::Datelike;
    client
        .issue_apportionment(op.call(IssueApportionmentRequest {
            name: apportionment.name,
            creditor_iban: synthetic_iban("05034", "49840", &format!("0000{capofila}00")),
            due_date: date(
                today.year(),
                i32::try_from(today.month()).expect("month"),
                i32::try_from(today.day()).expect("day"),
            ),
        }))
        .await
        .context("billing the shares")?;
    Ok(())
}

/// The comune being seeded and its operator's token.
struct Operator<'a> {
    istat: &'a str,
    token: &'a str,
}

impl Operator<'_> {
    fn call<T>(&self, message: T) -> tonic::Request<T> {
        call(self.istat, self.token, message)
    }
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

async fn seed_residents(
    gateway: Channel,
    op: &Operator<'_>,
    people: &[Resident],
) -> anyhow::Result<Vec<Resident>> {
    let mut client = ResidentServiceClient::new(gateway);
    let mut created = Vec::with_capacity(people.len());
    for (i, person) in people.iter().enumerate() {
        let request = CreateResidentRequest {
            parent: format!("comuni/{}", op.istat),
            resident: Some(person.clone()),
            request_id: format!("demo-resident-{}-{i}", op.istat),
        };
        let resident = client
            .create_resident(op.call(request))
            .await
            .with_context(|| format!("creating resident {i} of comuni/{}", op.istat))?
            .into_inner();
        created.push(resident);
    }
    Ok(created)
}

fn today_date() -> Option<Date> {
    use chrono::Datelike;
    let d = chrono::Utc::now().date_naive();
    date(
        d.year(),
        i32::try_from(d.month()).expect("month"),
        i32::try_from(d.day()).expect("day"),
    )
}

/// Households (pairs of residents, from today), a change of address, an emigration, and the
/// three kinds of certificate through three channels; returns one certificate's verification
/// code.
async fn seed_households(
    gateway: Channel,
    op: &Operator<'_>,
    residents: &[Resident],
) -> anyhow::Result<String> {
    let mut households = HouseholdServiceClient::new(gateway.clone());
    for (pair, couple) in residents[..8].chunks(2).enumerate() {
        let household = households
            .create_household(op.call(CreateHouseholdRequest {
                parent: format!("comuni/{}", op.istat),
                head: couple[0].name.clone(),
                start_date: today_date(),
                request_id: format!("demo-household-{}-{pair}", op.istat),
            }))
            .await
            .context("creating a household")?
            .into_inner();
        households
            .add_household_member(op.call(AddHouseholdMemberRequest {
                household: household.name.clone(),
                resident: couple[1].name.clone(),
                relationship: Relationship::Spouse as i32,
                effective_date: today_date(),
            }))
            .await
            .context("adding a household member")?;
    }
    let moved = &residents[8];
    households
        .create_residence_event(
            op.call(CreateResidenceEventRequest {
                parent: moved.name.clone(),
                event: Some(ResidenceEvent {
                    kind: ResidenceEventKind::AddressChange as i32,
                    effective_date: today_date(),
                    address: Some(Address {
                        street: "Via Variante Aurelia".to_owned(),
                        house_number: "7".to_owned(),
                        postal_code: moved
                            .address
                            .as_ref()
                            .map(|a| a.postal_code.clone())
                            .unwrap_or_default(),
                        locality: String::new(),
                    }),
                    ..ResidenceEvent::default()
                }),
                request_id: format!("demo-event-move-{}", op.istat),
            }),
        )
        .await
        .context("recording a change of address")?;
    households
        .create_residence_event(op.call(CreateResidenceEventRequest {
            parent: residents[9].name.clone(),
            event: Some(ResidenceEvent {
                kind: ResidenceEventKind::Emigration as i32,
                effective_date: today_date(),
                destination: "045003".to_owned(),
                ..ResidenceEvent::default()
            }),
            request_id: format!("demo-event-emigration-{}", op.istat),
        }))
        .await
        .context("recording an emigration")?;

    let mut certificates = CertificateServiceClient::new(gateway);
    let mut code = String::new();
    for (i, (kind, contact, as_of)) in [
        (CertificateType::Residence, Contact::Kiosk, None),
        (CertificateType::HouseholdStatus, Contact::Web, None),
        (
            CertificateType::HistoricalResidence,
            Contact::Counter,
            residents[0].registration_date,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let certificate = certificates
            .issue_certificate(op.call(IssueCertificateRequest {
                parent: format!("comuni/{}", op.istat),
                certificate: Some(Certificate {
                    r#type: kind as i32,
                    resident: residents[0].name.clone(),
                    as_of,
                    channel: contact as i32,
                    ..Certificate::default()
                }),
                request_id: format!("demo-certificate-{}-{i}", op.istat),
            }))
            .await
            .context("issuing a certificate")?
            .into_inner();
        if code.is_empty() {
            code = certificate.verification_code;
        }
    }
    Ok(code)
}

/// Procedure types with their legal deadlines, and cases submitted at the counter on
/// citizens' behalf (each registered in the protocol), at different stages.
async fn seed_cases(
    gateway: Channel,
    op: &Operator<'_>,
    people: &[Resident],
) -> anyhow::Result<()> {
    let mut client = CaseServiceClient::new(gateway);
    let types = [
        (
            "SUOLO",
            "Occupazione temporanea di suolo pubblico",
            30,
            false,
            "SUAP",
            "6.3",
        ),
        (
            "EDIL",
            "Permesso di costruire",
            60,
            false,
            "Edilizia privata",
            "6.3",
        ),
        (
            "CONTR",
            "Contributo economico straordinario",
            120,
            true,
            "Servizi sociali",
            "7.1",
        ),
    ];
    for (code, title, days, complex, office, classification) in types {
        client
            .create_procedure_type(op.call(CreateProcedureTypeRequest {
                parent: format!("comuni/{}", op.istat),
                procedure_type: Some(ProcedureType {
                    code: code.to_owned(),
                    title: title.to_owned(),
                    legal_days: days,
                    complex,
                    office: office.to_owned(),
                    classification: classification.to_owned(),
                    ..ProcedureType::default()
                }),
                request_id: format!("demo-procedure-{}-{code}", op.istat),
            }))
            .await
            .context("creating a procedure type")?;
    }
    let cases = [
        ("SUOLO", "Dehors estivo per il bar in piazza", 2),
        ("EDIL", "Ampliamento di un fabbricato rurale", 1),
        ("CONTR", "Contributo per le utenze domestiche", 0),
        ("SUOLO", "Ponteggio per il rifacimento della facciata", 3),
    ];
    for (i, (code, subject, progress)) in cases.into_iter().enumerate() {
        let applicant = &people[10 + i];
        let case = client
            .submit_case(op.call(SubmitCaseRequest {
                parent: format!("comuni/{}", op.istat),
                case: Some(Case {
                    procedure_type: format!("comuni/{}/procedureTypes/{code}", op.istat),
                    applicant: applicant.codice_fiscale.clone(),
                    subject: subject.to_owned(),
                    data: format!("{{\"richiesta\": \"{subject}\"}}"),
                    ..Case::default()
                }),
                request_id: format!("demo-case-{}-{i}", op.istat),
            }))
            .await
            .context("submitting a case")?
            .into_inner();
        if progress >= 1 {
            client
                .take_case_in_charge(op.call(TakeCaseInChargeRequest {
                    name: case.name.clone(),
                    reason: String::new(),
                }))
                .await
                .context("taking a case in charge")?;
        }
        if progress == 2 {
            client
                .request_integration(op.call(RequestIntegrationRequest {
                    name: case.name.clone(),
                    reason: "Manca la planimetria dell'area occupata".to_owned(),
                }))
                .await
                .context("requesting an integration")?;
        }
        if progress == 3 {
            client
                .accept_case(op.call(AcceptCaseRequest {
                    name: case.name.clone(),
                    reason: "Istruttoria favorevole; autorizzazione rilasciata".to_owned(),
                }))
                .await
                .context("accepting a case")?;
        }
    }
    Ok(())
}

/// Protocol registrations of the day: incoming requests, outgoing replies, internal acts;
/// one reassigned, one subject corrected and one annulled, as an office's day goes.
async fn seed_protocol(
    gateway: Channel,
    op: &Operator<'_>,
    people: &[Resident],
) -> anyhow::Result<()> {
    let mut client = ProtocolServiceClient::new(gateway);
    let subjects = [
        (
            Direction::Incoming,
            "Richiesta di certificato storico di residenza",
            "1.6",
        ),
        (
            Direction::Incoming,
            "Dichiarazione di cambio di abitazione",
            "11.2",
        ),
        (
            Direction::Outgoing,
            "Comunicazione di avvio del procedimento",
            "11.2",
        ),
        (
            Direction::Incoming,
            "Istanza di accesso agli atti (L. 241/1990)",
            "1.6",
        ),
        (
            Direction::Internal,
            "Determinazione: affidamento servizio mensa",
            "4.3",
        ),
        (
            Direction::Outgoing,
            "Risposta a reclamo sui tempi di attesa allo sportello",
            "1.8",
        ),
        (
            Direction::Incoming,
            "Segnalazione di disservizio illuminazione pubblica",
            "6.5",
        ),
        (
            Direction::Outgoing,
            "Trasmissione ricevuta di pagamento TARI",
            "4.4",
        ),
    ];
    let mut created = Vec::new();
    for (i, (direction, subject, classification)) in subjects.iter().enumerate() {
        let person = &people[i % people.len()];
        let correspondent = format!("{} {}", person.given_name, person.family_name);
        let (sender, recipients) = match direction {
            Direction::Incoming => (correspondent, Vec::new()),
            Direction::Outgoing => (String::new(), vec![correspondent]),
            _ => (String::new(), vec!["Ufficio ragioneria".to_owned()]),
        };
        let content =
            format!("{subject}\n\nDocumento informatico di prova (demo Unione), n. {i}.\n");
        let request = CreateRegistrationRequest {
            parent: format!("comuni/{}", op.istat),
            registration: Some(Registration {
                direction: *direction as i32,
                subject: (*subject).to_owned(),
                sender,
                recipients,
                classification: (*classification).to_owned(),
                assignment: "Ufficio protocollo".to_owned(),
                document: Some(Document {
                    file_name: format!("documento-{i}.txt"),
                    media_type: "text/plain".to_owned(),
                    content: content.into_bytes(),
                    ..Document::default()
                }),
                ..Registration::default()
            }),
            request_id: format!("demo-registration-{}-{i}", op.istat),
        };
        let registration = client
            .create_registration(op.call(request))
            .await
            .with_context(|| format!("registering act {i} of comuni/{}", op.istat))?
            .into_inner();
        created.push(registration);
    }
    let reassigned = &created[1];
    client
        .update_registration(op.call(UpdateRegistrationRequest {
            registration: Some(Registration {
                name: reassigned.name.clone(),
                assignment: "Ufficio anagrafe".to_owned(),
                etag: reassigned.etag.clone(),
                ..Registration::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["assignment".to_owned()],
            }),
        }))
        .await
        .context("reassigning a registration")?;
    let corrected = &created[3];
    client
        .correct_field(op.call(CorrectFieldRequest {
            name: corrected.name.clone(),
            etag: corrected.etag.clone(),
            field: CorrectableField::Subject as i32,
            new_value: "Istanza di accesso civico generalizzato (D.Lgs. 33/2013)".to_owned(),
            new_recipients: Vec::new(),
            reason: "oggetto registrato in modo inesatto".to_owned(),
            authorising_act:
                "Autorizzazione del responsabile della gestione documentale n. 1".to_owned(),
        }))
        .await
        .context("correcting a subject")?;
    let annulled = &created[6];
    client
        .annul_registration(op.call(AnnulRegistrationRequest {
            name: annulled.name.clone(),
            etag: annulled.etag.clone(),
            reason: "registrazione duplicata".to_owned(),
            authorising_act:
                "Provvedimento del responsabile della gestione documentale n. 2".to_owned(),
        }))
        .await
        .context("annulling a registration")?;
    Ok(())
}

async fn seed_payments(
    gateway: Channel,
    op: &Operator<'_>,
    psp: &Operator<'_>,
    town: &Town,
    people: &[Resident],
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let mut client = DebtPositionServiceClient::new(gateway.clone());
    let mut provider = PaymentProviderServiceClient::new(gateway.clone());
    let reconciliation = gateway;
    let mut settled = Vec::new();
    // Due dates follow the day the demo is created, so that notices are payable.
    let today = chrono::Utc::now().date_naive();
    let due = |days: i64| {
        use chrono::Datelike;
        let d = today + chrono::Duration::days(days);
        date(
            d.year(),
            i32::try_from(d.month()).expect("month"),
            i32::try_from(d.day()).expect("day"),
        )
    };
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
        ..Transfer::default()
    };
    for (i, person) in people.iter().take(people.len().min(30)).enumerate() {
        let (description, options) = match i % 3 {
            0 => {
                // TARI 2026 in two installments, each shared with the province.
                let total: i64 = rng.random_range(18_000..52_000);
                let half = total / 2;
                let options = [(half, 30), (total - half, 90)]
                    .into_iter()
                    .map(|(amount, days)| {
                        let tefa = amount * 5 / 105;
                        PaymentOption {
                            iuv: String::new(),
                            notice_number: String::new(),
                            amount_cents: amount,
                            due_date: due(days),
                            installment: true,
                            paid: false,
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
                    due_date: due(21),
                    installment: false,
                    paid: false,
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
                    due_date: due(60),
                    installment: false,
                    paid: false,
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
                debtor_fiscal_code: person.codice_fiscale.clone(),
                description,
                payment_options: options,
                ..DebtPosition::default()
            }),
            request_id: format!("demo-position-{}-{i}", town.istat),
        };
        let position = client
            .create_debt_position(op.call(request))
            .await
            .with_context(|| format!("creating debt position {i} of {}", town.name))?
            .into_inner();
        // About a third of the notices are paid through a (simulated) payment provider, with
        // the real provider calls: verify, activate, receipt.
        if i % 3 == 1 || i % 6 == 0 {
            let option = &position.payment_options[0];
            let receipt_id = format!("demo-{}-{i}", town.istat);
            pay(&mut provider, psp, option, &receipt_id).await?;
            for t in &option.transfers {
                settled.push(FlowLine {
                    iuv: option.iuv.clone(),
                    receipt_id: receipt_id.clone(),
                    transfer_index: t.index,
                    amount_cents: t.amount_cents,
                    outcome: 0,
                });
            }
        }
    }
    // The provider's reconciliation flow for the day settles what it collected.
    let amount: i64 = settled.iter().map(|l| l.amount_cents).sum();
    let count = i64::try_from(settled.len()).expect("a handful of lines");
    ReconciliationServiceClient::new(reconciliation)
        .import_reconciliation_flow(op.call(ImportReconciliationFlowRequest {
            parent: format!("comuni/{}", town.istat),
            flow: Some(ReconciliationFlow {
                header: Some(FlowHeader {
                    flow_id: format!("{}-DEMO-PSP-{}", today.format("%Y-%m-%d"), town.istat),
                    flow_date: due(0),
                    psp_id: "DEMO-PSP".to_owned(),
                    settlement_reference: format!("SCT-DEMO-{}", town.istat),
                    creditor_fiscal_code: synthetic_fiscal_code(town.istat),
                }),
                totals: Some(FlowTotals {
                    count,
                    amount_cents: amount,
                }),
                lines: settled,
                ..ReconciliationFlow::default()
            }),
        }))
        .await
        .context("importing a reconciliation flow")?;
    Ok(())
}

/// Pays one notice as the payment provider `op` would.
async fn pay(
    provider: &mut PaymentProviderServiceClient<Channel>,
    op: &Operator<'_>,
    option: &PaymentOption,
    key: &str,
) -> anyhow::Result<()> {
    let notice = format!("comuni/{}/notices/{}", op.istat, option.notice_number);
    let verified = provider
        .verify_notice(op.call(VerifyNoticeRequest {
            name: notice.clone(),
        }))
        .await
        .context("verifying a notice")?
        .into_inner();
    let activation = provider
        .activate_payment(op.call(ActivatePaymentRequest {
            name: notice.clone(),
            psp_id: "DEMO-PSP".to_owned(),
            idempotency_key: key.to_owned(),
            amount_cents: verified.amount_cents,
        }))
        .await
        .context("activating a payment")?
        .into_inner();
    provider
        .send_receipt(op.call(SendReceiptRequest {
            notice,
            psp_id: "DEMO-PSP".to_owned(),
            receipt_id: key.to_owned(),
            amount_cents: verified.amount_cents,
            payment_time: Some(unione_kit::storage::timestamp(
                unione_kit::storage::now_micros(),
            )),
            activation_id: activation.activation_id,
        }))
        .await
        .context("sending a receipt")?;
    Ok(())
}

/// A satisfaction survey at the counter with about forty anonymous answers, so its results
/// are published, and complaints at every stage of their workflow.
async fn seed_listening(
    gateway: Channel,
    op: &Operator<'_>,
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let mut surveys = SurveyServiceClient::new(gateway.clone());
    let question = |text: &str, scale: question::Scale, importance: f64| Question {
        text: text.to_owned(),
        scale: scale as i32,
        importance,
    };
    let survey = surveys
        .create_survey(op.call(CreateSurveyRequest {
            parent: format!("comuni/{}", op.istat),
            survey: Some(Survey {
                title: "Soddisfazione allo sportello anagrafe".to_owned(),
                channel: Contact::Counter as i32,
                questions: vec![
                    question(
                        "Cortesia e competenza del personale",
                        question::Scale::Likert5,
                        2.0,
                    ),
                    question("Tempo di attesa", question::Scale::Likert5, 1.5),
                    question(
                        "Chiarezza delle informazioni ricevute",
                        question::Scale::Likert5,
                        1.0,
                    ),
                    question(
                        "Consiglierebbe il servizio a un conoscente?",
                        question::Scale::Nps010,
                        1.0,
                    ),
                ],
                ..Survey::default()
            }),
            request_id: format!("demo-survey-{}", op.istat),
        }))
        .await
        .context("creating a survey")?
        .into_inner();
    let mood: i32 = rng.random_range(0..2);
    let answers = rng.random_range(36..48);
    for i in 0..answers {
        let likert = |rng: &mut StdRng| (rng.random_range(2..=5) + mood).min(5);
        let response = SurveyResponse {
            answers: vec![
                likert(rng),
                likert(rng),
                likert(rng),
                (rng.random_range(5..=10) + mood).min(10),
            ],
            ..SurveyResponse::default()
        };
        surveys
            .create_survey_response(op.call(CreateSurveyResponseRequest {
                parent: survey.name.clone(),
                response: Some(response),
                request_id: format!("demo-survey-response-{}-{i}", op.istat),
            }))
            .await
            .context("answering a survey")?;
    }

    let mut complaints = ComplaintServiceClient::new(gateway);
    let cases = [
        (
            "tempi di attesa",
            Contact::Counter,
            "Attesa di oltre un'ora allo sportello anagrafe.",
            4,
        ),
        (
            "informazioni",
            Contact::Web,
            "Sul sito mancano gli orari aggiornati degli uffici.",
            2,
        ),
        (
            "pagamenti",
            Contact::Email,
            "Avviso TARI ricevuto con importo errato.",
            1,
        ),
        (
            "accessibilita",
            Contact::Phone,
            "Ascensore del municipio fuori servizio.",
            0,
        ),
        (
            "servizi online",
            Contact::Kiosk,
            "Il totem della frazione non stampa i certificati.",
            3,
        ),
    ];
    let steps = [
        ComplaintStatus::Acknowledged,
        ComplaintStatus::Assessed,
        ComplaintStatus::Answered,
        ComplaintStatus::Closed,
    ];
    for (i, (category, channel, text, progress)) in cases.into_iter().enumerate() {
        let complaint = complaints
            .create_complaint(op.call(CreateComplaintRequest {
                parent: format!("comuni/{}", op.istat),
                complaint: Some(Complaint {
                    category: category.to_owned(),
                    channel: channel as i32,
                    text: text.to_owned(),
                    ..Complaint::default()
                }),
                request_id: format!("demo-complaint-{}-{i}", op.istat),
            }))
            .await
            .context("filing a complaint")?
            .into_inner();
        for status in &steps[..progress] {
            complaints
                .transition_complaint(op.call(TransitionComplaintRequest {
                    name: complaint.name.clone(),
                    status: *status as i32,
                    actor: "Ufficio relazioni con il pubblico".to_owned(),
                }))
                .await
                .context("moving a complaint on")?;
        }
    }
    Ok(())
}

/// The quality office's improvement work: two objectives and a nonconformity found in a
/// complaint, with one corrective action checked effective and one still open.
async fn seed_improvement(gateway: Channel, op: &Operator<'_>) -> anyhow::Result<()> {
    let mut client = ImprovementServiceClient::new(gateway);
    let today = chrono::Utc::now().date_naive();
    let day = |offset: i64| {
        use chrono::Datelike;
        let d = today + chrono::Duration::days(offset);
        date(
            d.year(),
            i32::try_from(d.month()).expect("month"),
            i32::try_from(d.day()).expect("day"),
        )
    };
    for (i, (title, kpi, target, due)) in [
        ("Certificati online oltre il 70%", "UQ0003", 70.0, 120),
        (
            "Attesa allo sportello sotto i 15 minuti",
            "UQ0009",
            15.0,
            60,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        client
            .create_objective(op.call(CreateObjectiveRequest {
                parent: format!("comuni/{}", op.istat),
                objective: Some(Objective {
                    title: title.to_owned(),
                    kpi: format!("comuni/{}/kpis/{kpi}", op.istat),
                    target_value: target,
                    owner_office: "Servizi demografici".to_owned(),
                    due_date: day(due),
                    ..Objective::default()
                }),
                request_id: format!("demo-objective-{}-{i}", op.istat),
            }))
            .await
            .context("creating an objective")?;
    }
    let nonconformity = client
        .create_nonconformity(
            op.call(CreateNonconformityRequest {
                parent: format!("comuni/{}", op.istat),
                nonconformity: Some(Nonconformity {
                    description:
                        "Tempi di attesa allo sportello oltre lo standard della carta dei servizi"
                            .to_owned(),
                    source: NonconformitySource::Complaint as i32,
                    detection_date: day(-20),
                    ..Nonconformity::default()
                }),
                request_id: format!("demo-nonconformity-{}", op.istat),
            }),
        )
        .await
        .context("recording a nonconformity")?
        .into_inner();
    client
        .set_root_cause(op.call(SetRootCauseRequest {
            name: nonconformity.name.clone(),
            root_cause: "Un solo sportello aperto il lunedi mattina".to_owned(),
        }))
        .await
        .context("setting a root cause")?;
    for (i, (action, due, checked)) in [
        ("Secondo sportello il lunedi mattina", -5, true),
        ("Prenotazione online degli appuntamenti", 30, false),
    ]
    .into_iter()
    .enumerate()
    {
        let created = client
            .create_corrective_action(op.call(CreateCorrectiveActionRequest {
                parent: nonconformity.name.clone(),
                corrective_action: Some(CorrectiveAction {
                    action: action.to_owned(),
                    owner_office: "Servizi demografici".to_owned(),
                    due_date: day(due),
                    ..CorrectiveAction::default()
                }),
                request_id: format!("demo-action-{}-{i}", op.istat),
            }))
            .await
            .context("planning a corrective action")?
            .into_inner();
        if checked {
            client
                .check_corrective_action(op.call(CheckCorrectiveActionRequest {
                    name: created.name,
                    check_date: day(0),
                    result: EffectivenessResult::Effective as i32,
                }))
                .await
                .context("checking a corrective action")?;
        }
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

async fn seed_quality(
    gateway: Channel,
    op: &Operator<'_>,
    town: &Town,
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let mut client = KpiServiceClient::new(gateway);
    let parent = format!("comuni/{}", town.istat);
    let kpis = client
        .list_kpis(op.call(ListKpisRequest {
            parent: parent.clone(),
            page_size: 500,
            page_token: String::new(),
        }))
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
                    computation: None,
                }),
                request_id: format!("demo-measurement-{}-{}-{i}", town.istat, k.kpi_id),
            };
            client
                .create_measurement(op.call(request))
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
