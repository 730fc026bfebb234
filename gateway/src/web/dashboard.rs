//! The administrators' benchmark dashboard (issue 7): the page at `/dashboard/` and its JSON
//! endpoints under `/api/dashboard/`, each a translation of `BenchmarkService` (and
//! `DirectoryService`) calls made with the caller's token, so the gateway's authorization
//! table decides who may compare (staff, administrators, auditors; not citizens).
//!
//! - `GET /api/dashboard/kpis`: the comparable KPIs, each with the periods that have values.
//! - `GET /api/dashboard/groups`: the peer groups and provinces, the population bands with
//!   their member counts, and the members (for choosing comuni).
//! - `GET /api/dashboard/comparison?kpi=&period=&group=&highlight=`: a comparison.
//! - `GET /api/dashboard/comparison.csv?...`: the same comparison as CSV (see [`write_csv`]).
//! - `GET /api/dashboard/series?kpi=&comuni=&from=&to=`: time series.
//!
//! `group` is one of `federation`, `peer_group:{id}`, `province:{abbreviation}`,
//! `population:{min}-{max}` (`max` empty: no upper bound) and `comuni:{istat},{istat},...`.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use unione_proto::federation::v1 as pb;
use unione_proto::federation::v1::benchmark_group::Selector;
use unione_proto::federation::v1::benchmark_service_client::BenchmarkServiceClient;
use unione_proto::federation::v1::directory_service_client::DirectoryServiceClient;

use super::{Asset, Caller, WebError, WebState, all_pages, asset_routes, parse_istat};

/// The page and its script and style sheet.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/dashboard/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../web/dashboard/index.html"),
    },
    Asset {
        path: "/dashboard/dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/dashboard/dashboard.js"),
    },
    Asset {
        path: "/dashboard/charts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/dashboard/charts.js"),
    },
    Asset {
        path: "/dashboard/dashboard.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/dashboard/dashboard.css"),
    },
];

/// Population bands offered by the page (inhabitants, both ends included; 0 as the upper end
/// means no bound), after the size classes ISTAT uses for comuni.
pub const POPULATION_BANDS: &[(i64, i64)] = &[
    (0, 1_999),
    (2_000, 4_999),
    (5_000, 9_999),
    (10_000, 19_999),
    (20_000, 59_999),
    (60_000, 249_999),
    (250_000, 0),
];

/// The dashboard's page and endpoints.
pub fn routes() -> Router<WebState> {
    asset_routes(ASSETS)
        .route(
            "/dashboard",
            get(|| async { Redirect::permanent("/dashboard/") }),
        )
        .route("/api/dashboard/kpis", get(kpis))
        .route("/api/dashboard/groups", get(groups))
        .route("/api/dashboard/comparison", get(comparison))
        .route("/api/dashboard/comparison.csv", get(comparison_csv))
        .route("/api/dashboard/series", get(series))
}

/// The lower-case keyword of a protobuf enum value name: `BAND_GREEN` -> `green`.
fn keyword(name: &str, prefix: &str) -> String {
    let rest = name.strip_prefix(prefix).unwrap_or(name);
    if rest == "UNSPECIFIED" {
        String::new()
    } else {
        rest.to_ascii_lowercase()
    }
}

fn band_keyword(band: i32) -> String {
    pb::Band::try_from(band).map_or_else(|_| String::new(), |b| keyword(b.as_str_name(), "BAND_"))
}

fn missing_keyword(reason: i32) -> String {
    pb::MissingReason::try_from(reason).map_or_else(
        |_| String::new(),
        |r| keyword(r.as_str_name(), "MISSING_REASON_"),
    )
}

fn rfc3339(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    let ts = ts?;
    let nanos = u32::try_from(ts.nanos).ok()?;
    chrono::DateTime::from_timestamp(ts.seconds, nanos)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn istat_of(name: &str) -> &str {
    name.strip_prefix("comuni/").unwrap_or(name)
}

fn kpi_json(kpi: Option<&pb::BenchmarkKpi>) -> Value {
    use unione_proto::quality::v1::kpi::{Normalisation, Period, Polarity};
    let Some(kpi) = kpi else {
        return Value::Null;
    };
    json!({
        "kpi_id": kpi.kpi_id,
        "title": kpi.title,
        "definition": kpi.definition,
        "unit": kpi.unit,
        "polarity": Polarity::try_from(kpi.polarity)
            .map_or_else(|_| String::new(), |p| keyword(p.as_str_name(), "POLARITY_")),
        "normalisation": Normalisation::try_from(kpi.normalisation)
            .map_or_else(|_| String::new(), |n| keyword(n.as_str_name(), "NORMALISATION_")),
        "target": kpi.target,
        "tolerance": kpi.tolerance,
        "period": Period::try_from(kpi.period)
            .map_or_else(|_| String::new(), |p| keyword(p.as_str_name(), "PERIOD_")),
    })
}

/// Most items asked for in one page of a listing.
const PAGE_SIZE: i32 = 500;

/// Every KPI that can be compared, with the periods that have values (most recent first).
async fn kpis(State(state): State<WebState>, caller: Caller) -> Result<Response, WebError> {
    let client = BenchmarkServiceClient::new(state.bridge.channel());
    let summaries = all_pages(|page_token| {
        let mut client = client.clone();
        let request = caller.request(
            pb::ListBenchmarkKpisRequest {
                page_size: PAGE_SIZE,
                page_token,
            },
            None,
        );
        async move {
            let page = client.list_benchmark_kpis(request).await?.into_inner();
            Ok((page.kpis, page.next_page_token))
        }
    })
    .await?;
    let kpis: Vec<Value> = summaries
        .iter()
        .map(|summary| {
            let mut kpi = kpi_json(summary.kpi.as_ref());
            kpi["periods"] = summary
                .periods
                .iter()
                .map(|p| json!({"period": p.period, "reported_count": p.reported_count}))
                .collect();
            kpi
        })
        .collect();
    Ok(no_store(axum::Json(json!({ "kpis": kpis }))))
}

/// The groups to compare in: peer groups and provinces (BenchmarkService), population bands
/// and the members to choose from (DirectoryService).
async fn groups(State(state): State<WebState>, caller: Caller) -> Result<Response, WebError> {
    let benchmarks = BenchmarkServiceClient::new(state.bridge.channel());
    let summaries = all_pages(|page_token| {
        let mut client = benchmarks.clone();
        let request = caller.request(
            pb::ListBenchmarkGroupsRequest {
                page_size: PAGE_SIZE,
                page_token,
            },
            None,
        );
        async move {
            let page = client.list_benchmark_groups(request).await?.into_inner();
            Ok((page.groups, page.next_page_token))
        }
    })
    .await?;
    let directory = DirectoryServiceClient::new(state.bridge.channel());
    let members = all_pages(|page_token| {
        let mut client = directory.clone();
        let request = caller.request(
            pb::ListMembersRequest {
                page_size: PAGE_SIZE,
                page_token,
            },
            None,
        );
        async move {
            let page = client.list_members(request).await?.into_inner();
            Ok((page.members, page.next_page_token))
        }
    })
    .await?;
    let groups: Vec<Value> = summaries
        .iter()
        .map(|g| {
            let kind = pb::benchmark_group_summary::Kind::try_from(g.kind)
                .map_or_else(|_| String::new(), |k| keyword(k.as_str_name(), "KIND_"));
            json!({
                "kind": kind,
                "id": g.id,
                "member_count": g.member_count,
                "min_population": g.min_population,
                "max_population": g.max_population,
            })
        })
        .collect();
    let bands: Vec<Value> = POPULATION_BANDS
        .iter()
        .map(|&(min, max)| {
            let count = members
                .iter()
                .filter(|m| m.population >= min && (max == 0 || m.population <= max))
                .count();
            json!({"min_population": min, "max_population": max, "member_count": count})
        })
        .collect();
    let comuni: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({
                "istat_code": m.istat_code,
                "display_name": m.display_name,
                "province": m.province,
                "population": m.population,
                "peer_group": m.peer_group,
            })
        })
        .collect();
    Ok(no_store(axum::Json(json!({
        "groups": groups,
        "population_bands": bands,
        "comuni": comuni,
        "federation_member_count": members.len(),
    }))))
}

/// The query of a comparison.
#[derive(Debug, Deserialize)]
struct ComparisonQuery {
    kpi: Option<String>,
    period: Option<String>,
    group: Option<String>,
    highlight: Option<String>,
}

/// A query string that does not decode is a JSON 400 like any other bad input.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, WebError> {
    query
        .map(|Query(q)| q)
        .map_err(|rejection| WebError::invalid("query", "INVALID_QUERY", rejection.body_text()))
}

/// Reads `group` (see the module documentation).
pub fn parse_group(text: &str) -> Result<Selector, WebError> {
    let invalid = |message: String| WebError::invalid("group", "INVALID_GROUP", message);
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid("choose a group".to_owned()));
    }
    if text == "federation" {
        return Ok(Selector::Federation(true));
    }
    let (kind, value) = text.split_once(':').ok_or_else(|| {
        invalid(format!(
            "`{text}`: expected federation, peer_group:ID, province:XX, population:MIN-MAX or \
             comuni:ISTAT,ISTAT"
        ))
    })?;
    let value = value.trim();
    match kind {
        "peer_group" | "province" if value.is_empty() => {
            Err(invalid(format!("`{text}` names no {kind}")))
        }
        "peer_group" => Ok(Selector::PeerGroup(value.to_owned())),
        "province" => Ok(Selector::Province(value.to_owned())),
        "population" => {
            let bound = |s: &str, empty: i64| -> Result<i64, WebError> {
                let s = s.trim();
                if s.is_empty() {
                    return Ok(empty);
                }
                s.parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| invalid(format!("`{s}` is not a number of inhabitants")))
            };
            let (min, max) = value
                .split_once('-')
                .ok_or_else(|| invalid(format!("`{text}`: expected population:MIN-MAX")))?;
            Ok(Selector::PopulationBand(pb::PopulationBand {
                min_population: bound(min, 0)?,
                max_population: bound(max, 0)?,
            }))
        }
        "comuni" => {
            let comuni = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| parse_istat("group", s).map(|istat| format!("comuni/{istat}")))
                .collect::<Result<Vec<_>, _>>()?;
            if comuni.is_empty() {
                return Err(invalid("choose at least one comune".to_owned()));
            }
            Ok(Selector::Comuni(pb::ComuneList { comuni }))
        }
        _ => Err(invalid(format!("`{kind}` is not a kind of group"))),
    }
}

/// Makes the CompareKpi call a comparison query asks for.
async fn compare(
    state: &WebState,
    caller: &Caller,
    q: ComparisonQuery,
) -> Result<pb::KpiComparison, WebError> {
    let required = |field: &str, value: Option<String>| {
        value
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| WebError::invalid(field, "REQUIRED", format!("`{field}` is required")))
    };
    let kpi = required("kpi", q.kpi)?;
    let period = required("period", q.period)?;
    let selector = parse_group(&required("group", q.group)?)?;
    let highlight_comune = match q.highlight.as_deref().map(str::trim) {
        None | Some("") => String::new(),
        Some(h) => format!("comuni/{}", parse_istat("highlight", h)?),
    };
    let mut client = BenchmarkServiceClient::new(state.bridge.channel());
    Ok(client
        .compare_kpi(caller.request(
            pb::CompareKpiRequest {
                kpi,
                period,
                group: Some(pb::BenchmarkGroup {
                    selector: Some(selector),
                }),
                highlight_comune,
            },
            None,
        ))
        .await?
        .into_inner())
}

/// The JSON form of a comparison: the rows in the API's order.
pub fn comparison_json(c: &pb::KpiComparison) -> Value {
    let rows: Vec<Value> = c
        .rows
        .iter()
        .map(|r| {
            json!({
                "comune": r.comune,
                "istat_code": istat_of(&r.comune),
                "display_name": r.display_name,
                "population": r.population,
                "value": r.value,
                "normalised_value": r.normalised_value,
                "rank": r.rank,
                "band": band_keyword(r.band),
                "missing_reason": missing_keyword(r.missing_reason),
                "missing_detail": r.missing_detail,
                "highlighted": r.highlighted,
                "in_group": r.in_group,
                "data_time": rfc3339(r.data_time.as_ref()),
                "revision": r.revision,
            })
        })
        .collect();
    let stats = c.statistics.unwrap_or_default();
    json!({
        "kpi": kpi_json(c.kpi.as_ref()),
        "period": c.period,
        "rows": rows,
        "statistics": {
            "member_count": stats.member_count,
            "reported_count": stats.reported_count,
            "median": stats.median,
            "mean": stats.mean,
            "best": stats.best,
            "worst": stats.worst,
        },
        "snapshot_time": rfc3339(c.snapshot_time.as_ref()),
        "directory_version": c.directory_version,
    })
}

async fn comparison(
    State(state): State<WebState>,
    caller: Caller,
    q: Result<Query<ComparisonQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let c = compare(&state, &caller, query(q)?).await?;
    Ok(no_store(axum::Json(comparison_json(&c))))
}

async fn comparison_csv(
    State(state): State<WebState>,
    caller: Caller,
    q: Result<Query<ComparisonQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let c = compare(&state, &caller, query(q)?).await?;
    let kpi = c.kpi.as_ref().map_or("kpi", |k| k.kpi_id.as_str());
    // The KPI id and period were checked by the API: letters, digits and `-` only.
    let filename: String = format!("confronto-{kpi}-{}.csv", c.period)
        .chars()
        .filter(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '.'))
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        write_csv(&c),
    )
        .into_response())
}

/// The columns of the CSV, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "rank",
    "comune",
    "istat_code",
    "population",
    "value",
    "normalised_value",
    "band",
    "missing_reason",
    "missing_detail",
    "in_group",
    "highlighted",
    "kpi",
    "period",
    "unit",
    "target",
    "group_member_count",
    "group_reported_count",
    "group_median",
    "group_mean",
];

/// A comparison as CSV (RFC 4180, UTF-8 with a byte order mark so that spreadsheets read the
/// accents, CRLF line ends, `,` between fields, `.` as the decimal point, no thousands
/// separator): a header row ([`CSV_COLUMNS`]), then one row per member in the API's order
/// (by rank, then ISTAT code; members without a value last).
///
/// Per member: `rank` (empty without a value), the comune's name, its ISTAT code, population,
/// the value as measured and the normalised value (empty when missing), the band (`green`,
/// `yellow`, `red`, `grey`), the missing reason (`unreachable`, `not_reported`,
/// `not_applicable`, `confidential`, `function_not_provided`, `not_collected`,
/// `population_unknown`; empty with a value) and its detail, whether the member is in the
/// group and whether it is the highlighted comune (`true`/`false`). The group's figures are
/// repeated on every row so that each row stands alone in a spreadsheet: the KPI id, period,
/// unit, target (normalised terms), members in the group, members that reported, median and
/// unweighted mean of the reported normalised values (empty when none reported).
///
/// Numbers are written in the shortest form that reads back as the same double (`2.5`,
/// `95`, `0.1`), never with an exponent. A text field that starts with `=`, `+`, `-`, `@`,
/// tab or carriage return is prefixed with `'` so that no spreadsheet runs it as a formula;
/// a field holding `,`, `"` or a line break is quoted, quotes doubled.
pub fn write_csv(c: &pb::KpiComparison) -> String {
    let mut out = String::from("\u{feff}");
    push_row(
        &mut out,
        CSV_COLUMNS.iter().map(|c| Field::Plain((*c).to_owned())),
    );
    let stats = c.statistics.unwrap_or_default();
    let kpi = c.kpi.clone().unwrap_or_default();
    for r in &c.rows {
        push_row(
            &mut out,
            [
                Field::Plain(if r.rank > 0 {
                    r.rank.to_string()
                } else {
                    String::new()
                }),
                Field::Text(r.display_name.clone()),
                Field::Plain(istat_of(&r.comune).to_owned()),
                Field::Plain(r.population.to_string()),
                Field::Plain(csv_number(r.value)),
                Field::Plain(csv_number(r.normalised_value)),
                Field::Plain(band_keyword(r.band)),
                Field::Plain(missing_keyword(r.missing_reason)),
                Field::Text(r.missing_detail.clone()),
                Field::Plain(r.in_group.to_string()),
                Field::Plain(r.highlighted.to_string()),
                Field::Plain(kpi.kpi_id.clone()),
                Field::Plain(c.period.clone()),
                Field::Text(kpi.unit.clone()),
                Field::Plain(csv_number(Some(kpi.target))),
                Field::Plain(stats.member_count.to_string()),
                Field::Plain(stats.reported_count.to_string()),
                Field::Plain(csv_number(stats.median)),
                Field::Plain(csv_number(stats.mean)),
            ],
        );
    }
    out
}

/// A CSV field: `Text` is free text (guarded against formulas), `Plain` a number, code or
/// keyword written by us.
enum Field {
    Text(String),
    Plain(String),
}

fn push_row(out: &mut String, fields: impl IntoIterator<Item = Field>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let text = match field {
            Field::Text(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
            Field::Text(s) | Field::Plain(s) => s,
        };
        if text.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&text.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&text);
        }
    }
    out.push_str("\r\n");
}

/// A number with `.` as the decimal point and no exponent, in the shortest form that reads
/// back as the same double; empty when absent or not finite.
pub fn csv_number(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => {
            // Rust's `Display` for f64 is the shortest round-trip form and never uses an
            // exponent; `-0` is written `0`.
            let v = if v == 0.0 { 0.0 } else { v };
            let mut s = String::new();
            let _ = write!(s, "{v}");
            s
        }
        _ => String::new(),
    }
}

/// The query of a time series.
#[derive(Debug, Deserialize)]
struct SeriesQuery {
    kpi: Option<String>,
    /// ISTAT codes separated by commas.
    comuni: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

async fn series(
    State(state): State<WebState>,
    caller: Caller,
    q: Result<Query<SeriesQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let q = query(q)?;
    let comuni = q
        .comuni
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_istat("comuni", s).map(|istat| format!("comuni/{istat}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut client = BenchmarkServiceClient::new(state.bridge.channel());
    let answer = client
        .get_kpi_time_series(caller.request(
            pb::GetKpiTimeSeriesRequest {
                kpi: q.kpi.unwrap_or_default(),
                comuni,
                from_period: q.from.unwrap_or_default(),
                to_period: q.to.unwrap_or_default(),
            },
            None,
        ))
        .await?
        .into_inner();
    let series: Vec<Value> = answer
        .series
        .iter()
        .map(|s| {
            json!({
                "comune": s.comune,
                "istat_code": istat_of(&s.comune),
                "display_name": s.display_name,
                "population": s.population,
                "missing_detail": s.missing_detail,
                "data_time": rfc3339(s.data_time.as_ref()),
                "points": s.points.iter().map(|p| json!({
                    "period": p.period,
                    "value": p.value,
                    "normalised_value": p.normalised_value,
                    "missing_reason": missing_keyword(p.missing_reason),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(no_store(axum::Json(json!({
        "kpi": kpi_json(answer.kpi.as_ref()),
        "series": series,
    }))))
}

fn no_store(body: impl IntoResponse) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comparison(rows: Vec<pb::ComparisonRow>) -> pb::KpiComparison {
        pb::KpiComparison {
            kpi: Some(pb::BenchmarkKpi {
                kpi_id: "UQ0006".into(),
                unit: "count".into(),
                target: 2.0,
                ..pb::BenchmarkKpi::default()
            }),
            period: "2025".into(),
            rows,
            statistics: Some(pb::GroupStatistics {
                member_count: 3,
                reported_count: 2,
                median: Some(1.75),
                mean: Some(1.75),
                best: Some(1.5),
                worst: Some(2.0),
            }),
            snapshot_time: None,
            directory_version: 1,
        }
    }

    fn lines(csv: &str) -> Vec<&str> {
        csv.strip_prefix('\u{feff}')
            .expect("a byte order mark first")
            .split_terminator("\r\n")
            .collect()
    }

    #[test]
    fn names_with_commas_and_quotes_are_quoted_and_missing_values_are_empty() {
        let csv = write_csv(&comparison(vec![
            pb::ComparisonRow {
                comune: "comuni/011001".into(),
                display_name: "Pieve, \"Alta\"".into(),
                population: 4_000,
                value: Some(6.0),
                normalised_value: Some(1.5),
                rank: 1,
                band: pb::Band::Green.into(),
                in_group: true,
                ..pb::ComparisonRow::default()
            },
            pb::ComparisonRow {
                comune: "comuni/011002".into(),
                display_name: "Castelnuovo\nMagra".into(),
                population: 8_000,
                value: Some(16.0),
                normalised_value: Some(2.0),
                rank: 2,
                band: pb::Band::Red.into(),
                highlighted: true,
                in_group: true,
                ..pb::ComparisonRow::default()
            },
            pb::ComparisonRow {
                comune: "comuni/011003".into(),
                display_name: "Zeri".into(),
                population: 1_000,
                band: pb::Band::Grey.into(),
                missing_reason: pb::MissingReason::Unreachable.into(),
                missing_detail: "node `costa`: connection refused".into(),
                in_group: true,
                ..pb::ComparisonRow::default()
            },
        ]));
        let lines = lines(&csv);
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert_eq!(
            lines[1],
            "1,\"Pieve, \"\"Alta\"\"\",011001,4000,6,1.5,green,,,true,false,UQ0006,2025,count,2,3,2,1.75,1.75"
        );
        // A line break inside a quoted field is part of the field (RFC 4180).
        assert_eq!(
            lines[2],
            "2,\"Castelnuovo\nMagra\",011002,8000,16,2,red,,,true,true,UQ0006,2025,count,2,3,2,1.75,1.75"
        );
        assert_eq!(
            lines[3],
            ",Zeri,011003,1000,,,grey,unreachable,node `costa`: connection refused,true,false,UQ0006,2025,count,2,3,2,1.75,1.75"
        );
        assert_eq!(lines.len(), 4);
        assert!(csv.ends_with("\r\n"));
    }

    #[test]
    fn numbers_use_a_decimal_point_no_exponent_and_read_back_the_same() {
        for (value, text) in [
            (Some(95.0), "95"),
            (Some(2.5), "2.5"),
            (Some(0.1), "0.1"),
            (Some(-3.25), "-3.25"),
            (Some(-0.0), "0"),
            (Some(1_234_567.125), "1234567.125"),
            (Some(1e21), "1000000000000000000000"),
            (Some(0.000_001_5), "0.0000015"),
            (Some(f64::NAN), ""),
            (Some(f64::INFINITY), ""),
            (None, ""),
        ] {
            assert_eq!(csv_number(value), text, "{value:?}");
        }
        for v in [1.0 / 3.0, 2.0 / 7.0 * 1000.0, 12.345_678_9] {
            assert_eq!(csv_number(Some(v)).parse::<f64>(), Ok(v));
        }
        let mut statistics = comparison(Vec::new());
        statistics.statistics = Some(pb::GroupStatistics {
            member_count: 1,
            ..pb::GroupStatistics::default()
        });
        statistics.rows.push(pb::ComparisonRow {
            comune: "comuni/011003".into(),
            display_name: "Zeri".into(),
            band: pb::Band::Grey.into(),
            missing_reason: pb::MissingReason::NotReported.into(),
            in_group: true,
            ..pb::ComparisonRow::default()
        });
        let csv = write_csv(&statistics);
        assert!(
            lines(&csv)[1].ends_with(",UQ0006,2025,count,2,1,0,,"),
            "no median and no mean when none reported: {csv}"
        );
    }

    #[test]
    fn text_that_a_spreadsheet_would_run_as_a_formula_is_defused() {
        let csv = write_csv(&comparison(vec![pb::ComparisonRow {
            comune: "comuni/011004".into(),
            display_name: "=HYPERLINK(\"x\")".into(),
            population: 10,
            value: Some(-2.0),
            normalised_value: Some(-2.0),
            rank: 1,
            band: pb::Band::Green.into(),
            missing_detail: "@cmd".into(),
            in_group: true,
            ..pb::ComparisonRow::default()
        }]));
        let line = lines(&csv)[1];
        assert!(
            line.starts_with("1,\"'=HYPERLINK(\"\"x\"\")\",011004,10,-2,-2,green,,'@cmd,"),
            "{line}"
        );
    }

    #[test]
    fn groups_are_read_from_one_query_parameter() {
        assert_eq!(
            parse_group("federation").ok(),
            Some(Selector::Federation(true))
        );
        assert_eq!(
            parse_group("peer_group:magra-valley").ok(),
            Some(Selector::PeerGroup("magra-valley".into()))
        );
        assert_eq!(
            parse_group("province:SP").ok(),
            Some(Selector::Province("SP".into()))
        );
        assert_eq!(
            parse_group("population:5000-").ok(),
            Some(Selector::PopulationBand(pb::PopulationBand {
                min_population: 5_000,
                max_population: 0,
            }))
        );
        assert_eq!(
            parse_group("comuni:011027, comuni/011001").ok(),
            Some(Selector::Comuni(pb::ComuneList {
                comuni: vec!["comuni/011027".into(), "comuni/011001".into()],
            }))
        );
        for bad in [
            "",
            "everyone",
            "province:",
            "population:-5-10",
            "population:abc",
            "comuni:",
            "comuni:123",
            "city:x",
        ] {
            let err = parse_group(bad).expect_err(bad);
            assert!(
                matches!(err.reason(), "INVALID_GROUP" | "INVALID_ISTAT_CODE"),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn enum_values_become_lower_case_keywords() {
        assert_eq!(band_keyword(pb::Band::Yellow.into()), "yellow");
        assert_eq!(
            missing_keyword(pb::MissingReason::FunctionNotProvided.into()),
            "function_not_provided"
        );
        assert_eq!(missing_keyword(pb::MissingReason::Unspecified.into()), "");
        assert_eq!(band_keyword(99), "");
    }
}
