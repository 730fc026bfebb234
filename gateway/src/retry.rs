//! Retries of routed calls: only for methods the contract declares free of side effects, with
//! exponential backoff inside the call's deadline, and with a retry budget per node so that a
//! failing or overloaded node is not hit by a storm of retries.
//!
//! Which methods are safe to repeat is read from the proto, not written here: a method with
//! `option idempotency_level = NO_SIDE_EFFECTS` (or `IDEMPOTENT`) in its service definition is
//! retried, any other is not. A new read method needs no gateway change, like any other
//! method.
//!
//! A call is tried again only when its attempt did not get an answer from the service: the
//! node could not be reached (a transport error), or it answered UNAVAILABLE before running
//! the call (a draining or overloaded server; gRPC's retry design, A6, retries UNAVAILABLE by
//! default). The budget follows A6's retry throttling: each node holds [`BUDGET_TOKENS`]
//! tokens; a failed attempt takes one, a successful call gives back [`BUDGET_REFILL`]; retries
//! stop while the node holds half or fewer, and resume as calls succeed again.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use prost::Message;
use prost_types::method_options::IdempotencyLevel;

/// Tokens of a node's retry budget (gRPC A6 `maxTokens`), in thousandths.
pub const BUDGET_TOKENS: u32 = 10_000;
/// What a successful call gives back to the budget (A6 `tokenRatio` 0.1), in thousandths.
pub const BUDGET_REFILL: u32 = 100;
/// What a failed attempt takes from the budget, in thousandths.
const BUDGET_COST: u32 = 1_000;

/// The paths (`/package.Service/Method`) of every method whose proto declares it free of
/// side effects or idempotent, and that takes a single request message.
static REPEATABLE: LazyLock<HashSet<String>> = LazyLock::new(|| {
    repeatable_methods(unione_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set compiled into the binary decodes")
});

/// True when the method at `path` may be sent again after a failed attempt.
pub fn is_repeatable(path: &str) -> bool {
    REPEATABLE.contains(path)
}

/// The repeatable methods of an encoded `FileDescriptorSet`.
pub fn repeatable_methods(descriptor_set: &[u8]) -> Result<HashSet<String>, prost::DecodeError> {
    let set = prost_types::FileDescriptorSet::decode(descriptor_set)?;
    let mut methods = HashSet::new();
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            for method in &service.method {
                let level = method
                    .options
                    .as_ref()
                    .map_or(IdempotencyLevel::IdempotencyUnknown, |o| {
                        o.idempotency_level()
                    });
                let single_request = !method.client_streaming();
                if single_request
                    && matches!(
                        level,
                        IdempotencyLevel::NoSideEffects | IdempotencyLevel::Idempotent
                    )
                {
                    methods.insert(format!("/{package}.{}/{}", service.name(), method.name()));
                }
            }
        }
    }
    Ok(methods)
}

/// How routed calls are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles for each further one.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(1000),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first), with "equal jitter": at least
    /// half of the exponential backoff, so that retries are spread out but never bunched at
    /// once. `unit` is a uniform random number in [0, 1).
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let doubling = 2u32.saturating_pow(retry.saturating_sub(1));
        let full = self
            .initial_backoff
            .saturating_mul(doubling)
            .min(self.max_backoff);
        full / 2 + full.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }
}

/// A node's retry budget (gRPC A6 retry throttling), shared by every call routed to it.
pub struct RetryBudget {
    /// Thousandths of a token.
    tokens: AtomicU32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            tokens: AtomicU32::new(BUDGET_TOKENS),
        }
    }
}

impl RetryBudget {
    /// Records an attempt that failed in a retryable way; true when the budget still allows a
    /// retry.
    pub fn failed(&self) -> bool {
        let left = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(BUDGET_COST))
            })
            .map_or(0, |before| before.saturating_sub(BUDGET_COST));
        left > BUDGET_TOKENS / 2
    }

    /// Records a call that got its answer.
    pub fn succeeded(&self) {
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                (t < BUDGET_TOKENS).then(|| (t + BUDGET_REFILL).min(BUDGET_TOKENS))
            });
    }

    /// The tokens left, in thousandths.
    pub fn tokens(&self) -> u32 {
        self.tokens.load(Ordering::Relaxed)
    }
}

/// The time left before a call's deadline, from its `grpc-timeout` header value (an integer
/// of at most 8 digits and a unit: `H`, `M`, `S`, `m`, `u` or `n`).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A `grpc-timeout` header value for `left`, in the finest unit that fits the protocol's
/// eight digits.
pub fn format_grpc_timeout(left: Duration) -> String {
    const MAX: u128 = 99_999_999;
    if left.as_micros() <= MAX {
        format!("{}u", left.as_micros())
    } else if left.as_millis() <= MAX {
        format!("{}m", left.as_millis())
    } else {
        format!("{}S", left.as_secs().min(99_999_999))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract marks its reads free of side effects: they are retried, writes never.
    #[test]
    fn reads_are_repeatable_and_writes_are_not() {
        for read in [
            "/unione.registry.v1.ResidentService/GetResident",
            "/unione.registry.v1.ResidentService/ListResidents",
            "/unione.registry.v1.CertificateService/VerifyCertificate",
            "/unione.payments.v1.PaymentProviderService/VerifyNotice",
            "/unione.quality.v1.SurveyService/ComputeSurveyResults",
        ] {
            assert!(is_repeatable(read), "{read} is a read");
        }
        for write in [
            "/unione.registry.v1.ResidentService/CreateResident",
            "/unione.registry.v1.ProtocolService/CreateRegistration",
            "/unione.registry.v1.ProtocolService/SealDailyRegister",
            "/unione.payments.v1.PaymentProviderService/ActivatePayment",
            "/unione.payments.v1.PaymentProviderService/SendReceipt",
            "/unione.payments.v1.CostSharingService/ComputeApportionment",
            "/unione.quality.v1.KpiService/ComputeMeasurement",
            "/unione.registry.v1.MoveService/DeliverMove",
        ] {
            assert!(!is_repeatable(write), "{write} changes something");
        }
        assert!(!is_repeatable(
            "/unione.registry.v1.ResidentService/Nonsense"
        ));
    }

    /// The backoff doubles from the initial wait up to the cap, never below half of it.
    #[test]
    fn backoff_doubles_with_equal_jitter() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        };
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(50));
        assert!(p.backoff(1, 0.999_999) < Duration::from_millis(100));
        assert_eq!(p.backoff(2, 0.0), Duration::from_millis(100));
        assert_eq!(
            p.backoff(3, 0.5),
            Duration::from_millis(225),
            "capped at 300"
        );
        assert_eq!(p.backoff(40, 0.0), Duration::from_millis(150));
    }

    /// A6 throttling: with 10 tokens, the fifth failure in a row leaves 5, no longer more
    /// than half: retries stop. Successes give back a tenth each; ten of them let one retry
    /// through again.
    #[test]
    fn the_budget_stops_retries_and_refills_with_successes() {
        let budget = RetryBudget::default();
        for i in 1..=4 {
            assert!(budget.failed(), "failure {i} still leaves a retry");
        }
        assert!(!budget.failed(), "5 tokens left: no more retries");
        assert!(!budget.failed());
        assert_eq!(budget.tokens(), 4_000);
        for _ in 0..10 {
            budget.succeeded();
        }
        assert_eq!(budget.tokens(), 5_000);
        assert!(!budget.failed(), "back to 4: still throttled");
        for _ in 0..30 {
            budget.succeeded();
        }
        assert!(
            budget.failed(),
            "7 tokens, 6 after the failure: retries again"
        );
        for _ in 0..1000 {
            budget.succeeded();
        }
        assert_eq!(budget.tokens(), BUDGET_TOKENS, "never above the maximum");
    }

    #[test]
    fn grpc_timeouts_are_parsed() {
        assert_eq!(parse_grpc_timeout("30000m"), Some(Duration::from_secs(30)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("5u"), Some(Duration::from_micros(5)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "m", "123456789m", "-1m", "1x", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
        for (left, header) in [
            (Duration::from_millis(1500), "1500000u"),
            (Duration::from_secs(30), "30000000u"),
            (Duration::from_secs(100), "100000m"),
            (Duration::from_secs(200_000), "200000S"),
        ] {
            let written = format_grpc_timeout(left);
            assert_eq!(written, header);
            assert_eq!(
                parse_grpc_timeout(&written),
                Some(left),
                "{written} reads back"
            );
        }
    }
}
