//! Cross-town benchmarks end to end (issue 7; DOMAIN.md, Quality and benchmarks): real nodes
//! (`unione_node`, SQLite) serving several comuni each, the real gateway, mutual TLS, and
//! measurements recorded through the gateway as any client would.
//!
//! Rules checked: "per-inhabitant normalisation; peer groups whose value is the unweighted mean
//! of the members that reported, with their count; every unit ranked per KPI (best quartile
//! green, middle yellow, worst red, missing grey)" with the KPI's polarity; members with no
//! value listed with the reason; a member down during a comparison does not fail it; a
//! measurement recorded through the gateway shows in the next comparison without waiting for
//! the refresh interval.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use unione_gateway::directory::{DirectoryFile, MemberEntry, NodeEntry, ProvisionEntry};
use unione_gateway::{GatewayConfig, RunningGateway};
use unione_kit::names::routed;
use unione_kit::token::Role;
use unione_node::{Function, RunningNode};
use unione_proto::federation::v1::benchmark_group::Selector;
use unione_proto::federation::v1::benchmark_service_client::BenchmarkServiceClient;
use unione_proto::federation::v1::{
    Band, BenchmarkGroup, CompareKpiRequest, ComparisonRow, ComuneList, GetKpiTimeSeriesRequest,
    KpiComparison, ListBenchmarkGroupsRequest, ListBenchmarkKpisRequest, MissingReason,
    PopulationBand,
};
use unione_proto::quality::v1::kpi_service_client::KpiServiceClient;
use unione_proto::quality::v1::measurement::Status as MStatus;
use unione_proto::quality::v1::{CreateMeasurementRequest, Measurement};

// Two valley towns' nodes and a coast node; G has no quality office in the federation.
const A: &str = "045001";
const B: &str = "045002";
const C: &str = "045003";
const D: &str = "045004";
const E: &str = "045005";
const F: &str = "045006";
const G: &str = "045007";

/// (ISTAT, name, population, peer group, province).
const MEMBERS: &[(&str, &str, i64, &str, &str)] = &[
    (A, "Aulla", 10_000, "valle", "MS"),
    (B, "Bagnone", 5_000, "valle", "MS"),
    (C, "Carrara", 20_000, "valle", "MS"),
    (D, "Comano", 2_000, "valle", "MS"),
    (E, "Lerici", 8_000, "costa", "SP"),
    (F, "Portovenere", 4_000, "costa", "SP"),
    (G, "Zignago", 1_000, "costa", "SP"),
];

fn member(istat: &str) -> MemberEntry {
    let (_, name, population, peer_group, province) = MEMBERS
        .iter()
        .find(|m| m.0 == istat)
        .expect("a test member");
    MemberEntry {
        istat: istat.to_owned(),
        name: (*name).to_owned(),
        fiscal_code: format!("001{istat}00"),
        cadastral_code: "A001".to_owned(),
        population: *population,
        province: (*province).to_owned(),
        peer_group: (*peer_group).to_owned(),
        ipa_code: format!("c_{istat}"),
        segregation_code: "01".to_owned(),
    }
}

async fn node(root: &Path, id: &str, comuni: &[&str]) -> RunningNode {
    let served = comuni
        .iter()
        .map(|istat| support::served(istat, istat, 1, &[Function::Quality]))
        .collect();
    support::start_node(root, id, served).await
}

struct Federation {
    _dir: tempfile::TempDir,
    gateway: RunningGateway,
    channel: Channel,
    admin: String,
    operator: String,
    citizen: String,
    nodes: Vec<(String, RunningNode)>,
}

/// Nodes `valle` (A-D) and `costa` (E, F), G with no quality provision, plus the nodes in
/// `extra` (id, endpoint, comuni) named in the directory but not started here.
async fn federation(
    refresh_ms: u64,
    max_age_ms: u64,
    extra: &[(&str, String, &[&str])],
) -> Federation {
    unione_kit::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let (keys, signer) = support::secrets(root);
    let admin = signer.issue("admin-1", Role::Admin, Vec::new(), None, 1);
    let operator = signer.issue("op-1", Role::Operator, vec![A.to_owned()], None, 1);
    let citizen = signer.issue("cit-1", Role::Citizen, Vec::new(), None, 1);

    let valle = node(root, "valle", &[A, B, C, D]).await;
    let costa = node(root, "costa", &[E, F]).await;
    let mut file = DirectoryFile {
        members: MEMBERS.iter().map(|m| member(m.0)).collect(),
        nodes: vec![
            NodeEntry {
                node_id: "valle".into(),
                endpoint: format!("https://{}", valle.addr),
            },
            NodeEntry {
                node_id: "costa".into(),
                endpoint: format!("https://{}", costa.addr),
            },
        ],
        provisions: Vec::new(),
        revoked_certificates: Vec::new(),
    };
    let mut provide = |comuni: &[&str], node: &str| {
        for istat in comuni {
            file.provisions.push(ProvisionEntry {
                comune: (*istat).to_owned(),
                function: "quality".to_owned(),
                node: node.to_owned(),
            });
        }
    };
    provide(&[A, B, C, D], "valle");
    provide(&[E, F], "costa");
    for (id, _, comuni) in extra {
        provide(comuni, id);
    }
    for (id, endpoint, _) in extra {
        file.nodes.push(NodeEntry {
            node_id: (*id).to_owned(),
            endpoint: endpoint.clone(),
        });
    }
    let path = root.join("directory.toml");
    std::fs::write(&path, toml::to_string(&file).expect("toml")).expect("written");
    let gateway = unione_gateway::start(GatewayConfig {
        benchmark_refresh_ms: refresh_ms,
        benchmark_max_age_ms: max_age_ms,
        benchmark_call_timeout_ms: 2_000,
        ..support::gateway_config(root, &path, &keys)
    })
    .await
    .expect("the gateway starts");
    let channel = support::client(&gateway, root).await;
    Federation {
        _dir: dir,
        gateway,
        channel,
        admin,
        operator,
        citizen,
        nodes: vec![("valle".into(), valle), ("costa".into(), costa)],
    }
}

impl Federation {
    /// Records a measurement through the gateway, as the administrator.
    async fn record(&self, istat: &str, kpi: &str, period: &str, status: MStatus, value: f64) {
        let mut client = KpiServiceClient::new(self.channel.clone());
        let request = routed(
            istat,
            CreateMeasurementRequest {
                parent: format!("comuni/{istat}/kpis/{kpi}"),
                measurement: Some(Measurement {
                    period: period.to_owned(),
                    value,
                    status: status.into(),
                    ..Measurement::default()
                }),
                request_id: String::new(),
            },
        );
        client
            .create_measurement(support::authorized(&self.admin, request))
            .await
            .expect("the measurement is recorded");
    }

    async fn compare(
        &self,
        token: &str,
        kpi: &str,
        period: &str,
        selector: Selector,
        highlight: &str,
    ) -> Result<KpiComparison, tonic::Status> {
        let mut client = BenchmarkServiceClient::new(self.channel.clone());
        let request = tonic::Request::new(CompareKpiRequest {
            kpi: kpi.to_owned(),
            period: period.to_owned(),
            group: Some(BenchmarkGroup {
                selector: Some(selector),
            }),
            highlight_comune: highlight.to_owned(),
        });
        client
            .compare_kpi(support::authorized(token, request))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Polls a comparison of the whole federation until `done` holds.
    async fn wait_for(
        &self,
        kpi: &str,
        period: &str,
        what: &str,
        done: impl Fn(&KpiComparison) -> bool,
    ) -> KpiComparison {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let comparison = self
                .compare(&self.admin, kpi, period, Selector::Federation(true), "")
                .await
                .expect("a comparison always answers");
            if done(&comparison) {
                return comparison;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {comparison:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.gateway.stop().await.expect("the gateway stops");
        for (_, node) in self.nodes {
            node.stop().await.expect("the node stops");
        }
    }
}

fn row<'a>(c: &'a KpiComparison, istat: &str) -> &'a ComparisonRow {
    c.rows
        .iter()
        .find(|r| r.comune == format!("comuni/{istat}"))
        .unwrap_or_else(|| panic!("no row for {istat}: {c:#?}"))
}

/// One line of the table: comune, normalised value (or the missing reason), rank, band.
fn table(c: &KpiComparison) -> Vec<(String, String, i32, Band)> {
    c.rows
        .iter()
        .map(|r| {
            (
                r.comune.trim_start_matches("comuni/").to_owned(),
                match r.normalised_value {
                    Some(v) => format!("{v}"),
                    None => format!("{:?}", r.missing_reason()),
                },
                r.rank,
                r.band(),
            )
        })
        .collect()
}

fn line(istat: &str, value: &str, rank: i32, band: Band) -> (String, String, i32, Band) {
    (istat.to_owned(), value.to_owned(), rank, band)
}

/// The hand-computed tables. UQ0006 (complaints per 1,000 inhabitants, lower is better,
/// normalised) for 2025 over the federation, and UQ0001 (cases within the deadline, %, higher
/// is better, as measured) for 2026-Q1 over the valley (an even group) and two chosen comuni
/// with an outsider highlighted. Every value arrived through the gateway while the refresh
/// interval is an hour: each one shows because the gateway refreshes a comune on change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ranks_bands_and_statistics_match_the_hand_computed_tables() {
    let fed = federation(3_600_000, 7_200_000, &[]).await;
    use MStatus::{Confidential, Missing, NotApplicable, Ok as Reported};
    // UQ0006 counts; population from the directory.
    // A 20 / 10,000 -> 2.0; B 10 / 5,000 -> 2.0 (tie); C 100 / 20,000 -> 5.0;
    // D 2 / 2,000 -> 1.0; E 40 / 8,000 -> 5.0 (tie); F not applicable; G no quality office.
    for (istat, count) in [(A, 20.0), (B, 10.0), (C, 100.0), (D, 2.0), (E, 40.0)] {
        fed.record(istat, "UQ0006", "2025", Reported, count).await;
    }
    fed.record(F, "UQ0006", "2025", NotApplicable, 0.0).await;
    // UQ0001 shares: A 90, B 95, C 80, D 95, E confidential, F recorded as missing.
    for (istat, share) in [(A, 90.0), (B, 95.0), (C, 80.0), (D, 95.0)] {
        fed.record(istat, "UQ0001", "2026-Q1", Reported, share)
            .await;
    }
    fed.record(E, "UQ0001", "2026-Q1", Confidential, 0.0).await;
    fed.record(F, "UQ0001", "2026-Q1", Missing, 0.0).await;

    let complaints = fed
        .wait_for("UQ0006", "2025", "the UQ0006 values", |c| {
            c.statistics.as_ref().is_some_and(|s| s.reported_count == 5)
                && c.rows
                    .iter()
                    .any(|r| r.missing_reason() == MissingReason::NotApplicable)
        })
        .await;
    // n = 5, lower is better: D 1.0 | A, B 2.0 | C, E 5.0. Green when 4 x better <= 4, red
    // when 4 x worse <= 4.
    assert_eq!(
        table(&complaints),
        vec![
            line(D, "1", 1, Band::Green),
            line(A, "2", 2, Band::Green),
            line(B, "2", 2, Band::Green),
            line(C, "5", 4, Band::Red),
            line(E, "5", 4, Band::Red),
            line(F, "NotApplicable", 0, Band::Grey),
            line(G, "FunctionNotProvided", 0, Band::Grey),
        ]
    );
    let stats = complaints.statistics.expect("statistics");
    assert_eq!((stats.member_count, stats.reported_count), (7, 5));
    assert_eq!(stats.median, Some(2.0));
    assert_eq!(stats.mean, Some(3.0), "(1 + 2 + 2 + 5 + 5) / 5, unweighted");
    assert_eq!((stats.best, stats.worst), (Some(1.0), Some(5.0)));
    assert_eq!(row(&complaints, C).value, Some(100.0), "the raw value too");
    let kpi = complaints.kpi.expect("the KPI");
    assert_eq!((kpi.kpi_id.as_str(), kpi.target), ("UQ0006", 2.0));
    assert!(complaints.snapshot_time.is_some());

    fed.wait_for("UQ0001", "2026-Q1", "the UQ0001 values", |c| {
        c.statistics.as_ref().is_some_and(|s| s.reported_count == 4)
            && row(c, E).missing_reason() == MissingReason::Confidential
    })
    .await;
    let valley = fed
        .compare(
            &fed.operator,
            "UQ0001",
            "2026-Q1",
            Selector::PeerGroup("valle".into()),
            &format!("comuni/{E}"),
        )
        .await
        .expect("the operator of A compares");
    // n = 4, higher is better: B, D 95 | A 90 | C 80; median (95 + 90) / 2; E highlighted from
    // outside the group, confidential.
    assert_eq!(
        table(&valley),
        vec![
            line(B, "95", 1, Band::Green),
            line(D, "95", 1, Band::Green),
            line(A, "90", 3, Band::Yellow),
            line(C, "80", 4, Band::Red),
            line(E, "Confidential", 0, Band::Grey),
        ]
    );
    let stats = valley.statistics.expect("statistics");
    assert_eq!((stats.member_count, stats.reported_count), (4, 4));
    assert_eq!((stats.median, stats.mean), (Some(92.5), Some(90.0)));
    let e = row(&valley, E);
    assert!(e.highlighted && !e.in_group);

    let chosen = fed
        .compare(
            &fed.admin,
            "UQ0001",
            "2026-Q1",
            Selector::Comuni(ComuneList {
                comuni: vec![format!("comuni/{C}"), format!("comuni/{A}")],
            }),
            &format!("comuni/{B}"),
        )
        .await
        .expect("compared");
    // A 90 green, C 80 red; B (95) placed against them as a third member: best, green.
    assert_eq!(
        table(&chosen),
        vec![
            line(A, "90", 1, Band::Green),
            line(B, "95", 1, Band::Green),
            line(C, "80", 2, Band::Red),
        ]
    );
    assert_eq!(
        chosen.statistics.expect("statistics").median,
        Some(85.0),
        "the outsider counts in no statistic"
    );

    // Over the whole federation the KPI is missing in some towns, each with its reason.
    let all = fed
        .compare(
            &fed.admin,
            "UQ0001",
            "2026-Q1",
            Selector::Federation(true),
            "",
        )
        .await
        .expect("compared");
    for (istat, reason) in [
        (E, MissingReason::Confidential),
        (F, MissingReason::NotReported),
        (G, MissingReason::FunctionNotProvided),
    ] {
        assert_eq!(row(&all, istat).missing_reason(), reason, "{istat}");
    }

    // A population band and a province select from the directory.
    let band = fed
        .compare(
            &fed.admin,
            "UQ0006",
            "2025",
            Selector::PopulationBand(PopulationBand {
                min_population: 4_000,
                max_population: 10_000,
            }),
            "",
        )
        .await
        .expect("compared");
    let in_band: Vec<_> = table(&band).into_iter().map(|l| l.0).collect();
    assert_eq!(in_band, vec![A, B, E, F]);
    let province = fed
        .compare(
            &fed.admin,
            "UQ0006",
            "2025",
            Selector::Province("SP".into()),
            "",
        )
        .await
        .expect("compared");
    assert_eq!(province.statistics.expect("stats").member_count, 3);

    // Refresh on change: a correction shows in the next comparisons (the interval is an hour).
    fed.record(E, "UQ0006", "2025", Reported, 4.0).await;
    let corrected = fed
        .wait_for("UQ0006", "2025", "E's correction", |c| {
            row(c, E).normalised_value == Some(0.5)
        })
        .await;
    assert_eq!(
        (row(&corrected, E).rank, row(&corrected, E).band()),
        (1, Band::Green)
    );
    assert_eq!(row(&corrected, E).revision, 2);

    // The time series of two comuni, with the gaps and their reasons.
    let mut client = BenchmarkServiceClient::new(fed.channel.clone());
    let series = client
        .get_kpi_time_series(support::authorized(
            &fed.admin,
            tonic::Request::new(GetKpiTimeSeriesRequest {
                kpi: "UQ0006".into(),
                comuni: vec![format!("comuni/{A}"), format!("comuni/{F}")],
                from_period: "2024".into(),
                to_period: "2025".into(),
            }),
        ))
        .await
        .expect("a series")
        .into_inner();
    let points: Vec<Vec<(String, Option<f64>, MissingReason)>> = series
        .series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .map(|p| (p.period.clone(), p.normalised_value, p.missing_reason()))
                .collect()
        })
        .collect();
    assert_eq!(
        points,
        vec![
            vec![
                ("2024".into(), None, MissingReason::NotReported),
                ("2025".into(), Some(2.0), MissingReason::Unspecified),
            ],
            vec![
                ("2024".into(), None, MissingReason::NotReported),
                ("2025".into(), None, MissingReason::NotApplicable),
            ],
        ]
    );

    // The pickers: the KPIs with the periods that have values, and the groups.
    let kpis = client
        .list_benchmark_kpis(support::authorized(
            &fed.admin,
            tonic::Request::new(ListBenchmarkKpisRequest::default()),
        ))
        .await
        .expect("KPIs")
        .into_inner();
    let uq0006 = kpis
        .kpis
        .iter()
        .find(|k| k.kpi.as_ref().is_some_and(|k| k.kpi_id == "UQ0006"))
        .expect("UQ0006 listed");
    assert_eq!(uq0006.periods.len(), 1);
    assert_eq!(
        (
            uq0006.periods[0].period.as_str(),
            uq0006.periods[0].reported_count
        ),
        ("2025", 5)
    );
    let groups = client
        .list_benchmark_groups(support::authorized(
            &fed.admin,
            tonic::Request::new(ListBenchmarkGroupsRequest::default()),
        ))
        .await
        .expect("groups")
        .into_inner();
    let listed: Vec<_> = groups
        .groups
        .iter()
        .map(|g| {
            (
                g.id.as_str(),
                g.member_count,
                g.min_population,
                g.max_population,
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("costa", 3, 1_000, 8_000),
            ("valle", 4, 2_000, 20_000),
            ("MS", 4, 2_000, 20_000),
            ("SP", 3, 1_000, 8_000),
        ]
    );

    // Bad input is refused, naming the field; citizens may not compare.
    for (kpi, period, field) in [("UQ9999", "2025", "kpi"), ("UQ0006", "2025-Q1", "period")] {
        let err = fed
            .compare(&fed.admin, kpi, period, Selector::Federation(true), "")
            .await
            .expect_err("refused");
        assert_eq!(
            unione_kit::error::reason_and_field(&err).1.as_deref(),
            Some(field),
            "{err:?}"
        );
    }
    let err = fed
        .compare(
            &fed.citizen,
            "UQ0006",
            "2025",
            Selector::Federation(true),
            "",
        )
        .await
        .expect_err("citizens do not compare");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    fed.stop().await;
}

/// A member whose node is down during a comparison is listed as missing, unreachable, with the
/// reason; the comparison answers and ranks the others. A node that never answered is
/// unreachable from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_down_during_a_comparison_is_listed_unreachable() {
    // A port nothing listens on.
    let ghost = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("https://{}", listener.local_addr().expect("address"))
    };
    let mut fed = federation(200, 1_000, &[("ghost", ghost, &[G])]).await;
    for (istat, share) in [(A, 90.0), (B, 95.0), (E, 70.0), (F, 60.0)] {
        fed.record(istat, "UQ0001", "2026-Q1", MStatus::Ok, share)
            .await;
    }
    fed.wait_for("UQ0001", "2026-Q1", "four values", |c| {
        c.statistics.as_ref().is_some_and(|s| s.reported_count == 4)
            && row(c, G).missing_reason() == MissingReason::Unreachable
    })
    .await;

    let (_, costa) = fed.nodes.pop().expect("the costa node");
    costa.stop().await.expect("the costa node stops");
    let comparison = fed
        .wait_for("UQ0001", "2026-Q1", "the costa members unreachable", |c| {
            row(c, E).missing_reason() == MissingReason::Unreachable
                && row(c, F).missing_reason() == MissingReason::Unreachable
        })
        .await;
    assert_eq!(
        table(&comparison)[..2],
        [line(B, "95", 1, Band::Green), line(A, "90", 2, Band::Red)]
    );
    for istat in [E, F, G] {
        let r = row(&comparison, istat);
        assert_eq!(r.band(), Band::Grey);
        assert!(
            !r.missing_detail.is_empty(),
            "{istat} says why: {comparison:#?}"
        );
    }
    assert!(row(&comparison, E).missing_detail.contains("costa"));
    assert!(row(&comparison, G).missing_detail.contains("ghost"));
    assert_eq!(comparison.statistics.expect("stats").reported_count, 2);
    fed.stop().await;
}
