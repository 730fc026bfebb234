//! Citizens through the gateway (issue 8), end to end in process: a real node
//! (`unione_node`, SQLite) and the real gateway under mutual TLS, called with real tokens.
//!
//! An operator registers two residents; citizen A, signed in with a token carrying their
//! codice fiscale, finds their own record, sees their household, has a residence certificate
//! issued (anyone verifies its code with no token) and downloads it again, submits an online
//! case with a document and answers the office's request for integration, and lists the
//! notices they have to pay. Citizen B, asking for A's case, certificate, household or record
//! by name, gets NOT_FOUND, as for records that do not exist (DOMAIN.md "Federation": the end
//! user travels with the call as an authenticated principal; a refusal never reveals whether
//! a record exists); B's lists hold only B's own data; staff methods are refused to citizens
//! at the gateway.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tonic::transport::Channel;
use tonic::{Code, Request};
use unione_gateway::directory::{DirectoryFile, MemberEntry, NodeEntry};
use unione_kit::certs::Kind;
use unione_kit::error::reason_and_field;
use unione_kit::names::routed;
use unione_kit::token::Role;
use unione_kit::{ComuneProfile, Istat};
use unione_node::config::ServedComune;
use unione_node::{Function, NodeConfig, RunningNode};
use unione_proto::common::v1::Channel as RequestChannel;
use unione_proto::federation::v1::directory_service_client::DirectoryServiceClient;
use unione_proto::federation::v1::{GetFederationHealthRequest, ServingStatus};
use unione_proto::google::r#type::Date;
use unione_proto::payments::v1 as payments;
use unione_proto::payments::v1::debt_position_service_client::DebtPositionServiceClient;
use unione_proto::registry::v1 as registry;
use unione_proto::registry::v1::case_service_client::CaseServiceClient;
use unione_proto::registry::v1::certificate_service_client::CertificateServiceClient;
use unione_proto::registry::v1::household_service_client::HouseholdServiceClient;
use unione_proto::registry::v1::resident_service_client::ResidentServiceClient;
use unione_registry::domain::codice_fiscale;

const SARZANA: &str = "011027";
/// Sarzana's synthetic fiscal code (its Luhn check digit is valid).
const SARZANA_CF: &str = "00110270113";
const IBAN: &str = "IT60X0542811101000000123456";

async fn sarzana_node(root: &Path) -> RunningNode {
    let config = NodeConfig {
        node_id: "sarzana".to_owned(),
        listen: "127.0.0.1:0".to_owned(),
        data_dir: root.join("sarzana").display().to_string(),
        tls: support::tls_files(&root.join("certs"), Kind::Node, "sarzana"),
        comuni: vec![ServedComune {
            profile: ComuneProfile {
                istat: Istat::parse(SARZANA).expect("a six-digit code"),
                name: "Sarzana".to_owned(),
                fiscal_code: SARZANA_CF.to_owned(),
                cadastral_code: "I449".to_owned(),
                segregation_code: "01".to_owned(),
                ipa_code: "c_i449".to_owned(),
                population: 22_000,
            },
            functions: Function::ALL.to_vec(),
        }],
        ..NodeConfig::default()
    };
    unione_node::start(config).await.expect("the node starts")
}

/// `message` routed to Sarzana with `token`.
fn call<T>(token: &str, message: T) -> Request<T> {
    let mut request = routed(SARZANA, message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn resident(family: &str, given: &str, birth: NaiveDate, female: bool) -> registry::Resident {
    registry::Resident {
        codice_fiscale: codice_fiscale::compute(family, given, birth, female, "I449"),
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        birth_date: date(
            chrono::Datelike::year(&birth),
            i32::try_from(chrono::Datelike::month(&birth)).expect("month"),
            i32::try_from(chrono::Datelike::day(&birth)).expect("day"),
        ),
        birth_place_code: "I449".to_owned(),
        sex: if female {
            registry::Sex::Female
        } else {
            registry::Sex::Male
        }
        .into(),
        citizenship: "IT".to_owned(),
        address: Some(registry::Address {
            street: "Via Mazzini".to_owned(),
            house_number: "12".to_owned(),
            postal_code: "19038".to_owned(),
            locality: String::new(),
        }),
        registration_date: date(2015, 3, 2),
        registration_reason: registry::RegistrationReason::ImmigrationFromComune.into(),
        ..Default::default()
    }
}

/// NOT_FOUND with the reason a missing record gets.
fn assert_hidden(status: &tonic::Status, what: &str) {
    assert_eq!(status.code(), Code::NotFound, "{what}: {status:?}");
    assert_eq!(
        reason_and_field(status).0,
        "RESOURCE_NOT_FOUND",
        "{what}: {status:?}"
    );
}

async fn wait_serving(channel: &Channel, token: &str) {
    let mut client = DirectoryServiceClient::new(channel.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut request = Request::new(GetFederationHealthRequest {});
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
        let health = client
            .get_federation_health(request)
            .await
            .expect("health answers")
            .into_inner();
        if health
            .members
            .iter()
            .any(|m| m.status == ServingStatus::Serving as i32)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Sarzana never served: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_acts_on_their_own_data_and_nobody_elses() {
    unione_kit::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let (keys, signer) = support::secrets(root);

    let node = sarzana_node(root).await;
    let directory = DirectoryFile {
        members: vec![MemberEntry {
            istat: SARZANA.to_owned(),
            name: "Sarzana".to_owned(),
            fiscal_code: SARZANA_CF.to_owned(),
            cadastral_code: "I449".to_owned(),
            population: 22_000,
            province: "SP".to_owned(),
            peer_group: "test".to_owned(),
            ipa_code: "c_i449".to_owned(),
            segregation_code: "01".to_owned(),
        }],
        nodes: vec![NodeEntry {
            node_id: "sarzana".into(),
            endpoint: format!("https://{}", node.addr),
        }],
        provisions: support::provisions(SARZANA, "sarzana"),
        revoked_certificates: Vec::new(),
    };
    let file = root.join("directory.toml");
    std::fs::write(&file, toml::to_string(&directory).expect("toml")).expect("written");
    let gateway = unione_gateway::start(support::gateway_config(root, &file, &keys))
        .await
        .expect("the gateway starts");
    let channel = support::client(&gateway, root).await;

    let operator = signer.issue("op-1", Role::Operator, vec![SARZANA.into()], None, 1);
    wait_serving(&channel, &operator).await;
    let mut residents = ResidentServiceClient::new(channel.clone());
    let mut households = HouseholdServiceClient::new(channel.clone());
    let mut certificates = CertificateServiceClient::new(channel.clone());
    let mut cases = CaseServiceClient::new(channel.clone());
    let mut positions = DebtPositionServiceClient::new(channel.clone());

    // The operator seeds two residents, A's household, a procedure type and A's notice.
    let mut register = async |r: registry::Resident| {
        residents
            .create_resident(call(
                &operator,
                registry::CreateResidentRequest {
                    parent: format!("comuni/{SARZANA}"),
                    resident: Some(r),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("the operator registers")
            .into_inner()
    };
    let birth_a = NaiveDate::from_ymd_opt(1980, 1, 1).expect("a date");
    let birth_b = NaiveDate::from_ymd_opt(1982, 2, 2).expect("a date");
    let a = register(resident("Rossi", "Mario", birth_a, false)).await;
    let b = register(resident("Bianchi", "Anna", birth_b, true)).await;
    let household = households
        .create_household(call(
            &operator,
            registry::CreateHouseholdRequest {
                parent: format!("comuni/{SARZANA}"),
                head: a.name.clone(),
                start_date: date(2016, 1, 1),
                request_id: String::new(),
            },
        ))
        .await
        .expect("the household is formed")
        .into_inner();
    cases
        .create_procedure_type(call(
            &operator,
            registry::CreateProcedureTypeRequest {
                parent: format!("comuni/{SARZANA}"),
                procedure_type: Some(registry::ProcedureType {
                    code: "SUOLO".to_owned(),
                    title: "Occupazione di suolo pubblico".to_owned(),
                    legal_days: 30,
                    office: "SUAP".to_owned(),
                    classification: "6.3".to_owned(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("the procedure type is created");
    let notice = positions
        .create_debt_position(call(
            &operator,
            payments::CreateDebtPositionRequest {
                parent: format!("comuni/{SARZANA}"),
                debt_position: Some(payments::DebtPosition {
                    debtor_fiscal_code: a.codice_fiscale.clone(),
                    description: "TARI 2026".to_owned(),
                    payment_options: vec![payments::PaymentOption {
                        amount_cents: 11_550,
                        due_date: date(2099, 9, 30),
                        installment: false,
                        transfers: vec![payments::Transfer {
                            creditor_fiscal_code: SARZANA_CF.to_owned(),
                            iban: IBAN.to_owned(),
                            amount_cents: 11_550,
                            remittance_information: "TARI 2026".to_owned(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("the operator creates A's position")
        .into_inner();

    let citizen_a = signer.issue(
        "spid-a",
        Role::Citizen,
        Vec::new(),
        Some(a.codice_fiscale.clone()),
        1,
    );
    let citizen_b = signer.issue(
        "spid-b",
        Role::Citizen,
        Vec::new(),
        Some(b.codice_fiscale.clone()),
        1,
    );
    let list_residents = || registry::ListResidentsRequest {
        parent: format!("comuni/{SARZANA}"),
        page_size: 0,
        page_token: String::new(),
        ..registry::ListResidentsRequest::default()
    };

    // A finds their own record (and only it), reads their household.
    let own = residents
        .list_residents(call(&citizen_a, list_residents()))
        .await
        .expect("A lists")
        .into_inner();
    assert_eq!(
        own.residents
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        vec![a.name.as_str()]
    );
    let family = households
        .get_household(call(
            &citizen_a,
            registry::GetHouseholdRequest {
                name: household.name.clone(),
                as_of: None,
            },
        ))
        .await
        .expect("A reads their household")
        .into_inner();
    assert_eq!(family.members[0].resident, a.name);

    // A has a residence certificate issued, verifies it with no token, downloads it again.
    let certificate = certificates
        .issue_certificate(call(
            &citizen_a,
            registry::IssueCertificateRequest {
                parent: format!("comuni/{SARZANA}"),
                certificate: Some(registry::Certificate {
                    r#type: registry::CertificateType::Residence.into(),
                    resident: a.name.clone(),
                    channel: RequestChannel::Web.into(),
                    ..Default::default()
                }),
                request_id: "cert-1".to_owned(),
            },
        ))
        .await
        .expect("A has a certificate issued")
        .into_inner();
    assert!(certificate.pdf.starts_with(b"%PDF"));
    let verified = certificates
        .verify_certificate(routed(
            SARZANA,
            registry::VerifyCertificateRequest {
                parent: format!("comuni/{SARZANA}"),
                verification_code: certificate.verification_code.clone(),
            },
        ))
        .await
        .expect("anyone verifies")
        .into_inner();
    assert!(verified.seal_valid);
    let again = certificates
        .get_certificate(call(
            &citizen_a,
            registry::GetCertificateRequest {
                name: certificate.name.clone(),
            },
        ))
        .await
        .expect("A downloads it again")
        .into_inner();
    assert_eq!(again.pdf, certificate.pdf);

    // A submits a case with a document; the office asks for an integration; A answers.
    let types = cases
        .list_procedure_types(call(
            &citizen_a,
            registry::ListProcedureTypesRequest {
                parent: format!("comuni/{SARZANA}"),
                page_size: 0,
                page_token: String::new(),
            },
        ))
        .await
        .expect("A lists the procedure types")
        .into_inner();
    let procedure = types.procedure_types[0].name.clone();
    let case = cases
        .submit_case(call(
            &citizen_a,
            registry::SubmitCaseRequest {
                parent: format!("comuni/{SARZANA}"),
                case: Some(registry::Case {
                    procedure_type: procedure,
                    subject: "Dehors estivo".to_owned(),
                    data: "Via Mazzini 12, 20 mq, giugno".to_owned(),
                    documents: vec![registry::Document {
                        file_name: "planimetria.pdf".to_owned(),
                        media_type: "application/pdf".to_owned(),
                        content: b"%PDF-1.7 planimetria".to_vec(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                request_id: "case-1".to_owned(),
            },
        ))
        .await
        .expect("A submits a case")
        .into_inner();
    assert_eq!(case.applicant, a.codice_fiscale);
    assert!(case.clock.as_ref().is_some_and(|c| c.deadline.is_some()));
    cases
        .take_case_in_charge(call(
            &operator,
            registry::TakeCaseInChargeRequest {
                name: case.name.clone(),
                reason: String::new(),
            },
        ))
        .await
        .expect("the office takes it in charge");
    cases
        .request_integration(call(
            &operator,
            registry::RequestIntegrationRequest {
                name: case.name.clone(),
                reason: "Manca la planimetria quotata".to_owned(),
            },
        ))
        .await
        .expect("the office asks for an integration");
    let answered = cases
        .resubmit_case(call(
            &citizen_a,
            registry::ResubmitCaseRequest {
                name: case.name.clone(),
                reason: "Allegata la planimetria quotata".to_owned(),
            },
        ))
        .await
        .expect("A answers the integration")
        .into_inner();
    assert_eq!(answered.state, registry::CaseState::InProgress as i32);

    // A's notices to pay.
    let list_positions = || payments::ListDebtPositionsRequest {
        parent: format!("comuni/{SARZANA}"),
        page_size: 0,
        page_token: String::new(),
    };
    let owed = positions
        .list_debt_positions(call(&citizen_a, list_positions()))
        .await
        .expect("A lists their notices")
        .into_inner();
    assert_eq!(owed.debt_positions.len(), 1);
    assert_eq!(
        owed.debt_positions[0].payment_options[0].notice_number,
        notice.payment_options[0].notice_number
    );

    // B asks for A's data by name: NOT_FOUND every time, as for records that do not exist.
    let err = cases
        .get_case(call(
            &citizen_b,
            registry::GetCaseRequest {
                name: case.name.clone(),
            },
        ))
        .await
        .expect_err("B gets A's case");
    assert_hidden(&err, "A's case");
    let err = certificates
        .get_certificate(call(
            &citizen_b,
            registry::GetCertificateRequest {
                name: certificate.name.clone(),
            },
        ))
        .await
        .expect_err("B gets A's certificate");
    assert_hidden(&err, "A's certificate");
    let err = households
        .get_household(call(
            &citizen_b,
            registry::GetHouseholdRequest {
                name: household.name.clone(),
                as_of: None,
            },
        ))
        .await
        .expect_err("B gets A's household");
    assert_hidden(&err, "A's household");
    let err = residents
        .get_resident(call(
            &citizen_b,
            registry::GetResidentRequest {
                name: a.name.clone(),
            },
        ))
        .await
        .expect_err("B gets A's record");
    assert_hidden(&err, "A's record");
    let err = positions
        .get_debt_position(call(
            &citizen_b,
            payments::GetDebtPositionRequest {
                name: notice.name.clone(),
            },
        ))
        .await
        .expect_err("B gets A's position");
    assert_hidden(&err, "A's position");
    let err = cases
        .resubmit_case(call(
            &citizen_b,
            registry::ResubmitCaseRequest {
                name: case.name.clone(),
                reason: "x".to_owned(),
            },
        ))
        .await
        .expect_err("B acts on A's case");
    assert_hidden(&err, "acting on A's case");

    // B's lists hold only B's data.
    let theirs = residents
        .list_residents(call(&citizen_b, list_residents()))
        .await
        .expect("B lists")
        .into_inner();
    assert_eq!(
        theirs
            .residents
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        vec![b.name.as_str()]
    );
    let none = positions
        .list_debt_positions(call(&citizen_b, list_positions()))
        .await
        .expect("B lists their notices")
        .into_inner();
    assert!(none.debt_positions.is_empty());
    let none = cases
        .list_cases(call(
            &citizen_b,
            registry::ListCasesRequest {
                parent: format!("comuni/{SARZANA}"),
                ..Default::default()
            },
        ))
        .await
        .expect("B lists their cases")
        .into_inner();
    assert!(none.cases.is_empty());

    // Staff methods are refused to a citizen at the gateway.
    let err = cases
        .take_case_in_charge(call(
            &citizen_a,
            registry::TakeCaseInChargeRequest {
                name: case.name.clone(),
                reason: String::new(),
            },
        ))
        .await
        .expect_err("a citizen takes no case in charge");
    assert_eq!(
        (err.code(), reason_and_field(&err).0),
        (Code::PermissionDenied, "ROLE_NOT_ALLOWED".to_owned())
    );

    gateway.stop().await.expect("the gateway stops");
    node.stop().await.expect("the node stops");
}
