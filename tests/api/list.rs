//! ListPodIdentityAssociations: summaries, filters, page sizes, and
//! nextTokens that page through every association exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{query, role, s, Answer, Client, TestApp};

/// Query pairs, or (namespace, service account) pairs.
type Pairs<'a> = Vec<(&'a str, &'a str)>;

/// The members of a `PodIdentityAssociationSummary` this server sends.
const SUMMARY_MEMBERS: [&str; 5] = [
    "associationArn",
    "associationId",
    "clusterName",
    "namespace",
    "serviceAccount",
];

/// Creates one association per (namespace, service account), `threads` at a
/// time; answers them in the order of `pairs`.
fn create_many(app: &TestApp, cluster: &str, pairs: &[(String, String)]) -> Vec<Value> {
    const THREADS: usize = 4;
    let chunk = pairs.len().div_ceil(THREADS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .chunks(chunk)
            .map(|part| {
                let client = app.client();
                scope.spawn(move || {
                    part.iter()
                        .map(|(ns, sa)| {
                            client
                                .create_association(
                                    cluster,
                                    &json!({
                                        "namespace": ns,
                                        "serviceAccount": sa,
                                        "roleArn": role("r"),
                                    }),
                                )
                                .association()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a creating thread panicked"))
            .collect()
    })
}

fn items(page: &Value) -> &Vec<Value> {
    page["associations"]
        .as_array()
        .unwrap_or_else(|| panic!("no associations list in {page}"))
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|a| s(a, "associationId").to_owned())
        .collect()
}

fn pairs_of(list: &[Value]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|a| {
            (
                s(a, "namespace").to_owned(),
                s(a, "serviceAccount").to_owned(),
            )
        })
        .collect()
}

fn pair(ns: &str, sa: &str) -> (String, String) {
    (ns.to_owned(), sa.to_owned())
}

/// One page with these query pairs (the test fails unless it is a 200).
#[track_caller]
fn page(client: &Client, cluster: &str, pairs: &[(&str, &str)]) -> Value {
    client
        .list_associations(cluster, &query(pairs))
        .ok()
        .clone()
}

/// The `nextToken` of a page, which must have one.
#[track_caller]
fn next_token(page: &Value) -> String {
    page["nextToken"]
        .as_str()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("a page that is not the last has a nextToken: {page}"))
        .to_owned()
}

#[track_caller]
fn assert_last_page(page: &Value) {
    let members: BTreeSet<&str> = page
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        members,
        BTreeSet::from(["associations"]),
        "the last page has no nextToken: {page}"
    );
}

#[track_caller]
fn assert_invalid_token(answer: &Answer, what: &str) {
    let message = answer.error(400, "InvalidParameterException");
    assert!(
        message.contains("nextToken"),
        "{what}: the message must name nextToken: {message}"
    );
}

#[test]
fn list_answers_summaries_with_exactly_the_five_summary_members_and_nothing_of_the_full_association(
) {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    app.given_cluster("empty");
    let plain = app.given_association("c1", "default", "app", &role("r1"));
    let full = app
        .create_association(
            "c1",
            &json!({
                "namespace": "kube-system",
                "serviceAccount": "agent",
                "roleArn": role("r2"),
                "tags": { "team": "a" },
                "disableSessionTags": true,
                "targetRoleArn": "arn:aws:iam::111122223333:role/target",
                "policy": r#"{"Version":"2012-10-17","Statement":[]}"#,
            }),
        )
        .association();

    let answer = page(&app, "c1", &[]);
    assert_last_page(&answer);
    let listed = items(&answer);
    assert_eq!(listed.len(), 2, "{answer}");
    let by_id: BTreeMap<String, &Value> = listed
        .iter()
        .map(|a| (s(a, "associationId").to_owned(), a))
        .collect();
    for created in [&plain, &full] {
        let summary = by_id
            .get(s(created, "associationId"))
            .unwrap_or_else(|| panic!("{created} is not listed: {answer}"));
        let members: Vec<&str> = summary
            .as_object()
            .expect("a summary is an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            members, SUMMARY_MEMBERS,
            "exactly the summary members (no roleArn, createdAt, modifiedAt, tags, session members or ownerArn): {summary}"
        );
        for member in SUMMARY_MEMBERS {
            assert_eq!(summary[member], created[member], "{member}");
        }
    }

    let empty = page(&app, "empty", &[]);
    assert_eq!(empty, json!({ "associations": [] }));
}

#[test]
fn filters_by_namespace_by_service_account_and_by_both_match_exact_names_only() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    app.given_cluster("c2");
    let wanted = [
        ("ns-a", "sa-1"),
        ("ns-a", "sa-2"),
        ("ns-a", "sa-10"),
        ("ns-b", "sa-1"),
        ("ns-b", "sa-2"),
        ("ns-ab", "sa-1"),
        ("a", "sa"),
    ];
    for (ns, sa) in wanted {
        app.given_association("c1", ns, sa, &role("r"));
    }
    // Another cluster's associations never show in c1's listing.
    app.given_association("c2", "ns-a", "sa-1", &role("r"));
    app.given_association("c2", "ns-c", "sa-3", &role("r"));

    let cases: Vec<(Pairs, Pairs)> = vec![
        (vec![], wanted.to_vec()),
        (
            vec![("namespace", "ns-a")],
            vec![("ns-a", "sa-1"), ("ns-a", "sa-2"), ("ns-a", "sa-10")],
        ),
        (
            vec![("serviceAccount", "sa-1")],
            vec![("ns-a", "sa-1"), ("ns-b", "sa-1"), ("ns-ab", "sa-1")],
        ),
        (
            vec![("namespace", "ns-b"), ("serviceAccount", "sa-2")],
            vec![("ns-b", "sa-2")],
        ),
        (
            vec![("serviceAccount", "sa-10"), ("namespace", "ns-a")],
            vec![("ns-a", "sa-10")],
        ),
        (vec![("namespace", "ns-c")], vec![]),
        (
            vec![("namespace", "ns-b"), ("serviceAccount", "sa-10")],
            vec![],
        ),
        (vec![("serviceAccount", "sa")], vec![("a", "sa")]),
    ];
    for (filters, expected) in cases {
        let answer = page(&app, "c1", &filters);
        assert_last_page(&answer);
        let listed = items(&answer);
        let expected: BTreeSet<(String, String)> =
            expected.iter().map(|(ns, sa)| pair(ns, sa)).collect();
        assert_eq!(pairs_of(listed), expected, "filters {filters:?}");
        assert_eq!(listed.len(), expected.len(), "filters {filters:?}");
        for summary in listed {
            assert_eq!(summary["clusterName"], "c1", "filters {filters:?}");
        }
    }
}

#[test]
fn max_results_from_1_to_100_sizes_the_pages_and_the_default_is_100() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let wanted: Vec<(String, String)> = (0..150)
        .map(|i| (format!("ns-{}", i % 3), format!("sa-{i}")))
        .collect();
    let created = create_many(&app, "c1", &wanted);
    let all: BTreeSet<String> = ids(&created).into_iter().collect();
    assert_eq!(all.len(), 150);

    // The default page is 100, then the 50 others and no nextToken.
    let first = page(&app, "c1", &[]);
    assert_eq!(items(&first).len(), 100, "the default maxResults is 100");
    let token = next_token(&first);
    let second = page(&app, "c1", &[("nextToken", &token)]);
    assert_eq!(items(&second).len(), 50);
    assert_last_page(&second);
    let mut seen: Vec<String> = ids(items(&first));
    seen.extend(ids(items(&second)));
    assert_eq!(seen.len(), 150);
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), all);

    // Every size from 1 to 100 gives full pages until the last one.
    for size in [1usize, 2, 7, 49, 50, 75, 99, 100] {
        let size_text = size.to_string();
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            pages += 1;
            assert!(pages <= 151, "maxResults={size}: the listing does not end");
            let mut pairs = vec![("maxResults", size_text.as_str())];
            if let Some(token) = &token {
                pairs.push(("nextToken", token));
            }
            let answer = page(&app, "c1", &pairs);
            let listed = items(&answer);
            seen.extend(ids(listed));
            if seen.len() < 150 {
                assert_eq!(listed.len(), size, "maxResults={size}: a full page");
                token = Some(next_token(&answer));
            } else {
                assert_eq!(listed.len(), 150 - (pages - 1) * size);
                assert_last_page(&answer);
                break;
            }
        }
        assert_eq!(pages, 150usize.div_ceil(size), "maxResults={size}");
        assert_eq!(seen.len(), 150, "maxResults={size}: no association twice");
        assert_eq!(
            seen.into_iter().collect::<BTreeSet<_>>(),
            all,
            "maxResults={size}"
        );
    }

    // maxResults may change from page to page.
    let first = page(&app, "c1", &[("maxResults", "10")]);
    assert_eq!(items(&first).len(), 10);
    let second = page(&app, "c1", &[("nextToken", &next_token(&first))]);
    assert_eq!(items(&second).len(), 100);
    let third = page(
        &app,
        "c1",
        &[("maxResults", "40"), ("nextToken", &next_token(&second))],
    );
    assert_eq!(items(&third).len(), 40);
    assert_last_page(&third);
    let mut seen = ids(items(&first));
    seen.extend(ids(items(&second)));
    seen.extend(ids(items(&third)));
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all);

    // A filtered page of exactly maxResults that ends the listing has no nextToken.
    let ns0 = page(&app, "c1", &[("namespace", "ns-0"), ("maxResults", "50")]);
    assert_eq!(items(&ns0).len(), 50);
    assert_last_page(&ns0);
}

#[test]
fn max_results_outside_1_to_100_or_not_an_integer_is_400_invalid_parameter() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    app.given_association("c1", "default", "app", &role("r"));
    for bad in [
        "0",
        "101",
        "-1",
        "x",
        "",
        "1.5",
        "1e2",
        " 5",
        "99999999999999999999",
    ] {
        let answer = app.list_associations("c1", &query(&[("maxResults", bad)]));
        let message = answer.error(400, "InvalidParameterException");
        assert!(
            message.contains("maxResults") && message.contains("100"),
            "maxResults={bad:?}: the message must name maxResults and its range: {message}"
        );
    }
    for good in ["1", "100"] {
        let answer = page(&app, "c1", &[("maxResults", good)]);
        assert_eq!(items(&answer).len(), 1, "maxResults={good}");
    }
}

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[test]
fn pages_return_every_association_that_exists_for_the_whole_listing_exactly_once_while_others_are_created_and_deleted(
) {
    const INITIAL: usize = 2_500;
    const DELETES_OF_SEEN: usize = 6;
    const DELETES_OF_UNSEEN: usize = 6;
    const CREATES: usize = 12;
    let started = Instant::now();
    let app = TestApp::spawn();
    app.given_cluster("c1");
    let wanted: Vec<(String, String)> = (0..INITIAL)
        .map(|i| (format!("ns-{}", i / 250), format!("sa-{}", i % 250)))
        .collect();
    let initial = ids(&create_many(&app, "c1", &wanted));
    let initial_set: BTreeSet<String> = initial.iter().cloned().collect();
    assert_eq!(initial_set.len(), INITIAL);
    // What exists now, by ID, to compare with a last quiet listing.
    let mut existing: BTreeMap<String, (String, String)> = initial
        .iter()
        .cloned()
        .zip(wanted.iter().cloned())
        .collect();

    let mut rng = Lcg(0x5eed);
    let mut seen: Vec<String> = Vec::new();
    let mut seen_set: BTreeSet<String> = BTreeSet::new();
    // Each deleted ID with the number of pages fetched before its deletion.
    let mut deleted: BTreeMap<String, usize> = BTreeMap::new();
    let mut created: BTreeSet<String> = BTreeSet::new();
    let mut token: Option<String> = None;
    let mut pages = 0usize;
    loop {
        assert!(pages < 100, "the listing does not end after 100 pages");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the listing takes too long"
        );
        let mut pairs = Vec::new();
        if let Some(token) = &token {
            pairs.push(("nextToken", token.as_str()));
        }
        let answer = page(&app, "c1", &pairs);
        pages += 1;
        for id in ids(items(&answer)) {
            assert!(
                seen_set.insert(id.clone()),
                "{id} was returned twice (page {pages})"
            );
            if let Some(deleted_after) = deleted.get(&id) {
                panic!("{id}, deleted after page {deleted_after}, was returned on page {pages}");
            }
            assert!(
                initial_set.contains(&id) || created.contains(&id),
                "{id} was never created"
            );
            seen.push(id);
        }
        match answer["nextToken"].as_str() {
            None => {
                assert_last_page(&answer);
                break;
            }
            Some(next) => token = Some(next.to_owned()),
        }

        // Between pages: delete some associations already listed and some
        // not listed yet, and create new ones.
        let alive_seen: Vec<&String> = seen
            .iter()
            .filter(|id| existing.contains_key(*id))
            .collect();
        let mut doomed: Vec<String> = Vec::new();
        for _ in 0..DELETES_OF_SEEN.min(alive_seen.len()) {
            doomed.push(alive_seen[rng.below(alive_seen.len())].clone());
        }
        let unseen: Vec<&String> = existing
            .keys()
            .filter(|id| !seen_set.contains(*id))
            .collect();
        for _ in 0..DELETES_OF_UNSEEN.min(unseen.len()) {
            doomed.push(unseen[rng.below(unseen.len())].clone());
        }
        doomed.sort();
        doomed.dedup();
        for id in doomed {
            app.delete_association("c1", &id).association();
            existing.remove(&id);
            deleted.insert(id, pages);
        }
        for j in 0..CREATES {
            let (ns, sa) = (format!("new-{pages}"), format!("sa-{j}"));
            let a = app.given_association("c1", &ns, &sa, &role("r"));
            let id = s(&a, "associationId").to_owned();
            created.insert(id.clone());
            existing.insert(id, (ns, sa));
        }
    }

    assert!(
        pages >= INITIAL / 100,
        "{pages} pages for {INITIAL} associations"
    );
    let survivors: BTreeSet<&String> = initial
        .iter()
        .filter(|id| !deleted.contains_key(*id))
        .collect();
    let missing: Vec<&&String> = survivors
        .iter()
        .filter(|id| !seen_set.contains(**id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} associations that existed for the whole listing were never returned, e.g. {:?}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        deleted.len() > 200 && created.len() > 200,
        "the listing saw enough churn"
    );

    // A quiet listing now returns exactly what exists.
    let quiet = app.list_all_associations("c1", &[]);
    let quiet_ids: Vec<String> = ids(&quiet);
    assert_eq!(quiet_ids.len(), existing.len());
    assert_eq!(
        quiet_ids.iter().collect::<BTreeSet<_>>(),
        existing.keys().collect::<BTreeSet<_>>()
    );
    // And a filtered one pages through exactly the matching ones.
    let expected: BTreeSet<&String> = existing
        .iter()
        .filter(|(_, (_, sa))| sa == "sa-7")
        .map(|(id, _)| id)
        .collect();
    let mut filtered: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    for round in 0.. {
        assert!(round < 20, "the filtered listing does not end");
        let mut pairs = vec![("serviceAccount", "sa-7"), ("maxResults", "3")];
        if let Some(token) = &token {
            pairs.push(("nextToken", token));
        }
        let answer = page(&app, "c1", &pairs);
        for summary in items(&answer) {
            assert_eq!(summary["serviceAccount"], "sa-7");
        }
        filtered.extend(ids(items(&answer)));
        match answer["nextToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(filtered.len(), expected.len());
    assert_eq!(filtered.iter().collect::<BTreeSet<_>>(), expected);
}

#[test]
fn a_next_token_of_another_cluster_another_filter_another_server_an_edited_one_or_garbage_is_400_invalid_parameter(
) {
    let app = TestApp::spawn();
    for cluster in ["c1", "c2"] {
        app.given_cluster(cluster);
        for (ns, sa) in [
            ("ns-a", "sa-1"),
            ("ns-a", "sa-2"),
            ("ns-a", "sa-3"),
            ("ns-b", "sa-1"),
            ("ns-b", "sa-2"),
        ] {
            app.given_association(cluster, ns, sa, &role("r"));
        }
    }
    let unfiltered = next_token(&page(&app, "c1", &[("maxResults", "1")]));
    let ns_a = next_token(&page(
        &app,
        "c1",
        &[("namespace", "ns-a"), ("maxResults", "1")],
    ));
    let sa_1 = next_token(&page(
        &app,
        "c1",
        &[("serviceAccount", "sa-1"), ("maxResults", "1")],
    ));
    let clusters_token = next_token(app.list_clusters(&query(&[("maxResults", "1")])).ok());

    let refused: Vec<(&str, &str, Pairs)> = vec![
        (
            "a token of c1 on c2",
            "c2",
            vec![("nextToken", &unfiltered)],
        ),
        (
            "a filtered token of c1 on c2",
            "c2",
            vec![("namespace", "ns-a"), ("nextToken", &ns_a)],
        ),
        (
            "an unfiltered token with a namespace",
            "c1",
            vec![("namespace", "ns-a"), ("nextToken", &unfiltered)],
        ),
        (
            "a namespace token without the filter",
            "c1",
            vec![("nextToken", &ns_a)],
        ),
        (
            "a namespace token with another namespace",
            "c1",
            vec![("namespace", "ns-b"), ("nextToken", &ns_a)],
        ),
        (
            "a namespace token with a service account too",
            "c1",
            vec![
                ("namespace", "ns-a"),
                ("serviceAccount", "sa-1"),
                ("nextToken", &ns_a),
            ],
        ),
        (
            "a namespace token with the service account filter instead",
            "c1",
            vec![("serviceAccount", "ns-a"), ("nextToken", &ns_a)],
        ),
        (
            "a service account token with another service account",
            "c1",
            vec![("serviceAccount", "sa-2"), ("nextToken", &sa_1)],
        ),
        (
            "a ListClusters token",
            "c1",
            vec![("nextToken", &clusters_token)],
        ),
    ];
    for (what, cluster, pairs) in &refused {
        let answer = app.list_associations(cluster, &query(pairs));
        assert_invalid_token(&answer, what);
    }

    // Edited tokens: every single-character change, a truncation, an extension.
    let mut edited: Vec<String> = Vec::new();
    for (i, c) in unfiltered.char_indices() {
        let replacement = if c == '0' { '1' } else { '0' };
        let mut t = unfiltered.clone();
        t.replace_range(i..i + c.len_utf8(), &replacement.to_string());
        edited.push(t);
    }
    edited.push(unfiltered[..unfiltered.len() - 1].to_owned());
    edited.push(unfiltered[1..].to_owned());
    edited.push(format!("{unfiltered}0"));
    edited.push(format!("0{unfiltered}"));
    for token in &edited {
        if token == &unfiltered {
            continue;
        }
        let answer = app.list_associations("c1", &query(&[("nextToken", token)]));
        assert_invalid_token(&answer, &format!("the edited token {token}"));
    }

    let long = "x".repeat(10_000);
    let garbage = [
        "garbage",
        "0",
        ".",
        "..",
        "a-0123456789abcdefg",
        "%",
        "{}",
        "é",
        "6162.0000000000000000",
        long.as_str(),
    ];
    for token in garbage {
        let answer = app.list_associations("c1", &query(&[("nextToken", token)]));
        assert_invalid_token(&answer, &format!("the garbage token {token:.40}"));
    }

    // A token issued by another server (another store) is not this server's.
    let other = TestApp::spawn();
    other.given_cluster("c1");
    for (ns, sa) in [("ns-a", "sa-1"), ("ns-a", "sa-2")] {
        other.given_association("c1", ns, sa, &role("r"));
    }
    let foreign = next_token(&page(&other, "c1", &[("maxResults", "1")]));
    assert_invalid_token(
        &app.list_associations("c1", &query(&[("nextToken", &foreign)])),
        "a token of another server",
    );

    // The refusals used nothing up: each token still continues its listing, twice.
    for _ in 0..2 {
        let rest = page(&app, "c1", &[("nextToken", &unfiltered)]);
        assert_eq!(items(&rest).len(), 4);
        let rest = page(&app, "c1", &[("namespace", "ns-a"), ("nextToken", &ns_a)]);
        assert_eq!(items(&rest).len(), 2);
        for summary in items(&rest) {
            assert_eq!(summary["namespace"], "ns-a");
        }
    }
}

#[test]
fn listing_an_unknown_or_deleted_cluster_is_404_resource_not_found_naming_it() {
    let app = TestApp::spawn();
    app.given_cluster("c1");
    app.given_cluster("doomed");
    app.given_association("doomed", "default", "app", &role("r"));
    app.delete_cluster("doomed").cluster();
    for cluster in ["ghost", "doomed"] {
        for pairs in [vec![], vec![("namespace", "default"), ("maxResults", "5")]] {
            let answer = app.list_associations(cluster, &query(&pairs));
            let message = answer.error(404, "ResourceNotFoundException");
            assert!(message.contains(cluster), "{message}");
            assert_eq!(answer.error_cluster(), Some(cluster));
        }
    }
}

#[test]
fn next_tokens_keep_working_across_a_restart() {
    let mut app = TestApp::spawn();
    app.given_cluster("c1");
    let mut all = BTreeSet::new();
    for i in 0..7 {
        let ns = if i % 2 == 0 { "even" } else { "odd" };
        let a = app.given_association("c1", ns, &format!("sa-{i}"), &role("r"));
        all.insert(s(&a, "associationId").to_owned());
    }
    let first = page(&app, "c1", &[("maxResults", "3")]);
    let filtered_first = page(&app, "c1", &[("namespace", "even"), ("maxResults", "2")]);
    let token = next_token(&first);
    let filtered_token = next_token(&filtered_first);

    app.restart();

    let mut seen = ids(items(&first));
    let mut token = Some(token);
    for round in 0.. {
        assert!(round < 10, "the listing does not end");
        let Some(t) = token.take() else { break };
        let answer = page(&app, "c1", &[("maxResults", "3"), ("nextToken", &t)]);
        seen.extend(ids(items(&answer)));
        token = answer["nextToken"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all);

    let rest = page(
        &app,
        "c1",
        &[("namespace", "even"), ("nextToken", &filtered_token)],
    );
    assert_last_page(&rest);
    let mut even = ids(items(&filtered_first));
    even.extend(ids(items(&rest)));
    assert_eq!(even.len(), 4);
    assert_eq!(
        pairs_of(&app.list_all_associations("c1", &[("namespace", "even")])).len(),
        4
    );
}
