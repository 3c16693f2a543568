//! The `sts` credential provider against moto's STS (`moto_server`, PyPI
//! `moto[server]`, started here on 127.0.0.1 and a free port), and against
//! a stand-in STS for the answers moto never gives (refusals, 5xx).
//!
//! `.ci/run` installs moto into its venv and points `MOTO_SERVER` at it,
//! with `POD_IDENTITY_STORE_REQUIRE_MOTO=1` so that a missing moto fails
//! there; on a box without it these tests say so and pass without running.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sts::config::Credentials;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use pod_identity_store::eksauth::provider::{IssuedCredentials, ProviderError, RoleRequest};
use pod_identity_store::eksauth::sts::{https_client, StsProvider};

use crate::helpers::now_seconds;
use crate::stand_in::{closed_port, Reply, StandIn};

const SESSION: &str = "eks-dev-web-0-4b1e0f8c-7d2a-4c55-9a51-6f3e2d1c0b9a";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

/// A running `moto_server`, killed (by its PID) when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `MOTO_SERVER`, else the CI venv's, else one on PATH.
fn moto_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return Some(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ci-venv/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.is_file())
}

/// Starts moto, or says why not and gives `None` (a failure instead when
/// `POD_IDENTITY_STORE_REQUIRE_MOTO` is set, as in CI).
fn moto() -> Option<Moto> {
    let Some(program) = moto_server() else {
        assert!(
            std::env::var_os("POD_IDENTITY_STORE_REQUIRE_MOTO").is_none(),
            "moto_server is required (POD_IDENTITY_STORE_REQUIRE_MOTO) but not found: \
             set MOTO_SERVER or run .ci/run, which installs it"
        );
        eprintln!(
            "skipped: moto_server not found (set MOTO_SERVER, put it on PATH, or run .ci/run, \
             which installs moto[server] into target/ci-venv)"
        );
        return None;
    };
    let port = closed_port();
    let child = Command::new(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    // moto needs a second or two to import its services; it serves once
    // the port takes connections.
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(moto)
}

/// The SDK configuration of a server whose own credentials are `key`.
async fn sdk_config(endpoint: &str, key: Credentials) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .region(Region::new("us-east-1"))
        .credentials_provider(key)
        .endpoint_url(endpoint)
        .http_client(https_client())
        .load()
        .await
}

/// Who `issued` authenticates as, asked of moto's STS with them.
async fn caller_identity(moto: &Moto, issued: &IssuedCredentials) -> GetCallerIdentityOutput {
    let minted = Credentials::new(
        issued.access_key_id.clone(),
        issued.secret_access_key.clone(),
        Some(issued.session_token.clone()),
        None,
        "minted",
    );
    aws_sdk_sts::Client::new(&sdk_config(&moto.url, minted).await)
        .get_caller_identity()
        .send()
        .await
        .unwrap()
}

async fn provider(endpoint: &str) -> StsProvider {
    let key = Credentials::new("AKIDSERVER", "server-secret", None, None, "test");
    StsProvider::from_sdk_config(&sdk_config(endpoint, key).await)
}

fn request(role: &str) -> RoleRequest {
    let tags = [
        (
            "eks-cluster-arn",
            "arn:aws:eks:us-east-1:123456789012:cluster/dev",
        ),
        ("eks-cluster-name", "dev"),
        ("kubernetes-namespace", "default"),
        ("kubernetes-service-account", "web"),
        ("kubernetes-pod-name", "web-0"),
        ("kubernetes-pod-uid", "0b9a6f3e-2d1c-4b1e-9a51-7d2a4c550f8c"),
    ];
    RoleRequest {
        role_arn: role.to_owned(),
        target_role_arn: None,
        external_id: None,
        session_name: SESSION.to_owned(),
        session_tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        transitive_tag_keys: tags.iter().map(|(k, _)| k.to_string()).collect(),
        policy: Some(POLICY.to_owned()),
        duration_seconds: 3600,
    }
}

#[tokio::test]
async fn assume_role_with_tags_and_policy_answers_credentials_of_the_role_and_session() {
    let Some(moto) = moto() else { return };
    let issued = provider(&moto.url)
        .await
        .assume(&request("arn:aws:iam::123456789012:role/web"))
        .await
        .unwrap();
    assert_eq!(
        issued.assumed_role_arn,
        format!("arn:aws:sts::123456789012:assumed-role/web/{SESSION}")
    );
    assert!(
        issued.assumed_role_id.ends_with(&format!(":{SESSION}")),
        "{}",
        issued.assumed_role_id
    );
    assert!(
        issued.access_key_id.starts_with("ASIA"),
        "{}",
        issued.access_key_id
    );
    assert!(!issued.secret_access_key.is_empty() && !issued.session_token.is_empty());
    let expires_in = issued.expiration.as_epoch_seconds() - now_seconds();
    assert!((3500.0..3700.0).contains(&expires_in), "{expires_in}");
}

#[tokio::test]
async fn a_target_role_is_assumed_with_the_first_roles_credentials_and_its_credentials_answered() {
    let Some(moto) = moto() else { return };
    let mut chained = request("arn:aws:iam::123456789012:role/web");
    chained.target_role_arn = Some("arn:aws:iam::111122223333:role/data-reader".into());
    chained.external_id = Some("ext-7".into());
    let sts = provider(&moto.url).await;
    let issued = sts.assume(&chained).await.unwrap();
    assert_eq!(
        issued.assumed_role_arn,
        format!("arn:aws:sts::111122223333:assumed-role/data-reader/{SESSION}")
    );
    let caller = caller_identity(&moto, &issued).await;
    assert_eq!(caller.arn(), Some(issued.assumed_role_arn.as_str()));
    assert_eq!(caller.account(), Some("111122223333"));
}

#[tokio::test]
async fn get_caller_identity_with_the_minted_credentials_names_the_assumed_role() {
    let Some(moto) = moto() else { return };
    let mut untagged = request("arn:aws:iam::123456789012:role/web");
    untagged.session_tags.clear();
    untagged.transitive_tag_keys.clear();
    untagged.policy = None;
    let issued = provider(&moto.url).await.assume(&untagged).await.unwrap();
    let caller = caller_identity(&moto, &issued).await;
    assert_eq!(
        caller.arn(),
        Some(format!("arn:aws:sts::123456789012:assumed-role/web/{SESSION}").as_str())
    );
}

#[tokio::test]
async fn an_sts_that_cannot_be_reached_is_unreachable_naming_it() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let err = provider(&url)
        .await
        .assume(&request("arn:aws:iam::123456789012:role/web"))
        .await
        .unwrap_err();
    match err {
        ProviderError::Unreachable(message) => assert!(message.contains(&url), "{message}"),
        other => panic!("{other:?}"),
    }
}

/// STS's query-protocol error body.
fn sts_error(status: u16, code: &str, message: &str) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "text/xml".into())],
        body: format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
             <Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>r-1</RequestId></ErrorResponse>"
        ),
    }
}

#[tokio::test]
async fn sts_refusals_are_refused_with_sts_message_and_its_failures_unreachable() {
    let denied =
        "User: arn:aws:iam::123456789012:user/server is not authorized to perform: sts:AssumeRole";
    let cases = [
        (403, "AccessDenied", denied, true),
        (
            400,
            "MalformedPolicyDocument",
            "Syntax errors in policy.",
            true,
        ),
        (400, "Throttling", "Rate exceeded", false),
        (500, "InternalFailure", "oops", false),
    ];
    for (status, code, message, refused) in cases {
        // Every attempt (retries included) gets the same answer.
        let sts = StandIn::start(move |_| sts_error(status, code, message));
        let err = provider(&sts.url())
            .await
            .assume(&request("arn:aws:iam::123456789012:role/web"))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(message), "{text}");
        assert!(
            text.contains("arn:aws:iam::123456789012:role/web"),
            "{text}"
        );
        assert_eq!(
            matches!(err, ProviderError::Refused(_)),
            refused,
            "{status}: {err:?}"
        );
        let seen = sts.seen();
        assert!(
            seen[0].body.contains("Action=AssumeRole"),
            "{}",
            seen[0].body
        );
    }
}

/// A stand-in STS that answers every AssumeRole with the same credentials,
/// to read what the provider sent.
fn answering_sts() -> StandIn {
    let answer = "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
        <Credentials><AccessKeyId>ASIAFIRST</AccessKeyId><SecretAccessKey>s</SecretAccessKey>\
        <SessionToken>first-session</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>\
        <AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/t/s</Arn><AssumedRoleId>AROA1:s</AssumedRoleId></AssumedRoleUser>\
        </AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>";
    StandIn::start(move |_| Reply {
        status: 200,
        headers: vec![("content-type".into(), "text/xml".into())],
        body: answer.to_owned(),
    })
}

/// Whether the form has `key` = `value`.
fn has(form: &[(String, String)], key: &str, value: &str) -> bool {
    form.iter().any(|(k, v)| k == key && v == value)
}

#[tokio::test]
async fn a_single_assume_role_carries_tags_transitive_keys_policy_and_duration() {
    let sts = answering_sts();
    let issued = provider(&sts.url())
        .await
        .assume(&request("arn:aws:iam::123456789012:role/web"))
        .await
        .unwrap();
    assert_eq!(issued.access_key_id, "ASIAFIRST");
    assert_eq!(issued.assumed_role_id, "AROA1:s");
    assert_eq!(issued.expiration.as_millis(), 1_893_456_000_000);
    let seen = sts.seen();
    assert_eq!(seen.len(), 1);
    let form = url_decode_form(&seen[0].body);
    assert!(has(&form, "Action", "AssumeRole"), "{form:?}");
    assert!(has(&form, "RoleArn", "arn:aws:iam::123456789012:role/web"));
    assert!(has(&form, "RoleSessionName", SESSION));
    assert!(has(&form, "DurationSeconds", "3600"));
    assert!(has(&form, "Policy", POLICY), "{form:?}");
    assert!(has(&form, "Tags.member.1.Key", "eks-cluster-arn"));
    assert!(has(&form, "Tags.member.2.Key", "eks-cluster-name"));
    assert!(has(&form, "Tags.member.2.Value", "dev"));
    assert!(has(
        &form,
        "TransitiveTagKeys.member.6",
        "kubernetes-pod-uid"
    ));
    assert!(!form.iter().any(|(k, _)| k == "ExternalId"));
    // The server signs with its own key.
    let authorization = seen[0].header("authorization").unwrap();
    assert!(
        authorization.contains("Credential=AKIDSERVER/"),
        "{authorization}"
    );
}

#[tokio::test]
async fn a_chain_sends_the_external_id_and_policy_with_the_second_assume_role_signed_as_the_first_role(
) {
    let sts = answering_sts();
    let mut chained = request("arn:aws:iam::123456789012:role/web");
    chained.target_role_arn = Some("arn:aws:iam::111122223333:role/t".into());
    chained.external_id = Some("ext-7".into());
    chained.duration_seconds = 7200;
    let issued = provider(&sts.url()).await.assume(&chained).await.unwrap();
    assert_eq!(issued.expiration.as_millis(), 1_893_456_000_000);
    let seen = sts.seen();
    assert_eq!(seen.len(), 2);
    let form = |i: usize| url_decode_form(&seen[i].body);
    let first = form(0);
    assert!(has(&first, "DurationSeconds", "7200"), "{first:?}");
    assert!(has(&first, "Tags.member.2.Value", "dev"));
    // The policy narrows the session the pod gets, and the first session
    // must stay free to assume the target.
    assert!(!first.iter().any(|(k, _)| k == "Policy"), "{first:?}");
    let second = form(1);
    assert!(
        has(&second, "RoleArn", "arn:aws:iam::111122223333:role/t"),
        "{second:?}"
    );
    assert!(has(&second, "ExternalId", "ext-7"));
    assert!(has(&second, "Policy", POLICY), "{second:?}");
    // STS's one-hour cap on a chained session.
    assert!(has(&second, "DurationSeconds", "3600"));
    assert!(!second.iter().any(|(k, _)| k.starts_with("Tags.")));
    // Signed with the first role's credentials.
    assert!(seen[1]
        .header("authorization")
        .unwrap()
        .contains("Credential=ASIAFIRST/"));
    assert_eq!(
        seen[1].header("x-amz-security-token"),
        Some("first-session")
    );
}

/// `application/x-www-form-urlencoded` pairs.
fn url_decode_form(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn a_server_without_credentials_of_its_own_is_unreachable_saying_so() {
    let sts = StandIn::start(|_| sts_error(500, "InternalFailure", "never asked"));
    // No credentials anywhere: the test environment has no variables,
    // files or instance metadata.
    let config = aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .region(Region::new("us-east-1"))
        .endpoint_url(sts.url())
        .http_client(https_client())
        .load()
        .await;
    let err = StsProvider::from_sdk_config(&config)
        .assume(&request("arn:aws:iam::123456789012:role/web"))
        .await
        .unwrap_err();
    match err {
        ProviderError::Unreachable(message) => {
            assert!(message.contains("loading credentials"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(sts.seen().is_empty());
}
