//! Stored values: a one-byte format version followed by the record encoded
//! with bincode 2 (standard config: little-endian, variable-length integers).
//!
//! A record format, once released, is frozen: a change adds a new format
//! (and a migration step), the old one moves to its own module (`v1`), and
//! `golden_bytes_of_every_format_stay_the_same` fails if a released format's
//! bytes change by accident. Records hold domain newtypes, which serialize
//! as their inner string or integer.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::domain::{
    Association, AssociationId, Cluster, ClusterName, ClusterStatus, Namespace, RoleArn,
    ServiceAccountName, SessionPolicy, Tags, Timestamp,
};

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// A stored value type and the format version it is written with.
pub trait Record: Serialize + DeserializeOwned {
    const FORMAT: u8;
    const WHAT: &'static str;
}

pub fn encode<T: Record>(record: &T) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(128);
    bytes.push(T::FORMAT);
    bincode::serde::encode_into_std_write(record, &mut bytes, bincode_config())
        .expect("encoding into a Vec cannot fail");
    bytes
}

pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, StoreError> {
    let body = body::<T>(bytes)?;
    let (record, read) = bincode::serde::decode_from_slice(body, bincode_config())
        .map_err(|e| StoreError::Corrupt(format!("{} record does not decode: {e}", T::WHAT)))?;
    if read != body.len() {
        return Err(StoreError::Corrupt(format!(
            "{} record has {} trailing bytes",
            T::WHAT,
            body.len() - read
        )));
    }
    Ok(record)
}

/// A stored `T` without its format byte, once that byte is checked.
fn body<T: Record>(bytes: &[u8]) -> Result<&[u8], StoreError> {
    match bytes.split_first() {
        Some((&format, body)) if format == T::FORMAT => Ok(body),
        Some((format, _)) => Err(StoreError::Corrupt(format!(
            "{} record has format version {format}, but this schema stores version {}",
            T::WHAT,
            T::FORMAT
        ))),
        None => Err(StoreError::Corrupt(format!("{} record is empty", T::WHAT))),
    }
}

/// When a stored `TokenRecord` expires. The sweep reads it from every token,
/// so it decodes only the fields before it, borrowing the fingerprint,
/// rather than the whole record with its saved answer.
pub fn token_expires_at(bytes: &[u8]) -> Result<Timestamp, StoreError> {
    /// The leading fields of `TokenRecord`, in its order.
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        _fingerprint: &'a [u8],
        expires_at: Timestamp,
    }
    let (head, _): (Head<'_>, usize) =
        bincode::serde::borrow_decode_from_slice(body::<TokenRecord>(bytes)?, bincode_config())
            .map_err(|e| StoreError::Corrupt(format!("token record does not decode: {e}")))?;
    Ok(head.expires_at)
}

/// A cluster (format 2, schema 2).
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
    /// How many associations the cluster has: the quota counter, kept in the
    /// same transaction as every create and delete so it never has to be counted.
    pub association_count: u64,
    /// Set by the first step of DeleteCluster: from then on no key is added
    /// under the cluster, and a restart finishes the deletion.
    pub deleting: bool,
}

impl Record for ClusterRecord {
    const FORMAT: u8 = 2;
    const WHAT: &'static str = "cluster";
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
            association_count: 0,
            deleting: false,
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

    /// Takes the status fields of `cluster`, keeping the store's bookkeeping.
    pub fn set_status_from(&mut self, cluster: &Cluster) {
        self.status = cluster.status;
        self.activate_at = cluster.activate_at;
    }
}

/// An association (format 2, schema 2).
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
    pub disable_session_tags: bool,
    pub target_role_arn: Option<RoleArn>,
    pub external_id: Option<String>,
    pub policy: Option<SessionPolicy>,
    /// The key of the token the association was created with, so that
    /// DeletePodIdentityAssociation can remove it.
    pub create_token: Option<Vec<u8>>,
}

impl Record for AssociationRecord {
    const FORMAT: u8 = 2;
    const WHAT: &'static str = "association";
}

impl AssociationRecord {
    pub fn new(a: &Association, create_token: Option<Vec<u8>>) -> Self {
        AssociationRecord {
            cluster: a.cluster.clone(),
            id: a.id.clone(),
            namespace: a.namespace.clone(),
            service_account: a.service_account.clone(),
            role_arn: a.role_arn.clone(),
            tags: a.tags.clone(),
            created_at: a.created_at,
            modified_at: a.modified_at,
            disable_session_tags: a.disable_session_tags,
            target_role_arn: a.target_role_arn.clone(),
            external_id: a.external_id.clone(),
            policy: a.policy.clone(),
            create_token,
        }
    }

    /// This record with the association's new state, keeping the bookkeeping.
    pub fn with(&self, a: &Association) -> Self {
        AssociationRecord::new(a, self.create_token.clone())
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
            disable_session_tags: r.disable_session_tags,
            target_role_arn: r.target_role_arn,
            external_id: r.external_id,
            policy: r.policy,
        }
    }
}

/// The value of an index entry: the association that holds the slot.
/// Unchanged since schema 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRecord {
    pub id: AssociationId,
}

impl Record for IndexRecord {
    const FORMAT: u8 = 1;
    const WHAT: &'static str = "index";
}

/// What a request with a `clientRequestToken` answered, so that a retry gets
/// the same answer (zero2prod's saved response, kept as a record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SavedResponse {
    Cluster(ClusterRecord),
    Association(AssociationRecord),
}

/// A client request token (format 2, schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The request's parameters; a retry must send the same ones.
    pub fingerprint: Vec<u8>,
    pub expires_at: Timestamp,
    pub response: SavedResponse,
}

impl Record for TokenRecord {
    const FORMAT: u8 = 2;
    const WHAT: &'static str = "token";
}

/// Schema 1's formats, frozen. Read only by the 1 → 2 migration.
pub mod v1 {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ClusterRecord {
        pub name: ClusterName,
        pub role_arn: RoleArn,
        pub version: String,
        pub tags: Tags,
        pub created_at: Timestamp,
        pub status: ClusterStatus,
        pub activate_at: Option<Timestamp>,
        pub generation: u64,
    }

    impl Record for ClusterRecord {
        const FORMAT: u8 = 1;
        const WHAT: &'static str = "cluster (format 1)";
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

    impl Record for AssociationRecord {
        const FORMAT: u8 = 1;
        const WHAT: &'static str = "association (format 1)";
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum SavedResponse {
        Cluster(ClusterRecord),
        Association(AssociationRecord),
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct TokenRecord {
        pub fingerprint: Vec<u8>,
        pub expires_at: Timestamp,
        pub response: SavedResponse,
    }

    impl Record for TokenRecord {
        const FORMAT: u8 = 1;
        const WHAT: &'static str = "token (format 1)";
    }

    /// Schema 2's cluster: the counter and the deletion flag start empty.
    pub fn upgrade_cluster(old: ClusterRecord, association_count: u64) -> super::ClusterRecord {
        super::ClusterRecord {
            name: old.name,
            role_arn: old.role_arn,
            version: old.version,
            tags: old.tags,
            created_at: old.created_at,
            status: old.status,
            activate_at: old.activate_at,
            association_count,
            deleting: false,
        }
    }

    /// Schema 2's association: the newer members at their defaults.
    pub fn upgrade_association(
        old: AssociationRecord,
        create_token: Option<Vec<u8>>,
    ) -> super::AssociationRecord {
        super::AssociationRecord {
            cluster: old.cluster,
            id: old.id,
            namespace: old.namespace,
            service_account: old.service_account,
            role_arn: old.role_arn,
            tags: old.tags,
            created_at: old.created_at,
            modified_at: old.modified_at,
            disable_session_tags: false,
            target_role_arn: None,
            external_id: None,
            policy: None,
            create_token,
        }
    }

    pub fn upgrade_token(old: TokenRecord) -> super::TokenRecord {
        super::TokenRecord {
            fingerprint: old.fingerprint,
            expires_at: old.expires_at,
            response: match old.response {
                SavedResponse::Cluster(c) => super::SavedResponse::Cluster(upgrade_cluster(c, 0)),
                SavedResponse::Association(a) => {
                    super::SavedResponse::Association(upgrade_association(a, None))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AwsIdentity;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn identity() -> AwsIdentity {
        AwsIdentity::new("us-east-1", "123456789012")
    }

    fn association_v1() -> v1::AssociationRecord {
        v1::AssociationRecord {
            cluster: ClusterName::parse("name", "c1").unwrap(),
            id: AssociationId::parse("a-8mvwvh57cu74mgcst").unwrap(),
            namespace: Namespace::parse("default").unwrap(),
            service_account: ServiceAccountName::parse("app").unwrap(),
            role_arn: RoleArn::parse_in_account(
                "roleArn",
                "arn:aws:iam::123456789012:role/r",
                &identity(),
            )
            .unwrap(),
            tags: Tags::parse("tags", [("k".to_string(), "v".to_string())].into()).unwrap(),
            created_at: Timestamp::from_millis(1_700_000_000_000),
            modified_at: Timestamp::from_millis(1_700_000_000_001),
        }
    }

    fn association_v2() -> AssociationRecord {
        let mut record = v1::upgrade_association(association_v1(), Some(b"key".to_vec()));
        record.disable_session_tags = true;
        record.target_role_arn = Some(
            RoleArn::parse_in_partition(
                "targetRoleArn",
                "arn:aws:iam::111122223333:role/t",
                identity().partition,
            )
            .unwrap(),
        );
        record.external_id = Some("e".into());
        record.policy = Some(SessionPolicy::parse("{}").unwrap());
        record
    }

    #[test]
    fn records_round_trip_through_the_envelope() {
        let record = association_v2();
        let bytes = encode(&record);
        assert_eq!(bytes[0], AssociationRecord::FORMAT);
        assert_eq!(decode::<AssociationRecord>(&bytes).unwrap(), record);
    }

    #[test]
    fn a_record_of_another_format_or_with_trailing_garbage_is_reported_as_corruption() {
        let v1_bytes = encode(&association_v1());
        assert!(matches!(
            decode::<AssociationRecord>(&v1_bytes),
            Err(StoreError::Corrupt(_))
        ));
        let mut bytes = encode(&association_v2());
        bytes.push(0);
        assert!(matches!(
            decode::<AssociationRecord>(&bytes),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<AssociationRecord>(&[]),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn the_sweep_reads_a_tokens_expiry_without_decoding_its_answer() {
        let record = TokenRecord {
            fingerprint: b"{\"roleArn\":\"r\"}".to_vec(),
            expires_at: Timestamp::from_millis(1_700_000_123_456),
            response: SavedResponse::Association(association_v2()),
        };
        let bytes = encode(&record);
        assert_eq!(token_expires_at(&bytes).unwrap(), record.expires_at);
        // The saved answer is not read: cut short, the record no longer
        // decodes, but its expiry still does.
        let cut = &bytes[..bytes.len() - 10];
        assert!(decode::<TokenRecord>(cut).is_err());
        assert_eq!(token_expires_at(cut).unwrap(), record.expires_at);
        let mut older_format = bytes.clone();
        older_format[0] = 1;
        assert!(matches!(
            token_expires_at(&older_format),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            token_expires_at(&bytes[..3]),
            Err(StoreError::Corrupt(_))
        ));
    }

    /// Released formats are frozen: if this fails, the change needs a new
    /// format version and a migration step, not a new expected value.
    #[test]
    fn golden_bytes_of_every_format_stay_the_same() {
        assert_eq!(
            hex(&encode(&association_v1())),
            "0102633113612d386d767776683537637537346d676373740764656661756c740361707020\
             61726e3a6177733a69616d3a3a3132333435363738393031323a726f6c652f7201016b01\
             76fd00d0ca9f17030000fd02d0ca9f17030000"
        );
        let status_bytes: Vec<String> = ClusterStatus::ALL
            .iter()
            .map(|s| hex(&bincode::serde::encode_to_vec(s, bincode_config()).unwrap()))
            .collect();
        assert_eq!(status_bytes, ["00", "01", "02", "03", "04", "05"]);
        assert_eq!(
            hex(&encode(&association_v2())),
            "0202633113612d386d767776683537637537346d676373740764656661756c740361707020\
             61726e3a6177733a69616d3a3a3132333435363738393031323a726f6c652f7201016b01\
             76fd00d0ca9f17030000fd02d0ca9f1703000001012061726e3a6177733a69616d3a3a31\
             31313132323232333333333a726f6c652f7401016501027b7d01036b6579"
        );
    }
}
