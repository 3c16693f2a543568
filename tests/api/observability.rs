//! `/healthz`, `/readyz` and `/metrics`.

use serde_json::json;

use crate::helpers::{role, sample, TestApp};

/// GETs a plain-text page: (status, content type, body).
fn page(app: &TestApp, path: &str) -> (u16, String, String) {
    let url = format!("{}{path}", app.base);
    let response = match ureq::get(&url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let status = response.status();
    let content_type = response
        .header("content-type")
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.into_string().unwrap())
}

#[test]
fn healthz_and_readyz_answer_ok_while_the_store_takes_writes() {
    let app = TestApp::spawn();
    assert_eq!(page(&app, "/healthz").0, 200);
    let (status, _, body) = page(&app, "/readyz");
    assert_eq!((status, body.trim()), (200, "ready"));
}

#[test]
fn metrics_count_requests_by_operation_and_status_and_report_the_store() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    app.given_cluster("c2");
    for i in 0..3 {
        app.create_association(
            "c1",
            &json!({"namespace": "ns", "serviceAccount": format!("sa-{i}"), "roleArn": role("r"), "clientRequestToken": format!("t{i}")}),
        )
        .association();
    }
    app.describe_association("c1", "a-00000000000000000")
        .error(404, "ResourceNotFoundException");

    let (status, content_type, metrics) = page(&app, "/metrics");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let requests = |op: &str, status: u16| {
        sample(
            &metrics,
            &format!("pod_identity_store_requests_total{{operation=\"{op}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(
        requests("CreatePodIdentityAssociation", 200),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        requests("DescribePodIdentityAssociation", 404),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "pod_identity_store_request_duration_seconds_count{operation=\"CreatePodIdentityAssociation\"}"),
        Some(3.0)
    );
    assert_eq!(sample(&metrics, "pod_identity_store_clusters"), Some(2.0));
    assert_eq!(
        sample(&metrics, "pod_identity_store_associations"),
        Some(3.0)
    );
    assert_eq!(sample(&metrics, "pod_identity_store_tokens"), Some(3.0));
    let flushes = sample(&metrics, "pod_identity_store_flushes_total").unwrap();
    let writes = sample(&metrics, "pod_identity_store_writes_flushed_total").unwrap();
    let groups = sample(&metrics, "pod_identity_store_write_groups_total").unwrap();
    // Two clusters and three associations were acknowledged, so each was flushed.
    assert!(
        flushes >= 1.0 && writes >= 5.0 && writes >= flushes,
        "{flushes} flushes, {writes} writes"
    );
    // Each write ran in a group of its own (one client), and nothing else wrote.
    assert_eq!(groups, 5.0, "{groups} groups for 5 writes");
}
