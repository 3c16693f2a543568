//! The one table of wire errors, and the one place their responses are built.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

use crate::auth::AuthError;
use crate::domain::DomainError;
use crate::eksauth::{ProviderError, TokenError};
use crate::store::StoreError;

/// Every error type this server sends, with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    InvalidParameterException,
    InvalidRequestException,
    ResourceNotFoundException,
    ResourceInUseException,
    ResourceLimitExceededException,
    ServerException,
    BadRequestException,
    NotFoundException,
    /// 429: what EKS answers a client over its request rate.
    ThrottlingException,
    // The EKS Auth model's own. Its AccessDenied is 400, not the 403 of
    // AWS's front door, so it is a variant of its own with the same name.
    InvalidTokenException,
    ExpiredTokenException,
    PodIdentityAccessDeniedException,
    ServiceUnavailableException,
    // Framework errors outside the EKS model, named as smithy-rs names them (spec §1.9).
    UnknownOperationException,
    UnsupportedMediaTypeException,
    RequestEntityTooLargeException,
    /// 408: the body did not arrive within `server.body_read_timeout_seconds`.
    RequestTimeoutException,
    // Authentication errors, as AWS's front door sends them (auth.mode = "sigv4").
    MissingAuthenticationTokenException,
    IncompleteSignatureException,
    UnrecognizedClientException,
    InvalidSignatureException,
    AccessDeniedException,
}

impl ErrorType {
    pub fn status(self) -> StatusCode {
        use ErrorType::*;
        match self {
            InvalidParameterException
            | InvalidRequestException
            | ResourceLimitExceededException
            | BadRequestException
            | InvalidTokenException
            | ExpiredTokenException
            | PodIdentityAccessDeniedException => StatusCode::BAD_REQUEST,
            ResourceNotFoundException | NotFoundException | UnknownOperationException => {
                StatusCode::NOT_FOUND
            }
            ResourceInUseException => StatusCode::CONFLICT,
            ThrottlingException => StatusCode::TOO_MANY_REQUESTS,
            ServerException => StatusCode::INTERNAL_SERVER_ERROR,
            ServiceUnavailableException => StatusCode::SERVICE_UNAVAILABLE,
            UnsupportedMediaTypeException => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RequestEntityTooLargeException => StatusCode::PAYLOAD_TOO_LARGE,
            RequestTimeoutException => StatusCode::REQUEST_TIMEOUT,
            MissingAuthenticationTokenException
            | IncompleteSignatureException
            | UnrecognizedClientException
            | InvalidSignatureException
            | AccessDeniedException => StatusCode::FORBIDDEN,
        }
    }

    pub fn name(self) -> &'static str {
        use ErrorType::*;
        match self {
            InvalidParameterException => "InvalidParameterException",
            InvalidRequestException => "InvalidRequestException",
            ResourceNotFoundException => "ResourceNotFoundException",
            ResourceInUseException => "ResourceInUseException",
            ResourceLimitExceededException => "ResourceLimitExceededException",
            ServerException => "ServerException",
            BadRequestException => "BadRequestException",
            NotFoundException => "NotFoundException",
            ThrottlingException => "ThrottlingException",
            InvalidTokenException => "InvalidTokenException",
            ExpiredTokenException => "ExpiredTokenException",
            PodIdentityAccessDeniedException => "AccessDeniedException",
            ServiceUnavailableException => "ServiceUnavailableException",
            UnknownOperationException => "UnknownOperationException",
            UnsupportedMediaTypeException => "UnsupportedMediaTypeException",
            RequestEntityTooLargeException => "RequestEntityTooLargeException",
            RequestTimeoutException => "RequestTimeoutException",
            MissingAuthenticationTokenException => "MissingAuthenticationTokenException",
            IncompleteSignatureException => "IncompleteSignatureException",
            UnrecognizedClientException => "UnrecognizedClientException",
            InvalidSignatureException => "InvalidSignatureException",
            AccessDeniedException => "AccessDeniedException",
        }
    }

    /// Whether the error structure has a `clusterName` member (the Tag APIs' errors do not).
    fn has_cluster_name(self) -> bool {
        use ErrorType::*;
        matches!(
            self,
            InvalidParameterException
                | InvalidRequestException
                | ResourceNotFoundException
                | ResourceInUseException
                | ResourceLimitExceededException
                | ServerException
        )
    }
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorType,
    pub message: String,
    pub cluster_name: Option<String>,
    /// Set for status 405: the methods the path does allow.
    pub allow: Option<String>,
    pub status_override: Option<StatusCode>,
    /// Set for an error a fault rule injected: logged as a test fault, not
    /// as a failure of the server.
    pub injected: bool,
}

impl ApiError {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            cluster_name: None,
            allow: None,
            status_override: None,
            injected: false,
        }
    }

    /// An error a fault rule injected (`crate::faults`).
    pub fn injected(kind: ErrorType, message: impl Into<String>) -> Self {
        ApiError {
            injected: true,
            ..Self::new(kind, message)
        }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorType::InvalidParameterException, message)
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed(method: &str, path: &str, allow: &str) -> Self {
        let mut error = Self::new(
            ErrorType::UnknownOperationException,
            format!("{method} is not an operation on {path}; use {allow}."),
        );
        error.allow = Some(allow.to_owned());
        error.status_override = Some(StatusCode::METHOD_NOT_ALLOWED);
        error
    }

    pub fn with_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster_name = Some(cluster.into());
        self
    }

    /// The Tag APIs report every client error as BadRequest or NotFound (spec §2.6–2.8).
    pub fn for_tag_api(mut self) -> Self {
        self.kind = match self.kind {
            ErrorType::ResourceNotFoundException => ErrorType::NotFoundException,
            ErrorType::ServerException => ErrorType::ServerException,
            kind if kind.status() == StatusCode::BAD_REQUEST => ErrorType::BadRequestException,
            kind => kind,
        };
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status_override.unwrap_or_else(|| self.kind.status())
    }

    pub fn to_response(&self) -> HttpResponse {
        let mut body = serde_json::Map::new();
        body.insert("message".into(), self.message.clone().into());
        if let Some(cluster) = self
            .cluster_name
            .as_ref()
            .filter(|_| self.kind.has_cluster_name())
        {
            body.insert("clusterName".into(), cluster.clone().into());
        }
        let mut response = HttpResponse::build(self.status());
        response.insert_header(("X-Amzn-ErrorType", self.kind.name()));
        if let Some(allow) = &self.allow {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
        response
            .content_type("application/json")
            .body(serde_json::Value::Object(body).to_string())
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let kind = match &error {
            DomainError::InvalidParameter(_)
            | DomainError::TokenReused { .. }
            | DomainError::ImmutableField { .. } => ErrorType::InvalidParameterException,
            DomainError::ClusterNotFound(_) | DomainError::AssociationNotFound { .. } => {
                ErrorType::ResourceNotFoundException
            }
            DomainError::ClusterExists(_) | DomainError::AssociationExists { .. } => {
                ErrorType::ResourceInUseException
            }
            DomainError::ClusterNotWritable { .. } => ErrorType::InvalidRequestException,
            DomainError::AssociationLimitExceeded { .. } => {
                ErrorType::ResourceLimitExceededException
            }
            DomainError::TaggedResourceNotFound(_) => ErrorType::NotFoundException,
        };
        ApiError {
            kind,
            message: error.to_string(),
            cluster_name: error.cluster_name().map(ToString::to_string),
            allow: None,
            status_override: None,
            injected: false,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::MissingToken => ApiError::new(
                ErrorType::MissingAuthenticationTokenException,
                "Missing Authentication Token",
            ),
            AuthError::IncompleteSignature(message) => {
                ApiError::new(ErrorType::IncompleteSignatureException, message)
            }
            AuthError::UnrecognizedClient(message) => {
                ApiError::new(ErrorType::UnrecognizedClientException, message)
            }
            AuthError::InvalidSignature(message) => {
                ApiError::new(ErrorType::InvalidSignatureException, message)
            }
            AuthError::AccessDenied(message) => {
                ApiError::new(ErrorType::AccessDeniedException, message)
            }
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        let kind = match &error {
            TokenError::Malformed(_) => ErrorType::InvalidParameterException,
            TokenError::Invalid(_) => ErrorType::InvalidTokenException,
            TokenError::Expired(_) => ErrorType::ExpiredTokenException,
        };
        ApiError::new(kind, error.to_string())
    }
}

impl From<ProviderError> for ApiError {
    fn from(error: ProviderError) -> Self {
        match error {
            ProviderError::Refused(message) => {
                ApiError::new(ErrorType::PodIdentityAccessDeniedException, message)
            }
            ProviderError::Unreachable(message) => {
                log::warn!("credential provider unreachable: {message}");
                ApiError::new(
                    ErrorType::ServiceUnavailableException,
                    format!("The credential provider could not be reached: {message}. Retry with backoff."),
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Rejected(domain) => domain.into(),
            // The cause is logged once, when the store failed, and `/readyz` shows it.
            StoreError::Unwritable(_) => ApiError::new(
                ErrorType::ServerException,
                "The store cannot write: a storage failure stopped its writes (GET /readyz says \
                 which); nothing was acknowledged. It takes no writes until the server is \
                 restarted; reads are still served.",
            ),
            other => {
                // Opaque to the client, complete in the log: the whole source chain, once.
                log::error!("internal error: {}", crate::failure::chain(&other));
                ApiError::new(
                    ErrorType::ServerException,
                    "The server could not complete the request because of an internal error; nothing \
                     was acknowledged. Retry the request; the server log has the details.",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_follow_the_model() {
        assert_eq!(ErrorType::InvalidParameterException.status(), 400);
        assert_eq!(ErrorType::InvalidRequestException.status(), 400);
        assert_eq!(ErrorType::ResourceLimitExceededException.status(), 400);
        assert_eq!(ErrorType::ResourceNotFoundException.status(), 404);
        assert_eq!(ErrorType::ResourceInUseException.status(), 409);
        assert_eq!(ErrorType::ServerException.status(), 500);
        assert_eq!(ErrorType::BadRequestException.status(), 400);
        assert_eq!(ErrorType::NotFoundException.status(), 404);
        assert_eq!(ErrorType::MissingAuthenticationTokenException.status(), 403);
        assert_eq!(ErrorType::InvalidSignatureException.status(), 403);
        assert_eq!(ErrorType::AccessDeniedException.status(), 403);
        assert_eq!(ErrorType::ThrottlingException.status(), 429);
        assert_eq!(ErrorType::InvalidTokenException.status(), 400);
        assert_eq!(ErrorType::ExpiredTokenException.status(), 400);
        assert_eq!(ErrorType::PodIdentityAccessDeniedException.status(), 400);
        assert_eq!(ErrorType::ServiceUnavailableException.status(), 503);
    }

    #[test]
    fn token_and_provider_errors_map_to_the_eks_auth_types() {
        let kind = |e: ApiError| e.kind;
        assert_eq!(
            kind(TokenError::Malformed("m".into()).into()),
            ErrorType::InvalidParameterException
        );
        assert_eq!(
            kind(TokenError::Invalid("m".into()).into()),
            ErrorType::InvalidTokenException
        );
        assert_eq!(
            kind(TokenError::Expired("m".into()).into()),
            ErrorType::ExpiredTokenException
        );
        assert_eq!(
            kind(ProviderError::Refused("no".into()).into()),
            ErrorType::PodIdentityAccessDeniedException
        );
        assert_eq!(
            kind(ProviderError::Unreachable("down".into()).into()),
            ErrorType::ServiceUnavailableException
        );
    }

    #[test]
    fn tag_api_errors_carry_only_a_message() {
        let error = ApiError::new(ErrorType::ResourceNotFoundException, "gone")
            .with_cluster("c1")
            .for_tag_api();
        assert_eq!(error.kind, ErrorType::NotFoundException);
        let response = error.to_response();
        assert_eq!(
            response.headers().get("x-amzn-errortype").unwrap(),
            "NotFoundException"
        );
    }
}
