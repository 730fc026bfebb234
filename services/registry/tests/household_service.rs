//! HouseholdService handlers over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL: residence events read at past dates, household composition at two dates,
//! struck-off records, the ANPR boundary, routing and idempotency. DOMAIN.md "Registry",
//! Residents (DPR 223/1989).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tonic::{Code, Request};
use unione_kit::names::routed;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::household_service_server::HouseholdService;
use unione_registry::HouseholdApi;
use unione_registry::domain::anpr::{AnprAck, AnprChange, AnprConnector, AnprError};

use support::*;

/// An ANPR that refuses every change, counting the calls (test only: a real connector
/// answers from the national register).
#[derive(Debug, Default)]
struct RefusingAnpr {
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl AnprConnector for RefusingAnpr {
    async fn notify(&self, _change: &AnprChange) -> Result<AnprAck, AnprError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(AnprError::Refused {
            code: "EN123".to_owned(),
        })
    }
}

async fn api(t: &TestDatabase) -> HouseholdApi {
    migrate(t).await;
    HouseholdApi::new(t.db.clone(), served())
}

fn event_request(
    resident: &str,
    kind: pb::ResidenceEventKind,
    effective: (i32, i32, i32),
    address: Option<pb::Address>,
    destination: &str,
    request_id: &str,
) -> Request<pb::CreateResidenceEventRequest> {
    as_operator(
        SARZANA,
        pb::CreateResidenceEventRequest {
            parent: resident.to_owned(),
            event: Some(pb::ResidenceEvent {
                kind: kind.into(),
                effective_date: date(effective.0, effective.1, effective.2),
                address,
                destination: destination.to_owned(),
                ..Default::default()
            }),
            request_id: request_id.to_owned(),
        },
    )
}

fn move_to(
    resident: &str,
    effective: (i32, i32, i32),
    street: &str,
) -> Request<pb::CreateResidenceEventRequest> {
    event_request(
        resident,
        pb::ResidenceEventKind::AddressChange,
        effective,
        Some(address(street, "3")),
        "",
        "",
    )
}

async fn residence(
    api: &HouseholdApi,
    resident: &str,
    (y, m, d): (i32, i32, i32),
) -> pb::ResidenceAtDate {
    api.get_residence_at_date(routed(
        SARZANA,
        pb::GetResidenceAtDateRequest {
            name: resident.to_owned(),
            date: date(y, m, d),
        },
    ))
    .await
    .expect("the residence is read")
    .into_inner()
}

async fn household_at(
    api: &HouseholdApi,
    name: &str,
    (y, m, d): (i32, i32, i32),
) -> Vec<(String, i32)> {
    api.get_household(routed(
        SARZANA,
        pb::GetHouseholdRequest {
            name: name.to_owned(),
            as_of: date(y, m, d),
        },
    ))
    .await
    .expect("the household is read")
    .into_inner()
    .members
    .into_iter()
    .map(|m| (m.resident, m.relationship))
    .collect()
}

fn create_household(
    head: &str,
    (y, m, d): (i32, i32, i32),
    request_id: &str,
) -> Request<pb::CreateHouseholdRequest> {
    as_operator(
        SARZANA,
        pb::CreateHouseholdRequest {
            parent: format!("comuni/{SARZANA}"),
            head: head.to_owned(),
            start_date: date(y, m, d),
            request_id: request_id.to_owned(),
        },
    )
}

fn join(
    household: &str,
    resident: &str,
    relationship: pb::Relationship,
    (y, m, d): (i32, i32, i32),
) -> Request<pb::AddHouseholdMemberRequest> {
    as_operator(
        SARZANA,
        pb::AddHouseholdMemberRequest {
            household: household.to_owned(),
            resident: resident.to_owned(),
            relationship: relationship.into(),
            effective_date: date(y, m, d),
        },
    )
}

fn leave(
    household: &str,
    resident: &str,
    (y, m, d): (i32, i32, i32),
) -> Request<pb::RemoveHouseholdMemberRequest> {
    as_operator(
        SARZANA,
        pb::RemoveHouseholdMemberRequest {
            household: household.to_owned(),
            resident: resident.to_owned(),
            effective_date: date(y, m, d),
        },
    )
}

/// Rows of the event and household tables, to check that a refused call changed nothing.
async fn rows(t: &TestDatabase) -> (i64, i64, i64, i64) {
    (
        count(t, "SELECT COUNT(*) FROM registry_residence_events").await,
        count(t, "SELECT COUNT(*) FROM registry_households").await,
        count(t, "SELECT COUNT(*) FROM registry_household_members").await,
        count(
            t,
            "SELECT COUNT(*) FROM registry_household_members WHERE end_date IS NOT NULL",
        )
        .await,
    )
}

/// DOMAIN.md "Registry": a change of residence takes effect from the declaration date, and
/// the residence at any past date can be read. Event dates are not in the future nor before
/// the registration; a refused event changes nothing.
#[tokio::test]
async fn the_residence_at_a_past_date_follows_the_changes_of_address() {
    for t in testing::all().await {
        let api = api(&t).await;
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let created = api
            .create_residence_event(move_to(&rossi.name, (2020, 6, 1), "Via Roma"))
            .await
            .expect("a change of address")
            .into_inner();
        assert!(
            created
                .name
                .starts_with(&format!("{}/residenceEvents/", rossi.name))
        );
        assert_eq!(created.anpr_reference, "", "NoAnpr gives no reference");

        let before = residence(&api, &rossi.name, (2020, 5, 31)).await;
        assert_eq!(
            before.status,
            i32::from(pb::ResidenceStatus::Resident),
            "{}",
            t.label
        );
        assert_eq!(before.address.expect("an address").street, "Via Mazzini");
        let on = residence(&api, &rossi.name, (2020, 6, 1)).await;
        assert_eq!(
            on.address.expect("an address").street,
            "Via Roma",
            "{}",
            t.label
        );
        let unborn = residence(&api, &rossi.name, (2015, 3, 1)).await;
        assert_eq!(unborn.status, i32::from(pb::ResidenceStatus::NotRegistered));
        assert_eq!(
            get_resident(&t, SARZANA, &rossi.name)
                .await
                .address
                .expect("address")
                .street,
            "Via Roma",
            "the record holds the current address"
        );
        let listed = api
            .list_residence_events(routed(
                SARZANA,
                pb::ListResidenceEventsRequest {
                    parent: rossi.name.clone(),
                    page_size: 1,
                    page_token: String::new(),
                },
            ))
            .await
            .expect("listed")
            .into_inner();
        assert_eq!(listed.events.len(), 1);
        assert_eq!(
            listed.events[0].kind,
            i32::from(pb::ResidenceEventKind::Registration)
        );
        assert!(!listed.next_page_token.is_empty(), "a second page");

        let unchanged = rows(&t).await;
        let etag = get_resident(&t, SARZANA, &rossi.name).await.etag;
        let future = api
            .create_residence_event(move_to(&rossi.name, (2999, 1, 1), "Via Verdi"))
            .await
            .expect_err("in the future");
        assert_error(
            &future,
            Code::InvalidArgument,
            "INVALID_DATE",
            Some("event.effective_date"),
            t.label,
        );
        let early = api
            .create_residence_event(move_to(&rossi.name, (2015, 3, 1), "Via Verdi"))
            .await
            .expect_err("before the registration");
        assert_error(
            &early,
            Code::InvalidArgument,
            "INVALID_DATE",
            Some("event.effective_date"),
            t.label,
        );
        let mut no_cap = address("Via Verdi", "1");
        no_cap.postal_code = "1903".to_owned();
        let bad = api
            .create_residence_event(event_request(
                &rossi.name,
                pb::ResidenceEventKind::AddressChange,
                (2021, 1, 1),
                Some(no_cap),
                "",
                "",
            ))
            .await
            .expect_err("a bad CAP");
        assert_error(
            &bad,
            Code::InvalidArgument,
            "INVALID_POSTAL_CODE",
            Some("event.address.postal_code"),
            t.label,
        );
        assert_eq!(rows(&t).await, unchanged, "{}: nothing changed", t.label);
        assert_eq!(get_resident(&t, SARZANA, &rossi.name).await.etag, etag);
    }
}

/// DOMAIN.md "Registry": a household is persons living together with a head; its
/// composition at any past date can be read.
#[tokio::test]
async fn the_household_composition_is_read_at_two_dates() {
    for t in testing::all().await {
        let api = api(&t).await;
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let bianchi = register(&t, SARZANA, person("Bianchi", "Anna", (1982, 2, 2), true)).await;
        let household = api
            .create_household(create_household(&rossi.name, (2016, 1, 1), ""))
            .await
            .expect("a household")
            .into_inner();
        api.add_household_member(join(
            &household.name,
            &bianchi.name,
            pb::Relationship::Spouse,
            (2018, 5, 1),
        ))
        .await
        .expect("the spouse joins");
        let head = i32::from(pb::Relationship::Head);
        let spouse = i32::from(pb::Relationship::Spouse);
        assert_eq!(
            household_at(&api, &household.name, (2017, 1, 1)).await,
            [(rossi.name.clone(), head)],
            "{}",
            t.label
        );
        assert_eq!(
            household_at(&api, &household.name, (2019, 1, 1)).await,
            [(rossi.name.clone(), head), (bianchi.name.clone(), spouse)],
            "{}",
            t.label
        );

        let unchanged = rows(&t).await;
        let twice = api
            .add_household_member(join(
                &household.name,
                &bianchi.name,
                pb::Relationship::Spouse,
                (2019, 1, 1),
            ))
            .await
            .expect_err("already a member");
        assert_error(
            &twice,
            Code::FailedPrecondition,
            "ALREADY_IN_HOUSEHOLD",
            Some("resident"),
            t.label,
        );
        let head_leaves = api
            .remove_household_member(leave(&household.name, &rossi.name, (2020, 1, 1)))
            .await
            .expect_err("the head has members");
        assert_error(
            &head_leaves,
            Code::FailedPrecondition,
            "HEAD_HAS_MEMBERS",
            Some("resident"),
            t.label,
        );
        let second_head = api
            .add_household_member(join(
                &household.name,
                &bianchi.name,
                pb::Relationship::Head,
                (2019, 1, 1),
            ))
            .await
            .expect_err("one head");
        assert_error(
            &second_head,
            Code::InvalidArgument,
            "INVALID_RELATIONSHIP",
            Some("relationship"),
            t.label,
        );
        assert_eq!(rows(&t).await, unchanged, "{}: nothing changed", t.label);

        api.remove_household_member(leave(&household.name, &bianchi.name, (2023, 1, 1)))
            .await
            .expect("the spouse leaves");
        assert_eq!(
            household_at(&api, &household.name, (2023, 1, 1)).await,
            [(rossi.name.clone(), head)]
        );
        assert_eq!(
            household_at(&api, &household.name, (2022, 12, 31))
                .await
                .len(),
            2
        );
        let then = residence(&api, &bianchi.name, (2019, 1, 1)).await;
        assert_eq!(
            (then.household.as_str(), then.relationship),
            (household.name.as_str(), spouse)
        );
        let now = residence(&api, &bianchi.name, (2024, 1, 1)).await;
        assert_eq!(now.household, "", "{}", t.label);
    }
}

/// DOMAIN.md "Registry" (DPR 223/1989): emigration and death strike the record off; a dead or
/// emigrated resident cannot change address (FAILED_PRECONDITION), and death ends the
/// household membership on its date.
#[tokio::test]
async fn emigration_and_death_stop_further_changes() {
    for t in testing::all().await {
        let api = api(&t).await;
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let verdi = register(&t, SARZANA, person("Verdi", "Luca", (1950, 7, 7), false)).await;
        let household = api
            .create_household(create_household(&verdi.name, (2016, 1, 1), ""))
            .await
            .expect("a household")
            .into_inner();
        api.add_household_member(join(
            &household.name,
            &rossi.name,
            pb::Relationship::Child,
            (2016, 1, 1),
        ))
        .await
        .expect("joins");

        let bad = api
            .create_residence_event(event_request(
                &rossi.name,
                pb::ResidenceEventKind::Emigration,
                (2021, 1, 1),
                None,
                "IT",
                "",
            ))
            .await
            .expect_err("IT is not abroad");
        assert_error(
            &bad,
            Code::InvalidArgument,
            "INVALID_DESTINATION",
            Some("event.destination"),
            t.label,
        );
        api.create_residence_event(event_request(
            &rossi.name,
            pb::ResidenceEventKind::Emigration,
            (2021, 1, 1),
            None,
            "045003",
            "",
        ))
        .await
        .expect("emigrates");
        api.create_residence_event(event_request(
            &verdi.name,
            pb::ResidenceEventKind::Death,
            (2022, 2, 2),
            None,
            "",
            "",
        ))
        .await
        .expect("dies");

        let unchanged = rows(&t).await;
        for (who, label) in [(&rossi.name, "emigrated"), (&verdi.name, "dead")] {
            let err = api
                .create_residence_event(move_to(who, (2023, 1, 1), "Via Roma"))
                .await
                .expect_err(label);
            assert_error(
                &err,
                Code::FailedPrecondition,
                "RESIDENT_STRUCK_OFF",
                None,
                t.label,
            );
        }
        let err = api
            .create_residence_event(event_request(
                &verdi.name,
                pb::ResidenceEventKind::Death,
                (2023, 1, 1),
                None,
                "",
                "",
            ))
            .await
            .expect_err("dies once");
        assert_eq!(err.code(), Code::FailedPrecondition);
        let err = api
            .create_household(create_household(&verdi.name, (2023, 1, 1), ""))
            .await
            .expect_err("no household for the dead");
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(rows(&t).await, unchanged, "{}: nothing changed", t.label);

        assert_eq!(
            residence(&api, &rossi.name, (2021, 1, 1)).await.status,
            i32::from(pb::ResidenceStatus::Emigrated)
        );
        assert_eq!(
            residence(&api, &verdi.name, (2022, 2, 2)).await.status,
            i32::from(pb::ResidenceStatus::Deceased)
        );
        assert_eq!(
            residence(&api, &verdi.name, (2022, 2, 1)).await.status,
            i32::from(pb::ResidenceStatus::Resident)
        );
        // The emigration (2021) and the death (2022) ended both memberships on their dates.
        assert_eq!(
            household_at(&api, &household.name, (2020, 12, 31))
                .await
                .len(),
            2
        );
        assert_eq!(
            household_at(&api, &household.name, (2021, 1, 1))
                .await
                .len(),
            1
        );
        assert!(
            household_at(&api, &household.name, (2022, 2, 2))
                .await
                .is_empty(),
            "{}",
            t.label
        );
    }
}

/// DOMAIN.md "Registry": the registry software updates ANPR first and applies a change
/// locally only when ANPR accepts it; a refusal leaves nothing changed here, and the
/// idempotency key can be used again.
#[tokio::test]
async fn an_anpr_refusal_leaves_nothing_changed() {
    for t in testing::all().await {
        migrate(&t).await;
        let anpr = Arc::new(RefusingAnpr::default());
        let refusing = HouseholdApi::with_anpr(t.db.clone(), served(), anpr.clone());
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let etag = get_resident(&t, SARZANA, &rossi.name).await.etag;
        let before = rows(&t).await;

        let err = refusing
            .create_residence_event(event_request(
                &rossi.name,
                pb::ResidenceEventKind::AddressChange,
                (2020, 6, 1),
                Some(address("Via Roma", "3")),
                "",
                "key-1",
            ))
            .await
            .expect_err("ANPR refuses");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ANPR_REFUSED",
            None,
            t.label,
        );
        let err = refusing
            .create_household(create_household(&rossi.name, (2016, 1, 1), ""))
            .await
            .expect_err("ANPR refuses");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ANPR_REFUSED",
            None,
            t.label,
        );
        assert_eq!(
            anpr.calls.load(Ordering::SeqCst),
            2,
            "each change went to ANPR"
        );
        assert_eq!(rows(&t).await, before, "{}: nothing changed", t.label);
        let after = get_resident(&t, SARZANA, &rossi.name).await;
        assert_eq!(after.etag, etag, "{}: the record did not change", t.label);
        assert_eq!(after.address.expect("address").street, "Via Mazzini");

        // Rules are checked before ANPR is asked: an invalid change never reaches it.
        let _ = refusing
            .create_residence_event(move_to(&rossi.name, (2999, 1, 1), "Via Roma"))
            .await
            .expect_err("in the future");
        assert_eq!(anpr.calls.load(Ordering::SeqCst), 2);

        // The same key is free again once ANPR accepts (NoAnpr).
        let accepting = HouseholdApi::new(t.db.clone(), served());
        accepting
            .create_residence_event(event_request(
                &rossi.name,
                pb::ResidenceEventKind::AddressChange,
                (2020, 6, 1),
                Some(address("Via Roma", "3")),
                "",
                "key-1",
            ))
            .await
            .expect("accepted");
        assert_eq!(rows(&t).await.0, before.0 + 1, "{}", t.label);
    }
}

/// AIP-4222 (common.proto): a call whose body names another comune than the routing header
/// is refused, as is a comune this node does not serve, a write without a principal, and a
/// write by a principal who is not an operator of the comune (issue 3, "Access and privacy");
/// none of them changes anything.
#[tokio::test]
async fn routing_mismatch_not_served_and_no_principal_are_refused() {
    for t in testing::all().await {
        let api = api(&t).await;
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let before = rows(&t).await;
        let mismatch = api
            .get_residence_at_date(routed(
                ARCOLA,
                pb::GetResidenceAtDateRequest {
                    name: rossi.name.clone(),
                    date: date(2020, 1, 1),
                },
            ))
            .await
            .expect_err("routed for Arcola");
        assert_error(
            &mismatch,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("name"),
            t.label,
        );
        let mut request = move_to(&rossi.name, (2020, 1, 1), "Via Roma");
        request.metadata_mut().insert(
            unione_kit::names::ROUTING_HEADER,
            format!("comune=comuni%2F{ARCOLA}").parse().expect("ascii"),
        );
        let mismatch = api
            .create_residence_event(request)
            .await
            .expect_err("routed for Arcola");
        assert_error(
            &mismatch,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("parent"),
            t.label,
        );
        let luni = api
            .create_household(as_operator(
                LUNI,
                pb::CreateHouseholdRequest {
                    parent: format!("comuni/{LUNI}"),
                    head: format!("comuni/{LUNI}/residents/x"),
                    start_date: date(2020, 1, 1),
                    request_id: String::new(),
                },
            ))
            .await
            .expect_err("Luni is not served here");
        assert_error(
            &luni,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("parent"),
            t.label,
        );
        let anonymous = api
            .create_residence_event(routed(
                SARZANA,
                pb::CreateResidenceEventRequest {
                    parent: rossi.name.clone(),
                    event: move_to(&rossi.name, (2020, 1, 1), "Via Roma")
                        .into_inner()
                        .event,
                    request_id: String::new(),
                },
            ))
            .await
            .expect_err("no principal");
        assert_error(
            &anonymous,
            Code::Unauthenticated,
            "PRINCIPAL_REQUIRED",
            None,
            t.label,
        );
        let citizen = api
            .create_residence_event(as_principal(
                SARZANA,
                move_to(&rossi.name, (2020, 1, 1), "Via Roma").into_inner(),
                unione_kit::token::Role::Citizen,
                Some(&rossi.codice_fiscale),
            ))
            .await
            .expect_err("a citizen does not change the register");
        assert_error(
            &citizen,
            Code::PermissionDenied,
            "PERMISSION_DENIED",
            None,
            t.label,
        );
        let elsewhere = api
            .create_household(create_household(
                &format!("comuni/{ARCOLA}/residents/x"),
                (2020, 1, 1),
                "",
            ))
            .await
            .expect_err("a head of another comune");
        assert_error(
            &elsewhere,
            Code::InvalidArgument,
            "COMUNE_MISMATCH",
            Some("head"),
            t.label,
        );
        assert_eq!(rows(&t).await, before, "{}: nothing changed", t.label);
    }
}

/// AIP-155 (DOMAIN.md "Idempotency keys"): a retry with the same request id gets the first
/// response and writes nothing more; the same key with another request is refused.
#[tokio::test]
async fn creates_are_idempotent_on_request_id() {
    for t in testing::all().await {
        let api = api(&t).await;
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let first = api
            .create_household(create_household(&rossi.name, (2016, 1, 1), "hh-1"))
            .await
            .expect("created")
            .into_inner();
        let again = api
            .create_household(create_household(&rossi.name, (2016, 1, 1), "hh-1"))
            .await
            .expect("replayed")
            .into_inner();
        assert_eq!(first.name, again.name, "{}", t.label);
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM registry_households").await,
            1
        );

        let event = |street: &str| {
            event_request(
                &rossi.name,
                pb::ResidenceEventKind::AddressChange,
                (2020, 6, 1),
                Some(address(street, "3")),
                "",
                "ev-1",
            )
        };
        let first = api
            .create_residence_event(event("Via Roma"))
            .await
            .expect("created")
            .into_inner();
        let again = api
            .create_residence_event(event("Via Roma"))
            .await
            .expect("replayed")
            .into_inner();
        assert_eq!(first, again, "{}", t.label);
        let other = api
            .create_residence_event(event("Via Verdi"))
            .await
            .expect_err("key reused");
        assert_error(
            &other,
            Code::AlreadyExists,
            "IDEMPOTENCY_KEY_REUSED",
            Some("request_id"),
            t.label,
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM registry_residence_events").await,
            2,
            "{}",
            t.label
        );
    }
}
