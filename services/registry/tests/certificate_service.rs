//! CertificateService handlers over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL. DOMAIN.md "Registry": certificates of residence, household status and
//! historical residence at a date; a digital certificate carries a seal and a verification
//! code (QR "contrassegno", CAD art. 23) with which anyone can check it against the original.

mod support;

use tonic::{Code, Request};
use unione_kit::names::routed;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_proto::common::v1::Channel;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::certificate_service_server::CertificateService;
use unione_proto::registry::v1::household_service_server::HouseholdService;
use unione_registry::domain::certificate::seal_verifies;
use unione_registry::{CertificateApi, HouseholdApi};

use support::*;

async fn api(t: &TestDatabase) -> CertificateApi {
    migrate(t).await;
    CertificateApi::new(t.db.clone(), served())
}

fn issue_request(
    resident: &str,
    kind: pb::CertificateType,
    as_of: Option<(i32, i32, i32)>,
    channel: Channel,
    request_id: &str,
) -> pb::IssueCertificateRequest {
    pb::IssueCertificateRequest {
        parent: format!("comuni/{SARZANA}"),
        certificate: Some(pb::Certificate {
            r#type: kind.into(),
            resident: resident.to_owned(),
            as_of: as_of.and_then(|(y, m, d)| date(y, m, d)),
            channel: channel.into(),
            ..Default::default()
        }),
        request_id: request_id.to_owned(),
    }
}

fn issue(
    resident: &str,
    kind: pb::CertificateType,
    as_of: Option<(i32, i32, i32)>,
    channel: Channel,
) -> Request<pb::IssueCertificateRequest> {
    as_operator(SARZANA, issue_request(resident, kind, as_of, channel, ""))
}

/// Anyone may verify: no principal.
fn verify(istat: &str, code: &str) -> Request<pb::VerifyCertificateRequest> {
    routed(
        istat,
        pb::VerifyCertificateRequest {
            parent: format!("comuni/{SARZANA}"),
            verification_code: code.to_owned(),
        },
    )
}

async fn certificates(t: &TestDatabase) -> i64 {
    count(t, "SELECT COUNT(*) FROM registry_certificates").await
}

fn json(content: &str) -> serde_json::Value {
    serde_json::from_str(content).expect("the content is JSON")
}

/// CAD art. 23 (DOMAIN.md "Registry"): an issued certificate is sealed with the comune's key
/// and carries a verification code; anyone, without a principal, gets the sealed content back
/// with the code and learns that the seal verifies. The channel and the issuer are recorded.
/// The PDF is a PDF 1.4 document that carries the verification code.
#[tokio::test]
async fn a_certificate_is_issued_sealed_and_verified() {
    for t in testing::all().await {
        let api = api(&t).await;
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let cert = api
            .issue_certificate(issue(
                &rossi.name,
                pb::CertificateType::Residence,
                None,
                Channel::Kiosk,
            ))
            .await
            .expect("issued")
            .into_inner();
        assert!(
            cert.name
                .starts_with(&format!("comuni/{SARZANA}/certificates/"))
        );
        assert_eq!(cert.verification_code.len(), 12, "{}", t.label);
        let content = json(&cert.content);
        assert_eq!(content["type"], "RESIDENCE");
        assert_eq!(content["comune"]["istat"], SARZANA);
        assert_eq!(content["comune"]["name"], "Sarzana");
        assert_eq!(
            content["person"]["codice_fiscale"],
            rossi.codice_fiscale.as_str()
        );
        assert_eq!(content["address"]["street"], "Via Mazzini");
        assert_eq!(content["channel"], "KIOSK");
        assert_eq!(
            content["verification_code"],
            cert.verification_code.as_str()
        );
        assert!(
            seal_verifies(&cert.public_key, &cert.content, &cert.seal),
            "{}",
            t.label
        );

        assert!(cert.pdf.starts_with(b"%PDF-1.4"), "{}", t.label);
        assert!(cert.pdf.ends_with(b"%%EOF"), "{}", t.label);
        let pdf = String::from_utf8_lossy(&cert.pdf);
        assert!(
            pdf.contains(&cert.verification_code),
            "{}: the PDF shows the code",
            t.label
        );
        assert!(pdf.contains("/BaseFont /Helvetica"));

        let checked = api
            .verify_certificate(verify(SARZANA, &cert.verification_code.to_lowercase()))
            .await
            .expect("verified without a principal")
            .into_inner();
        assert!(checked.seal_valid, "{}", t.label);
        assert_eq!(
            (checked.content, checked.seal),
            (cert.content.clone(), cert.seal.clone())
        );
        assert_eq!(checked.certificate, cert.name);

        let (channel, issuer): (String, String) =
            sqlx::query_as("SELECT channel, issued_by FROM registry_certificates")
                .fetch_one(t.db.pool())
                .await
                .expect("stored");
        assert_eq!(
            (channel.as_str(), issuer.as_str()),
            ("KIOSK", "op-1"),
            "{}",
            t.label
        );

        // A second certificate reuses the comune's key and gets another code.
        let second = api
            .issue_certificate(issue(
                &rossi.name,
                pb::CertificateType::Residence,
                None,
                Channel::Web,
            ))
            .await
            .expect("issued")
            .into_inner();
        assert_eq!(second.public_key, cert.public_key);
        assert_ne!(second.verification_code, cert.verification_code);
    }
}

/// CAD art. 23 (DOMAIN.md "Registry"): a modified document fails verification.
#[tokio::test]
async fn a_tampered_certificate_fails_verification() {
    for t in testing::all().await {
        let api = api(&t).await;
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let cert = api
            .issue_certificate(issue(
                &rossi.name,
                pb::CertificateType::Residence,
                None,
                Channel::Counter,
            ))
            .await
            .expect("issued")
            .into_inner();
        sqlx::query(
            "UPDATE registry_certificates SET content = REPLACE(content, 'Via Mazzini', 'Via Garibaldi')",
        )
        .execute(t.db.pool())
        .await
        .expect("tampered");
        let checked = api
            .verify_certificate(verify(SARZANA, &cert.verification_code))
            .await
            .expect("still found")
            .into_inner();
        assert!(checked.content.contains("Via Garibaldi"), "{}", t.label);
        assert!(
            !checked.seal_valid,
            "{}: a modified document fails",
            t.label
        );
    }
}

/// DOMAIN.md "Registry": the historical residence certificate states the address at a past
/// date; the household status lists the household at the date, the head first.
#[tokio::test]
async fn historical_residence_and_household_status_read_the_past() {
    for t in testing::all().await {
        let api = api(&t).await;
        let households = HouseholdApi::new(t.db.clone(), served());
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let bianchi = register(&t, SARZANA, person("Bianchi", "Anna", (1982, 2, 2), true)).await;
        households
            .create_residence_event(as_operator(
                SARZANA,
                pb::CreateResidenceEventRequest {
                    parent: rossi.name.clone(),
                    event: Some(pb::ResidenceEvent {
                        kind: pb::ResidenceEventKind::AddressChange.into(),
                        effective_date: date(2020, 6, 1),
                        address: Some(address("Via Roma", "3")),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("moved");
        let household = households
            .create_household(as_operator(
                SARZANA,
                pb::CreateHouseholdRequest {
                    parent: format!("comuni/{SARZANA}"),
                    head: rossi.name.clone(),
                    start_date: date(2020, 6, 1),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("a household")
            .into_inner();
        households
            .add_household_member(as_operator(
                SARZANA,
                pb::AddHouseholdMemberRequest {
                    household: household.name.clone(),
                    resident: bianchi.name.clone(),
                    relationship: pb::Relationship::Spouse.into(),
                    effective_date: date(2021, 1, 1),
                },
            ))
            .await
            .expect("joins");

        let old = api
            .issue_certificate(issue(
                &rossi.name,
                pb::CertificateType::HistoricalResidence,
                Some((2019, 1, 1)),
                Channel::Web,
            ))
            .await
            .expect("historical")
            .into_inner();
        let content = json(&old.content);
        assert_eq!(content["as_of"], "2019-01-01");
        assert_eq!(content["address"]["street"], "Via Mazzini", "{}", t.label);

        let family = api
            .issue_certificate(issue(
                &bianchi.name,
                pb::CertificateType::HouseholdStatus,
                None,
                Channel::Counter,
            ))
            .await
            .expect("household status")
            .into_inner();
        let content = json(&family.content);
        let members = content["household"].as_array().expect("members");
        assert_eq!(members.len(), 2, "{}", t.label);
        assert_eq!(members[0]["relationship"], "HEAD");
        assert_eq!(
            members[0]["person"]["codice_fiscale"],
            rossi.codice_fiscale.as_str()
        );
        assert_eq!(members[1]["relationship"], "SPOUSE");

        let before = certificates(&t).await;
        let err = api
            .issue_certificate(issue(
                &rossi.name,
                pb::CertificateType::HistoricalResidence,
                Some((2014, 1, 1)),
                Channel::Web,
            ))
            .await
            .expect_err("not yet resident");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "NOT_RESIDENT",
            Some("certificate.as_of"),
            t.label,
        );
        let err = api
            .issue_certificate(issue(
                &rossi.name,
                pb::CertificateType::HistoricalResidence,
                Some((2999, 1, 1)),
                Channel::Web,
            ))
            .await
            .expect_err("in the future");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_DATE",
            Some("certificate.as_of"),
            t.label,
        );
        assert_eq!(
            certificates(&t).await,
            before,
            "{}: nothing issued",
            t.label
        );
    }
}

/// Issuing records who asked (a principal is required); only the comune's operators or the
/// citizen concerned may ask (to another citizen the person is not found). Verifying needs no principal, but the routing rules (AIP-4222)
/// still hold. Bad input names its field and issues nothing.
#[tokio::test]
async fn access_routing_and_bad_input_are_refused() {
    for t in testing::all().await {
        let api = api(&t).await;
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let ask = || {
            issue_request(
                &rossi.name,
                pb::CertificateType::Residence,
                None,
                Channel::Web,
                "",
            )
        };

        let err = api
            .issue_certificate(routed(SARZANA, ask()))
            .await
            .expect_err("no principal");
        assert_error(
            &err,
            Code::Unauthenticated,
            "PRINCIPAL_REQUIRED",
            None,
            t.label,
        );
        let err = api
            .issue_certificate(as_principal(
                SARZANA,
                ask(),
                Role::Citizen,
                Some("BNCNNA82B42I449X"),
            ))
            .await
            .expect_err("another citizen");
        // Another person is NOT_FOUND to a citizen, as a missing one (issue 8).
        assert_error(
            &err,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("certificate.resident"),
            t.label,
        );
        api.issue_certificate(as_principal(
            SARZANA,
            ask(),
            Role::Citizen,
            Some(&rossi.codice_fiscale),
        ))
        .await
        .expect("the citizen concerned");
        let before = certificates(&t).await;

        let mut no_channel = ask();
        if let Some(c) = no_channel.certificate.as_mut() {
            c.channel = Channel::Unspecified.into();
        }
        let err = api
            .issue_certificate(as_operator(SARZANA, no_channel))
            .await
            .expect_err("no channel");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("certificate.channel"),
            t.label,
        );
        let err = api
            .issue_certificate(issue(
                &format!("comuni/{SARZANA}/residents/nobody"),
                pb::CertificateType::Residence,
                None,
                Channel::Web,
            ))
            .await
            .expect_err("no such resident");
        assert_error(
            &err,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("certificate.resident"),
            t.label,
        );
        let err = api
            .issue_certificate(as_operator(ARCOLA, ask()))
            .await
            .expect_err("routed for Arcola");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("parent"),
            t.label,
        );
        let mut luni = ask();
        luni.parent = format!("comuni/{LUNI}");
        let err = api
            .issue_certificate(as_operator(LUNI, luni))
            .await
            .expect_err("Luni not served");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("parent"),
            t.label,
        );
        assert_eq!(
            certificates(&t).await,
            before,
            "{}: nothing issued",
            t.label
        );

        let err = api
            .verify_certificate(verify(ARCOLA, "ABCDEFGH2345"))
            .await
            .expect_err("mismatch");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("parent"),
            t.label,
        );
        let err = api
            .verify_certificate(verify(SARZANA, "ABC"))
            .await
            .expect_err("malformed");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_VERIFICATION_CODE",
            Some("verification_code"),
            t.label,
        );
        let err = api
            .verify_certificate(verify(SARZANA, "ABCD-EFGH-2345"))
            .await
            .expect_err("unknown");
        assert_error(
            &err,
            Code::NotFound,
            "CERTIFICATE_NOT_FOUND",
            Some("verification_code"),
            t.label,
        );
    }
}

/// AIP-155 (DOMAIN.md "Idempotency keys"): a retried issue returns the first certificate
/// (same code, same seal) and issues nothing more.
#[tokio::test]
async fn an_issue_is_idempotent_on_request_id() {
    for t in testing::all().await {
        let api = api(&t).await;
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let ask = || {
            as_operator(
                SARZANA,
                issue_request(
                    &rossi.name,
                    pb::CertificateType::Residence,
                    None,
                    Channel::Counter,
                    "c-1",
                ),
            )
        };
        let first = api
            .issue_certificate(ask())
            .await
            .expect("issued")
            .into_inner();
        let again = api
            .issue_certificate(ask())
            .await
            .expect("replayed")
            .into_inner();
        assert_eq!(first, again, "{}", t.label);
        assert_eq!(certificates(&t).await, 1, "{}", t.label);
    }
}
