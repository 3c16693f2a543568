//! The propagation-delay overlay: what AssumeRoleForPodIdentity (and, for
//! rules with `lists = true`, ListPodIdentityAssociations) still sees of an
//! association after a change, until the change "propagates".
//!
//! The store itself is never stale: this only remembers, for a (cluster,
//! namespace, service account), the association as it was before each
//! change and the instant the change becomes visible. It lives in memory,
//! so a restart ends every delay.
//!
//! # Limits
//! A reader sees the state before the oldest change still held back; the
//! states between two changes held back at once are skipped. Entries go
//! when a reader or a later change finds them expired, or when the rules
//! are replaced.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::domain::{Association, AssociationId, Namespace, ServiceAccountName, Timestamp};

/// The association a reader still sees during a delay.
pub type PreviousAssociation = Association;

/// (cluster, namespace, service account): one association at most each.
type Key = (String, String, String);

#[derive(Debug)]
struct Change {
    before: Option<PreviousAssociation>,
    visible_at: Timestamp,
    /// Whether List also keeps answering `before`.
    lists: bool,
}

#[derive(Debug, Default)]
pub struct Overlay {
    /// Whether any change may still be held back: the one load a reader
    /// makes when nothing is.
    pending: AtomicBool,
    changes: Mutex<BTreeMap<Key, Vec<Change>>>,
}

fn key(cluster: &str, namespace: &str, service_account: &str) -> Key {
    (cluster.into(), namespace.into(), service_account.into())
}

impl Overlay {
    /// Remembers that the association of (`cluster`, `namespace`,
    /// `service_account`) was `before` (`None`: there was none) until
    /// `visible_at`.
    pub fn record(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
        before: Option<PreviousAssociation>,
        visible_at: Timestamp,
        lists: bool,
    ) {
        let mut changes = self.lock();
        changes
            .entry(key(cluster, namespace, service_account))
            .or_default()
            .push(Change {
                before,
                visible_at,
                lists,
            });
        self.pending.store(true, Ordering::SeqCst);
    }

    /// Forgets every change held back.
    pub fn clear(&self) {
        self.lock().clear();
        self.pending.store(false, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Vec<Change>>> {
        super::lock(&self.changes)
    }

    /// `None`: answer from the store. `Some(None)`: answer as if there were
    /// no association. `Some(Some(a))`: answer with `a`.
    pub fn stale_view(
        &self,
        cluster: &str,
        namespace: &str,
        service_account: &str,
        now: Timestamp,
    ) -> Option<Option<PreviousAssociation>> {
        if !self.pending.load(Ordering::SeqCst) {
            return None;
        }
        let mut changes = self.lock();
        let key = key(cluster, namespace, service_account);
        let held = changes.get_mut(&key)?;
        held.retain(|c| c.visible_at > now);
        let view = held.first().map(|c| c.before.clone());
        if held.is_empty() {
            changes.remove(&key);
            self.pending.store(!changes.is_empty(), Ordering::SeqCst);
        }
        view
    }

    /// A page of ListPodIdentityAssociations as the client still sees it:
    /// for each (namespace, service account) of the page's cluster whose
    /// change a `lists` rule holds back, the store's association is taken
    /// out and the one before the change put back, if it falls on this page
    /// (after `after`, and up to the page's last item when more pages
    /// follow) and passes the filter. Answers `None` when nothing is held
    /// back.
    pub fn stale_page(&self, page: &ListedPage<'_>, now: Timestamp) -> Option<Vec<Association>> {
        if !self.pending.load(Ordering::SeqCst) {
            return None;
        }
        let mut changes = self.lock();
        changes.retain(|_, held| {
            held.retain(|c| c.visible_at > now);
            !held.is_empty()
        });
        self.pending.store(!changes.is_empty(), Ordering::SeqCst);
        let start = key(page.cluster, "", "");
        let held: Vec<(&Key, &Change)> = changes
            .range(start..)
            .take_while(|(k, _)| k.0 == page.cluster)
            .filter_map(|(k, held)| Some((k, held.iter().find(|c| c.lists)?)))
            .collect();
        if held.is_empty() {
            return None;
        }
        let last = page.items.last().map(|a| a.id.as_str());
        let on_page = |id: &str| {
            page.after.is_none_or(|after| id > after.as_str())
                && (!page.more || last.is_some_and(|last| id <= last))
        };
        let passes = |a: &Association| {
            page.namespace.is_none_or(|n| a.namespace == *n)
                && page.service_account.is_none_or(|s| a.service_account == *s)
        };
        let mut items: Vec<Association> = page
            .items
            .iter()
            .filter(|a| {
                !held.iter().any(|((_, ns, sa), _)| {
                    a.namespace.as_str() == ns && a.service_account.as_str() == sa
                })
            })
            .cloned()
            .collect();
        items.extend(
            held.iter()
                .filter_map(|(_, change)| change.before.clone())
                .filter(|a| passes(a) && on_page(a.id.as_str())),
        );
        items.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        Some(items)
    }
}

/// A page of ListPodIdentityAssociations as the store answered it, with
/// what it was asked for.
#[derive(Debug, Clone, Copy)]
pub struct ListedPage<'a> {
    pub cluster: &'a str,
    pub namespace: Option<&'a Namespace>,
    pub service_account: Option<&'a ServiceAccountName>,
    /// The last association ID of the page before (`nextToken`).
    pub after: Option<&'a AssociationId>,
    pub items: &'a [Association],
    /// Whether more pages follow.
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::association_fixtures::association as sample_association;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    /// The first page of `cluster`, unfiltered, with `items` and no more.
    fn page<'a>(cluster: &'a str, items: &'a [Association]) -> ListedPage<'a> {
        ListedPage {
            cluster,
            namespace: None,
            service_account: None,
            after: None,
            items,
            more: false,
        }
    }

    /// The (cluster, namespace, service account) of `a`.
    fn key_of(a: &Association) -> (&str, &str, &str) {
        (
            a.cluster.as_str(),
            a.namespace.as_str(),
            a.service_account.as_str(),
        )
    }

    #[test]
    fn nothing_held_back_answers_from_the_store() {
        let overlay = Overlay::default();
        assert_eq!(overlay.stale_view("c", "ns", "sa", at(0)), None);
        assert_eq!(overlay.stale_page(&page("c", &[]), at(0)), None);
    }

    #[test]
    fn a_create_is_unseen_and_a_delete_still_seen_until_the_delay_passes() {
        let overlay = Overlay::default();
        let old = sample_association();
        let (c, ns, sa) = key_of(&old);
        overlay.record(c, ns, sa, None, at(1_000), false);
        assert_eq!(overlay.stale_view(c, ns, sa, at(999)), Some(None));
        assert_eq!(overlay.stale_view(c, ns, sa, at(1_000)), None);
        assert!(
            !overlay.pending.load(Ordering::SeqCst),
            "expired entries go"
        );
        overlay.record(c, ns, sa, Some(old.clone()), at(2_000), false);
        assert_eq!(
            overlay.stale_view(c, ns, sa, at(1_500)),
            Some(Some(old.clone()))
        );
        assert_eq!(overlay.stale_view("other", ns, sa, at(1_500)), None);
        assert_eq!(overlay.stale_view(c, ns, sa, at(2_001)), None);
    }

    #[test]
    fn an_update_answers_the_old_role_and_two_changes_the_state_before_both() {
        let overlay = Overlay::default();
        let old = sample_association();
        let (c, ns, sa) = key_of(&old);
        overlay.record(c, ns, sa, Some(old.clone()), at(1_000), false);
        overlay.record(c, ns, sa, None, at(3_000), false);
        assert_eq!(
            overlay.stale_view(c, ns, sa, at(500)),
            Some(Some(old.clone()))
        );
        assert_eq!(overlay.stale_view(c, ns, sa, at(2_000)), Some(None));
        assert_eq!(overlay.stale_view(c, ns, sa, at(3_000)), None);
    }

    #[test]
    fn a_list_hides_a_new_association_and_shows_a_deleted_one_only_for_lists_rules() {
        let overlay = Overlay::default();
        let created = sample_association();
        let (c, ns, sa) = key_of(&created);
        let store = std::slice::from_ref(&created);
        overlay.record(c, ns, sa, None, at(1_000), false);
        assert_eq!(
            overlay.stale_page(&page(c, store), at(0)),
            None,
            "a rule without lists leaves List alone"
        );
        overlay.clear();
        overlay.record(c, ns, sa, None, at(1_000), true);
        assert_eq!(overlay.stale_page(&page(c, store), at(0)), Some(vec![]));
        overlay.clear();
        overlay.record(c, ns, sa, Some(created.clone()), at(1_000), true);
        let empty = page(c, &[]);
        assert_eq!(
            overlay.stale_page(&empty, at(0)),
            Some(vec![created.clone()])
        );
        // Not through a filter it fails, nor on a page after it.
        let other_ns = Namespace::parse("elsewhere").unwrap();
        let filtered = ListedPage {
            namespace: Some(&other_ns),
            ..empty
        };
        assert_eq!(overlay.stale_page(&filtered, at(0)), Some(vec![]));
        let later = ListedPage {
            after: Some(&created.id),
            ..empty
        };
        assert_eq!(overlay.stale_page(&later, at(0)), Some(vec![]));
        assert_eq!(overlay.stale_page(&empty, at(1_000)), None);
    }
}
