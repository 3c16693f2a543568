//! Pod identity associations: Create, Describe, List, Update and Delete.

use super::idempotency::{wrong_saved_answer, Idempotency};
use super::keys::{self, TokenScope};
use super::records::{
    decode, encode, fingerprint, AssociationRecord, IndexRecord, SavedResponse, TokenRecord,
};
use super::tx::{abort, found, keys_with_prefix, reject, Tx, TxResult};
use super::{Inner, ListPage, Store, StoreError};
use crate::domain::{
    Association, AssociationId, AssociationUpdate, ClientRequestToken, ClusterName, DomainError,
    Namespace, NewAssociation, ServiceAccountName, Timestamp,
};

/// ListPodIdentityAssociations' filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssociationFilter {
    pub namespace: Option<Namespace>,
    pub service_account: Option<ServiceAccountName>,
}

impl AssociationFilter {
    fn matches(&self, record: &AssociationRecord) -> bool {
        self.namespace
            .as_ref()
            .is_none_or(|ns| ns.as_str() == record.namespace)
            && self
                .service_account
                .as_ref()
                .is_none_or(|sa| sa.as_str() == record.service_account)
    }
}

/// The async face of the store for associations: every call runs off the
/// executor, and every write returns only after it is durable.
impl Store {
    pub async fn create_association(
        &self,
        cluster: ClusterName,
        request: NewAssociation,
        token: Option<ClientRequestToken>,
        now: Timestamp,
    ) -> Result<Association, StoreError> {
        let id = AssociationId::generate();
        let idempotency = Idempotency::new(
            token,
            &cluster,
            TokenScope::CreateAssociation,
            fingerprint::create_association(&request),
        );
        self.write_grouped(move |s, tx| {
            s.create_association_tx(tx, &cluster, &id, &request, idempotency.as_ref(), now)
        })
        .await
    }

    pub async fn association(
        &self,
        cluster: ClusterName,
        id: AssociationId,
    ) -> Result<Association, StoreError> {
        self.lookup(move |s| s.read_association(&cluster, &id))
            .await
    }

    pub async fn list_associations(
        &self,
        cluster: ClusterName,
        filter: AssociationFilter,
        after: Option<AssociationId>,
        limit: usize,
    ) -> Result<ListPage<Association>, StoreError> {
        self.read(move |s| s.read_association_page(&cluster, &filter, after.as_ref(), limit))
            .await
    }

    pub async fn update_association(
        &self,
        cluster: ClusterName,
        id: AssociationId,
        update: AssociationUpdate,
        token: Option<ClientRequestToken>,
        now: Timestamp,
    ) -> Result<Association, StoreError> {
        let idempotency = Idempotency::new(
            token,
            &cluster,
            TokenScope::UpdateAssociation(&id),
            fingerprint::update_association(&update),
        );
        self.write_grouped(move |s, tx| {
            s.update_association_tx(tx, &cluster, &id, &update, idempotency.as_ref(), now)
        })
        .await
    }

    /// DeletePodIdentityAssociation: one write shared with others like any
    /// other (`write_grouped`), although it removes the association's Update
    /// tokens, which only a scan finds. The scan runs before the write (on
    /// the blocking pool: an association updated often has many tokens).
    ///
    /// An Update of the same association that commits between that scan and
    /// the delete leaves its token behind. A task of its own scans again once
    /// the delete is durable and removes what it finds; the delete's answer
    /// does not wait for it, nor fail with it. No token can be added once the
    /// association is gone, and one left behind (that task failed, or the
    /// server stopped first) is never read: Update answers 404 first, and
    /// the sweep removes it when it expires.
    pub async fn delete_association(
        &self,
        cluster: ClusterName,
        id: AssociationId,
        now: Timestamp,
    ) -> Result<Association, StoreError> {
        let tokens = self.update_token_keys(cluster.clone(), id.clone()).await?;
        let deleted = self
            .write_grouped({
                let (cluster, id) = (cluster.clone(), id.clone());
                move |s, tx| s.delete_association_tx(tx, &cluster, &id, &tokens, now)
            })
            .await?;
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(e) = store.remove_late_update_tokens(cluster, id).await {
                log::warn!("removing the tokens of a deleted association failed: {e}");
            }
        });
        Ok(deleted)
    }

    /// The keys of one association's Update tokens, scanned on the blocking
    /// pool (an association updated often has many).
    async fn update_token_keys(
        &self,
        cluster: ClusterName,
        id: AssociationId,
    ) -> Result<Vec<sled::IVec>, StoreError> {
        self.read(move |s| s.read_update_token_keys(&cluster, &id))
            .await
    }

    /// Removes the Update tokens still saved for a deleted association.
    async fn remove_late_update_tokens(
        &self,
        cluster: ClusterName,
        id: AssociationId,
    ) -> Result<(), StoreError> {
        let keys = self.update_token_keys(cluster, id).await?;
        if keys.is_empty() {
            return Ok(());
        }
        self.write_grouped(move |_, tx| {
            for key in &keys {
                tx.tokens.remove(&key[..])?;
            }
            Ok(())
        })
        .await
    }
}

fn not_found(cluster: &ClusterName, id: &AssociationId) -> DomainError {
    DomainError::AssociationNotFound {
        cluster: cluster.clone(),
        id: id.clone(),
    }
}

impl Tx<'_> {
    fn association_record(
        &self,
        cluster: &ClusterName,
        id: &AssociationId,
    ) -> TxResult<AssociationRecord> {
        self.associations
            .record(keys::association(cluster, id), || not_found(cluster, id))
    }

    pub(super) fn put_association(
        &self,
        cluster: &ClusterName,
        id: &AssociationId,
        record: &AssociationRecord,
    ) -> TxResult<()> {
        self.associations
            .insert(keys::association(cluster, id), encode(record))?;
        Ok(())
    }
}

impl Inner {
    fn create_association_tx(
        &self,
        tx: &Tx<'_>,
        cluster: &ClusterName,
        id: &AssociationId,
        request: &NewAssociation,
        idempotency: Option<&Idempotency>,
        now: Timestamp,
    ) -> TxResult<Association> {
        let index_key =
            keys::association_index(cluster, &request.namespace, &request.service_account);
        if let Some(idem) = idempotency {
            tx.cluster_record(cluster)?;
            match idem.replay(tx, cluster, now)? {
                Some(SavedResponse::Association(saved)) => return Ok(saved.into()),
                Some(_) => return Err(wrong_saved_answer()),
                None => {}
            }
        }
        let mut cluster_record = tx.writable_cluster(cluster, self, now)?;
        if let Some(bytes) = tx.index.get(&index_key)? {
            let existing: IndexRecord = decode(&bytes).map_err(abort)?;
            return Err(reject(DomainError::AssociationExists {
                cluster: cluster.clone(),
                existing: existing.id(),
            }));
        }
        let limit = self.settings.associations_per_cluster;
        if cluster_record.association_count >= limit {
            return Err(reject(DomainError::AssociationLimitExceeded {
                cluster: cluster.clone(),
                limit,
            }));
        }
        if tx
            .associations
            .get(keys::association(cluster, id))?
            .is_some()
        {
            // The ID's random bits make this practically impossible; never overwrite.
            return Err(abort(StoreError::Internal(format!(
                "generated association ID {id} already exists"
            ))));
        }
        let association =
            Association::new(cluster.clone(), id.clone(), request.clone(), now).map_err(reject)?;
        let record = AssociationRecord::new(&association, idempotency.map(|i| i.key.clone()));
        tx.put_association(cluster, id, &record)?;
        tx.index.insert(index_key, encode(&IndexRecord::new(id)))?;
        if let Some(idem) = idempotency {
            idem.save(
                tx,
                SavedResponse::Association(record),
                self.token_expiry(now),
            )?;
        }
        cluster_record.association_count += 1;
        tx.put_cluster(cluster, &cluster_record)?;
        Ok(association)
    }

    fn read_association(
        &self,
        cluster: &ClusterName,
        id: &AssociationId,
    ) -> Result<Association, StoreError> {
        let bytes = self
            .trees
            .associations
            .get(keys::association(cluster, id))?;
        if bytes.is_none() {
            // An association is removed in the transaction that removes its
            // cluster, so one that exists has a cluster: the cluster is read
            // only to say which of the two is missing.
            self.read_cluster(cluster)?;
        }
        found::<AssociationRecord>(bytes, || not_found(cluster, id)).map(Association::from)
    }

    fn read_association_page(
        &self,
        cluster: &ClusterName,
        filter: &AssociationFilter,
        after: Option<&AssociationId>,
        limit: usize,
    ) -> Result<ListPage<Association>, StoreError> {
        self.read_cluster(cluster)?;
        let start = match after {
            // The smallest key after the last one returned.
            Some(id) => [keys::association(cluster, id), vec![0]].concat(),
            None => keys::cluster_prefix(cluster),
        };
        let prefix = keys::cluster_prefix(cluster);
        let mut items = Vec::with_capacity(limit.min(100));
        for entry in self.trees.associations.range(start..) {
            let (key, bytes) = entry?;
            if !key.starts_with(&prefix) {
                break;
            }
            let record: AssociationRecord = decode(&bytes)?;
            if !filter.matches(&record) {
                continue;
            }
            if items.len() == limit {
                return Ok(ListPage { items, more: true });
            }
            items.push(record.into());
        }
        Ok(ListPage { items, more: false })
    }

    fn update_association_tx(
        &self,
        tx: &Tx<'_>,
        cluster: &ClusterName,
        id: &AssociationId,
        update: &AssociationUpdate,
        idempotency: Option<&Idempotency>,
        now: Timestamp,
    ) -> TxResult<Association> {
        let cluster_record = tx.cluster_record(cluster)?;
        let record = tx.association_record(cluster, id)?;
        if let Some(idem) = idempotency {
            match idem.replay(tx, cluster, now)? {
                Some(SavedResponse::Association(saved)) => return Ok(saved.into()),
                Some(_) => return Err(wrong_saved_answer()),
                None => {}
            }
        }
        let current: Association = record.clone().into();
        current
            .check_claims(&update.claims, &self.settings.identity)
            .map_err(reject)?;
        super::clusters::ensure_writable(&cluster_record, self, now)?;
        let result = match current.updated(update, now).map_err(reject)? {
            Some(changed) => {
                tx.put_association(cluster, id, &record.with(&changed))?;
                changed
            }
            None => current,
        };
        if let Some(idem) = idempotency {
            let saved = SavedResponse::Association(AssociationRecord::new(&result, None));
            idem.save(tx, saved, self.token_expiry(now))?;
        }
        Ok(result)
    }

    /// The keys of the Update tokens saved for one association. A scan, so
    /// outside any transaction (`Store::delete_association`).
    fn read_update_token_keys(
        &self,
        cluster: &ClusterName,
        id: &AssociationId,
    ) -> Result<Vec<sled::IVec>, StoreError> {
        let prefix = keys::association_update_tokens(cluster, id);
        Ok(keys_with_prefix(&self.trees.tokens, &prefix)?)
    }

    /// Deletes an association with its index entry, its tags (in the record),
    /// its create token and `update_tokens`, the keys of its Update tokens
    /// that a scan found before the transaction (`Store::delete_association`
    /// removes any added since).
    fn delete_association_tx(
        &self,
        tx: &Tx<'_>,
        cluster: &ClusterName,
        id: &AssociationId,
        update_tokens: &[sled::IVec],
        now: Timestamp,
    ) -> TxResult<Association> {
        let mut cluster_record = tx.writable_cluster(cluster, self, now)?;
        let record = tx.association_record(cluster, id)?;
        // The create token, unless it expired and was since reused by
        // another association: then it is that one's now. Read before the
        // first write, like every check (`writer`).
        let mut create_token = None;
        if let Some(key) = &record.create_token {
            if let Some(bytes) = tx.tokens.get(&key[..])? {
                let token: TokenRecord = decode(&bytes).map_err(abort)?;
                if matches!(&token.response, SavedResponse::Association(a) if a.id == id.as_str()) {
                    create_token = Some(key.clone());
                }
            }
        }
        let association = Association::from(record);
        tx.associations.remove(keys::association(cluster, id))?;
        tx.index.remove(keys::association_index(
            cluster,
            &association.namespace,
            &association.service_account,
        ))?;
        if let Some(key) = create_token {
            tx.tokens.remove(key)?;
        }
        for key in update_tokens {
            tx.tokens.remove(&key[..])?;
        }
        cluster_record.association_count = cluster_record.association_count.saturating_sub(1);
        tx.put_cluster(cluster, &cluster_record)?;
        Ok(association)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::domain::association_fixtures::{new_association, role};
    use crate::domain::{NewCluster, Tags};
    use crate::store::tests::{open, runtime};

    #[test]
    fn a_token_saved_between_the_deletes_scan_and_its_write_is_removed_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let now = Timestamp::now();
        let cluster = ClusterName::parse("name", "c1").unwrap();
        runtime().block_on(async {
            let new_cluster = NewCluster {
                name: cluster.clone(),
                role_arn: role("eks"),
                version: "1.31".into(),
                tags: Tags::default(),
            };
            store.create_cluster(new_cluster, None, now).await.unwrap();
            let created = store
                .create_association(cluster.clone(), new_association(), None, now)
                .await
                .unwrap();

            // The writer thread is held, so that an Update queues first and
            // the Delete's scan, on the blocking pool, finds no token yet.
            let (release, gate) = std::sync::mpsc::channel::<()>();
            let held = store
                .inner
                .writer
                .run(store.inner.commit.queue_write(), move |_| {
                    gate.recv().ok();
                    Ok(())
                });
            let update = store.update_association(
                cluster.clone(),
                created.id.clone(),
                AssociationUpdate {
                    role_arn: Some(role("r2")),
                    ..AssociationUpdate::default()
                },
                Some(ClientRequestToken::parse("update-1").unwrap()),
                now,
            );
            let delete = store.delete_association(cluster.clone(), created.id.clone(), now);
            let releaser = async {
                // The held job, the Update and the Delete's write all queued.
                while store.inner.commit.queued_writes() < 3 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                release.send(()).unwrap();
            };
            let (held, updated, deleted, ()) = tokio::join!(held, update, delete, releaser);
            held.unwrap();
            assert_eq!(
                updated.unwrap().role_arn,
                role("r2"),
                "the Update ran first"
            );
            assert_eq!(deleted.unwrap().id, created.id);

            // The Delete's own write missed the Update's token; the task it
            // left behind removes it.
            let started = Instant::now();
            while !store.inner.trees.tokens.is_empty() {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the Update's token outlived its association"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        store.close().unwrap();
    }
}
