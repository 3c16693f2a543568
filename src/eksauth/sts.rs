//! The `sts` credential provider: the role request sent to an STS endpoint
//! through the AWS SDK, as EKS does it — `AssumeRole` of the association's
//! role with the session name, the session tags (all transitive), the
//! session policy and the duration; then, when the association has a target
//! role, `AssumeRole` of the target with the `ExternalId`, signed with the
//! first role's credentials. The caller gets the last role's credentials.
//!
//! The server's own credentials (for the first call) come from the standard
//! AWS chain through `aws-config`: environment, profile, web identity,
//! container, instance metadata.
//!
//! The association's `policy` goes on the `AssumeRole` whose credentials
//! the pod gets: the target role's when there is one. A session policy
//! narrows only its own session (it does not carry across a chain), and on
//! the first session of a chain it would also have to allow
//! `sts:AssumeRole` of the target, or STS would refuse the second call.
//!
//! # Limits
//! - The target role's `AssumeRole` carries no session tags of its own: the
//!   tags reach it as transitive tags of the first session.
//! - STS caps a chained session at one hour: the target role's credentials
//!   last at most [`MAX_CHAINED_SECONDS`], whatever the configured duration.
//! - STS's throttling reads as unreachable (the client gets 503 and backs
//!   off) rather than as a refusal.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::config::{Credentials, IdentityCache, SharedHttpClient};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
use aws_sdk_sts::types::Tag;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use crate::config::Config;
use crate::domain::Timestamp;
use crate::eksauth::provider::{IssuedCredentials, ProviderError, RoleRequest};

/// Attempts per STS call: a lost connection or a 5xx is retried, quickly,
/// since a pod's SDK is waiting behind the call.
const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The whole of one STS call, retries included; the two calls of a chained
/// request take at most twice this.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest session STS grants a role assumed with another role's
/// credentials (role chaining).
pub const MAX_CHAINED_SECONDS: u32 = 3600;

/// Sends role requests to STS.
#[derive(Debug, Clone)]
pub struct StsProvider {
    client: aws_sdk_sts::Client,
    /// Where the calls go, for messages: the configured endpoint or the
    /// region's.
    endpoint: String,
}

/// The one HTTP client of the SDK: rustls with ring's cryptography (no C
/// toolchain beyond ring's own small build), and plain `http://` too, for an
/// STS stand-in on loopback.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

impl StsProvider {
    /// The provider the server's configuration asks for: `aws.region` and
    /// `eks_auth.sts.endpoint_url`.
    pub async fn from_config(config: &Config) -> StsProvider {
        Self::new(
            &config.aws.region,
            config.eks_auth.sts.endpoint_url.as_deref(),
        )
        .await
    }

    /// The provider for region `region`, calling `endpoint_url` when given,
    /// with the caller's credentials from the standard AWS chain.
    pub async fn new(region: &str, endpoint_url: Option<&str>) -> StsProvider {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .http_client(https_client());
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Self::from_sdk_config(&loader.load().await)
    }

    /// The provider of an SDK configuration made elsewhere (its region,
    /// endpoint, credentials and HTTP client), with this provider's retries
    /// and timeouts.
    pub fn from_sdk_config(sdk_config: &SdkConfig) -> StsProvider {
        let endpoint = match sdk_config.endpoint_url() {
            Some(url) => url.to_owned(),
            None => format!(
                "the STS endpoint of {}",
                sdk_config
                    .region()
                    .map(|r| r.as_ref())
                    .unwrap_or("no region")
            ),
        };
        let config = aws_sdk_sts::config::Builder::from(sdk_config)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(INITIAL_BACKOFF),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .build();
        StsProvider {
            client: aws_sdk_sts::Client::from_conf(config),
            endpoint,
        }
    }

    /// The credentials for `request`: of its role, or of its target role
    /// when it has one.
    pub async fn assume(&self, request: &RoleRequest) -> Result<IssuedCredentials, ProviderError> {
        let seconds = |s: u32| i32::try_from(s).unwrap_or(i32::MAX);
        let chained = request.target_role_arn.is_some();
        let mut call = self
            .client
            .assume_role()
            .role_arn(&request.role_arn)
            .role_session_name(&request.session_name)
            .duration_seconds(seconds(request.duration_seconds));
        if !chained {
            call = call.set_policy(request.policy.clone());
        }
        for (key, value) in &request.session_tags {
            let tag = Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| ProviderError::Refused(format!("session tag {key}: {e}")))?;
            call = call.tags(tag);
        }
        for key in &request.transitive_tag_keys {
            call = call.transitive_tag_keys(key);
        }
        let answer = call
            .send()
            .await
            .map_err(|e| self.classify(&request.role_arn, e))?;
        let Some(target) = &request.target_role_arn else {
            return issued(&request.role_arn, answer);
        };
        let first = answer.credentials().ok_or_else(|| {
            ProviderError::Unreachable(format!(
                "STS at {} answered AssumeRole of {} without credentials",
                self.endpoint, request.role_arn
            ))
        })?;
        // The target is assumed as the first role: a client of its own with
        // those credentials, and no identity cache, which would otherwise
        // keep one entry per request's credentials.
        let as_first_role = self
            .client
            .config()
            .to_builder()
            .credentials_provider(Credentials::new(
                first.access_key_id(),
                first.secret_access_key(),
                Some(first.session_token().to_owned()),
                None,
                "eks-auth-role-chain",
            ))
            .identity_cache(IdentityCache::no_cache())
            .build();
        let answer = aws_sdk_sts::Client::from_conf(as_first_role)
            .assume_role()
            .role_arn(target)
            .role_session_name(&request.session_name)
            .duration_seconds(seconds(request.duration_seconds.min(MAX_CHAINED_SECONDS)))
            .set_external_id(request.external_id.clone())
            .set_policy(request.policy.clone())
            .send()
            .await
            .map_err(|e| self.classify(target, e))?;
        issued(target, answer)
    }

    /// A refusal when STS answered no (a 4xx other than throttling), else
    /// unreachable.
    fn classify<E>(&self, role: &str, err: SdkError<E, HttpResponse>) -> ProviderError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if let SdkError::ServiceError(service) = &err {
            let code = service.err().code().unwrap_or("an unnamed error");
            let message = service.err().message().unwrap_or("no message");
            let throttled = matches!(
                code,
                "Throttling" | "ThrottlingException" | "RequestLimitExceeded"
            );
            let status = service.raw().status().as_u16();
            if !throttled && (400..500).contains(&status) {
                return ProviderError::Refused(format!(
                    "STS refused AssumeRole of {role}: {code}: {message}"
                ));
            }
            return ProviderError::Unreachable(format!(
                "STS at {} failed AssumeRole of {role}: {code}: {message}",
                self.endpoint
            ));
        }
        ProviderError::Unreachable(format!(
            "STS at {} gave no answer to AssumeRole of {role}: {}",
            self.endpoint,
            error_chain(&err)
        ))
    }
}

/// An error and its sources on one line, for a message or a log line: the
/// SDK's errors put their details in the sources, some over several lines.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    crate::failure::chain(err)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn issued(role: &str, answer: AssumeRoleOutput) -> Result<IssuedCredentials, ProviderError> {
    let incomplete = |what: &str| {
        ProviderError::Unreachable(format!("STS answered AssumeRole of {role} without {what}"))
    };
    let credentials = answer
        .credentials()
        .ok_or_else(|| incomplete("credentials"))?;
    let user = answer
        .assumed_role_user()
        .ok_or_else(|| incomplete("the assumed role user"))?;
    let expiration = credentials
        .expiration()
        .to_millis()
        .map_err(|_| incomplete("a usable expiration"))?;
    Ok(IssuedCredentials {
        access_key_id: credentials.access_key_id().to_owned(),
        secret_access_key: credentials.secret_access_key().to_owned(),
        session_token: credentials.session_token().to_owned(),
        expiration: Timestamp::from_millis(expiration),
        assumed_role_arn: user.arn().to_owned(),
        assumed_role_id: user.assumed_role_id().to_owned(),
    })
}
