//! The gRPC handlers of `unione.quality.v1.SurveyService`.

use tonic::{Request, Response};
use tracing::{Span, field};
use unione_kit::idempotency;
use unione_kit::names::parse_name;
use unione_kit::storage::timestamp;
use unione_kit::{ApiError, Database, Istat, Served, pagination, principal};
use unione_proto::quality::v1 as pb;
use unione_proto::quality::v1::survey_service_server::SurveyService;

use super::{COMUNE, Clock, channel_from_pb, channel_to_pb, date_to_pb, period_from_pb};
use crate::domain::calendar::rome_range_micros;
use crate::domain::surveys::{Estimate, Results, Scale, Survey, SurveyError};
use crate::storage::surveys::{self as storage, StoredSurvey, SurveyPageKey};

/// `comuni/{istat}/surveys/{survey_id}`.
const SURVEY: &[&str] = &["comuni", "*", "surveys", "*"];

/// Every rule the survey domain refuses is invalid input, on the field it names.
impl From<SurveyError> for ApiError {
    fn from(err: SurveyError) -> Self {
        ApiError::invalid(err.field(), err.reason(), err.to_string())
    }
}

/// The survey service of one node, for the comuni it serves.
#[derive(Debug, Clone)]
pub struct SurveyApi {
    db: Database,
    served: Served,
    clock: Clock,
}

impl SurveyApi {
    /// The handlers over a migrated database (see [`crate::migrations`]) for `served`.
    pub fn new(db: Database, served: Served) -> Self {
        Self::with_clock(db, served, Clock::system())
    }

    /// The handlers, reading the time from `clock`.
    pub fn with_clock(db: Database, served: Served, clock: Clock) -> Self {
        Self { db, served, clock }
    }

    async fn find_survey(
        &self,
        istat: &Istat,
        survey_id: &str,
        field: &str,
        name: &str,
    ) -> Result<StoredSurvey, ApiError> {
        storage::get_survey(&self.db, istat, survey_id)
            .await?
            .ok_or_else(|| ApiError::not_found(field, name))
    }

    #[tracing::instrument(name = "CreateSurvey", skip_all, fields(comune = field::Empty))]
    async fn create_survey_inner(
        &self,
        request: Request<pb::CreateSurveyRequest>,
    ) -> Result<pb::Survey, ApiError> {
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let given = req
            .survey
            .as_ref()
            .ok_or_else(|| ApiError::required("survey"))?;
        let survey = Survey::new(
            &given.title,
            channel_from_pb(given.channel),
            given
                .questions
                .iter()
                .map(|q| (q.text.clone(), scale_from_pb(q.scale), q.importance))
                .collect(),
            given.min_sample_size,
        )?;

        let mut asked = req.clone();
        asked.request_id.clear();
        if let Some(s) = asked.survey.as_mut() {
            s.name.clear();
            s.survey_id.clear();
            s.create_time = None;
        }
        let fingerprint = idempotency::fingerprint(&asked);
        let scope = format!("quality/{}/CreateSurvey", istat.resource_name());
        let db = &self.db;
        let istat = &istat;
        let survey = &survey;
        let now = self.clock.now();
        idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let survey_id = uuid::Uuid::now_v7().simple().to_string();
                let mut tx = db.begin_write().await?;
                storage::insert_survey(&mut tx, istat, &survey_id, survey, now).await?;
                let response = survey_to_pb(
                    istat,
                    &StoredSurvey {
                        survey_id,
                        survey: survey.clone(),
                        create_time: now,
                    },
                );
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok(response)
            },
        )
        .await
    }

    #[tracing::instrument(name = "GetSurvey", skip_all, fields(comune = field::Empty, survey = field::Empty))]
    async fn get_survey_inner(
        &self,
        request: Request<pb::GetSurveyRequest>,
    ) -> Result<pb::Survey, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, SURVEY)?;
        Span::current()
            .record("comune", istat.as_str())
            .record("survey", vars[0]);
        self.served.check(&metadata, &istat, "name")?;
        let stored = self.find_survey(&istat, vars[0], "name", &req.name).await?;
        Ok(survey_to_pb(&istat, &stored))
    }

    #[tracing::instrument(name = "ListSurveys", skip_all, fields(comune = field::Empty))]
    async fn list_surveys_inner(
        &self,
        request: Request<pb::ListSurveysRequest>,
    ) -> Result<pb::ListSurveysResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, _) = parse_name("parent", &req.parent, COMUNE)?;
        Span::current().record("comune", istat.as_str());
        self.served.check(&metadata, &istat, "parent")?;
        let size = pagination::page_size(req.page_size)?;
        let scope = format!("ListSurveys/{}", req.parent);
        let after: Option<SurveyPageKey> = pagination::decode_token(&scope, &req.page_token)?;
        let mut rows = storage::list_surveys(&self.db, &istat, after.as_ref(), size + 1).await?;
        let next_page_token = pagination::finish_page(&mut rows, size, &scope, |s| {
            (s.create_time, s.survey_id.clone())
        });
        Ok(pb::ListSurveysResponse {
            surveys: rows.iter().map(|s| survey_to_pb(&istat, s)).collect(),
            next_page_token,
        })
    }

    #[tracing::instrument(
        name = "CreateSurveyResponse",
        skip_all,
        fields(comune = field::Empty, survey = field::Empty)
    )]
    async fn create_response_inner(
        &self,
        request: Request<pb::CreateSurveyResponseRequest>,
    ) -> Result<pb::SurveyResponse, ApiError> {
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("parent", &req.parent, SURVEY)?;
        let survey_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("survey", survey_id);
        self.served.check(&metadata, &istat, "parent")?;
        let given = req
            .response
            .as_ref()
            .ok_or_else(|| ApiError::required("response"))?;
        let stored = self
            .find_survey(&istat, survey_id, "parent", &req.parent)
            .await?;
        stored.survey.check_answers(&given.answers)?;

        let mut asked = req.clone();
        asked.request_id.clear();
        if let Some(r) = asked.response.as_mut() {
            r.name.clear();
            r.submit_time = None;
        }
        let fingerprint = idempotency::fingerprint(&asked);
        let scope = format!("quality/{}/CreateSurveyResponse", istat.resource_name());
        let db = &self.db;
        let parent = &req.parent;
        let istat = &istat;
        let answers = &given.answers;
        let now = self.clock.now();
        idempotency::run(
            db,
            &scope,
            &req.request_id,
            &fingerprint,
            |ticket| async move {
                let response_id = uuid::Uuid::now_v7().simple().to_string();
                let mut tx = db.begin_write().await?;
                storage::insert_response(&mut tx, istat, survey_id, &response_id, answers, now)
                    .await?;
                let response = pb::SurveyResponse {
                    name: format!("{parent}/responses/{response_id}"),
                    answers: answers.clone(),
                    submit_time: Some(timestamp(now)),
                };
                ticket.complete(&mut tx, &response).await?;
                tx.commit().await?;
                Ok(response)
            },
        )
        .await
    }

    #[tracing::instrument(
        name = "ComputeSurveyResults",
        skip_all,
        fields(comune = field::Empty, survey = field::Empty)
    )]
    async fn compute_results_inner(
        &self,
        request: Request<pb::ComputeSurveyResultsRequest>,
    ) -> Result<pb::SurveyResults, ApiError> {
        principal::refuse_citizen(principal::principal(&request))?;
        let (metadata, _, req) = request.into_parts();
        let (istat, vars) = parse_name("name", &req.name, SURVEY)?;
        let survey_id = vars[0];
        Span::current()
            .record("comune", istat.as_str())
            .record("survey", survey_id);
        self.served.check(&metadata, &istat, "name")?;
        let (start, end) = period_from_pb(req.start_date.as_ref(), req.end_date.as_ref())?;
        let stored = self
            .find_survey(&istat, survey_id, "name", &req.name)
            .await?;
        let (from, until) = rome_range_micros(start, end);
        let responses =
            storage::responses_between(&self.db, &istat, survey_id, from, until).await?;
        let mut out = pb::SurveyResults {
            survey: req.name.clone(),
            start_date: Some(date_to_pb(start)),
            end_date: Some(date_to_pb(end)),
            min_sample_size: stored.survey.min_sample_size,
            ..Default::default()
        };
        fill_results(&mut out, stored.survey.results(&responses));
        Ok(out)
    }
}

/// Sets the counts and estimates of `results` on their wire form.
pub(crate) fn fill_results(out: &mut pb::SurveyResults, results: Results) {
    match results {
        Results::Suppressed { response_count } => {
            out.response_count = response_count;
            out.suppressed = true;
        }
        Results::Published(p) => {
            out.response_count = p.response_count;
            out.satisfaction_index = p.satisfaction_index.map(estimate_to_pb);
            out.net_promoter_score = p.net_promoter_score.map(estimate_to_pb);
            if let Some(shares) = p.shares {
                out.green_share = Some(estimate_to_pb(shares.green));
                out.yellow_share = Some(estimate_to_pb(shares.yellow));
                out.red_share = Some(estimate_to_pb(shares.red));
            }
        }
    }
}

#[tonic::async_trait]
impl SurveyService for SurveyApi {
    async fn list_surveys(
        &self,
        request: Request<pb::ListSurveysRequest>,
    ) -> Result<Response<pb::ListSurveysResponse>, tonic::Status> {
        Ok(Response::new(self.list_surveys_inner(request).await?))
    }

    async fn create_survey(
        &self,
        request: Request<pb::CreateSurveyRequest>,
    ) -> Result<Response<pb::Survey>, tonic::Status> {
        Ok(Response::new(self.create_survey_inner(request).await?))
    }

    async fn get_survey(
        &self,
        request: Request<pb::GetSurveyRequest>,
    ) -> Result<Response<pb::Survey>, tonic::Status> {
        Ok(Response::new(self.get_survey_inner(request).await?))
    }

    async fn create_survey_response(
        &self,
        request: Request<pb::CreateSurveyResponseRequest>,
    ) -> Result<Response<pb::SurveyResponse>, tonic::Status> {
        Ok(Response::new(self.create_response_inner(request).await?))
    }

    async fn compute_survey_results(
        &self,
        request: Request<pb::ComputeSurveyResultsRequest>,
    ) -> Result<Response<pb::SurveyResults>, tonic::Status> {
        Ok(Response::new(self.compute_results_inner(request).await?))
    }
}

fn scale_from_pb(code: i32) -> Option<Scale> {
    use pb::question::Scale as S;
    match S::try_from(code).ok()? {
        S::Unspecified => None,
        S::Likert5 => Some(Scale::Likert5),
        S::Nps010 => Some(Scale::Nps0To10),
    }
}

fn scale_to_pb(scale: Scale) -> i32 {
    use pb::question::Scale as S;
    match scale {
        Scale::Likert5 => S::Likert5,
        Scale::Nps0To10 => S::Nps010,
    }
    .into()
}

fn estimate_to_pb(e: Estimate) -> pb::Estimate {
    pb::Estimate {
        value: e.value,
        ci_low: e.ci_low,
        ci_high: e.ci_high,
        count: e.count,
    }
}

/// The wire form of a stored survey of `istat`.
fn survey_to_pb(istat: &Istat, stored: &StoredSurvey) -> pb::Survey {
    let s = &stored.survey;
    pb::Survey {
        name: format!("{}/surveys/{}", istat.resource_name(), stored.survey_id),
        survey_id: stored.survey_id.clone(),
        title: s.title.clone(),
        channel: channel_to_pb(s.channel),
        questions: s
            .questions
            .iter()
            .map(|q| pb::Question {
                text: q.text.clone(),
                scale: scale_to_pb(q.scale),
                importance: q.importance,
            })
            .collect(),
        min_sample_size: s.min_sample_size,
        create_time: Some(timestamp(stored.create_time)),
    }
}
