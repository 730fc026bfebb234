//! ImprovementService handlers over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL, with a test clock. The handlers are called directly, with the routing header
//! and the principal the gateway sets. The rules come from DOMAIN.md "Quality and benchmarks":
//! ISO 9001:2015 6.2 (objectives measurable, with target, owner, due date) and 10.2
//! (nonconformities and corrective actions with their results).

mod support;

use support::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tonic::{Code, Request};
use unione_kit::Served;
use unione_kit::error::reason_and_field;
use unione_kit::names::{ROUTING_HEADER, routed};
use unione_kit::principal::Principal;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_proto::google::r#type::Date;
use unione_proto::quality::v1 as pb;
use unione_proto::quality::v1::improvement_service_server::ImprovementService;
use unione_quality::{Clock, ImprovementApi};

struct Fixture {
    api: ImprovementApi,
    now: Arc<AtomicI64>,
}

impl Fixture {
    fn at(&self, text: &str) {
        self.now.store(utc(text), Ordering::SeqCst);
    }
}

/// This node serves the quality office of Sarzana and Arcola, not Luni.
async fn fixture(t: &TestDatabase) -> Fixture {
    t.db.migrate(&unione_quality::migrations())
        .await
        .expect("quality migrations apply");
    let now = Arc::new(AtomicI64::new(utc("2026-03-02 09:00")));
    let read = Arc::clone(&now);
    let api = ImprovementApi::with_clock(
        t.db.clone(),
        Served::new([profile(SARZANA, "Sarzana"), profile(ARCOLA, "Arcola")]),
        Clock::from_fn(move || read.load(Ordering::SeqCst)),
    );
    Fixture { api, now }
}

/// A request routed to `istat`, made by the user `user`.
fn as_user<T>(user: &str, istat: &str, message: T) -> Request<T> {
    let mut request = routed(istat, message);
    request.extensions_mut().insert(Principal {
        sub: user.to_owned(),
        role: Role::Operator,
        comuni: vec![istat.to_owned()],
        fiscal_number: None,
        gateway: "gw-1".to_owned(),
    });
    request
}

fn istat_of(name: &str) -> &str {
    &name["comuni/".len().."comuni/".len() + 6]
}

fn objective(
    istat: &str,
    title: &str,
    kpi: &str,
    due: Option<Date>,
    request_id: &str,
) -> pb::CreateObjectiveRequest {
    pb::CreateObjectiveRequest {
        parent: format!("comuni/{istat}"),
        objective: Some(pb::Objective {
            title: title.to_owned(),
            kpi: kpi.to_owned(),
            measure: if kpi.is_empty() {
                "Share of sportello appointments booked online".to_owned()
            } else {
                String::new()
            },
            target_value: 95.0,
            owner_office: "Segreteria generale".to_owned(),
            due_date: due,
            ..Default::default()
        }),
        request_id: request_id.to_owned(),
    }
}

fn nonconformity(istat: &str, request_id: &str) -> pb::CreateNonconformityRequest {
    pb::CreateNonconformityRequest {
        parent: format!("comuni/{istat}"),
        nonconformity: Some(pb::Nonconformity {
            description: "Residence certificates issued after 10 days against a charter of 3"
                .to_owned(),
            source: pb::NonconformitySource::KpiOffTarget.into(),
            detection_date: date(2026, 2, 20),
            ..Default::default()
        }),
        request_id: request_id.to_owned(),
    }
}

fn action(parent: &str, due: Option<Date>, request_id: &str) -> pb::CreateCorrectiveActionRequest {
    pb::CreateCorrectiveActionRequest {
        parent: parent.to_owned(),
        corrective_action: Some(pb::CorrectiveAction {
            action: "Train the counter staff on the online certificate desk".to_owned(),
            owner_office: "Ufficio anagrafe".to_owned(),
            due_date: due,
            ..Default::default()
        }),
        request_id: request_id.to_owned(),
    }
}

fn check(
    name: &str,
    on: Option<Date>,
    result: pb::EffectivenessResult,
) -> Request<pb::CheckCorrectiveActionRequest> {
    as_user(
        "qa.bianchi",
        istat_of(name),
        pb::CheckCorrectiveActionRequest {
            name: name.to_owned(),
            check_date: on,
            result: result.into(),
        },
    )
}

fn close(name: &str) -> Request<pb::CloseNonconformityRequest> {
    as_user(
        "qa.bianchi",
        istat_of(name),
        pb::CloseNonconformityRequest {
            name: name.to_owned(),
        },
    )
}

async fn count(t: &TestDatabase, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(t.db.pool())
        .await
        .expect("counts")
}

/// Asserts the gRPC code and the `ErrorInfo` reason and field (AIP-193).
#[track_caller]
fn assert_error(status: &tonic::Status, code: Code, reason: &str, field: Option<&str>, ctx: &str) {
    assert_eq!(status.code(), code, "{ctx}: {status:?}");
    let (got_reason, got_field) = reason_and_field(status);
    assert_eq!(got_reason, reason, "{ctx}: {status:?}");
    assert_eq!(got_field.as_deref(), field, "{ctx}: {status:?}");
}

/// ISO 9001:2015 6.2: an objective is measurable (a KPI of the comune), with a target, an
/// owner and a due date; it moves PLANNED, IN_PROGRESS, ACHIEVED, and every move is kept with
/// its actor and time.
#[tokio::test]
async fn objectives_lifecycle_and_history() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let created = f
            .api
            .create_objective(as_user(
                "qa.rossi",
                SARZANA,
                objective(
                    SARZANA,
                    "Close cases on time",
                    "comuni/011027/kpis/UQ0001",
                    date(2026, 12, 31),
                    "",
                ),
            ))
            .await
            .expect("creates")
            .into_inner();
        assert_eq!(
            created.status,
            i32::from(pb::ObjectiveStatus::Planned),
            "{}",
            t.label
        );
        assert_eq!(created.kpi, "comuni/011027/kpis/UQ0001", "{}", t.label);
        assert!(!created.overdue, "{}", t.label);
        assert_eq!(created.history.len(), 1, "{}", t.label);
        assert_eq!(created.history[0].actor, "qa.rossi", "{}", t.label);
        assert_eq!(created.history[0].change, "CREATED", "{}", t.label);

        let update = |status: pb::ObjectiveStatus, user: &str| {
            as_user(
                user,
                SARZANA,
                pb::UpdateObjectiveStatusRequest {
                    name: created.name.clone(),
                    status: status.into(),
                },
            )
        };
        // PLANNED cannot jump to ACHIEVED.
        let err = f
            .api
            .update_objective_status(update(pb::ObjectiveStatus::Achieved, "qa.rossi"))
            .await
            .expect_err("skips a step");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "INVALID_STATUS_TRANSITION",
            Some("status"),
            t.label,
        );

        f.at("2026-04-01 10:00");
        f.api
            .update_objective_status(update(pb::ObjectiveStatus::InProgress, "qa.verdi"))
            .await
            .expect("starts");
        f.at("2026-11-30 10:00");
        let done = f
            .api
            .update_objective_status(update(pb::ObjectiveStatus::Achieved, "qa.rossi"))
            .await
            .expect("achieved")
            .into_inner();
        assert_eq!(
            done.status,
            i32::from(pb::ObjectiveStatus::Achieved),
            "{}",
            t.label
        );
        let changes: Vec<(&str, &str, i64)> = done
            .history
            .iter()
            .map(|h| {
                (
                    h.actor.as_str(),
                    h.change.as_str(),
                    h.time.expect("time").seconds,
                )
            })
            .collect();
        assert_eq!(
            changes,
            vec![
                ("qa.rossi", "CREATED", utc("2026-03-02 09:00") / 1_000_000),
                (
                    "qa.verdi",
                    "STATUS IN_PROGRESS",
                    utc("2026-04-01 10:00") / 1_000_000
                ),
                (
                    "qa.rossi",
                    "STATUS ACHIEVED",
                    utc("2026-11-30 10:00") / 1_000_000
                ),
            ],
            "{}",
            t.label
        );
        // Terminal.
        let err = f
            .api
            .update_objective_status(update(pb::ObjectiveStatus::Cancelled, "qa.rossi"))
            .await
            .expect_err("achieved is final");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "INVALID_STATUS_TRANSITION",
            Some("status"),
            t.label,
        );

        let got = f
            .api
            .get_objective(routed(
                SARZANA,
                pb::GetObjectiveRequest {
                    name: created.name.clone(),
                },
            ))
            .await
            .expect("reads without a principal")
            .into_inner();
        assert_eq!(got, done, "{}", t.label);
    }
}

/// Overdue objectives: open with their due date past, in Italy's calendar; lists filter open
/// and overdue ones and page.
#[tokio::test]
async fn overdue_objectives_are_listed_and_paged() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let mut names = Vec::new();
        for (title, due) in [
            ("Past due", date(2026, 2, 28)),
            ("Due today", date(2026, 3, 2)),
            ("Future", date(2026, 6, 30)),
        ] {
            let o = f
                .api
                .create_objective(as_user(
                    "qa.rossi",
                    SARZANA,
                    objective(SARZANA, title, "", due, ""),
                ))
                .await
                .expect("creates")
                .into_inner();
            names.push(o.name);
        }
        let list = |open_only: bool, overdue_only: bool, page_size: i32, token: &str| {
            routed(
                SARZANA,
                pb::ListObjectivesRequest {
                    parent: format!("comuni/{SARZANA}"),
                    page_size,
                    page_token: token.to_owned(),
                    open_only,
                    overdue_only,
                },
            )
        };
        let overdue = f
            .api
            .list_objectives(list(false, true, 0, ""))
            .await
            .expect("lists")
            .into_inner();
        let titles: Vec<&str> = overdue
            .objectives
            .iter()
            .map(|o| o.title.as_str())
            .collect();
        assert_eq!(titles, vec!["Past due"], "{}", t.label);
        assert!(overdue.objectives[0].overdue, "{}", t.label);

        // A cancelled objective is no longer open, hence not overdue.
        f.api
            .update_objective_status(as_user(
                "qa.rossi",
                SARZANA,
                pb::UpdateObjectiveStatusRequest {
                    name: names[0].clone(),
                    status: pb::ObjectiveStatus::Cancelled.into(),
                },
            ))
            .await
            .expect("cancels");
        let overdue = f
            .api
            .list_objectives(list(false, true, 0, ""))
            .await
            .expect("lists")
            .into_inner();
        assert!(overdue.objectives.is_empty(), "{}", t.label);
        let open = f
            .api
            .list_objectives(list(true, false, 0, ""))
            .await
            .expect("lists")
            .into_inner();
        assert_eq!(open.objectives.len(), 2, "{}", t.label);

        // Pages of one, in creation order, all three.
        let first = f
            .api
            .list_objectives(list(false, false, 1, ""))
            .await
            .expect("lists")
            .into_inner();
        assert_eq!(first.objectives[0].name, names[0], "{}", t.label);
        let second = f
            .api
            .list_objectives(list(false, false, 2, &first.next_page_token))
            .await
            .expect("lists")
            .into_inner();
        let rest: Vec<&str> = second.objectives.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            rest,
            vec![names[1].as_str(), names[2].as_str()],
            "{}",
            t.label
        );
        assert!(second.next_page_token.is_empty(), "{}", t.label);
        // A token is bound to its filters.
        let err = f
            .api
            .list_objectives(list(true, false, 1, &first.next_page_token))
            .await
            .expect_err("other filters");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_PAGE_TOKEN",
            Some("page_token"),
            t.label,
        );
    }
}

/// ISO 9001:2015 10.2: a nonconformity closes only when it has a root cause and its
/// corrective actions were checked effective; FAILED_PRECONDITION before, and closed after.
/// Overdue actions are those not checked effective past their due date.
#[tokio::test]
async fn a_nonconformity_closes_only_after_its_actions_are_checked_effective() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let nc = f
            .api
            .create_nonconformity(as_user("qa.rossi", SARZANA, nonconformity(SARZANA, "")))
            .await
            .expect("records")
            .into_inner();
        assert!(!nc.closed, "{}", t.label);

        // No root cause, no action.
        let err = f
            .api
            .close_nonconformity(close(&nc.name))
            .await
            .expect_err("no root cause");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROOT_CAUSE_MISSING",
            Some("name"),
            t.label,
        );
        f.api
            .set_root_cause(as_user(
                "qa.rossi",
                SARZANA,
                pb::SetRootCauseRequest {
                    name: nc.name.clone(),
                    root_cause: "Staff unaware of the online desk".to_owned(),
                },
            ))
            .await
            .expect("root cause");
        let err = f
            .api
            .close_nonconformity(close(&nc.name))
            .await
            .expect_err("no action");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "CORRECTIVE_ACTIONS_NOT_EFFECTIVE",
            Some("name"),
            t.label,
        );

        let training = f
            .api
            .create_corrective_action(as_user(
                "qa.rossi",
                SARZANA,
                action(&nc.name, date(2026, 3, 15), ""),
            ))
            .await
            .expect("adds")
            .into_inner();
        let signage = f
            .api
            .create_corrective_action(as_user(
                "qa.rossi",
                SARZANA,
                action(&nc.name, date(2026, 4, 30), ""),
            ))
            .await
            .expect("adds")
            .into_inner();

        // After 15 March the training is overdue, the signage not yet.
        f.at("2026-03-20 09:00");
        let overdue = |parent: String| {
            routed(
                SARZANA,
                pb::ListCorrectiveActionsRequest {
                    parent,
                    page_size: 0,
                    page_token: String::new(),
                    overdue_only: true,
                },
            )
        };
        let listed = f
            .api
            .list_corrective_actions(overdue(format!("comuni/{SARZANA}/nonconformities/-")))
            .await
            .expect("lists")
            .into_inner();
        let ids: Vec<&str> = listed
            .corrective_actions
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(ids, vec![training.name.as_str()], "{}", t.label);
        assert!(listed.corrective_actions[0].overdue, "{}", t.label);

        // One effective, one not: still refused.
        f.api
            .check_corrective_action(check(
                &training.name,
                date(2026, 3, 20),
                pb::EffectivenessResult::Effective,
            ))
            .await
            .expect("checked");
        let listed = f
            .api
            .list_corrective_actions(overdue(nc.name.clone()))
            .await
            .expect("lists")
            .into_inner();
        assert!(listed.corrective_actions.is_empty(), "{}", t.label);
        f.api
            .check_corrective_action(check(
                &signage.name,
                date(2026, 3, 20),
                pb::EffectivenessResult::NotEffective,
            ))
            .await
            .expect("checked");
        let err = f
            .api
            .close_nonconformity(close(&nc.name))
            .await
            .expect_err("one not effective");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "CORRECTIVE_ACTIONS_NOT_EFFECTIVE",
            Some("name"),
            t.label,
        );
        let still = f
            .api
            .get_nonconformity(routed(
                SARZANA,
                pb::GetNonconformityRequest {
                    name: nc.name.clone(),
                },
            ))
            .await
            .expect("gets")
            .into_inner();
        assert!(!still.closed, "{}", t.label);

        // A check in the future, or before the detection, is refused and changes nothing.
        let err = f
            .api
            .check_corrective_action(check(
                &signage.name,
                date(2026, 3, 21),
                pb::EffectivenessResult::Effective,
            ))
            .await
            .expect_err("future");
        assert_error(
            &err,
            Code::InvalidArgument,
            "DATE_IN_FUTURE",
            Some("check_date"),
            t.label,
        );
        let err = f
            .api
            .check_corrective_action(check(
                &signage.name,
                date(2026, 2, 1),
                pb::EffectivenessResult::Effective,
            ))
            .await
            .expect_err("before detection");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_CHECK_DATE",
            Some("check_date"),
            t.label,
        );

        // Rechecked effective: it closes.
        f.at("2026-04-10 09:00");
        f.api
            .check_corrective_action(check(
                &signage.name,
                date(2026, 4, 10),
                pb::EffectivenessResult::Effective,
            ))
            .await
            .expect("rechecked");
        let closed = f
            .api
            .close_nonconformity(close(&nc.name))
            .await
            .expect("closes")
            .into_inner();
        assert!(closed.closed, "{}", t.label);
        assert_eq!(
            closed.close_time.expect("closed at").seconds,
            utc("2026-04-10 09:00") / 1_000_000,
            "{}",
            t.label
        );
        let history: Vec<(&str, String)> = closed
            .history
            .iter()
            .map(|h| {
                (
                    h.actor.as_str(),
                    h.change.split(' ').next().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert_eq!(
            history,
            vec![
                ("qa.rossi", "CREATED".to_owned()),
                ("qa.rossi", "ROOT_CAUSE".to_owned()),
                ("qa.rossi", "ACTION_ADDED".to_owned()),
                ("qa.rossi", "ACTION_ADDED".to_owned()),
                ("qa.bianchi", "ACTION_CHECKED".to_owned()),
                ("qa.bianchi", "ACTION_CHECKED".to_owned()),
                ("qa.bianchi", "ACTION_CHECKED".to_owned()),
                ("qa.bianchi", "CLOSED".to_owned()),
            ],
            "{}",
            t.label
        );
        assert!(
            closed.history[5].change.ends_with("NOT_EFFECTIVE"),
            "{}",
            t.label
        );

        // Closed: no more actions, no second closing.
        let err = f
            .api
            .create_corrective_action(as_user(
                "qa.rossi",
                SARZANA,
                action(&nc.name, date(2026, 5, 1), ""),
            ))
            .await
            .expect_err("closed");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "NONCONFORMITY_CLOSED",
            Some("parent"),
            t.label,
        );
        let err = f
            .api
            .close_nonconformity(close(&nc.name))
            .await
            .expect_err("closed");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "NONCONFORMITY_CLOSED",
            Some("name"),
            t.label,
        );
        let open = f
            .api
            .list_nonconformities(routed(
                SARZANA,
                pb::ListNonconformitiesRequest {
                    parent: format!("comuni/{SARZANA}"),
                    page_size: 0,
                    page_token: String::new(),
                    open_only: true,
                },
            ))
            .await
            .expect("lists")
            .into_inner();
        assert!(open.nonconformities.is_empty(), "{}", t.label);
    }
}

/// AIP-155: a retried create under the same request_id returns the first response and stores
/// nothing more; the key with another request is refused.
#[tokio::test]
async fn idempotent_creates() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let first = f
            .api
            .create_nonconformity(as_user("qa.rossi", SARZANA, nonconformity(SARZANA, "nc-1")))
            .await
            .expect("records")
            .into_inner();
        let again = f
            .api
            .create_nonconformity(as_user("qa.rossi", SARZANA, nonconformity(SARZANA, "nc-1")))
            .await
            .expect("replays")
            .into_inner();
        assert_eq!(first, again, "{}", t.label);
        let a1 = f
            .api
            .create_corrective_action(as_user(
                "qa.rossi",
                SARZANA,
                action(&first.name, date(2026, 4, 1), "ca-1"),
            ))
            .await
            .expect("adds")
            .into_inner();
        let a2 = f
            .api
            .create_corrective_action(as_user(
                "qa.rossi",
                SARZANA,
                action(&first.name, date(2026, 4, 1), "ca-1"),
            ))
            .await
            .expect("replays")
            .into_inner();
        assert_eq!(a1, a2, "{}", t.label);
        let o1 = f
            .api
            .create_objective(as_user(
                "qa.rossi",
                SARZANA,
                objective(SARZANA, "Online", "", date(2026, 9, 1), "ob-1"),
            ))
            .await
            .expect("creates")
            .into_inner();
        let o2 = f
            .api
            .create_objective(as_user(
                "qa.rossi",
                SARZANA,
                objective(SARZANA, "Online", "", date(2026, 9, 1), "ob-1"),
            ))
            .await
            .expect("replays")
            .into_inner();
        assert_eq!(o1, o2, "{}", t.label);
        let err = f
            .api
            .create_objective(as_user(
                "qa.rossi",
                SARZANA,
                objective(SARZANA, "Other", "", date(2026, 9, 1), "ob-1"),
            ))
            .await
            .expect_err("key reused");
        assert_error(
            &err,
            Code::AlreadyExists,
            "IDEMPOTENCY_KEY_REUSED",
            Some("request_id"),
            t.label,
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_nonconformities").await,
            1,
            "{}",
            t.label
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_corrective_actions").await,
            1,
            "{}",
            t.label
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_objectives").await,
            1,
            "{}",
            t.label
        );
    }
}

/// Bad input is refused with the field at fault, and nothing is stored; writes need a
/// principal (the actor of the history), reads do not.
#[tokio::test]
async fn bad_input_and_missing_principal_change_nothing() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let cases: Vec<(pb::CreateObjectiveRequest, &str, &str)> = vec![
            (
                objective(SARZANA, " ", "", date(2026, 9, 1), ""),
                "INVALID_TEXT",
                "objective.title",
            ),
            (
                {
                    let mut r = objective(SARZANA, "x", "", date(2026, 9, 1), "");
                    r.objective.as_mut().expect("set").measure.clear();
                    r
                },
                "FIELD_REQUIRED",
                "objective.measure",
            ),
            (
                {
                    // UQ0001 is a percentage: 150 is not possible.
                    let mut r = objective(
                        SARZANA,
                        "x",
                        "comuni/011027/kpis/UQ0001",
                        date(2026, 9, 1),
                        "",
                    );
                    r.objective.as_mut().expect("set").target_value = 150.0;
                    r
                },
                "INVALID_TARGET",
                "objective.target_value",
            ),
            (
                objective(
                    SARZANA,
                    "x",
                    "comuni/011002/kpis/UQ0001",
                    date(2026, 9, 1),
                    "",
                ),
                "INVALID_RESOURCE_NAME",
                "objective.kpi",
            ),
            (
                objective(SARZANA, "x", "", None, ""),
                "FIELD_REQUIRED",
                "objective.due_date",
            ),
            (
                objective(SARZANA, "x", "", date(2026, 2, 30), ""),
                "INVALID_DATE",
                "objective.due_date",
            ),
        ];
        for (request, reason, field) in cases {
            let err = f
                .api
                .create_objective(as_user("qa.rossi", SARZANA, request))
                .await
                .expect_err("refused");
            assert_error(&err, Code::InvalidArgument, reason, Some(field), t.label);
        }
        let err = f
            .api
            .create_objective(as_user(
                "qa.rossi",
                SARZANA,
                objective(
                    SARZANA,
                    "x",
                    "comuni/011027/kpis/NOPE",
                    date(2026, 9, 1),
                    "",
                ),
            ))
            .await
            .expect_err("unknown KPI");
        assert_error(
            &err,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("objective.kpi"),
            t.label,
        );

        let mut future = nonconformity(SARZANA, "");
        future.nonconformity.as_mut().expect("set").detection_date = date(2026, 3, 3);
        let err = f
            .api
            .create_nonconformity(as_user("qa.rossi", SARZANA, future))
            .await
            .expect_err("future detection");
        assert_error(
            &err,
            Code::InvalidArgument,
            "DATE_IN_FUTURE",
            Some("nonconformity.detection_date"),
            t.label,
        );
        let mut no_source = nonconformity(SARZANA, "");
        no_source.nonconformity.as_mut().expect("set").source = 0;
        let err = f
            .api
            .create_nonconformity(as_user("qa.rossi", SARZANA, no_source))
            .await
            .expect_err("no source");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("nonconformity.source"),
            t.label,
        );

        // Without a principal: UNAUTHENTICATED, nothing stored.
        let err = f
            .api
            .create_nonconformity(routed(SARZANA, nonconformity(SARZANA, "")))
            .await
            .expect_err("no principal");
        assert_error(
            &err,
            Code::Unauthenticated,
            "PRINCIPAL_REQUIRED",
            None,
            t.label,
        );

        for table in [
            "SELECT COUNT(*) FROM quality_objectives",
            "SELECT COUNT(*) FROM quality_nonconformities",
            "SELECT COUNT(*) FROM quality_improvement_history",
        ] {
            assert_eq!(count(&t, table).await, 0, "{}: {table}", t.label);
        }
    }
}

/// AIP-4222: the body's comune must be the routed one and one this node serves.
#[tokio::test]
async fn calls_for_another_or_an_unserved_comune_are_refused() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let mut request = as_user("qa.rossi", SARZANA, nonconformity(SARZANA, ""));
        request.metadata_mut().insert(
            ROUTING_HEADER,
            "comune=comuni%2F011002".parse().expect("ascii"),
        );
        let err = f
            .api
            .create_nonconformity(request)
            .await
            .expect_err("mismatch");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("parent"),
            t.label,
        );
        let err = f
            .api
            .create_nonconformity(as_user("qa.rossi", LUNI, nonconformity(LUNI, "")))
            .await
            .expect_err("not served");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("parent"),
            t.label,
        );
        let err = f
            .api
            .list_objectives(routed(
                LUNI,
                pb::ListObjectivesRequest {
                    parent: format!("comuni/{LUNI}"),
                    ..Default::default()
                },
            ))
            .await
            .expect_err("not served");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("parent"),
            t.label,
        );

        // Arcola's records are not Sarzana's.
        let nc = f
            .api
            .create_nonconformity(as_user("qa.rossi", ARCOLA, nonconformity(ARCOLA, "")))
            .await
            .expect("records")
            .into_inner();
        let id = nc.nonconformity_id;
        let err = f
            .api
            .get_nonconformity(routed(
                SARZANA,
                pb::GetNonconformityRequest {
                    name: format!("comuni/{SARZANA}/nonconformities/{id}"),
                },
            ))
            .await
            .expect_err("other comune");
        assert_eq!(err.code(), Code::NotFound, "{}", t.label);
    }
}
