//! RegistryStatisticsService over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL, against figures computed by hand. Cases are run through CaseService on a clock
//! the test moves (so each is stored as the office stores it); certificates are stored with
//! the issue times the edges of a range need. DOMAIN.md "Registry", Cases (Legge 241/1990 art.
//! 2: the deadline, extended by a suspension for documents) decides what is within the
//! deadline; days are Italian calendar days (Europe/Rome).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::NaiveDate;
use tonic::Code;
use unione_kit::Istat;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_kit::token::Role;
use unione_proto::registry::v1 as pb;
use unione_proto::registry::v1::case_service_server::CaseService;
use unione_proto::registry::v1::registry_statistics_service_server::RegistryStatisticsService;
use unione_registry::domain::cases::Action;
use unione_registry::domain::certificate::CertificateKind;
use unione_registry::storage::certificate::{StoredCertificate, insert_certificate};
use unione_registry::{CaseApi, StatisticsApi};

use support::*;

/// Microseconds of `h:m` UTC on a day of 2026.
fn utc(m: u32, d: u32, h: u32, min: u32) -> i64 {
    NaiveDate::from_ymd_opt(2026, m, d)
        .and_then(|day| day.and_hms_opt(h, min, 0))
        .expect("a real instant")
        .and_utc()
        .timestamp_micros()
}

/// 09:00 UTC (10:00 or 11:00 in Italy: the same calendar day).
fn morning(m: u32, d: u32) -> i64 {
    utc(m, d, 9, 0)
}

fn statistics(t: &TestDatabase, now: i64) -> StatisticsApi {
    StatisticsApi::with_clock(t.db.clone(), served(), Arc::new(move || now))
}

fn parent(istat: &str) -> String {
    format!("comuni/{istat}")
}

fn case_request(
    istat: &str,
    start: (i32, i32, i32),
    end: (i32, i32, i32),
) -> pb::GetCaseStatisticsRequest {
    pb::GetCaseStatisticsRequest {
        parent: parent(istat),
        start_date: date(start.0, start.1, start.2),
        end_date: date(end.0, end.1, end.2),
    }
}

/// GetCaseStatistics for `istat` over `start`..`end` (month, day of 2026), asked at `now` by
/// an operator.
async fn case_figures(
    t: &TestDatabase,
    now: i64,
    istat: &str,
    start: (i32, i32),
    end: (i32, i32),
) -> pb::CaseStatistics {
    statistics(t, now)
        .get_case_statistics(as_operator(
            istat,
            case_request(istat, (2026, start.0, start.1), (2026, end.0, end.1)),
        ))
        .await
        .unwrap_or_else(|e| panic!("{}: {istat} {start:?}..{end:?}: {e:?}", t.label))
        .into_inner()
}

/// One step of the office's year: at `at`, `action` on the case labelled `case` (a
/// submission creates it) in `istat`.
struct Step {
    at: i64,
    istat: &'static str,
    case: &'static str,
    action: Action,
}

const fn step(at: i64, istat: &'static str, case: &'static str, action: Action) -> Step {
    Step {
        at,
        istat,
        case,
        action,
    }
}

/// Runs `steps` in order through CaseService as an operator of each comune, the clock set to
/// each step's time.
async fn run_cases(t: &TestDatabase, steps: &[Step]) {
    let now = Arc::new(AtomicI64::new(steps[0].at));
    let read = Arc::clone(&now);
    let api = CaseApi::with_clock(
        t.db.clone(),
        served(),
        Arc::new(move || read.load(Ordering::SeqCst)),
    );
    for istat in [SARZANA, ARCOLA] {
        api.create_procedure_type(as_operator(
            istat,
            pb::CreateProcedureTypeRequest {
                parent: parent(istat),
                procedure_type: Some(pb::ProcedureType {
                    code: "SUOLO".to_owned(),
                    title: "Occupazione di suolo pubblico".to_owned(),
                    office: "SUAP".to_owned(),
                    classification: "6.3".to_owned(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("the procedure type (30 days) is created");
    }
    let mut names: Vec<(&str, String)> = Vec::new();
    for s in steps {
        now.store(s.at, Ordering::SeqCst);
        let label = format!("{} {:?}", s.case, s.action);
        let name = || {
            names
                .iter()
                .find(|(case, _)| *case == s.case)
                .map(|(_, name)| name.clone())
                .unwrap_or_else(|| panic!("{label}: the case was submitted"))
        };
        let reason = "motivazione".to_owned();
        let done = match s.action {
            Action::Submit => {
                let case = api
                    .submit_case(as_operator(
                        s.istat,
                        pb::SubmitCaseRequest {
                            parent: parent(s.istat),
                            case: Some(pb::Case {
                                procedure_type: format!("{}/procedureTypes/SUOLO", parent(s.istat)),
                                applicant: "RSSMRA80A01H501U".to_owned(),
                                subject: format!("Dehors {}", s.case),
                                data: "Via Roma 1".to_owned(),
                                ..Default::default()
                            }),
                            request_id: String::new(),
                        },
                    ))
                    .await
                    .map(|r| r.into_inner());
                if let Ok(case) = &case {
                    names.push((s.case, case.name.clone()));
                }
                case.map(drop)
            }
            Action::TakeInCharge => api
                .take_case_in_charge(as_operator(
                    s.istat,
                    pb::TakeCaseInChargeRequest {
                        name: name(),
                        reason,
                    },
                ))
                .await
                .map(drop),
            Action::RequestIntegration => api
                .request_integration(as_operator(
                    s.istat,
                    pb::RequestIntegrationRequest {
                        name: name(),
                        reason,
                    },
                ))
                .await
                .map(drop),
            Action::Resubmit => api
                .resubmit_case(as_operator(
                    s.istat,
                    pb::ResubmitCaseRequest {
                        name: name(),
                        reason,
                    },
                ))
                .await
                .map(drop),
            Action::SendRefusalNotice => api
                .send_refusal_notice(as_operator(
                    s.istat,
                    pb::SendRefusalNoticeRequest {
                        name: name(),
                        reason,
                    },
                ))
                .await
                .map(drop),
            Action::Accept => api
                .accept_case(as_operator(
                    s.istat,
                    pb::AcceptCaseRequest {
                        name: name(),
                        reason,
                    },
                ))
                .await
                .map(drop),
            Action::Reject => api
                .reject_case(as_operator(
                    s.istat,
                    pb::RejectCaseRequest {
                        name: name(),
                        reason,
                    },
                ))
                .await
                .map(drop),
            Action::Withdraw => api
                .withdraw_case(as_operator(
                    s.istat,
                    pb::WithdrawCaseRequest {
                        name: name(),
                        reason,
                    },
                ))
                .await
                .map(drop),
            Action::Cancel => api
                .cancel_case(as_operator(
                    s.istat,
                    pb::CancelCaseRequest {
                        name: name(),
                        reason,
                    },
                ))
                .await
                .map(drop),
            Action::AnswerRefusalNotice => panic!("{label}: not used here"),
        };
        done.unwrap_or_else(|e| panic!("{label}: allowed: {e:?}"));
    }
}

/// The office's cases from January to April 2026 (all procedures of 30 days), by label:
/// - A: submitted 1 Feb, accepted 2 Mar: 29 days, deadline 3 Mar, in time.
/// - B: submitted 20 Jan, accepted 5 Mar: 44 days, deadline 19 Feb, late.
/// - C: submitted 10 Feb, integration requested 20 Feb, resubmitted 2 Mar (10 days
///   suspended), accepted 18 Mar: 36 - 10 = 26 days; deadline 22 Mar with the suspension (12
///   Mar without it), a Sunday, so Monday 23 Mar (art. 155 c.p.c.), in time.
/// - D: submitted 15 Feb, refusal notice 1 Mar, unanswered, rejected 12 Mar (the notice
///   suspends 10 days): 25 - 10 = 15 days, deadline 27 Mar, in time.
/// - E: submitted 5 Jan, accepted 20 Feb: before March.
/// - F: submitted 10 Mar, accepted at 00:10 on 1 Apr in Italy (22:10 UTC on 31 Mar): open at
///   the end of March (deadline 9 Apr); 22 days in April, in time.
/// - G: submitted 1 Feb, accepted 3 Apr: open and overdue at the end of March (deadline 3
///   Mar); 61 days in April, late.
/// - H: submitted 5 Feb, never decided: deadline Saturday 7 Mar, so Monday 9 Mar; overdue
///   since 10 Mar.
/// - I: submitted 20 Mar, open: deadline Sunday 19 Apr, so Monday 20 Apr.
/// - J: submitted 3 Mar, withdrawn 10 Mar. K: submitted 25 Feb, cancelled at 23:30 on 31 Mar
///   in Italy (21:30 UTC). L: submitted and withdrawn 10 Feb.
/// - Z: Arcola's, submitted 2 Mar and accepted 4 Mar: never in Sarzana's figures.
fn the_year() -> Vec<Step> {
    use Action::*;
    let s = SARZANA;
    vec![
        step(morning(1, 5), s, "E", Submit),
        step(morning(1, 5), s, "E", TakeInCharge),
        step(morning(1, 20), s, "B", Submit),
        step(morning(1, 20), s, "B", TakeInCharge),
        step(morning(2, 1), s, "A", Submit),
        step(morning(2, 1), s, "A", TakeInCharge),
        step(morning(2, 1), s, "G", Submit),
        step(morning(2, 1), s, "G", TakeInCharge),
        step(morning(2, 5), s, "H", Submit),
        step(morning(2, 5), s, "H", TakeInCharge),
        step(morning(2, 10), s, "C", Submit),
        step(morning(2, 10), s, "C", TakeInCharge),
        step(morning(2, 10), s, "L", Submit),
        step(morning(2, 10), s, "L", Withdraw),
        step(morning(2, 15), s, "D", Submit),
        step(morning(2, 15), s, "D", TakeInCharge),
        step(morning(2, 20), s, "E", Accept),
        step(morning(2, 20), s, "C", RequestIntegration),
        step(morning(2, 25), s, "K", Submit),
        step(morning(3, 1), s, "D", SendRefusalNotice),
        step(morning(3, 2), s, "A", Accept),
        step(morning(3, 2), s, "C", Resubmit),
        step(morning(3, 2), ARCOLA, "Z", Submit),
        step(morning(3, 2), ARCOLA, "Z", TakeInCharge),
        step(morning(3, 3), s, "J", Submit),
        step(morning(3, 4), ARCOLA, "Z", Accept),
        step(morning(3, 5), s, "B", Accept),
        step(morning(3, 10), s, "F", Submit),
        step(morning(3, 10), s, "F", TakeInCharge),
        step(morning(3, 10), s, "J", Withdraw),
        step(morning(3, 12), s, "D", Reject),
        step(morning(3, 18), s, "C", Accept),
        step(morning(3, 20), s, "I", Submit),
        step(utc(3, 31, 21, 30), s, "K", Cancel),
        step(utc(3, 31, 22, 10), s, "F", Accept),
        step(morning(4, 3), s, "G", Accept),
    ]
}

/// L. 241/1990 art. 2 (DOMAIN.md "Registry", Cases): the cases completed in March 2026, those
/// within their deadline (extended by the suspensions), the median days the clock ran (an
/// even count: the mean of the middle two), the cases open and overdue at the end of the
/// range, and the withdrawn and cancelled ones apart; Italian days at the range's edges.
#[tokio::test]
async fn case_figures_match_the_hand_computed_table() {
    for t in testing::all().await {
        let l = t.label;
        migrate(&t).await;
        run_cases(&t, &the_year()).await;

        let march = case_figures(&t, morning(4, 20), SARZANA, (3, 1), (3, 31)).await;
        assert_eq!(
            march,
            pb::CaseStatistics {
                // A, B, C, D.
                completed_count: 4,
                // A, C (thanks to its suspension), D.
                completed_within_deadline_count: 3,
                // 15, 26, 29, 44.
                median_processing_days: 27.5,
                // G and H; F and I are open within their deadlines.
                overdue_open_count: 2,
                // J, and K at 23:30 on the last day.
                withdrawn_or_cancelled_count: 2,
            },
            "{l}: March"
        );

        // April, asked on 10 April: F (22 days, in time) and G (61 days, late) completed; at
        // 10 April only H is overdue (I's deadline is 20 April: the range is not over, so it
        // is counted to today).
        let april = case_figures(&t, morning(4, 10), SARZANA, (4, 1), (4, 30)).await;
        assert_eq!(
            april,
            pb::CaseStatistics {
                completed_count: 2,
                completed_within_deadline_count: 1,
                median_processing_days: 41.5,
                overdue_open_count: 1,
                withdrawn_or_cancelled_count: 0,
            },
            "{l}: April"
        );

        // The same April asked on 20 April, I's last day (19 April is a Sunday), does not
        // count I as overdue; asked on 21 April it does.
        let last_day = case_figures(&t, morning(4, 20), SARZANA, (4, 1), (4, 30)).await;
        assert_eq!(last_day.overdue_open_count, 1, "{l}: H only");
        let later = case_figures(&t, morning(4, 21), SARZANA, (4, 1), (4, 30)).await;
        assert_eq!(later.overdue_open_count, 2, "{l}: H and I");

        // Arcola's own figures hold its one case only.
        let arcola = case_figures(&t, morning(4, 20), ARCOLA, (3, 1), (3, 31)).await;
        assert_eq!(
            (arcola.completed_count, arcola.median_processing_days),
            (1, 2.0),
            "{l}: Arcola"
        );

        // A range with nothing completed: a median of 0.
        let january = case_figures(&t, morning(4, 20), SARZANA, (1, 1), (1, 31)).await;
        assert_eq!(
            january,
            pb::CaseStatistics {
                overdue_open_count: 0,
                ..Default::default()
            },
            "{l}: January: E and B open within their deadlines"
        );
    }
}

/// Stores a certificate of `istat` issued on `channel` at `issue_time`.
async fn certificate_at(
    t: &TestDatabase,
    istat: &str,
    resident: &str,
    code: &str,
    channel: &str,
    issue_time: i64,
) {
    let mut conn = t.db.pool().acquire().await.expect("a connection");
    insert_certificate(
        &mut conn,
        &Istat::parse(istat).expect("a code"),
        &StoredCertificate {
            id: code.to_ascii_lowercase(),
            verification_code: code.to_owned(),
            kind: CertificateKind::Residence,
            resident_id: resident.to_owned(),
            as_of: "2026-03-01".to_owned(),
            channel: channel.to_owned(),
            content: "{}".to_owned(),
            seal: vec![0; 64],
            issued_by: "op-1".to_owned(),
            issue_time,
        },
    )
    .await
    .expect("the certificate is stored");
}

fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().expect("a name")
}

/// Certificates issued in March 2026 by channel, on Italian days: 00:05 on 1 March in Italy
/// (23:05 UTC the day before) is in, 23:50 on 28 February is out; 23:30 on 31 March (21:30
/// UTC, summer time) is in, 00:10 on 1 April (22:10 UTC on 31 March) is out. Phone and e-mail
/// count as issued only; another comune's certificates never.
#[tokio::test]
async fn certificate_figures_count_italian_days_by_channel() {
    for t in testing::all().await {
        let l = t.label;
        migrate(&t).await;
        let sarzana = register(&t, SARZANA, person("Rossi", "Mario", (1980, 1, 1), false)).await;
        let arcola = register(&t, ARCOLA, person("Bianchi", "Anna", (1982, 2, 2), true)).await;
        let (s, a) = (last_segment(&sarzana.name), last_segment(&arcola.name));
        for (code, channel, at) in [
            ("C0FEB28LATE", "WEB", utc(2, 28, 22, 50)),
            ("C1MAR1EARLY", "KIOSK", utc(2, 28, 23, 5)),
            ("C2MAR15WEB", "WEB", morning(3, 15)),
            ("C3MAR15DESK", "COUNTER", morning(3, 15)),
            ("C4MAR20MAIL", "EMAIL", morning(3, 20)),
            ("C5MAR20TEL", "PHONE", morning(3, 20)),
            ("C6MAR31LATE", "WEB", utc(3, 31, 21, 30)),
            ("C7APR1EARLY", "COUNTER", utc(3, 31, 22, 10)),
        ] {
            certificate_at(&t, SARZANA, s, code, channel, at).await;
        }
        certificate_at(&t, ARCOLA, a, "C8ARCOLA", "KIOSK", morning(3, 15)).await;

        let march = statistics(&t, morning(4, 20))
            .get_certificate_statistics(as_operator(
                SARZANA,
                pb::GetCertificateStatisticsRequest {
                    parent: parent(SARZANA),
                    start_date: date(2026, 3, 1),
                    end_date: date(2026, 3, 31),
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("{l}: {e:?}"))
            .into_inner();
        assert_eq!(
            march,
            pb::CertificateStatistics {
                issued_count: 6,
                online_count: 2,
                kiosk_count: 1,
                counter_count: 1,
            },
            "{l}"
        );

        // One day: the last of February holds the certificate issued at 23:50 only.
        let feb_28 = statistics(&t, morning(4, 20))
            .get_certificate_statistics(as_operator(
                SARZANA,
                pb::GetCertificateStatisticsRequest {
                    parent: parent(SARZANA),
                    start_date: date(2026, 2, 28),
                    end_date: date(2026, 2, 28),
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("{l}: {e:?}"))
            .into_inner();
        assert_eq!((feb_28.issued_count, feb_28.online_count), (1, 1), "{l}");
    }
}

/// Bad input is refused with the field at fault (INVALID_ARGUMENT), a comune not served here
/// or not the routed one with FAILED_PRECONDITION, and a citizen with PERMISSION_DENIED;
/// nothing is written by any call.
#[tokio::test]
async fn bad_requests_are_refused_with_the_field() {
    for t in testing::all().await {
        let l = t.label;
        migrate(&t).await;
        run_cases(&t, &the_year()[..4]).await;
        let before = count(&t, "SELECT COUNT(*) FROM registry_case_events").await;
        let api = statistics(&t, morning(4, 20));
        let ask = |istat: &'static str, request: pb::GetCaseStatisticsRequest| {
            let api = api.clone();
            async move {
                api.get_case_statistics(as_operator(istat, request))
                    .await
                    .expect_err("refused")
            }
        };
        let march = case_request(SARZANA, (2026, 3, 1), (2026, 3, 31));
        let cases = [
            (
                "no start date",
                pb::GetCaseStatisticsRequest {
                    start_date: None,
                    ..march.clone()
                },
                Code::InvalidArgument,
                "FIELD_REQUIRED",
                "start_date",
            ),
            (
                "no end date",
                pb::GetCaseStatisticsRequest {
                    end_date: None,
                    ..march.clone()
                },
                Code::InvalidArgument,
                "FIELD_REQUIRED",
                "end_date",
            ),
            (
                "31 February",
                case_request(SARZANA, (2026, 2, 1), (2026, 2, 31)),
                Code::InvalidArgument,
                "INVALID_DATE",
                "end_date",
            ),
            (
                "end before start",
                case_request(SARZANA, (2026, 3, 31), (2026, 3, 1)),
                Code::InvalidArgument,
                "INVALID_DATE_RANGE",
                "end_date",
            ),
            (
                "367 days",
                case_request(SARZANA, (2026, 1, 1), (2027, 1, 3)),
                Code::InvalidArgument,
                "DATE_RANGE_TOO_LONG",
                "end_date",
            ),
            (
                "a bad parent",
                pb::GetCaseStatisticsRequest {
                    parent: "comuni/11027".to_owned(),
                    ..march.clone()
                },
                Code::InvalidArgument,
                "INVALID_RESOURCE_NAME",
                "parent",
            ),
        ];
        for (label, request, code, reason, field) in cases {
            let status = ask(SARZANA, request).await;
            assert_error(&status, code, reason, Some(field), &format!("{l}: {label}"));
        }
        // Luni is not served here; a call routed to Sarzana may not ask for Arcola.
        let status = ask(LUNI, case_request(LUNI, (2026, 3, 1), (2026, 3, 31))).await;
        let label = format!("{l}: Luni");
        assert_error(
            &status,
            Code::FailedPrecondition,
            "COMUNE_NOT_SERVED",
            Some("parent"),
            &label,
        );
        let status = ask(SARZANA, case_request(ARCOLA, (2026, 3, 1), (2026, 3, 31))).await;
        let label = format!("{l}: routed elsewhere");
        assert_error(
            &status,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("parent"),
            &label,
        );
        // A citizen may not ask.
        let status = api
            .get_certificate_statistics(as_principal(
                SARZANA,
                pb::GetCertificateStatisticsRequest {
                    parent: parent(SARZANA),
                    start_date: date(2026, 3, 1),
                    end_date: date(2026, 3, 31),
                },
                Role::Citizen,
                Some("RSSMRA80A01H501U"),
            ))
            .await
            .expect_err("a citizen is refused");
        assert_error(
            &status,
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
            None,
            &format!("{l}: citizen"),
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM registry_case_events").await,
            before,
            "{l}: nothing changed"
        );
    }
}
