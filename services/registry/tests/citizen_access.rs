//! A citizen on their own registry data, through the handlers as the gateway reaches them (a
//! citizen principal with the codice fiscale of their token), on SQLite and (with
//! `TEST_DATABASE_URL`) PostgreSQL.
//!
//! Issue 8: a citizen sees their residence and household, has certificates issued about
//! themselves and downloads them again, and cannot read or act on anyone else's record,
//! whatever name they pass: another person's record is NOT_FOUND, exactly as a missing one
//! (AIP-193 and DOMAIN.md "Federation": a refusal never says whether the record exists).
//! Writes only the comune's staff make are PERMISSION_DENIED.

mod support;

use tonic::{Code, Request};
use unione_kit::principal::Principal;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_proto::common::v1::Channel;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::certificate_service_server::CertificateService;
use unione_proto::registry::v1::household_service_server::HouseholdService;
use unione_proto::registry::v1::resident_service_server::ResidentService;
use unione_registry::{CertificateApi, HouseholdApi, ResidentApi};

use support::*;

/// A request routed to Sarzana, made by the citizen whose codice fiscale is `cf`.
fn by_citizen<T>(cf: &str, message: T) -> Request<T> {
    let mut request = as_principal(SARZANA, message, Role::Citizen, Some(cf));
    if let Some(who) = request.extensions_mut().get_mut::<Principal>() {
        who.sub = format!("cit-{cf}");
        who.comuni.clear();
    }
    request
}

fn residence_certificate(resident: &str) -> pb::IssueCertificateRequest {
    pb::IssueCertificateRequest {
        parent: format!("comuni/{SARZANA}"),
        certificate: Some(pb::Certificate {
            r#type: pb::CertificateType::Residence.into(),
            resident: resident.to_owned(),
            channel: Channel::Web.into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

fn list_certificates(resident: &str) -> pb::ListCertificatesRequest {
    pb::ListCertificatesRequest {
        parent: format!("comuni/{SARZANA}"),
        resident: resident.to_owned(),
        page_size: 0,
        page_token: String::new(),
    }
}

/// Asserts that `status` is the NOT_FOUND a missing record gets.
fn assert_hidden(status: &tonic::Status, field: &str, label: &str) {
    assert_error(
        status,
        Code::NotFound,
        "RESOURCE_NOT_FOUND",
        Some(field),
        label,
    );
}

struct People {
    rossi: pb::Resident,
    bianchi: pb::Resident,
    household: pb::Household,
}

/// Rossi and Bianchi, residents of Sarzana; Rossi heads a household that Bianchi is not in.
async fn people(t: &TestDatabase) -> People {
    migrate(t).await;
    let rossi = register(t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
    let bianchi = register(t, SARZANA, person("Bianchi", "Anna", (1982, 2, 2), true)).await;
    let household = HouseholdApi::new(t.db.clone(), served())
        .create_household(as_operator(
            SARZANA,
            pb::CreateHouseholdRequest {
                parent: format!("comuni/{SARZANA}"),
                head: rossi.name.clone(),
                start_date: date(2016, 1, 1),
                request_id: String::new(),
            },
        ))
        .await
        .expect("the household is formed")
        .into_inner();
    People {
        rossi,
        bianchi,
        household,
    }
}

/// A citizen finds their own record by listing (they do not know its id), reads it, their
/// household and their residence; another person's record, household and residence are
/// NOT_FOUND, as missing ones; registering a resident is for staff only.
#[tokio::test]
async fn a_citizen_reads_their_own_residence_and_household_only() {
    for t in testing::all().await {
        let l = t.label;
        let p = people(&t).await;
        let residents = ResidentApi::new(t.db.clone(), served());
        let households = HouseholdApi::new(t.db.clone(), served());
        let rossi_cf = p.rossi.codice_fiscale.as_str();
        let bianchi_cf = p.bianchi.codice_fiscale.as_str();

        let listed = residents
            .list_residents(by_citizen(
                rossi_cf,
                pb::ListResidentsRequest {
                    parent: format!("comuni/{SARZANA}"),
                    page_size: 0,
                    page_token: String::new(),
                    ..pb::ListResidentsRequest::default()
                },
            ))
            .await
            .expect("a citizen lists")
            .into_inner();
        assert_eq!(
            listed
                .residents
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            vec![p.rossi.name.as_str()],
            "{l}: the list holds the citizen's own record only"
        );
        assert!(listed.next_page_token.is_empty(), "{l}");

        let own = residents
            .get_resident(by_citizen(
                rossi_cf,
                pb::GetResidentRequest {
                    name: p.rossi.name.clone(),
                },
            ))
            .await
            .expect("their own record")
            .into_inner();
        assert_eq!(own.codice_fiscale, rossi_cf, "{l}");
        let err = residents
            .get_resident(by_citizen(
                bianchi_cf,
                pb::GetResidentRequest {
                    name: p.rossi.name.clone(),
                },
            ))
            .await
            .expect_err("another person's record");
        assert_hidden(&err, "name", l);
        let missing = residents
            .get_resident(by_citizen(
                bianchi_cf,
                pb::GetResidentRequest {
                    name: format!("comuni/{SARZANA}/residents/0123456789abcdef"),
                },
            ))
            .await
            .expect_err("a missing record");
        assert_hidden(&missing, "name", l);

        let get_household = |cf: &str| {
            households.get_household(by_citizen(
                cf,
                pb::GetHouseholdRequest {
                    name: p.household.name.clone(),
                    as_of: None,
                },
            ))
        };
        let household = get_household(rossi_cf)
            .await
            .expect("their own household")
            .into_inner();
        assert_eq!(household.members.len(), 1, "{l}");
        assert_eq!(household.members[0].resident, p.rossi.name, "{l}");
        let err = get_household(bianchi_cf)
            .await
            .expect_err("a household they are not in");
        assert_hidden(&err, "name", l);

        let residence = |cf: &str, name: &str| {
            households.get_residence_at_date(by_citizen(
                cf,
                pb::GetResidenceAtDateRequest {
                    name: name.to_owned(),
                    date: date(2020, 6, 1),
                },
            ))
        };
        let at = residence(rossi_cf, &p.rossi.name)
            .await
            .expect("their own residence")
            .into_inner();
        assert_eq!(at.household, p.household.name, "{l}");
        let err = residence(bianchi_cf, &p.rossi.name)
            .await
            .expect_err("another's residence");
        assert_hidden(&err, "name", l);
        let err = households
            .list_residence_events(by_citizen(
                bianchi_cf,
                pb::ListResidenceEventsRequest {
                    parent: p.rossi.name.clone(),
                    page_size: 0,
                    page_token: String::new(),
                },
            ))
            .await
            .expect_err("another's residence events");
        assert_hidden(&err, "parent", l);
        let events = households
            .list_residence_events(by_citizen(
                rossi_cf,
                pb::ListResidenceEventsRequest {
                    parent: p.rossi.name.clone(),
                    page_size: 0,
                    page_token: String::new(),
                },
            ))
            .await
            .expect("their own residence events")
            .into_inner();
        assert_eq!(events.events.len(), 1, "{l}: the registration");

        let before = count(&t, "SELECT COUNT(*) FROM registry_residents").await;
        let err = residents
            .create_resident(by_citizen(
                rossi_cf,
                pb::CreateResidentRequest {
                    parent: format!("comuni/{SARZANA}"),
                    resident: Some(person("Verdi", "Luca", (1990, 3, 3), false)),
                    request_id: String::new(),
                },
            ))
            .await
            .expect_err("a citizen does not register residents");
        assert_error(&err, Code::PermissionDenied, "ROLE_NOT_ALLOWED", None, l);
        let err = households
            .add_household_member(by_citizen(
                rossi_cf,
                pb::AddHouseholdMemberRequest {
                    household: p.household.name.clone(),
                    resident: p.bianchi.name.clone(),
                    relationship: pb::Relationship::Cohabitant.into(),
                    effective_date: date(2020, 1, 1),
                },
            ))
            .await
            .expect_err("a citizen does not change the register");
        assert_eq!(err.code(), Code::PermissionDenied, "{l}");
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM registry_residents").await,
            before,
            "{l}: nothing written"
        );
    }
}

/// A citizen has a certificate about themselves issued, lists their certificates and gets
/// one again with the same PDF (DOMAIN.md "Registry": a seal and a verification code, CAD
/// art. 23); another person's certificate, or a certificate about another person, is
/// NOT_FOUND whatever name they pass.
#[tokio::test]
async fn a_citizen_gets_their_certificates_again_and_nobody_elses() {
    for t in testing::all().await {
        let l = t.label;
        let p = people(&t).await;
        let api = CertificateApi::new(t.db.clone(), served());
        let rossi_cf = p.rossi.codice_fiscale.as_str();
        let bianchi_cf = p.bianchi.codice_fiscale.as_str();

        let issued = api
            .issue_certificate(by_citizen(rossi_cf, residence_certificate(&p.rossi.name)))
            .await
            .expect("a certificate about themselves")
            .into_inner();
        // One issued by the counter about Bianchi, which Rossi must never see.
        let other = api
            .issue_certificate(as_operator(SARZANA, residence_certificate(&p.bianchi.name)))
            .await
            .expect("the operator issues")
            .into_inner();

        let before = count(&t, "SELECT COUNT(*) FROM registry_certificates").await;
        let err = api
            .issue_certificate(by_citizen(rossi_cf, residence_certificate(&p.bianchi.name)))
            .await
            .expect_err("about another person");
        assert_hidden(&err, "certificate.resident", l);
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM registry_certificates").await,
            before,
            "{l}: nothing issued"
        );

        let again = api
            .get_certificate(by_citizen(
                rossi_cf,
                pb::GetCertificateRequest {
                    name: issued.name.clone(),
                },
            ))
            .await
            .expect("their own certificate again")
            .into_inner();
        assert_eq!(again, issued, "{l}: the same certificate, PDF included");
        assert!(again.pdf.starts_with(b"%PDF-1.4"), "{l}");
        let err = api
            .get_certificate(by_citizen(
                rossi_cf,
                pb::GetCertificateRequest {
                    name: other.name.clone(),
                },
            ))
            .await
            .expect_err("another person's certificate");
        assert_hidden(&err, "name", l);
        // The operator gets either.
        api.get_certificate(as_operator(
            SARZANA,
            pb::GetCertificateRequest {
                name: other.name.clone(),
            },
        ))
        .await
        .expect("the operator reads any");

        let names = |r: pb::ListCertificatesResponse| -> Vec<String> {
            r.certificates.into_iter().map(|c| c.name).collect()
        };
        let own = api
            .list_certificates(by_citizen(rossi_cf, list_certificates("")))
            .await
            .expect("their certificates")
            .into_inner();
        assert!(own.certificates.iter().all(|c| c.pdf.is_empty()), "{l}");
        assert_eq!(names(own), vec![issued.name.clone()], "{l}");
        let theirs = api
            .list_certificates(by_citizen(bianchi_cf, list_certificates("")))
            .await
            .expect("their certificates")
            .into_inner();
        assert_eq!(names(theirs), vec![other.name.clone()], "{l}");
        let err = api
            .list_certificates(by_citizen(rossi_cf, list_certificates(&p.bianchi.name)))
            .await
            .expect_err("another person's certificates");
        assert_hidden(&err, "resident", l);
        let all = api
            .list_certificates(as_operator(SARZANA, list_certificates("")))
            .await
            .expect("the operator lists")
            .into_inner();
        assert_eq!(
            names(all),
            vec![other.name.clone(), issued.name.clone()],
            "{l}: every certificate, newest first"
        );

        // Pages of one: the token carries on, and belongs to this citizen's listing only.
        let mut first = list_certificates("");
        first.page_size = 1;
        let page = api
            .list_certificates(as_operator(SARZANA, first.clone()))
            .await
            .expect("a first page")
            .into_inner();
        assert_eq!(names(page.clone()), vec![other.name.clone()], "{l}");
        let mut next = first.clone();
        next.page_token = page.next_page_token.clone();
        let second = api
            .list_certificates(as_operator(SARZANA, next.clone()))
            .await
            .expect("a second page")
            .into_inner();
        assert_eq!(names(second), vec![issued.name.clone()], "{l}");
        let err = api
            .list_certificates(by_citizen(rossi_cf, next))
            .await
            .expect_err("another listing's token");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_PAGE_TOKEN",
            Some("page_token"),
            l,
        );

        // Bianchi's own key, replayed by Rossi with the same request, is not Rossi's: the
        // request runs for Rossi, and about Bianchi it finds nobody (AIP-155 keys are per
        // citizen).
        let mut keyed = residence_certificate(&p.bianchi.name);
        keyed.request_id = "key-1".to_owned();
        api.issue_certificate(by_citizen(bianchi_cf, keyed.clone()))
            .await
            .expect("Bianchi has one issued");
        let err = api
            .issue_certificate(by_citizen(rossi_cf, keyed))
            .await
            .expect_err("a replay of another citizen's key");
        assert_hidden(&err, "certificate.resident", l);
    }
}
