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
        // A panic while holding the lock cannot leave the map half changed
        // in a way that matters: every entry is whole.
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
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
    /// for each (namespace, service account) of `cluster` whose change a
    /// `lists` rule holds back, the store's association is taken out and
    /// the one before the change put back, if it falls on this page (after
    /// `after`, and up to the page's last item when more pages follow) and
    /// passes the filter. Answers `None` when nothing is held back.
    pub fn stale_page(
        &self,
        cluster: &str,
        filter: (Option<&Namespace>, Option<&ServiceAccountName>),
        after: Option<&AssociationId>,
        page: &[Association],
        more: bool,
        now: Timestamp,
    ) -> Option<Vec<Association>> {
        if !self.pending.load(Ordering::SeqCst) {
            return None;
        }
        let mut changes = self.lock();
        changes.retain(|_, held| {
            held.retain(|c| c.visible_at > now);
            !held.is_empty()
        });
        self.pending.store(!changes.is_empty(), Ordering::SeqCst);
        let start = key(cluster, "", "");
        let held: Vec<(&Key, &Change)> = changes
            .range(start..)
            .take_while(|(k, _)| k.0 == cluster)
            .filter_map(|(k, held)| Some((k, held.iter().find(|c| c.lists)?)))
            .collect();
        if held.is_empty() {
            return None;
        }
        let (namespace, service_account) = filter;
        let last = page.last().map(|a| a.id.as_str().to_owned());
        let on_page = |id: &str| {
            after.is_none_or(|after| id > after.as_str())
                && (!more || last.as_deref().is_some_and(|last| id <= last))
        };
        let passes = |a: &Association| {
            namespace.is_none_or(|n| a.namespace == *n)
                && service_account.is_none_or(|s| a.service_account == *s)
        };
        let mut items: Vec<Association> = page
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::association_fixtures::association as sample_association;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn nothing_held_back_answers_from_the_store() {
        let overlay = Overlay::default();
        assert_eq!(overlay.stale_view("c", "ns", "sa", at(0)), None);
        assert_eq!(
            overlay.stale_page("c", (None, None), None, &[], false, at(0)),
            None
        );
    }

    #[test]
    fn a_create_is_unseen_and_a_delete_still_seen_until_the_delay_passes() {
        let overlay = Overlay::default();
        let old = sample_association();
        let (c, ns, sa) = (
            old.cluster.as_str(),
            old.namespace.as_str(),
            old.service_account.as_str(),
        );
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
        let (c, ns, sa) = (
            old.cluster.as_str(),
            old.namespace.as_str(),
            old.service_account.as_str(),
        );
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
        let (c, ns, sa) = (
            created.cluster.as_str(),
            created.namespace.as_str(),
            created.service_account.as_str(),
        );
        overlay.record(c, ns, sa, None, at(1_000), false);
        assert_eq!(
            overlay.stale_page(
                c,
                (None, None),
                None,
                std::slice::from_ref(&created),
                false,
                at(0)
            ),
            None,
            "a rule without lists leaves List alone"
        );
        overlay.clear();
        overlay.record(c, ns, sa, None, at(1_000), true);
        let page = overlay.stale_page(
            c,
            (None, None),
            None,
            std::slice::from_ref(&created),
            false,
            at(0),
        );
        assert_eq!(page, Some(vec![]));
        overlay.clear();
        overlay.record(c, ns, sa, Some(created.clone()), at(1_000), true);
        let page = overlay.stale_page(c, (None, None), None, &[], false, at(0));
        assert_eq!(page, Some(vec![created.clone()]));
        // Not on a page that ends before it, nor through a filter it fails.
        let other_ns = Namespace::parse("elsewhere").unwrap();
        assert_eq!(
            overlay.stale_page(c, (Some(&other_ns), None), None, &[], false, at(0)),
            Some(vec![])
        );
        assert_eq!(
            overlay.stale_page(c, (None, None), Some(&created.id), &[], false, at(0)),
            Some(vec![])
        );
        assert_eq!(
            overlay.stale_page(c, (None, None), None, &[], false, at(1_000)),
            None
        );
    }
}
