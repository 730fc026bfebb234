//! `unione.federation.v1.DirectoryService` on the client-facing listener, served from the
//! in-memory snapshot of the directory and the prober's latest results, behind a token check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tonic::{Code, Request, Response, Status};
use unione_kit::ApiError;
use unione_kit::certs::Kind;
use unione_kit::names::parse_name;
use unione_kit::pagination;
use unione_kit::token::{Claims, TokenError, Verifier};
use unione_proto::federation::v1::directory_service_server::DirectoryService;
use unione_proto::federation::v1::{
    FederationHealth, FunctionHealth, GetFederationHealthRequest, GetMemberRequest,
    ListMembersRequest, ListMembersResponse, ListNodesRequest, ListNodesResponse,
    ListProvisionsRequest, ListProvisionsResponse, Member, MemberHealth, Node, Provision,
    ServingStatus,
};

use crate::directory::{self, Function, MemberEntry, NodeEntry};
use crate::live::DirectoryHandle;
use crate::prober::HealthBoard;

/// Page sizes of ListProvisions (the others use the kit's 50 and 500).
const PROVISIONS_DEFAULT_PAGE: i64 = 100;
const PROVISIONS_MAX_PAGE: i64 = 1000;

/// The DirectoryService implementation.
pub struct DirectoryApi {
    directory: DirectoryHandle,
    board: Arc<HealthBoard>,
}

impl DirectoryApi {
    /// Serves the directory in force, with health from `board`.
    pub fn new(directory: DirectoryHandle, board: Arc<HealthBoard>) -> Self {
        Self { directory, board }
    }
}

fn member_name(istat: &str) -> String {
    format!("comuni/{istat}")
}

fn node_name(id: &str) -> String {
    format!("nodes/{id}")
}

fn member_proto(m: &MemberEntry) -> Member {
    Member {
        name: member_name(&m.istat),
        istat_code: m.istat.clone(),
        display_name: m.name.clone(),
        fiscal_code: m.fiscal_code.clone(),
        cadastral_code: m.cadastral_code.clone(),
        population: m.population,
        province: m.province.clone(),
        peer_group: m.peer_group.clone(),
        ipa_code: m.ipa_code.clone(),
        segregation_code: m.segregation_code.clone(),
    }
}

fn node_proto(n: &NodeEntry) -> Node {
    Node {
        name: node_name(&n.node_id),
        node_id: n.node_id.clone(),
        endpoint: n.endpoint.clone(),
        certificate_identity: Kind::Node.identity(&n.node_id),
    }
}

fn provision_proto(p: &directory::Provision) -> Provision {
    Provision {
        comune: member_name(&p.comune),
        function: p.function.to_proto() as i32,
        node: node_name(&p.node),
    }
}

/// One page of `items` (sorted by `key`), after the key in `page_token`.
fn page<'a, T, K>(
    items: &'a [T],
    scope: &str,
    page_token: &str,
    page_size: i64,
    key: impl Fn(&T) -> K,
) -> Result<(&'a [T], String), ApiError>
where
    K: Ord + serde::Serialize + serde::de::DeserializeOwned,
{
    let start = match pagination::decode_token::<K>(scope, page_token)? {
        Some(last) => items.partition_point(|item| key(item) <= last),
        None => 0,
    };
    let rest = &items[start..];
    let size = usize::try_from(page_size).unwrap_or(usize::MAX);
    if rest.len() > size {
        let items = &rest[..size];
        let token = items
            .last()
            .map(|last| pagination::encode_token(scope, &key(last)))
            .unwrap_or_default();
        Ok((items, token))
    } else {
        Ok((rest, String::new()))
    }
}

#[tonic::async_trait]
impl DirectoryService for DirectoryApi {
    async fn list_members(
        &self,
        request: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        let request = request.into_inner();
        let size = pagination::page_size(request.page_size)?;
        let snapshot = self.directory.snapshot();
        let (members, next_page_token) = page(
            &snapshot.directory.members,
            "members",
            &request.page_token,
            size,
            |m| m.istat.clone(),
        )?;
        Ok(Response::new(ListMembersResponse {
            members: members.iter().map(member_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_member(
        &self,
        request: Request<GetMemberRequest>,
    ) -> Result<Response<Member>, Status> {
        let name = request.into_inner().name;
        let (istat, _) = parse_name("name", &name, &["comuni", "*"])?;
        let snapshot = self.directory.snapshot();
        let member = snapshot
            .directory
            .member(istat.as_str())
            .ok_or_else(|| ApiError::not_found("name", &name))?;
        Ok(Response::new(member_proto(member)))
    }

    async fn list_nodes(
        &self,
        request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        let request = request.into_inner();
        let size = pagination::page_size(request.page_size)?;
        let snapshot = self.directory.snapshot();
        let (nodes, next_page_token) = page(
            &snapshot.directory.nodes,
            "nodes",
            &request.page_token,
            size,
            |n| n.node_id.clone(),
        )?;
        Ok(Response::new(ListNodesResponse {
            nodes: nodes.iter().map(node_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_provisions(
        &self,
        request: Request<ListProvisionsRequest>,
    ) -> Result<Response<ListProvisionsResponse>, Status> {
        let request = request.into_inner();
        let size = pagination::page_size_within(
            request.page_size,
            PROVISIONS_DEFAULT_PAGE,
            PROVISIONS_MAX_PAGE,
        )?;
        let snapshot = self.directory.snapshot();
        let directory = &snapshot.directory;
        let (provisions, scope) = if request.comune.is_empty() {
            (directory.provisions.as_slice(), "provisions".to_owned())
        } else {
            let (istat, _) = parse_name("comune", &request.comune, &["comuni", "*"])?;
            (
                directory.provisions_of(istat.as_str()),
                format!("provisions?comune={istat}"),
            )
        };
        let (provisions, next_page_token) =
            page(provisions, &scope, &request.page_token, size, |p| {
                (p.comune.clone(), p.function)
            })?;
        Ok(Response::new(ListProvisionsResponse {
            provisions: provisions.iter().map(provision_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_federation_health(
        &self,
        _request: Request<GetFederationHealthRequest>,
    ) -> Result<Response<FederationHealth>, Status> {
        let snapshot = self.directory.snapshot();
        let directory = &snapshot.directory;
        let members = directory
            .members
            .iter()
            .map(|m| {
                let functions: Vec<FunctionHealth> = directory
                    .provisions_of(&m.istat)
                    .iter()
                    .map(|p| function_health(&self.board, &m.istat, p.function, &p.node))
                    .collect();
                MemberHealth {
                    comune: member_name(&m.istat),
                    display_name: m.name.clone(),
                    status: member_status(&functions) as i32,
                    functions,
                }
            })
            .collect();
        Ok(Response::new(FederationHealth {
            members,
            directory_version: snapshot.version,
        }))
    }
}

fn function_health(
    board: &HealthBoard,
    istat: &str,
    function: Function,
    node: &str,
) -> FunctionHealth {
    let mut health = FunctionHealth {
        function: function.to_proto() as i32,
        node: node_name(node),
        status: ServingStatus::Unspecified as i32,
        check_time: None,
        latency_micros: 0,
        detail: "not probed yet".to_owned(),
    };
    if let Some(result) = board.get(istat, function) {
        health.status = result.status as i32;
        health.check_time = Some(unione_kit::storage::timestamp(result.check_time));
        health.latency_micros = result.latency_micros;
        health.detail = result.detail;
    }
    health
}

/// SERVING when every function is; NOT_SERVING when any is not; UNSPECIFIED while some are
/// not probed yet, or when the member has no provider at all (nothing to probe).
fn member_status(functions: &[FunctionHealth]) -> ServingStatus {
    let statuses = functions.iter().map(FunctionHealth::status);
    if statuses.clone().any(|s| s == ServingStatus::NotServing) {
        ServingStatus::NotServing
    } else if !functions.is_empty() && statuses.clone().all(|s| s == ServingStatus::Serving) {
        ServingStatus::Serving
    } else {
        ServingStatus::Unspecified
    }
}

/// Checks `authorization: Bearer <token>` on every call of the service it wraps, with the
/// federation's token key; the verified claims go into the request's extensions.
#[derive(Clone)]
pub struct Authenticator {
    verifier: Verifier,
    /// Tokens already verified, with their claims, until they expire: checking an Ed25519
    /// signature on every call was a quarter of the gateway's cost per call
    /// (gateway/BENCHMARKS.md).
    verified: Arc<Mutex<HashMap<String, Claims>>>,
}

/// Verified tokens kept at most; the cache starts again when full.
const VERIFIED_TOKENS: usize = 10_000;

impl Authenticator {
    /// Verifies with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            verified: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

fn unauthenticated(reason: &'static str, message: &str) -> Status {
    ApiError::new(Code::Unauthenticated, reason, message)
        .with_metadata("header", "authorization")
        .into()
}

impl Authenticator {
    /// Verifies the `authorization` header value, `Bearer <token>`.
    pub fn authenticate(&self, header: Option<&[u8]>) -> Result<Claims, Status> {
        let Some(value) = header else {
            return Err(unauthenticated(
                "TOKEN_MISSING",
                "this call needs `authorization: Bearer <token>`",
            ));
        };
        let token = std::str::from_utf8(value)
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                unauthenticated(
                    "TOKEN_INVALID",
                    "the authorization header is not `Bearer <token>`",
                )
            })?;
        let now = chrono::Utc::now().timestamp();
        if let Some(claims) = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .filter(|c| c.exp > now)
        {
            return Ok(claims.clone());
        }
        match self.verifier.verify(token) {
            Ok(claims) => {
                tracing::debug!(sub = %claims.sub, role = ?claims.role, "token verified");
                let mut verified = self
                    .verified
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if verified.len() >= VERIFIED_TOKENS {
                    verified.clear();
                }
                verified.insert(token.to_owned(), claims.clone());
                Ok(claims)
            }
            Err(TokenError::Expired) => {
                Err(unauthenticated("TOKEN_EXPIRED", "the token has expired"))
            }
            Err(TokenError::NotYetValid) => Err(unauthenticated(
                "TOKEN_NOT_YET_VALID",
                "the token is not valid yet (nbf)",
            )),
            Err(err) => Err(unauthenticated("TOKEN_INVALID", &err.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{DirectoryFile, ProvisionEntry};
    use crate::prober::ProbeResult;
    use crate::store::Snapshot;
    use unione_kit::error::reason_and_field;
    use unione_kit::token::{Role, Signer, ensure_keys};

    fn api(members: usize) -> DirectoryApi {
        let mut file = DirectoryFile {
            nodes: vec![NodeEntry {
                node_id: "sarzana".into(),
                endpoint: "https://127.0.0.1:7401".into(),
            }],
            ..DirectoryFile::default()
        };
        for i in 0..members {
            let istat = format!("0110{:02}", i + 1);
            file.members.push(MemberEntry {
                istat: istat.clone(),
                name: format!("Comune {i}"),
                ..MemberEntry::default()
            });
            for f in ["registry", "payments"] {
                file.provisions.push(ProvisionEntry {
                    comune: istat.clone(),
                    function: f.into(),
                    node: "sarzana".into(),
                });
            }
        }
        let directory = file.validate().expect("valid");
        let live = crate::live::Live {
            snapshot: Arc::new(Snapshot {
                version: 3,
                directory,
                ..Snapshot::default()
            }),
            pools: std::collections::HashMap::new(),
        };
        DirectoryApi::new(
            DirectoryHandle::new(live, std::time::Duration::from_secs(600)),
            Arc::new(HealthBoard::default()),
        )
    }

    #[tokio::test]
    async fn lists_page_through_everything_once() {
        let api = api(7);
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = api
                .list_members(Request::new(ListMembersRequest {
                    page_size: 3,
                    page_token: token.clone(),
                }))
                .await
                .expect("lists")
                .into_inner();
            seen.extend(page.members.into_iter().map(|m| m.istat_code));
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        let expected: Vec<String> = (1..=7).map(|i| format!("0110{i:02}")).collect();
        assert_eq!(seen, expected);

        let all = api
            .list_provisions(Request::new(ListProvisionsRequest {
                comune: "comuni/011002".into(),
                page_size: 1,
                page_token: String::new(),
            }))
            .await
            .expect("lists")
            .into_inner();
        assert_eq!(all.provisions.len(), 1);
        assert_eq!(all.provisions[0].comune, "comuni/011002");
        assert_eq!(all.provisions[0].node, "nodes/sarzana");
        // A token of one comune's listing is refused for another's (AIP-158).
        let err = api
            .list_provisions(Request::new(ListProvisionsRequest {
                comune: "comuni/011003".into(),
                page_size: 1,
                page_token: all.next_page_token.clone(),
            }))
            .await
            .expect_err("foreign token");
        assert_eq!(reason_and_field(&err).0, "INVALID_PAGE_TOKEN");
        let second = api
            .list_provisions(Request::new(ListProvisionsRequest {
                comune: "comuni/011002".into(),
                page_size: 1,
                page_token: all.next_page_token,
            }))
            .await
            .expect("lists")
            .into_inner();
        assert_eq!(second.provisions.len(), 1);
        assert!(second.next_page_token.is_empty());
        assert_ne!(second.provisions[0].function, all.provisions[0].function);
    }

    #[tokio::test]
    async fn get_member_names_the_missing_resource() {
        let api = api(2);
        let m = api
            .get_member(Request::new(GetMemberRequest {
                name: "comuni/011002".into(),
            }))
            .await
            .expect("found")
            .into_inner();
        assert_eq!(m.display_name, "Comune 1");
        let err = api
            .get_member(Request::new(GetMemberRequest {
                name: "comuni/099999".into(),
            }))
            .await
            .expect_err("not a member");
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(
            reason_and_field(&err),
            ("RESOURCE_NOT_FOUND".to_owned(), Some("name".to_owned()))
        );
        let err = api
            .get_member(Request::new(GetMemberRequest {
                name: "011002".into(),
            }))
            .await
            .expect_err("not a resource name");
        assert_eq!(err.code(), Code::InvalidArgument);
    }

    #[tokio::test]
    async fn a_member_serves_only_when_all_its_functions_do() {
        let api = api(2);
        let result = |status| ProbeResult {
            node: "sarzana".into(),
            status,
            check_time: 1_700_000_000_000_000,
            latency_micros: 1200,
            detail: String::new(),
        };
        api.board.record(vec![
            (
                ("011001".into(), Function::Registry),
                result(ServingStatus::Serving),
            ),
            (
                ("011001".into(), Function::Payments),
                result(ServingStatus::Serving),
            ),
            (
                ("011002".into(), Function::Registry),
                result(ServingStatus::Serving),
            ),
            (
                ("011002".into(), Function::Payments),
                result(ServingStatus::NotServing),
            ),
        ]);
        let health = api
            .get_federation_health(Request::new(GetFederationHealthRequest {}))
            .await
            .expect("health")
            .into_inner();
        assert_eq!(health.directory_version, 3);
        let statuses: Vec<(String, ServingStatus)> = health
            .members
            .iter()
            .map(|m| (m.comune.clone(), m.status()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("comuni/011001".to_owned(), ServingStatus::Serving),
                ("comuni/011002".to_owned(), ServingStatus::NotServing)
            ]
        );
        assert_eq!(health.members[0].functions[0].latency_micros, 1200);

        let unprobed = self::api(1)
            .get_federation_health(Request::new(GetFederationHealthRequest {}))
            .await
            .expect("health")
            .into_inner();
        assert_eq!(unprobed.members[0].status(), ServingStatus::Unspecified);
    }

    #[test]
    fn tokens_are_required_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        ensure_keys(dir.path()).expect("keys");
        let signer = Signer::load(dir.path()).expect("signer");
        let auth = Authenticator::new(Verifier::load(dir.path()).expect("verifier"));
        let reason = |r: Result<unione_kit::token::Claims, Status>| {
            let status = r.expect_err("refused");
            assert_eq!(status.code(), Code::Unauthenticated);
            reason_and_field(&status).0
        };
        assert_eq!(reason(auth.authenticate(None)), "TOKEN_MISSING");
        assert_eq!(
            reason(auth.authenticate(Some(b"Basic abc"))),
            "TOKEN_INVALID"
        );
        assert_eq!(
            reason(auth.authenticate(Some(b"Bearer not.a.token"))),
            "TOKEN_INVALID"
        );
        let claims = unione_kit::token::Claims {
            iss: "unione".into(),
            sub: "admin-1".into(),
            role: Role::Admin,
            comuni: Vec::new(),
            fiscal_number: None,
            iat: 1,
            nbf: None,
            exp: 2,
        };
        let expired = format!("Bearer {}", signer.sign(&claims));
        assert_eq!(
            reason(auth.authenticate(Some(expired.as_bytes()))),
            "TOKEN_EXPIRED"
        );
        let token = format!(
            "Bearer {}",
            signer.issue("admin-1", Role::Admin, Vec::new(), None, 1)
        );
        assert_eq!(
            auth.authenticate(Some(token.as_bytes()))
                .expect("accepted")
                .role,
            Role::Admin
        );
        // Verified again from the cache; a changed token is not the cached one.
        assert_eq!(
            auth.authenticate(Some(token.as_bytes()))
                .expect("cached")
                .sub,
            "admin-1"
        );
        let forged = format!("{token}x");
        assert_eq!(
            reason(auth.authenticate(Some(forged.as_bytes()))),
            "TOKEN_INVALID"
        );
    }
}
