//! Request fingerprints: the bytes saved with a client request token, so
//! that a retry (the same bytes) is told from another request reusing the
//! token (other bytes, refused).
//!
//! A fingerprint is a JSON object whose member names and order are written
//! out here; they are the ones the first releases produced by serializing
//! the domain's request types, and must stay so: a token saved before an
//! upgrade has to match its retry after it (`golden` pins the bytes). Members
//! added after schema 1 are left out when unset, so a request that does not
//! use them has the fingerprint it had then.

use std::collections::BTreeMap;

use crate::domain::{AssociationUpdate, ImmutableClaim, NewAssociation, NewCluster, RoleArn};

/// CreateCluster's parameters.
pub fn create_cluster(request: &NewCluster) -> Vec<u8> {
    let mut json = Object::new();
    json.string("name", request.name.as_str());
    json.string("role_arn", request.role_arn.as_str());
    json.string("version", &request.version);
    json.map("tags", request.tags.as_map());
    json.end()
}

/// CreatePodIdentityAssociation's parameters (the cluster is in the token's key).
pub fn create_association(request: &NewAssociation) -> Vec<u8> {
    let mut json = Object::new();
    json.string("namespace", request.namespace.as_str());
    json.string("service_account", request.service_account.as_str());
    json.string("role_arn", request.role_arn.as_str());
    json.map("tags", request.tags.as_map());
    if request.disable_session_tags {
        json.bool("disable_session_tags", true);
    }
    if let Some(role) = &request.target_role_arn {
        json.string("target_role_arn", role.as_str());
    }
    if let Some(policy) = &request.policy {
        json.string("policy", policy.as_str());
    }
    json.end()
}

/// UpdatePodIdentityAssociation's parameters (the association is in the
/// token's key). An optional member that is cleared is `null`.
pub fn update_association(update: &AssociationUpdate) -> Vec<u8> {
    let mut json = Object::new();
    json.optional_string("role_arn", update.role_arn.as_ref().map(RoleArn::as_str));
    if let Some(disable) = update.disable_session_tags {
        json.bool("disable_session_tags", disable);
    }
    if let Some(role) = &update.target_role_arn {
        json.optional_string("target_role_arn", role.as_ref().map(RoleArn::as_str));
    }
    if let Some(policy) = &update.policy {
        json.optional_string("policy", policy.as_ref().map(|p| p.as_str()));
    }
    json.member("claims");
    json.out.push(b'[');
    for (i, claim) in update.claims.iter().enumerate() {
        if i > 0 {
            json.out.push(b',');
        }
        let mut object = Object::new();
        match claim {
            ImmutableClaim::ClusterName(v) => object.string("ClusterName", v),
            ImmutableClaim::AssociationId(v) => object.string("AssociationId", v),
            ImmutableClaim::AssociationArn(v) => object.string("AssociationArn", v),
            ImmutableClaim::Namespace(v) => object.string("Namespace", v),
            ImmutableClaim::ServiceAccount(v) => object.string("ServiceAccount", v),
            ImmutableClaim::OwnerArn(v) => object.string("OwnerArn", v),
            ImmutableClaim::CreatedAt(seconds) => object.number("CreatedAt", *seconds),
        }
        json.out.extend(object.end());
    }
    json.out.push(b']');
    json.end()
}

/// A JSON object written member by member, in the order of the calls.
/// Strings and numbers are written by `serde_json`, so their escaping and
/// number format are JSON's, as they always were.
struct Object {
    out: Vec<u8>,
    members: usize,
}

impl Object {
    fn new() -> Self {
        Object {
            out: vec![b'{'],
            members: 0,
        }
    }

    fn member(&mut self, name: &str) {
        if self.members > 0 {
            self.out.push(b',');
        }
        self.members += 1;
        self.value(name);
        self.out.push(b':');
    }

    fn value<T: serde::Serialize + ?Sized>(&mut self, value: &T) {
        serde_json::to_writer(&mut self.out, value).expect("a string or number always serializes");
    }

    fn string(&mut self, name: &str, value: &str) {
        self.member(name);
        self.value(value);
    }

    fn optional_string(&mut self, name: &str, value: Option<&str>) {
        self.member(name);
        match value {
            Some(value) => self.value(value),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    fn bool(&mut self, name: &str, value: bool) {
        self.member(name);
        self.value(&value);
    }

    fn number(&mut self, name: &str, value: f64) {
        self.member(name);
        self.value(&value);
    }

    fn map(&mut self, name: &str, map: &BTreeMap<String, String>) {
        self.member(name);
        let mut object = Object::new();
        for (key, value) in map {
            object.string(key, value);
        }
        self.out.extend(object.end());
    }

    fn end(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}
