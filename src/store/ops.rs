//! The store's operations. Each write is one transaction that checks the
//! service's rules (via the domain types) and writes the record, its index
//! entry, its token and the cluster's generation together, or nothing.

use super::keys::{self, TokenScope};
use super::records::{
    decode, encode, AssociationRecord, ClusterRecord, IndexRecord, SavedResponse, TokenRecord,
};
use super::{abort, Inner, Store, StoreError, Tx, TxResult};
use crate::domain::{
    Association, AssociationId, AssociationUpdate, ClientRequestToken, Cluster, ClusterName,
    ClusterStatus, DomainError, NewAssociation, NewCluster, Timestamp,
};

/// One page of a listing and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub more: bool,
}

impl Tx<'_> {
    fn cluster(&self, name: &ClusterName) -> TxResult<ClusterRecord> {
        match self.clusters.get(keys::cluster(name))? {
            Some(bytes) => decode("cluster", &bytes).map_err(abort),
            None => Err(abort(DomainError::ClusterNotFound(name.clone()))),
        }
    }

    fn put_cluster(&self, record: &ClusterRecord) -> TxResult<()> {
        self.clusters
            .insert(keys::cluster(&record.name), encode(record))?;
        Ok(())
    }

    fn association(
        &self,
        cluster: &ClusterName,
        id: &AssociationId,
    ) -> TxResult<AssociationRecord> {
        match self.associations.get(keys::association(cluster, id))? {
            Some(bytes) => decode("association", &bytes).map_err(abort),
            None => Err(abort(DomainError::AssociationNotFound {
                cluster: cluster.clone(),
                id: id.clone(),
            })),
        }
    }

    fn put_association(&self, record: &AssociationRecord) -> TxResult<()> {
        self.associations.insert(
            keys::association(&record.cluster, &record.id),
            encode(record),
        )?;
        Ok(())
    }

    /// The answer saved for this token, if it is live. The same token with
    /// other parameters is refused.
    fn replay(
        &self,
        key: &[u8],
        fingerprint: &[u8],
        cluster: &ClusterName,
        token: &ClientRequestToken,
        now: Timestamp,
    ) -> TxResult<Option<SavedResponse>> {
        let Some(bytes) = self.tokens.get(key)? else {
            return Ok(None);
        };
        let saved: TokenRecord = decode("token", &bytes).map_err(abort)?;
        if saved.expires_at <= now {
            // Expired but not yet swept: the token is free again.
            return Ok(None);
        }
        if saved.fingerprint != fingerprint {
            return Err(abort(DomainError::TokenReused {
                cluster: cluster.clone(),
                token: token.to_string(),
            }));
        }
        Ok(Some(saved.response))
    }

    fn save_response(
        &self,
        key: Vec<u8>,
        fingerprint: Vec<u8>,
        response: SavedResponse,
        expires_at: Timestamp,
    ) -> TxResult<()> {
        self.expiry
            .insert(keys::token_expiry(expires_at, &key), &[])?;
        self.tokens.insert(
            key,
            encode(&TokenRecord {
                fingerprint,
                expires_at,
                response,
            }),
        )?;
        Ok(())
    }
}

fn reject(error: DomainError) -> sled::transaction::ConflictableTransactionError<StoreError> {
    abort(error)
}

impl Inner {
    fn token_expiry(&self, now: Timestamp) -> Timestamp {
        now.plus_seconds(self.settings.token_ttl_seconds)
    }

    fn create_cluster(
        &self,
        request: NewCluster,
        token: Option<ClientRequestToken>,
        now: Timestamp,
    ) -> Result<Cluster, StoreError> {
        let fingerprint =
            serde_json::to_vec(&request).expect("a cluster request always serializes");
        let token_key = token
            .as_ref()
            .map(|t| keys::token(&request.name, TokenScope::CreateCluster, t));
        self.transact(|tx| {
            if let (Some(key), Some(token)) = (&token_key, &token) {
                match tx.replay(key, &fingerprint, &request.name, token, now)? {
                    Some(SavedResponse::Cluster(saved)) => return Ok(saved.to_cluster()),
                    Some(_) => {
                        return Err(abort(StoreError::Corrupt(
                            "a cluster token saved another kind of answer".into(),
                        )))
                    }
                    None => {}
                }
            }
            if tx.clusters.get(keys::cluster(&request.name))?.is_some() {
                return Err(reject(DomainError::ClusterExists(request.name.clone())));
            }
            let cluster = Cluster::new(request.clone(), now, self.settings.activation_delay_ms);
            let record = ClusterRecord::new(cluster.clone());
            tx.put_cluster(&record)?;
            if let Some(key) = &token_key {
                tx.save_response(
                    key.clone(),
                    fingerprint.clone(),
                    SavedResponse::Cluster(record),
                    self.token_expiry(now),
                )?;
            }
            Ok(cluster)
        })
    }

    /// Creates the cluster with this status unless a cluster of that name exists.
    fn ensure_cluster(
        &self,
        request: NewCluster,
        status: ClusterStatus,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.transact(|tx| {
            if tx.clusters.get(keys::cluster(&request.name))?.is_some() {
                return Ok(false);
            }
            let mut cluster = Cluster::new(request.clone(), now, 0);
            cluster.set_status(status);
            tx.put_cluster(&ClusterRecord::new(cluster))?;
            Ok(true)
        })
    }

    fn cluster(&self, name: &ClusterName) -> Result<Cluster, StoreError> {
        match self.trees.clusters.get(keys::cluster(name))? {
            Some(bytes) => Ok(decode::<ClusterRecord>("cluster", &bytes)?.to_cluster()),
            None => Err(DomainError::ClusterNotFound(name.clone()).into()),
        }
    }

    fn list_clusters(
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
            items.push(decode::<ClusterRecord>("cluster", &bytes)?.name);
        }
        Ok(ListPage { items, more: false })
    }

    /// Deletes a cluster and every key under it: associations, index entries, tokens.
    ///
    /// The keys are collected by a scan before the transaction (a transaction
    /// cannot scan). Every transaction that adds a key under a cluster also
    /// bumps the cluster's `generation`, so if the generation is unchanged
    /// inside the transaction, the scan saw every key; otherwise scan again.
    fn delete_cluster(&self, name: &ClusterName) -> Result<Cluster, StoreError> {
        loop {
            let Some(bytes) = self.trees.clusters.get(keys::cluster(name))? else {
                return Err(DomainError::ClusterNotFound(name.clone()).into());
            };
            let seen_generation = decode::<ClusterRecord>("cluster", &bytes)?.generation;
            let prefix = keys::cluster_prefix(name);
            let collect = |tree: &sled::Tree| {
                tree.scan_prefix(&prefix)
                    .keys()
                    .collect::<Result<Vec<_>, _>>()
            };
            let associations = collect(&self.trees.associations)?;
            let index = collect(&self.trees.index)?;
            let tokens = collect(&self.trees.tokens)?;
            let deleted = self.transact(|tx| {
                let record = tx.cluster(name)?;
                if record.generation != seen_generation {
                    return Ok(None);
                }
                for key in &associations {
                    tx.associations.remove(key)?;
                }
                for key in &index {
                    tx.index.remove(key)?;
                }
                // Their expiry entries are left to the sweep, which skips
                // entries whose token is gone.
                for key in &tokens {
                    tx.tokens.remove(key)?;
                }
                tx.clusters.remove(keys::cluster(name))?;
                Ok(Some(record))
            })?;
            if let Some(record) = deleted {
                let mut cluster = record.to_cluster();
                cluster.set_status(ClusterStatus::Deleting);
                return Ok(cluster);
            }
            log::debug!(
                "cluster {name} changed while it was being deleted; collecting its keys again"
            );
        }
    }

    fn set_cluster_status(
        &self,
        name: &ClusterName,
        status: ClusterStatus,
    ) -> Result<Cluster, StoreError> {
        self.transact(|tx| {
            let mut record = tx.cluster(name)?;
            let mut cluster = record.to_cluster();
            cluster.set_status(status);
            record.status = cluster.status;
            record.activate_at = cluster.activate_at;
            tx.put_cluster(&record)?;
            Ok(cluster)
        })
    }

    fn create_association(
        &self,
        cluster: &ClusterName,
        request: NewAssociation,
        token: Option<ClientRequestToken>,
        now: Timestamp,
    ) -> Result<Association, StoreError> {
        let id = AssociationId::generate();
        let fingerprint = request.fingerprint();
        let token_key = token
            .as_ref()
            .map(|t| keys::token(cluster, TokenScope::CreateAssociation, t));
        let index_key =
            keys::association_index(cluster, &request.namespace, &request.service_account);
        self.transact(|tx| {
            let mut cluster_record = tx.cluster(cluster)?;
            if let (Some(key), Some(token)) = (&token_key, &token) {
                match tx.replay(key, &fingerprint, cluster, token, now)? {
                    Some(SavedResponse::Association(saved)) => return Ok(saved.into()),
                    Some(_) => {
                        return Err(abort(StoreError::Corrupt(
                            "an association token saved another kind of answer".into(),
                        )))
                    }
                    None => {}
                }
            }
            cluster_record
                .to_cluster()
                .check_writable(now, &self.settings.writable_states)
                .map_err(reject)?;
            if let Some(bytes) = tx.index.get(&index_key)? {
                let existing: IndexRecord = decode("index", &bytes).map_err(abort)?;
                return Err(reject(DomainError::AssociationExists {
                    cluster: cluster.clone(),
                    existing: existing.id,
                }));
            }
            if tx
                .associations
                .get(keys::association(cluster, &id))?
                .is_some()
            {
                // 88 random bits make this practically impossible; never overwrite.
                return Err(abort(StoreError::Internal(format!(
                    "generated association ID {id} already exists"
                ))));
            }
            let association = Association::new(cluster.clone(), id.clone(), request.clone(), now);
            let record = AssociationRecord::from(&association);
            tx.put_association(&record)?;
            tx.index
                .insert(index_key.clone(), encode(&IndexRecord { id: id.clone() }))?;
            if let Some(key) = &token_key {
                tx.save_response(
                    key.clone(),
                    fingerprint.clone(),
                    SavedResponse::Association(record),
                    self.token_expiry(now),
                )?;
            }
            cluster_record.generation += 1;
            tx.put_cluster(&cluster_record)?;
            Ok(association)
        })
    }

    fn association(
        &self,
        cluster: &ClusterName,
        id: &AssociationId,
    ) -> Result<Association, StoreError> {
        if !self.trees.clusters.contains_key(keys::cluster(cluster))? {
            return Err(DomainError::ClusterNotFound(cluster.clone()).into());
        }
        match self
            .trees
            .associations
            .get(keys::association(cluster, id))?
        {
            Some(bytes) => Ok(decode::<AssociationRecord>("association", &bytes)?.into()),
            None => Err(DomainError::AssociationNotFound {
                cluster: cluster.clone(),
                id: id.clone(),
            }
            .into()),
        }
    }

    fn update_association(
        &self,
        cluster: &ClusterName,
        id: &AssociationId,
        update: AssociationUpdate,
        token: Option<ClientRequestToken>,
        now: Timestamp,
    ) -> Result<Association, StoreError> {
        let fingerprint = update.fingerprint();
        let token_key = token
            .as_ref()
            .map(|t| keys::token(cluster, TokenScope::UpdateAssociation(id), t));
        self.transact(|tx| {
            let mut cluster_record = tx.cluster(cluster)?;
            let current: Association = tx.association(cluster, id)?.into();
            if let (Some(key), Some(token)) = (&token_key, &token) {
                match tx.replay(key, &fingerprint, cluster, token, now)? {
                    Some(SavedResponse::Association(saved)) => return Ok(saved.into()),
                    Some(_) => {
                        return Err(abort(StoreError::Corrupt(
                            "an association token saved another kind of answer".into(),
                        )))
                    }
                    None => {}
                }
            }
            current
                .check_claims(&update.claims, &self.settings.identity)
                .map_err(reject)?;
            cluster_record
                .to_cluster()
                .check_writable(now, &self.settings.writable_states)
                .map_err(reject)?;
            let result = match current.updated(&update, now) {
                Some(changed) => {
                    tx.put_association(&AssociationRecord::from(&changed))?;
                    changed
                }
                None => current,
            };
            if let Some(key) = &token_key {
                let saved = SavedResponse::Association(AssociationRecord::from(&result));
                tx.save_response(
                    key.clone(),
                    fingerprint.clone(),
                    saved,
                    self.token_expiry(now),
                )?;
                cluster_record.generation += 1;
                tx.put_cluster(&cluster_record)?;
            }
            Ok(result)
        })
    }

    /// Removes tokens that expired before `now`, at most `batch` of them.
    /// Returns how many expiry entries were processed.
    fn sweep_expired_tokens(&self, now: Timestamp, batch: usize) -> Result<usize, StoreError> {
        let end = keys::expiry_prefix(now);
        let expired = self
            .trees
            .expiry
            .range(..&end[..])
            .keys()
            .take(batch)
            .collect::<Result<Vec<_>, _>>()?;
        if expired.is_empty() {
            return Ok(0);
        }
        self.transact(|tx| {
            for expiry_key in &expired {
                tx.expiry.remove(&expiry_key[..])?;
                let Some((expires_at, token_key)) = keys::split_token_expiry(expiry_key) else {
                    continue;
                };
                // The token may have been removed with its cluster, or reused
                // after expiring (then it has a later expiry entry of its own).
                if let Some(bytes) = tx.tokens.get(token_key)? {
                    let token: TokenRecord = decode("token", &bytes).map_err(abort)?;
                    if token.expires_at == expires_at {
                        tx.tokens.remove(token_key)?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(expired.len())
    }

    fn token_count(&self) -> usize {
        self.trees.tokens.len()
    }
}

/// The async face of the store: every call runs off the executor, and every
/// write returns only after it is durable.
impl Store {
    pub async fn create_cluster(
        &self,
        request: NewCluster,
        token: Option<ClientRequestToken>,
        now: Timestamp,
    ) -> Result<Cluster, StoreError> {
        self.write(move |s| s.create_cluster(request, token, now))
            .await
    }

    /// Creates a cluster with a fixed status if none of that name exists (start-up presets).
    pub async fn ensure_cluster(
        &self,
        request: NewCluster,
        status: ClusterStatus,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |s| s.ensure_cluster(request, status, now))
            .await
    }

    pub async fn cluster(&self, name: ClusterName) -> Result<Cluster, StoreError> {
        self.read(move |s| s.cluster(&name)).await
    }

    pub async fn list_clusters(
        &self,
        after: Option<ClusterName>,
        limit: usize,
    ) -> Result<ListPage<ClusterName>, StoreError> {
        self.read(move |s| s.list_clusters(after.as_ref(), limit))
            .await
    }

    pub async fn delete_cluster(&self, name: ClusterName) -> Result<Cluster, StoreError> {
        self.write(move |s| s.delete_cluster(&name)).await
    }

    pub async fn set_cluster_status(
        &self,
        name: ClusterName,
        status: ClusterStatus,
    ) -> Result<Cluster, StoreError> {
        self.write(move |s| s.set_cluster_status(&name, status))
            .await
    }

    pub async fn create_association(
        &self,
        cluster: ClusterName,
        request: NewAssociation,
        token: Option<ClientRequestToken>,
        now: Timestamp,
    ) -> Result<Association, StoreError> {
        self.write(move |s| s.create_association(&cluster, request, token, now))
            .await
    }

    pub async fn association(
        &self,
        cluster: ClusterName,
        id: AssociationId,
    ) -> Result<Association, StoreError> {
        self.read(move |s| s.association(&cluster, &id)).await
    }

    pub async fn update_association(
        &self,
        cluster: ClusterName,
        id: AssociationId,
        update: AssociationUpdate,
        token: Option<ClientRequestToken>,
        now: Timestamp,
    ) -> Result<Association, StoreError> {
        self.write(move |s| s.update_association(&cluster, &id, update, token, now))
            .await
    }

    /// Removes every token that expired before `now`, in batches. Not waited
    /// on for durability: a sweep lost in a crash is simply done again.
    pub fn sweep_expired_tokens(&self, now: Timestamp) -> Result<usize, StoreError> {
        const BATCH: usize = 1_000;
        let mut total = 0;
        loop {
            let swept = self.inner.sweep_expired_tokens(now, BATCH)?;
            total += swept;
            if swept < BATCH {
                return Ok(total);
            }
        }
    }

    /// How many tokens are held (walks the tree: for tests and tools, not the hot path).
    pub fn token_count(&self) -> usize {
        self.inner.token_count()
    }
}
