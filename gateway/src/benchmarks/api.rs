//! `unione.federation.v1.BenchmarkService`: comparisons served from the snapshot and the
//! directory in force, never from a node, so a comparison answers at once whatever the state
//! of the members. The gateway's [`crate::policy`] table decides who may call.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Months;
use tonic::{Request, Response, Status};
use unione_kit::ApiError;
use unione_kit::names::parse_name;
use unione_kit::pagination;
use unione_kit::storage::{now_micros, timestamp};
use unione_proto::federation::v1 as pb;
use unione_proto::federation::v1::benchmark_group::Selector;
use unione_proto::federation::v1::benchmark_service_server::BenchmarkService;
use unione_proto::quality::v1::kpi as pbkpi;
use unione_quality::domain::review::compared_value;
use unione_quality::domain::{
    Kpi, Normalisation, Period, PeriodKind, Polarity, STANDARD_KPIS, Status as MeasurementStatus,
    current_period, standard_kpi,
};

use super::compare::{Band, Placing, Ranking};
use super::snapshot::{MemberData, Snapshot};
use crate::directory::{Function, MemberEntry};
use crate::live::DirectoryHandle;

/// Most members named in a group.
const MAX_CHOSEN: usize = 10_000;
/// Most comuni in a time series.
const MAX_SERIES: usize = 100;
/// Most periods in a time series.
const MAX_PERIODS: usize = 240;

/// The BenchmarkService implementation.
pub struct BenchmarkApi {
    directory: DirectoryHandle,
    snapshot: Arc<Snapshot>,
    max_age: Duration,
}

impl BenchmarkApi {
    /// Serves `snapshot` for the members of `directory`; data read longer than `max_age` ago is
    /// not shown.
    pub fn new(directory: DirectoryHandle, snapshot: Arc<Snapshot>, max_age: Duration) -> Self {
        Self {
            directory,
            snapshot,
            max_age,
        }
    }
}

/// What a member shows for one KPI and period.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A value.
    Value {
        /// As measured.
        raw: f64,
        /// As compared.
        normalised: f64,
        /// Its revision.
        revision: i64,
    },
    /// No value, with the reason and more detail.
    Missing(pb::MissingReason, String),
}

/// What a member shows for `kpi` in `period`: `provided` says whether a node provides its
/// quality function, `data` what the snapshot holds, `fresh_since` the oldest read still shown.
pub fn outcome(
    kpi: &Kpi,
    period: &str,
    member: &MemberEntry,
    provided: bool,
    data: Option<&MemberData>,
    fresh_since: i64,
) -> Outcome {
    use pb::MissingReason as M;
    if !provided {
        return Outcome::Missing(M::FunctionNotProvided, String::new());
    }
    let Some(data) = data.filter(|d| d.read_at > 0) else {
        return match data.filter(|d| d.failed_at > 0) {
            Some(d) => Outcome::Missing(M::Unreachable, d.failure.clone()),
            None => Outcome::Missing(M::NotCollected, String::new()),
        };
    };
    if data.read_at < fresh_since {
        let detail = if data.failing() {
            data.failure.clone()
        } else {
            "the member's data is older than the gateway may show".to_owned()
        };
        return Outcome::Missing(M::Unreachable, detail);
    }
    let Some(published) = data.get(&kpi.id, period) else {
        return Outcome::Missing(M::NotReported, String::new());
    };
    match (published.status, published.value) {
        (MeasurementStatus::Ok, Some(raw)) => match compared_value(kpi, raw, member.population) {
            Some(normalised) => Outcome::Value {
                raw,
                normalised,
                revision: published.revision,
            },
            None => Outcome::Missing(M::PopulationUnknown, String::new()),
        },
        (MeasurementStatus::NotApplicable, _) => Outcome::Missing(M::NotApplicable, String::new()),
        (MeasurementStatus::Confidential, _) => Outcome::Missing(M::Confidential, String::new()),
        _ => Outcome::Missing(M::NotReported, String::new()),
    }
}

fn kpi_proto(kpi: &Kpi) -> pb::BenchmarkKpi {
    pb::BenchmarkKpi {
        kpi_id: kpi.id.to_string(),
        title: kpi.title.to_string(),
        definition: kpi.definition.to_string(),
        unit: kpi.unit.to_string(),
        polarity: match kpi.polarity {
            Polarity::HigherIsBetter => pbkpi::Polarity::HigherIsBetter,
            Polarity::LowerIsBetter => pbkpi::Polarity::LowerIsBetter,
        }
        .into(),
        normalisation: match kpi.normalisation {
            Normalisation::None => pbkpi::Normalisation::None,
            Normalisation::Per1000Inhabitants => pbkpi::Normalisation::Per1000Inhabitants,
        }
        .into(),
        target: kpi.target,
        tolerance: kpi.tolerance,
        period: match kpi.period {
            PeriodKind::Month => pbkpi::Period::Month,
            PeriodKind::Quarter => pbkpi::Period::Quarter,
            PeriodKind::Year => pbkpi::Period::Year,
        }
        .into(),
    }
}

fn band_proto(band: Band) -> pb::Band {
    match band {
        Band::Green => pb::Band::Green,
        Band::Yellow => pb::Band::Yellow,
        Band::Red => pb::Band::Red,
        Band::Grey => pb::Band::Grey,
    }
}

/// A standard KPI by id, or NOT_FOUND on `kpi`.
fn find_kpi(id: &str) -> Result<&'static Kpi, ApiError> {
    if id.is_empty() {
        return Err(ApiError::required("kpi"));
    }
    standard_kpi(id).ok_or_else(|| ApiError::not_found("kpi", id))
}

fn parse_period(kpi: &Kpi, field: &str, text: &str) -> Result<Period, ApiError> {
    if text.is_empty() {
        return Err(ApiError::required(field));
    }
    Period::parse(kpi.period, text).map_err(|err| {
        ApiError::invalid(field, "INVALID_PERIOD", format!("{err} (KPI {})", kpi.id))
    })
}

/// The members of `group`, by ISTAT code, from `members` (sorted by ISTAT code).
fn select<'a>(
    members: &'a [MemberEntry],
    group: Option<&pb::BenchmarkGroup>,
) -> Result<Vec<&'a MemberEntry>, ApiError> {
    let selector = group
        .and_then(|g| g.selector.as_ref())
        .ok_or_else(|| ApiError::required("group"))?;
    let chosen: Vec<&MemberEntry> = match selector {
        Selector::Comuni(list) => {
            if list.comuni.is_empty() {
                return Err(ApiError::required("group.comuni"));
            }
            if list.comuni.len() > MAX_CHOSEN {
                return Err(ApiError::invalid(
                    "group.comuni",
                    "TOO_MANY_COMUNI",
                    format!("at most {MAX_CHOSEN} comuni"),
                ));
            }
            let mut seen = HashSet::new();
            let mut chosen = Vec::new();
            for name in &list.comuni {
                let member = find_member(members, "group.comuni", name)?;
                if seen.insert(member.istat.as_str()) {
                    chosen.push(member);
                }
            }
            chosen.sort_by(|a, b| a.istat.cmp(&b.istat));
            chosen
        }
        Selector::PeerGroup(peer) => {
            let chosen: Vec<_> = members.iter().filter(|m| &m.peer_group == peer).collect();
            if chosen.is_empty() {
                return Err(ApiError::not_found("group.peer_group", peer));
            }
            chosen
        }
        Selector::Province(province) => {
            let chosen: Vec<_> = members.iter().filter(|m| &m.province == province).collect();
            if chosen.is_empty() {
                return Err(ApiError::not_found("group.province", province));
            }
            chosen
        }
        Selector::PopulationBand(band) => {
            if band.min_population < 0
                || band.max_population < 0
                || (band.max_population > 0 && band.max_population < band.min_population)
            {
                return Err(ApiError::invalid(
                    "group.population_band",
                    "INVALID_POPULATION_BAND",
                    "min_population and max_population must not be negative, and max (when \
                     set) not below min",
                ));
            }
            members
                .iter()
                .filter(|m| {
                    m.population >= band.min_population
                        && (band.max_population == 0 || m.population <= band.max_population)
                })
                .collect()
        }
        Selector::Federation(every) => {
            if !every {
                return Err(ApiError::invalid(
                    "group.federation",
                    "INVALID_GROUP",
                    "group.federation must be true when chosen",
                ));
            }
            members.iter().collect()
        }
    };
    Ok(chosen)
}

/// A member named `comuni/{istat}`, or NOT_FOUND on `field`.
fn find_member<'a>(
    members: &'a [MemberEntry],
    field: &str,
    name: &str,
) -> Result<&'a MemberEntry, ApiError> {
    let (istat, _) = parse_name(field, name, &["comuni", "*"])?;
    members
        .binary_search_by(|m| m.istat.as_str().cmp(istat.as_str()))
        .map(|i| &members[i])
        .map_err(|_| ApiError::not_found(field, name))
}

/// Whether a node provides the quality function for `istat` (provisions sorted by comune, then
/// function).
fn quality_provided(provisions: &[crate::directory::Provision], istat: &str) -> bool {
    provisions
        .binary_search_by(|p| (p.comune.as_str(), p.function).cmp(&(istat, Function::Quality)))
        .is_ok()
}

impl BenchmarkApi {
    fn fresh_since(&self) -> i64 {
        now_micros().saturating_sub(i64::try_from(self.max_age.as_micros()).unwrap_or(i64::MAX))
    }

    /// CompareKpi.
    pub fn compare(&self, req: &pb::CompareKpiRequest) -> Result<pb::KpiComparison, ApiError> {
        let kpi = find_kpi(&req.kpi)?;
        let period = parse_period(kpi, "period", &req.period)?.to_string();
        let snapshot = self.directory.snapshot();
        let directory = &snapshot.directory;
        let group = select(&directory.members, req.group.as_ref())?;
        let highlight = if req.highlight_comune.is_empty() {
            None
        } else {
            Some(find_member(
                &directory.members,
                "highlight_comune",
                &req.highlight_comune,
            )?)
        };
        let outsider = highlight.filter(|h| {
            group
                .binary_search_by(|m| m.istat.as_str().cmp(h.istat.as_str()))
                .is_err()
        });
        let fresh_since = self.fresh_since();
        let assess = |members: &HashMap<String, Arc<MemberData>>, m: &MemberEntry| {
            let data = members.get(&m.istat).map(AsRef::as_ref);
            let read_at = data.map_or(0, |d| d.read_at);
            let provided = quality_provided(&directory.provisions, &m.istat);
            (
                outcome(kpi, &period, m, provided, data, fresh_since),
                read_at,
            )
        };
        let (assessed, extra) = self.snapshot.with_members(|members| {
            let assessed: Vec<_> = group.iter().map(|m| assess(members, m)).collect();
            (assessed, outsider.map(|m| assess(members, m)))
        });
        let ranking = Ranking::new(
            kpi.polarity,
            assessed.iter().filter_map(|(o, _)| match o {
                Outcome::Value { normalised, .. } => Some(*normalised),
                Outcome::Missing(..) => None,
            }),
        );
        let stats = ranking.statistics();
        let mut oldest: Option<i64> = None;
        let mut row = |m: &MemberEntry, (outcome, read_at): (Outcome, i64), in_group: bool| {
            if read_at > 0
                && !matches!(outcome, Outcome::Missing(pb::MissingReason::Unreachable, _))
            {
                oldest = Some(oldest.map_or(read_at, |o: i64| o.min(read_at)));
            }
            let mut row = pb::ComparisonRow {
                comune: format!("comuni/{}", m.istat),
                display_name: m.name.clone(),
                population: m.population,
                highlighted: highlight.is_some_and(|h| h.istat == m.istat),
                in_group,
                data_time: (read_at > 0).then(|| timestamp(read_at)),
                band: pb::Band::Grey.into(),
                ..pb::ComparisonRow::default()
            };
            match outcome {
                Outcome::Value {
                    raw,
                    normalised,
                    revision,
                } => {
                    let Placing { rank, band } = if in_group {
                        ranking.place(normalised)
                    } else {
                        ranking.place_outsider(normalised)
                    };
                    row.value = Some(raw);
                    row.normalised_value = Some(normalised);
                    row.rank = i32::try_from(rank).unwrap_or(i32::MAX);
                    row.band = band_proto(band).into();
                    row.revision = i32::try_from(revision).unwrap_or(i32::MAX);
                }
                Outcome::Missing(reason, detail) => {
                    row.missing_reason = reason.into();
                    row.missing_detail = detail;
                }
            }
            row
        };
        let mut rows: Vec<pb::ComparisonRow> = group
            .iter()
            .zip(assessed)
            .map(|(m, a)| row(m, a, true))
            .collect();
        if let (Some(m), Some(a)) = (outsider, extra) {
            rows.push(row(m, a, false));
        }
        // Members with a value by rank, then the others; ISTAT code within each.
        rows.sort_by(|a, b| {
            let key = |r: &pb::ComparisonRow| (r.rank == 0, r.rank);
            key(a).cmp(&key(b)).then_with(|| a.comune.cmp(&b.comune))
        });
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(pb::KpiComparison {
            kpi: Some(kpi_proto(kpi)),
            period,
            rows,
            statistics: Some(pb::GroupStatistics {
                member_count: count(group.len()),
                reported_count: count(stats.reported),
                median: stats.median,
                mean: stats.mean,
                best: stats.best,
                worst: stats.worst,
            }),
            snapshot_time: oldest.map(timestamp),
            directory_version: snapshot.version,
        })
    }

    /// GetKpiTimeSeries.
    pub fn time_series(
        &self,
        req: &pb::GetKpiTimeSeriesRequest,
    ) -> Result<pb::KpiTimeSeries, ApiError> {
        let kpi = find_kpi(&req.kpi)?;
        let from = parse_period(kpi, "from_period", &req.from_period)?;
        let to = parse_period(kpi, "to_period", &req.to_period)?;
        if to < from {
            return Err(ApiError::invalid(
                "to_period",
                "INVALID_PERIOD_RANGE",
                "to_period is before from_period",
            ));
        }
        let periods = periods_between(from, to);
        if periods.len() > MAX_PERIODS {
            return Err(ApiError::invalid(
                "to_period",
                "INVALID_PERIOD_RANGE",
                format!("at most {MAX_PERIODS} periods"),
            ));
        }
        if req.comuni.is_empty() {
            return Err(ApiError::required("comuni"));
        }
        if req.comuni.len() > MAX_SERIES {
            return Err(ApiError::invalid(
                "comuni",
                "TOO_MANY_COMUNI",
                format!("at most {MAX_SERIES} comuni"),
            ));
        }
        let snapshot = self.directory.snapshot();
        let directory = &snapshot.directory;
        let members = req
            .comuni
            .iter()
            .map(|name| find_member(&directory.members, "comuni", name))
            .collect::<Result<Vec<_>, _>>()?;
        let fresh_since = self.fresh_since();
        let series = members
            .into_iter()
            .map(|m| {
                let data = self.snapshot.member(&m.istat);
                let provided = quality_provided(&directory.provisions, &m.istat);
                let mut detail = String::new();
                let points = periods
                    .iter()
                    .map(|period| {
                        let mut point = pb::TimeSeriesPoint {
                            period: period.clone(),
                            ..pb::TimeSeriesPoint::default()
                        };
                        match outcome(kpi, period, m, provided, data.as_deref(), fresh_since) {
                            Outcome::Value {
                                raw, normalised, ..
                            } => {
                                point.value = Some(raw);
                                point.normalised_value = Some(normalised);
                            }
                            Outcome::Missing(reason, why) => {
                                point.missing_reason = reason.into();
                                if !why.is_empty() {
                                    detail = why;
                                }
                            }
                        }
                        point
                    })
                    .collect();
                pb::TimeSeries {
                    comune: format!("comuni/{}", m.istat),
                    display_name: m.name.clone(),
                    population: m.population,
                    points,
                    missing_detail: detail,
                    data_time: data
                        .as_ref()
                        .filter(|d| d.read_at > 0)
                        .map(|d| timestamp(d.read_at)),
                }
            })
            .collect();
        Ok(pb::KpiTimeSeries {
            kpi: Some(kpi_proto(kpi)),
            series,
        })
    }

    /// ListBenchmarkKpis.
    pub fn list_kpis(
        &self,
        req: &pb::ListBenchmarkKpisRequest,
    ) -> Result<pb::ListBenchmarkKpisResponse, ApiError> {
        let size = pagination::page_size(req.page_size)?;
        let scope = "ListBenchmarkKpis";
        let after: Option<String> = pagination::decode_token(scope, &req.page_token)?;
        let mut page: Vec<&Kpi> = STANDARD_KPIS
            .iter()
            .filter(|k| after.as_deref().is_none_or(|a| k.id.as_ref() > a))
            .take(usize::try_from(size + 1).unwrap_or(usize::MAX))
            .collect();
        let next_page_token = pagination::finish_page(&mut page, size, scope, |k| k.id.to_string());
        let snapshot = self.directory.snapshot();
        let fresh_since = self.fresh_since();
        // KPI id -> period -> members with a value.
        let mut coverage: HashMap<&str, BTreeMap<String, i32>> = HashMap::new();
        self.snapshot.with_members(|members| {
            for m in &snapshot.directory.members {
                let Some(data) = members.get(&m.istat).filter(|d| d.read_at >= fresh_since) else {
                    continue;
                };
                for kpi in &page {
                    let Some(periods) = data.values.get(kpi.id.as_ref()) else {
                        continue;
                    };
                    let counts = coverage.entry(kpi.id.as_ref()).or_default();
                    for (period, published) in periods {
                        if published.status == MeasurementStatus::Ok {
                            *counts.entry(period.clone()).or_default() += 1;
                        }
                    }
                }
            }
        });
        let kpis = page
            .iter()
            .map(|kpi| pb::BenchmarkKpiSummary {
                kpi: Some(kpi_proto(kpi)),
                // Periods of one kind sort as text in time order: most recent first.
                periods: coverage
                    .get(kpi.id.as_ref())
                    .map(|counts| {
                        counts
                            .iter()
                            .rev()
                            .map(|(period, n)| pb::PeriodCoverage {
                                period: period.clone(),
                                reported_count: *n,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        Ok(pb::ListBenchmarkKpisResponse {
            kpis,
            next_page_token,
        })
    }

    /// ListBenchmarkGroups.
    pub fn list_groups(
        &self,
        req: &pb::ListBenchmarkGroupsRequest,
    ) -> Result<pb::ListBenchmarkGroupsResponse, ApiError> {
        use pb::benchmark_group_summary::Kind;
        let size = pagination::page_size(req.page_size)?;
        let scope = "ListBenchmarkGroups";
        let after: Option<(i32, String)> = pagination::decode_token(scope, &req.page_token)?;
        let snapshot = self.directory.snapshot();
        // (kind, id) -> (members, smallest, largest).
        let mut groups: BTreeMap<(i32, String), (i32, i64, i64)> = BTreeMap::new();
        for m in &snapshot.directory.members {
            for (kind, id) in [
                (Kind::PeerGroup, &m.peer_group),
                (Kind::Province, &m.province),
            ] {
                if id.is_empty() {
                    continue;
                }
                let entry =
                    groups
                        .entry((kind as i32, id.clone()))
                        .or_insert((0, i64::MAX, i64::MIN));
                entry.0 += 1;
                entry.1 = entry.1.min(m.population);
                entry.2 = entry.2.max(m.population);
            }
        }
        let mut page: Vec<_> = groups
            .into_iter()
            .filter(|(key, _)| after.as_ref().is_none_or(|a| key > a))
            .take(usize::try_from(size + 1).unwrap_or(usize::MAX))
            .collect();
        let next_page_token = pagination::finish_page(&mut page, size, scope, |(k, _)| k.clone());
        Ok(pb::ListBenchmarkGroupsResponse {
            groups: page
                .into_iter()
                .map(|((kind, id), (n, min, max))| pb::BenchmarkGroupSummary {
                    kind,
                    id,
                    member_count: n,
                    min_population: min,
                    max_population: max,
                })
                .collect(),
            next_page_token,
        })
    }
}

/// The periods from `from` to `to`, both included, in order.
fn periods_between(from: Period, to: Period) -> Vec<String> {
    let step = match from.kind() {
        PeriodKind::Month => 1,
        PeriodKind::Quarter => 3,
        PeriodKind::Year => 12,
    };
    let mut out = Vec::new();
    let mut day = from.start();
    while day <= to.start() && out.len() <= MAX_PERIODS {
        out.push(current_period(from.kind(), day).to_string());
        match day.checked_add_months(Months::new(step)) {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

#[tonic::async_trait]
impl BenchmarkService for BenchmarkApi {
    #[tracing::instrument(name = "CompareKpi", skip_all)]
    async fn compare_kpi(
        &self,
        request: Request<pb::CompareKpiRequest>,
    ) -> Result<Response<pb::KpiComparison>, Status> {
        Ok(Response::new(self.compare(request.get_ref())?))
    }

    #[tracing::instrument(name = "GetKpiTimeSeries", skip_all)]
    async fn get_kpi_time_series(
        &self,
        request: Request<pb::GetKpiTimeSeriesRequest>,
    ) -> Result<Response<pb::KpiTimeSeries>, Status> {
        Ok(Response::new(self.time_series(request.get_ref())?))
    }

    #[tracing::instrument(name = "ListBenchmarkKpis", skip_all)]
    async fn list_benchmark_kpis(
        &self,
        request: Request<pb::ListBenchmarkKpisRequest>,
    ) -> Result<Response<pb::ListBenchmarkKpisResponse>, Status> {
        Ok(Response::new(self.list_kpis(request.get_ref())?))
    }

    #[tracing::instrument(name = "ListBenchmarkGroups", skip_all)]
    async fn list_benchmark_groups(
        &self,
        request: Request<pb::ListBenchmarkGroupsRequest>,
    ) -> Result<Response<pb::ListBenchmarkGroupsResponse>, Status> {
        Ok(Response::new(self.list_groups(request.get_ref())?))
    }
}
