//! SigV4 authentication (`auth.mode = "sigv4"`): the real binary with a
//! generated key file, called with requests signed by AWS's own signer
//! (`aws-sigv4`, not the server's code), by `aws-sdk-eks` and by curl's
//! `--aws-sigv4`. Every bad case gets AWS's error type, 403 and a message,
//! and changes nothing in the store.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_eks::config::Credentials;
use aws_sdk_eks::error::ProvideErrorMetadata;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::helpers::{
    check_answer, cluster_arn, command, encode, role, run_to_exit, Answer, TestApp, REQUEST_TIMEOUT,
};
use crate::sdk::{ok, sdk_config_with, service_error};

/// A key that may call the API routes.
pub const PLAIN: Key = Key {
    id: "AKIDPLAINEXAMPLE0001",
    secret: "plain/K7MDENG+bPxRfiCYEXAMPLEKEY0000001",
};
/// A key listed in `auth.admin_access_key_ids`.
pub const ADMIN: Key = Key {
    id: "AKIDADMINEXAMPLE0001",
    secret: "admin/K7MDENG+bPxRfiCYEXAMPLEKEY0000001",
};
/// A key the server has never seen.
const STRANGER: Key = Key {
    id: "AKIDSTRANGER00000001",
    secret: "stranger/K7MDENG+bPxRfiCYEXAMPLEKEY00001",
};
const REGION: &str = "us-east-1";
const MISMATCH: &str =
    "The request signature we calculated does not match the signature you provided.";

#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub id: &'static str,
    pub secret: &'static str,
}

/// A shared-credentials file with `keys`, readable by its owner only.
pub fn write_credentials(path: &Path, keys: &[(&str, Key)]) {
    use std::os::unix::fs::PermissionsExt;
    let text: String = keys
        .iter()
        .map(|(profile, key)| {
            format!(
                "[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                key.id, key.secret
            )
        })
        .collect();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A server checking signatures against a file with [`PLAIN`] and
/// [`ADMIN`] (the admin key); `extra` is more TOML for the config file.
pub struct AuthApp {
    pub app: TestApp,
    pub credentials: PathBuf,
    /// Holds the key file; removed on drop.
    _keys: TempDir,
}

impl AuthApp {
    pub fn spawn(extra: &str) -> AuthApp {
        let keys = tempfile::tempdir().unwrap();
        let credentials = keys.path().join("credentials");
        write_credentials(&credentials, &[("plain", PLAIN), ("admin", ADMIN)]);
        let app = TestApp::spawn_with_config(&format!(
            "{extra}\n[auth]\nmode = \"sigv4\"\ncredentials_file = {:?}\nadmin_access_key_ids = [{:?}]\n",
            credentials.display().to_string(),
            ADMIN.id
        ));
        AuthApp {
            app,
            credentials,
            _keys: keys,
        }
    }
}

/// Signs requests as an AWS client would, with AWS's signer.
#[derive(Debug, Clone)]
pub struct Signer {
    pub key: Key,
    pub region: &'static str,
    pub service: &'static str,
    /// Added to the clock: a client whose clock is off.
    pub skew: Duration,
    pub skew_ahead: bool,
}

impl Signer {
    pub fn new(key: Key) -> Signer {
        Signer {
            key,
            region: REGION,
            service: "eks",
            skew: Duration::ZERO,
            skew_ahead: false,
        }
    }

    /// The headers (`x-amz-date`, `authorization`) that sign a request
    /// with these `headers` and `body` for `url`.
    pub fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<(String, String)> {
        let identity: Identity =
            Credentials::new(self.key.id, self.key.secret, None, None, "test").into();
        let time = if self.skew_ahead {
            SystemTime::now() + self.skew
        } else {
            SystemTime::now() - self.skew
        };
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let request = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }
}

/// Sends a request as it is: any headers, any body; checks the answer's
/// general rules (never a 5xx, a request ID, errors in the restJson1 form).
#[track_caller]
pub fn send(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Answer {
    let agent = ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).build();
    let mut request = agent.request(method, &format!("{base}{path}"));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = match body {
        Some(body) => request.send_bytes(body),
        None => request.call(),
    };
    let answer = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => {
            Answer::from_response(method, path, response).unwrap()
        }
        Err(e) => panic!("no answer: {method} {path}: {e}"),
    };
    check_answer(&answer);
    answer
}

/// A request signed by `signer` and sent unchanged; a JSON body goes with
/// `content-type: application/json`, which is signed too.
#[track_caller]
pub fn signed(
    base: &str,
    signer: &Signer,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    let content_type = [("content-type", "application/json")];
    let unsigned: &[(&str, &str)] = if bytes.is_some() { &content_type } else { &[] };
    let mut headers = signer.sign(
        method,
        &format!("{base}{path}"),
        unsigned,
        bytes.as_deref().unwrap_or_default(),
    );
    headers.extend(unsigned.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    send(base, method, path, &headers, bytes.as_deref())
}

fn create_cluster_body(name: &str) -> Value {
    json!({"name": name, "roleArn": role("eks-cluster-role"), "resourcesVpcConfig": {}})
}

/// The cluster names a signed ListClusters returns.
fn cluster_names(base: &str) -> Vec<String> {
    let listed = signed(base, &Signer::new(PLAIN), "GET", "/clusters", None);
    let mut names: Vec<String> = listed.ok()["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[track_caller]
fn refused(answer: &Answer, error_type: &str, message_start: &str) -> String {
    let message = answer.error(403, error_type);
    assert!(
        message.starts_with(message_start),
        "{error_type}: expected a message starting {message_start:?}, got {message:?}"
    );
    message
}

#[test]
fn every_bad_signature_is_refused_with_the_aws_error_and_changes_nothing() {
    let t = AuthApp::spawn("");
    let base = t.app.base.clone();
    let plain = Signer::new(PLAIN);
    let good = signed(
        &base,
        &plain,
        "POST",
        "/clusters",
        Some(&create_cluster_body("c1")),
    );
    assert_eq!(good.cluster()["name"], "c1");

    // Every attempt below tries to create the cluster "intruder".
    let intruder = serde_json::to_vec(&create_cluster_body("intruder")).unwrap();
    let json_type = ("content-type".to_owned(), "application/json".to_owned());
    let url = format!("{base}/clusters");
    let post = |headers: &[(String, String)]| {
        let mut headers = headers.to_vec();
        headers.push(json_type.clone());
        send(&base, "POST", "/clusters", &headers, Some(&intruder))
    };
    let sign_as = |signer: &Signer| {
        signer.sign(
            "POST",
            &url,
            &[("content-type", "application/json")],
            &intruder,
        )
    };
    let with_authorization = |value: &str| {
        let mut headers = sign_as(&plain);
        headers.retain(|(n, _)| n != "authorization");
        headers.push(("authorization".into(), value.into()));
        headers
    };
    let good_headers = sign_as(&plain);
    let good_authorization = good_headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .unwrap()
        .1
        .clone();

    // No Authorization header.
    let answer = post(&[]);
    assert_eq!(
        answer.error(403, "MissingAuthenticationTokenException"),
        "Missing Authentication Token"
    );

    // A malformed header, each part missing in turn.
    let signature = good_authorization.split("Signature=").nth(1).unwrap();
    let credential = good_authorization
        .split("Credential=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    for (header, names) in [
        (
            format!("AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature={signature}"),
            "Authorization header requires 'Credential' parameter.",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential={credential}, Signature={signature}"),
            "Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=content-type;host;x-amz-date"),
            "Authorization header requires 'Signature' parameter.",
        ),
        (
            good_authorization.replace("/us-east-1/eks/aws4_request", "/us-east-1/eks"),
            "Credential must have exactly 5 slash-delimited elements",
        ),
        (
            good_authorization.replace("/us-east-1/eks/", "//eks/"),
            "Credential must be keyid/YYYYMMDD/region/service/aws4_request",
        ),
    ] {
        refused(
            &post(&with_authorization(&header)),
            "IncompleteSignatureException",
            names,
        );
    }
    let mut no_date = good_headers.clone();
    no_date.retain(|(n, _)| n != "x-amz-date");
    let message = refused(
        &post(&no_date),
        "IncompleteSignatureException",
        "Authorization header requires",
    );
    assert!(message.contains("X-Amz-Date"), "{message}");

    // A key the server does not have.
    let answer = post(&sign_as(&Signer::new(STRANGER)));
    let message = refused(
        &answer,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    assert!(message.contains(STRANGER.id), "{message}");

    // The right key ID with a wrong secret.
    let wrong_secret = Signer::new(Key {
        id: PLAIN.id,
        secret: STRANGER.secret,
    });
    refused(
        &post(&sign_as(&wrong_secret)),
        "InvalidSignatureException",
        MISMATCH,
    );

    // A body, path, query or signed header changed after signing.
    let signed_c2 = plain.sign(
        "POST",
        &url,
        &[("content-type", "application/json")],
        &serde_json::to_vec(&create_cluster_body("c2")).unwrap(),
    );
    refused(&post(&signed_c2), "InvalidSignatureException", MISMATCH);
    let mut headers = plain.sign(
        "POST",
        &format!("{base}/clusters?x=1"),
        &[("content-type", "application/json")],
        &intruder,
    );
    headers.push(json_type.clone());
    refused(
        &send(&base, "POST", "/clusters?x=2", &headers, Some(&intruder)),
        "InvalidSignatureException",
        MISMATCH,
    );
    let mut headers = plain.sign(
        "POST",
        &format!("{base}/clusters/"),
        &[("content-type", "application/json")],
        &intruder,
    );
    headers.push(json_type.clone());
    refused(
        &send(&base, "POST", "/clusters", &headers, Some(&intruder)),
        "InvalidSignatureException",
        MISMATCH,
    );
    let mut headers = plain.sign(
        "POST",
        &url,
        &[("content-type", "application/json"), ("x-purpose", "test")],
        &intruder,
    );
    headers.push(("x-purpose".into(), "attack".into()));
    refused(&post(&headers), "InvalidSignatureException", MISMATCH);
    // A payload hash header that is not the body's.
    let mut headers = good_headers.clone();
    headers.push(("x-amz-content-sha256".into(), "0".repeat(64)));
    let message = refused(&post(&headers), "InvalidSignatureException", MISMATCH);
    assert!(message.contains("X-Amz-Content-Sha256"), "{message}");

    // A clock more than 5 minutes off, either way.
    for ahead in [false, true] {
        let skewed = Signer {
            skew: Duration::from_secs(10 * 60),
            skew_ahead: ahead,
            ..Signer::new(PLAIN)
        };
        refused(
            &post(&sign_as(&skewed)),
            "InvalidSignatureException",
            "Signature expired: ",
        );
    }
    // Within the skew the same request is served (after the refusals).
    let slightly_off = Signer {
        skew: Duration::from_secs(4 * 60),
        ..Signer::new(PLAIN)
    };

    // Another region, another service.
    let elsewhere = Signer {
        region: "eu-west-1",
        ..Signer::new(PLAIN)
    };
    refused(
        &post(&sign_as(&elsewhere)),
        "InvalidSignatureException",
        "Credential should be scoped to a valid region.",
    );
    let other_service = Signer {
        service: "ec2",
        ..Signer::new(PLAIN)
    };
    refused(
        &post(&sign_as(&other_service)),
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'eks'.",
    );

    // Nothing of it reached the store.
    assert_eq!(cluster_names(&base), ["c1"]);
    let answer = signed(&base, &plain, "GET", "/clusters/intruder", None);
    answer.error(404, "ResourceNotFoundException");

    let answer = signed(
        &base,
        &slightly_off,
        "POST",
        "/clusters",
        Some(&create_cluster_body("c3")),
    );
    assert_eq!(answer.cluster()["name"], "c3");
    assert_eq!(cluster_names(&base), ["c1", "c3"]);
}

#[test]
fn an_unsigned_request_to_an_unknown_route_learns_nothing_but_the_probes_stay_open() {
    let t = AuthApp::spawn("");
    let base = &t.app.base;
    let answer = send(base, "GET", "/no/such/route", &[], None);
    assert_eq!(
        answer.error(403, "MissingAuthenticationTokenException"),
        "Missing Authentication Token"
    );
    let answer = send(base, "GET", "/admin/v1/export", &[], None);
    answer.error(403, "MissingAuthenticationTokenException");
    for (probe, shows) in [
        ("/healthz", "ok"),
        ("/readyz", "ready"),
        ("/metrics", "# TYPE"),
    ] {
        let page = ureq::get(&format!("{base}{probe}")).call().unwrap();
        assert_eq!(page.status(), 200, "{probe}");
        assert!(page.into_string().unwrap().contains(shows), "{probe}");
    }
}

#[test]
fn the_admin_routes_take_an_admin_key_and_refuse_a_plain_one() {
    let t = AuthApp::spawn("");
    let base = &t.app.base;
    let admin = Signer::new(ADMIN);
    let plain = Signer::new(PLAIN);
    signed(
        base,
        &admin,
        "POST",
        "/clusters",
        Some(&create_cluster_body("c1")),
    )
    .cluster();

    let status = json!({"status": "FAILED"});
    let path = "/admin/v1/clusters/c1/status";
    let message = refused(
        &signed(base, &plain, "PUT", path, Some(&status)),
        "AccessDeniedException",
        "The access key",
    );
    assert!(message.contains(PLAIN.id), "{message}");
    assert!(message.contains("auth.admin_access_key_ids"), "{message}");
    let answer = signed(base, &plain, "GET", "/clusters/c1", None);
    assert_eq!(
        answer.cluster()["status"],
        "ACTIVE",
        "a refused admin call changed the cluster"
    );
    refused(
        &signed(base, &plain, "GET", "/admin/v1/export", None),
        "AccessDeniedException",
        "The access key",
    );

    let answer = signed(base, &admin, "PUT", path, Some(&status));
    assert_eq!(answer.status, 200, "{}", answer.text);
    let answer = signed(base, &plain, "GET", "/clusters/c1", None);
    assert_eq!(answer.cluster()["status"], "FAILED");
}

/// curl's own SigV4 signer (`--aws-sigv4`), with `key`.
fn curl(
    base: &str,
    key: Key,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--include", "--max-time", "30"])
        .args(["--aws-sigv4", &format!("aws:amz:{REGION}:eks")])
        .args(["--user", &format!("{}:{}", key.id, key.secret)])
        .args(["--request", method]);
    if let Some(body) = body {
        cmd.args(["--header", "content-type: application/json", "--data", body]);
    }
    let out = cmd
        .arg(format!("{base}{path}"))
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let error_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-amzn-errortype")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    (status, error_type, body.to_owned())
}

#[test]
fn curl_aws_sigv4_reaches_the_admin_routes_with_an_admin_key_only() {
    let t = AuthApp::spawn("");
    let base = &t.app.base;
    let (status, _, body) = curl(
        base,
        PLAIN,
        "POST",
        "/clusters",
        Some(&create_cluster_body("c1").to_string()),
    );
    assert_eq!(status, 200, "{body}");

    let (status, _, export) = curl(base, ADMIN, "GET", "/admin/v1/export", None);
    assert_eq!(status, 200, "{export}");
    assert!(export.contains("\"c1\""), "{export}");
    let (status, error_type, body) = curl(base, PLAIN, "GET", "/admin/v1/export", None);
    assert_eq!(
        (status, error_type.as_str()),
        (403, "AccessDeniedException"),
        "{body}"
    );

    let (status, error_type, body) = curl(
        base,
        PLAIN,
        "PUT",
        "/admin/v1/clusters/c1/status",
        Some(r#"{"status":"UPDATING"}"#),
    );
    assert_eq!(
        (status, error_type.as_str()),
        (403, "AccessDeniedException"),
        "{body}"
    );
    let (status, _, body) = curl(
        base,
        ADMIN,
        "PUT",
        "/admin/v1/clusters/c1/status",
        Some(r#"{"status":"UPDATING"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (_, _, described) = curl(base, PLAIN, "GET", "/clusters/c1", None);
    assert!(described.contains("\"UPDATING\""), "{described}");

    let (status, error_type, _) = curl(base, STRANGER, "GET", "/clusters", None);
    assert_eq!(
        (status, error_type.as_str()),
        (403, "UnrecognizedClientException")
    );
}

async fn eks(base: &str, key: Key, region: &str) -> aws_sdk_eks::Client {
    let credentials = Credentials::new(key.id, key.secret, None, None, "test");
    aws_sdk_eks::Client::new(&sdk_config_with(base, region, credentials).await)
}

#[tokio::test]
async fn the_sdk_with_the_right_keys_runs_every_operation() {
    use aws_sdk_eks::types::VpcConfigRequest;
    let t = AuthApp::spawn("");
    let eks = eks(&t.app.base, PLAIN, REGION).await;
    ok(eks
        .create_cluster()
        .name("c1")
        .role_arn(role("eks-cluster-role"))
        .resources_vpc_config(VpcConfigRequest::builder().build())
        .send()
        .await);
    ok(eks.describe_cluster().name("c1").send().await);
    let listed = ok(eks.list_clusters().send().await);
    assert_eq!(listed.clusters(), ["c1"]);
    let created = ok(eks
        .create_pod_identity_association()
        .cluster_name("c1")
        .namespace("ns")
        .service_account("sa")
        .role_arn(role("app"))
        .tags("team", "a")
        .send()
        .await);
    let association = created.association().unwrap();
    let id = association.association_id().unwrap();
    let arn = association.association_arn().unwrap();
    ok(eks
        .describe_pod_identity_association()
        .cluster_name("c1")
        .association_id(id)
        .send()
        .await);
    ok(eks
        .update_pod_identity_association()
        .cluster_name("c1")
        .association_id(id)
        .role_arn(role("app2"))
        .send()
        .await);
    let listed = ok(eks
        .list_pod_identity_associations()
        .cluster_name("c1")
        .send()
        .await);
    assert_eq!(listed.associations().len(), 1);
    // The Tag APIs carry an ARN (with `:` and `/`) in the path: signed
    // double-encoded by the SDK, verified double-encoded by the server.
    for resource in [arn.to_owned(), cluster_arn("c1")] {
        ok(eks
            .tag_resource()
            .resource_arn(&resource)
            .tags("k", "v")
            .send()
            .await);
        let tags = ok(eks
            .list_tags_for_resource()
            .resource_arn(&resource)
            .send()
            .await);
        assert_eq!(tags.tags().unwrap().get("k").map(String::as_str), Some("v"));
        ok(eks
            .untag_resource()
            .resource_arn(&resource)
            .tag_keys("k")
            .send()
            .await);
    }
    ok(eks
        .delete_pod_identity_association()
        .cluster_name("c1")
        .association_id(id)
        .send()
        .await);
    ok(eks.delete_cluster().name("c1").send().await);
}

#[tokio::test]
async fn the_sdk_with_a_wrong_key_secret_or_region_gets_the_typed_errors() {
    let t = AuthApp::spawn("");
    let base = &t.app.base;
    let cases = [
        (
            STRANGER,
            REGION,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        (
            Key {
                id: PLAIN.id,
                secret: STRANGER.secret,
            },
            REGION,
            "InvalidSignatureException",
            MISMATCH,
        ),
        (
            PLAIN,
            "eu-west-1",
            "InvalidSignatureException",
            "Credential should be scoped to a valid region.",
        ),
    ];
    for (key, region, code, message) in cases {
        let eks = eks(base, key, region).await;
        let error = service_error(eks.list_clusters().send().await);
        assert_eq!(error.code(), Some(code), "{error:?}");
        assert!(
            error.message().unwrap_or_default().starts_with(message),
            "{error:?}"
        );
        let error = service_error(
            eks.tag_resource()
                .resource_arn(cluster_arn("c1"))
                .tags("k", "v")
                .send()
                .await,
        );
        assert_eq!(error.code(), Some(code), "{error:?}");
    }
    // The right key still works, and nothing was created.
    let listed = ok(eks(base, PLAIN, REGION).await.list_clusters().send().await);
    assert!(listed.clusters().is_empty());
}

#[test]
fn sighup_reloads_the_key_file_and_a_bad_file_keeps_the_keys_loaded_before() {
    use std::os::unix::fs::PermissionsExt;
    let t = AuthApp::spawn("");
    let base = &t.app.base;
    let stranger = Signer::new(STRANGER);
    let answer = signed(base, &stranger, "GET", "/clusters", None);
    answer.error(403, "UnrecognizedClientException");

    write_credentials(
        &t.credentials,
        &[("plain", PLAIN), ("admin", ADMIN), ("new", STRANGER)],
    );
    t.app.signal("HUP");
    wait_until("the new key works", || {
        signed(base, &stranger, "GET", "/clusters", None).status == 200
    });

    // Readable by others now: refused, and the keys stay as they were.
    std::fs::write(&t.credentials, "").unwrap();
    std::fs::set_permissions(&t.credentials, std::fs::Permissions::from_mode(0o644)).unwrap();
    t.app.signal("HUP");
    wait_until("the log says the old keys were kept", || {
        std::fs::read_to_string(&t.app.log)
            .unwrap()
            .contains("kept the 3 keys loaded before")
    });
    assert_eq!(
        signed(base, &stranger, "GET", "/clusters", None).status,
        200
    );
    assert_eq!(
        signed(base, &Signer::new(PLAIN), "GET", "/clusters", None).status,
        200
    );
}

#[test]
fn sighup_without_auth_is_logged_and_the_server_keeps_serving() {
    let app = TestApp::spawn();
    app.signal("HUP");
    wait_until("the log says there is nothing to reload", || {
        std::fs::read_to_string(&app.log)
            .unwrap()
            .contains("nothing to reload")
    });
    assert_eq!(app.list_clusters("").status, 200);
}

/// Polls `done` (every 20 ms, at most 10 s): for effects of a signal.
#[track_caller]
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the binary with `toml` as its config file (on 127.0.0.1 port 0
/// unless `listen` says otherwise) and expects a refusal: a non-zero exit,
/// no ready line, no store made, and one line on stderr saying why.
#[track_caller]
pub fn refused_start(dir: &Path, toml: &str, listen: &str) -> String {
    let config = dir.join("config.toml");
    std::fs::write(&config, toml).unwrap();
    let args: Vec<OsString> = vec![
        "--listen".into(),
        listen.into(),
        "--data-dir".into(),
        dir.join("data").into(),
        "--config".into(),
        config.into(),
    ];
    let exit = run_to_exit(command(&args, &[]));
    assert!(!exit.status.success(), "it started: {}", exit.stdout);
    assert!(!exit.stdout.contains("listening"), "{}", exit.stdout);
    let lines: Vec<&str> = exit
        .stderr
        .lines()
        .filter(|l| l.starts_with("pod-identity-store: "))
        .collect();
    assert_eq!(lines.len(), 1, "{}", exit.stderr);
    assert!(!dir.join("data").exists(), "a refused start made a store");
    lines[0].to_owned()
}

#[test]
fn a_bad_key_file_is_refused_at_start_up_naming_the_file_and_the_reason() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    let toml = |admins: &str| {
        format!(
            "[auth]\nmode = \"sigv4\"\ncredentials_file = {:?}\nadmin_access_key_ids = [{admins}]\n",
            file.display().to_string()
        )
    };
    let shown = file.display().to_string();

    let line = refused_start(dir.path(), &toml(""), "127.0.0.1:0");
    assert!(
        line.contains(&shown) && line.contains("No such file"),
        "{line}"
    );

    write_credentials(&file, &[("plain", PLAIN)]);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let line = refused_start(dir.path(), &toml(""), "127.0.0.1:0");
    assert!(
        line.contains(&shown) && line.contains("chmod 600"),
        "{line}"
    );

    std::fs::write(&file, "# no keys yet\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let line = refused_start(dir.path(), &toml(""), "127.0.0.1:0");
    assert!(
        line.contains(&shown) && line.contains("holds no key"),
        "{line}"
    );

    write_credentials(&file, &[("one", PLAIN), ("two", PLAIN)]);
    let line = refused_start(dir.path(), &toml(""), "127.0.0.1:0");
    assert!(line.contains(&shown) && line.contains("twice"), "{line}");

    write_credentials(&file, &[("plain", PLAIN)]);
    let line = refused_start(dir.path(), &toml(&format!("{:?}", ADMIN.id)), "127.0.0.1:0");
    assert!(
        line.contains(ADMIN.id) && line.contains("auth.admin_access_key_ids"),
        "{line}"
    );
}

#[test]
fn a_non_loopback_address_without_auth_is_refused_naming_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let line = refused_start(dir.path(), "", "0.0.0.0:0");
    assert!(line.contains("auth.mode"), "{line}");
    assert!(line.contains("auth.allow_anonymous_remote"), "{line}");
    assert!(line.contains("0.0.0.0:0"), "{line}");
}

#[test]
fn an_arn_label_signed_by_hand_verifies_double_encoded() {
    // What botocore and the SDKs send for /tags/{resourceArn}: the ARN
    // percent-encoded in the path, signed with the path encoded again.
    let t = AuthApp::spawn("");
    let base = &t.app.base;
    let plain = Signer::new(PLAIN);
    signed(
        base,
        &plain,
        "POST",
        "/clusters",
        Some(&create_cluster_body("c1")),
    )
    .cluster();
    let path = format!("/tags/{}", encode(&cluster_arn("c1")));
    assert!(path.contains("%3A") && path.contains("%2F"), "{path}");
    let answer = signed(
        base,
        &plain,
        "POST",
        &path,
        Some(&json!({"tags": {"k": "v"}})),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let answer = signed(
        base,
        &plain,
        "DELETE",
        &format!("{path}?tagKeys=k&tagKeys=other"),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let answer = signed(base, &plain, "GET", &path, None);
    assert_eq!(answer.ok()["tags"], json!({}));
}
