use super::*;

fn rule(value: Value) -> Result<Rule, RuleError> {
    Rule::parse(3, &value)
}

#[track_caller]
fn refused(value: Value, field: &str, says: &str) {
    let err = rule(value.clone()).unwrap_err();
    assert_eq!(err.field, format!("rules[3].{field}"), "{value}: {err}");
    assert!(err.problem.contains(says), "{value}: {err}");
}

#[test]
fn every_kind_parses_with_its_fields_and_defaults() {
    let throttle =
        rule(json!({"operations": ["*"], "kind": "throttle", "rate_per_second": 2.5, "burst": 4}))
            .unwrap();
    assert_eq!(
        throttle.kind,
        Kind::Throttle {
            rate_per_second: 2.5,
            burst: 4
        }
    );
    assert_eq!(throttle.operations, None);
    let error =
        rule(json!({"operations": ["DescribeCluster"], "clusters": ["prod"], "kind": "error"}))
            .unwrap();
    assert_eq!(
        error.kind,
        Kind::Error {
            error: InjectedError::Server,
            probability: 1.0
        }
    );
    assert_eq!(error.clusters, Some(vec!["prod".to_owned()]));
    let unavailable = rule(json!({"operations": ["*"], "kind": "error", "type": "ServiceUnavailableException", "probability": 0.25})).unwrap();
    assert_eq!(
        unavailable.kind,
        Kind::Error {
            error: InjectedError::ServiceUnavailable,
            probability: 0.25
        }
    );
    let lost = rule(json!({"operations": ["CreatePodIdentityAssociation"], "kind": "error_after_commit", "probability": 0})).unwrap();
    assert_eq!(lost.kind, Kind::ErrorAfterCommit { probability: 0.0 });
    let latency =
        rule(json!({"operations": ["*"], "kind": "latency", "min_ms": 5, "max_ms": 5})).unwrap();
    assert_eq!(
        latency.kind,
        Kind::Latency {
            min_ms: 5,
            max_ms: 5,
            probability: 1.0
        }
    );
    let delay = rule(json!({"operations": ["AssumeRoleForPodIdentity"], "kind": "propagation_delay", "delay_ms": 5000, "lists": true})).unwrap();
    assert_eq!(
        delay.kind,
        Kind::PropagationDelay {
            delay_ms: 5000,
            lists: true
        }
    );
}

#[test]
fn the_json_form_parses_back_to_the_same_rules() {
    let spec = FaultSpec::from_json(
        json!({"seed": 9, "rules": [
            {"operations": ["*"], "kind": "throttle", "rate_per_second": 1, "burst": 1},
            {"operations": ["ListClusters"], "clusters": ["a"], "kind": "latency", "min_ms": 0, "max_ms": 3},
            {"operations": ["*"], "kind": "propagation_delay", "delay_ms": 1},
        ]})
        .as_object()
        .unwrap(),
    )
    .unwrap();
    let again = FaultSpec::from_json(spec.to_json().as_object().unwrap()).unwrap();
    assert_eq!(again, spec);
    assert_eq!(spec.to_json()["rules"][2]["lists"], false);
}

#[test]
fn each_invalid_field_is_refused_naming_the_rule_and_the_field() {
    let ops = json!(["*"]);
    refused(
        json!({"operations": ["DescribeNothing"], "kind": "error"}),
        "operations",
        "'DescribeNothing'",
    );
    refused(
        json!({"operations": ["Export"], "kind": "error"}),
        "operations",
        "not an operation that can meet a fault",
    );
    refused(
        json!({"operations": [], "kind": "error"}),
        "operations",
        "non-empty",
    );
    refused(json!({"kind": "error"}), "operations", "required");
    refused(
        json!({"operations": ops, "kind": "error", "probability": 1.5}),
        "probability",
        "from 0 to 1",
    );
    refused(
        json!({"operations": ops, "kind": "error", "probability": -0.1}),
        "probability",
        "from 0 to 1",
    );
    refused(
        json!({"operations": ops, "kind": "error", "type": "Oops"}),
        "type",
        "ServiceUnavailableException",
    );
    refused(
        json!({"operations": ops, "kind": "throttle", "rate_per_second": 0, "burst": 1}),
        "rate_per_second",
        "above 0",
    );
    refused(
        json!({"operations": ops, "kind": "throttle", "rate_per_second": -1, "burst": 1}),
        "rate_per_second",
        "above 0",
    );
    refused(
        json!({"operations": ops, "kind": "throttle", "rate_per_second": 1, "burst": 0}),
        "burst",
        "from 1",
    );
    refused(
        json!({"operations": ops, "kind": "throttle", "rate_per_second": 1}),
        "burst",
        "required",
    );
    refused(
        json!({"operations": ops, "kind": "latency", "min_ms": 10, "max_ms": 5}),
        "min_ms",
        "max_ms",
    );
    refused(
        json!({"operations": ops, "kind": "latency", "min_ms": 0, "max_ms": 60_001}),
        "max_ms",
        "60000",
    );
    refused(
        json!({"operations": ops, "kind": "explode"}),
        "kind",
        "throttle, error",
    );
    refused(json!({"operations": ops}), "kind", "required");
    refused(
        json!({"operations": ops, "kind": "error", "burst": 3}),
        "burst",
        "not a field of kind error",
    );
    refused(
        json!({"operations": ops, "kind": "error", "colour": "red"}),
        "colour",
        "its fields are",
    );
    refused(
        json!({"operations": ops, "clusters": ["-bad"], "kind": "error"}),
        "clusters",
        "invalid name",
    );
    refused(
        json!({"operations": ops, "kind": "propagation_delay", "delay_ms": 0}),
        "delay_ms",
        "from 1",
    );
    refused(
        json!({"operations": ops, "kind": "propagation_delay", "delay_ms": 5, "lists": "yes"}),
        "lists",
        "true or false",
    );
}

#[test]
fn the_document_needs_rules_and_knows_only_seed_and_rules() {
    let parse = |v: Value| FaultSpec::from_json(v.as_object().unwrap());
    assert_eq!(parse(json!({"rules": []})).unwrap(), FaultSpec::default());
    assert_eq!(parse(json!({"seed": 1})).unwrap_err().field, "rules");
    assert_eq!(
        parse(json!({"seed": -1, "rules": []})).unwrap_err().field,
        "seed"
    );
    assert_eq!(
        parse(json!({"rules": [], "rule": []})).unwrap_err().field,
        "rule"
    );
    assert_eq!(parse(json!({"rules": [1]})).unwrap_err().field, "rules[0]");
}

#[test]
fn the_eks_auth_operation_is_accepted_and_the_server_routes_are_not() {
    assert!(known_operations().any(|o| o == ASSUME_ROLE_FOR_POD_IDENTITY));
    assert!(known_operations().any(|o| o == "DescribePodIdentityAssociation"));
    for never in [
        "Health",
        "Ready",
        "Metrics",
        "Export",
        "AdvanceClock",
        "SetClusterStatus",
        "PutFaults",
    ] {
        assert!(!known_operations().any(|o| o == never), "{never}");
    }
    for write in ASSOCIATION_WRITES {
        assert!(known_operations().any(|o| o == write), "{write}");
    }
}

#[test]
fn a_rule_applies_to_its_operations_and_clusters_only() {
    let r = rule(json!({"operations": ["DescribeCluster"], "clusters": ["a"], "kind": "error"}))
        .unwrap();
    assert!(r.applies_to("DescribeCluster", Some("a")));
    assert!(!r.applies_to("DescribeCluster", Some("b")));
    assert!(!r.applies_to("DescribeCluster", None));
    assert!(!r.applies_to("ListClusters", Some("a")));
    let any = rule(json!({"operations": ["*"], "kind": "error"})).unwrap();
    assert!(any.applies_to("ListClusters", None));
}

#[test]
fn a_propagation_delay_applies_to_writes_named_or_seen_by_its_readers() {
    let by_reader = rule(json!({"operations": ["AssumeRoleForPodIdentity"], "clusters": ["a"], "kind": "propagation_delay", "delay_ms": 1})).unwrap();
    assert!(by_reader.delays("CreatePodIdentityAssociation", "a"));
    assert!(!by_reader.delays("CreatePodIdentityAssociation", "b"));
    let by_write = rule(json!({"operations": ["DeletePodIdentityAssociation"], "kind": "propagation_delay", "delay_ms": 1})).unwrap();
    assert!(by_write.delays("DeletePodIdentityAssociation", "a"));
    assert!(!by_write.delays("UpdatePodIdentityAssociation", "a"));
}
