//! The registry's log of personal-data reads through the gateway (issue 3, "Access and
//! privacy"), end to end in process: a real node (`unione_node`, SQLite) and the real gateway
//! under mutual TLS, called with real tokens.
//!
//! An operator reads a resident stating why in `x-unione-purpose`: the gateway's proxy carries
//! the header to the node, which logs the operator, the record and the purpose. An auditor
//! (whose token names no comune) and an administrator read the log through the gateway; an
//! operator and a citizen are refused there (PERMISSION_DENIED); a purpose that is too long is
//! INVALID_ARGUMENT naming the header, and logs nothing.

mod support;

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tonic::Code;
use tonic::metadata::MetadataValue;
use unione_gateway::directory::{DirectoryFile, MemberEntry, NodeEntry, ProvisionEntry};
use unione_kit::error::reason_and_field;
use unione_kit::names::routed;
use unione_kit::token::Role;
use unione_node::Function;
use unione_proto::google::r#type::Date;
use unione_proto::registry::v1 as registry;
use unione_proto::registry::v1::access_log_service_client::AccessLogServiceClient;
use unione_proto::registry::v1::resident_service_client::ResidentServiceClient;
use unione_registry::domain::codice_fiscale;

const SARZANA: &str = "011027";
const PURPOSE_HEADER: &str = "x-unione-purpose";

/// `message` routed to Sarzana with `token`, stating `purpose` when given.
fn call<T>(token: &str, purpose: Option<&str>, message: T) -> tonic::Request<T> {
    let mut request = support::authorized(token, routed(SARZANA, message));
    if let Some(purpose) = purpose {
        let value = MetadataValue::try_from(purpose).expect("an ASCII header value");
        request.metadata_mut().insert(PURPOSE_HEADER, value);
    }
    request
}

fn rossi() -> registry::Resident {
    let birth = NaiveDate::from_ymd_opt(1980, 1, 1).expect("a date");
    let date = |year, month, day| Some(Date { year, month, day });
    registry::Resident {
        codice_fiscale: codice_fiscale::compute("Rossi", "Mario", birth, false, "I449"),
        given_name: "Mario".to_owned(),
        family_name: "Rossi".to_owned(),
        birth_date: date(1980, 1, 1),
        birth_place_code: "I449".to_owned(),
        sex: registry::Sex::Male.into(),
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

fn list_log(record: &str) -> registry::ListPersonalDataAccessesRequest {
    registry::ListPersonalDataAccessesRequest {
        parent: format!("comuni/{SARZANA}"),
        record: record.to_owned(),
        page_size: 100,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_the_gateway_are_logged_with_their_purpose() {
    unione_kit::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let (keys, signer) = support::secrets(root);

    let node = support::start_node(
        root,
        "sarzana",
        vec![support::served(
            SARZANA,
            "Sarzana",
            22_000,
            &[Function::Registry],
        )],
    )
    .await;
    let directory = DirectoryFile {
        members: vec![MemberEntry {
            istat: SARZANA.to_owned(),
            name: "Sarzana".to_owned(),
            fiscal_code: format!("001{SARZANA}00"),
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
        provisions: vec![ProvisionEntry {
            comune: SARZANA.to_owned(),
            function: "registry".to_owned(),
            node: "sarzana".to_owned(),
        }],
        revoked_certificates: Vec::new(),
    };
    let file = root.join("directory.toml");
    std::fs::write(&file, toml::to_string(&directory).expect("toml")).expect("written");
    let gateway = unione_gateway::start(support::gateway_config(root, &file, &keys))
        .await
        .expect("the gateway starts");
    let channel = support::client(&gateway, root).await;

    let operator = signer.issue("op-1", Role::Operator, vec![SARZANA.into()], None, 1);
    let auditor = signer.issue("aud-1", Role::Auditor, Vec::new(), None, 1);
    let admin = signer.issue("adm-1", Role::Admin, Vec::new(), None, 1);
    let mut residents = ResidentServiceClient::new(channel.clone());
    let mut log = AccessLogServiceClient::new(channel.clone());

    // The node may not be reachable at once: the registration is retried under its request id.
    let deadline = Instant::now() + Duration::from_secs(20);
    let rossi = loop {
        let created = residents
            .create_resident(call(
                &operator,
                None,
                registry::CreateResidentRequest {
                    parent: format!("comuni/{SARZANA}"),
                    resident: Some(rossi()),
                    request_id: "register-rossi".to_owned(),
                },
            ))
            .await;
        match created {
            Ok(r) => break r.into_inner(),
            Err(e) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the operator registers: {e:?}"),
        }
    };

    residents
        .get_resident(call(
            &operator,
            Some("pratica 42/2026"),
            registry::GetResidentRequest {
                name: rossi.name.clone(),
            },
        ))
        .await
        .expect("the operator reads");
    let err = residents
        .get_resident(call(
            &operator,
            Some(&"x".repeat(201)),
            registry::GetResidentRequest {
                name: rossi.name.clone(),
            },
        ))
        .await
        .expect_err("a purpose too long");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(
        reason_and_field(&err),
        (
            "INVALID_PURPOSE".to_owned(),
            Some(PURPOSE_HEADER.to_owned())
        )
    );

    let logged = log
        .list_personal_data_accesses(call(&auditor, None, list_log(&rossi.name)))
        .await
        .expect("an auditor reads the log")
        .into_inner()
        .personal_data_accesses;
    let seen: Vec<(&str, &str, &str, &str)> = logged
        .iter()
        .map(|r| {
            (
                r.principal.as_str(),
                r.role.as_str(),
                r.method.as_str(),
                r.purpose.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [(
            "op-1",
            "operator",
            "unione.registry.v1.ResidentService/GetResident",
            "pratica 42/2026"
        )],
        "one read, with the purpose the gateway carried"
    );
    log.list_personal_data_accesses(call(&admin, None, list_log("")))
        .await
        .expect("an administrator reads the log");

    let citizen = signer.issue(
        "cit-1",
        Role::Citizen,
        Vec::new(),
        Some(rossi.codice_fiscale.clone()),
        1,
    );
    for (who, token) in [("operator", &operator), ("citizen", &citizen)] {
        let err = log
            .list_personal_data_accesses(call(token, None, list_log("")))
            .await
            .expect_err(who);
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
    }
}
