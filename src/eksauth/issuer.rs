//! What the store keeps of a cluster's issuers, and the verifiers made of it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::keys::{self, KeyError, SigningKey, TrustedIssuer};
use super::token::{self, VerifiedToken};
use super::TokenError;
use crate::domain::{ClusterName, Timestamp};

/// A cluster's token issuer: its own signing key and ID, and the external
/// issuer registered for it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterIssuer {
    /// The last part of the issuer URL (`{public_url}/id/{id}`).
    pub id: String,
    /// The RS256 private key, PKCS#1 DER.
    pub signing_key: Vec<u8>,
    pub external: Option<ExternalIssuer>,
}

/// An external issuer as registered: its `iss` and its JWKS, kept as sent so
/// that it reads back the same after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIssuer {
    pub issuer: String,
    pub jwks: String,
}

impl ClusterIssuer {
    /// A new issuer with a new key. Generating an RSA key takes a while
    /// (tens of milliseconds): call it off the async executor.
    pub fn generate() -> Result<ClusterIssuer, KeyError> {
        Ok(ClusterIssuer {
            id: keys::new_issuer_id(),
            signing_key: SigningKey::generate()?.private_pkcs1_der().to_vec(),
            external: None,
        })
    }

    pub fn url(&self, public_url: &str) -> String {
        keys::issuer_url(public_url, &self.id)
    }
}

/// A cluster's issuers, read once: what signs its tokens and what checks them.
pub struct ClusterIssuers {
    pub url: String,
    pub signing_key: SigningKey,
    /// The cluster's own issuer first, then the external one.
    pub trusted: Vec<TrustedIssuer>,
    /// Tokens whose signature and claims these issuers already accepted.
    /// A pod sends the same token until the kubelet refreshes it, and an
    /// RSA signature check costs far more than the rest of a call; a token
    /// found here is only checked for expiry again. It lives as long as
    /// these issuers: a changed issuer starts with none.
    verified: Mutex<HashMap<Box<str>, VerifiedToken>>,
}

/// The most tokens `ClusterIssuers` remembers; when full it forgets them
/// all, which costs one signature check per token afterwards.
const VERIFIED_TOKENS: usize = 4096;

impl ClusterIssuers {
    pub fn new(issuer: &ClusterIssuer, public_url: &str) -> Result<ClusterIssuers, KeyError> {
        let signing_key = SigningKey::from_pkcs1_der(&issuer.signing_key)?;
        let url = issuer.url(public_url);
        let mut trusted = vec![TrustedIssuer {
            issuer: url.clone(),
            path: Some(keys::issuer_path(&issuer.id)),
            keys: vec![signing_key.verifying_key()],
        }];
        if let Some(external) = &issuer.external {
            match keys::external_issuer(&external.issuer, &external.jwks) {
                Ok(issuer) => trusted.push(issuer),
                // It was checked when registered; a JWKS this build reads
                // differently must not stop the cluster's own tokens.
                Err(e) => log::warn!("external issuer {} skipped: {e}", external.issuer),
            }
        }
        Ok(ClusterIssuers {
            url,
            signing_key,
            trusted,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Checks `token` for `cluster` at `now` (`token::verify`), remembering
    /// the tokens that pass.
    pub fn verify(
        &self,
        token: &str,
        cluster: &ClusterName,
        now: Timestamp,
    ) -> Result<VerifiedToken, TokenError> {
        let known = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned();
        if let Some(verified) = known {
            token::check_expiry(verified.expires_at.as_millis() as f64 / 1000.0, now)?;
            return Ok(verified);
        }
        let verified = token::verify(token, cluster, &self.trusted, now)?;
        let mut cache = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= VERIFIED_TOKENS {
            cache.clear();
        }
        cache.insert(token.into(), verified.clone());
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eksauth::token::{issue, TokenRequest};

    #[test]
    fn a_remembered_token_is_still_refused_once_expired_and_a_new_issuer_forgets_it() {
        let issuer = ClusterIssuer::generate().unwrap();
        let issuers = ClusterIssuers::new(&issuer, "http://127.0.0.1:1").unwrap();
        let now = Timestamp::from_millis(1_800_000_000_000);
        let request = TokenRequest {
            expiration_seconds: 600,
            ..token::tests::request()
        };
        let (token, _) = issue(&issuers.signing_key, &issuers.url, &request, now);
        let cluster = ClusterName::parse("name", "c1").unwrap();
        assert!(issuers.verify(&token, &cluster, now).is_ok());
        assert!(issuers.verify(&token, &cluster, now).is_ok(), "remembered");
        let later = now.plus_seconds(600 + 61);
        assert!(matches!(
            issuers.verify(&token, &cluster, later),
            Err(TokenError::Expired(_))
        ));
        let other =
            ClusterIssuers::new(&ClusterIssuer::generate().unwrap(), "http://127.0.0.1:1").unwrap();
        assert!(matches!(
            other.verify(&token, &cluster, now),
            Err(TokenError::Invalid(_))
        ));
    }
}
