//! The export file: one JSON object per line (`application/x-ndjson`).
//!
//! ```text
//! {"format":"pod-identity-store-export","version":1,"schema":3,"exportedAt":1700000000000,"region":"us-east-1","accountId":"123456789012"}
//! {"type":"cluster","name":"dev","roleArn":"arn:aws:iam::123456789012:role/eks","version":"1.33","tags":{},"createdAt":1700000000000,"status":"ACTIVE","activateAt":null}
//! {"type":"association","clusterName":"dev","associationId":"a-8mvwvh57cu74mgcst",...}
//! {"type":"end","clusters":1,"associations":1}
//! ```
//!
//! - The header comes first. `version` is the version of this file format
//!   (a reader refuses a newer one); `schema` is the store schema of the
//!   exporting server, for information; `region` and `accountId` are the
//!   server's identity, which every ARN depends on, so a file is imported
//!   only by a server with the same identity.
//! - Then every cluster, then every association. A cluster comes before its
//!   associations, so a reader can check each line as it reads it.
//! - Times (`createdAt`, `modifiedAt`, `activateAt`, `exportedAt`) are
//!   integer epoch **milliseconds**: the store's own precision, so a round
//!   trip is exact (the API shows the same instants as epoch seconds with a
//!   fraction). Absent optional members are `null`.
//! - The end line counts what came before it: a file cut short, even at a
//!   line boundary, has no end line and is refused.
//! - Client request tokens are not exported. They are the store's private
//!   memory of answers (kept a day at most, with request fingerprints in an
//!   internal encoding), not data a user created; after an import a retry
//!   with an old token is simply a new request.
//!
//! Reading validates every member with the same rules as the API (the
//! domain types' parsers), so an imported store holds nothing a request
//! could not have created.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read};

use serde::{Deserialize, Serialize};

use crate::domain::{
    parse_kubernetes_version, Association, AssociationId, AwsIdentity, Cluster, ClusterName,
    ClusterStatus, DomainError, Namespace, RoleArn, ServiceAccountName, SessionPolicy, Tags,
    Timestamp,
};
use crate::store::migrate;
use crate::store::Snapshot;

/// The `format` member of the header.
pub const FORMAT: &str = "pod-identity-store-export";
/// The version of the file format this build writes and reads.
pub const VERSION: u32 = 1;
pub const CONTENT_TYPE: &str = "application/x-ndjson";
/// The longest line accepted. The largest valid record (50 tags of 128 + 256
/// characters, a 2,048-character policy, each character escaped) is far
/// smaller; the bound keeps a file without newlines from filling memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub schema: u32,
    pub exported_at: i64,
    pub region: String,
    pub account_id: String,
}

/// Every line after the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
enum Line {
    Cluster(ClusterLine),
    Association(AssociationLine),
    End(EndLine),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClusterLine {
    name: String,
    role_arn: String,
    version: String,
    tags: BTreeMap<String, String>,
    created_at: i64,
    /// The stored status: a CREATING cluster reads as ACTIVE from `activateAt` on.
    status: ClusterStatus,
    activate_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AssociationLine {
    cluster_name: String,
    association_id: String,
    namespace: String,
    service_account: String,
    role_arn: String,
    tags: BTreeMap<String, String>,
    created_at: i64,
    modified_at: i64,
    disable_session_tags: bool,
    target_role_arn: Option<String>,
    external_id: Option<String>,
    policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndLine {
    clusters: u64,
    associations: u64,
}

impl ClusterLine {
    fn new(c: &Cluster) -> Self {
        ClusterLine {
            name: c.name.to_string(),
            role_arn: c.role_arn.to_string(),
            version: c.version.clone(),
            tags: c.tags.as_map().clone(),
            created_at: c.created_at.as_millis(),
            status: c.status,
            activate_at: c.activate_at.map(Timestamp::as_millis),
        }
    }

    fn parse(self, identity: &AwsIdentity) -> Result<Cluster, DomainError> {
        Ok(Cluster {
            name: ClusterName::parse("name", &self.name)?,
            role_arn: RoleArn::parse_in_account("roleArn", &self.role_arn, identity)?,
            version: parse_kubernetes_version("version", &self.version)?,
            tags: Tags::parse("tags", self.tags)?,
            created_at: millis("createdAt", self.created_at)?,
            status: self.status,
            activate_at: self
                .activate_at
                .map(|ms| millis("activateAt", ms))
                .transpose()?,
        })
    }
}

impl AssociationLine {
    fn new(a: &Association) -> Self {
        AssociationLine {
            cluster_name: a.cluster.to_string(),
            association_id: a.id.to_string(),
            namespace: a.namespace.to_string(),
            service_account: a.service_account.to_string(),
            role_arn: a.role_arn.to_string(),
            tags: a.tags.as_map().clone(),
            created_at: a.created_at.as_millis(),
            modified_at: a.modified_at.as_millis(),
            disable_session_tags: a.disable_session_tags,
            target_role_arn: a.target_role_arn.as_ref().map(ToString::to_string),
            external_id: a.external_id.clone(),
            policy: a.policy.as_ref().map(|p| p.as_str().to_owned()),
        }
    }

    fn parse(self, identity: &AwsIdentity) -> Result<Association, DomainError> {
        let association = Association {
            cluster: ClusterName::parse("clusterName", &self.cluster_name)?,
            id: AssociationId::parse(&self.association_id)?,
            namespace: Namespace::parse(&self.namespace)?,
            service_account: ServiceAccountName::parse(&self.service_account)?,
            role_arn: RoleArn::parse_in_account("roleArn", &self.role_arn, identity)?,
            tags: Tags::parse("tags", self.tags)?,
            created_at: millis("createdAt", self.created_at)?,
            modified_at: millis("modifiedAt", self.modified_at)?,
            disable_session_tags: self.disable_session_tags,
            target_role_arn: self
                .target_role_arn
                .map(|arn| RoleArn::parse_in_partition("targetRoleArn", &arn, identity.partition))
                .transpose()?,
            external_id: self.external_id,
            policy: self.policy.map(|p| SessionPolicy::parse(&p)).transpose()?,
        };
        association.check_consistent()?;
        Ok(association)
    }
}

fn millis(member: &str, ms: i64) -> Result<Timestamp, DomainError> {
    if ms < 0 {
        return Err(DomainError::InvalidParameter(format!(
            "{member} is {ms}; times are epoch milliseconds, 0 or more."
        )));
    }
    Ok(Timestamp::from_millis(ms))
}

/// The lines of an export of `snapshot`, each ending in `\n`, produced one
/// at a time so that the text of a large store is never held whole.
pub struct ExportLines {
    header: Option<Header>,
    clusters: std::vec::IntoIter<Cluster>,
    associations: std::vec::IntoIter<Association>,
    end: Option<EndLine>,
}

impl ExportLines {
    pub fn new(snapshot: Snapshot, identity: &AwsIdentity) -> Self {
        ExportLines {
            header: Some(Header {
                format: FORMAT.to_owned(),
                version: VERSION,
                schema: migrate::LATEST,
                exported_at: snapshot.taken_at.as_millis(),
                region: identity.region.clone(),
                account_id: identity.account_id.clone(),
            }),
            end: Some(EndLine {
                clusters: snapshot.clusters.len() as u64,
                associations: snapshot.associations.len() as u64,
            }),
            clusters: snapshot.clusters.into_iter(),
            associations: snapshot.associations.into_iter(),
        }
    }
}

fn to_line<T: Serialize>(value: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).expect("export lines always serialize");
    line.push(b'\n');
    line
}

impl Iterator for ExportLines {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if let Some(header) = self.header.take() {
            return Some(to_line(&header));
        }
        if let Some(cluster) = self.clusters.next() {
            return Some(to_line(&Line::Cluster(ClusterLine::new(&cluster))));
        }
        if let Some(association) = self.associations.next() {
            return Some(to_line(&Line::Association(AssociationLine::new(
                &association,
            ))));
        }
        self.end.take().map(|end| to_line(&Line::End(end)))
    }
}

/// What a file holds, every line checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    pub header: Header,
    pub clusters: Vec<Cluster>,
    pub associations: Vec<Association>,
}

/// Why a file was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("the file is empty; an export starts with its header line")]
    Empty,
    #[error(
        "the file ends after line {lines} without the export's end line, so it is incomplete \
         (was the export interrupted?); export again"
    )]
    Truncated { lines: u64 },
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
}

fn at(line: u64, message: impl Into<String>) -> FileError {
    FileError::Line {
        line,
        message: message.into(),
    }
}

/// serde_json's message without the position it appends (always "line 1"
/// here, since each line is parsed alone), with the column instead.
fn json_problem(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(message, _)| message);
    match e.classify() {
        serde_json::error::Category::Data => format!("{text} (column {})", e.column()),
        _ => format!("not valid JSON: {text} (column {})", e.column()),
    }
}

/// The members of a header that decide whether this build can read the file.
#[derive(Deserialize)]
struct HeaderProbe {
    format: Option<String>,
    version: Option<u32>,
}

fn parse_header(line: &[u8], identity: &AwsIdentity) -> Result<Header, FileError> {
    let not_a_header = |why: String| {
        at(
            1,
            format!(
                "{why}; an export starts with a header such as \
                 {{\"format\":\"{FORMAT}\",\"version\":{VERSION},...}}"
            ),
        )
    };
    let probe: HeaderProbe =
        serde_json::from_slice(line).map_err(|e| not_a_header(json_problem(&e)))?;
    if probe.format.as_deref() != Some(FORMAT) {
        return Err(not_a_header(format!(
            "it is not a {FORMAT} header (format {:?})",
            probe.format.unwrap_or_default()
        )));
    }
    match probe.version {
        Some(VERSION) => {}
        Some(version) if version > VERSION => {
            return Err(at(
                1,
                format!(
                    "the file has export format version {version}, written by a newer \
                     pod-identity-store; this build reads version {VERSION}. Import it with a \
                     newer pod-identity-store"
                ),
            ))
        }
        other => {
            return Err(not_a_header(format!(
                "export format version {other:?} is unknown"
            )))
        }
    }
    let header: Header = serde_json::from_slice(line).map_err(|e| at(1, json_problem(&e)))?;
    if header.region != identity.region || header.account_id != identity.account_id {
        return Err(at(
            1,
            format!(
                "the file was exported by a server of account {} in region {}, but this store is \
                 configured for account {} in region {}; every ARN depends on them. Import with \
                 the server's configuration (--config, with aws.account_id and aws.region)",
                header.account_id, header.region, identity.account_id, identity.region
            ),
        ));
    }
    Ok(header)
}

mod reader;
pub use reader::{check, read, Entry, Reader, Summary};

#[cfg(test)]
mod tests;
