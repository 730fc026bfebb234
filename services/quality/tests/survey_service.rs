//! SurveyService handlers over real storage, on SQLite and (with `TEST_DATABASE_URL`)
//! PostgreSQL. The handlers are called directly, with the routing header the gateway sets and a
//! test clock.

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
use unione_proto::google::r#type::Date;
use unione_proto::quality::v1 as pb;
use unione_proto::quality::v1::question::Scale;
use unione_proto::quality::v1::survey_service_server::SurveyService;
use unione_quality::{Clock, SurveyApi};

struct Fixture {
    api: SurveyApi,
    now: Arc<AtomicI64>,
}

impl Fixture {
    fn at(&self, text: &str) {
        self.now.store(utc(text), Ordering::SeqCst);
    }
}

/// This node serves the quality office of Sarzana and Arcola, not Luni; the clock starts on
/// 2 March 2026 at 09:00 UTC.
async fn fixture(t: &TestDatabase) -> Fixture {
    t.db.migrate(&unione_quality::migrations())
        .await
        .expect("quality migrations apply");
    let now = Arc::new(AtomicI64::new(utc("2026-03-02 09:00")));
    let read = Arc::clone(&now);
    let api = SurveyApi::with_clock(
        t.db.clone(),
        Served::new([profile(SARZANA, "Sarzana"), profile(ARCOLA, "Arcola")]),
        Clock::from_fn(move || read.load(Ordering::SeqCst)),
    );
    Fixture { api, now }
}

fn question(scale: Scale, importance: f64) -> pb::Question {
    pb::Question {
        text: "Come valuta il servizio?".to_owned(),
        scale: scale.into(),
        importance,
    }
}

fn create_survey(
    istat: &str,
    questions: Vec<pb::Question>,
    min_sample_size: i32,
    request_id: &str,
) -> Request<pb::CreateSurveyRequest> {
    routed(
        istat,
        pb::CreateSurveyRequest {
            parent: format!("comuni/{istat}"),
            survey: Some(pb::Survey {
                title: "Sportello anagrafe 2026".to_owned(),
                channel: Channel::Counter.into(),
                questions,
                min_sample_size,
                ..Default::default()
            }),
            request_id: request_id.to_owned(),
        },
    )
}

fn answer(
    survey: &str,
    answers: &[i32],
    request_id: &str,
) -> Request<pb::CreateSurveyResponseRequest> {
    let istat = &survey["comuni/".len().."comuni/".len() + 6];
    routed(
        istat,
        pb::CreateSurveyResponseRequest {
            parent: survey.to_owned(),
            response: Some(pb::SurveyResponse {
                answers: answers.to_vec(),
                ..Default::default()
            }),
            request_id: request_id.to_owned(),
        },
    )
}

async fn results(
    api: &SurveyApi,
    survey: &str,
    start: Option<Date>,
    end: Option<Date>,
) -> pb::SurveyResults {
    let istat = &survey["comuni/".len().."comuni/".len() + 6];
    api.compute_survey_results(routed(
        istat,
        pb::ComputeSurveyResultsRequest {
            name: survey.to_owned(),
            start_date: start,
            end_date: end,
        },
    ))
    .await
    .expect("computes")
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

#[track_caller]
fn assert_estimate(got: Option<&pb::Estimate>, want: (f64, f64, f64, i64), what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what} is published"));
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(
        close(got.value, want.0) && close(got.ci_low, want.1) && close(got.ci_high, want.2),
        "{what}: got {got:?}, want {want:?}"
    );
    assert_eq!(got.count, want.3, "{what}");
}

/// The ten responses of the hand-computed example: (courtesy, waiting, recommend).
const TEN: [[i32; 3]; 10] = [
    [5, 4, 10],
    [4, 4, 9],
    [5, 5, 10],
    [3, 2, 8],
    [4, 3, 7],
    [2, 1, 3],
    [5, 4, 9],
    [4, 5, 6],
    [3, 3, 8],
    [1, 2, 0],
];

/// DOMAIN.md "Quality and benchmarks": the customer satisfaction index is the
/// importance-weighted mean of attribute scores rescaled to 0-100; NPS is % promoters (9-10)
/// minus % detractors (0-6); "Mettiamoci la faccia" gives green/yellow/red shares. Each with a
/// 95% interval, checked against numbers computed by hand (z = 1.959964).
#[tokio::test]
async fn results_match_the_hand_computed_index_nps_and_shares() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        // Courtesy weighs 2, waiting 1; the third question is the NPS one.
        let survey = f
            .api
            .create_survey(create_survey(
                SARZANA,
                vec![
                    question(Scale::Likert5, 2.0),
                    question(Scale::Likert5, 1.0),
                    question(Scale::Nps010, 1.0),
                ],
                10,
                "",
            ))
            .await
            .expect("creates")
            .into_inner();
        for (i, r) in TEN.iter().enumerate() {
            // Spread over 2 March, Rome time.
            f.at(&format!("2026-03-02 {:02}:00", 8 + i));
            f.api
                .create_survey_response(answer(&survey.name, r, ""))
                .await
                .expect("records");
        }
        // Outside the period: 1 March 22:59 UTC is 1 March in Rome; 2 March 23:00 UTC is 3 March.
        for at in ["2026-03-01 22:59", "2026-03-02 23:00"] {
            f.at(at);
            f.api
                .create_survey_response(answer(&survey.name, &[1, 1, 0], ""))
                .await
                .expect("records");
        }
        let got = results(&f.api, &survey.name, date(2026, 3, 2), date(2026, 3, 2)).await;
        assert_eq!(
            (got.response_count, got.suppressed, got.min_sample_size),
            (10, false, 10),
            "{}",
            t.label
        );
        assert_eq!(got.survey, survey.name);

        // Index per response: (2 * (courtesy - 1) * 25 + (waiting - 1) * 25) / 3 =
        // 91.667, 75, 100, 41.667, 66.667, 16.667, 91.667, 83.333, 50, 8.333; sum 625,
        // mean 62.5. Sample sd 32.21504, se = 32.21504 / sqrt(10) = 10.18729,
        // interval 62.5 -/+ 1.959964 * 10.18729 = 42.53328 .. 82.46672.
        assert_estimate(
            got.satisfaction_index.as_ref(),
            (62.5, 42.533_279_783_828_7, 82.466_720_216_171_3, 10),
            "index",
        );
        // NPS: promoters 10, 9, 10, 9 (4); passives 8, 7, 8 (3); detractors 3, 6, 0 (3):
        // (4 - 3) / 10 * 100 = 10. Variable +1/0/-1: mean 0.1, s^2 = (7 - 10 * 0.01) / 9 =
        // 0.766667, s = 0.875595, se = 0.276887; 100 * (0.1 -/+ 1.959964 * 0.276887) =
        // -44.26895 .. 64.26895.
        assert_estimate(
            got.net_promoter_score.as_ref(),
            (10.0, -44.268_945_348_134_68, 64.268_945_348_134_68, 10),
            "NPS",
        );
        // Faces over the 20 Likert answers: green (4-5) 11, yellow (3) 4, red (1-2) 5.
        // Wilson, n = 20, z^2 = 3.841459: green p = 0.55, centre (0.55 + 0.096036) / 1.192073
        // = 0.541946, half 1.644166 * sqrt(0.012375 + 0.002401) = 0.199869 -> 34.2085 .. 74.1802.
        assert_estimate(
            got.green_share.as_ref(),
            (
                55.000_000_000_000_01,
                34.208_534_245_034_24,
                74.180_214_174_437_58,
                20,
            ),
            "green",
        );
        // Yellow p = 0.2 -> 8.0658 .. 41.6017; red p = 0.25 -> 11.1862 .. 46.8701.
        assert_estimate(
            got.yellow_share.as_ref(),
            (20.0, 8.065_766_257_979_806, 41.601_743_225_189_35, 20),
            "yellow",
        );
        assert_estimate(
            got.red_share.as_ref(),
            (25.0, 11.186_170_140_766_565, 46.870_087_761_874_395, 20),
            "red",
        );

        // The three days together count the two responses outside 2 March as well.
        let wider = results(&f.api, &survey.name, date(2026, 3, 1), date(2026, 3, 3)).await;
        assert_eq!(wider.response_count, 12, "{}", t.label);
        // Arcola has no such survey.
        let err = f
            .api
            .compute_survey_results(routed(
                ARCOLA,
                pb::ComputeSurveyResultsRequest {
                    name: survey.name.replace(SARZANA, ARCOLA),
                    start_date: date(2026, 3, 2),
                    end_date: date(2026, 3, 2),
                },
            ))
            .await
            .expect_err("another comune's survey");
        assert_error(
            &err,
            Code::NotFound,
            "RESOURCE_NOT_FOUND",
            Some("name"),
            t.label,
        );
        let err = f
            .api
            .compute_survey_results(routed(
                SARZANA,
                pb::ComputeSurveyResultsRequest {
                    name: survey.name.clone(),
                    start_date: date(2026, 3, 3),
                    end_date: date(2026, 3, 2),
                },
            ))
            .await
            .expect_err("end before start");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_DATE_RANGE",
            Some("end_date"),
            t.label,
        );
        let err = f
            .api
            .compute_survey_results(routed(
                SARZANA,
                pb::ComputeSurveyResultsRequest {
                    name: survey.name.clone(),
                    start_date: date(2026, 2, 30),
                    end_date: date(2026, 3, 2),
                },
            ))
            .await
            .expect_err("30 February");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_DATE",
            Some("start_date"),
            t.label,
        );
    }
}

/// DOMAIN.md "Quality and benchmarks" (survey results): nothing is published below the minimum
/// sample, 30 responses unless the survey sets another; only the count is told.
#[tokio::test]
async fn results_are_suppressed_below_the_minimum_sample() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let survey = f
            .api
            .create_survey(create_survey(
                SARZANA,
                vec![question(Scale::Likert5, 1.0)],
                0,
                "",
            ))
            .await
            .expect("creates")
            .into_inner();
        assert_eq!(
            survey.min_sample_size, 30,
            "{}: 0 means the default",
            t.label
        );
        for _ in 0..29 {
            f.api
                .create_survey_response(answer(&survey.name, &[5], ""))
                .await
                .expect("records");
        }
        let got = results(&f.api, &survey.name, date(2026, 3, 1), date(2026, 3, 31)).await;
        assert_eq!(
            (got.response_count, got.suppressed),
            (29, true),
            "{}",
            t.label
        );
        assert!(
            got.satisfaction_index.is_none()
                && got.net_promoter_score.is_none()
                && got.green_share.is_none()
                && got.yellow_share.is_none()
                && got.red_share.is_none(),
            "{}: nothing but the count below 30: {got:?}",
            t.label
        );
        f.api
            .create_survey_response(answer(&survey.name, &[5], ""))
            .await
            .expect("the 30th");
        let got = results(&f.api, &survey.name, date(2026, 3, 1), date(2026, 3, 31)).await;
        assert_eq!(
            (got.response_count, got.suppressed),
            (30, false),
            "{}",
            t.label
        );
        // All answers 5: index 100 with no spread; green 30/30, Wilson 88.65 .. 100.
        assert_estimate(
            got.satisfaction_index.as_ref(),
            (100.0, 100.0, 100.0, 30),
            "index",
        );
        let green = got.green_share.expect("published");
        assert!((green.value - 100.0).abs() < 1e-9 && green.ci_high <= 100.0);
        assert!(green.ci_low > 88.0 && green.ci_low < 89.0, "{green:?}");
        // No 0-10 question: no NPS.
        assert!(got.net_promoter_score.is_none(), "{}", t.label);
    }
}

/// Answers must be on their question's scale (Likert 1-5, NPS 0-10), one per question;
/// refused with the answer at fault named, and nothing stored.
#[tokio::test]
async fn answers_outside_the_scale_are_refused_and_nothing_is_stored() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let survey = f
            .api
            .create_survey(create_survey(
                SARZANA,
                vec![question(Scale::Likert5, 1.0), question(Scale::Nps010, 1.0)],
                2,
                "",
            ))
            .await
            .expect("creates")
            .into_inner();
        let cases: [(&[i32], &str, &str); 6] = [
            (&[6, 5], "ANSWER_OUT_OF_SCALE", "response.answers[0]"),
            (&[0, 5], "ANSWER_OUT_OF_SCALE", "response.answers[0]"),
            (&[3, 11], "ANSWER_OUT_OF_SCALE", "response.answers[1]"),
            (&[3, -1], "ANSWER_OUT_OF_SCALE", "response.answers[1]"),
            (&[3], "ANSWER_COUNT_MISMATCH", "response.answers"),
            (&[3, 5, 5], "ANSWER_COUNT_MISMATCH", "response.answers"),
        ];
        for (answers, reason, field) in cases {
            let err = f
                .api
                .create_survey_response(answer(&survey.name, answers, "k1"))
                .await
                .expect_err("refused");
            assert_error(
                &err,
                Code::InvalidArgument,
                reason,
                Some(field),
                &format!("{} {answers:?}", t.label),
            );
        }
        for n in [
            count(&t, "SELECT COUNT(*) FROM quality_survey_responses").await,
            count(&t, "SELECT COUNT(*) FROM quality_survey_answers").await,
            count(&t, "SELECT COUNT(*) FROM idempotency_keys").await,
        ] {
            assert_eq!(n, 0, "{}: nothing stored", t.label);
        }
        // A survey that breaks the rules is refused on the field at fault.
        let err = f
            .api
            .create_survey(create_survey(
                SARZANA,
                vec![question(Scale::Likert5, 0.0)],
                0,
                "",
            ))
            .await
            .expect_err("importance 0");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_SURVEY",
            Some("survey.questions[0].importance"),
            t.label,
        );
        let err = f
            .api
            .create_survey(create_survey(
                SARZANA,
                vec![question(Scale::Unspecified, 1.0)],
                0,
                "",
            ))
            .await
            .expect_err("no scale");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_SURVEY",
            Some("survey.questions[0].scale"),
            t.label,
        );
        let mut email = create_survey(SARZANA, vec![question(Scale::Likert5, 1.0)], 0, "");
        if let Some(s) = email.get_mut().survey.as_mut() {
            s.channel = Channel::Email.into();
        }
        let err = f
            .api
            .create_survey(email)
            .await
            .expect_err("e-mail is no survey channel");
        assert_error(
            &err,
            Code::InvalidArgument,
            "INVALID_SURVEY",
            Some("survey.channel"),
            t.label,
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_surveys").await,
            1,
            "{}",
            t.label
        );

        // The survey reads back as defined; the key k1 was never taken.
        let got = f
            .api
            .get_survey(routed(
                SARZANA,
                pb::GetSurveyRequest {
                    name: survey.name.clone(),
                },
            ))
            .await
            .expect("gets")
            .into_inner();
        assert_eq!(got, survey, "{}", t.label);
        let ok = f
            .api
            .create_survey_response(answer(&survey.name, &[1, 0], "k1"))
            .await
            .expect("a valid response with the same key")
            .into_inner();
        assert!(
            ok.name.starts_with(&format!("{}/responses/", survey.name)),
            "{}",
            t.label
        );
        assert_eq!(ok.answers, vec![1, 0]);
    }
}

/// AIP-4222: the routing header must name the comune of the body, and a node acts only for
/// the comuni it serves; neither refusal writes anything.
#[tokio::test]
async fn calls_for_another_or_an_unserved_comune_are_refused() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let mut request = create_survey(SARZANA, vec![question(Scale::Likert5, 1.0)], 0, "");
        request.metadata_mut().insert(
            ROUTING_HEADER,
            "comune=comuni%2F011002".parse().expect("ascii"),
        );
        let err = f.api.create_survey(request).await.expect_err("mismatch");
        assert_error(
            &err,
            Code::FailedPrecondition,
            "ROUTING_MISMATCH",
            Some("parent"),
            t.label,
        );
        let err = f
            .api
            .create_survey(create_survey(
                LUNI,
                vec![question(Scale::Likert5, 1.0)],
                0,
                "",
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
        let err = f
            .api
            .create_survey_response(answer(&format!("comuni/{LUNI}/surveys/x"), &[5], ""))
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
            .get_survey(Request::new(pb::GetSurveyRequest {
                name: format!("comuni/{SARZANA}/surveys/x"),
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
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_surveys").await,
            0,
            "{}",
            t.label
        );
    }
}

/// DOMAIN.md "Idempotency keys" (AIP-155): a retry under the same request_id replays the first
/// response and stores nothing new; the same key with another body is refused.
#[tokio::test]
async fn idempotent_retries_replay_and_reused_keys_are_refused() {
    for t in testing::all().await {
        let f = fixture(&t).await;
        let questions = vec![question(Scale::Likert5, 1.0)];
        let first = f
            .api
            .create_survey(create_survey(SARZANA, questions.clone(), 0, "s-1"))
            .await
            .expect("creates")
            .into_inner();
        f.at("2026-03-02 10:00");
        let mut retry = create_survey(SARZANA, questions.clone(), 0, "s-1");
        if let Some(s) = retry.get_mut().survey.as_mut() {
            // Output-only fields a client echoes back do not make it another request.
            s.survey_id = "echoed".to_owned();
        }
        let again = f
            .api
            .create_survey(retry)
            .await
            .expect("replays")
            .into_inner();
        assert_eq!(again, first, "{}", t.label);
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_surveys").await,
            1,
            "{}",
            t.label
        );
        let err = f
            .api
            .create_survey(create_survey(SARZANA, questions, 5, "s-1"))
            .await
            .expect_err("same key, another body");
        assert_error(
            &err,
            Code::AlreadyExists,
            "IDEMPOTENCY_KEY_REUSED",
            Some("request_id"),
            t.label,
        );

        let response = f
            .api
            .create_survey_response(answer(&first.name, &[4], "r-1"))
            .await
            .expect("records")
            .into_inner();
        let replayed = f
            .api
            .create_survey_response(answer(&first.name, &[4], "r-1"))
            .await
            .expect("replays")
            .into_inner();
        assert_eq!(replayed, response, "{}", t.label);
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM quality_survey_responses").await,
            1,
            "{}",
            t.label
        );
        let err = f
            .api
            .create_survey_response(answer(&first.name, &[2], "r-1"))
            .await
            .expect_err("same key, another answer");
        assert_error(
            &err,
            Code::AlreadyExists,
            "IDEMPOTENCY_KEY_REUSED",
            Some("request_id"),
            t.label,
        );
    }
}

/// Issue 8: a citizen reads a survey's questions and answers it (anonymously: nothing about
/// them is stored with the answers); creating surveys and computing results are the office's.
#[tokio::test]
async fn a_citizen_answers_a_survey_but_does_not_run_one() {
    const ROSSI: &str = "RSSMRA80A01I449Q";
    for t in testing::all().await {
        let l = t.label;
        let f = fixture(&t).await;
        let err = f
            .api
            .create_survey(by_citizen(
                ROSSI,
                create_survey(SARZANA, vec![question(Scale::Likert5, 1.0)], 2, ""),
            ))
            .await
            .expect_err("a citizen does not create surveys");
        assert_eq!(
            (err.code(), reason_and_field(&err).0),
            (Code::PermissionDenied, "ROLE_NOT_ALLOWED".to_owned()),
            "{l}"
        );
        let survey = f
            .api
            .create_survey(create_survey(
                SARZANA,
                vec![question(Scale::Likert5, 1.0)],
                2,
                "",
            ))
            .await
            .expect("the office creates it")
            .into_inner();
        let read = f
            .api
            .get_survey(by_citizen(
                ROSSI,
                routed(
                    SARZANA,
                    pb::GetSurveyRequest {
                        name: survey.name.clone(),
                    },
                ),
            ))
            .await
            .expect("a citizen reads the questions")
            .into_inner();
        assert_eq!(read.questions.len(), 1, "{l}");
        let listed = f
            .api
            .list_surveys(by_citizen(
                ROSSI,
                routed(
                    SARZANA,
                    pb::ListSurveysRequest {
                        parent: format!("comuni/{SARZANA}"),
                        page_size: 0,
                        page_token: String::new(),
                    },
                ),
            ))
            .await
            .expect("a citizen finds the surveys")
            .into_inner();
        assert_eq!(listed.surveys, vec![read.clone()], "{l}");
        f.api
            .create_survey_response(by_citizen(ROSSI, answer(&survey.name, &[5], "")))
            .await
            .expect("a citizen answers");
        let responses: Vec<String> = sqlx::query_scalar(
            "SELECT response_id FROM quality_survey_responses WHERE survey_id = $1",
        )
        .bind(survey.survey_id.as_str())
        .fetch_all(t.db.pool())
        .await
        .expect("reads");
        assert_eq!(responses.len(), 1, "{l}: one anonymous response");
    }
}
