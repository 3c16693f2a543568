//! Tags of clusters and associations: ListTagsForResource, TagResource and
//! UntagResource. The tags live in the resource's own record.

use super::keys;
use super::records::{AssociationRecord, ClusterRecord};
use super::tx::{found, reject, Tx, TxResult};
use super::{Inner, Store, StoreError};
use crate::domain::{DomainError, TaggableResource, Tags};

impl Store {
    /// A resource's tags. `arn` is only for the not-found message.
    pub async fn tags(&self, resource: TaggableResource, arn: String) -> Result<Tags, StoreError> {
        self.lookup(move |s| s.read_tags(&resource, &arn)).await
    }

    /// TagResource: merges `tags` into the resource's tags.
    pub async fn tag_resource(
        &self,
        resource: TaggableResource,
        arn: String,
        tags: Tags,
    ) -> Result<(), StoreError> {
        self.write_grouped(move |_, tx| retag_tx(tx, &resource, &arn, |old| old.merged(&tags)))
            .await
    }

    /// UntagResource: removes `keys` from the resource's tags.
    pub async fn untag_resource(
        &self,
        resource: TaggableResource,
        arn: String,
        keys: Vec<String>,
    ) -> Result<(), StoreError> {
        self.write_grouped(move |_, tx| retag_tx(tx, &resource, &arn, |old| Ok(old.without(&keys))))
            .await
    }
}

impl Inner {
    fn read_tags(&self, resource: &TaggableResource, arn: &str) -> Result<Tags, StoreError> {
        let not_found = || DomainError::TaggedResourceNotFound(arn.to_owned());
        match resource {
            TaggableResource::Cluster(name) => {
                let bytes = self.trees.clusters.get(keys::cluster(name))?;
                Ok(found::<ClusterRecord>(bytes, not_found)?.tags())
            }
            TaggableResource::Association(cluster, id) => {
                let bytes = self
                    .trees
                    .associations
                    .get(keys::association(cluster, id))?;
                Ok(found::<AssociationRecord>(bytes, not_found)?.tags())
            }
        }
    }
}

/// Replaces a resource's tags with `change(old tags)`.
fn retag_tx(
    tx: &Tx<'_>,
    resource: &TaggableResource,
    arn: &str,
    change: impl Fn(&Tags) -> Result<Tags, DomainError>,
) -> TxResult<()> {
    let not_found = || DomainError::TaggedResourceNotFound(arn.to_owned());
    match resource {
        TaggableResource::Cluster(name) => {
            let mut record: ClusterRecord = tx.clusters.record(keys::cluster(name), not_found)?;
            record.tags = change(&record.tags()).map_err(reject)?.as_map().clone();
            tx.put_cluster(name, &record)?;
        }
        TaggableResource::Association(cluster, id) => {
            let mut record: AssociationRecord = tx
                .associations
                .record(keys::association(cluster, id), not_found)?;
            record.tags = change(&record.tags()).map_err(reject)?.as_map().clone();
            tx.put_association(cluster, id, &record)?;
        }
    }
    Ok(())
}
