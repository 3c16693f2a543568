//! The store's operations. Each write is one transaction body that checks
//! the service's rules (via the domain types) and writes the record, its
//! index entry, its token and the cluster's counter together, or nothing.
//! A body makes its checks before its first write: then a refused write
//! leaves the transaction it shares with other writes untouched (`writer`).

use std::ops::Bound;
use std::time::{Duration, Instant};

use super::keys::{self, TokenScope};
use super::records::{
    decode, encode, token_expires_at, AssociationRecord, ClusterRecord, IndexRecord, SavedResponse,
    TokenRecord,
};
use super::{abort, Inner, Store, StoreError, Tx, TxResult};
use crate::domain::{
    Association, AssociationId, AssociationUpdate, ClientRequestToken, Cluster, ClusterName,
    ClusterStatus, DomainError, Namespace, NewAssociation, NewCluster, ServiceAccountName,
    TaggableResource, Tags, Timestamp,
};

/// Every key of `tree` that starts with `prefix`. A scan: outside any
/// transaction.
fn keys_with_prefix(tree: &sled::Tree, prefix: &[u8]) -> Result<Vec<sled::IVec>, sled::Error> {
    tree.scan_prefix(prefix).keys().collect()
}

/// Where the token sweep stopped: the last token key it read, `None` to
/// start from the first (`Store::sweep_expired_tokens`).
#[derive(Debug, Default)]
pub struct SweepCursor(Option<sled::IVec>);

/// One page of a listing and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub more: bool,
}

/// What the store holds, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub clusters: u64,
    pub associations: u64,
    pub tokens: u64,
    pub flushes: u64,
    pub writes_flushed: u64,
    pub write_groups: u64,
}

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
            .is_none_or(|ns| *ns == record.namespace)
            && self
                .service_account
                .as_ref()
                .is_none_or(|sa| *sa == record.service_account)
    }
}

fn reject(error: DomainError) -> sled::transaction::ConflictableTransactionError<StoreError> {
    abort(error)
}

fn wrong_saved_answer() -> sled::transaction::ConflictableTransactionError<StoreError> {
    abort(StoreError::Corrupt(
        "a token saved the answer of another operation".into(),
    ))
}

/// Refuses association writes in a cluster whose state does not allow them.
fn ensure_writable(record: &ClusterRecord, inner: &Inner, now: Timestamp) -> TxResult<()> {
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
    fn cluster(&self, name: &ClusterName) -> TxResult<ClusterRecord> {
        match self.clusters.get(keys::cluster(name))? {
            Some(bytes) => decode(&bytes).map_err(abort),
            None => Err(reject(DomainError::ClusterNotFound(name.clone()))),
        }
    }

    /// The cluster, if association writes are allowed in its state.
    fn writable_cluster(
        &self,
        name: &ClusterName,
        inner: &Inner,
        now: Timestamp,
    ) -> TxResult<ClusterRecord> {
        let record = self.cluster(name)?;
        ensure_writable(&record, inner, now)?;
        Ok(record)
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
            Some(bytes) => decode(&bytes).map_err(abort),
            None => Err(reject(DomainError::AssociationNotFound {
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
        let saved: TokenRecord = decode(&bytes).map_err(abort)?;
        if saved.expires_at <= now {
            // Expired but not yet swept: the token is free again.
            return Ok(None);
        }
        if saved.fingerprint != fingerprint {
            return Err(reject(DomainError::TokenReused {
                cluster: cluster.clone(),
                token: token.to_string(),
            }));
        }
        Ok(Some(saved.response))
    }

    fn save_response(
        &self,
        key: &[u8],
        fingerprint: &[u8],
        response: SavedResponse,
        expires_at: Timestamp,
    ) -> TxResult<()> {
        let record = TokenRecord {
            fingerprint: fingerprint.to_vec(),
            expires_at,
            response,
        };
        self.tokens.insert(key, encode(&record))?;
        Ok(())
    }
}

/// A request's token, its key in the token tree, and the request's fingerprint.
struct Idempotency {
    token: ClientRequestToken,
    key: Vec<u8>,
    fingerprint: Vec<u8>,
}

impl Idempotency {
    fn new(
        token: Option<ClientRequestToken>,
        cluster: &ClusterName,
        scope: TokenScope<'_>,
        fingerprint: Vec<u8>,
    ) -> Option<Self> {
        token.map(|token| Idempotency {
            key: keys::token(cluster, scope, &token),
            token,
            fingerprint,
        })
    }

    fn replay(
        &self,
        tx: &Tx<'_>,
        cluster: &ClusterName,
        now: Timestamp,
    ) -> TxResult<Option<SavedResponse>> {
        tx.replay(&self.key, &self.fingerprint, cluster, &self.token, now)
    }

    fn save(&self, tx: &Tx<'_>, response: SavedResponse, expires_at: Timestamp) -> TxResult<()> {
        tx.save_response(&self.key, &self.fingerprint, response, expires_at)
    }
}

impl Inner {
    fn token_expiry(&self, now: Timestamp) -> Timestamp {
        now.plus_seconds(self.settings.token_ttl_seconds)
    }

    fn create_cluster(
        &self,
        tx: &Tx<'_>,
        request: &NewCluster,
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
        let record = ClusterRecord::new(cluster.clone());
        tx.put_cluster(&record)?;
        if let Some(idem) = idempotency {
            idem.save(tx, SavedResponse::Cluster(record), self.token_expiry(now))?;
        }
        Ok(cluster)
    }

    /// Creates the cluster with this status unless a cluster of that name exists.
    fn ensure_cluster(
        &self,
        tx: &Tx<'_>,
        request: &NewCluster,
        status: ClusterStatus,
        now: Timestamp,
    ) -> TxResult<bool> {
        if tx.clusters.get(keys::cluster(&request.name))?.is_some() {
            return Ok(false);
        }
        let mut cluster = Cluster::new(request.clone(), now, 0);
        cluster.set_status(status);
        tx.put_cluster(&ClusterRecord::new(cluster))?;
        Ok(true)
    }

    fn cluster_record(&self, name: &ClusterName) -> Result<ClusterRecord, StoreError> {
        match self.trees.clusters.get(keys::cluster(name))? {
            Some(bytes) => decode(&bytes),
            None => Err(DomainError::ClusterNotFound(name.clone()).into()),
        }
    }

    fn cluster(&self, name: &ClusterName) -> Result<Cluster, StoreError> {
        self.cluster_record(name).map(|record| record.to_cluster())
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
            items.push(decode::<ClusterRecord>(&bytes)?.name);
        }
        Ok(ListPage { items, more: false })
    }

    /// Deletes a cluster and every key under it: associations, index entries, tokens.
    ///
    /// A transaction cannot scan, so this takes two: the first marks the
    /// cluster as deleting (no transaction adds a key under it after that),
    /// then the keys are collected and the second removes them with the
    /// cluster. A crash between the two leaves a cluster in DELETING, which
    /// `finish_deletions` completes at the next start.
    fn delete_cluster(&self, name: &ClusterName) -> Result<Cluster, StoreError> {
        let marked = self.transact(|tx| {
            let mut record = tx.cluster(name)?;
            let mut cluster = record.to_cluster();
            cluster.set_status(ClusterStatus::Deleting);
            record.set_status_from(&cluster);
            record.deleting = true;
            tx.put_cluster(&record)?;
            Ok(cluster)
        })?;
        self.remove_deleted_cluster(name)?;
        Ok(marked)
    }

    fn remove_deleted_cluster(&self, name: &ClusterName) -> Result<(), StoreError> {
        let prefix = keys::cluster_prefix(name);
        let associations = keys_with_prefix(&self.trees.associations, &prefix)?;
        let index = keys_with_prefix(&self.trees.index, &prefix)?;
        let tokens = keys_with_prefix(&self.trees.tokens, &prefix)?;
        self.transact(|tx| {
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
            Ok(())
        })
    }

    /// Completes deletions a crash interrupted. Runs at open, before any request.
    pub(super) fn finish_deletions(&self) -> Result<(), StoreError> {
        for entry in self.trees.clusters.iter() {
            let (_, bytes) = entry?;
            let record: ClusterRecord = decode(&bytes)?;
            if record.deleting {
                log::info!(
                    "finishing the deletion of cluster {} that a restart interrupted",
                    record.name
                );
                self.remove_deleted_cluster(&record.name)?;
            }
        }
        Ok(())
    }

    fn set_cluster_status(
        &self,
        tx: &Tx<'_>,
        name: &ClusterName,
        status: ClusterStatus,
    ) -> TxResult<Cluster> {
        let mut record = tx.cluster(name)?;
        let mut cluster = record.to_cluster();
        cluster.set_status(status);
        record.set_status_from(&cluster);
        tx.put_cluster(&record)?;
        Ok(cluster)
    }

    fn create_association(
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
            tx.cluster(cluster)?;
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
                existing: existing.id,
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
            // 88 random bits make this practically impossible; never overwrite.
            return Err(abort(StoreError::Internal(format!(
                "generated association ID {id} already exists"
            ))));
        }
        let association =
            Association::new(cluster.clone(), id.clone(), request.clone(), now).map_err(reject)?;
        let record = AssociationRecord::new(&association, idempotency.map(|i| i.key.clone()));
        tx.put_association(&record)?;
        tx.index
            .insert(index_key, encode(&IndexRecord { id: id.clone() }))?;
        if let Some(idem) = idempotency {
            idem.save(
                tx,
                SavedResponse::Association(record),
                self.token_expiry(now),
            )?;
        }
        cluster_record.association_count += 1;
        tx.put_cluster(&cluster_record)?;
        Ok(association)
    }

    fn association(
        &self,
        cluster: &ClusterName,
        id: &AssociationId,
    ) -> Result<Association, StoreError> {
        // An association is removed in the transaction that removes its cluster, so one that
        // exists has a cluster: the cluster is read only to say which of the two is missing.
        match self
            .trees
            .associations
            .get(keys::association(cluster, id))?
        {
            Some(bytes) => Ok(decode::<AssociationRecord>(&bytes)?.into()),
            None => {
                self.cluster_record(cluster)?;
                Err(DomainError::AssociationNotFound {
                    cluster: cluster.clone(),
                    id: id.clone(),
                }
                .into())
            }
        }
    }

    fn list_associations(
        &self,
        cluster: &ClusterName,
        filter: &AssociationFilter,
        after: Option<&AssociationId>,
        limit: usize,
    ) -> Result<ListPage<Association>, StoreError> {
        self.cluster_record(cluster)?;
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

    fn update_association(
        &self,
        tx: &Tx<'_>,
        cluster: &ClusterName,
        id: &AssociationId,
        update: &AssociationUpdate,
        idempotency: Option<&Idempotency>,
        now: Timestamp,
    ) -> TxResult<Association> {
        let cluster_record = tx.cluster(cluster)?;
        let record = tx.association(cluster, id)?;
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
        ensure_writable(&cluster_record, self, now)?;
        let result = match current.updated(update, now).map_err(reject)? {
            Some(changed) => {
                tx.put_association(&record.with(&changed))?;
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
    fn update_token_keys(
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
    fn delete_association(
        &self,
        tx: &Tx<'_>,
        cluster: &ClusterName,
        id: &AssociationId,
        update_tokens: &[sled::IVec],
        now: Timestamp,
    ) -> TxResult<Association> {
        let mut cluster_record = tx.writable_cluster(cluster, self, now)?;
        let record = tx.association(cluster, id)?;
        // The create token, unless it expired and was since reused by
        // another association: then it is that one's now. Read before the
        // first write, like every check (`writer`).
        let mut create_token = None;
        if let Some(key) = &record.create_token {
            if let Some(bytes) = tx.tokens.get(&key[..])? {
                let token: TokenRecord = decode(&bytes).map_err(abort)?;
                if matches!(&token.response, SavedResponse::Association(a) if a.id == *id) {
                    create_token = Some(key);
                }
            }
        }
        tx.associations.remove(keys::association(cluster, id))?;
        tx.index.remove(keys::association_index(
            cluster,
            &record.namespace,
            &record.service_account,
        ))?;
        if let Some(key) = create_token {
            tx.tokens.remove(&key[..])?;
        }
        for key in update_tokens {
            tx.tokens.remove(&key[..])?;
        }
        cluster_record.association_count = cluster_record.association_count.saturating_sub(1);
        tx.put_cluster(&cluster_record)?;
        Ok(Association::from(record))
    }

    fn tags(&self, resource: &TaggableResource, arn: &str) -> Result<Tags, StoreError> {
        let not_found =
            || -> StoreError { DomainError::TaggedResourceNotFound(arn.to_owned()).into() };
        match resource {
            TaggableResource::Cluster(name) => {
                match self.trees.clusters.get(keys::cluster(name))? {
                    Some(bytes) => Ok(decode::<ClusterRecord>(&bytes)?.tags),
                    None => Err(not_found()),
                }
            }
            TaggableResource::Association(cluster, id) => match self
                .trees
                .associations
                .get(keys::association(cluster, id))?
            {
                Some(bytes) => Ok(decode::<AssociationRecord>(&bytes)?.tags),
                None => Err(not_found()),
            },
        }
    }

    /// Replaces a resource's tags with `change(old tags)`.
    fn retag(
        &self,
        tx: &Tx<'_>,
        resource: &TaggableResource,
        arn: &str,
        change: impl Fn(&Tags) -> Result<Tags, DomainError>,
    ) -> TxResult<()> {
        let not_found = || reject(DomainError::TaggedResourceNotFound(arn.to_owned()));
        match resource {
            TaggableResource::Cluster(name) => {
                let Some(bytes) = tx.clusters.get(keys::cluster(name))? else {
                    return Err(not_found());
                };
                let mut record: ClusterRecord = decode(&bytes).map_err(abort)?;
                record.tags = change(&record.tags).map_err(reject)?;
                tx.put_cluster(&record)?;
            }
            TaggableResource::Association(cluster, id) => {
                let Some(bytes) = tx.associations.get(keys::association(cluster, id))? else {
                    return Err(not_found());
                };
                let mut record: AssociationRecord = decode(&bytes).map_err(abort)?;
                record.tags = change(&record.tags).map_err(reject)?;
                tx.put_association(&record)?;
            }
        }
        Ok(())
    }

    /// Reads up to `batch` tokens after `after` in key order (from the first
    /// when `None`). Returns the keys of those expired by `now` and the last
    /// key read, or `None` when the tree ended before `batch` tokens.
    ///
    /// Each token's record holds its expiry, so the sweep reads every token;
    /// an index by expiry time would cost every write with a token a third
    /// key (`migrations/0003-tokens-swept-by-scan.md`).
    fn expired_tokens(
        &self,
        now: Timestamp,
        after: Option<&[u8]>,
        batch: usize,
    ) -> Result<(Vec<sled::IVec>, Option<sled::IVec>), StoreError> {
        // The keys after `after`, or all of them.
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let tokens = self
            .trees
            .tokens
            .range::<&[u8], _>((from, Bound::Unbounded));
        let (mut last, mut read) = (None, 0);
        let mut expired = Vec::new();
        for entry in tokens.take(batch) {
            read += 1;
            let (key, bytes) = entry?;
            match token_expires_at(&bytes) {
                Ok(expires_at) if expires_at <= now => expired.push(key.clone()),
                Ok(_) => {}
                // `check` reports it; the sweep goes on past it.
                Err(e) => log::warn!("the token sweep skips token {}: {e}", keys::shown(&key)),
            }
            last = Some(key);
        }
        Ok((expired, if read < batch { None } else { last }))
    }

    /// Removes those of `keys` whose token is expired by `now`, checking each
    /// again: one may have been reused since it was read. Returns how many
    /// it removed.
    fn remove_expired_tokens(
        &self,
        now: Timestamp,
        keys: &[sled::IVec],
    ) -> Result<usize, StoreError> {
        self.transact(|tx| {
            let mut removed = 0;
            for key in keys {
                let Some(bytes) = tx.tokens.get(key)? else {
                    continue;
                };
                if matches!(token_expires_at(&bytes), Ok(expires_at) if expires_at <= now) {
                    tx.tokens.remove(key)?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
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
        let fingerprint =
            serde_json::to_vec(&request).expect("a cluster request always serializes");
        let idempotency =
            Idempotency::new(token, &request.name, TokenScope::CreateCluster, fingerprint);
        self.write_grouped(move |s, tx| s.create_cluster(tx, &request, idempotency.as_ref(), now))
            .await
    }

    /// Creates a cluster with a fixed status if none of that name exists (start-up presets).
    pub async fn ensure_cluster(
        &self,
        request: NewCluster,
        status: ClusterStatus,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write_grouped(move |s, tx| s.ensure_cluster(tx, &request, status, now))
            .await
    }

    pub async fn cluster(&self, name: ClusterName) -> Result<Cluster, StoreError> {
        self.lookup(move |s| s.cluster(&name)).await
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
        self.write_grouped(move |s, tx| s.set_cluster_status(tx, &name, status))
            .await
    }

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
            request.fingerprint(),
        );
        self.write_grouped(move |s, tx| {
            s.create_association(tx, &cluster, &id, &request, idempotency.as_ref(), now)
        })
        .await
    }

    pub async fn association(
        &self,
        cluster: ClusterName,
        id: AssociationId,
    ) -> Result<Association, StoreError> {
        self.lookup(move |s| s.association(&cluster, &id)).await
    }

    pub async fn list_associations(
        &self,
        cluster: ClusterName,
        filter: AssociationFilter,
        after: Option<AssociationId>,
        limit: usize,
    ) -> Result<ListPage<Association>, StoreError> {
        self.read(move |s| s.list_associations(&cluster, &filter, after.as_ref(), limit))
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
            update.fingerprint(),
        );
        self.write_grouped(move |s, tx| {
            s.update_association(tx, &cluster, &id, &update, idempotency.as_ref(), now)
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
                move |s, tx| s.delete_association(tx, &cluster, &id, &tokens, now)
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
        self.read(move |s| s.update_token_keys(&cluster, &id)).await
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

    /// A resource's tags. `arn` is only for the not-found message.
    pub async fn tags(&self, resource: TaggableResource, arn: String) -> Result<Tags, StoreError> {
        self.lookup(move |s| s.tags(&resource, &arn)).await
    }

    /// TagResource: merges `tags` into the resource's tags.
    pub async fn tag_resource(
        &self,
        resource: TaggableResource,
        arn: String,
        tags: Tags,
    ) -> Result<(), StoreError> {
        self.write_grouped(move |s, tx| s.retag(tx, &resource, &arn, |old| old.merged(&tags)))
            .await
    }

    /// UntagResource: removes `keys` from the resource's tags.
    pub async fn untag_resource(
        &self,
        resource: TaggableResource,
        arn: String,
        keys: Vec<String>,
    ) -> Result<(), StoreError> {
        self.write_grouped(move |s, tx| s.retag(tx, &resource, &arn, |old| Ok(old.without(&keys))))
            .await
    }

    /// Removes the tokens expired by `now`, going on from `cursor` through
    /// the token tree a batch at a time, for about `budget` at most; the
    /// next call goes on from where this one stopped, and after the last
    /// token starts over. Returns how many it removed. Not waited on for
    /// durability: a sweep lost in a crash is simply done again.
    ///
    /// The budget bounds the work of one call however many tokens are held
    /// (a day of writes at a steady rate can be millions); a token past its
    /// expiry is free again whether or not it was removed yet (`Tx::replay`).
    pub fn sweep_expired_tokens(
        &self,
        now: Timestamp,
        cursor: &mut SweepCursor,
        budget: Duration,
    ) -> Result<usize, StoreError> {
        self.sweep_in_batches(now, cursor, budget, 1_000)
    }

    fn sweep_in_batches(
        &self,
        now: Timestamp,
        cursor: &mut SweepCursor,
        budget: Duration,
        batch: usize,
    ) -> Result<usize, StoreError> {
        let started = Instant::now();
        let mut removed = 0;
        loop {
            let (expired, last) = self.inner.expired_tokens(now, cursor.0.as_deref(), batch)?;
            if !expired.is_empty() {
                removed += self.inner.remove_expired_tokens(now, &expired)?;
            }
            cursor.0 = last;
            if cursor.0.is_none() || started.elapsed() >= budget {
                return Ok(removed);
            }
        }
    }

    /// What the store holds. Sums the clusters' association counters (one
    /// record per cluster) and walks the token tree, so it costs more the
    /// more tokens are held: for a scrape now and then, not the hot path.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.read(|s| {
            let mut stats = StoreStats::default();
            for entry in s.trees.clusters.iter() {
                let (_, bytes) = entry?;
                stats.clusters += 1;
                stats.associations += decode::<ClusterRecord>(&bytes)?.association_count;
            }
            stats.tokens = s.trees.tokens.len() as u64;
            stats.flushes = s
                .commit
                .stats
                .flushes
                .load(std::sync::atomic::Ordering::Relaxed);
            stats.writes_flushed = s
                .commit
                .stats
                .writes_flushed
                .load(std::sync::atomic::Ordering::Relaxed);
            stats.write_groups = s
                .commit
                .stats
                .write_groups
                .load(std::sync::atomic::Ordering::Relaxed);
            Ok(stats)
        })
        .await
    }

    /// How many tokens are held (walks the tree: for tests and tools, not the hot path).
    pub fn token_count(&self) -> usize {
        self.inner.trees.tokens.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::association_fixtures::{new_association, role};
    use crate::store::tests::{open, runtime};

    /// A store holding ten tokens of cluster `c1`: every third one (0, 3, 6,
    /// 9) still live at `NOW`, the others expired (one of them at `NOW`
    /// exactly). Returns the store and the live tokens' keys.
    fn store_with_tokens(dir: &std::path::Path) -> (Store, Vec<Vec<u8>>) {
        let store = open(dir);
        let mut live = Vec::new();
        for i in 0..10 {
            let key = token_key(i);
            let expires_at = if i % 3 == 0 {
                live.push(key.clone());
                NOW.plus_seconds(1)
            } else {
                Timestamp::from_millis(NOW.as_millis() - (i % 2) as i64)
            };
            store
                .inner
                .trees
                .tokens
                .insert(key, token(expires_at))
                .unwrap();
        }
        (store, live)
    }

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn token_key(i: usize) -> Vec<u8> {
        let cluster = ClusterName::parse("name", "c1").unwrap();
        let token = ClientRequestToken::parse(&format!("token-{i}")).unwrap();
        keys::token(&cluster, TokenScope::CreateCluster, &token)
    }

    fn token(expires_at: Timestamp) -> Vec<u8> {
        let cluster = ClusterName::parse("name", "c1").unwrap();
        let request = NewCluster {
            name: cluster,
            role_arn: role("r"),
            version: "1.31".into(),
            tags: Tags::default(),
        };
        encode(&TokenRecord {
            fingerprint: b"{}".to_vec(),
            expires_at,
            response: SavedResponse::Cluster(ClusterRecord::new(Cluster::new(request, NOW, 0))),
        })
    }

    fn keys_left(store: &Store) -> Vec<sled::IVec> {
        store
            .inner
            .trees
            .tokens
            .iter()
            .keys()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_sweep_goes_on_from_its_cursor_and_removes_only_the_expired() {
        let dir = tempfile::tempdir().unwrap();
        let (store, live) = store_with_tokens(dir.path());

        // No time budget: each call reads one batch of 3 keys, and the next
        // goes on from there; the fourth reaches the end and starts over.
        let mut cursor = SweepCursor::default();
        let removed: Vec<usize> = (0..4)
            .map(|_| {
                store
                    .sweep_in_batches(NOW, &mut cursor, Duration::ZERO, 3)
                    .unwrap()
            })
            .collect();
        assert_eq!(removed, [2, 2, 2, 0]);
        assert!(cursor.0.is_none(), "the pass ended, the next starts over");
        let live: Vec<sled::IVec> = live.iter().map(|k| k[..].into()).collect();
        assert_eq!(keys_left(&store), live);

        // With time to spare, one call is a whole pass.
        let mut cursor = SweepCursor::default();
        let later = NOW.plus_seconds(2);
        assert_eq!(
            store
                .sweep_in_batches(later, &mut cursor, Duration::from_secs(60), 3)
                .unwrap(),
            4
        );
        assert!(keys_left(&store).is_empty());
        store.close().unwrap();
    }

    #[test]
    fn a_token_reused_after_the_sweep_read_it_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_tokens(dir.path());
        let (expired, last) = store.inner.expired_tokens(NOW, None, 100).unwrap();
        assert_eq!(expired.len(), 6);
        assert!(last.is_none(), "ten tokens, a batch of 100: the tree ended");

        // A client sends the first expired token again before the removal.
        let reused = expired[0].clone();
        store
            .inner
            .trees
            .tokens
            .insert(&reused, token(NOW.plus_seconds(3_600)))
            .unwrap();
        assert_eq!(store.inner.remove_expired_tokens(NOW, &expired).unwrap(), 5);
        assert!(store.inner.trees.tokens.contains_key(&reused).unwrap());
        store.close().unwrap();
    }

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
                .run(store.inner.commit.queue_write(), move || {
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
