//! Idempotent creates (AIP-155; DOMAIN.md "Idempotency keys", after Stripe and the IETF
//! idempotency-key draft): the first response under a `request_id` is stored and replayed to
//! retries; the same key with a different request is refused; a request still in flight under
//! the key is a conflict. Keys are kept [`RETENTION`] (more than the 24 hours required).
//!
//! The response is stored in the same transaction as the write it acknowledges
//! ([`Ticket::complete`]), so a crash can never leave a write without its stored response (a
//! retry would then write twice) nor a stored response without its write.

use std::time::Duration;

use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use tonic::Code;

use crate::error::ApiError;
use crate::storage::{Database, now_micros};

/// How long keys are kept.
pub const RETENTION: Duration = Duration::from_secs(48 * 3600);
/// After this long without a stored response, a claim is taken to be abandoned (its process
/// died) and a retry may take it over: the abandoned write never committed, because the
/// response commits with it.
pub const LEASE: Duration = Duration::from_secs(60);
/// Longest accepted `request_id`.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The outcome of claiming a key.
#[derive(Debug)]
pub enum Claim {
    /// Go ahead; complete the ticket in the write's transaction.
    Proceed(Ticket),
    /// The request was already answered: this is the stored response.
    Replay(Vec<u8>),
}

/// The right to execute a request once; see [`claim`].
#[derive(Debug, Clone)]
pub struct Ticket {
    key: Option<(String, String)>,
}

/// The fingerprint of a request: SHA-256 of its encoding. Callers clear the `request_id`
/// field first, so the fingerprint covers exactly what the request asks for.
pub fn fingerprint(request: &impl Message) -> Vec<u8> {
    Sha256::digest(request.encode_to_vec()).to_vec()
}

/// Claims `request_id` within `scope` (e.g. `registry/comuni/011027/CreateResident`). An empty
/// `request_id` means the client did not ask for idempotency: always [`Claim::Proceed`].
pub async fn claim(
    db: &Database,
    scope: &str,
    request_id: &str,
    fingerprint: &[u8],
) -> Result<Claim, ApiError> {
    if request_id.is_empty() {
        return Ok(Claim::Proceed(Ticket { key: None }));
    }
    if request_id.len() > MAX_REQUEST_ID_LEN || !request_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "request_id",
            "INVALID_REQUEST_ID",
            format!(
                "request_id must be 1 to {MAX_REQUEST_ID_LEN} printable ASCII characters (a UUID is best)"
            ),
        ));
    }
    let now = now_micros();
    let mut tx = db.begin_write().await?;
    if rand::random::<u8>() < 3 {
        let horizon = now - i64::try_from(RETENTION.as_micros()).expect("retention fits i64");
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1 AND response IS NOT NULL")
            .bind(horizon)
            .execute(&mut *tx)
            .await?;
    }
    let row: Option<(Vec<u8>, Option<Vec<u8>>, i64)> = sqlx::query_as(
        "SELECT request_hash, response, claimed_at FROM idempotency_keys WHERE scope = $1 AND request_id = $2",
    )
    .bind(scope)
    .bind(request_id)
    .fetch_optional(&mut *tx)
    .await?;
    let lease = i64::try_from(LEASE.as_micros()).expect("lease fits i64");
    let outcome = match row {
        None => {
            // Two first claims can both find the key free (PostgreSQL reads committed data);
            // the second insert then does nothing, and that request is the one in flight.
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (scope, request_id, request_hash, response, claimed_at, created_at) \
                 VALUES ($1, $2, $3, NULL, $4, $4) ON CONFLICT (scope, request_id) DO NOTHING",
            )
            .bind(scope)
            .bind(request_id)
            .bind(fingerprint)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(in_flight());
            }
            Claim::Proceed(Ticket {
                key: Some((scope.to_owned(), request_id.to_owned())),
            })
        }
        Some((hash, _, _)) if hash != fingerprint => {
            return Err(ApiError::new(
                Code::AlreadyExists,
                "IDEMPOTENCY_KEY_REUSED",
                "this request_id was already used for a different request",
            )
            .with_field("request_id"));
        }
        Some((_, Some(response), _)) => Claim::Replay(response),
        Some((_, None, claimed_at)) if now - claimed_at < lease => return Err(in_flight()),
        Some((_, None, _)) => {
            sqlx::query(
                "UPDATE idempotency_keys SET claimed_at = $3 WHERE scope = $1 AND request_id = $2",
            )
            .bind(scope)
            .bind(request_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Claim::Proceed(Ticket {
                key: Some((scope.to_owned(), request_id.to_owned())),
            })
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

fn in_flight() -> ApiError {
    ApiError::new(
        Code::Aborted,
        "REQUEST_IN_FLIGHT",
        "a request with this request_id is still being processed; retry later",
    )
    .with_field("request_id")
}

impl Ticket {
    /// Stores the response; call inside the transaction of the write it acknowledges.
    pub async fn complete(
        &self,
        conn: &mut AnyConnection,
        response: &impl Message,
    ) -> Result<(), sqlx::Error> {
        if let Some((scope, request_id)) = &self.key {
            sqlx::query(
                "UPDATE idempotency_keys SET response = $3 WHERE scope = $1 AND request_id = $2",
            )
            .bind(scope.as_str())
            .bind(request_id.as_str())
            .bind(response.encode_to_vec())
            .execute(conn)
            .await?;
        }
        Ok(())
    }

    /// Releases the key after a failed request, so that a corrected retry may use it.
    pub async fn abandon(self, db: &Database) {
        if let Some((scope, request_id)) = &self.key {
            let result = sqlx::query(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND request_id = $2 AND response IS NULL",
            )
            .bind(scope.as_str())
            .bind(request_id.as_str())
            .execute(db.pool())
            .await;
            if let Err(err) = result {
                // The lease expires on its own; the key is usable again after it.
                tracing::warn!(error = %err, "could not release an idempotency key");
            }
        }
    }
}

/// Runs a create idempotently: claims the key, replays a stored response, or runs `write`
/// (which must call [`Ticket::complete`] in its transaction) and releases the key if it fails.
pub async fn run<R, F, Fut>(
    db: &Database,
    scope: &str,
    request_id: &str,
    fingerprint: &[u8],
    write: F,
) -> Result<R, ApiError>
where
    R: Message + Default,
    F: FnOnce(Ticket) -> Fut,
    Fut: Future<Output = Result<R, ApiError>>,
{
    match claim(db, scope, request_id, fingerprint).await? {
        Claim::Replay(bytes) => R::decode(bytes.as_slice()).map_err(|e| ApiError::internal(&e)),
        Claim::Proceed(ticket) => {
            let release = ticket.clone();
            match write(ticket).await {
                Ok(response) => Ok(response),
                Err(err) => {
                    release.abandon(db).await;
                    Err(err)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Echo {
        #[prost(string, tag = "1")]
        text: String,
    }

    /// DOMAIN.md "Idempotency keys": the first response is replayed, the same key with a
    /// different request is an error, a request in flight is a conflict.
    #[tokio::test]
    async fn first_response_replayed_mismatch_refused_in_flight_conflicts() {
        for t in testing::all().await {
            let db = &t.db;
            let a = fingerprint(&Echo { text: "a".into() });
            let Claim::Proceed(ticket) = claim(db, "s", "k1", &a).await.expect("fresh") else {
                panic!("{}: a new key proceeds", t.label)
            };
            let err = claim(db, "s", "k1", &a).await.expect_err("in flight");
            assert_eq!(
                (err.code, err.reason),
                (Code::Aborted, "REQUEST_IN_FLIGHT"),
                "{}",
                t.label
            );

            let mut tx = db.begin_write().await.expect("tx");
            ticket
                .complete(
                    &mut tx,
                    &Echo {
                        text: "first".into(),
                    },
                )
                .await
                .expect("stored");
            tx.commit().await.expect("commit");

            match claim(db, "s", "k1", &a).await.expect("replay") {
                Claim::Replay(bytes) => assert_eq!(
                    Echo::decode(bytes.as_slice()).expect("decodes").text,
                    "first"
                ),
                Claim::Proceed(_) => panic!("{}: a completed key replays", t.label),
            }
            let b = fingerprint(&Echo { text: "b".into() });
            let err = claim(db, "s", "k1", &b).await.expect_err("mismatch");
            assert_eq!(
                (err.code, err.reason),
                (Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED"),
                "{}",
                t.label
            );
            // Keys are scoped: the same key elsewhere is independent.
            assert!(matches!(
                claim(db, "other", "k1", &b).await.expect("fresh"),
                Claim::Proceed(_)
            ));
        }
    }

    #[tokio::test]
    async fn a_failed_request_releases_its_key() {
        for t in testing::all().await {
            let fp = fingerprint(&Echo { text: "x".into() });
            let result: Result<Echo, ApiError> = run(&t.db, "s", "k2", &fp, |_ticket| async move {
                Err(ApiError::invalid("text", "BAD", "no"))
            })
            .await;
            assert_eq!(result.expect_err("fails").reason, "BAD");
            assert!(
                matches!(
                    claim(&t.db, "s", "k2", &fp).await.expect("free again"),
                    Claim::Proceed(_)
                ),
                "{}",
                t.label
            );
        }
    }

    /// Concurrent first requests under one key: exactly one proceeds, the others are told it
    /// is in flight (never an internal error), on both backends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_first_claims_let_exactly_one_proceed() {
        for t in testing::all().await {
            let fp = fingerprint(&Echo {
                text: "race".into(),
            });
            let mut tasks = Vec::new();
            for _ in 0..16 {
                let (db, fp) = (t.db.clone(), fp.clone());
                tasks.push(tokio::spawn(
                    async move { claim(&db, "race", "k", &fp).await },
                ));
            }
            let mut proceeded = 0;
            for task in tasks {
                match task.await.expect("joined") {
                    Ok(Claim::Proceed(_)) => proceeded += 1,
                    Ok(Claim::Replay(_)) => panic!("{}: nothing was completed", t.label),
                    Err(err) => assert_eq!(err.reason, "REQUEST_IN_FLIGHT", "{}", t.label),
                }
            }
            assert_eq!(proceeded, 1, "{}", t.label);
        }
    }

    #[tokio::test]
    async fn request_ids_are_checked() {
        let t = testing::sqlite().await;
        let err = claim(&t.db, "s", "has space", b"x")
            .await
            .expect_err("invalid");
        assert_eq!(err.reason, "INVALID_REQUEST_ID");
        assert!(matches!(
            claim(&t.db, "s", "", b"x").await.expect("no key"),
            Claim::Proceed(_)
        ));
    }
}
