//! The dashboard's CSV equals the API's answer (issue 7, "the CSV equals the API's answer"): a
//! real node serving four comuni, the real gateway with its web front on plain HTTP on
//! loopback, measurements recorded through the gateway; then the same comparison asked of
//! `BenchmarkService.CompareKpi` over gRPC and of `GET /api/dashboard/comparison.csv` over
//! HTTP, row by row: ranks, values, bands, missing reasons and the group's statistics.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use unione_gateway::GatewayConfig;
use unione_gateway::config::WebConfig;
use unione_gateway::directory::{DirectoryFile, MemberEntry, NodeEntry, ProvisionEntry};
use unione_kit::names::routed;
use unione_kit::token::Role;
use unione_node::Function;
use unione_proto::federation::v1::benchmark_group::Selector;
use unione_proto::federation::v1::benchmark_service_client::BenchmarkServiceClient;
use unione_proto::federation::v1::{
    Band, BenchmarkGroup, CompareKpiRequest, KpiComparison, MissingReason,
};
use unione_proto::quality::v1::kpi_service_client::KpiServiceClient;
use unione_proto::quality::v1::measurement::Status as MStatus;
use unione_proto::quality::v1::{CreateMeasurementRequest, Measurement};

/// (ISTAT, name, population, peer group). The first name needs quoting in CSV; Zeri has no
/// quality office in the federation.
const MEMBERS: &[(&str, &str, i64, &str)] = &[
    ("045001", "Pieve, \"Alta\"", 4_000, "valle"),
    ("045002", "Bagnone", 5_000, "valle"),
    ("045003", "Comano", 2_000, "valle"),
    ("045004", "Licciana Nardi", 3_000, "valle"),
    ("045005", "Mulazzo", 2_500, "costa"),
    ("045006", "Zeri", 1_000, "valle"),
];

/// A plain HTTP/1.1 GET on the web front: (status, content type, body).
async fn http_get(addr: std::net::SocketAddr, path: &str, token: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the web front accepts");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8(raw).expect("a UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("headers and a body");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    assert!(
        !headers.contains_key("transfer-encoding"),
        "the answer has a length: {headers:?}"
    );
    let content_type = headers.get("content-type").cloned().unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// Reads RFC 4180 CSV: quoted fields may hold `,`, `""` and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "the CSV ends with a line end"
    );
    rows
}

fn number(field: &str) -> Option<f64> {
    (!field.is_empty()).then(|| field.parse().expect("a number with a decimal point"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_csv_equals_the_comparison_row_by_row() {
    unione_kit::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let (keys, signer) = support::secrets(root);
    let admin = signer.issue("admin-1", Role::Admin, Vec::new(), None, 1);
    let citizen = signer.issue("cit-1", Role::Citizen, Vec::new(), None, 1);

    let served: Vec<&str> = MEMBERS
        .iter()
        .map(|m| m.0)
        .filter(|i| *i != "045006")
        .collect();
    let node = support::start_node(
        root,
        "valle",
        served
            .iter()
            .map(|istat| support::served(istat, istat, 1, &[Function::Quality]))
            .collect(),
    )
    .await;
    let file = DirectoryFile {
        members: MEMBERS
            .iter()
            .map(|(istat, name, population, peer_group)| MemberEntry {
                istat: (*istat).to_owned(),
                name: (*name).to_owned(),
                fiscal_code: format!("001{istat}00"),
                cadastral_code: "A001".to_owned(),
                population: *population,
                province: "MS".to_owned(),
                peer_group: (*peer_group).to_owned(),
                ipa_code: format!("c_{istat}"),
                segregation_code: "01".to_owned(),
            })
            .collect(),
        nodes: vec![NodeEntry {
            node_id: "valle".into(),
            endpoint: format!("https://{}", node.addr),
        }],
        provisions: served
            .iter()
            .map(|istat| ProvisionEntry {
                comune: (*istat).to_owned(),
                function: "quality".to_owned(),
                node: "valle".to_owned(),
            })
            .collect(),
        revoked_certificates: Vec::new(),
    };
    let path = root.join("directory.toml");
    std::fs::write(&path, toml::to_string(&file).expect("toml")).expect("written");
    let gateway = unione_gateway::start(GatewayConfig {
        web: WebConfig {
            listen: "127.0.0.1:0".into(),
            ..WebConfig::default()
        },
        ..support::gateway_config(root, &path, &keys)
    })
    .await
    .expect("the gateway starts");
    let web = gateway.web.as_ref().expect("the web front is on").addr;
    let channel = support::client(&gateway, root).await;

    // UQ0006, complaints per 1,000 inhabitants, lower is better. Counts: 6 / 4,000 -> 1.5;
    // 5 / 5,000 -> 1; 3 / 2,000 -> 1.5 (a tie); 12 / 3,000 -> 4; Mulazzo (outside the
    // valley, highlighted) 1 / 2,500 -> 0.4; Zeri has no quality office.
    let mut kpis = KpiServiceClient::new(channel.clone());
    for (istat, status, value) in [
        ("045001", MStatus::Ok, 6.0),
        ("045002", MStatus::Ok, 5.0),
        ("045003", MStatus::Ok, 3.0),
        ("045004", MStatus::Ok, 12.0),
        ("045005", MStatus::Ok, 1.0),
    ] {
        kpis.create_measurement(support::authorized(
            &admin,
            routed(
                istat,
                CreateMeasurementRequest {
                    parent: format!("comuni/{istat}/kpis/UQ0006"),
                    measurement: Some(Measurement {
                        period: "2025".to_owned(),
                        value,
                        status: status.into(),
                        ..Measurement::default()
                    }),
                    request_id: String::new(),
                },
            ),
        ))
        .await
        .expect("the measurement is recorded");
    }

    let mut benchmarks = BenchmarkServiceClient::new(channel.clone());
    let ask = || CompareKpiRequest {
        kpi: "UQ0006".into(),
        period: "2025".into(),
        group: Some(BenchmarkGroup {
            selector: Some(Selector::PeerGroup("valle".into())),
        }),
        highlight_comune: "comuni/045005".into(),
    };
    // The snapshot is refreshed in the background: wait, bounded, for the five values.
    let deadline = Instant::now() + Duration::from_secs(30);
    let grpc: KpiComparison = loop {
        let c = benchmarks
            .compare_kpi(support::authorized(&admin, tonic::Request::new(ask())))
            .await
            .expect("a comparison always answers")
            .into_inner();
        if c.rows
            .iter()
            .filter(|r| r.normalised_value.is_some())
            .count()
            == 5
        {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the values: {c:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let query = "kpi=UQ0006&period=2025&group=peer_group%3Avalle&highlight=045005";
    let (status, content_type, body) = http_get(
        web,
        &format!("/api/dashboard/comparison.csv?{query}"),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let csv = parse_csv(body.strip_prefix('\u{feff}').expect("a byte order mark"));
    let (header, rows) = csv.split_first().expect("a header row");
    let col: HashMap<&str, usize> = header
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    assert_eq!(
        rows.len(),
        grpc.rows.len(),
        "one CSV row per member: {body}"
    );
    let stats = grpc.statistics.expect("statistics");
    let band = |b: Band| {
        b.as_str_name()
            .trim_start_matches("BAND_")
            .to_ascii_lowercase()
    };
    for (line, row) in rows.iter().zip(&grpc.rows) {
        let field = |name: &str| line[col[name]].as_str();
        assert_eq!(
            field("istat_code"),
            row.comune.trim_start_matches("comuni/")
        );
        assert_eq!(field("comune"), row.display_name);
        let rank = if row.rank > 0 {
            row.rank.to_string()
        } else {
            String::new()
        };
        assert_eq!(field("rank"), rank, "{line:?}");
        assert_eq!(number(field("value")), row.value, "{line:?}");
        assert_eq!(
            number(field("normalised_value")),
            row.normalised_value,
            "{line:?}"
        );
        assert_eq!(field("band"), band(row.band()), "{line:?}");
        let reason = match row.missing_reason() {
            MissingReason::Unspecified => String::new(),
            r => r
                .as_str_name()
                .trim_start_matches("MISSING_REASON_")
                .to_ascii_lowercase(),
        };
        assert_eq!(field("missing_reason"), reason, "{line:?}");
        assert_eq!(field("in_group"), row.in_group.to_string());
        assert_eq!(field("highlighted"), row.highlighted.to_string());
        assert_eq!(number(field("group_median")), stats.median);
        assert_eq!(number(field("group_mean")), stats.mean);
        assert_eq!(
            field("group_reported_count"),
            stats.reported_count.to_string()
        );
        assert_eq!(field("group_member_count"), stats.member_count.to_string());
        assert_eq!(number(field("target")), grpc.kpi.as_ref().map(|k| k.target));
    }
    // And the numbers are the hand-computed ones (lower is better; the outsider Mulazzo is
    // placed against the valley but counts in no statistic; DOMAIN.md, Quality and
    // benchmarks: "unweighted mean of the members that reported, with their count").
    let table: Vec<(&str, &str, &str, &str, &str)> = rows
        .iter()
        .map(|l| {
            (
                l[col["istat_code"]].as_str(),
                l[col["rank"]].as_str(),
                l[col["normalised_value"]].as_str(),
                l[col["band"]].as_str(),
                l[col["missing_reason"]].as_str(),
            )
        })
        .collect();
    assert_eq!(
        table,
        vec![
            ("045002", "1", "1", "green", ""),
            ("045005", "1", "0.4", "green", ""),
            ("045001", "2", "1.5", "yellow", ""),
            ("045003", "2", "1.5", "yellow", ""),
            ("045004", "4", "4", "red", ""),
            ("045006", "", "", "grey", "function_not_provided"),
        ]
    );
    assert_eq!(
        rows[2][col["comune"]], "Pieve, \"Alta\"",
        "quoting round-trips"
    );
    assert_eq!(
        (
            stats.member_count,
            stats.reported_count,
            stats.median,
            stats.mean
        ),
        (5, 4, Some(1.5), Some(2.0))
    );

    // The JSON comparison the page draws holds the same rows in the same order.
    let (status, _, json) =
        http_get(web, &format!("/api/dashboard/comparison?{query}"), &admin).await;
    assert_eq!(status, 200, "{json}");
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let istats: Vec<&str> = json["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["istat_code"].as_str().expect("istat"))
        .collect();
    assert_eq!(istats, table.iter().map(|t| t.0).collect::<Vec<_>>());

    // The pickers: the groups of the directory with the population bands counted from the
    // members, and the KPI's periods with values; the series of one comune over two years.
    let (status, _, groups) = http_get(web, "/api/dashboard/groups", &admin).await;
    assert_eq!(status, 200, "{groups}");
    let groups: serde_json::Value = serde_json::from_str(&groups).expect("JSON");
    let ids: Vec<(&str, &str, i64)> = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["kind"].as_str().expect("kind"),
                g["id"].as_str().expect("id"),
                g["member_count"].as_i64().expect("count"),
            )
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            ("peer_group", "costa", 1),
            ("peer_group", "valle", 5),
            ("province", "MS", 6)
        ]
    );
    let bands: Vec<i64> = groups["population_bands"]
        .as_array()
        .expect("bands")
        .iter()
        .map(|b| b["member_count"].as_i64().expect("count"))
        .collect();
    assert_eq!(
        bands,
        vec![1, 4, 1, 0, 0, 0, 0],
        "1,000 | 2,000-4,000 | 5,000"
    );
    assert_eq!(
        groups["comuni"].as_array().map(Vec::len),
        Some(MEMBERS.len())
    );
    let (status, _, kpis) = http_get(web, "/api/dashboard/kpis", &admin).await;
    assert_eq!(status, 200, "{kpis}");
    let kpis: serde_json::Value = serde_json::from_str(&kpis).expect("JSON");
    let uq0006 = kpis["kpis"]
        .as_array()
        .expect("kpis")
        .iter()
        .find(|k| k["kpi_id"] == "UQ0006")
        .expect("UQ0006 listed");
    assert_eq!(
        uq0006["periods"],
        serde_json::json!([{"period": "2025", "reported_count": 5}])
    );
    assert_eq!(
        (&uq0006["polarity"], &uq0006["normalisation"]),
        (
            &serde_json::json!("lower_is_better"),
            &serde_json::json!("per_1000_inhabitants")
        )
    );
    let (status, _, series) = http_get(
        web,
        "/api/dashboard/series?kpi=UQ0006&comuni=045001&from=2024&to=2025",
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{series}");
    let series: serde_json::Value = serde_json::from_str(&series).expect("JSON");
    assert_eq!(
        series["series"][0]["points"],
        serde_json::json!([
            {"period": "2024", "value": null, "normalised_value": null, "missing_reason": "not_reported"},
            {"period": "2025", "value": 6.0, "normalised_value": 1.5, "missing_reason": ""},
        ])
    );

    // The web front holds no authority: a citizen's token is refused as over gRPC, and bad
    // input is a JSON 400 naming the field.
    let (status, _, body) = http_get(
        web,
        &format!("/api/dashboard/comparison.csv?{query}"),
        &citizen,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = http_get(
        web,
        "/api/dashboard/comparison.csv?kpi=UQ0006&period=2025&group=nowhere",
        &admin,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(body["error"]["field"], "group");

    gateway.stop().await.expect("the gateway stops");
    node.stop().await.expect("the node stops");
}
