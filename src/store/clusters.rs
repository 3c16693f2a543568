//! Clusters: CreateCluster, DescribeCluster, ListClusters, DeleteCluster and
//! the status set by the admin route or a start-up preset.

use super::idempotency::{wrong_saved_answer, Idempotency};
use super::keys::{self, TokenScope};
use super::records::{decode, encode, fingerprint, ClusterRecord, SavedResponse};
use super::tx::{found, keys_with_prefix, reject, Tx, TxResult};
use super::writer::Writing;
use super::{Inner, ListPage, Store, StoreError};
use crate::domain::{
    ClientRequestToken, Cluster, ClusterName, ClusterStatus, DomainError, NewCluster, Timestamp,
};
use crate::eksauth::ClusterIssuer;

/// A new cluster's issuer. Its RSA key takes tens of milliseconds to make:
/// made on tokio's blocking pool, before the write is queued, so that
/// neither an async worker nor the writer thread waits for it.
async fn new_issuer() -> Result<ClusterIssuer, StoreError> {
    tokio::task::spawn_blocking(ClusterIssuer::generate)
        .await
        .map_err(|e| StoreError::Internal(format!("signing key task failed: {e}")))?
        .map_err(|e| StoreError::Internal(format!("cannot make a signing key: {e}")))
}

/// The async face of the store for clusters: every call runs off the
/// executor, and every write returns only after it is durable.
impl Store {
    pub async fn create_cluster(
        &self,
        request: NewCluster,
        token: Option<ClientRequestToken>,
        now: Timestamp,
    ) -> Result<Cluster, StoreError> {
        let idempotency = Idempotency::new(
            token,
            &request.name,
            TokenScope::CreateCluster,
            fingerprint::create_cluster(&request),
        );
        let issuer = new_issuer().await?;
        self.write_grouped(move |s, tx| {
            s.create_cluster_tx(tx, &request, &issuer, idempotency.as_ref(), now)
        })
        .await
    }

    /// Creates a cluster with a fixed status if none of that name exists (start-up presets).
    pub async fn ensure_cluster(
        &self,
        request: NewCluster,
        status: ClusterStatus,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let issuer = new_issuer().await?;
        self.write_grouped(move |s, tx| s.ensure_cluster_tx(tx, &request, &issuer, status, now))
            .await
    }

    pub async fn cluster(&self, name: ClusterName) -> Result<Cluster, StoreError> {
        self.lookup(move |s| s.read_cluster(&name).map(|record| record.to_cluster()))
            .await
    }

    pub async fn list_clusters(
        &self,
        after: Option<ClusterName>,
        limit: usize,
    ) -> Result<ListPage<ClusterName>, StoreError> {
        self.read(move |s| s.read_cluster_page(after.as_ref(), limit))
            .await
    }

    /// Deletes a cluster and every key under it: associations, index entries, tokens.
    ///
    /// A transaction cannot scan, so this takes two, both on the writer
    /// thread: the first marks the cluster as deleting (no transaction adds
    /// a key under it after that), then the keys are collected and the
    /// second removes them with the cluster. A crash between the two leaves
    /// a cluster in DELETING, which `finish_deletions` completes at the next
    /// start.
    pub async fn delete_cluster(&self, name: ClusterName) -> Result<Cluster, StoreError> {
        self.write(move |s, writing| {
            let marked = writing.transact(|tx| s.mark_deleting_tx(tx, &name))?;
            s.remove_deleted_cluster(writing, &name)?;
            Ok(marked)
        })
        .await
    }

    pub async fn set_cluster_status(
        &self,
        name: ClusterName,
        status: ClusterStatus,
    ) -> Result<Cluster, StoreError> {
        self.write_grouped(move |s, tx| s.set_cluster_status_tx(tx, &name, status))
            .await
    }

    /// Completes deletions a crash interrupted. Runs at open, before any
    /// request; the writer thread runs nothing when there is none.
    pub(super) fn finish_deletions(&self) -> Result<(), StoreError> {
        let mut deleting = Vec::new();
        for entry in self.inner.trees.clusters.iter() {
            let (_, bytes) = entry?;
            let record: ClusterRecord = decode(&bytes)?;
            if record.deleting {
                deleting.push(record.name());
            }
        }
        if deleting.is_empty() {
            return Ok(());
        }
        self.write_blocking(move |s, writing| {
            for name in &deleting {
                log::info!("finishing the deletion of cluster {name} that a restart interrupted");
                s.remove_deleted_cluster(writing, name)?;
            }
            Ok(())
        })
    }
}

/// Refuses association writes in a cluster whose state does not allow them.
pub(super) fn ensure_writable(
    record: &ClusterRecord,
    inner: &Inner,
    now: Timestamp,
) -> TxResult<()> {
    // A cluster being deleted takes no new keys, whatever the configuration says.
    let writable: &[ClusterStatus] = if record.deleting {
        &[]
    } else {
        &inner.settings.writable_states
    };
    record
        .to_cluster()
        .check_writable(now, writable)
        .map_err(reject)
}

impl Tx<'_> {
    pub(super) fn cluster_record(&self, name: &ClusterName) -> TxResult<ClusterRecord> {
        self.clusters.record(keys::cluster(name), || {
            DomainError::ClusterNotFound(name.clone())
        })
    }

    /// The cluster, if association writes are allowed in its state.
    pub(super) fn writable_cluster(
        &self,
        name: &ClusterName,
        inner: &Inner,
        now: Timestamp,
    ) -> TxResult<ClusterRecord> {
        let record = self.cluster_record(name)?;
        ensure_writable(&record, inner, now)?;
        Ok(record)
    }

    pub(super) fn put_cluster(&self, name: &ClusterName, record: &ClusterRecord) -> TxResult<()> {
        self.clusters.insert(keys::cluster(name), encode(record))?;
        Ok(())
    }
}

impl Inner {
    fn create_cluster_tx(
        &self,
        tx: &Tx<'_>,
        request: &NewCluster,
        issuer: &ClusterIssuer,
        idempotency: Option<&Idempotency>,
        now: Timestamp,
    ) -> TxResult<Cluster> {
        if let Some(idem) = idempotency {
            match idem.replay(tx, &request.name, now)? {
                Some(SavedResponse::Cluster(saved)) => return Ok(saved.to_cluster()),
                Some(_) => return Err(wrong_saved_answer()),
                None => {}
            }
        }
        if tx.clusters.get(keys::cluster(&request.name))?.is_some() {
            return Err(reject(DomainError::ClusterExists(request.name.clone())));
        }
        let cluster = Cluster::new(request.clone(), now, self.settings.activation_delay_ms);
        let record = ClusterRecord::new(&cluster);
        tx.put_cluster(&request.name, &record)?;
        tx.put_issuer(&request.name, issuer)?;
        if let Some(idem) = idempotency {
            idem.save(tx, SavedResponse::Cluster(record), self.token_expiry(now))?;
        }
        Ok(cluster)
    }

    /// Creates the cluster with this status unless a cluster of that name exists.
    fn ensure_cluster_tx(
        &self,
        tx: &Tx<'_>,
        request: &NewCluster,
        issuer: &ClusterIssuer,
        status: ClusterStatus,
        now: Timestamp,
    ) -> TxResult<bool> {
        if tx.clusters.get(keys::cluster(&request.name))?.is_some() {
            return Ok(false);
        }
        let mut cluster = Cluster::new(request.clone(), now, 0);
        cluster.set_status(status);
        tx.put_cluster(&request.name, &ClusterRecord::new(&cluster))?;
        tx.put_issuer(&request.name, issuer)?;
        Ok(true)
    }

    /// The cluster's record, read outside any transaction.
    pub(super) fn read_cluster(&self, name: &ClusterName) -> Result<ClusterRecord, StoreError> {
        found(self.trees.clusters.get(keys::cluster(name))?, || {
            DomainError::ClusterNotFound(name.clone())
        })
    }

    fn read_cluster_page(
        &self,
        after: Option<&ClusterName>,
        limit: usize,
    ) -> Result<ListPage<ClusterName>, StoreError> {
        let range = match after {
            // Names sort as bytes; the smallest key after `name` is `name` + 0x00.
            Some(name) => self
                .trees
                .clusters
                .range([keys::cluster(name), vec![0]].concat()..),
            None => self.trees.clusters.iter(),
        };
        let mut items = Vec::with_capacity(limit.min(100));
        for entry in range {
            let (_, bytes) = entry?;
            if items.len() == limit {
                return Ok(ListPage { items, more: true });
            }
            items.push(decode::<ClusterRecord>(&bytes)?.name());
        }
        Ok(ListPage { items, more: false })
    }

    /// DeleteCluster's first step: the cluster is DELETING, and takes no new key.
    fn mark_deleting_tx(&self, tx: &Tx<'_>, name: &ClusterName) -> TxResult<Cluster> {
        let mut record = tx.cluster_record(name)?;
        let mut cluster = record.to_cluster();
        cluster.set_status(ClusterStatus::Deleting);
        record.set_status_from(&cluster);
        record.deleting = true;
        tx.put_cluster(name, &record)?;
        Ok(cluster)
    }

    /// DeleteCluster's second step: scans the cluster's keys, then removes
    /// them with the cluster in one transaction.
    fn remove_deleted_cluster(
        &self,
        writing: &Writing<'_>,
        name: &ClusterName,
    ) -> Result<(), StoreError> {
        let prefix = keys::cluster_prefix(name);
        let associations = keys_with_prefix(&self.trees.associations, &prefix)?;
        let index = keys_with_prefix(&self.trees.index, &prefix)?;
        let tokens = keys_with_prefix(&self.trees.tokens, &prefix)?;
        writing.transact(|tx| {
            for key in &associations {
                tx.associations.remove(&key[..])?;
            }
            for key in &index {
                tx.index.remove(&key[..])?;
            }
            for key in &tokens {
                tx.tokens.remove(&key[..])?;
            }
            tx.clusters.remove(keys::cluster(name))?;
            tx.issuers.remove(keys::cluster(name))?;
            Ok(())
        })
    }

    fn set_cluster_status_tx(
        &self,
        tx: &Tx<'_>,
        name: &ClusterName,
        status: ClusterStatus,
    ) -> TxResult<Cluster> {
        let mut record = tx.cluster_record(name)?;
        let mut cluster = record.to_cluster();
        cluster.set_status(status);
        record.set_status_from(&cluster);
        tx.put_cluster(name, &record)?;
        Ok(cluster)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::association_fixtures::{new_association, role};
    use crate::domain::Tags;
    use crate::store::tests::{open, runtime};
    use crate::store::StoreSettings;

    #[test]
    fn a_deletion_cut_short_after_its_first_step_is_finished_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let name = ClusterName::parse("name", "c1").unwrap();
        let now = Timestamp::now();
        let rt = runtime();
        let request = NewCluster {
            name: name.clone(),
            role_arn: role("eks"),
            version: "1.31".into(),
            tags: Tags::default(),
        };
        rt.block_on(store.create_cluster(request, None, now))
            .unwrap();
        let token = ClientRequestToken::parse("create-1").unwrap();
        rt.block_on(store.create_association(name.clone(), new_association(), Some(token), now))
            .unwrap();
        // DeleteCluster's first step only, as if the server stopped after it.
        let marked = {
            let name = name.clone();
            rt.block_on(
                store.write(move |s, writing| writing.transact(|tx| s.mark_deleting_tx(tx, &name))),
            )
            .unwrap()
        };
        assert_eq!(marked.status, ClusterStatus::Deleting);
        store.close().unwrap();
        drop(store);

        // sled's threads let go of its lock a moment after the last handle.
        let started = std::time::Instant::now();
        let store = loop {
            match Store::open(dir.path(), StoreSettings::for_tests()) {
                Err(StoreError::Locked { .. }) if started.elapsed().as_secs() < 10 => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                opened => break opened.unwrap(),
            }
        };
        let trees = &store.inner.trees;
        for (tree, what) in [
            (&trees.clusters, "cluster"),
            (&trees.associations, "association"),
            (&trees.index, "index entry"),
            (&trees.tokens, "token"),
        ] {
            assert!(tree.is_empty(), "a {what} of the deleted cluster is left");
        }
        store.close().unwrap();
    }
}
