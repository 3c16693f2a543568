//! Service-account tokens: issuing them in the shape of a Kubernetes projected
//! token, and checking one that AssumeRoleForPodIdentity receives.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::{SigningKey, TrustedIssuer};
use super::TokenError;
use crate::domain::{ClusterName, Namespace, ServiceAccountName, Timestamp};

/// The audience EKS Pod Identity tokens carry and the only one it accepts.
pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";

/// Clock skew allowed on `exp` and `nbf`, as Kubernetes' own token checks allow.
pub const LEEWAY_SECONDS: i64 = 60;

/// What `POST /admin/v1/clusters/{name}/service-account-token` asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub namespace: Namespace,
    pub service_account: ServiceAccountName,
    pub pod_name: String,
    pub pod_uid: String,
    pub audience: String,
    pub expiration_seconds: u64,
}

impl TokenRequest {
    pub const DEFAULT_EXPIRATION_SECONDS: u64 = 3600;
    /// Kubernetes' bounds for a projected token's `expirationSeconds`
    /// (at least 10 minutes) and the longest the API server grants (a day).
    pub const MIN_EXPIRATION_SECONDS: u64 = 600;
    pub const MAX_EXPIRATION_SECONDS: u64 = 86_400;
}

/// `kubernetes.io` of a projected token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaim {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serviceaccount: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
}

/// `{name, uid}` of a Kubernetes object a token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
}

/// `aud`: a string or a list of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

/// The claims of a token, every one optional so that a token lacking one is
/// refused with a message naming it rather than a parse error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// NumericDate: seconds, possibly with a fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<f64>,
    #[serde(
        rename = "kubernetes.io",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kubernetes: Option<KubernetesClaim>,
}

/// Signs a projected token for `request` with the cluster's key, issued at
/// `now`. Answers the token and its expiration.
pub fn issue(
    key: &SigningKey,
    issuer: &str,
    request: &TokenRequest,
    now: Timestamp,
) -> (String, Timestamp) {
    let iat = now.as_millis().div_euclid(1000);
    let exp = iat + request.expiration_seconds as i64;
    let claims = Claims {
        iss: Some(issuer.to_owned()),
        sub: Some(subject(&request.namespace, &request.service_account)),
        aud: Some(Audience::Many(vec![request.audience.clone()])),
        exp: Some(exp as f64),
        iat: Some(iat as f64),
        nbf: Some(iat as f64),
        kubernetes: Some(KubernetesClaim {
            namespace: Some(request.namespace.to_string()),
            serviceaccount: Some(ObjectRef {
                name: request.service_account.to_string(),
                uid: service_account_uid(issuer, &request.namespace, &request.service_account),
            }),
            pod: Some(ObjectRef {
                name: request.pod_name.clone(),
                uid: request.pod_uid.clone(),
            }),
        }),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid().to_owned());
    let token = jsonwebtoken::encode(&header, &ClaimsAsIntegers(&claims), key.encoding_key())
        .expect("an RS256 key signs any claims");
    (token, Timestamp::from_millis(exp * 1000))
}

/// Serializes the NumericDate claims as integers, as Kubernetes writes them
/// (some verifiers refuse `1700000000.0`).
struct ClaimsAsIntegers<'a>(&'a Claims);

impl Serialize for ClaimsAsIntegers<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(self.0).map_err(serde::ser::Error::custom)?;
        for claim in ["exp", "iat", "nbf"] {
            if let Some(n) = value.get(claim).and_then(serde_json::Value::as_f64) {
                value[claim] = serde_json::Value::from(n as i64);
            }
        }
        value.serialize(serializer)
    }
}

/// `system:serviceaccount:NAMESPACE:NAME`.
pub fn subject(namespace: &Namespace, service_account: &ServiceAccountName) -> String {
    format!("system:serviceaccount:{namespace}:{service_account}")
}

/// The service account's `uid` in tokens this server issues: there is no
/// Kubernetes object behind it, so a UUID derived from the issuer and the
/// names keeps it stable for the same service account.
fn service_account_uid(
    issuer: &str,
    namespace: &Namespace,
    service_account: &ServiceAccountName,
) -> String {
    let digest = Sha256::digest(format!("{issuer}\0{namespace}\0{service_account}"));
    let bytes: [u8; 16] = digest[..16].try_into().expect("a SHA-256 has 32 bytes");
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// What a valid token says about the pod that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub issuer: String,
    pub namespace: Namespace,
    pub service_account: ServiceAccountName,
    /// Empty when the token is not bound to a pod.
    pub pod_name: String,
    pub pod_uid: String,
    pub expires_at: Timestamp,
}

/// Refuses a token whose `exp` (epoch seconds) is more than the leeway
/// before `now`.
pub fn check_expiry(exp: f64, now: Timestamp) -> Result<(), TokenError> {
    let now_seconds = now.as_millis() as f64 / 1000.0;
    if exp + (LEEWAY_SECONDS as f64) < now_seconds {
        return Err(TokenError::Expired(format!(
            "The token expired at {exp} (epoch seconds), {} seconds ago; the pod must send its \
             current projected token (the kubelet refreshes it).",
            (now_seconds - exp).round()
        )));
    }
    Ok(())
}

/// The namespace and service account a token's `kubernetes.io` claim names,
/// read without checking anything: only to know what to look up before the
/// token is verified.
pub fn claimed_subject(token: &str) -> Option<(Namespace, ServiceAccountName)> {
    let claims: Claims = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    let k8s = claims.kubernetes?;
    Some((
        Namespace::parse(k8s.namespace.as_deref()?).ok()?,
        ServiceAccountName::parse(&k8s.serviceaccount?.name).ok()?,
    ))
}

/// True when `token` has the Model's shape: three dot-separated segments of
/// `[A-Za-z0-9-_=]`.
fn matches_token_pattern(token: &str) -> bool {
    let segments: Vec<&str> = token.split('.').collect();
    segments.len() == 3
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

/// Checks `token` for `cluster`, whose tokens come from `issuers`, at `now`.
///
/// The order decides which error a token with several faults gets: its shape
/// (InvalidParameter), then who signed it and whether the signature holds
/// (InvalidToken), then its expiry (ExpiredToken), then the audience and the
/// Kubernetes claims (InvalidToken). An expired token of a stranger is thus
/// invalid, not expired.
pub fn verify(
    token: &str,
    cluster: &ClusterName,
    issuers: &[TrustedIssuer],
    now: Timestamp,
) -> Result<VerifiedToken, TokenError> {
    if !matches_token_pattern(token) {
        return Err(TokenError::Malformed(
            "token is not a JSON Web Token: it must be three base64url segments separated by \
             '.' (header.payload.signature); send the pod's projected service-account token."
                .into(),
        ));
    }
    let invalid = |why: String| TokenError::Invalid(why);
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| invalid(format!("The token's header cannot be read: {e}.")))?;
    let unverified: Claims = jsonwebtoken::dangerous::insecure_decode_claims(token)
        .map_err(|e| invalid(format!("The token's claims cannot be read: {e}.")))?;
    let Some(iss) = unverified.iss.as_deref() else {
        return Err(invalid(
            "The token has no iss claim; send a service-account token of the cluster.".into(),
        ));
    };
    let Some(issuer) = issuers.iter().find(|i| i.accepts(iss)) else {
        let known: Vec<&str> = issuers.iter().map(|i| i.issuer.as_str()).collect();
        return Err(invalid(format!(
            "The token's issuer {} is not an issuer of cluster {cluster} (it accepts {}); send \
             a token of this cluster, or register the token's issuer with PUT \
             /admin/v1/clusters/{cluster}/service-account-issuer.",
            crate::domain::shown(iss),
            known.join(", ")
        )));
    };
    let candidates = issuer.keys.iter().filter(|k| {
        k.algorithm == header.alg
            && match (&header.kid, &k.kid) {
                (Some(wanted), Some(kid)) => wanted == kid,
                _ => true,
            }
    });
    let mut validation = Validation::new(header.alg);
    // Time, audience and issuer are checked below, against `now` and with
    // messages that say which; jsonwebtoken checks only the signature.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut verified = None;
    for key in candidates {
        if let Ok(data) = jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
            verified = Some(data.claims);
            break;
        }
    }
    let Some(claims) = verified else {
        return Err(invalid(format!(
            "The token's signature does not verify with any {:?} key of issuer {iss}{}; it was \
             not signed by this cluster's issuer.",
            header.alg,
            header
                .kid
                .as_deref()
                .map(|k| format!(" (kid {})", crate::domain::shown(k)))
                .unwrap_or_default()
        )));
    };
    let now_seconds = now.as_millis() as f64 / 1000.0;
    let Some(exp) = claims.exp else {
        return Err(invalid(
            "The token has no exp claim; projected service-account tokens always expire.".into(),
        ));
    };
    check_expiry(exp, now)?;
    if let Some(nbf) = claims.nbf {
        if nbf - (LEEWAY_SECONDS as f64) > now_seconds {
            return Err(invalid(format!(
                "The token is not valid before {nbf} (epoch seconds); check the clocks of the \
                 issuer and this server."
            )));
        }
    }
    if !claims
        .aud
        .as_ref()
        .is_some_and(|a| a.contains(POD_IDENTITY_AUDIENCE))
    {
        return Err(invalid(format!(
            "The token's audience is {}, not {POD_IDENTITY_AUDIENCE}; project the token with \
             audience {POD_IDENTITY_AUDIENCE}.",
            match &claims.aud {
                None => "missing".to_owned(),
                Some(Audience::One(a)) => crate::domain::shown(a),
                Some(Audience::Many(all)) => format!("{all:?}"),
            }
        )));
    }
    let k8s = claims.kubernetes.as_ref();
    let namespace = k8s.and_then(|k| k.namespace.as_deref());
    let service_account = k8s
        .and_then(|k| k.serviceaccount.as_ref())
        .map(|s| s.name.as_str());
    let (Some(namespace), Some(service_account)) = (namespace, service_account) else {
        return Err(invalid(
            "The token has no kubernetes.io namespace and serviceaccount.name claims; send a \
             Kubernetes service-account token."
                .into(),
        ));
    };
    let namespace = Namespace::parse(namespace).map_err(|e| {
        invalid(format!(
            "The token's kubernetes.io namespace is not a namespace: {e}"
        ))
    })?;
    let service_account = ServiceAccountName::parse(service_account).map_err(|e| {
        invalid(format!(
            "The token's kubernetes.io serviceaccount.name is not a service account name: {e}"
        ))
    })?;
    let expected_sub = subject(&namespace, &service_account);
    if claims.sub.as_deref() != Some(expected_sub.as_str()) {
        return Err(invalid(format!(
            "The token's sub is {}, but its kubernetes.io claims name {expected_sub}.",
            claims
                .sub
                .as_deref()
                .map_or("missing".to_owned(), crate::domain::shown)
        )));
    }
    let pod = k8s.and_then(|k| k.pod.clone());
    Ok(VerifiedToken {
        issuer: iss.to_owned(),
        namespace,
        service_account,
        pod_name: pod.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
        pod_uid: pod.map(|p| p.uid).unwrap_or_default(),
        expires_at: Timestamp::from_millis((exp * 1000.0) as i64),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use jsonwebtoken::EncodingKey;
    use p256::pkcs8::EncodePrivateKey;

    use super::*;
    use crate::eksauth::keys::tests::test_key;
    use crate::eksauth::keys::{external_issuer, VerifyingKey};

    const ISSUER: &str = "http://127.0.0.1:8080/id/0123456789ABCDEF0123456789ABCDEF";
    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn cluster() -> ClusterName {
        ClusterName::parse("clusterName", "c1").unwrap()
    }

    /// A token request for pod `app-7d9f` of prod/app, valid an hour.
    pub(crate) fn request() -> TokenRequest {
        TokenRequest {
            namespace: Namespace::parse("prod").unwrap(),
            service_account: ServiceAccountName::parse("app").unwrap(),
            pod_name: "app-7d9f".into(),
            pod_uid: "2b7c0f52-4d1e-4d36-9a55-1f4f4a0f8d11".into(),
            audience: POD_IDENTITY_AUDIENCE.into(),
            expiration_seconds: 3600,
        }
    }

    fn own_issuer() -> Vec<TrustedIssuer> {
        vec![TrustedIssuer {
            issuer: ISSUER.into(),
            path: Some("/id/0123456789ABCDEF0123456789ABCDEF".into()),
            keys: vec![test_key().verifying_key()],
        }]
    }

    /// Signs arbitrary claims with the cluster's key, for the malformed cases.
    fn signed(claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(test_key().kid().to_owned());
        jsonwebtoken::encode(&header, claims, test_key().encoding_key()).unwrap()
    }

    fn base_claims() -> serde_json::Value {
        let now = NOW.as_millis() / 1000;
        serde_json::json!({
            "iss": ISSUER, "sub": "system:serviceaccount:prod:app",
            "aud": [POD_IDENTITY_AUDIENCE], "exp": now + 600, "iat": now, "nbf": now,
            "kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "app", "uid": "u"},
                              "pod": {"name": "p", "uid": "pu"}}
        })
    }

    #[test]
    fn an_issued_token_verifies_and_names_the_pod() {
        let (token, expiration) = issue(test_key(), ISSUER, &request(), NOW);
        assert_eq!(expiration, NOW.plus_seconds(3600));
        let verified = verify(&token, &cluster(), &own_issuer(), NOW).unwrap();
        assert_eq!(verified.namespace.as_str(), "prod");
        assert_eq!(verified.service_account.as_str(), "app");
        assert_eq!(verified.pod_name, "app-7d9f");
        assert_eq!(verified.pod_uid, "2b7c0f52-4d1e-4d36-9a55-1f4f4a0f8d11");
        assert_eq!(verified.issuer, ISSUER);
        assert_eq!(verified.expires_at, expiration);
    }

    #[test]
    fn an_issued_token_has_the_shape_of_a_kubernetes_projected_token() {
        let (token, _) = issue(test_key(), ISSUER, &request(), NOW);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(test_key().kid()));
        let claims: serde_json::Value =
            jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
        let now = NOW.as_millis() / 1000;
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["sub"], "system:serviceaccount:prod:app");
        assert_eq!(claims["aud"], serde_json::json!([POD_IDENTITY_AUDIENCE]));
        assert_eq!(claims["iat"], now);
        assert_eq!(claims["nbf"], now);
        assert_eq!(claims["exp"], now + 3600);
        let k8s = &claims["kubernetes.io"];
        assert_eq!(k8s["namespace"], "prod");
        assert_eq!(k8s["serviceaccount"]["name"], "app");
        assert_eq!(k8s["serviceaccount"]["uid"].as_str().unwrap().len(), 36);
        assert_eq!(k8s["pod"]["name"], "app-7d9f");
        assert_eq!(k8s["pod"]["uid"], "2b7c0f52-4d1e-4d36-9a55-1f4f4a0f8d11");
    }

    #[test]
    fn a_token_that_is_not_three_base64url_segments_is_an_invalid_parameter() {
        for bad in [
            "", "abc", "a.b", "a.b.c.d", "a..c", "a.b.c d", "a.b.c+", "ä.b.c",
        ] {
            let err = verify(bad, &cluster(), &own_issuer(), NOW).unwrap_err();
            assert!(matches!(err, TokenError::Malformed(_)), "{bad}: {err:?}");
        }
    }

    #[test]
    fn a_well_formed_token_that_is_not_json_is_an_invalid_token() {
        let err = verify("a.b.c", &cluster(), &own_issuer(), NOW).unwrap_err();
        assert!(matches!(err, TokenError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn a_token_of_another_issuer_is_invalid_and_the_message_says_how_to_register_it() {
        let other = "https://oidc.example/id/X";
        let (token, _) = issue(test_key(), other, &request(), NOW);
        let err = verify(&token, &cluster(), &own_issuer(), NOW).unwrap_err();
        let TokenError::Invalid(message) = err else {
            panic!("{err:?}")
        };
        assert!(
            message.contains(other) && message.contains("service-account-issuer"),
            "{message}"
        );
    }

    #[test]
    fn the_clusters_own_issuer_is_known_under_another_base_url_but_not_another_id() {
        let moved = "https://localhost:9999/id/0123456789ABCDEF0123456789ABCDEF";
        let (token, _) = issue(test_key(), moved, &request(), NOW);
        assert!(verify(&token, &cluster(), &own_issuer(), NOW).is_ok());
        for other in [
            "https://localhost:9999/id/FFFF456789ABCDEF0123456789ABCDEF",
            "/id/0123456789ABCDEF0123456789ABCDEF",
        ] {
            let (token, _) = issue(test_key(), other, &request(), NOW);
            let err = verify(&token, &cluster(), &own_issuer(), NOW).unwrap_err();
            assert!(matches!(err, TokenError::Invalid(_)), "{other}: {err:?}");
        }
    }

    #[test]
    fn a_token_signed_by_another_key_of_the_right_issuer_is_invalid() {
        let (token, _) = issue(test_key(), ISSUER, &request(), NOW);
        let (header, rest) = token.split_once('.').unwrap();
        let (payload, _) = rest.split_once('.').unwrap();
        // Same header and claims, a signature of other bytes.
        let (other, _) = issue(
            test_key(),
            ISSUER,
            &TokenRequest {
                pod_name: "other".into(),
                ..request()
            },
            NOW,
        );
        let forged = format!("{header}.{payload}.{}", other.rsplit('.').next().unwrap());
        let err = verify(&forged, &cluster(), &own_issuer(), NOW).unwrap_err();
        let TokenError::Invalid(message) = err else {
            panic!("{err:?}")
        };
        assert!(message.contains("signature"), "{message}");
    }

    #[test]
    fn a_token_expired_beyond_the_leeway_is_expired_and_within_it_still_valid() {
        let (token, expiration) = issue(test_key(), ISSUER, &request(), NOW);
        let within = expiration.plus_seconds(LEEWAY_SECONDS as u64);
        assert!(verify(&token, &cluster(), &own_issuer(), within).is_ok());
        let after = within.plus_millis(1_000);
        let err = verify(&token, &cluster(), &own_issuer(), after).unwrap_err();
        assert!(matches!(err, TokenError::Expired(_)), "{err:?}");
    }

    #[test]
    fn a_token_not_yet_valid_beyond_the_leeway_is_invalid() {
        let (token, _) = issue(test_key(), ISSUER, &request(), NOW.plus_seconds(120));
        let err = verify(&token, &cluster(), &own_issuer(), NOW).unwrap_err();
        assert!(matches!(err, TokenError::Invalid(_)), "{err:?}");
        let (token, _) = issue(test_key(), ISSUER, &request(), NOW.plus_seconds(30));
        assert!(verify(&token, &cluster(), &own_issuer(), NOW).is_ok());
    }

    #[test]
    fn a_token_for_another_audience_is_invalid_naming_the_audience_it_needs() {
        let (token, _) = issue(
            test_key(),
            ISSUER,
            &TokenRequest {
                audience: "sts.amazonaws.com".into(),
                ..request()
            },
            NOW,
        );
        let err = verify(&token, &cluster(), &own_issuer(), NOW).unwrap_err();
        let TokenError::Invalid(message) = err else {
            panic!("{err:?}")
        };
        assert!(message.contains(POD_IDENTITY_AUDIENCE), "{message}");
        // A plain-string aud is read too.
        let mut claims = base_claims();
        claims["aud"] = POD_IDENTITY_AUDIENCE.into();
        assert!(verify(&signed(&claims), &cluster(), &own_issuer(), NOW).is_ok());
    }

    #[test]
    fn a_token_without_kubernetes_claims_or_with_a_mismatched_sub_is_invalid() {
        let mut no_k8s = base_claims();
        no_k8s.as_object_mut().unwrap().remove("kubernetes.io");
        let mut no_sa = base_claims();
        no_sa["kubernetes.io"]
            .as_object_mut()
            .unwrap()
            .remove("serviceaccount");
        let mut bad_ns = base_claims();
        bad_ns["kubernetes.io"]["namespace"] = "Prod!".into();
        let mut other_sub = base_claims();
        other_sub["sub"] = "system:serviceaccount:prod:admin".into();
        let mut no_exp = base_claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        for claims in [no_k8s, no_sa, bad_ns, other_sub, no_exp] {
            let err = verify(&signed(&claims), &cluster(), &own_issuer(), NOW).unwrap_err();
            assert!(matches!(err, TokenError::Invalid(_)), "{claims}: {err:?}");
        }
    }

    #[test]
    fn a_token_without_a_pod_binding_verifies_with_empty_pod_fields() {
        let mut claims = base_claims();
        claims["kubernetes.io"]
            .as_object_mut()
            .unwrap()
            .remove("pod");
        let verified = verify(&signed(&claims), &cluster(), &own_issuer(), NOW).unwrap();
        assert_eq!(
            (verified.pod_name.as_str(), verified.pod_uid.as_str()),
            ("", "")
        );
    }

    /// A P-256 key pair as an external issuer's: its signer and its JWK.
    pub(crate) fn es256_key(kid: &str) -> (EncodingKey, serde_json::Value) {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        use p256::elliptic_curve::sec1::ToSec1Point;
        use p256::elliptic_curve::Generate;
        let secret = p256::SecretKey::generate();
        let der = secret.to_pkcs8_der().unwrap();
        let point = secret.public_key().to_sec1_point(false);
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        });
        (EncodingKey::from_ec_der(der.as_bytes()), jwk)
    }

    #[test]
    fn an_es256_token_of_a_registered_external_issuer_verifies() {
        let (signer, jwk) = es256_key("kind-1");
        let external = "https://kubernetes.default.svc.cluster.local";
        let mut issuers = own_issuer();
        issuers.push(
            external_issuer(external, &serde_json::json!({ "keys": [jwk] }).to_string()).unwrap(),
        );
        let mut claims = base_claims();
        claims["iss"] = external.into();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("kind-1".into());
        let token = jsonwebtoken::encode(&header, &claims, &signer).unwrap();
        let verified = verify(&token, &cluster(), &issuers, NOW).unwrap();
        assert_eq!(verified.issuer, external);
        // Signed by a different P-256 key under the same kid: refused.
        let (impostor, _) = es256_key("kind-1");
        let forged = jsonwebtoken::encode(&header, &claims, &impostor).unwrap();
        let err = verify(&forged, &cluster(), &issuers, NOW).unwrap_err();
        assert!(matches!(err, TokenError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn a_token_whose_header_names_no_kid_is_tried_against_each_key_of_its_algorithm() {
        let other = SigningKey::generate().unwrap();
        let issuers = vec![TrustedIssuer {
            issuer: ISSUER.into(),
            path: None,
            keys: vec![
                VerifyingKey {
                    kid: None,
                    ..other.verifying_key()
                },
                VerifyingKey {
                    kid: None,
                    ..test_key().verifying_key()
                },
            ],
        }];
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &base_claims(),
            test_key().encoding_key(),
        )
        .unwrap();
        assert!(verify(&token, &cluster(), &issuers, NOW).is_ok());
    }
}
