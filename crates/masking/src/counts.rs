//! Per-entity counters of masking actions, for the audit event (DESIGN.md §6: counts, never
//! values).

use crate::Entity;

/// How many values of each entity were masked. An array indexed by entity: cheap to create,
/// add to and merge on the hot path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    by_entity: [u32; Entity::COUNT],
}

impl Counts {
    /// Adds `n` maskings of `entity` (saturating: a counter never wraps).
    pub fn add(&mut self, entity: Entity, n: u32) {
        let slot = &mut self.by_entity[entity.index()];
        *slot = slot.saturating_add(n);
    }

    /// Adds every counter of `other` into `self`.
    pub fn merge(&mut self, other: &Counts) {
        for (mine, theirs) in self.by_entity.iter_mut().zip(other.by_entity) {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// The count of one entity.
    pub fn get(&self, entity: Entity) -> u32 {
        self.by_entity[entity.index()]
    }

    /// The non-zero counters, in [`Entity::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Entity, u32)> + '_ {
        Entity::ALL
            .into_iter()
            .zip(self.by_entity)
            .filter(|&(_, n)| n > 0)
    }

    /// Whether nothing was masked.
    pub fn is_empty(&self) -> bool {
        self.by_entity.iter().all(|&n| n == 0)
    }

    /// The sum of all counters.
    pub fn total(&self) -> u64 {
        self.by_entity.iter().map(|&n| u64::from(n)).sum()
    }
}
