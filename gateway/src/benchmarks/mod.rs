//! Cross-town benchmarks (issue 7; DOMAIN.md, Quality and benchmarks): any standard KPI
//! compared across chosen comuni, a peer group, a province, a population band or the whole
//! federation, served by the gateway itself as `unione.federation.v1.BenchmarkService`.
//!
//! Three hops, as elsewhere: [`api`] (handlers: decode, select the group, map errors) over
//! [`compare`] (ranks, bands and statistics; no I/O) and [`snapshot`] (the published
//! measurements of every member, in the gateway's database and indexed in memory), which the
//! [`refresher`] fills from the members' nodes in the background and on change.

pub mod api;
pub mod compare;
pub mod refresher;
pub mod snapshot;

pub use api::BenchmarkApi;
pub use refresher::{Changes, Pacing, Refresher};
pub use snapshot::Snapshot;

/// The methods whose success means a member's published measurements changed: a measurement
/// recorded, or computed and recorded. (Nodes also recompute on a schedule of their own: the
/// periodic refresh picks those up.)
pub const RECORDING_METHODS: &[&str] = &[
    "/unione.quality.v1.KpiService/CreateMeasurement",
    "/unione.quality.v1.KpiService/ComputeMeasurement",
];

/// Whether an OK answer to `method` means the comune's published measurements changed.
pub fn records_measurement(method: &str) -> bool {
    RECORDING_METHODS.contains(&method)
}

#[cfg(test)]
mod tests {
    use unione_kit::token::{Claims, Role};

    use crate::policy::{decide, rule_for};

    /// Benchmarks are aggregates, open data: staff of any comune, administrators and auditors
    /// compare; citizens and payment providers do not; a token is needed.
    #[test]
    fn who_may_compare() {
        let rule = rule_for("/unione.federation.v1.BenchmarkService/CompareKpi").expect("a rule");
        let claims = |role| Claims {
            iss: "unione".into(),
            sub: "u".into(),
            role,
            comuni: vec!["011027".into()],
            fiscal_number: None,
            iat: 0,
            nbf: None,
            exp: i64::MAX,
        };
        let allowed: Vec<Role> = [
            Role::Admin,
            Role::Operator,
            Role::Integrator,
            Role::Auditor,
            Role::Citizen,
            Role::PaymentProvider,
        ]
        .into_iter()
        .filter(|role| decide(rule, Some(&claims(*role)), None).is_ok())
        .collect();
        assert_eq!(
            allowed,
            [Role::Admin, Role::Operator, Role::Integrator, Role::Auditor]
        );
        assert!(decide(rule, None, None).is_err(), "a token is needed");
    }
}
