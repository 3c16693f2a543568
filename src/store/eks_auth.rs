//! What EKS Auth keeps: each cluster's token issuer (tree `cluster_issuers`,
//! keyed like `clusters`) and the credentials a provider issued
//! (tree `credentials`, keyed by access key ID), until they expire.
//!
//! A cluster's issuer record is written and removed in the transactions that
//! create and remove the cluster (`ops`), so a cluster always has one. The
//! credentials are independent single keys: each is one plain insert on the
//! writer thread, answered once durable, and the sweep removes expired ones
//! through the writer too.
//!
//! # Limits
//! Looking an issuer up by its ID (the discovery routes) walks every
//! cluster's issuer record: clusters are few, and the routes are read when
//! a verifier starts, not per request.

use serde::{Deserialize, Serialize};

use super::keys;
use super::records::{decode, encode, AssociationRecord, ClusterRecord, IndexRecord, Record};
use super::tx::{abort, found, Tx, TxResult};
use super::{Inner, Store, StoreError};
use crate::domain::{
    Association, Cluster, ClusterName, DomainError, Namespace, ServiceAccountName, Timestamp,
};
use crate::eksauth::{ClusterIssuer, CredentialGrant, ExternalIssuer};

/// A cluster's issuer (format 1, schema 4). Plain fields: the store owns
/// these bytes, whatever the eksauth types become.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerRecord {
    pub id: String,
    /// PKCS#1 DER of the RS256 private key.
    pub signing_key: Vec<u8>,
    /// `(issuer, jwks)` of the registered external issuer.
    pub external: Option<(String, String)>,
}

impl Record for IssuerRecord {
    const FORMAT: u8 = 1;
    const WHAT: &'static str = "cluster issuer";
}

impl IssuerRecord {
    pub fn new(issuer: &ClusterIssuer) -> Self {
        IssuerRecord {
            id: issuer.id.clone(),
            signing_key: issuer.signing_key.clone(),
            external: issuer
                .external
                .as_ref()
                .map(|e| (e.issuer.clone(), e.jwks.clone())),
        }
    }

    pub fn to_issuer(&self) -> ClusterIssuer {
        ClusterIssuer {
            id: self.id.clone(),
            signing_key: self.signing_key.clone(),
            external: self.external.as_ref().map(|(issuer, jwks)| ExternalIssuer {
                issuer: issuer.clone(),
                jwks: jwks.clone(),
            }),
        }
    }
}

/// Credentials a provider issued (format 1, schema 4). The expiry
/// comes first so that the sweep decodes only it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRecord {
    /// Epoch milliseconds.
    pub expires_at: i64,
    pub access_key_id: String,
    pub role_arn: String,
    pub source_role_arn: Option<String>,
    pub external_id: Option<String>,
    pub session_name: String,
    pub session_tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
    pub policy: Option<String>,
    pub association_arn: String,
    pub cluster: String,
    pub namespace: String,
    pub service_account: String,
    pub pod_name: String,
    pub pod_uid: String,
}

impl Record for CredentialRecord {
    const FORMAT: u8 = 1;
    const WHAT: &'static str = "credential";
}

impl CredentialRecord {
    fn new(g: &CredentialGrant) -> Self {
        CredentialRecord {
            expires_at: g.expiration.as_millis(),
            access_key_id: g.access_key_id.clone(),
            role_arn: g.role_arn.clone(),
            source_role_arn: g.source_role_arn.clone(),
            external_id: g.external_id.clone(),
            session_name: g.session_name.clone(),
            session_tags: g.session_tags.clone(),
            transitive_tag_keys: g.transitive_tag_keys.clone(),
            policy: g.policy.clone(),
            association_arn: g.association_arn.clone(),
            cluster: g.cluster.clone(),
            namespace: g.namespace.clone(),
            service_account: g.service_account.clone(),
            pod_name: g.pod_name.clone(),
            pod_uid: g.pod_uid.clone(),
        }
    }

    fn into_grant(self) -> CredentialGrant {
        CredentialGrant {
            access_key_id: self.access_key_id,
            expiration: Timestamp::from_millis(self.expires_at),
            role_arn: self.role_arn,
            source_role_arn: self.source_role_arn,
            external_id: self.external_id,
            session_name: self.session_name,
            session_tags: self.session_tags,
            transitive_tag_keys: self.transitive_tag_keys,
            policy: self.policy,
            association_arn: self.association_arn,
            cluster: self.cluster,
            namespace: self.namespace,
            service_account: self.service_account,
            pod_name: self.pod_name,
            pod_uid: self.pod_uid,
        }
    }
}

/// When a stored credential expires.
fn credential_expires_at(bytes: &[u8]) -> Result<i64, StoreError> {
    let record: CredentialRecord = decode(bytes)?;
    Ok(record.expires_at)
}

/// What AssumeRoleForPodIdentity reads about a cluster, in one lookup.
#[derive(Debug, Clone)]
pub struct PodIdentityTarget {
    pub cluster: Cluster,
    pub issuer: ClusterIssuer,
    /// The association for the asked namespace and service account (none
    /// when none was asked).
    pub association: Option<Association>,
}

impl Inner {
    fn read_issuer(&self, name: &ClusterName) -> Result<IssuerRecord, StoreError> {
        match self.trees.issuers.get(keys::cluster(name))? {
            Some(bytes) => decode(&bytes),
            None => Err(StoreError::Corrupt(format!(
                "cluster {name} has no issuer record"
            ))),
        }
    }

    fn read_cluster_with_issuer(
        &self,
        name: &ClusterName,
    ) -> Result<(Cluster, ClusterIssuer), StoreError> {
        let cluster: ClusterRecord = found(self.trees.clusters.get(keys::cluster(name))?, || {
            DomainError::ClusterNotFound(name.clone())
        })?;
        Ok((cluster.to_cluster(), self.read_issuer(name)?.to_issuer()))
    }

    fn read_association_for(
        &self,
        cluster: &ClusterName,
        namespace: &Namespace,
        service_account: &ServiceAccountName,
    ) -> Result<Option<Association>, StoreError> {
        let index_key = keys::association_index(cluster, namespace, service_account);
        let Some(bytes) = self.trees.index.get(index_key)? else {
            return Ok(None);
        };
        let entry: IndexRecord = decode(&bytes)?;
        match self
            .trees
            .associations
            .get(keys::association(cluster, &entry.id()))?
        {
            Some(bytes) => Ok(Some(decode::<AssociationRecord>(&bytes)?.into())),
            None => Ok(None),
        }
    }
}

impl Tx<'_> {
    /// A new cluster's token issuer, written with the cluster.
    pub(super) fn put_issuer(&self, name: &ClusterName, issuer: &ClusterIssuer) -> TxResult<()> {
        self.issuers
            .insert(keys::cluster(name), encode(&IssuerRecord::new(issuer)))?;
        Ok(())
    }
}

/// `check`: every cluster has one issuer record that decodes and holds a
/// signing key, and every issuer record belongs to a cluster.
pub(super) fn check_issuers(
    trees: &super::Trees,
    clusters: &super::check::Clusters,
    report: &mut super::CheckReport,
) -> Result<(), StoreError> {
    let problems = &mut report.problems;
    for entry in trees.issuers.iter() {
        let (key, bytes) = entry?;
        let shown = keys::shown(&key);
        if !clusters.contains_key(key.as_ref()) {
            problems.push(format!(
                "the token issuer of cluster {shown} remains, but the cluster does not exist"
            ));
        }
        match decode::<IssuerRecord>(&bytes) {
            Ok(record) => {
                if let Err(e) = crate::eksauth::SigningKey::from_pkcs1_der(&record.signing_key) {
                    problems.push(format!("the token issuer of cluster {shown}: {e}"));
                }
            }
            Err(e) => problems.push(format!("the token issuer of cluster {shown}: {e}")),
        }
    }
    for key in clusters.keys() {
        if !trees.issuers.contains_key(key)? {
            // Not wrong: an import leaves its clusters so.
            report.notes.push(format!(
                "cluster {} has no token issuer; the server gives it one at its next start",
                keys::shown(key)
            ));
        }
    }
    Ok(())
}

impl Store {
    /// Gives every cluster without an issuer one (a cluster that came in by
    /// an import). Runs at open, before any request; the writer thread runs
    /// nothing when every cluster has one.
    pub(super) fn ensure_issuers(&self) -> Result<(), StoreError> {
        let mut missing = Vec::new();
        for entry in self.inner.trees.clusters.iter() {
            let (key, _) = entry?;
            if !self.inner.trees.issuers.contains_key(&key)? {
                let issuer = ClusterIssuer::generate()
                    .map_err(|e| StoreError::Internal(format!("cannot make a signing key: {e}")))?;
                missing.push((key, issuer));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        self.write_blocking(move |_, writing| {
            for (key, issuer) in &missing {
                log::info!("cluster {} had no token issuer; made one", keys::shown(key));
                writing
                    .trees()
                    .issuers
                    .insert(key, encode(&IssuerRecord::new(issuer)))?;
            }
            Ok(())
        })
    }

    /// A cluster, its issuer and the association for (namespace, service
    /// account), if there is one.
    pub async fn pod_identity_target(
        &self,
        cluster: ClusterName,
        subject: Option<(Namespace, ServiceAccountName)>,
    ) -> Result<PodIdentityTarget, StoreError> {
        self.lookup(move |s| {
            let (found, issuer) = s.read_cluster_with_issuer(&cluster)?;
            let association = match &subject {
                Some((namespace, service_account)) => {
                    s.read_association_for(&cluster, namespace, service_account)?
                }
                None => None,
            };
            Ok(PodIdentityTarget {
                cluster: found,
                issuer,
                association,
            })
        })
        .await
    }

    /// A cluster and its issuer.
    pub async fn cluster_issuer(
        &self,
        cluster: ClusterName,
    ) -> Result<(Cluster, ClusterIssuer), StoreError> {
        self.lookup(move |s| s.read_cluster_with_issuer(&cluster))
            .await
    }

    /// The cluster whose issuer has this ID, with the issuer.
    pub async fn issuer_by_id(
        &self,
        id: String,
    ) -> Result<Option<(ClusterName, ClusterIssuer)>, StoreError> {
        self.read(move |s| {
            for entry in s.trees.issuers.iter() {
                let (key, bytes) = entry?;
                let record: IssuerRecord = decode(&bytes)?;
                if record.id == id {
                    let name = ClusterName::parse("name", &String::from_utf8_lossy(&key))
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    return Ok(Some((name, record.to_issuer())));
                }
            }
            Ok(None)
        })
        .await
    }

    /// Registers (`Some`) or removes (`None`) a cluster's external issuer.
    pub async fn set_external_issuer(
        &self,
        cluster: ClusterName,
        external: Option<ExternalIssuer>,
    ) -> Result<(), StoreError> {
        self.write_grouped(move |_, tx| {
            let key = keys::cluster(&cluster);
            let Some(bytes) = tx.clusters.get(&key)? else {
                return Err(abort(DomainError::ClusterNotFound(cluster.clone())));
            };
            let record: ClusterRecord = decode(&bytes).map_err(abort)?;
            if record.deleting {
                return Err(abort(DomainError::ClusterNotFound(cluster.clone())));
            }
            let Some(bytes) = tx.issuers.get(&key)? else {
                return Err(abort(StoreError::Corrupt(format!(
                    "cluster {cluster} has no issuer record"
                ))));
            };
            let mut issuer: IssuerRecord = decode(&bytes).map_err(abort)?;
            issuer.external = external
                .as_ref()
                .map(|e| (e.issuer.clone(), e.jwks.clone()));
            tx.issuers.insert(key, encode(&issuer))?;
            Ok(())
        })
        .await
    }

    /// Keeps minted credentials until they expire; returns once durable.
    pub async fn save_credentials(&self, grant: CredentialGrant) -> Result<(), StoreError> {
        let record = CredentialRecord::new(&grant);
        self.write(move |_, writing| {
            writing
                .trees()
                .credentials
                .insert(grant.access_key_id.as_bytes(), encode(&record))?;
            Ok(())
        })
        .await
    }

    /// Minted credentials by access key ID, unless unknown or expired at `now`.
    pub async fn credentials(
        &self,
        access_key_id: String,
        now: Timestamp,
    ) -> Result<Option<CredentialGrant>, StoreError> {
        self.lookup(move |s| {
            let Some(bytes) = s.trees.credentials.get(access_key_id.as_bytes())? else {
                return Ok(None);
            };
            let record: CredentialRecord = decode(&bytes)?;
            Ok((record.expires_at > now.as_millis()).then(|| record.into_grant()))
        })
        .await
    }

    /// Removes credentials expired by `now`, at most `limit` of them (the
    /// sweeper calls again on its next tick), through the writer thread.
    /// Returns how many it removed. Not waited on for durability: a sweep
    /// lost in a crash is simply done again.
    pub fn sweep_expired_credentials(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut expired = Vec::new();
        for entry in self.inner.trees.credentials.iter() {
            let (key, bytes) = entry?;
            if credential_expires_at(&bytes)? <= now.as_millis() {
                expired.push(key);
                if expired.len() == limit {
                    break;
                }
            }
        }
        if expired.is_empty() {
            return Ok(0);
        }
        self.write_blocking(move |_, writing| {
            let credentials = &writing.trees().credentials;
            let mut removed = 0;
            for key in &expired {
                // Checked again rather than trusting the earlier read.
                let Some(bytes) = credentials.get(key)? else {
                    continue;
                };
                if credential_expires_at(&bytes)? <= now.as_millis() {
                    credentials.remove(key)?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{open, runtime};

    fn grant(key: &str, expires_at: i64) -> CredentialGrant {
        CredentialGrant {
            access_key_id: key.into(),
            expiration: Timestamp::from_millis(expires_at),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            source_role_arn: None,
            external_id: None,
            session_name: "eks-c1-p-u".into(),
            session_tags: vec![("eks-cluster-name".into(), "c1".into())],
            transitive_tag_keys: vec!["eks-cluster-name".into()],
            policy: None,
            association_arn: "arn".into(),
            cluster: "c1".into(),
            namespace: "default".into(),
            service_account: "app".into(),
            pod_name: "p".into(),
            pod_uid: "u".into(),
        }
    }

    #[test]
    fn credentials_read_back_until_they_expire_and_the_sweep_removes_only_expired_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        runtime().block_on(async {
            store
                .save_credentials(grant("ASIAONE", 1_000))
                .await
                .unwrap();
            store
                .save_credentials(grant("ASIATWO", 5_000))
                .await
                .unwrap();
            let now = Timestamp::from_millis(2_000);
            assert_eq!(
                store.credentials("ASIATWO".into(), now).await.unwrap(),
                Some(grant("ASIATWO", 5_000))
            );
            assert_eq!(
                store.credentials("ASIAONE".into(), now).await.unwrap(),
                None
            );
            assert_eq!(
                store.credentials("ASIANONE".into(), now).await.unwrap(),
                None
            );
        });
        let now = Timestamp::from_millis(2_000);
        assert_eq!(store.sweep_expired_credentials(now, 100).unwrap(), 1);
        assert_eq!(store.inner.trees.credentials.len(), 1);
        assert_eq!(store.sweep_expired_credentials(now, 100).unwrap(), 0);
        runtime().block_on(async {});
    }

    #[test]
    fn issuer_records_keep_the_key_id_and_external_issuer_as_given() {
        let issuer = ClusterIssuer {
            id: "0123".into(),
            signing_key: vec![1, 2, 3],
            external: Some(ExternalIssuer {
                issuer: "https://kind".into(),
                jwks: "{\"keys\":[]}".into(),
            }),
        };
        let bytes = encode(&IssuerRecord::new(&issuer));
        assert_eq!(decode::<IssuerRecord>(&bytes).unwrap().to_issuer(), issuer);
    }
}
