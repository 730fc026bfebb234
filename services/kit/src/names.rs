//! Resource names (AIP-122) and the routing header (AIP-4222).
//!
//! Every call that concerns one comune names it in its resource name (`comuni/{istat}/...`)
//! and in the `x-goog-request-params` header (`comune=comuni%2F{istat}`). The gateway routes on
//! the header; the service checks the body against it with [`check_routed_comune`].

use tonic::metadata::MetadataMap;

use crate::error::ApiError;

/// The routing header of AIP-4222.
pub const ROUTING_HEADER: &str = "x-goog-request-params";

/// A six-digit ISTAT code of a comune, checked.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Istat(String);

impl Istat {
    /// Parses a six-digit ISTAT code.
    pub fn parse(code: &str) -> Option<Self> {
        (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then(|| Self(code.to_owned()))
    }

    /// The code, e.g. `011027`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The resource name `comuni/{istat}`.
    pub fn resource_name(&self) -> String {
        format!("comuni/{}", self.0)
    }
}

impl std::fmt::Display for Istat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Istat {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| format!("`{value}` is not a six-digit ISTAT code"))
    }
}

impl From<Istat> for String {
    fn from(value: Istat) -> Self {
        value.0
    }
}

/// Splits a resource name against a pattern of literal segments and `*` variables, returning
/// the variables. `parse_name("comuni/011027/residents/ab", &["comuni", "*", "residents", "*"])`
/// gives `["011027", "ab"]`.
pub fn match_name<'a>(name: &'a str, pattern: &[&str]) -> Option<Vec<&'a str>> {
    let segments: Vec<&str> = name.split('/').collect();
    if segments.len() != pattern.len() {
        return None;
    }
    let mut vars = Vec::new();
    for (segment, expected) in segments.iter().zip(pattern) {
        if *expected == "*" {
            if segment.is_empty() {
                return None;
            }
            vars.push(*segment);
        } else if segment != expected {
            return None;
        }
    }
    Some(vars)
}

/// Parses a resource name for `field`, or INVALID_ARGUMENT (reason `INVALID_RESOURCE_NAME`).
/// The first variable must be an ISTAT code.
pub fn parse_name<'a>(
    field: &str,
    name: &'a str,
    pattern: &[&str],
) -> Result<(Istat, Vec<&'a str>), ApiError> {
    if name.is_empty() {
        return Err(ApiError::required(field));
    }
    let invalid = || {
        ApiError::invalid(
            field,
            "INVALID_RESOURCE_NAME",
            format!("`{name}` does not match `{}`", pattern.join("/")),
        )
    };
    let vars = match_name(name, pattern).ok_or_else(invalid)?;
    let istat = vars
        .first()
        .and_then(|v| Istat::parse(v))
        .ok_or_else(invalid)?;
    Ok((istat, vars[1..].to_vec()))
}

/// Reads the comune from the routing header: `comune=comuni%2F011027`, `comune=comuni/011027`
/// or `comune=011027`, among other `&`-separated parameters.
pub fn routed_comune(metadata: &MetadataMap) -> Result<Option<Istat>, ApiError> {
    match metadata.get(ROUTING_HEADER) {
        None => Ok(None),
        Some(value) => routing_param(value.as_bytes()),
    }
}

/// Reads the comune from the value of a routing header (see [`routed_comune`]).
pub fn routing_param(value: &[u8]) -> Result<Option<Istat>, ApiError> {
    let value = std::str::from_utf8(value).map_err(|_| bad_header("not ASCII"))?;
    for pair in value.split('&') {
        let Some((key, raw)) = pair.split_once('=') else {
            continue;
        };
        if key != "comune" {
            continue;
        }
        let decoded = raw.replace("%2F", "/").replace("%2f", "/");
        let code = decoded.strip_prefix("comuni/").unwrap_or(&decoded);
        return Istat::parse(code)
            .map(Some)
            .ok_or_else(|| bad_header("the comune is not `comuni/{six-digit ISTAT code}`"));
    }
    Ok(None)
}

fn bad_header(why: &str) -> ApiError {
    ApiError::invalid(
        ROUTING_HEADER,
        "INVALID_ROUTING_HEADER",
        format!("{ROUTING_HEADER}: {why}"),
    )
}

/// The header value that routes a call to `istat`.
pub fn routing_value(istat: &Istat) -> String {
    format!("comune=comuni%2F{}", istat.as_str())
}

/// A request routed to the comune `istat` (a six-digit code), as the gateway sends it.
pub fn routed<T>(istat: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("comune=comuni%2F{istat}");
    if let Ok(value) = value.parse() {
        request.metadata_mut().insert(ROUTING_HEADER, value);
    }
    request
}

/// Checks that the comune named in the body is the one the call was routed for. A call with
/// no routing header is refused (reason `ROUTING_HEADER_MISSING`): the gateway always sets it,
/// and a node must never act for a comune it was not asked about.
pub fn check_routed_comune(
    metadata: &MetadataMap,
    body: &Istat,
    field: &str,
) -> Result<(), ApiError> {
    match routed_comune(metadata)? {
        Some(routed) if &routed == body => Ok(()),
        Some(routed) => Err(ApiError::failed_precondition(
            "ROUTING_MISMATCH",
            format!("the call was routed for comuni/{routed} but {field} names comuni/{body}"),
        )
        .with_field(field)),
        None => Err(ApiError::invalid(
            ROUTING_HEADER,
            "ROUTING_HEADER_MISSING",
            format!("the {ROUTING_HEADER} header must name the comune (comune=comuni%2F{body})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_variables() {
        let (istat, rest) = parse_name(
            "name",
            "comuni/011027/residents/r1",
            &["comuni", "*", "residents", "*"],
        )
        .expect("valid");
        assert_eq!(istat.as_str(), "011027");
        assert_eq!(rest, vec!["r1"]);
        assert!(
            parse_name(
                "name",
                "comuni/11027/residents/r1",
                &["comuni", "*", "residents", "*"]
            )
            .is_err()
        );
        assert!(
            parse_name(
                "name",
                "comuni/011027/residents/",
                &["comuni", "*", "residents", "*"]
            )
            .is_err()
        );
        assert!(
            parse_name(
                "name",
                "comuni/011027/kpis/x",
                &["comuni", "*", "residents", "*"]
            )
            .is_err()
        );
    }

    #[test]
    fn routing_header_forms_and_mismatch() {
        let istat = Istat::parse("011027").expect("valid");
        for form in [
            "comune=comuni%2F011027",
            "comune=comuni/011027",
            "x=1&comune=011027",
        ] {
            let mut md = MetadataMap::new();
            md.insert(ROUTING_HEADER, form.parse().expect("ascii"));
            assert_eq!(
                routed_comune(&md).expect("parses"),
                Some(istat.clone()),
                "{form}"
            );
            assert!(check_routed_comune(&md, &istat, "parent").is_ok());
        }
        let mut md = MetadataMap::new();
        md.insert(
            ROUTING_HEADER,
            "comune=comuni%2F011002".parse().expect("ascii"),
        );
        let err = check_routed_comune(&md, &istat, "parent").expect_err("mismatch");
        assert_eq!(err.reason, "ROUTING_MISMATCH");
        assert_eq!(err.field.as_deref(), Some("parent"));
        let err = check_routed_comune(&MetadataMap::new(), &istat, "parent").expect_err("missing");
        assert_eq!(err.reason, "ROUTING_HEADER_MISSING");
    }
}
