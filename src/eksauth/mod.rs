//! EKS Auth: what AssumeRoleForPodIdentity needs besides HTTP and the store.
//!
//! The credential path: a pod's projected service-account token (`token`)
//! is checked against the issuers its cluster trusts (`keys`: the cluster's
//! own signing key and any registered external issuer); the association for
//! the token's namespace and service account becomes a `RoleRequest`
//! (`session`); a credential provider (`CredentialSource`, chosen by
//! `eks_auth.credentials`) answers it with temporary credentials.

pub mod grant;
pub mod issuer;
pub mod keys;
pub mod local;
pub mod provider;
pub mod session;
pub mod sts;
pub mod token;

pub use grant::CredentialGrant;
pub use issuer::{ClusterIssuer, ClusterIssuers, ExternalIssuer};
pub use keys::{SigningKey, TrustedIssuer, VerifyingKey};
pub use local::LocalProvider;
pub use provider::{IssuedCredentials, ProviderError, RoleRequest};
pub use sts::StsProvider;
pub use token::{TokenRequest, VerifiedToken, POD_IDENTITY_AUDIENCE};

use crate::config::{Config, CredentialsKind};
use crate::domain::Timestamp;

/// Why a token was refused, in the three kinds the EKS Auth model tells
/// apart; the message says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not the Model's JWT shape, or a bad parameter: InvalidParameterException.
    #[error("{0}")]
    Malformed(String),
    /// Signature, issuer, audience or claims wrong: InvalidTokenException.
    #[error("{0}")]
    Invalid(String),
    /// Past its `exp` (and the leeway): ExpiredTokenException.
    #[error("{0}")]
    Expired(String),
}

/// The credential provider `eks_auth.credentials` chose.
#[derive(Debug)]
pub enum CredentialSource {
    /// `"local"`: minted by this server.
    Local(LocalProvider),
    /// `"sts"`: AssumeRole (and the target role's) at an STS endpoint.
    Sts(StsProvider),
}

impl CredentialSource {
    /// The provider `eks_auth.credentials` names; the `sts` one reads the
    /// caller's credentials from the standard AWS chain here, once.
    pub async fn from_config(config: &Config) -> CredentialSource {
        match config.eks_auth.credentials {
            CredentialsKind::Local => CredentialSource::Local(LocalProvider),
            CredentialsKind::Sts => CredentialSource::Sts(StsProvider::from_config(config).await),
        }
    }

    /// Answers `request` with credentials, at `now`.
    pub async fn issue(
        &self,
        request: &RoleRequest,
        now: Timestamp,
    ) -> Result<IssuedCredentials, ProviderError> {
        match self {
            CredentialSource::Local(local) => local.issue(request, now),
            CredentialSource::Sts(sts) => sts.assume(request).await,
        }
    }

    /// The provider's name as the config spells it, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            CredentialSource::Local(_) => "local",
            CredentialSource::Sts(_) => "sts",
        }
    }
}
