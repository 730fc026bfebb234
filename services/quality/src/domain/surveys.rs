//! Satisfaction surveys (DOMAIN.md "Quality and benchmarks"): what a survey and an anonymous
//! response may carry, and the results of a set of responses: the customer satisfaction index,
//! the Net Promoter Score and the "Mettiamoci la faccia" shares, each with a 95% confidence
//! interval, and nothing at all below the survey's minimum sample size.

use std::fmt;
use std::ops::RangeInclusive;

use super::Channel;

/// The answers a question takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scale {
    /// Likert 1 (very dissatisfied) to 5 (very satisfied): the satisfaction index and the
    /// "Mettiamoci la faccia" shares.
    Likert5,
    /// 0 to 10, "would you recommend": the Net Promoter Score.
    Nps0To10,
}

codes!(Scale { Likert5 => "LIKERT_5", Nps0To10 => "NPS_0_10" });

impl Scale {
    /// The answers on this scale.
    pub fn range(self) -> RangeInclusive<i32> {
        match self {
            Self::Likert5 => 1..=5,
            Self::Nps0To10 => 0..=10,
        }
    }
}

/// The "Mettiamoci la faccia" emoticon of a Likert answer: 4 and 5 green (satisfied), 3 yellow
/// (neutral), 1 and 2 red (dissatisfied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Face {
    /// Likert 4-5.
    Green,
    /// Likert 3.
    Yellow,
    /// Likert 1-2.
    Red,
}

impl Face {
    /// The face of a Likert answer (1 to 5).
    pub fn of_likert(answer: i32) -> Self {
        match answer {
            4.. => Self::Green,
            3 => Self::Yellow,
            _ => Self::Red,
        }
    }
}

/// One question of a survey.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// The text.
    pub text: String,
    /// The scale of its answers.
    pub scale: Scale,
    /// Its weight in the satisfaction index, finite and above 0.
    pub importance: f64,
}

/// A survey's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Survey {
    /// Title.
    pub title: String,
    /// Where it is offered: counter, phone, web or kiosk.
    pub channel: Channel,
    /// The questions, in order.
    pub questions: Vec<Question>,
    /// Below this many responses in a period, nothing is published.
    pub min_sample_size: i32,
}

/// The minimum sample size when the survey does not set one.
pub const DEFAULT_MIN_SAMPLE_SIZE: i32 = 30;
/// The smallest minimum sample size: a standard error needs two responses.
pub const SMALLEST_MIN_SAMPLE_SIZE: i32 = 2;
/// The most questions a survey may have.
pub const MAX_QUESTIONS: usize = 50;
/// The longest title or question text, in characters.
pub const MAX_TEXT_CHARS: usize = 500;

/// The two-sided 95% quantile of the standard normal distribution.
pub const Z_95: f64 = 1.959_963_984_540_053_6;

/// What a survey request may get wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SurveyError {
    /// A survey field that breaks a rule; `field` is relative to the survey.
    #[error("invalid survey {field}: {why}")]
    InvalidSurvey {
        /// The field, e.g. `questions[2].importance`.
        field: String,
        /// Why.
        why: String,
    },
    /// Not one answer per question.
    #[error("the survey has {expected} questions but the response gives {given} answers")]
    AnswerCount {
        /// Questions.
        expected: usize,
        /// Answers.
        given: usize,
    },
    /// An answer outside its question's scale.
    #[error("answer {index} is {value}, outside its question's scale {min} to {max}")]
    AnswerOutOfScale {
        /// Position of the answer.
        index: usize,
        /// The answer.
        value: i32,
        /// Lowest on the scale.
        min: i32,
        /// Highest on the scale.
        max: i32,
    },
}

impl SurveyError {
    /// The stable UPPER_SNAKE reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidSurvey { .. } => "INVALID_SURVEY",
            Self::AnswerCount { .. } => "ANSWER_COUNT_MISMATCH",
            Self::AnswerOutOfScale { .. } => "ANSWER_OUT_OF_SCALE",
        }
    }

    /// The request field at fault, as a path.
    pub fn field(&self) -> String {
        match self {
            Self::InvalidSurvey { field, .. } => format!("survey.{field}"),
            Self::AnswerCount { .. } => "response.answers".into(),
            Self::AnswerOutOfScale { index, .. } => format!("response.answers[{index}]"),
        }
    }
}

fn invalid(field: impl Into<String>, why: impl fmt::Display) -> SurveyError {
    SurveyError::InvalidSurvey {
        field: field.into(),
        why: why.to_string(),
    }
}

fn check_text(field: impl Into<String>, text: &str) -> Result<(), SurveyError> {
    if text.trim().is_empty() {
        return Err(invalid(field, "must be set"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid(
            field,
            format!("at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(())
}

impl Survey {
    /// Checks a survey as defined: a title; a channel among counter, phone, web and kiosk
    /// (`None` when not given); 1 to [`MAX_QUESTIONS`] questions, each with a text, a scale
    /// (`None` when not given) and an importance finite and above 0; a minimum sample size of
    /// 0 (meaning [`DEFAULT_MIN_SAMPLE_SIZE`]) or at least [`SMALLEST_MIN_SAMPLE_SIZE`].
    pub fn new(
        title: &str,
        channel: Option<Channel>,
        questions: Vec<(String, Option<Scale>, f64)>,
        min_sample_size: i32,
    ) -> Result<Self, SurveyError> {
        check_text("title", title)?;
        let channel = match channel {
            Some(c @ (Channel::Counter | Channel::Phone | Channel::Web | Channel::Kiosk)) => c,
            Some(Channel::Email) | None => {
                return Err(invalid("channel", "one of counter, phone, web and kiosk"));
            }
        };
        if questions.is_empty() || questions.len() > MAX_QUESTIONS {
            return Err(invalid(
                "questions",
                format!("1 to {MAX_QUESTIONS} questions"),
            ));
        }
        let questions = questions
            .into_iter()
            .enumerate()
            .map(|(i, (text, scale, importance))| {
                check_text(format!("questions[{i}].text"), &text)?;
                let scale = scale.ok_or_else(|| {
                    invalid(format!("questions[{i}].scale"), "Likert 1-5 or 0-10")
                })?;
                if !importance.is_finite() || importance <= 0.0 {
                    return Err(invalid(
                        format!("questions[{i}].importance"),
                        "must be finite and above 0",
                    ));
                }
                Ok(Question {
                    text,
                    scale,
                    importance,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let min_sample_size = match min_sample_size {
            0 => DEFAULT_MIN_SAMPLE_SIZE,
            n if n >= SMALLEST_MIN_SAMPLE_SIZE => n,
            _ => {
                return Err(invalid(
                    "min_sample_size",
                    format!(
                        "0 (meaning {DEFAULT_MIN_SAMPLE_SIZE}) or at least {SMALLEST_MIN_SAMPLE_SIZE}"
                    ),
                ));
            }
        };
        Ok(Self {
            title: title.to_owned(),
            channel,
            questions,
            min_sample_size,
        })
    }

    /// Checks a response: exactly one answer per question, each on its question's scale.
    pub fn check_answers(&self, answers: &[i32]) -> Result<(), SurveyError> {
        if answers.len() != self.questions.len() {
            return Err(SurveyError::AnswerCount {
                expected: self.questions.len(),
                given: answers.len(),
            });
        }
        for (index, (&value, question)) in answers.iter().zip(&self.questions).enumerate() {
            let range = question.scale.range();
            if !range.contains(&value) {
                return Err(SurveyError::AnswerOutOfScale {
                    index,
                    value,
                    min: *range.start(),
                    max: *range.end(),
                });
            }
        }
        Ok(())
    }

    /// The results of `responses` (each checked with [`Survey::check_answers`]; any other is
    /// skipped): suppressed below the minimum sample size, else every estimate the questions
    /// allow.
    pub fn results(&self, responses: &[Vec<i32>]) -> Results {
        let responses: Vec<&Vec<i32>> = responses
            .iter()
            .filter(|r| self.check_answers(r).is_ok())
            .collect();
        let count = i64::try_from(responses.len()).unwrap_or(i64::MAX);
        if count < i64::from(self.min_sample_size) {
            return Results::Suppressed {
                response_count: count,
            };
        }
        let likert: Vec<(usize, f64)> = self
            .questions
            .iter()
            .enumerate()
            .filter(|(_, q)| q.scale == Scale::Likert5)
            .map(|(i, q)| (i, q.importance))
            .collect();
        let total_weight: f64 = likert.iter().map(|(_, w)| w).sum();

        // The index of each response: its importance-weighted mean Likert score, each answer
        // rescaled (x - 1) / 4 * 100.
        let per_response: Vec<f64> = responses
            .iter()
            .map(|r| {
                likert
                    .iter()
                    .map(|&(i, w)| w * f64::from(r[i] - 1) / 4.0 * 100.0)
                    .sum::<f64>()
                    / total_weight
            })
            .collect();
        let satisfaction_index =
            (!likert.is_empty()).then(|| mean_interval(&per_response, 0.0, 100.0));

        // Net Promoter Score: each 0-10 answer is +1 (promoter, 9-10), 0 (passive, 7-8) or
        // -1 (detractor, 0-6); the score is 100 times their mean.
        let nps: Vec<f64> = responses
            .iter()
            .flat_map(|r| {
                self.questions
                    .iter()
                    .zip(r.iter())
                    .filter(|(q, _)| q.scale == Scale::Nps0To10)
                    .map(|(_, &a)| match a {
                        9.. => 1.0,
                        7 | 8 => 0.0,
                        _ => -1.0,
                    })
            })
            .collect();
        let net_promoter_score = (!nps.is_empty()).then(|| {
            let e = mean_interval(&nps, -1.0, 1.0);
            Estimate {
                value: e.value * 100.0,
                ci_low: e.ci_low * 100.0,
                ci_high: e.ci_high * 100.0,
                count: e.count,
            }
        });

        // "Mettiamoci la faccia": every Likert answer is one face.
        let faces: Vec<Face> = responses
            .iter()
            .flat_map(|r| likert.iter().map(|&(i, _)| Face::of_likert(r[i])))
            .collect();
        let share = |face: Face| {
            let hits = faces.iter().filter(|&&f| f == face).count();
            wilson(hits, faces.len())
        };
        let shares = (!faces.is_empty()).then(|| Shares {
            green: share(Face::Green),
            yellow: share(Face::Yellow),
            red: share(Face::Red),
        });
        Results::Published(Published {
            response_count: count,
            satisfaction_index,
            net_promoter_score,
            shares,
        })
    }
}

/// An estimate with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The value.
    pub value: f64,
    /// Lower bound of the interval.
    pub ci_low: f64,
    /// Upper bound of the interval.
    pub ci_high: f64,
    /// Observations behind the value.
    pub count: i64,
}

/// The three "Mettiamoci la faccia" shares, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shares {
    /// Likert 4-5.
    pub green: Estimate,
    /// Likert 3.
    pub yellow: Estimate,
    /// Likert 1-2.
    pub red: Estimate,
}

/// The results of a survey over a period.
#[derive(Debug, Clone, PartialEq)]
pub enum Results {
    /// Fewer responses than the minimum sample size: only their number is told.
    Suppressed {
        /// Responses in the period.
        response_count: i64,
    },
    /// Enough responses.
    Published(Published),
}

/// Published results.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// Responses in the period.
    pub response_count: i64,
    /// The satisfaction index, 0-100, when the survey has Likert questions.
    pub satisfaction_index: Option<Estimate>,
    /// The Net Promoter Score, -100 to 100, when the survey has 0-10 questions.
    pub net_promoter_score: Option<Estimate>,
    /// The shares, when the survey has Likert questions.
    pub shares: Option<Shares>,
}

/// The mean of `xs` (at least one) with the normal-approximation interval: plus or minus
/// [`Z_95`] standard errors (sample standard deviation over the square root of n), kept within
/// `lo..=hi`, the range of the variable.
fn mean_interval(xs: &[f64], lo: f64, hi: f64) -> Estimate {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let variance = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let half = Z_95 * (variance / n).sqrt();
    Estimate {
        value: mean,
        ci_low: (mean - half).max(lo),
        ci_high: (mean + half).min(hi),
        count: i64::try_from(xs.len()).unwrap_or(i64::MAX),
    }
}

/// The share `hits / n` (n at least one) in percent, with its Wilson score interval:
/// centre (p + z²/2n) / (1 + z²/n), half-width z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²).
fn wilson(hits: usize, n: usize) -> Estimate {
    let nf = n as f64;
    let p = hits as f64 / nf;
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denominator;
    let half = Z_95 / denominator * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    Estimate {
        value: p * 100.0,
        ci_low: ((centre - half) * 100.0).max(0.0),
        ci_high: ((centre + half) * 100.0).min(100.0),
        count: i64::try_from(n).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey(questions: &[(Scale, f64)], min: i32) -> Survey {
        Survey::new(
            "Sportello",
            Some(Channel::Counter),
            questions
                .iter()
                .map(|&(s, w)| ("Q".to_owned(), Some(s), w))
                .collect(),
            min,
        )
        .expect("a valid survey")
    }

    /// DOMAIN.md "Mettiamoci la faccia": Likert 4-5 green, 3 yellow, 1-2 red.
    #[test]
    fn faces_of_likert_answers() {
        let faces: Vec<Face> = (1..=5).map(Face::of_likert).collect();
        use Face::*;
        assert_eq!(faces, vec![Red, Red, Yellow, Green, Green]);
    }

    /// Surveys need a title, a survey channel, 1-50 questions with a scale and a positive
    /// importance, and a minimum sample of at least 2 (0 meaning 30).
    #[test]
    fn surveys_are_checked() {
        let q = |s, w| ("Q".to_owned(), s, w);
        let ok = Survey::new(
            "T",
            Some(Channel::Web),
            vec![q(Some(Scale::Likert5), 1.0)],
            0,
        )
        .expect("valid");
        assert_eq!(ok.min_sample_size, DEFAULT_MIN_SAMPLE_SIZE);
        let cases: Vec<(Survey2, &str)> = vec![
            (
                (
                    " ",
                    Some(Channel::Web),
                    vec![q(Some(Scale::Likert5), 1.0)],
                    0,
                ),
                "survey.title",
            ),
            (
                (
                    "T",
                    Some(Channel::Email),
                    vec![q(Some(Scale::Likert5), 1.0)],
                    0,
                ),
                "survey.channel",
            ),
            (
                ("T", None, vec![q(Some(Scale::Likert5), 1.0)], 0),
                "survey.channel",
            ),
            (("T", Some(Channel::Web), vec![], 0), "survey.questions"),
            (
                (
                    "T",
                    Some(Channel::Web),
                    vec![q(Some(Scale::Likert5), 1.0), q(None, 1.0)],
                    0,
                ),
                "survey.questions[1].scale",
            ),
            (
                (
                    "T",
                    Some(Channel::Web),
                    vec![q(Some(Scale::Likert5), 0.0)],
                    0,
                ),
                "survey.questions[0].importance",
            ),
            (
                (
                    "T",
                    Some(Channel::Web),
                    vec![q(Some(Scale::Likert5), f64::NAN)],
                    0,
                ),
                "survey.questions[0].importance",
            ),
            (
                (
                    "T",
                    Some(Channel::Web),
                    vec![q(Some(Scale::Likert5), 1.0)],
                    1,
                ),
                "survey.min_sample_size",
            ),
        ];
        for ((title, channel, questions, min), field) in cases {
            let err = Survey::new(title, channel, questions, min).expect_err(field);
            assert_eq!(
                (err.reason(), err.field().as_str()),
                ("INVALID_SURVEY", field)
            );
        }
    }

    type Survey2 = (
        &'static str,
        Option<Channel>,
        Vec<(String, Option<Scale>, f64)>,
        i32,
    );

    /// One answer per question, each on its scale (Likert 1-5, NPS 0-10).
    #[test]
    fn answers_must_be_on_their_scale() {
        let s = survey(&[(Scale::Likert5, 1.0), (Scale::Nps0To10, 1.0)], 2);
        assert!(s.check_answers(&[1, 0]).is_ok());
        assert!(s.check_answers(&[5, 10]).is_ok());
        let err = s.check_answers(&[0, 5]).expect_err("Likert 0");
        assert_eq!(
            (err.reason(), err.field().as_str()),
            ("ANSWER_OUT_OF_SCALE", "response.answers[0]")
        );
        let err = s.check_answers(&[3, 11]).expect_err("NPS 11");
        assert_eq!(err.field(), "response.answers[1]");
        let err = s.check_answers(&[3]).expect_err("one short");
        assert_eq!(
            (err.reason(), err.field().as_str()),
            ("ANSWER_COUNT_MISMATCH", "response.answers")
        );
    }

    /// A single-question NPS survey with one answer per class: 2 promoters, 1 passive, 1
    /// detractor of 4 gives NPS (2 - 1) / 4 * 100 = 25.
    #[test]
    fn nps_is_promoters_minus_detractors() {
        let s = survey(&[(Scale::Nps0To10, 1.0)], 2);
        let Results::Published(p) = s.results(&[vec![10], vec![9], vec![7], vec![6]]) else {
            panic!("4 responses reach a minimum of 2")
        };
        let nps = p.net_promoter_score.expect("an NPS question");
        assert!((nps.value - 25.0).abs() < 1e-12);
        assert!(p.satisfaction_index.is_none() && p.shares.is_none());
    }
}
