//! Property tests of every operation's JSON body through the real app (the
//! actix `App` with `api::configure`, in process, on a store in a temp
//! dir): whatever JSON a client sends, the server answers without a panic
//! or a 5xx, and a refused request leaves the store as it was.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::Method;
use actix_web::test as actix_test;
use actix_web::{web, App};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::{configure, AppState, BodyLimits, EksAuthState};
use crate::domain::{AwsIdentity, Clock};
use crate::faults::{FaultSpec, Faults, FaultsConfig};
use crate::store::{Store, StoreSettings};

const ROLE: &str = "arn:aws:iam::123456789012:role/r";

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value for a member: often one the API accepts, else anything.
fn member_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => Just(json!(ROLE)),
        1 => Just(json!("arn:aws:iam::111122223333:role/t")),
        1 => Just(json!("ns")),
        1 => Just(json!("sa")),
        1 => Just(json!("c2")),
        1 => Just(json!("ACTIVE")),
        1 => Just(json!({"k": "v"})),
        1 => Just(json!({})),
        1 => Just(json!([])),
        1 => Just(json!(true)),
        1 => Just(json!(1)),
        1 => "[a-zA-Z0-9-]{0,70}".prop_map(Value::String),
        3 => any_json(),
    ]
}

/// An object with the members the operations read (and some they do
/// not), each with a plausible or an arbitrary value.
fn body() -> impl Strategy<Value = Value> {
    let member = prop_oneof![
        Just("name"),
        Just("roleArn"),
        Just("version"),
        Just("tags"),
        Just("clientRequestToken"),
        Just("resourcesVpcConfig"),
        Just("namespace"),
        Just("serviceAccount"),
        Just("targetRoleArn"),
        Just("disableSessionTags"),
        Just("policy"),
        Just("externalId"),
        Just("status"),
        Just("rules"),
        Just("seed"),
        Just("other"),
    ];
    prop_oneof![
        3 => prop::collection::vec((member, member_value()), 0..8).prop_map(|members| {
            let map: Map<String, Value> =
                members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            Value::Object(map)
        }),
        1 => any_json(),
    ]
}

/// The operations with a body, each as (method, path, a body it accepts).
fn operation() -> impl Strategy<Value = (Method, &'static str, Value)> {
    let create_cluster = json!({"name": "c2", "roleArn": ROLE, "resourcesVpcConfig": {}});
    let create = json!({"namespace": "ns", "serviceAccount": "sa", "roleArn": ROLE});
    let update = json!({"roleArn": ROLE, "disableSessionTags": true});
    let tags = json!({"tags": {"k": "v"}});
    prop_oneof![
        Just((Method::POST, "/clusters", create_cluster)),
        Just((
            Method::POST,
            "/clusters/c1/pod-identity-associations",
            create.clone()
        )),
        Just((
            Method::POST,
            "/clusters/c1/pod-identity-associations/ID",
            update
        )),
        Just((
            Method::POST,
            "/clusters/nope/pod-identity-associations",
            create
        )),
        Just((Method::POST, "/tags/CLUSTER_ARN", tags.clone())),
        Just((Method::POST, "/tags/ASSOCIATION_ARN", tags)),
        Just((
            Method::PUT,
            "/admin/v1/clusters/c1/status",
            json!({"status": "ACTIVE"})
        )),
        Just((Method::PUT, "/admin/v1/faults", json!({"rules": []}))),
        Just((Method::GET, "/clusters", json!({}))),
        Just((
            Method::DELETE,
            "/clusters/c1/pod-identity-associations/ID",
            json!({})
        )),
    ]
}

/// A request: an operation and a body, either arbitrary or the operation's
/// good body with one member changed to anything, added or removed.
fn request() -> impl Strategy<Value = (Method, &'static str, Value)> {
    operation().prop_flat_map(|(method, path, good)| {
        let keys: Vec<String> = good.as_object().unwrap().keys().cloned().collect();
        let member = if keys.is_empty() {
            Just("other".to_owned()).boxed()
        } else {
            prop_oneof![prop::sample::select(keys), ".{0,8}"].boxed()
        };
        let changed =
            (member, proptest::option::of(member_value())).prop_map(move |(member, value)| {
                let mut body = good.clone();
                let map = body.as_object_mut().unwrap();
                match value {
                    Some(value) => map.insert(member, value),
                    None => map.remove(&member),
                };
                body
            });
        let body = prop_oneof![body(), changed];
        (Just(method), Just(path), body)
    })
}

/// What a refused request must leave as it was.
#[derive(Debug, PartialEq)]
struct Seen {
    clusters: Vec<crate::domain::Cluster>,
    associations: Vec<crate::domain::Association>,
    faults: String,
}

async fn seen(state: &AppState) -> Seen {
    let snapshot = state.store.snapshot().await.unwrap();
    Seen {
        clusters: snapshot.clusters,
        associations: snapshot.associations,
        faults: format!("{:?}", state.faults.spec()),
    }
}

/// Sends one request to the app; answers its status and JSON body (null
/// when the body is not JSON). A macro: actix does not name its request type.
macro_rules! call {
    ($app:expr, $method:expr, $path:expr, $body:expr) => {{
        let request = actix_test::TestRequest::default()
            .method($method)
            .uri($path)
            .insert_header(("content-type", "application/json"))
            .set_payload($body)
            .to_request();
        let response = actix_test::call_service($app, request).await;
        let status = response.status().as_u16();
        let bytes = actix_test::read_body(response).await;
        (
            status,
            serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
        )
    }};
}

#[test]
fn any_json_body_of_any_operation_is_answered_without_a_5xx_and_a_refusal_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let system = actix_web::rt::System::new();
    let settings = StoreSettings::for_tests();
    let identity: AwsIdentity = settings.identity.clone();
    let store = Store::open(dir.path(), settings).unwrap();
    let clock = Arc::new(Clock::default());
    let faults = Faults::new(
        FaultSpec::from_config(&FaultsConfig::default()).unwrap(),
        clock.now(),
    );
    let eks_auth = EksAuthState::new(
        "http://127.0.0.1:0".into(),
        crate::eksauth::CredentialSource::Local(crate::eksauth::LocalProvider),
        3600,
    );
    let state = web::Data::new(AppState::new(
        store, identity, clock, None, faults, eks_auth,
    ));
    let limits = BodyLimits {
        max_bytes: 1 << 20,
        read_timeout: Duration::from_secs(30),
    };
    let app = system.block_on(actix_test::init_service(
        App::new().configure(configure(state.clone(), limits)),
    ));
    // A cluster and an association for the paths to reach.
    let (status, cluster) = system.block_on(async {
        call!(
            &app,
            Method::POST,
            "/clusters",
            json!({"name": "c1", "roleArn": ROLE, "resourcesVpcConfig": {}}).to_string()
        )
    });
    assert_eq!(status, 200, "{cluster}");
    let (status, association) = system.block_on(async {
        call!(
            &app,
            Method::POST,
            "/clusters/c1/pod-identity-associations",
            json!({"namespace": "keep", "serviceAccount": "keep", "roleArn": ROLE}).to_string()
        )
    });
    assert_eq!(status, 200, "{association}");
    let association = &association["association"];
    let id = association["associationId"].as_str().unwrap().to_owned();
    let association_arn = association["associationArn"].as_str().unwrap().to_owned();
    let cluster_arn = cluster["cluster"]["arn"].as_str().unwrap().to_owned();
    let encoded = |arn: &str| arn.replace(':', "%3A").replace('/', "%2F");

    let input = (request(), any::<bool>());
    crate::props::check(
        "JSON bodies",
        300,
        input,
        |((method, path, body), raw): ((Method, &str, Value), bool)| {
            let path = path
                .replace("ID", &id)
                .replace("CLUSTER_ARN", &encoded(&cluster_arn))
                .replace("ASSOCIATION_ARN", &encoded(&association_arn));
            // Sometimes the body's text cut short: not JSON at all.
            let mut bytes = body.to_string().into_bytes();
            if raw && bytes.len() > 1 {
                bytes.truncate(bytes.len() / 2);
            }
            let (before, (status, answer), after) = system.block_on(async {
                let before = seen(&state).await;
                let answered = call!(&app, method.clone(), &path, bytes);
                (before, answered, seen(&state).await)
            });
            prop_assert!(status < 500, "{method} {path} {body} -> {status} {answer}");
            if status >= 400 {
                prop_assert!(
                    answer["message"].is_string(),
                    "{method} {path} -> {status} without a message: {answer}"
                );
                prop_assert_eq!(
                    &before,
                    &after,
                    "{} {} {} was refused ({}) but changed the store",
                    method,
                    path,
                    body,
                    status
                );
            }
            Ok(())
        },
    );
}
