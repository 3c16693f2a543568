//! EKS Auth through raw HTTP: AssumeRoleForPodIdentity with tokens of the
//! cluster's own issuer and of an external one, every error it answers, the
//! credentials it mints and what the admin routes say of them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{now_seconds, role, s, Answer, Client, TestApp, CLOCK_CONTROL};

pub const AUDIENCE: &str = "pods.eks.amazonaws.com";

/// `POST /admin/v1/clusters/{cluster}/service-account-token`.
#[track_caller]
pub fn service_account_token_with(app: &Client, cluster: &str, body: &Value) -> Answer {
    app.send_json(
        "POST",
        &format!("/admin/v1/clusters/{cluster}/service-account-token"),
        body,
    )
}

/// A token of the cluster for the pod `pod` of `namespace`/`service_account`.
#[track_caller]
pub fn pod_token(app: &Client, cluster: &str, namespace: &str, service_account: &str) -> String {
    let answer = service_account_token_with(
        app,
        cluster,
        &json!({"namespace": namespace, "serviceAccount": service_account, "podName": "app-7d9f",
                "podUid": "1d4ab7a4-3c39-4f3e-8b0a-5c3d0a3f1e22"}),
    );
    s(answer.ok(), "token").to_owned()
}

/// AssumeRoleForPodIdentity with `token` for `cluster`.
#[track_caller]
pub fn assume_role(app: &Client, cluster: &str, token: &str) -> Answer {
    app.send_json(
        "POST",
        &format!("/clusters/{cluster}/assume-role-for-pod-identity"),
        &json!({ "token": token }),
    )
}

/// `GET /admin/v1/credentials/{access_key_id}`.
#[track_caller]
pub fn describe_credentials(app: &Client, access_key_id: &str) -> Answer {
    app.get(&format!("/admin/v1/credentials/{access_key_id}"))
}

/// `PUT /admin/v1/clusters/{cluster}/service-account-issuer`.
#[track_caller]
pub fn put_issuer(app: &Client, cluster: &str, body: &Value) -> Answer {
    app.send_json(
        "PUT",
        &format!("/admin/v1/clusters/{cluster}/service-account-issuer"),
        body,
    )
}

/// An issuer of the test's own, as a kind cluster's would be: its keys sign
/// tokens the test shapes as it likes.
pub struct ExternalIssuer {
    pub issuer: String,
    key: EncodingKey,
    algorithm: Algorithm,
    kid: String,
    pub jwk: Value,
}

impl ExternalIssuer {
    /// A P-256 (ES256) issuer.
    pub fn es256(issuer: &str) -> ExternalIssuer {
        use p256::elliptic_curve::sec1::ToSec1Point;
        use p256::elliptic_curve::Generate;
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::generate();
        let point = secret.public_key().to_sec1_point(false);
        let kid = "kind-es256".to_owned();
        ExternalIssuer {
            issuer: issuer.to_owned(),
            key: EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
            algorithm: Algorithm::ES256,
            jwk: json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
                        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())}),
            kid,
        }
    }

    /// An RSA (RS256) issuer, the kind Kubernetes API servers use by default.
    pub fn rs256(issuer: &str) -> ExternalIssuer {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let private = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
        let public = private.to_public_key();
        let kid = "kind-rs256".to_owned();
        ExternalIssuer {
            issuer: issuer.to_owned(),
            key: EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes()),
            algorithm: Algorithm::RS256,
            jwk: json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                        "n": URL_SAFE_NO_PAD.encode(public.n_bytes()),
                        "e": URL_SAFE_NO_PAD.encode(public.e_bytes())}),
            kid,
        }
    }

    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// Signs `claims` as this issuer.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// Projected-token claims for a pod of `namespace`/`service_account`,
    /// expiring `expires_in` seconds from now (negative: in the past).
    pub fn claims(&self, namespace: &str, service_account: &str, expires_in: i64) -> Value {
        let now = now_seconds() as i64;
        json!({
            "iss": self.issuer, "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
            "aud": [AUDIENCE], "iat": now - 7200, "nbf": now - 7200, "exp": now + expires_in,
            "kubernetes.io": {"namespace": namespace,
                              "serviceaccount": {"name": service_account, "uid": "sa-uid"},
                              "pod": {"name": "kind-pod", "uid": "kind-pod-uid"}}
        })
    }
}

/// A cluster `c1` with an association for prod/app to role `app`.
fn app_with_association() -> (TestApp, Value) {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let association = app.given_association("c1", "prod", "app", &role("app"));
    (app, association)
}

fn is_base32_upper(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

#[test]
fn a_pod_token_gets_credentials_for_the_associations_role_with_the_six_transitive_tags() {
    let (app, association) = app_with_association();
    let token = pod_token(&app, "c1", "prod", "app");
    let before = now_seconds();
    let answer = assume_role(&app, "c1", &token);
    let out = answer.ok();
    assert_eq!(
        out["subject"],
        json!({"namespace": "prod", "serviceAccount": "app"})
    );
    assert_eq!(out["audience"], AUDIENCE);
    assert_eq!(
        out["podIdentityAssociation"],
        json!({"associationArn": association["associationArn"],
               "associationId": association["associationId"]})
    );
    let credentials = &out["credentials"];
    let key = s(credentials, "accessKeyId");
    assert!(
        key.len() == 20 && key.starts_with("ASIA") && is_base32_upper(&key[4..]),
        "{key}"
    );
    assert_eq!(s(credentials, "secretAccessKey").len(), 40);
    assert!(!s(credentials, "sessionToken").is_empty());
    let expiration = credentials["expiration"].as_f64().unwrap();
    assert!(
        (before + 3590.0..before + 3610.0).contains(&expiration),
        "{expiration}"
    );
    let user = &out["assumedRoleUser"];
    let arn = s(user, "arn");
    let session = arn
        .strip_prefix("arn:aws:sts::123456789012:assumed-role/app/")
        .unwrap_or_else(|| panic!("{arn}"));
    assert!(
        session.starts_with("eks-c1-app-7d9f-") && session.len() <= 64,
        "{session}"
    );
    let (role_id, id_session) = s(user, "assumeRoleId").split_once(':').unwrap();
    assert_eq!(id_session, session);
    assert!(
        role_id.len() == 21 && role_id.starts_with("AROA"),
        "{role_id}"
    );

    let described = describe_credentials(&app, key);
    let d = described.ok();
    assert_eq!(s(d, "roleArn"), role("app"));
    assert_eq!(s(d, "sessionName"), session);
    assert_eq!(d["associationArn"], association["associationArn"]);
    assert_eq!(
        (
            s(d, "clusterName"),
            s(d, "namespace"),
            s(d, "serviceAccount")
        ),
        ("c1", "prod", "app")
    );
    assert_eq!(
        (s(d, "podName"), s(d, "podUid")),
        ("app-7d9f", "1d4ab7a4-3c39-4f3e-8b0a-5c3d0a3f1e22")
    );
    assert_eq!(d["expiration"], credentials["expiration"]);
    assert_eq!(
        d["sessionTags"],
        json!([
            {"key": "eks-cluster-arn", "value": "arn:aws:eks:us-east-1:123456789012:cluster/c1"},
            {"key": "eks-cluster-name", "value": "c1"},
            {"key": "kubernetes-namespace", "value": "prod"},
            {"key": "kubernetes-service-account", "value": "app"},
            {"key": "kubernetes-pod-name", "value": "app-7d9f"},
            {"key": "kubernetes-pod-uid", "value": "1d4ab7a4-3c39-4f3e-8b0a-5c3d0a3f1e22"},
        ])
    );
    assert_eq!(
        d["transitiveTagKeys"],
        json!([
            "eks-cluster-arn",
            "eks-cluster-name",
            "kubernetes-namespace",
            "kubernetes-service-account",
            "kubernetes-pod-name",
            "kubernetes-pod-uid"
        ])
    );
    for absent in ["sourceRoleArn", "externalId", "policy"] {
        assert!(d.get(absent).is_none(), "{absent} in {d}");
    }
    // Every call mints new credentials.
    let again = assume_role(&app, "c1", &token);
    assert_ne!(
        again.ok()["credentials"]["accessKeyId"],
        credentials["accessKeyId"]
    );
}

#[test]
fn session_tags_off_send_no_tags_and_the_policy_goes_with_the_credentials() {
    let (app, association) = app_with_association();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    app.update_association(
        "c1",
        s(&association, "associationId"),
        &json!({"disableSessionTags": true, "policy": policy}),
    )
    .association();
    let answer = assume_role(&app, "c1", &pod_token(&app, "c1", "prod", "app"));
    let key = s(&answer.ok()["credentials"], "accessKeyId").to_owned();
    let described = describe_credentials(&app, &key);
    let d = described.ok();
    assert!(d.get("sessionTags").is_none(), "{d}");
    assert!(d.get("transitiveTagKeys").is_none(), "{d}");
    assert_eq!(s(d, "policy"), policy);
}

#[test]
fn a_target_role_is_assumed_with_the_external_id_and_its_credentials_answered() {
    let (app, association) = app_with_association();
    let target = "arn:aws:iam::999988887777:role/team/target";
    let updated = app
        .update_association(
            "c1",
            s(&association, "associationId"),
            &json!({"targetRoleArn": target}),
        )
        .association();
    let answer = assume_role(&app, "c1", &pod_token(&app, "c1", "prod", "app"));
    let out = answer.ok();
    let arn = s(&out["assumedRoleUser"], "arn");
    assert!(
        arn.starts_with("arn:aws:sts::999988887777:assumed-role/target/eks-c1-"),
        "{arn}"
    );
    let described = describe_credentials(&app, s(&out["credentials"], "accessKeyId"));
    let d = described.ok();
    assert_eq!(s(d, "roleArn"), target);
    assert_eq!(s(d, "sourceRoleArn"), role("app"));
    assert_eq!(d["externalId"], updated["externalId"]);

    // Without the target role, the association's own role again.
    app.update_association(
        "c1",
        s(&association, "associationId"),
        &json!({"targetRoleArn": ""}),
    )
    .association();
    let answer = assume_role(&app, "c1", &pod_token(&app, "c1", "prod", "app"));
    let arn = s(&answer.ok()["assumedRoleUser"], "arn");
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/app/"),
        "{arn}"
    );
}

#[test]
fn a_changed_association_is_seen_by_the_next_call_and_a_deleted_one_is_not_found() {
    let (app, association) = app_with_association();
    let id = s(&association, "associationId");
    let token = pod_token(&app, "c1", "prod", "app");
    app.update_association("c1", id, &json!({"roleArn": role("app-v2")}))
        .association();
    let answer = assume_role(&app, "c1", &token);
    let arn = s(&answer.ok()["assumedRoleUser"], "arn");
    assert!(arn.contains(":assumed-role/app-v2/"), "{arn}");
    app.delete_association("c1", id).association();
    let message = assume_role(&app, "c1", &token).error(404, "ResourceNotFoundException");
    assert!(
        message.contains("prod") && message.contains("app") && message.contains("c1"),
        "{message}"
    );
}

#[test]
fn malformed_tokens_and_cluster_names_are_invalid_parameters() {
    let (app, _) = app_with_association();
    for token in ["", "not-a-jwt", "a.b", "a.b.c.d", "a b.c.d", "ab.cd.e+f"] {
        let message = assume_role(&app, "c1", token).error(400, "InvalidParameterException");
        assert!(message.contains("token"), "{token}: {message}");
    }
    let missing = app.send_json(
        "POST",
        "/clusters/c1/assume-role-for-pod-identity",
        &json!({}),
    );
    assert!(missing
        .error(400, "InvalidParameterException")
        .contains("token"));
    let token = pod_token(&app, "c1", "prod", "app");
    for bad in ["-c1", "c%201", &"c".repeat(101)] {
        let message = assume_role(&app, bad, &token).error(400, "InvalidParameterException");
        assert!(message.contains("cluster name"), "{bad}: {message}");
    }
}

#[test]
fn a_forged_or_foreign_token_is_invalid_and_an_expired_one_expired() {
    let (app, _) = app_with_association();
    app.given_cluster("other");
    app.given_association("other", "prod", "app", &role("app"));
    // Another cluster's token: its issuer is not c1's.
    let foreign = pod_token(&app, "other", "prod", "app");
    let message = assume_role(&app, "c1", &foreign).error(400, "InvalidTokenException");
    assert!(message.contains("issuer"), "{message}");
    // c1's header and claims with other's signature.
    let own = pod_token(&app, "c1", "prod", "app");
    let (head, _) = own.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", foreign.rsplit('.').next().unwrap());
    let message = assume_role(&app, "c1", &forged).error(400, "InvalidTokenException");
    assert!(message.contains("signature"), "{message}");
    // The right signer, the wrong audience.
    let sts_token = service_account_token_with(
        &app,
        "c1",
        &json!({"namespace": "prod", "serviceAccount": "app", "podName": "p",
                "audience": "sts.amazonaws.com"}),
    );
    let message =
        assume_role(&app, "c1", s(sts_token.ok(), "token")).error(400, "InvalidTokenException");
    assert!(message.contains(AUDIENCE), "{message}");

    // Expired, and lacking Kubernetes claims: signed by a registered issuer of the test's own.
    let kind = ExternalIssuer::es256("https://kind.example/issuer");
    put_issuer(
        &app,
        "c1",
        &json!({"issuer": kind.issuer, "jwks": kind.jwks()}),
    )
    .ok();
    let expired = kind.sign(&kind.claims("prod", "app", -3600));
    let message = assume_role(&app, "c1", &expired).error(400, "ExpiredTokenException");
    assert!(message.contains("expired"), "{message}");
    // Within the 60-second leeway it still counts.
    let just_expired = kind.sign(&kind.claims("prod", "app", -30));
    assume_role(&app, "c1", &just_expired).ok();
    let mut claims = kind.claims("prod", "app", 600);
    claims.as_object_mut().unwrap().remove("kubernetes.io");
    let message = assume_role(&app, "c1", &kind.sign(&claims)).error(400, "InvalidTokenException");
    assert!(message.contains("kubernetes.io"), "{message}");
}

#[test]
fn an_unknown_cluster_or_service_account_is_not_found_naming_what_is_missing() {
    let (app, _) = app_with_association();
    let token = pod_token(&app, "c1", "prod", "app");
    let message = assume_role(&app, "nope", &token).error(404, "ResourceNotFoundException");
    assert!(message.contains("nope"), "{message}");
    let other_sa = pod_token(&app, "c1", "prod", "worker");
    let message = assume_role(&app, "c1", &other_sa).error(404, "ResourceNotFoundException");
    assert!(
        message.contains("namespace prod") && message.contains("service account worker"),
        "{message}"
    );
}

#[test]
fn a_cluster_that_is_creating_deleting_or_failed_refuses_naming_its_state() {
    let (app, _) = app_with_association();
    let token = pod_token(&app, "c1", "prod", "app");
    for status in ["CREATING", "DELETING", "FAILED"] {
        app.set_cluster_status("c1", status).cluster();
        let message = assume_role(&app, "c1", &token).error(400, "InvalidRequestException");
        assert!(
            message.contains(status) && message.contains("c1"),
            "{message}"
        );
    }
    for status in ["UPDATING", "PENDING", "ACTIVE"] {
        app.set_cluster_status("c1", status).cluster();
        assume_role(&app, "c1", &token).ok();
    }
}

#[test]
fn an_external_issuers_tokens_are_accepted_until_it_is_removed() {
    let (app, _) = app_with_association();
    for kind in [
        ExternalIssuer::es256("https://kind-es.example"),
        ExternalIssuer::rs256("https://kind-rs.example"),
    ] {
        let token = kind.sign(&kind.claims("prod", "app", 600));
        assert!(assume_role(&app, "c1", &token)
            .error(400, "InvalidTokenException")
            .contains(&kind.issuer));
        // The JWKS as kubectl prints it (an object), or as a string.
        let registered = put_issuer(
            &app,
            "c1",
            &json!({"issuer": kind.issuer, "jwks": kind.jwks().to_string()}),
        );
        assert_eq!(registered.ok()["keyIds"], json!([kind.jwk["kid"]]));
        let out = assume_role(&app, "c1", &token);
        assert_eq!(
            out.ok()["podIdentityAssociation"]["associationId"]
                .as_str()
                .map(|id| id.starts_with("a-")),
            Some(true)
        );
        let key = s(&out.ok()["credentials"], "accessKeyId").to_owned();
        assert_eq!(
            s(describe_credentials(&app, &key).ok(), "podName"),
            "kind-pod"
        );
        // The cluster's own tokens still work beside the external issuer's.
        assume_role(&app, "c1", &pod_token(&app, "c1", "prod", "app")).ok();
        app.delete("/admin/v1/clusters/c1/service-account-issuer")
            .ok();
        assume_role(&app, "c1", &token).error(400, "InvalidTokenException");
    }
}

#[test]
fn an_external_issuer_needs_an_issuer_url_and_a_usable_jwks() {
    let (app, _) = app_with_association();
    let kind = ExternalIssuer::es256("https://kind.example");
    for (body, member) in [
        (json!({"jwks": kind.jwks()}), "issuer"),
        (json!({"issuer": "kind", "jwks": kind.jwks()}), "issuer"),
        (json!({"issuer": kind.issuer}), "jwks"),
        (json!({"issuer": kind.issuer, "jwks": {"keys": []}}), "jwks"),
        (json!({"issuer": kind.issuer, "jwks": "not json"}), "jwks"),
        (json!({"issuer": kind.issuer, "jwks": 7}), "jwks"),
    ] {
        let message = put_issuer(&app, "c1", &body).error(400, "InvalidParameterException");
        assert!(message.contains(member), "{body}: {message}");
    }
    put_issuer(
        &app,
        "nope",
        &json!({"issuer": kind.issuer, "jwks": kind.jwks()}),
    )
    .error(404, "ResourceNotFoundException");
}

#[test]
fn every_cluster_publishes_its_issuer_with_discovery_and_keys_that_check_its_tokens() {
    let (app, _) = app_with_association();
    app.given_cluster("c2");
    let issuer = |name: &str| {
        s(
            &app.describe_cluster(name).cluster()["identity"]["oidc"],
            "issuer",
        )
        .to_owned()
    };
    let (c1, c2) = (issuer("c1"), issuer("c2"));
    let id = c1
        .strip_prefix(&format!("{}/id/", app.base))
        .unwrap_or_else(|| panic!("{c1}"));
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_ne!(c1, c2);
    let path = &c1[app.base.len()..];
    let discovery = app.get(&format!("{path}/.well-known/openid-configuration"));
    assert_eq!(discovery.ok()["issuer"], c1);
    assert_eq!(s(discovery.ok(), "jwks_uri"), format!("{c1}/keys"));
    let jwks = app.get(&format!("{path}/keys"));
    let jwk = &jwks.ok()["keys"][0];
    assert_eq!((s(jwk, "kty"), s(jwk, "alg")), ("RSA", "RS256"));

    // The token: a Kubernetes projected token of this issuer, signed by that key.
    let answer = service_account_token_with(
        &app,
        "c1",
        &json!({"namespace": "prod", "serviceAccount": "app", "podName": "p1",
                "expirationSeconds": 600}),
    );
    let token = s(answer.ok(), "token");
    let expiration = answer.ok()["expiration"].as_f64().unwrap();
    assert!((now_seconds() + 590.0..now_seconds() + 610.0).contains(&expiration));
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(s(jwk, "kid")));
    let key = jsonwebtoken::DecodingKey::from_rsa_components(s(jwk, "n"), s(jwk, "e")).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[&c1]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "system:serviceaccount:prod:app");
    assert_eq!(claims["kubernetes.io"]["namespace"], "prod");
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "app");
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "p1");
    assert!(claims["kubernetes.io"]["pod"]["uid"].is_string());
    for member in ["iat", "nbf", "exp"] {
        assert!(claims[member].is_i64(), "{member}: {claims}");
    }
    app.get("/id/00000000000000000000000000000000/keys")
        .error(404, "ResourceNotFoundException");
}

#[test]
fn a_token_request_is_checked_member_by_member() {
    let (app, _) = app_with_association();
    let base = json!({"namespace": "prod", "serviceAccount": "app", "podName": "p"});
    let with = |member: &str, value: Value| {
        let mut body = base.clone();
        body[member] = value;
        body
    };
    let without = |member: &str| {
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove(member);
        body
    };
    for (body, member) in [
        (without("namespace"), "namespace"),
        (without("serviceAccount"), "serviceAccount"),
        (without("podName"), "podName"),
        (with("namespace", json!("Prod!")), "namespace"),
        (with("expirationSeconds", json!(599)), "expirationSeconds"),
        (
            with("expirationSeconds", json!(86_401)),
            "expirationSeconds",
        ),
        (with("expirationSeconds", json!(700.5)), "expirationSeconds"),
        (with("audience", json!("")), "audience"),
    ] {
        let message =
            service_account_token_with(&app, "c1", &body).error(400, "InvalidParameterException");
        assert!(message.contains(member), "{body}: {message}");
    }
    service_account_token_with(&app, "nope", &base).error(404, "ResourceNotFoundException");
    service_account_token_with(&app, "c1", &with("expirationSeconds", json!(86_400))).ok();
}

#[test]
fn unknown_credentials_are_not_found() {
    let app = TestApp::spawn();
    let message =
        describe_credentials(&app, "ASIAAAAAAAAAAAAAAAAA").error(404, "ResourceNotFoundException");
    assert!(message.contains("ASIAAAAAAAAAAAAAAAAA"), "{message}");
}

#[test]
fn minted_credentials_and_issued_tokens_survive_a_sigkill() {
    let (mut app, _) = app_with_association();
    let token = pod_token(&app, "c1", "prod", "app");
    let answer = assume_role(&app, "c1", &token);
    let key = s(&answer.ok()["credentials"], "accessKeyId").to_owned();
    let before = describe_credentials(&app, &key).ok().clone();
    let issuer_before = app.describe_cluster("c1").cluster()["identity"]["oidc"]["issuer"].clone();

    app.restart();
    assert_eq!(describe_credentials(&app, &key).ok(), &before);
    // Same issuer ID (the port is new) and the same key: the old token still works.
    let issuer_after = app.describe_cluster("c1").cluster()["identity"]["oidc"]["issuer"].clone();
    let id = |issuer: &Value| {
        issuer
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(id(&issuer_after), id(&issuer_before));
    assume_role(&app, "c1", &token).ok();
}

#[test]
fn calls_are_counted_by_outcome_in_the_metrics() {
    let (app, _) = app_with_association();
    let token = pod_token(&app, "c1", "prod", "app");
    assume_role(&app, "c1", &token).ok();
    assume_role(&app, "c1", &token).ok();
    assume_role(&app, "c1", "a.b.c").error(400, "InvalidTokenException");
    let page = ureq::get(&format!("{}/metrics", app.base))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    for line in [
        r#"pod_identity_store_assume_role_for_pod_identity_total{outcome="success"} 2"#,
        r#"pod_identity_store_assume_role_for_pod_identity_total{outcome="InvalidTokenException"} 1"#,
    ] {
        assert!(page.lines().any(|l| l == line), "missing {line}");
    }
}

#[test]
fn credentials_are_described_until_they_expire_and_a_token_past_its_leeway_is_expired() {
    let app = TestApp::spawn_with_config(&format!(
        "{CLOCK_CONTROL}[eks_auth]\nsession_duration_seconds = 900\n"
    ));
    app.given_cluster("c1");
    app.given_association("c1", "prod", "app", &role("app"));
    let answer = service_account_token_with(
        &app,
        "c1",
        &json!({"namespace": "prod", "serviceAccount": "app", "podName": "p",
                "expirationSeconds": 600}),
    );
    let token = s(answer.ok(), "token").to_owned();
    let minted = assume_role(&app, "c1", &token);
    let key = s(&minted.ok()["credentials"], "accessKeyId").to_owned();
    let start = app.advance_clock(0);
    let expiration = minted.ok()["credentials"]["expiration"].as_f64().unwrap();
    assert!(
        (start + 895.0..start + 905.0).contains(&expiration),
        "{expiration}"
    );

    // 650 s on: the token expired 50 s ago, within the leeway.
    app.advance_clock(650);
    assume_role(&app, "c1", &token).ok();
    describe_credentials(&app, &key).ok();
    app.advance_clock(20);
    let message = assume_role(&app, "c1", &token).error(400, "ExpiredTokenException");
    assert!(message.contains("expired"), "{message}");
    // 910 s on: the credentials expired, and the sweep removes them.
    app.advance_clock_and_sweep(240);
    describe_credentials(&app, &key).error(404, "ResourceNotFoundException");
}
