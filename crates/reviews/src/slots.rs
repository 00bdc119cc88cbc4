//! Per-review in-process coordination: a lock that orders this gateway's changes to one
//! review (so the sink sees them in the order they were stored) and a `Notify` that wakes
//! its waiters at once.
//!
//! A slot exists only while someone holds it: the map entry is removed when the last
//! [`SlotRef`] is dropped, so memory follows the reviews in use, not the reviews ever made.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct Slot {
    /// Held across load, compare-and-set and the sink call of one change.
    pub(crate) turn: tokio::sync::Mutex<()>,
    /// Notified after every stored change.
    pub(crate) changed: Notify,
}

#[derive(Default)]
pub(crate) struct Slots {
    map: Mutex<HashMap<String, Arc<Slot>>>,
}

impl Slots {
    /// The slot of `id`, created if nobody holds it yet.
    pub(crate) fn get(&self, id: &str) -> SlotRef<'_> {
        let slot = self.lock().entry(id.to_owned()).or_default().clone();
        SlotRef {
            slots: self,
            id: id.to_owned(),
            slot,
        }
    }

    /// How many reviews have a slot now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The critical sections below never panic, so a poisoned map is still consistent.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A held slot; dropping the last one for an id removes it from the map.
pub(crate) struct SlotRef<'a> {
    slots: &'a Slots,
    id: String,
    slot: Arc<Slot>,
}

impl Deref for SlotRef<'_> {
    type Target = Slot;

    fn deref(&self) -> &Slot {
        &self.slot
    }
}

impl Drop for SlotRef<'_> {
    fn drop(&mut self) {
        let mut map = self.slots.lock();
        // Clones are only made under the map lock, so with the lock held a count of two
        // (the map's and ours) means nobody else can be holding or about to hold it.
        let last = Arc::strong_count(&self.slot) == 2;
        if last
            && map
                .get(&self.id)
                .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
        {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_shared_while_held_and_removed_after() {
        let slots = Slots::default();
        let a = slots.get("rv_a");
        let a2 = slots.get("rv_a");
        assert!(Arc::ptr_eq(&a.slot, &a2.slot));
        let b = slots.get("rv_b");
        assert_eq!(slots.len(), 2);
        drop(a);
        assert_eq!(slots.len(), 2, "still held by a2");
        drop(a2);
        drop(b);
        assert_eq!(slots.len(), 0);
    }
}
