//! Switchable faults (`[faults]`, `/admin/v1/faults`): EKS's throttling,
//! errors, lost answers, latency and propagation delay on demand, met by
//! hand-written HTTP and by the AWS SDK's own retry logic.

use std::time::{Duration, Instant};

use aws_sdk_eks::config::retry::RetryConfig;
use serde_json::{json, Value};

use crate::helpers::{
    command, role, run_to_exit, s, sample, Answer, TestApp, CLOCK_CONTROL, INJECTED,
};
use crate::sdk::{ok, sdk_config};

/// The series of one kind and operation on the metrics page.
fn injected(app: &TestApp, kind: &str, operation: &str) -> f64 {
    let series = format!(
        "pod_identity_store_faults_injected_total{{kind=\"{kind}\",operation=\"{operation}\"}}"
    );
    sample(&app.metrics(), &series).unwrap_or(0.0)
}

fn requests(app: &TestApp, operation: &str, status: u16) -> f64 {
    let series = format!(
        "pod_identity_store_requests_total{{operation=\"{operation}\",status=\"{status}\"}}"
    );
    sample(&app.metrics(), &series).unwrap_or(0.0)
}

/// An association request for `service_account` in namespace `ns`.
fn association(service_account: &str, token: Option<&str>) -> Value {
    let mut body = json!({
        "namespace": "ns",
        "serviceAccount": service_account,
        "roleArn": role("app"),
    });
    if let Some(token) = token {
        body["clientRequestToken"] = json!(token);
    }
    body
}

/// The message of an injected error, checked to say which rule and kind.
#[track_caller]
fn injected_error(answer: &Answer, status: u16, error_type: &str, rule: &str) -> String {
    let message = answer.error(status, error_type);
    assert!(message.contains(&format!("{INJECTED} {rule}")), "{message}");
    message
}

/// A server with cluster `dev` and `document` (`{"rules": [...]}`) in force.
#[track_caller]
fn dev_with_faults(document: Value) -> TestApp {
    let app = TestApp::spawn();
    app.given_cluster("dev");
    app.put_faults(&document).ok();
    app
}

fn ids(listing: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = listing
        .iter()
        .map(|a| s(a, "associationId").to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_rules_are_listed_replaced_and_removed_through_the_admin_api() {
    let app = TestApp::spawn();
    assert_eq!(app.get_faults().ok(), &json!({"seed": 0, "rules": []}));
    let document = json!({"seed": 11, "rules": [
        {"operations": ["DescribeCluster"], "clusters": ["a"], "kind": "error", "type": "ServiceUnavailableException"},
        {"operations": ["*"], "kind": "throttle", "rate_per_second": 0.5, "burst": 2},
    ]});
    let answer = app.put_faults(&document);
    let expected = json!({"seed": 11, "rules": [
        {"operations": ["DescribeCluster"], "clusters": ["a"], "kind": "error", "type": "ServiceUnavailableException", "probability": 1.0},
        {"operations": ["*"], "kind": "throttle", "rate_per_second": 0.5, "burst": 2},
    ]});
    assert_eq!(answer.ok(), &expected);
    assert_eq!(app.get_faults().ok(), &expected);
    // What GET answers can be sent back as it is.
    assert_eq!(app.put_faults(&expected).ok(), &expected);
    assert_eq!(app.delete_faults().ok(), &json!({"seed": 11, "rules": []}));
    app.given_cluster("a");
    app.describe_cluster("a").cluster();
    app.request("POST", "/admin/v1/faults", None, None)
        .error(405, "UnknownOperationException");
}

#[test]
fn an_invalid_rule_is_refused_naming_its_index_and_field_and_nothing_changes() {
    let app = TestApp::spawn();
    let valid = json!({"operations": ["ListClusters"], "kind": "error", "probability": 0.0});
    let in_force = app
        .put_faults(&json!({"seed": 5, "rules": [valid]}))
        .ok()
        .clone();
    let ops = json!(["*"]);
    for (rule, field, says) in [
        (
            json!({"operations": ["DescribeEverything"], "kind": "error"}),
            "operations",
            "DescribeEverything",
        ),
        (
            json!({"operations": ["Health"], "kind": "error"}),
            "operations",
            "not an operation that can meet a fault",
        ),
        (
            json!({"operations": ops, "kind": "error", "probability": 1.5}),
            "probability",
            "from 0 to 1",
        ),
        (
            json!({"operations": ops, "kind": "error_after_commit", "probability": -1}),
            "probability",
            "from 0 to 1",
        ),
        (
            json!({"operations": ops, "kind": "throttle", "rate_per_second": 0, "burst": 1}),
            "rate_per_second",
            "above 0",
        ),
        (
            json!({"operations": ops, "kind": "throttle", "rate_per_second": 1, "burst": 0}),
            "burst",
            "from 1",
        ),
        (
            json!({"operations": ops, "kind": "latency", "min_ms": 9, "max_ms": 3}),
            "min_ms",
            "max_ms",
        ),
        (
            json!({"operations": ops, "kind": "flood"}),
            "kind",
            "throttle, error, error_after_commit, latency, propagation_delay",
        ),
        (
            json!({"operations": ops, "kind": "error", "rate": 3}),
            "rate",
            "not a field",
        ),
        (
            json!({"operations": ops, "kind": "error", "type": "AccessDeniedException"}),
            "type",
            "ServerException",
        ),
    ] {
        let document = json!({"seed": 9, "rules": [valid, rule]});
        let message = app
            .put_faults(&document)
            .error(400, "InvalidParameterException");
        assert!(
            message.contains(&format!("rules[1].{field}")) && message.contains(says),
            "{rule}: {message}"
        );
        assert!(message.contains("Nothing changed"), "{message}");
        assert_eq!(app.get_faults().ok(), &in_force, "{rule} changed the rules");
    }
    let message = app
        .put_faults(&json!({"seed": 1}))
        .error(400, "InvalidParameterException");
    assert!(message.contains("rules is required"), "{message}");
}

#[test]
fn a_throttle_answers_429_beyond_its_burst_and_never_touches_the_servers_own_routes() {
    let app = dev_with_faults(json!({"rules": [
        {"operations": ["*"], "kind": "throttle", "rate_per_second": 0.001, "burst": 3},
    ]}));
    for _ in 0..3 {
        app.describe_cluster("dev").cluster();
    }
    for _ in 0..2 {
        let answer = app.describe_cluster("dev");
        let message = injected_error(&answer, 429, "ThrottlingException", "0, kind throttle");
        assert!(message.starts_with("Rate exceeded"), "{message}");
    }
    // Health, metrics and the admin routes are never faulted.
    for _ in 0..3 {
        for path in ["/healthz", "/readyz"] {
            let url = format!("{}{path}", app.base);
            assert_eq!(ureq::get(&url).call().unwrap().status(), 200);
        }
        app.get_faults().ok();
        app.metrics();
        app.export();
    }
    assert_eq!(injected(&app, "throttle", "DescribeCluster"), 2.0);
    assert_eq!(requests(&app, "DescribeCluster", 429), 2.0);
    app.delete_faults().ok();
    app.describe_cluster("dev").cluster();
}

#[test]
fn each_injected_fault_logs_one_debug_line_with_its_request_id_and_no_error() {
    let app = TestApp::spawn_with_env(&[("RUST_LOG", "debug".into())]);
    app.given_cluster("dev");
    app.put_faults(&json!({"rules": [
        {"operations": ["DescribeCluster"], "kind": "error"},
    ]}))
    .ok();
    let answer = app.describe_cluster("dev");
    injected_error(&answer, 500, "ServerException", "0, kind error");
    let request_id = answer.request_id.clone().unwrap();
    let log = std::fs::read_to_string(&app.log).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&request_id)).collect();
    let injected: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("DEBUG") && l.contains("fault injected: rule 0 (error)"))
        .collect();
    assert_eq!(injected.len(), 1, "{lines:#?}");
    assert!(
        lines.iter().all(|l| !l.contains("ERROR")),
        "an injected fault is not a server error: {lines:#?}"
    );
}

#[test]
fn an_injected_error_changes_nothing() {
    let app = dev_with_faults(json!({"rules": [
        {"operations": ["CreatePodIdentityAssociation"], "kind": "error", "probability": 1},
        {"operations": ["DeletePodIdentityAssociation"], "kind": "error", "type": "ServiceUnavailableException"},
    ]}));
    let answer = app.create_association("dev", &association("app", Some("t-1")));
    injected_error(&answer, 500, "ServerException", "0, kind error");
    assert_eq!(app.list_all_associations("dev", &[]), Vec::<Value>::new());
    app.delete_faults().ok();
    let created = app
        .create_association("dev", &association("app", Some("t-1")))
        .association();
    let id = s(&created, "associationId");
    app.put_faults(&json!({"rules": [
        {"operations": ["DeletePodIdentityAssociation"], "kind": "error", "type": "ServiceUnavailableException"},
    ]}))
    .ok();
    let answer = app.delete_association("dev", id);
    injected_error(&answer, 503, "ServiceUnavailableException", "0, kind error");
    assert_eq!(app.describe_association("dev", id).association(), created);
    assert_eq!(injected(&app, "error", "CreatePodIdentityAssociation"), 1.0);
    assert_eq!(injected(&app, "error", "DeletePodIdentityAssociation"), 1.0);
}

#[test]
fn a_lost_answer_is_saved_and_a_retry_with_its_token_gets_the_original_answer() {
    let app = dev_with_faults(json!({"rules": [
        {"operations": ["CreatePodIdentityAssociation"], "kind": "error_after_commit"},
    ]}));
    let answer = app.create_association("dev", &association("app", Some("token-1")));
    let message = injected_error(
        &answer,
        500,
        "ServerException",
        "0, kind error_after_commit",
    );
    assert!(message.contains("clientRequestToken"), "{message}");
    // The write was made: every retry meets the real state.
    let listed = app.list_all_associations("dev", &[]);
    assert_eq!(listed.len(), 1);
    app.delete_faults().ok();
    let replayed = app
        .create_association("dev", &association("app", Some("token-1")))
        .association();
    assert_eq!(
        s(&replayed, "associationId"),
        s(&listed[0], "associationId")
    );
    app.create_association("dev", &association("app", None))
        .error(409, "ResourceInUseException");
    assert_eq!(app.list_all_associations("dev", &[]).len(), 1);
    assert_eq!(
        injected(&app, "error_after_commit", "CreatePodIdentityAssociation"),
        1.0
    );
}

#[test]
fn a_rule_for_one_cluster_does_not_touch_another() {
    let app = TestApp::spawn();
    app.given_cluster("red");
    app.given_cluster("blue");
    let red_arn = s(&app.describe_cluster("red").cluster(), "arn").to_owned();
    app.put_faults(&json!({"rules": [
        {"operations": ["*"], "clusters": ["red"], "kind": "error"},
    ]}))
    .ok();
    for _ in 0..5 {
        app.describe_cluster("blue").cluster();
        app.given_association("blue", "ns", "app", &role("r"));
        app.delete_association("blue", "a-0000000000000000x")
            .error(404, "ResourceNotFoundException");
        app.list_clusters("").ok();
        injected_error(&app.describe_cluster("red"), 500, "ServerException", "0");
        injected_error(
            &app.list_associations("red", ""),
            500,
            "ServerException",
            "0",
        );
        injected_error(&app.list_tags(&red_arn), 500, "ServerException", "0");
        app.given_association("blue", "ns", "other", &role("r"));
        app.delete_faults().ok();
        app.put_faults(&json!({"rules": [
            {"operations": ["*"], "clusters": ["red"], "kind": "error"},
        ]}))
        .ok();
        // Clean up for the next round.
        for a in app.list_all_associations("blue", &[]) {
            app.delete_association("blue", s(&a, "associationId"))
                .association();
        }
    }
    assert_eq!(injected(&app, "error", "DescribeCluster"), 5.0);
    assert_eq!(injected(&app, "error", "ListTagsForResource"), 5.0);
}

/// Which of `count` DescribeCluster calls met an injected error.
fn fault_pattern(app: &TestApp, count: usize) -> Vec<bool> {
    (0..count)
        .map(|_| app.describe_cluster("dev").status == 500)
        .collect()
}

#[test]
fn the_same_seed_meets_the_same_faults() {
    let app = TestApp::spawn();
    app.given_cluster("dev");
    let rules = |seed: u64| {
        json!({"seed": seed, "rules": [
            {"operations": ["DescribeCluster"], "kind": "error", "probability": 0.5},
        ]})
    };
    app.put_faults(&rules(42)).ok();
    let first = fault_pattern(&app, 30);
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
    // Another operation's requests draw nothing from the generator.
    app.put_faults(&rules(42)).ok();
    let mut second = fault_pattern(&app, 10);
    app.list_clusters("").ok();
    second.extend(fault_pattern(&app, 20));
    assert_eq!(second, first);
    app.put_faults(&rules(43)).ok();
    assert_ne!(fault_pattern(&app, 30), first);
    // The seed of the config, on a fresh server, gives the same again.
    let other = TestApp::spawn_with_config(
        "[faults]\nseed = 42\n[[faults.rules]]\noperations = [\"DescribeCluster\"]\n\
         kind = \"error\"\nprobability = 0.5\n",
    );
    // Not `given_cluster`, whose DescribeCluster would draw.
    other.create_cluster("dev").cluster();
    assert_eq!(fault_pattern(&other, 30), first);
}

#[test]
fn latency_waits_on_a_timer_without_holding_up_other_requests() {
    let app = dev_with_faults(json!({"rules": [
        {"operations": ["DescribeCluster"], "kind": "latency", "min_ms": 400, "max_ms": 400},
    ]}));
    // More requests at once than the server has workers: if a delay held
    // its worker, they would take several delays in turn.
    let started = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let client = app.client();
            std::thread::spawn(move || {
                let started = Instant::now();
                client.describe_cluster("dev").cluster();
                started.elapsed()
            })
        })
        .collect();
    for thread in threads {
        let took = thread.join().unwrap();
        assert!(took >= Duration::from_millis(400), "{took:?}");
    }
    let all = started.elapsed();
    assert!(all < Duration::from_millis(1_600), "{all:?}");
    assert_eq!(injected(&app, "latency", "DescribeCluster"), 8.0);
    // Other operations are not delayed.
    let started = Instant::now();
    app.list_clusters("").ok();
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[test]
fn a_propagation_delay_keeps_list_answering_the_old_list_until_it_passes() {
    let app = TestApp::spawn_with_config(CLOCK_CONTROL);
    app.given_cluster("dev");
    let kept = app.given_association("dev", "ns", "kept", &role("r"));
    let gone = app.given_association("dev", "ns", "gone", &role("r"));
    app.put_faults(&json!({"rules": [
        {"operations": ["AssumeRoleForPodIdentity"], "clusters": ["dev"], "kind": "propagation_delay", "delay_ms": 60000, "lists": true},
    ]}))
    .ok();
    let before = ids(&app.list_all_associations("dev", &[]));
    let new = app.given_association("dev", "ns", "new", &role("r"));
    let gone_id = s(&gone, "associationId");
    app.delete_association("dev", gone_id).association();
    app.update_association(
        "dev",
        s(&kept, "associationId"),
        &json!({"roleArn": role("other")}),
    )
    .association();
    // Describe answers the new state at once; List the old one.
    app.describe_association("dev", s(&new, "associationId"))
        .association();
    app.describe_association("dev", gone_id)
        .error(404, "ResourceNotFoundException");
    assert_eq!(ids(&app.list_all_associations("dev", &[])), before);
    let by_sa = app.list_all_associations("dev", &[("serviceAccount", "gone")]);
    assert_eq!(ids(&by_sa), vec![gone_id.to_owned()]);
    assert!(injected(&app, "propagation_delay", "ListPodIdentityAssociations") >= 2.0);
    app.advance_clock(61);
    let after = ids(&app.list_all_associations("dev", &[]));
    assert_eq!(
        after,
        ids(&[kept.clone(), new.clone()]),
        "after the delay List answers the new state"
    );
    // Without `lists`, List is never held back.
    app.put_faults(&json!({"rules": [
        {"operations": ["*"], "kind": "propagation_delay", "delay_ms": 60000},
    ]}))
    .ok();
    let late = app.given_association("dev", "ns", "late", &role("r"));
    assert!(
        ids(&app.list_all_associations("dev", &[])).contains(&s(&late, "associationId").to_owned())
    );
}

#[test]
fn a_faulted_request_never_loses_or_corrupts_an_acknowledged_write_across_a_kill() {
    let mut app = TestApp::spawn_with_config(
        "[faults]\nseed = 1\n\
         [[faults.rules]]\noperations = [\"CreatePodIdentityAssociation\"]\nkind = \"error_after_commit\"\n\
         [[faults.rules]]\noperations = [\"UpdatePodIdentityAssociation\", \"DeletePodIdentityAssociation\"]\n\
         kind = \"error\"\n",
    );
    let configured = app.get_faults().ok().clone();
    assert_eq!(configured["rules"].as_array().unwrap().len(), 2);
    app.given_cluster("dev");
    let answer = app.create_association("dev", &association("app", Some("lost-1")));
    injected_error(
        &answer,
        500,
        "ServerException",
        "0, kind error_after_commit",
    );
    let created = app.list_all_associations("dev", &[]);
    assert_eq!(created.len(), 1);
    let id = s(&created[0], "associationId").to_owned();
    injected_error(
        &app.update_association("dev", &id, &json!({"roleArn": role("other")})),
        500,
        "ServerException",
        "1, kind error",
    );
    injected_error(
        &app.delete_association("dev", &id),
        500,
        "ServerException",
        "1",
    );
    app.put_faults(&json!({"rules": []})).ok();
    app.restart();
    // A restart returns to the config's rules.
    assert_eq!(app.get_faults().ok(), &configured);
    app.delete_faults().ok();
    let described = app.describe_association("dev", &id).association();
    assert_eq!(described["roleArn"], json!(role("app")));
    let replayed = app
        .create_association("dev", &association("app", Some("lost-1")))
        .association();
    assert_eq!(replayed, described);
    // That answer is acknowledged: faulted changes to it, then a kill, leave it whole.
    app.put_faults(&json!({"rules": [
        {"operations": ["UpdatePodIdentityAssociation"], "kind": "error", "type": "ServiceUnavailableException"},
        {"operations": ["DeletePodIdentityAssociation"], "kind": "error"},
    ]}))
    .ok();
    let update = json!({"roleArn": role("other"), "clientRequestToken": "u-1"});
    injected_error(
        &app.update_association("dev", &id, &update),
        503,
        "ServiceUnavailableException",
        "0",
    );
    injected_error(
        &app.delete_association("dev", &id),
        500,
        "ServerException",
        "1",
    );
    app.restart();
    assert_eq!(app.describe_association("dev", &id).association(), replayed);
    assert_eq!(app.list_all_associations("dev", &[]).len(), 1);
    // Nothing of the refused Update was saved, not even its token.
    app.delete_faults().ok();
    let updated = app.update_association("dev", &id, &update).association();
    assert_eq!(updated["roleArn"], json!(role("other")));
}

#[test]
fn a_bad_rule_in_the_config_stops_start_up_naming_its_index_and_field() {
    let app = TestApp::unstarted();
    let config = app.data_dir.with_file_name("bad.toml");
    std::fs::write(
        &config,
        "[[faults.rules]]\noperations = [\"*\"]\nkind = \"latency\"\nmin_ms = 10\nmax_ms = 1\n",
    )
    .unwrap();
    let args = [
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data-dir".as_ref(),
        app.data_dir.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
    ];
    let exit = run_to_exit(command(&args, &[]));
    assert!(!exit.status.success());
    assert!(
        exit.stderr.contains("faults.rules[0].min_ms"),
        "{}",
        exit.stderr
    );
}

/// An SDK client of `app` whose standard retries back off briefly, and
/// try often enough to outlast a slow token bucket.
async fn retrying_sdk(app: &TestApp, max_attempts: u32) -> aws_sdk_eks::Client {
    let config = aws_sdk_eks::config::Builder::from(&sdk_config(app).await)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .build();
    aws_sdk_eks::Client::from_conf(config)
}

#[tokio::test]
async fn the_sdk_retries_through_throttling_until_it_succeeds() {
    let app = dev_with_faults(json!({"rules": [
        {"operations": ["DescribeCluster"], "kind": "throttle", "rate_per_second": 4, "burst": 1},
    ]}));
    let eks = retrying_sdk(&app, 10).await;
    for _ in 0..3 {
        let cluster = ok(eks.describe_cluster().name("dev").send().await);
        assert_eq!(cluster.cluster().and_then(|c| c.name()), Some("dev"));
    }
    let throttled = injected(&app, "throttle", "DescribeCluster");
    assert!(throttled >= 1.0, "{throttled}");
    assert_eq!(requests(&app, "DescribeCluster", 429), throttled);
    assert_eq!(requests(&app, "DescribeCluster", 200), 4.0);
}

#[tokio::test]
async fn an_sdk_retry_after_a_lost_create_answer_ends_with_exactly_one_association() {
    let app = TestApp::spawn();
    app.given_cluster("dev");
    // Seed 3's first draw fires at 0.5 and its second does not: the first
    // Create's answer is lost, the SDK's retry (same token) is answered.
    app.put_faults(&json!({"seed": 3, "rules": [
        {"operations": ["CreatePodIdentityAssociation"], "kind": "error_after_commit", "probability": 0.5},
    ]}))
    .ok();
    let eks = retrying_sdk(&app, 3).await;
    let created = ok(eks
        .create_pod_identity_association()
        .cluster_name("dev")
        .namespace("ns")
        .service_account("app")
        .role_arn(role("app"))
        .send()
        .await);
    let id = created
        .association()
        .and_then(|a| a.association_id())
        .unwrap();
    let listed = app.list_all_associations("dev", &[]);
    assert_eq!(ids(&listed), vec![id.to_owned()]);
    assert_eq!(
        injected(&app, "error_after_commit", "CreatePodIdentityAssociation"),
        1.0
    );
    assert_eq!(requests(&app, "CreatePodIdentityAssociation", 500), 1.0);
    assert_eq!(requests(&app, "CreatePodIdentityAssociation", 200), 1.0);
}
