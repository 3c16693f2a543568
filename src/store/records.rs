//! Stored values: a one-byte format version followed by the record encoded
//! with bincode 2 (standard config: little-endian, variable-length integers).
//!
//! A record format, once released, is frozen: a change adds a new version
//! (and a migration step), and `golden_bytes_of_every_format_stay_the_same`
//! fails if a released format's bytes change by accident. The records hold
//! domain newtypes, which serialize as their inner string or integer.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::domain::{
    Association, AssociationId, Cluster, ClusterName, ClusterStatus, Namespace, RoleArn,
    ServiceAccountName, Tags, Timestamp,
};

/// The format version every record of this build is written with.
pub const FORMAT_V1: u8 = 1;

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(128);
    bytes.push(FORMAT_V1);
    bincode::serde::encode_into_std_write(record, &mut bytes, bincode_config())
        .expect("encoding into a Vec cannot fail");
    bytes
}

pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_V1, body)) => {
            let (record, read) = bincode::serde::decode_from_slice(body, bincode_config())
                .map_err(|e| StoreError::Corrupt(format!("{what} record does not decode: {e}")))?;
            if read != body.len() {
                return Err(StoreError::Corrupt(format!(
                    "{what} record has {} trailing bytes",
                    body.len() - read
                )));
            }
            Ok(record)
        }
        Some((version, _)) => Err(StoreError::Corrupt(format!(
            "{what} record has format version {version}, which this build does not know"
        ))),
        None => Err(StoreError::Corrupt(format!("{what} record is empty"))),
    }
}

/// A cluster. `generation` changes in every transaction that adds a key under
/// the cluster, so DeleteCluster can tell whether the keys it collected
/// outside its transaction are still all there are (see `Store::delete_cluster`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub name: ClusterName,
    pub role_arn: RoleArn,
    pub version: String,
    pub tags: Tags,
    pub created_at: Timestamp,
    /// Stored as the variant index: the order of `ClusterStatus` is frozen.
    pub status: ClusterStatus,
    pub activate_at: Option<Timestamp>,
    pub generation: u64,
}

impl ClusterRecord {
    pub fn new(cluster: Cluster) -> Self {
        ClusterRecord {
            name: cluster.name,
            role_arn: cluster.role_arn,
            version: cluster.version,
            tags: cluster.tags,
            created_at: cluster.created_at,
            status: cluster.status,
            activate_at: cluster.activate_at,
            generation: 0,
        }
    }

    pub fn to_cluster(&self) -> Cluster {
        Cluster {
            name: self.name.clone(),
            role_arn: self.role_arn.clone(),
            version: self.version.clone(),
            tags: self.tags.clone(),
            created_at: self.created_at,
            status: self.status,
            activate_at: self.activate_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociationRecord {
    pub cluster: ClusterName,
    pub id: AssociationId,
    pub namespace: Namespace,
    pub service_account: ServiceAccountName,
    pub role_arn: RoleArn,
    pub tags: Tags,
    pub created_at: Timestamp,
    pub modified_at: Timestamp,
}

impl From<&Association> for AssociationRecord {
    fn from(a: &Association) -> Self {
        AssociationRecord {
            cluster: a.cluster.clone(),
            id: a.id.clone(),
            namespace: a.namespace.clone(),
            service_account: a.service_account.clone(),
            role_arn: a.role_arn.clone(),
            tags: a.tags.clone(),
            created_at: a.created_at,
            modified_at: a.modified_at,
        }
    }
}

impl From<AssociationRecord> for Association {
    fn from(r: AssociationRecord) -> Self {
        Association {
            cluster: r.cluster,
            id: r.id,
            namespace: r.namespace,
            service_account: r.service_account,
            role_arn: r.role_arn,
            tags: r.tags,
            created_at: r.created_at,
            modified_at: r.modified_at,
        }
    }
}

/// The value of an index entry: the association that holds the slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRecord {
    pub id: AssociationId,
}

/// What a request with a `clientRequestToken` answered, so that a retry gets
/// the same answer (zero2prod's saved response, kept as a record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SavedResponse {
    Cluster(ClusterRecord),
    Association(AssociationRecord),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The request's parameters; a retry must send the same ones.
    pub fingerprint: Vec<u8>,
    pub expires_at: Timestamp,
    pub response: SavedResponse,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AwsIdentity;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn association() -> AssociationRecord {
        let identity = AwsIdentity::new("us-east-1", "123456789012");
        AssociationRecord {
            cluster: ClusterName::parse("name", "c1").unwrap(),
            id: AssociationId::parse("a-8mvwvh57cu74mgcst").unwrap(),
            namespace: Namespace::parse("default").unwrap(),
            service_account: ServiceAccountName::parse("app").unwrap(),
            role_arn: RoleArn::parse_in_account(
                "roleArn",
                "arn:aws:iam::123456789012:role/r",
                &identity,
            )
            .unwrap(),
            tags: Tags::parse("tags", [("k".to_string(), "v".to_string())].into()).unwrap(),
            created_at: Timestamp::from_millis(1_700_000_000_000),
            modified_at: Timestamp::from_millis(1_700_000_000_001),
        }
    }

    #[test]
    fn records_round_trip_through_the_envelope() {
        let record = association();
        let bytes = encode(&record);
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(
            decode::<AssociationRecord>("association", &bytes).unwrap(),
            record
        );
    }

    #[test]
    fn an_unknown_format_version_or_trailing_garbage_is_reported_as_corruption() {
        let mut bytes = encode(&association());
        bytes[0] = 9;
        assert!(matches!(
            decode::<AssociationRecord>("association", &bytes),
            Err(StoreError::Corrupt(_))
        ));
        let mut bytes = encode(&association());
        bytes.push(0);
        assert!(matches!(
            decode::<AssociationRecord>("association", &bytes),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<AssociationRecord>("association", &[]),
            Err(StoreError::Corrupt(_))
        ));
    }

    /// Released formats are frozen: if this fails, the change needs a new
    /// format version and a migration step, not a new expected value.
    #[test]
    fn golden_bytes_of_every_format_stay_the_same() {
        assert_eq!(
            hex(&encode(&association())),
            "0102633113612d386d767776683537637537346d676373740764656661756c740361707020\
             61726e3a6177733a69616d3a3a3132333435363738393031323a726f6c652f7201016b01\
             76fd00d0ca9f17030000fd02d0ca9f17030000"
                .replace(char::is_whitespace, "")
        );
        let status_bytes: Vec<String> =
            ClusterStatus::ALL.iter().map(|s| hex(&encode(s))).collect();
        assert_eq!(
            status_bytes,
            ["0100", "0101", "0102", "0103", "0104", "0105"]
        );
    }
}
