//! ComplaintService handlers over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL, with a test clock. The handlers are called directly, with the routing header
//! the gateway sets.

mod support;

use support::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tonic::{Code, Request};
use unione_kit::Served;
use unione_kit::error::reason_and_field;
use unione_kit::names::{ROUTING_HEADER, routed};
use unione_kit::storage::testing::{self, TestDatabase};
use unione_proto::common::v1::Channel;
use unione_proto::quality::v1 as pb;
use unione_proto::quality::v1::ComplaintStatus as S;
use unione_proto::quality::v1::complaint_service_server::ComplaintService;
use unione_quality::{Clock, ComplaintApi};

struct Fixture {
    api: ComplaintApi,
    now: Arc<AtomicI64>,
}

impl Fixture {
    fn at(&self, text: &str) {
        self.now.store(utc(text), Ordering::SeqCst);
    }

    async fn receive(&self, istat: &str, at: &str) -> pb::Complaint {
        self.at(at);
        self.api
            .create_complaint(intake(istat, "waste-collection", ""))
            .await
            .expect("receives")
            .into_inner()
    }

    async fn move_to(&self, complaint: &str, status: S, at: &str) -> pb::Complaint {
        self.at(at);
        self.api
            .transition_complaint(transition(complaint, status, "urp.rossi"))
            .await
            .unwrap_or_else(|e| panic!("{complaint} to {status:?}: {e:?}"))
            .into_inner()
    }
}

/// This node serves the quality office of Sarzana and Arcola, not Luni.
async fn fixture(t: &TestDatabase) -> Fixture {
    t.db.migrate(&unione_quality::migrations())
        .await
        .expect("quality migrations apply");
    let now = Arc::new(AtomicI64::new(utc("2026-03-02 09:00")));
    let read = Arc::clone(&now);
    let api = ComplaintApi::with_clock(
        t.db.clone(),
        Served::new([profile(SARZANA, "Sarzana"), profile(ARCOLA, "Arcola")]),
        Clock::from_fn(move || read.load(Ordering::SeqCst)),
    );
    Fixture { api, now }
}

fn intake(istat: &str, category: &str, request_id: &str) -> Request<pb::CreateComplaintRequest> {
    routed(
        istat,
        pb::CreateComplaintRequest {
            parent: format!("comuni/{istat}"),
            complaint: Some(pb::Complaint {
                category: category.to_owned(),
                channel: Channel::Web.into(),
                text: "Il cassonetto di via Variante Aurelia non viene svuotato da due settimane."
                    .to_owned(),
                contact: "cittadino@example.it".to_owned(),
                ..Default::default()
            }),
            request_id: request_id.to_owned(),
        },
    )
}

fn istat_of(name: &str) -> &str {
    &name["comuni/".len().."comuni/".len() + 6]
}

fn transition(name: &str, status: S, actor: &str) -> Request<pb::TransitionComplaintRequest> {
    routed(
        istat_of(name),
        pb::TransitionComplaintRequest {
            name: name.to_owned(),
            status: status.into(),
            actor: actor.to_owned(),
        },
    )
}

fn charter(istat: &str, ack: i32, resp: i32) -> Request<pb::UpdateServiceCharterRequest> {
    routed(
        istat,
        pb::UpdateServiceCharterRequest {
            service_charter: Some(pb::ServiceCharter {
                name: format!("comuni/{istat}/serviceCharter"),
                acknowledgement_days: ack,
                response_days: resp,
                update_time: None,
            }),
        },
    )
}

async fn get_charter(api: &ComplaintApi, istat: &str) -> pb::ServiceCharter {
    api.get_service_charter(routed(
        istat,
        pb::GetServiceCharterRequest {
            name: format!("comuni/{istat}/serviceCharter"),
        },
    ))
    .await
    .expect("gets")
    .into_inner()
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

/// DOMAIN.md "Complaints (ISO 10002)": a unique id at receipt; the standard sets no deadline,
/// so without a charter of its own a comune has 5 calendar days to acknowledge and 30 to
/// answer, counted from the date of receipt in Italy.
#[tokio::test]
async fn deadlines_follow_the_default_charter_in_calendar_days() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let first = f.receive(SARZANA, "2026-03-02 09:00").await;
        // 2 March + 5 = 7 March; 2 March + 30 = 1 April.
        assert_eq!(
            first.acknowledgement_deadline,
            date(2026, 3, 7),
            "{}",
            t.label
        );
        assert_eq!(first.response_deadline, date(2026, 4, 1), "{}", t.label);
        assert_eq!(first.status(), S::Received);
        assert_eq!(
            first.name,
            format!("comuni/{SARZANA}/complaints/{}", first.complaint_id)
        );
        assert_eq!(first.contact, "cittadino@example.it");
        assert_eq!(first.history.len(), 1);
        assert_eq!(
            (first.history[0].status(), first.history[0].actor.as_str()),
            (S::Received, "intake")
        );

        // 31 January 23:30 UTC is 1 February 00:30 in Rome: 1 Feb + 5 = 6 Feb, and 1 Feb + 30
        // = 3 March (February 2026 has 28 days).
        let late = f.receive(SARZANA, "2026-01-31 23:30").await;
        assert_eq!(
            late.acknowledgement_deadline,
            date(2026, 2, 6),
            "{}",
            t.label
        );
        assert_eq!(late.response_deadline, date(2026, 3, 3), "{}", t.label);
        assert_ne!(
            late.complaint_id, first.complaint_id,
            "{}: ids are unique",
            t.label
        );

        let defaults = get_charter(&f.api, SARZANA).await;
        assert_eq!(
            (defaults.acknowledgement_days, defaults.response_days),
            (5, 30)
        );
        assert!(defaults.update_time.is_none(), "{}: never set", t.label);

        let got = f
            .api
            .get_complaint(routed(
                SARZANA,
                pb::GetComplaintRequest {
                    name: first.name.clone(),
                },
            ))
            .await
            .expect("gets")
            .into_inner();
        assert_eq!(got, first, "{}", t.label);
    }
}

/// DOMAIN.md "Complaints": comuni commit to 20 or 30 days in their service charters. A comune's
/// own charter sets the deadlines of the complaints received after it; earlier ones keep theirs;
/// other comuni keep the defaults.
#[tokio::test]
async fn a_custom_charter_sets_the_deadlines_of_later_complaints() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let before = f.receive(SARZANA, "2026-03-02 09:00").await;
        f.at("2026-03-03 09:00");
        let set = f
            .api
            .update_service_charter(charter(SARZANA, 3, 20))
            .await
            .expect("sets")
            .into_inner();
        assert_eq!(
            (set.acknowledgement_days, set.response_days),
            (3, 20),
            "{}",
            t.label
        );
        assert!(set.update_time.is_some());
        assert_eq!(get_charter(&f.api, SARZANA).await, set, "{}", t.label);

        let after = f.receive(SARZANA, "2026-03-10 15:00").await;
        // 10 March + 3 = 13 March; 10 March + 20 = 30 March.
        assert_eq!(
            after.acknowledgement_deadline,
            date(2026, 3, 13),
            "{}",
            t.label
        );
        assert_eq!(after.response_deadline, date(2026, 3, 30), "{}", t.label);
        let again = f
            .api
            .get_complaint(routed(
                SARZANA,
                pb::GetComplaintRequest {
                    name: before.name.clone(),
                },
            ))
            .await
            .expect("gets")
            .into_inner();
        assert_eq!(
            again.response_deadline,
            date(2026, 4, 1),
            "{}: fixed at receipt",
            t.label
        );

        let arcola = f.receive(ARCOLA, "2026-03-10 15:00").await;
        assert_eq!(
            arcola.response_deadline,
            date(2026, 4, 9),
            "{}: Arcola keeps 30 days",
            t.label
        );

        // Setting it again replaces it; impossible commitments are refused.
        f.api
            .update_service_charter(charter(SARZANA, 5, 20))
            .await
            .expect("replaces");
        assert_eq!(get_charter(&f.api, SARZANA).await.acknowledgement_days, 5);
        for (ack, resp, field) in [
            (10, 5, "service_charter.response_days"),
            (0, 30, "service_charter.acknowledgement_days"),
            (5, 400, "service_charter.response_days"),
        ] {
            let err = f
                .api
                .update_service_charter(charter(SARZANA, ack, resp))
                .await
                .expect_err("refused");
            assert_error(
                &err,
                Code::InvalidArgument,
                "INVALID_SERVICE_CHARTER",
                Some(field),
                t.label,
            );
        }
        assert_eq!(
            get_charter(&f.api, SARZANA).await.response_days,
            20,
            "{}",
            t.label
        );
    }
}

/// DOMAIN.md "Complaints (ISO 10002)": receipt, acknowledgement, assessment, response, closure;
/// every step kept with its time and actor.
#[tokio::test]
async fn the_workflow_is_kept_in_the_history() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let c = f.receive(SARZANA, "2026-03-02 09:00").await;
        let steps = [
            (S::Acknowledged, "2026-03-03 08:00"),
            (S::Assessed, "2026-03-05 11:00"),
            (S::Answered, "2026-03-12 16:00"),
            (S::Closed, "2026-03-13 09:30"),
        ];
        for (status, at) in steps {
            let moved = f.move_to(&c.name, status, at).await;
            assert_eq!(moved.status(), status, "{}", t.label);
        }
        let got = f
            .api
            .get_complaint(routed(
                SARZANA,
                pb::GetComplaintRequest {
                    name: c.name.clone(),
                },
            ))
            .await
            .expect("gets")
            .into_inner();
        let history: Vec<(S, i64, String)> = got
            .history
            .iter()
            .map(|h| {
                let time = h.time.expect("a time");
                (
                    h.status(),
                    time.seconds * 1_000_000 + i64::from(time.nanos / 1000),
                    h.actor.clone(),
                )
            })
            .collect();
        let mut want = vec![(S::Received, utc("2026-03-02 09:00"), "intake".to_owned())];
        want.extend(
            steps
                .iter()
                .map(|(s, at)| (*s, utc(at), "urp.rossi".to_owned())),
        );
        assert_eq!(history, want, "{}", t.label);
        assert_eq!(got.status(), S::Closed);
        // The intake is as received.
        assert_eq!(
            (got.category.as_str(), got.channel()),
            ("waste-collection", Channel::Web)
        );
    }
}

/// DOMAIN.md "Complaints (ISO 10002)": the steps come in order, one at a time; any other move
/// is FAILED_PRECONDITION `INVALID_STATUS_TRANSITION` and changes nothing.
#[tokio::test]
async fn invalid_transitions_are_refused() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let c = f.receive(SARZANA, "2026-03-02 09:00").await;
        for status in [S::Received, S::Assessed, S::Answered, S::Closed] {
            let err = f
                .api
                .transition_complaint(transition(&c.name, status, "urp"))
                .await
                .expect_err("skips or stays");
            assert_error(
                &err,
                Code::FailedPrecondition,
                "INVALID_STATUS_TRANSITION",
                Some("status"),
                &format!("{} RECEIVED -> {status:?}", t.label),
            );
        }
        f.move_to(&c.name, S::Acknowledged, "2026-03-03 09:00")
            .await;
        let err = f
            .api
            .transition_complaint(transition(&c.name, S::Received, "urp"))
            .await
            .expect_err("back");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "INVALID_STATUS_TRANSITION",
            Some("status"),
            t.label,
        );
        for step in [S::Assessed, S::Answered, S::Closed] {
            f.move_to(&c.name, step, "2026-03-04 09:00").await;
        }
        let err = f
            .api
            .transition_complaint(transition(&c.name, S::Closed, "urp"))
            .await
            .expect_err("closed is the end");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "INVALID_STATUS_TRANSITION",
            Some("status"),
            t.label,
        );

        let err = f
            .api
            .transition_complaint(transition(&c.name, S::Unspecified, "urp"))
            .await
            .expect_err("no status");
        assert_error(
            &err,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
            Some("status"),
            t.label,
        );
        let other = f.receive(SARZANA, "2026-03-05 09:00").await;
        let err = f
            .api
            .transition_complaint(transition(&other.name, S::Acknowledged, " "))
            .await
            .expect_err("no actor");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_ACTOR",
            Some("actor"),
            t.label,
        );
        let err = f
            .api
            .transition_complaint(transition(
                &format!("comuni/{SARZANA}/complaints/nope"),
                S::Acknowledged,
                "urp",
            ))
            .await
            .expect_err("unknown");
        assert_error(
            &err,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("name"),
            t.label,
        );
        // Two complaints: five steps for the first, only the receipt for the second.
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_complaint_history").await,
            6,
            "{}",
            t.label
        );
    }
}

/// Complaint indicators (DOMAIN.md "Quality and benchmarks", ISO 10002 complaint analysis) for
/// the complaints received in March 2026, as of 15 April 2026, computed by hand below.
#[tokio::test]
async fn indicators_for_a_period() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        // A: received 2 March (deadlines 7 March, 1 April); acknowledged 4 March, answered
        // 12 March (10 days), closed: both in time.
        let a = f.receive(SARZANA, "2026-03-02 09:00").await;
        f.move_to(&a.name, S::Acknowledged, "2026-03-04 09:00")
            .await;
        f.move_to(&a.name, S::Assessed, "2026-03-05 09:00").await;
        f.move_to(&a.name, S::Answered, "2026-03-12 09:00").await;
        f.move_to(&a.name, S::Closed, "2026-03-13 09:00").await;
        // B: received 2 March; acknowledged 8 March (late), answered 2 April (31 days, late).
        let b = f.receive(SARZANA, "2026-03-02 10:00").await;
        f.move_to(&b.name, S::Acknowledged, "2026-03-08 09:00")
            .await;
        f.move_to(&b.name, S::Assessed, "2026-03-20 09:00").await;
        f.move_to(&b.name, S::Answered, "2026-04-02 09:00").await;
        // C: received 10 March (deadlines 15 March, 9 April); acknowledged 11 March (in time),
        // never answered: overdue on 15 April.
        let c = f.receive(SARZANA, "2026-03-10 09:00").await;
        f.move_to(&c.name, S::Acknowledged, "2026-03-11 09:00")
            .await;
        // D: received 30 March (deadlines 4 April, 29 April): acknowledgement late, response not
        // yet due.
        f.receive(SARZANA, "2026-03-30 09:00").await;
        // G: 28 February 23:30 UTC is 1 March 00:30 in Rome, so in March (deadlines 6 March,
        // 31 March): both late, overdue.
        f.receive(SARZANA, "2026-02-28 23:30").await;
        // Outside March in Rome: 28 February 22:30 UTC (23:30 CET) and 31 March 22:30 UTC
        // (1 April 00:30 CEST); and Arcola's complaint is Arcola's.
        f.receive(SARZANA, "2026-02-28 22:30").await;
        f.receive(SARZANA, "2026-03-31 22:30").await;
        f.receive(ARCOLA, "2026-03-15 09:00").await;

        f.at("2026-04-15 10:00");
        let got = f
            .api
            .compute_complaint_indicators(routed(
                SARZANA,
                pb::ComputeComplaintIndicatorsRequest {
                    parent: format!("comuni/{SARZANA}"),
                    start_date: date(2026, 3, 1),
                    end_date: date(2026, 3, 31),
                },
            ))
            .await
            .expect("computes")
            .into_inner();
        let ctx = t.label;
        // Received A, B, C, D, G = 5; acknowledged A, B, C = 3; answered A, B = 2; closed A = 1;
        // overdue (not answered, response deadline past): C (9 April), G (31 March) = 2.
        assert_eq!(
            (
                got.received_count,
                got.acknowledged_count,
                got.answered_count,
                got.closed_count,
                got.overdue_count
            ),
            (5, 3, 2, 1, 2),
            "{ctx}"
        );
        // Acknowledgement due: A, B, C (done) + D, G (past) = 5; in time A, C: 2 / 5 = 40 %.
        assert_eq!(got.acknowledgement_due_count, 5, "{ctx}");
        assert!(
            (got.acknowledged_in_time_share - 40.0).abs() < 1e-9,
            "{ctx}: {got:?}"
        );
        // Response due: A, B (done) + C, G (past) = 4; in time A: 1 / 4 = 25 %.
        assert_eq!(got.response_due_count, 4, "{ctx}");
        assert!(
            (got.answered_in_time_share - 25.0).abs() < 1e-9,
            "{ctx}: {got:?}"
        );
        // Response days 10 (A) and 31 (B): median (10 + 31) / 2 = 20.5.
        assert!(
            (got.median_response_days - 20.5).abs() < 1e-9,
            "{ctx}: {got:?}"
        );
        assert_eq!(
            (got.start_date, got.end_date),
            (date(2026, 3, 1), date(2026, 3, 31))
        );

        // An empty period: all zero, no division by zero.
        let empty = f
            .api
            .compute_complaint_indicators(routed(
                SARZANA,
                pb::ComputeComplaintIndicatorsRequest {
                    parent: format!("comuni/{SARZANA}"),
                    start_date: date(2025, 1, 1),
                    end_date: date(2025, 12, 31),
                },
            ))
            .await
            .expect("computes")
            .into_inner();
        assert_eq!(
            (
                empty.received_count,
                empty.acknowledged_in_time_share,
                empty.median_response_days
            ),
            (0, 0.0, 0.0),
            "{ctx}"
        );
    }
}

/// AIP-4222: the routing header must name the comune of the body, and a node acts only for
/// the comuni it serves; neither refusal writes anything.
#[tokio::test]
async fn calls_for_another_or_an_unserved_comune_are_refused() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let mut request = intake(SARZANA, "roads", "");
        request.metadata_mut().insert(
            ROUTING_HEADER,
            "comune=comuni%2F011002".parse().expect("ascii"),
        );
        let err = f.api.create_complaint(request).await.expect_err("mismatch");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("parent"),
            t.label,
        );
        let err = f
            .api
            .create_complaint(intake(LUNI, "roads", ""))
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
            .update_service_charter(charter(LUNI, 5, 20))
            .await
            .expect_err("not served");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("service_charter.name"),
            t.label,
        );
        let mut request = charter(SARZANA, 5, 20);
        request.metadata_mut().insert(
            ROUTING_HEADER,
            "comune=comuni%2F011002".parse().expect("ascii"),
        );
        let err = f
            .api
            .update_service_charter(request)
            .await
            .expect_err("mismatch");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("service_charter.name"),
            t.label,
        );
        let c = f.receive(SARZANA, "2026-03-02 09:00").await;
        let mut request = transition(&c.name, S::Acknowledged, "urp");
        request.metadata_mut().insert(
            ROUTING_HEADER,
            "comune=comuni%2F011002".parse().expect("ascii"),
        );
        let err = f
            .api
            .transition_complaint(request)
            .await
            .expect_err("mismatch");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("name"),
            t.label,
        );
        let err = f
            .api
            .get_complaint(Request::new(pb::GetComplaintRequest {
                name: c.name.clone(),
            }))
            .await
            .expect_err("no header");
        assert_error(
            &err,
            Code::InvalidArgument,
            "ROUTING_HEADER_MISSING",
            Some(ROUTING_HEADER),
            t.label,
        );
        let err = f
            .api
            .get_complaint(routed(
                ARCOLA,
                pb::GetComplaintRequest {
                    name: c.name.replace(SARZANA, ARCOLA),
                },
            ))
            .await
            .expect_err("Arcola has no such complaint");
        assert_error(
            &err,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("name"),
            t.label,
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_complaints").await,
            1,
            "{}",
            t.label
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_service_charters").await,
            0,
            "{}",
            t.label
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_complaint_history").await,
            1,
            "{}",
            t.label
        );
    }
}

/// DOMAIN.md "Idempotency keys" (AIP-155) and "a unique id at receipt": a retried intake under
/// the same request_id gets the same complaint, not a second one; the same key with another
/// complaint is refused; an invalid intake stores nothing.
#[tokio::test]
async fn idempotent_intake_and_invalid_complaints() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let first = f
            .api
            .create_complaint(intake(SARZANA, "roads", "c-1"))
            .await
            .expect("receives")
            .into_inner();
        f.at("2026-03-02 09:05");
        let mut retry = intake(SARZANA, "roads", "c-1");
        if let Some(c) = retry.get_mut().complaint.as_mut() {
            // Output-only fields a client echoes back do not make it another request.
            c.status = S::Closed.into();
            c.complaint_id = "echoed".to_owned();
        }
        let again = f
            .api
            .create_complaint(retry)
            .await
            .expect("replays")
            .into_inner();
        assert_eq!(again, first, "{}", t.label);
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_complaints").await,
            1,
            "{}",
            t.label
        );
        let err = f
            .api
            .create_complaint(intake(SARZANA, "lighting", "c-1"))
            .await
            .expect_err("same key, another complaint");
        assert_error(
            &err,
            Code::AlreadyExists,
            "IDEMPOTENCY_KEY_REUSED",
            Some("request_id"),
            t.label,
        );

        let mut no_channel = intake(SARZANA, "roads", "c-2");
        if let Some(c) = no_channel.get_mut().complaint.as_mut() {
            c.channel = Channel::Unspecified.into();
        }
        let err = f
            .api
            .create_complaint(no_channel)
            .await
            .expect_err("no channel");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_COMPLAINT",
            Some("complaint.channel"),
            t.label,
        );
        let err = f
            .api
            .create_complaint(intake(SARZANA, " ", "c-2"))
            .await
            .expect_err("no category");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_COMPLAINT",
            Some("complaint.category"),
            t.label,
        );
        let mut no_text = intake(SARZANA, "roads", "c-2");
        if let Some(c) = no_text.get_mut().complaint.as_mut() {
            c.text.clear();
        }
        let err = f.api.create_complaint(no_text).await.expect_err("no text");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_COMPLAINT",
            Some("complaint.text"),
            t.label,
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_complaints").await,
            1,
            "{}",
            t.label
        );

        // A contact is optional.
        let mut anonymous = intake(SARZANA, "roads", "c-2");
        if let Some(c) = anonymous.get_mut().complaint.as_mut() {
            c.contact.clear();
        }
        let got = f
            .api
            .create_complaint(anonymous)
            .await
            .expect("receives")
            .into_inner();
        assert!(got.contact.is_empty(), "{}", t.label);
    }
}

/// Issue 8: a citizen files a complaint (ISO 10002), reads it back and lists theirs; another
/// citizen's, or a complaint taken at the counter, is NOT_FOUND to them, as a missing one. Moving a complaint
/// along its workflow, the charter and the indicators are the office's, never a citizen's.
#[tokio::test]
async fn a_citizen_reads_back_their_own_complaint_only() {
    const ROSSI: &str = "RSSMRA80A01I449Q";
    const BIANCHI: &str = "BNCNNA82B42I449T";
    for t in testing::all().await {
        let l = t.label;
        let f = fixture(&t).await;
        let filed = f
            .api
            .create_complaint(by_citizen(ROSSI, intake(SARZANA, "waste-collection", "k1")))
            .await
            .expect("a citizen files")
            .into_inner();
        let at_counter = f.receive(SARZANA, "2026-03-02 10:00").await;
        // The same key from another citizen is another complaint: keys never meet.
        let bianchi = f
            .api
            .create_complaint(by_citizen(
                BIANCHI,
                intake(SARZANA, "waste-collection", "k1"),
            ))
            .await
            .expect("another citizen files")
            .into_inner();
        assert_ne!(bianchi.name, filed.name, "{l}");

        let get = |cf: &str, name: &str| {
            f.api.get_complaint(by_citizen(
                cf,
                routed(
                    SARZANA,
                    pb::GetComplaintRequest {
                        name: name.to_owned(),
                    },
                ),
            ))
        };
        let back = get(ROSSI, &filed.name)
            .await
            .expect("their own complaint")
            .into_inner();
        assert_eq!(back, filed, "{l}");
        for (name, what) in [
            (&bianchi.name, "another citizen's"),
            (&at_counter.name, "one taken at the counter"),
        ] {
            let err = get(ROSSI, name).await.expect_err(what);
            assert_eq!(
                (err.code(), reason_and_field(&err)),
                (
                    Code::NotFound,
                    ("RESOURCE_NOT_FOUND".to_owned(), Some("name".to_owned()))
                ),
                "{l}: {what}"
            );
        }

        let list = |who: Option<&str>, size: i32, token: String| {
            let request = routed(
                SARZANA,
                pb::ListComplaintsRequest {
                    parent: format!("comuni/{SARZANA}"),
                    page_size: size,
                    page_token: token,
                },
            );
            f.api.list_complaints(match who {
                Some(cf) => by_citizen(cf, request),
                None => request,
            })
        };
        let names = |r: pb::ListComplaintsResponse| -> Vec<String> {
            r.complaints.into_iter().map(|c| c.name).collect()
        };
        let own = list(Some(ROSSI), 0, String::new())
            .await
            .expect("their complaints")
            .into_inner();
        assert_eq!(names(own), vec![filed.name.clone()], "{l}: only their own");
        let all = list(None, 0, String::new())
            .await
            .expect("the office lists")
            .into_inner();
        assert_eq!(
            all.complaints.len(),
            3,
            "{l}: every complaint for the office"
        );
        let first = list(None, 1, String::new())
            .await
            .expect("a first page")
            .into_inner();
        let err = list(Some(ROSSI), 1, first.next_page_token)
            .await
            .expect_err("the office's page token");
        assert_eq!(err.code(), Code::InvalidArgument, "{l}");

        let err = f
            .api
            .transition_complaint(by_citizen(
                ROSSI,
                transition(&filed.name, S::Closed, "rossi"),
            ))
            .await
            .expect_err("a citizen does not move complaints");
        assert_eq!(
            (err.code(), reason_and_field(&err).0),
            (Code::PermissionDenied, "ROLE_NOT_ALLOWED".to_owned()),
            "{l}"
        );
        let err = f
            .api
            .update_service_charter(by_citizen(ROSSI, charter(SARZANA, 1, 2)))
            .await
            .expect_err("a citizen does not set the charter");
        assert_eq!(err.code(), Code::PermissionDenied, "{l}");
        assert_eq!(
            get(ROSSI, &filed.name)
                .await
                .expect("still theirs")
                .into_inner()
                .status,
            S::Received as i32,
            "{l}: nothing changed"
        );
    }
}
