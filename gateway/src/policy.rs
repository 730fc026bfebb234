//! Who may call what: the gateway's one authorization table, and the guard that applies it to
//! the gateway's own services (the routing proxy applies it to everything it routes).
//!
//! Each method matches the first rule that names it, or whose prefix (ending in `/` or `.`) it
//! starts with. A rule says whether a token is needed, which roles may call, and whether the
//! call is scoped to a comune (then an operator, integrator or payment provider may act only
//! for the comuni of its token, and a federation administrator or a citizen for any: a
//! citizen's token names no comune, and the node serves them only their own records). A refusal never says whether the comune or the resource
//! exists: UNAUTHENTICATED for a missing or bad token, PERMISSION_DENIED for a valid principal
//! outside its scope.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::Code;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;
use unione_kit::ApiError;
use unione_kit::names::ROUTING_HEADER;
use unione_kit::token::{Claims, Role};

use crate::api::Authenticator;

/// Who may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with no token (rate-limited by the gateway).
    Public,
    /// A valid token with one of these roles.
    Roles(&'static [Role]),
}

/// One line of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// A method (`/pkg.Service/Method`) or a prefix of methods (`/pkg.Service/`).
    pub prefix: &'static str,
    /// Who may call.
    pub access: Access,
    /// Whether the call acts for one comune, which must be in the token's scope.
    pub comune_scoped: bool,
}

const STAFF: &[Role] = &[Role::Admin, Role::Operator, Role::Integrator];
const ANYONE_SIGNED_IN: &[Role] = &[
    Role::Admin,
    Role::Operator,
    Role::Integrator,
    Role::Citizen,
    Role::Auditor,
    Role::PaymentProvider,
];

/// Staff, and citizens on their own data.
const STAFF_AND_CITIZENS: &[Role] = &[Role::Admin, Role::Operator, Role::Integrator, Role::Citizen];

/// Payment providers, and citizens for the receipts of their own notices.
const PROVIDERS_AND_CITIZENS: &[Role] = &[Role::Admin, Role::PaymentProvider, Role::Citizen];

/// A method (the full path, never a prefix of others) that citizens may call besides staff.
const fn citizen(method: &'static str) -> Rule {
    Rule {
        prefix: method,
        access: Access::Roles(STAFF_AND_CITIZENS),
        comune_scoped: true,
    }
}

/// The table. Order matters: the first matching prefix wins, so specific methods come first.
pub const RULES: &[Rule] = &[
    // The directory's list of members is public; the rest of the directory needs a token.
    Rule {
        prefix: "/unione.federation.v1.DirectoryService/ListMembers",
        access: Access::Public,
        comune_scoped: false,
    },
    Rule {
        prefix: "/unione.federation.v1.DirectoryService/",
        access: Access::Roles(ANYONE_SIGNED_IN),
        comune_scoped: false,
    },
    Rule {
        prefix: "/unione.federation.v1.AuditService/",
        access: Access::Roles(&[Role::Admin, Role::Auditor]),
        comune_scoped: false,
    },
    // Benchmarks are aggregates (open data): staff of any comune, administrators, auditors.
    Rule {
        prefix: "/unione.federation.v1.BenchmarkService/",
        access: Access::Roles(&[Role::Admin, Role::Operator, Role::Integrator, Role::Auditor]),
        comune_scoped: false,
    },
    // Anyone may verify a certificate's code.
    Rule {
        prefix: "/unione.registry.v1.CertificateService/VerifyCertificate",
        access: Access::Public,
        comune_scoped: true,
    },
    // Citizens act on their own data through these methods only, in any member comune (a
    // citizen token names no comune); the node restricts them to their own records.
    citizen("/unione.registry.v1.ResidentService/GetResident"),
    citizen("/unione.registry.v1.ResidentService/ListResidents"),
    citizen("/unione.registry.v1.HouseholdService/GetHousehold"),
    citizen("/unione.registry.v1.HouseholdService/GetResidenceAtDate"),
    citizen("/unione.registry.v1.HouseholdService/ListResidenceEvents"),
    citizen("/unione.registry.v1.CertificateService/IssueCertificate"),
    citizen("/unione.registry.v1.CertificateService/GetCertificate"),
    citizen("/unione.registry.v1.CertificateService/ListCertificates"),
    citizen("/unione.registry.v1.CaseService/ListProcedureTypes"),
    citizen("/unione.registry.v1.CaseService/SubmitCase"),
    citizen("/unione.registry.v1.CaseService/GetCase"),
    citizen("/unione.registry.v1.CaseService/ListCases"),
    citizen("/unione.registry.v1.CaseService/ResubmitCase"),
    citizen("/unione.registry.v1.CaseService/AnswerRefusalNotice"),
    citizen("/unione.registry.v1.CaseService/WithdrawCase"),
    citizen("/unione.payments.v1.DebtPositionService/GetDebtPosition"),
    citizen("/unione.payments.v1.DebtPositionService/ListDebtPositions"),
    citizen("/unione.quality.v1.ComplaintService/CreateComplaint"),
    citizen("/unione.quality.v1.ComplaintService/GetComplaint"),
    citizen("/unione.quality.v1.ComplaintService/ListComplaints"),
    citizen("/unione.quality.v1.SurveyService/GetSurvey"),
    citizen("/unione.quality.v1.SurveyService/ListSurveys"),
    citizen("/unione.quality.v1.SurveyService/CreateSurveyResponse"),
    // A citizen finds and downloads the receipt of a notice they paid; the payment itself is
    // the provider's.
    Rule {
        prefix: "/unione.payments.v1.PaymentProviderService/GetReceipt",
        access: Access::Roles(PROVIDERS_AND_CITIZENS),
        comune_scoped: true,
    },
    Rule {
        prefix: "/unione.payments.v1.PaymentProviderService/ListReceipts",
        access: Access::Roles(PROVIDERS_AND_CITIZENS),
        comune_scoped: true,
    },
    // Payment providers make the provider calls, for the creditors they are enabled for.
    Rule {
        prefix: "/unione.payments.v1.PaymentProviderService/",
        access: Access::Roles(&[Role::Admin, Role::PaymentProvider]),
        comune_scoped: true,
    },
    // The registry's log of personal-data reads: federation administrators and auditors
    // only, for any comune (an auditor's token names none); the node refuses anyone else too.
    Rule {
        prefix: "/unione.registry.v1.AccessLogService/",
        access: Access::Roles(&[Role::Admin, Role::Auditor]),
        comune_scoped: false,
    },
    // Node to node: the origin's node delivers a move to the destination, for any member
    // comune. Only a node calling with its own certificate and no token (an integrator
    // principal `node:{id}`): the routing refuses anyone else ([`node_to_node`]), and the
    // destination checks the node serves the move's origin.
    Rule {
        prefix: "/unione.registry.v1.MoveService/DeliverMove",
        access: Access::Roles(&[Role::Integrator]),
        comune_scoped: false,
    },
    // Every other service of a comune: its staff, and federation administrators.
    Rule {
        prefix: "/unione.registry.",
        access: Access::Roles(STAFF),
        comune_scoped: true,
    },
    Rule {
        prefix: "/unione.payments.",
        access: Access::Roles(STAFF),
        comune_scoped: true,
    },
    Rule {
        prefix: "/unione.quality.",
        access: Access::Roles(STAFF),
        comune_scoped: true,
    },
];

/// The methods a node calls on another node's comune through the gateway, with its own
/// certificate and no token, for any member comune (its rule is not scoped to a comune); no
/// token may call them. Nothing else is open to a node beyond the comuni it serves.
const NODE_TO_NODE: &[&str] = &["/unione.registry.v1.MoveService/DeliverMove"];

/// True for a method only a node calling with its own certificate may call.
pub fn node_to_node(path: &str) -> bool {
    NODE_TO_NODE.contains(&path)
}

/// The rule for a method, if any (a method no rule names is not served). A rule ending in `/`
/// or `.` covers every method under it; any other names one method exactly, so that a rule
/// opening `CreateSurveyResponse` opens no `CreateSurveyResponseX` added later.
pub fn rule_for(path: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| {
        if rule.prefix.ends_with('/') || rule.prefix.ends_with('.') {
            path.starts_with(rule.prefix)
        } else {
            path == rule.prefix
        }
    })
}

/// Decides a call: the rule, the verified claims (if a token was sent and verified) and the
/// comune the call is routed for (ISTAT code), if any.
pub fn decide(rule: &Rule, claims: Option<&Claims>, comune: Option<&str>) -> Result<(), ApiError> {
    let roles = match rule.access {
        Access::Public => return Ok(()),
        Access::Roles(roles) => roles,
    };
    let Some(claims) = claims else {
        return Err(ApiError::new(
            Code::Unauthenticated,
            "TOKEN_MISSING",
            "this call needs `authorization: Bearer <token>`",
        )
        .with_metadata("header", "authorization"));
    };
    if !roles.contains(&claims.role) {
        return Err(ApiError::new(
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
            "the token's role may not make this call",
        ));
    }
    // A citizen's token names no comune: they may call for any member comune, and the node
    // serves them only their own records.
    if rule.comune_scoped && !matches!(claims.role, Role::Admin | Role::Citizen) {
        let in_scope = comune.is_some_and(|c| claims.comuni.iter().any(|own| own == c));
        if !in_scope {
            return Err(ApiError::new(
                Code::PermissionDenied,
                "COMUNE_OUT_OF_SCOPE",
                "the token does not allow acting for this comune",
            )
            .with_field(ROUTING_HEADER));
        }
    }
    Ok(())
}

/// Token buckets per key (a principal, a comune, or `public` for calls with no token), per
/// gateway instance: `per_second` calls a second, bursts of twice as many.
#[derive(Clone)]
pub struct RateLimiter {
    buckets: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
    rate: f64,
    burst: f64,
    what: &'static str,
}

/// Keys kept before idle buckets are dropped.
const MAX_BUCKETS: usize = 10_000;

impl RateLimiter {
    /// A limiter of `per_second` calls per key; `what` names the key in refusals.
    pub fn new(per_second: u32, what: &'static str) -> Self {
        let rate = f64::from(per_second.max(1));
        Self {
            buckets: Arc::new(Mutex::new(HashMap::new())),
            rate,
            burst: rate * 2.0,
            what,
        }
    }

    /// Takes one call from `key`'s bucket, or RESOURCE_EXHAUSTED (reason `RATE_LIMITED`).
    pub fn admit(&self, key: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            // Full buckets of idle keys carry no information: drop them.
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, last)| {
                *tokens + now.duration_since(*last).as_secs_f64() * rate < burst
            });
        }
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(ApiError::new(
                Code::ResourceExhausted,
                "RATE_LIMITED",
                format!("too many calls for this {}; retry later", self.what),
            )
            .with_metadata("limit", self.what))
        }
    }
}

/// Applies the table to one of the gateway's own services: verifies the token when the rule
/// needs one, puts the claims in the request's extensions, and refuses what the rule refuses.
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    auth: Authenticator,
    public: RateLimiter,
}

impl<S> Guard<S> {
    /// Guards `inner`; calls with no token to public methods take from `public`.
    pub fn new(inner: S, auth: Authenticator, public: RateLimiter) -> Self {
        Self {
            inner,
            auth,
            public,
        }
    }
}

impl<S: NamedService> NamedService for Guard<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<http::Request<Body>> for Guard<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let header = request
            .headers()
            .get("authorization")
            .map(|v| v.as_bytes().to_vec());
        let verdict = (|| {
            let rule = rule_for(&path).ok_or_else(|| {
                ApiError::new(
                    Code::Unimplemented,
                    "UNKNOWN_METHOD",
                    format!("{path} is not served here"),
                )
            })?;
            let claims = match (rule.access, header) {
                (Access::Public, None) => {
                    self.public.admit("public")?;
                    None
                }
                (_, header) => Some(
                    self.auth
                        .authenticate(header.as_deref())
                        .map_err(ApiErrorOrStatus::Status)?,
                ),
            };
            decide(rule, claims.as_ref(), None)?;
            Ok::<_, ApiErrorOrStatus>(claims)
        })();
        match verdict {
            Ok(claims) => {
                if let Some(claims) = claims {
                    request.extensions_mut().insert(claims);
                }
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(inner.call(request))
            }
            Err(refusal) => {
                let status = refusal.into_status();
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

/// A refusal from the table (an [`ApiError`]) or from token verification (a status).
pub enum ApiErrorOrStatus {
    /// From the table.
    Api(ApiError),
    /// From the token check.
    Status(tonic::Status),
}

impl From<ApiError> for ApiErrorOrStatus {
    fn from(err: ApiError) -> Self {
        Self::Api(err)
    }
}

impl ApiErrorOrStatus {
    /// The status to answer with.
    pub fn into_status(self) -> tonic::Status {
        match self {
            Self::Api(err) => err.into(),
            Self::Status(status) => status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(role: Role, comuni: &[&str]) -> Claims {
        Claims {
            iss: "unione".into(),
            sub: "u".into(),
            role,
            comuni: comuni.iter().map(|c| (*c).to_owned()).collect(),
            fiscal_number: None,
            iat: 0,
            nbf: None,
            exp: i64::MAX,
        }
    }

    const METHODS: &[&str] = &[
        "/unione.federation.v1.DirectoryService/ListMembers",
        "/unione.federation.v1.DirectoryService/GetFederationHealth",
        "/unione.federation.v1.AuditService/VerifyAuditLog",
        "/unione.registry.v1.CertificateService/VerifyCertificate",
        "/unione.registry.v1.ResidentService/ListResidents",
        "/unione.registry.v1.ProtocolService/CreateRegistration",
        "/unione.payments.v1.DebtPositionService/CreateDebtPosition",
        "/unione.payments.v1.PaymentProviderService/SendReceipt",
        "/unione.quality.v1.KpiService/ListKpis",
        // What citizens may call, for their own data, and staff methods beside them.
        "/unione.registry.v1.ResidentService/GetResident",
        "/unione.registry.v1.ResidentService/CreateResident",
        "/unione.registry.v1.HouseholdService/GetHousehold",
        "/unione.registry.v1.HouseholdService/CreateHousehold",
        "/unione.registry.v1.CertificateService/IssueCertificate",
        "/unione.registry.v1.CertificateService/GetCertificate",
        "/unione.registry.v1.CertificateService/ListCertificates",
        "/unione.registry.v1.CaseService/SubmitCase",
        "/unione.registry.v1.CaseService/ResubmitCase",
        "/unione.registry.v1.CaseService/TakeCaseInCharge",
        "/unione.registry.v1.CaseService/CreateProcedureType",
        "/unione.payments.v1.DebtPositionService/ListDebtPositions",
        "/unione.payments.v1.PaymentProviderService/GetReceipt",
        "/unione.payments.v1.PaymentProviderService/ListReceipts",
        "/unione.payments.v1.PaymentProviderService/VerifyNotice",
        "/unione.quality.v1.ComplaintService/CreateComplaint",
        "/unione.quality.v1.ComplaintService/GetComplaint",
        "/unione.quality.v1.ComplaintService/TransitionComplaint",
        "/unione.quality.v1.SurveyService/CreateSurveyResponse",
        "/unione.quality.v1.SurveyService/CreateSurvey",
        "/unione.registry.v1.AccessLogService/ListPersonalDataAccesses",
        // Integrators here are nodes only: the routing refuses a token (`node_to_node`).
        "/unione.registry.v1.MoveService/DeliverMove",
        "/unione.registry.v1.MoveService/CreateMove",
    ];

    /// The authorization matrix: every role (and no token) against every kind of method, for
    /// its own comune (011027) and a foreign one (011020). `.` is allowed, `A` unauthenticated,
    /// `R` role not allowed, `C` comune out of scope.
    #[test]
    fn the_authorization_matrix() {
        let principals: Vec<(&str, Option<Claims>)> = vec![
            ("none", None),
            ("admin", Some(claims(Role::Admin, &[]))),
            ("operator", Some(claims(Role::Operator, &["011027"]))),
            ("integrator", Some(claims(Role::Integrator, &["011027"]))),
            ("citizen", Some(claims(Role::Citizen, &[]))),
            ("auditor", Some(claims(Role::Auditor, &[]))),
            ("psp", Some(claims(Role::PaymentProvider, &["011027"]))),
        ];
        let verdict = |method: &str, who: Option<&Claims>, comune: &str| -> char {
            let rule = rule_for(method).expect("every listed method has a rule");
            match decide(rule, who, Some(comune)) {
                Ok(()) => '.',
                Err(e) if e.code == Code::Unauthenticated => 'A',
                Err(e) if e.reason == "ROLE_NOT_ALLOWED" => 'R',
                Err(e) if e.reason == "COMUNE_OUT_OF_SCOPE" => 'C',
                Err(e) => panic!("unexpected refusal {e:?}"),
            }
        };
        let mut table = String::new();
        for method in METHODS {
            let row: String = principals
                .iter()
                .flat_map(|(_, c)| {
                    [
                        verdict(method, c.as_ref(), "011027"),
                        verdict(method, c.as_ref(), "011020"),
                        ' ',
                    ]
                })
                .collect();
            table.push_str(&format!("{row}{method}\n"));
        }
        // Columns, each own/foreign: none, admin, operator, integrator, citizen, auditor, psp.
        // A citizen's token names no comune: the listed methods are open to them in every
        // comune, and the node serves them only their own records.
        let expected = "\
.. .. .. .. .. .. .. /unione.federation.v1.DirectoryService/ListMembers
AA .. .. .. .. .. .. /unione.federation.v1.DirectoryService/GetFederationHealth
AA .. RR RR RR .. RR /unione.federation.v1.AuditService/VerifyAuditLog
.. .. .. .. .. .. .. /unione.registry.v1.CertificateService/VerifyCertificate
AA .. .C .C .. RR RR /unione.registry.v1.ResidentService/ListResidents
AA .. .C .C RR RR RR /unione.registry.v1.ProtocolService/CreateRegistration
AA .. .C .C RR RR RR /unione.payments.v1.DebtPositionService/CreateDebtPosition
AA .. RR RR RR RR .C /unione.payments.v1.PaymentProviderService/SendReceipt
AA .. .C .C RR RR RR /unione.quality.v1.KpiService/ListKpis
AA .. .C .C .. RR RR /unione.registry.v1.ResidentService/GetResident
AA .. .C .C RR RR RR /unione.registry.v1.ResidentService/CreateResident
AA .. .C .C .. RR RR /unione.registry.v1.HouseholdService/GetHousehold
AA .. .C .C RR RR RR /unione.registry.v1.HouseholdService/CreateHousehold
AA .. .C .C .. RR RR /unione.registry.v1.CertificateService/IssueCertificate
AA .. .C .C .. RR RR /unione.registry.v1.CertificateService/GetCertificate
AA .. .C .C .. RR RR /unione.registry.v1.CertificateService/ListCertificates
AA .. .C .C .. RR RR /unione.registry.v1.CaseService/SubmitCase
AA .. .C .C .. RR RR /unione.registry.v1.CaseService/ResubmitCase
AA .. .C .C RR RR RR /unione.registry.v1.CaseService/TakeCaseInCharge
AA .. .C .C RR RR RR /unione.registry.v1.CaseService/CreateProcedureType
AA .. .C .C .. RR RR /unione.payments.v1.DebtPositionService/ListDebtPositions
AA .. RR RR .. RR .C /unione.payments.v1.PaymentProviderService/GetReceipt
AA .. RR RR .. RR .C /unione.payments.v1.PaymentProviderService/ListReceipts
AA .. RR RR RR RR .C /unione.payments.v1.PaymentProviderService/VerifyNotice
AA .. .C .C .. RR RR /unione.quality.v1.ComplaintService/CreateComplaint
AA .. .C .C .. RR RR /unione.quality.v1.ComplaintService/GetComplaint
AA .. .C .C RR RR RR /unione.quality.v1.ComplaintService/TransitionComplaint
AA .. .C .C .. RR RR /unione.quality.v1.SurveyService/CreateSurveyResponse
AA .. .C .C RR RR RR /unione.quality.v1.SurveyService/CreateSurvey
AA .. RR RR RR .. RR /unione.registry.v1.AccessLogService/ListPersonalDataAccesses
AA RR RR .. RR RR RR /unione.registry.v1.MoveService/DeliverMove
AA .. .C .C RR RR RR /unione.registry.v1.MoveService/CreateMove
";
        assert_eq!(table, expected, "\n{table}");
    }

    /// Calls are limited per key: a burst of twice the rate, then refusals; keys are apart.
    #[test]
    fn calls_are_rate_limited_per_key() {
        let limiter = RateLimiter::new(5, "principal");
        let admitted = (0..20).filter(|_| limiter.admit("a").is_ok()).count();
        assert_eq!(admitted, 10);
        let err = limiter.admit("a").expect_err("limited");
        assert_eq!(
            (err.code, err.reason),
            (Code::ResourceExhausted, "RATE_LIMITED")
        );
        assert!(limiter.admit("b").is_ok(), "another key has its own bucket");
    }

    /// A citizen rule of a comune's services names one method exactly, never a service, and
    /// matches no other method; staff-only methods beside them stay closed to citizens.
    #[test]
    fn citizen_rules_name_whole_methods() {
        let citizen = claims(Role::Citizen, &[]);
        for rule in RULES {
            if decide(rule, Some(&citizen), Some("011027")).is_err() {
                continue;
            }
            let of_a_comune = ["/unione.registry.", "/unione.payments.", "/unione.quality."]
                .iter()
                .any(|area| rule.prefix.starts_with(area));
            if rule.access == Access::Public || !of_a_comune {
                continue;
            }
            let (service, method) = rule.prefix.rsplit_once('/').expect("a method path");
            assert!(
                !method.is_empty(),
                "{}: citizens get methods, not services",
                rule.prefix
            );
            assert!(service.starts_with("/unione."), "{}", rule.prefix);
            let longer = format!("{}X", rule.prefix);
            assert_ne!(
                rule_for(&longer).map(|r| r.prefix),
                Some(rule.prefix),
                "a method rule matches one method only"
            );
        }
        // Staff-only methods beside citizen ones stay closed to citizens.
        for method in [
            "/unione.quality.v1.SurveyService/CreateSurvey",
            "/unione.registry.v1.CaseService/AcceptCase",
            "/unione.registry.v1.HouseholdService/AddHouseholdMember",
            "/unione.payments.v1.DebtPositionService/InvalidateDebtPosition",
        ] {
            let rule = rule_for(method).expect("a rule");
            let err = decide(rule, Some(&citizen), Some("011027")).expect_err(method);
            assert_eq!(err.reason, "ROLE_NOT_ALLOWED", "{method}");
        }
    }

    #[test]
    fn unknown_methods_have_no_rule() {
        assert!(rule_for("/unione.other.v1.X/Y").is_none());
        assert!(rule_for("/grpc.health.v1.Health/Check").is_none());
    }
}
