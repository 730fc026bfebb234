//! MoveService handlers over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL: the origin's side (the emigration and the outbox row in one transaction), the
//! destination's side (the immigration, idempotent on the move id), who may deliver, and the
//! ANPR boundary. DOMAIN.md "Registry", Residents: moves between members "with the same
//! two-sided discipline"; the delivery through the gateway is in `gateway/tests/moves.rs`.

mod support;

use std::sync::Arc;

use tokio::sync::Notify;
use tonic::{Code, Request};
use unione_kit::names::routed;
use unione_kit::principal::Principal;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::household_service_server::HouseholdService;
use unione_proto::registry::v1::move_service_server::MoveService;
use unione_registry::domain::anpr::{AnprAck, AnprChange, AnprConnector, AnprError};
use unione_registry::{HouseholdApi, MoveApi};

use support::*;

/// An ANPR that refuses every change (test only: a real connector answers from the national
/// register).
#[derive(Debug)]
struct RefusingAnpr;

#[async_trait::async_trait]
impl AnprConnector for RefusingAnpr {
    async fn notify(&self, _change: &AnprChange) -> Result<AnprAck, AnprError> {
        Err(AnprError::Refused {
            code: "EN123".to_owned(),
        })
    }
}

async fn api(t: &TestDatabase) -> MoveApi {
    migrate(t).await;
    MoveApi::new(t.db.clone(), served(), Some(Arc::new(Notify::new())))
}

/// A request routed to `istat` from node `node`, which serves `comuni` (as the gateway sends
/// a node's call made with its own certificate).
fn as_node<T>(istat: &str, message: T, node: &str, comuni: &[&str]) -> Request<T> {
    let mut request = routed(istat, message);
    request.extensions_mut().insert(Principal {
        sub: format!("node:{node}"),
        role: Role::Integrator,
        comuni: comuni.iter().map(|c| (*c).to_owned()).collect(),
        fiscal_number: None,
        gateway: "gw-1".to_owned(),
    });
    request
}

fn create_move(resident: &str, request_id: &str) -> Request<pb::CreateMoveRequest> {
    as_operator(
        SARZANA,
        pb::CreateMoveRequest {
            parent: format!("comuni/{SARZANA}"),
            r#move: Some(pb::Move {
                origin_resident: resident.to_owned(),
                destination: format!("comuni/{LUNI}"),
                effective_date: date(2026, 1, 12),
                address: Some(address("Via Appia", "4")),
                ..Default::default()
            }),
            request_id: request_id.to_owned(),
        },
    )
}

/// A move from Luni (another node) to Arcola (served here), as Luni's node delivers it.
fn delivery(person: &pb::Resident, id: &str) -> pb::DeliverMoveRequest {
    pb::DeliverMoveRequest {
        parent: format!("comuni/{ARCOLA}"),
        r#move: Some(pb::Move {
            name: format!("comuni/{LUNI}/moves/{id}"),
            origin_resident: format!("comuni/{LUNI}/residents/r-{id}"),
            destination: format!("comuni/{ARCOLA}"),
            effective_date: date(2026, 1, 12),
            address: Some(address("Via Valentini", "8")),
            ..Default::default()
        }),
        resident: Some(person.clone()),
    }
}

async fn residents_of(t: &TestDatabase) -> i64 {
    count(
        t,
        "SELECT COUNT(*) FROM registry_residents WHERE deregistration_date IS NULL",
    )
    .await
}

/// At the origin the emigration and the move are written together: the person is struck off
/// with the destination, the event names the move, and the move waits for delivery. A retry
/// with the same request id answers the same and writes nothing more.
#[tokio::test]
async fn the_origin_writes_the_emigration_and_the_pending_move_together() {
    for t in testing::all().await {
        let api = api(&t).await;
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let started = api
            .create_move(create_move(&rossi.name, "m-1"))
            .await
            .expect("the move starts")
            .into_inner();
        assert_eq!(started.state, pb::MoveState::Pending as i32, "{}", t.label);
        assert_eq!(started.origin, format!("comuni/{SARZANA}"));
        let again = api
            .create_move(create_move(&rossi.name, "m-1"))
            .await
            .expect("a retry")
            .into_inner();
        assert_eq!(again, started);
        assert_eq!(count(&t, "SELECT COUNT(*) FROM registry_moves").await, 1);
        let households = HouseholdApi::new(t.db.clone(), served());
        let events = households
            .list_residence_events(as_operator(
                SARZANA,
                pb::ListResidenceEventsRequest {
                    parent: rossi.name.clone(),
                    page_size: 10,
                    page_token: String::new(),
                },
            ))
            .await
            .expect("the events")
            .into_inner()
            .events;
        let last = events.last().expect("the emigration");
        assert_eq!(last.kind, pb::ResidenceEventKind::Emigration as i32);
        assert_eq!(last.destination, LUNI);
        assert_eq!(last.r#move, started.name);
        let fetched = api
            .get_move(as_operator(
                SARZANA,
                pb::GetMoveRequest {
                    name: started.name.clone(),
                },
            ))
            .await
            .expect("the move")
            .into_inner();
        assert_eq!(fetched, started);
        // Struck off: no second move.
        let err = api
            .create_move(create_move(&rossi.name, "m-2"))
            .await
            .expect_err("already emigrated");
        assert_eq!(err.code(), Code::FailedPrecondition);
    }
}

/// A node with no gateway to deliver through does not start moves (they would never
/// complete): FAILED_PRECONDITION, nothing written.
#[tokio::test]
async fn a_node_without_a_dispatcher_starts_no_move() {
    for t in testing::all().await {
        migrate(&t).await;
        let api = MoveApi::new(t.db.clone(), served(), None);
        let rossi = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let err = api
            .create_move(create_move(&rossi.name, "m-1"))
            .await
            .expect_err("no dispatcher");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "MOVES_NOT_CONFIGURED",
            None,
            t.label,
        );
        assert_eq!(count(&t, "SELECT COUNT(*) FROM registry_moves").await, 0);
        assert_eq!(residents_of(&t).await, 1);
    }
}

/// The destination registers the immigration with a new household once; a redelivery
/// changes nothing and answers the same. Only a node serving the origin may deliver.
#[tokio::test]
async fn a_delivery_is_idempotent_on_the_move_id_and_open_to_the_origin_node_only() {
    for t in testing::all().await {
        let api = api(&t).await;
        let bianchi = person("Bianchi", "Anna", (1984, 5, 17), true);
        let first = api
            .deliver_move(as_node(ARCOLA, delivery(&bianchi, "m1"), "luni", &[LUNI]))
            .await
            .expect("delivered")
            .into_inner();
        assert_eq!(first.r#move, format!("comuni/{ARCOLA}/moves/m1"));
        let before = (
            residents_of(&t).await,
            count(&t, "SELECT COUNT(*) FROM registry_household_members").await,
            count(&t, "SELECT COUNT(*) FROM registry_residence_events").await,
        );
        assert_eq!(before, (1, 1, 1), "{}", t.label);
        let again = api
            .deliver_move(as_node(ARCOLA, delivery(&bianchi, "m1"), "luni", &[LUNI]))
            .await
            .expect("redelivered")
            .into_inner();
        assert_eq!(again, first);
        let after = (
            residents_of(&t).await,
            count(&t, "SELECT COUNT(*) FROM registry_household_members").await,
            count(&t, "SELECT COUNT(*) FROM registry_residence_events").await,
        );
        assert_eq!(after, before);
        let at = HouseholdApi::new(t.db.clone(), served())
            .get_residence_at_date(as_operator(
                ARCOLA,
                pb::GetResidenceAtDateRequest {
                    name: first.resident.clone(),
                    date: date(2026, 1, 12),
                },
            ))
            .await
            .expect("the residence")
            .into_inner();
        assert_eq!(at.status, pb::ResidenceStatus::Resident as i32);
        assert_eq!(at.relationship, pb::Relationship::Head as i32);

        // An operator, or a node that does not serve the origin, may not deliver.
        let err = api
            .deliver_move(as_operator(ARCOLA, delivery(&bianchi, "m2")))
            .await
            .expect_err("not a node");
        assert_eq!(err.code(), Code::PermissionDenied);
        let err = api
            .deliver_move(as_node(
                ARCOLA,
                delivery(&bianchi, "m2"),
                "sarzana",
                &[SARZANA],
            ))
            .await
            .expect_err("not the origin's node");
        assert_error(
            &err,
            Code::PermissionDenied,
            "SENDER_NOT_ORIGIN",
            None,
            t.label,
        );
        assert_eq!(residents_of(&t).await, 1);
    }
}

/// A delivery that cannot be applied changes nothing: a household that does not exist, or
/// ANPR refusing the immigration (DOMAIN.md: "applies the change locally only when ANPR
/// accepts it").
#[tokio::test]
async fn a_refused_delivery_changes_nothing() {
    for t in testing::all().await {
        let api = api(&t).await;
        let verdi = person("Verdi", "Luca", (1950, 7, 7), false);
        let mut join = delivery(&verdi, "m3");
        if let Some(m) = join.r#move.as_mut() {
            m.household = format!("comuni/{ARCOLA}/households/nope");
            m.relationship = pb::Relationship::Spouse.into();
        }
        let err = api
            .deliver_move(as_node(ARCOLA, join, "luni", &[LUNI]))
            .await
            .expect_err("no such household");
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        let refusing = MoveApi::with_anpr(t.db.clone(), served(), None, Arc::new(RefusingAnpr));
        let err = refusing
            .deliver_move(as_node(ARCOLA, delivery(&verdi, "m4"), "luni", &[LUNI]))
            .await
            .expect_err("ANPR refuses");
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert_eq!(residents_of(&t).await, 0);
        assert_eq!(count(&t, "SELECT COUNT(*) FROM registry_moves").await, 0);
    }
}
