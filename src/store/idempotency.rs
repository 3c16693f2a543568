//! Client request tokens: a write sent with a `clientRequestToken` saves its
//! answer under the token, in the same transaction, so that a retry gets the
//! same answer and another request reusing the token is refused.

use super::keys::{self, TokenScope};
use super::records::{decode, encode, SavedResponse, TokenRecord};
use super::tx::{abort, reject, Tx, TxResult};
use super::{Inner, StoreError};
use crate::domain::{ClientRequestToken, ClusterName, DomainError, Timestamp};

/// A request's token, its key in the token tree, and the request's
/// fingerprint (`records::fingerprint`).
pub(super) struct Idempotency {
    token: ClientRequestToken,
    pub(super) key: Vec<u8>,
    fingerprint: Vec<u8>,
}

impl Idempotency {
    pub(super) fn new(
        token: Option<ClientRequestToken>,
        cluster: &ClusterName,
        scope: TokenScope<'_>,
        fingerprint: Vec<u8>,
    ) -> Option<Self> {
        token.map(|token| Idempotency {
            key: keys::token(cluster, scope, &token),
            token,
            fingerprint,
        })
    }

    /// The answer saved for this token, if it is live. The same token with
    /// other parameters is refused.
    pub(super) fn replay(
        &self,
        tx: &Tx<'_>,
        cluster: &ClusterName,
        now: Timestamp,
    ) -> TxResult<Option<SavedResponse>> {
        let Some(bytes) = tx.tokens.get(&self.key)? else {
            return Ok(None);
        };
        let saved: TokenRecord = decode(&bytes).map_err(abort)?;
        if saved.expires_at() <= now {
            // Expired but not yet swept: the token is free again.
            return Ok(None);
        }
        if saved.fingerprint != self.fingerprint {
            return Err(reject(DomainError::TokenReused {
                cluster: cluster.clone(),
                token: self.token.to_string(),
            }));
        }
        Ok(Some(saved.response))
    }

    pub(super) fn save(
        &self,
        tx: &Tx<'_>,
        response: SavedResponse,
        expires_at: Timestamp,
    ) -> TxResult<()> {
        let record = TokenRecord {
            fingerprint: self.fingerprint.clone(),
            expires_at: expires_at.as_millis(),
            response,
        };
        tx.tokens.insert(&self.key[..], encode(&record))?;
        Ok(())
    }
}

/// A token whose saved answer is of another operation than the request's:
/// keys are scoped by operation, so only damage can cause it.
pub(super) fn wrong_saved_answer() -> sled::transaction::ConflictableTransactionError<StoreError> {
    abort(StoreError::Corrupt(
        "a token saved the answer of another operation".into(),
    ))
}

impl Inner {
    /// When a token saved at `now` expires.
    pub(super) fn token_expiry(&self, now: Timestamp) -> Timestamp {
        now.plus_seconds(self.settings.token_ttl_seconds)
    }
}
