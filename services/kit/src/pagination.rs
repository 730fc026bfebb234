//! Pagination (AIP-158): `page_size`, `page_token`, `next_page_token` on every List.
//!
//! A page token is opaque to clients: the base64url JSON of the last sort key returned and a
//! fingerprint of the request it belongs to, so a token cannot be replayed with another
//! parent or filter.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Page size when the client gives 0.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest page served; larger requests are read as this.
pub const MAX_PAGE_SIZE: i64 = 500;

/// Reads `page_size`: 0 is the default, above the maximum is the maximum, negative is refused.
pub fn page_size(requested: i32) -> Result<i64, ApiError> {
    page_size_within(requested, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
}

/// Like [`page_size`], with other bounds.
pub fn page_size_within(requested: i32, default: i64, max: i64) -> Result<i64, ApiError> {
    match requested {
        n if n < 0 => Err(ApiError::invalid(
            "page_size",
            "INVALID_PAGE_SIZE",
            "page_size must not be negative",
        )),
        0 => Ok(default),
        n => Ok(i64::from(n).min(max)),
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<K> {
    /// Fingerprint of the request (parent and filters).
    f: String,
    /// The last key of the previous page.
    k: K,
}

fn fingerprint(scope: &str) -> String {
    hex::encode(&Sha256::digest(scope.as_bytes())[..8])
}

/// Encodes the token for the page after `last_key`, for requests of `scope` (e.g. the parent).
pub fn encode_token<K: Serialize>(scope: &str, last_key: &K) -> String {
    let envelope = Envelope {
        f: fingerprint(scope),
        k: last_key,
    };
    let json = serde_json::to_vec(&envelope).expect("page keys are plain serializable values");
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes `page_token` for requests of `scope`; `None` for the first page.
pub fn decode_token<K: DeserializeOwned>(scope: &str, token: &str) -> Result<Option<K>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        ApiError::invalid(
            "page_token",
            "INVALID_PAGE_TOKEN",
            "page_token is not valid for this request",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let envelope: Envelope<K> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if envelope.f != fingerprint(scope) {
        return Err(invalid());
    }
    Ok(Some(envelope.k))
}

/// Given rows fetched with `LIMIT page_size + 1`, trims the extra row and returns the token
/// for the next page (empty on the last page).
pub fn finish_page<T, K: Serialize>(
    rows: &mut Vec<T>,
    page_size: i64,
    scope: &str,
    key: impl Fn(&T) -> K,
) -> String {
    let size = usize::try_from(page_size).unwrap_or(usize::MAX);
    if rows.len() > size {
        rows.truncate(size);
        rows.last()
            .map(|last| encode_token(scope, &key(last)))
            .unwrap_or_default()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(page_size(0).expect("ok"), 50);
        assert_eq!(page_size(7).expect("ok"), 7);
        assert_eq!(page_size(10_000).expect("ok"), 500);
        assert_eq!(
            page_size(-1).expect_err("negative").reason,
            "INVALID_PAGE_SIZE"
        );
    }

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_scope() {
        let token = encode_token("comuni/011027", &("Rossi".to_owned(), 42_i64));
        let key: Option<(String, i64)> = decode_token("comuni/011027", &token).expect("same scope");
        assert_eq!(key, Some(("Rossi".to_owned(), 42)));
        let err = decode_token::<(String, i64)>("comuni/011002", &token).expect_err("other scope");
        assert_eq!(err.reason, "INVALID_PAGE_TOKEN");
        assert!(decode_token::<i64>("x", "!!!").is_err());
    }

    #[test]
    fn finish_page_trims_the_probe_row() {
        let mut rows = vec![1, 2, 3];
        let token = finish_page(&mut rows, 2, "s", |r| *r);
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(decode_token::<i32>("s", &token).expect("valid"), Some(2));
        let mut rows = vec![1, 2];
        assert!(finish_page(&mut rows, 2, "s", |r| *r).is_empty());
    }
}
