//! The local agent (`pod-identity-store agent`): the real binary on port 0
//! in front of a stand-in eks-auth server that answers canned
//! AssumeRoleForPodIdentity JSON and counts the calls. The end-to-end run
//! against the real server route is `tests/agent_e2e.py`.

use std::ffi::OsString;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{command, run_to_exit, Server};
use crate::stand_in::{closed_port, Reply, Seen, StandIn};

const READY: &str = "pod-identity-store agent listening on http://";
const CLUSTER: &str = "dev";
/// Tokens the stand-in knows (JWT-shaped, as the model's pattern wants).
const POD_A: &str = "eyJhbGciOiJSUzI1NiJ9.pod-a.sig";
const POD_B: &str = "eyJhbGciOiJSUzI1NiJ9.pod-b.sig";
const EXPIRED: &str = "eyJhbGciOiJSUzI1NiJ9.expired.sig";
const UNKNOWN_SA: &str = "eyJhbGciOiJSUzI1NiJ9.unknown-sa.sig";
const LAPSED: &str = "eyJhbGciOiJSUzI1NiJ9.lapsed-credentials.sig";
/// The AWS variables that would let the host's own setup take part.
const AWS_VARS: [&str; 9] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
];

fn now() -> i64 {
    crate::helpers::now_seconds() as i64
}

/// The canned answer of the stand-in eks-auth server for one token.
fn eks_auth(request: &Seen) -> Reply {
    let token = serde_json::from_str::<Value>(&request.body)
        .ok()
        .and_then(|b| b["token"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let error = |status, kind: &str, message: &str| Reply {
        status,
        headers: vec![
            ("x-amzn-errortype".into(), kind.into()),
            ("content-type".into(), "application/json".into()),
        ],
        body: json!({ "message": message }).to_string(),
    };
    match token.as_str() {
        POD_A => Reply::json(200, &minted("a", "111122223333", now() + 3600)),
        POD_B => Reply::json(200, &minted("b", "444455556666", now() + 3600)),
        LAPSED => Reply::json(200, &minted("lapsed", "111122223333", now() - 10)),
        EXPIRED => error(400, "ExpiredTokenException", "the token expired at 12:00"),
        UNKNOWN_SA => error(
            404,
            "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazon.eks.auth/",
            "no pod identity association for namespace default, service account other",
        ),
        _ => error(400, "InvalidTokenException", "unknown token"),
    }
}

/// An AssumeRoleForPodIdentity answer for pod `pod`, credentials expiring
/// at `expiration`.
fn minted(pod: &str, account: &str, expiration: i64) -> Value {
    json!({
        "subject": {"namespace": "default", "serviceAccount": "app"},
        "audience": "pods.eks.amazonaws.com",
        "podIdentityAssociation": {
            "associationArn": format!("arn:aws:eks:us-east-1:{account}:podidentityassociation/dev/a-{pod}"),
            "associationId": format!("a-{pod}"),
        },
        "assumedRoleUser": {
            "arn": format!("arn:aws:sts::{account}:assumed-role/app/eks-dev-{pod}-0001"),
            "assumeRoleId": format!("AROAEXAMPLE:eks-dev-{pod}-0001"),
        },
        "credentials": {
            "accessKeyId": format!("ASIA{}", pod.to_uppercase()),
            "secretAccessKey": format!("secret-{pod}"),
            "sessionToken": format!("session-{pod}"),
            "expiration": expiration,
        },
    })
}

fn iso8601(epoch_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_seconds)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The agent, started with `args` after `agent --listen 127.0.0.1:0`, with
/// no AWS setup of the host's and no instance metadata lookups.
struct Running {
    process: Server,
    _dir: tempfile::TempDir,
}

fn agent(args: &[&str], env: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["agent", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut cmd = agent_command(&all, &dir);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let process =
        Server::start_until(cmd, &dir.path().join("agent.log"), READY).expect("the agent starts");
    Running { process, _dir: dir }
}

fn agent_command(args: &[&str], dir: &tempfile::TempDir) -> std::process::Command {
    let missing: OsString = dir.path().join("no-such-file").into();
    let mut cmd = command(
        args,
        &[
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", missing.clone()),
            ("AWS_SHARED_CREDENTIALS_FILE", missing),
        ],
    );
    for var in AWS_VARS {
        cmd.env_remove(var);
    }
    cmd
}

impl Running {
    /// GET /v1/credentials with `token` as the Authorization header (none
    /// when `None`): the status and the JSON body.
    fn credentials(&self, token: Option<&str>) -> (u16, Value) {
        let url = format!("http://{}/v1/credentials", self.process.addr);
        let mut request = ureq::get(&url).timeout(Duration::from_secs(30));
        if let Some(token) = token {
            request = request.set("Authorization", token);
        }
        let response = match request.call() {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(e) => panic!("GET {url}: {e}"),
        };
        (response.status(), response.into_json().unwrap())
    }
}

/// The stand-in eks-auth server, and an agent in front of it with a key.
fn keyed_agent() -> (StandIn, Running) {
    let server = StandIn::start(eks_auth);
    let agent = agent(&with_key(&server.url()), &[]);
    (server, agent)
}

fn with_key(server: &str) -> Vec<&str> {
    vec![
        "--server",
        server,
        "--cluster",
        CLUSTER,
        "--access-key-id",
        "AKIDAGENT",
        "--secret-access-key",
        "agent-secret",
    ]
}

#[test]
fn the_agent_answers_the_servers_credentials_in_the_container_credentials_shape() {
    let (server, agent) = keyed_agent();
    let before = now();
    let (status, body) = agent.credentials(Some(POD_A));
    assert_eq!(status, 200, "{body}");
    let expiration = body["Expiration"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        json!({
            "AccessKeyId": "ASIAA",
            "SecretAccessKey": "secret-a",
            "Token": "session-a",
            "AccountId": "111122223333",
            "Expiration": expiration,
        })
    );
    // The stand-in minted them to expire an hour after the call.
    assert!(
        [before + 3600, before + 3601]
            .map(iso8601)
            .contains(&expiration),
        "{expiration}"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/clusters/dev/assume-role-for-pod-identity");
    assert_eq!(
        serde_json::from_str::<Value>(&seen[0].body).unwrap(),
        json!({ "token": POD_A })
    );
}

#[test]
fn a_second_call_with_the_same_token_is_answered_from_the_cache_and_another_token_is_not() {
    let (server, agent) = keyed_agent();
    let (_, first) = agent.credentials(Some(POD_A));
    let (status, again) = agent.credentials(Some(POD_A));
    assert_eq!(status, 200);
    assert_eq!(again, first);
    assert_eq!(server.seen().len(), 1, "the second call reached the server");
    let (status, other) = agent.credentials(Some(POD_B));
    assert_eq!(status, 200, "{other}");
    assert_eq!(other["AccessKeyId"], "ASIAB");
    assert_eq!(other["AccountId"], "444455556666");
    assert_eq!(
        server.seen().len(),
        2,
        "another token must reach the server"
    );
    assert_eq!(agent.credentials(Some(POD_A)).1, first);
    assert_eq!(server.seen().len(), 2);
}

#[test]
fn credentials_that_have_already_expired_are_not_kept() {
    let (server, agent) = keyed_agent();
    assert_eq!(agent.credentials(Some(LAPSED)).0, 200);
    assert_eq!(agent.credentials(Some(LAPSED)).0, 200);
    assert_eq!(server.seen().len(), 2);
}

#[test]
fn a_call_without_a_token_gets_400_saying_where_the_token_goes() {
    let (server, agent) = keyed_agent();
    for token in [None, Some("  ")] {
        let (status, body) = agent.credentials(token);
        assert_eq!(status, 400, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("Authorization"), "{message}");
        assert!(
            message.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            "{message}"
        );
    }
    assert!(server.seen().is_empty());
}

#[test]
fn the_servers_errors_are_passed_on_with_their_status_and_message_and_not_kept() {
    let (server, agent) = keyed_agent();
    let (status, body) = agent.credentials(Some(EXPIRED));
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"code": "ExpiredTokenException", "message": "the token expired at 12:00"})
    );
    let (status, body) = agent.credentials(Some(UNKNOWN_SA));
    assert_eq!(status, 404);
    assert_eq!(body["code"], "ResourceNotFoundException");
    assert_eq!(
        body["message"],
        "no pod identity association for namespace default, service account other"
    );
    agent.credentials(Some(EXPIRED));
    assert_eq!(server.seen().len(), 3, "an error must not be cached");
}

#[test]
fn an_unreachable_server_is_a_502_naming_it() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let agent = agent(&with_key(&url), &[]);
    let (status, body) = agent.credentials(Some(POD_A));
    assert_eq!(status, 502, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(&url), "{message}");
}

#[test]
fn calls_are_signed_for_eks_auth_with_the_agents_key_from_flags_or_the_environment() {
    let server = StandIn::start(eks_auth);
    let url = server.url();
    let flags = agent(&with_key(&url), &[]);
    assert_eq!(flags.credentials(Some(POD_A)).0, 200);
    let from_env = agent(
        &[
            "--server",
            &url,
            "--cluster",
            CLUSTER,
            "--region",
            "eu-west-1",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDFROMENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ("AWS_SESSION_TOKEN", "env-session"),
        ],
    );
    assert_eq!(from_env.credentials(Some(POD_A)).0, 200);
    let seen = server.seen();
    assert_signed(&seen[0], "AKIDAGENT", "us-east-1");
    assert_signed(&seen[1], "AKIDFROMENV", "eu-west-1");
    assert_eq!(seen[1].header("x-amz-security-token"), Some("env-session"));
}

/// `request` carries a SigV4 signature of `key_id` for eks-auth in `region`.
fn assert_signed(request: &Seen, key_id: &str, region: &str) {
    let authorization = request.header("authorization").unwrap_or_default();
    let credential = format!("AWS4-HMAC-SHA256 Credential={key_id}/");
    let scope = format!("/{region}/eks-auth/aws4_request");
    assert!(
        authorization.starts_with(&credential) && authorization.contains(&scope),
        "{authorization:?} is not a signature of {key_id} for eks-auth in {region}"
    );
    assert!(request.header("x-amz-date").is_some());
}

#[test]
fn without_any_key_the_calls_go_unsigned() {
    let server = StandIn::start(eks_auth);
    let url = server.url();
    let agent = agent(&["--server", &url, "--cluster", CLUSTER], &[]);
    assert_eq!(agent.credentials(Some(POD_A)).0, 200);
    let seen = server.seen();
    assert_eq!(seen[0].header("authorization"), None);
}

#[test]
fn bad_agent_settings_are_refused_at_start_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "--listen 127.0.0.1:0 --server localhost:8080 --cluster dev",
            "--server",
        ),
        (
            "--listen 127.0.0.1:0 --server http://127.0.0.1:1 --cluster dev.cluster",
            "--cluster",
        ),
        ("--server http://127.0.0.1:1 --cluster dev", "--listen"),
        (
            "--listen 127.0.0.1:0 --server http://127.0.0.1:1 --cluster dev --access-key-id A",
            "--secret-access-key",
        ),
    ];
    for (args, flag) in cases {
        let args: Vec<&str> = std::iter::once("agent").chain(args.split(' ')).collect();
        let exit = run_to_exit(agent_command(&args, &dir));
        assert!(!exit.status.success(), "{args:?} started");
        assert!(exit.stderr.contains(flag), "{args:?}: {}", exit.stderr);
    }
}

/// The agent in front of the real server with `auth.mode = "sigv4"`: its
/// calls are signed for `eks-auth` with its own key, so the server answers a
/// key of its file with credentials and a key it does not know with 403.
#[test]
fn the_agent_signs_its_calls_to_a_server_that_checks_signatures() {
    use crate::auth::{signed, AuthApp, Signer, ADMIN, PLAIN};
    let server = AuthApp::spawn("");
    let base = server.app.base.trim_end_matches('/').to_owned();
    let admin = Signer::new(ADMIN);
    signed(
        &base,
        &admin,
        "POST",
        "/clusters",
        Some(
            &json!({"name": CLUSTER, "roleArn": crate::helpers::role("cluster"),
                     "resourcesVpcConfig": {}}),
        ),
    );
    signed(
        &base,
        &admin,
        "POST",
        &format!("/clusters/{CLUSTER}/pod-identity-associations"),
        Some(&json!({"namespace": "web", "serviceAccount": "app",
                     "roleArn": crate::helpers::role("web-app")})),
    );
    let minted = signed(
        &base,
        &admin,
        "POST",
        &format!("/admin/v1/clusters/{CLUSTER}/service-account-token"),
        Some(&json!({"namespace": "web", "serviceAccount": "app", "podName": "web-0"})),
    );
    let token = minted.body["token"].as_str().expect("a token").to_owned();

    let keyed = agent(
        &[
            "--server",
            &base,
            "--cluster",
            CLUSTER,
            "--access-key-id",
            PLAIN.id,
            "--secret-access-key",
            PLAIN.secret,
        ],
        &[],
    );
    let (status, body) = keyed.credentials(Some(&token));
    assert_eq!(status, 200, "{body}");
    assert!(
        body["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
        "{body}"
    );

    let stranger = agent(
        &[
            "--server",
            &base,
            "--cluster",
            CLUSTER,
            "--access-key-id",
            "AKIDSTRANGER00000009",
            "--secret-access-key",
            "stranger-secret",
        ],
        &[],
    );
    let (status, body) = stranger.credentials(Some(&token));
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "UnrecognizedClientException", "{body}");
}
