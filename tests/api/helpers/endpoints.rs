//! One helper per endpoint of the server, and the givens built from them.

use serde_json::{json, Value};

use super::{encode, query, role, ts, Answer, Client};

impl Client {
    /// CreateCluster with the members the Model requires.
    #[track_caller]
    pub fn create_cluster(&self, name: &str) -> Answer {
        self.create_cluster_with(&json!({
            "name": name,
            "roleArn": role("eks-cluster-role"),
            "resourcesVpcConfig": {},
        }))
    }

    #[track_caller]
    pub fn create_cluster_with(&self, body: &Value) -> Answer {
        self.send_json("POST", "/clusters", body)
    }

    #[track_caller]
    pub fn describe_cluster(&self, name: &str) -> Answer {
        self.get(&format!("/clusters/{name}"))
    }

    /// ListClusters; `query` is empty or starts with `?`.
    #[track_caller]
    pub fn list_clusters(&self, query: &str) -> Answer {
        self.get(&format!("/clusters{query}"))
    }

    #[track_caller]
    pub fn delete_cluster(&self, name: &str) -> Answer {
        self.delete(&format!("/clusters/{name}"))
    }

    /// The admin route that sets any cluster status.
    #[track_caller]
    pub fn set_cluster_status(&self, name: &str, status: &str) -> Answer {
        self.send_json(
            "PUT",
            &format!("/admin/v1/clusters/{name}/status"),
            &json!({ "status": status }),
        )
    }

    #[track_caller]
    pub fn create_association(&self, cluster: &str, body: &Value) -> Answer {
        self.send_json(
            "POST",
            &format!("/clusters/{cluster}/pod-identity-associations"),
            body,
        )
    }

    #[track_caller]
    pub fn describe_association(&self, cluster: &str, id: &str) -> Answer {
        self.get(&format!(
            "/clusters/{cluster}/pod-identity-associations/{id}"
        ))
    }

    #[track_caller]
    pub fn update_association(&self, cluster: &str, id: &str, body: &Value) -> Answer {
        self.send_json(
            "POST",
            &format!("/clusters/{cluster}/pod-identity-associations/{id}"),
            body,
        )
    }

    /// UpdatePodIdentityAssociation that reports a dead server as `Err`.
    pub fn try_update_association(
        &self,
        cluster: &str,
        id: &str,
        body: &Value,
    ) -> Result<Answer, String> {
        let bytes = serde_json::to_vec(body).expect("JSON");
        self.try_request(
            "POST",
            &format!("/clusters/{cluster}/pod-identity-associations/{id}"),
            Some("application/json"),
            Some(&bytes),
        )
    }

    /// ListPodIdentityAssociations; `query` is empty or starts with `?`
    /// (build it with [`query`]).
    #[track_caller]
    pub fn list_associations(&self, cluster: &str, query: &str) -> Answer {
        self.get(&format!(
            "/clusters/{cluster}/pod-identity-associations{query}"
        ))
    }

    #[track_caller]
    pub fn delete_association(&self, cluster: &str, id: &str) -> Answer {
        self.delete(&format!(
            "/clusters/{cluster}/pod-identity-associations/{id}"
        ))
    }

    /// TagResource with `{"tags": tags}`; the ARN is percent-encoded as a label.
    #[track_caller]
    pub fn tag_resource(&self, arn: &str, tags: &Value) -> Answer {
        self.tag_resource_with(arn, &json!({ "tags": tags }))
    }

    /// TagResource with any body.
    #[track_caller]
    pub fn tag_resource_with(&self, arn: &str, body: &Value) -> Answer {
        self.send_json("POST", &format!("/tags/{}", encode(arn)), body)
    }

    /// UntagResource with one `tagKeys` parameter per key.
    #[track_caller]
    pub fn untag_resource(&self, arn: &str, keys: &[&str]) -> Answer {
        let pairs: Vec<(&str, &str)> = keys.iter().map(|k| ("tagKeys", *k)).collect();
        self.delete(&format!("/tags/{}{}", encode(arn), query(&pairs)))
    }

    #[track_caller]
    pub fn list_tags(&self, arn: &str) -> Answer {
        self.get(&format!("/tags/{}", encode(arn)))
    }

    /// `GET /admin/v1/export`: the export's text. Checks what every export
    /// answer must have (200, JSON lines, a request ID); the test fails on
    /// anything else.
    #[track_caller]
    pub fn export(&self) -> String {
        self.try_export().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `GET /admin/v1/export`, with `Err` for any failure.
    pub fn try_export(&self) -> Result<String, String> {
        use std::io::Read;
        let path = "/admin/v1/export";
        let response = match self.agent.get(&format!("{}{path}", self.base)).call() {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                return Err(format!(
                    "GET {path} answered {status}: {}",
                    response.into_string().unwrap_or_default()
                ))
            }
            Err(e) => return Err(format!("GET {path}: {e}")),
        };
        let content_type = response.header("content-type").map(str::to_owned);
        if content_type.as_deref() != Some("application/x-ndjson") {
            return Err(format!("GET {path}: content-type {content_type:?}"));
        }
        if response
            .header("x-amzn-requestid")
            .is_none_or(str::is_empty)
        {
            return Err(format!("GET {path}: no x-amzn-requestid header"));
        }
        // Not `into_string`, which stops at 10 MB.
        let mut text = String::new();
        response
            .into_reader()
            .read_to_string(&mut text)
            .map_err(|e| format!("GET {path}: cannot read the body: {e}"))?;
        Ok(text)
    }

    /// Every association of a listing, following `nextToken` (at most 200
    /// pages). `filters` are extra query pairs such as `("namespace", "ns")`.
    #[track_caller]
    pub fn list_all_associations(&self, cluster: &str, filters: &[(&str, &str)]) -> Vec<Value> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..200 {
            let mut pairs = filters.to_vec();
            if let Some(token) = &token {
                pairs.push(("nextToken", token));
            }
            let page = self.list_associations(cluster, &query(&pairs)).ok().clone();
            items.extend(
                page["associations"]
                    .as_array()
                    .unwrap_or_else(|| panic!("no associations list in {page}"))
                    .iter()
                    .cloned(),
            );
            match page["nextToken"].as_str() {
                Some(next) => token = Some(next.to_owned()),
                None => return items,
            }
        }
        panic!("listing {cluster} {filters:?} did not end within 200 pages");
    }

    /// `POST /admin/v1/clock` with any body (served with `CLOCK_CONTROL` in the config).
    #[track_caller]
    pub fn advance_clock_with(&self, body: &Value) -> Answer {
        self.send_json("POST", "/admin/v1/clock", body)
    }

    /// Moves the server's clock `seconds` forward; its new "now" (epoch seconds).
    #[track_caller]
    pub fn advance_clock(&self, seconds: u64) -> f64 {
        let answer = self.advance_clock_with(&json!({ "advanceSeconds": seconds }));
        ts(answer.ok(), "now")
    }

    /// Moves the server's clock `seconds` forward and runs the token sweep
    /// at once; how many tokens it removed.
    #[track_caller]
    pub fn advance_clock_and_sweep(&self, seconds: u64) -> u64 {
        let answer = self.advance_clock_with(&json!({
            "advanceSeconds": seconds,
            "sweepTokens": true,
        }));
        answer.ok()["sweptTokens"]
            .as_u64()
            .unwrap_or_else(|| panic!("no sweptTokens in {}", answer.text))
    }

    /// `PUT /admin/v1/faults`: replaces every fault rule with `document`
    /// (`{"seed": N, "rules": [...]}`).
    #[track_caller]
    pub fn put_faults(&self, document: &Value) -> Answer {
        self.send_json("PUT", "/admin/v1/faults", document)
    }

    /// `GET /admin/v1/faults`: the rules in force.
    #[track_caller]
    pub fn get_faults(&self) -> Answer {
        self.get("/admin/v1/faults")
    }

    /// `DELETE /admin/v1/faults`: removes every rule.
    #[track_caller]
    pub fn delete_faults(&self) -> Answer {
        self.delete("/admin/v1/faults")
    }

    /// `GET /metrics`, the Prometheus text page (not JSON, so not through
    /// [`Client::request`]).
    #[track_caller]
    pub fn metrics(&self) -> String {
        let response = self
            .agent
            .get(&format!("{}/metrics", self.base))
            .call()
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        response.into_string().expect("the metrics page is text")
    }

    // --- givens -------------------------------------------------------------

    /// A new cluster, read back as ACTIVE (the default activation delay is 0).
    #[track_caller]
    pub fn given_cluster(&self, name: &str) -> Value {
        let created = self.create_cluster(name).cluster();
        assert_eq!(created["status"], "CREATING");
        let described = self.describe_cluster(name).cluster();
        assert_eq!(described["status"], "ACTIVE", "{described}");
        described
    }

    /// A new association, as Create answered it.
    #[track_caller]
    pub fn given_association(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
        role_arn: &str,
    ) -> Value {
        self.create_association(
            cluster,
            &json!({
                "namespace": namespace,
                "serviceAccount": service_account,
                "roleArn": role_arn,
            }),
        )
        .association()
    }
}
