//! Compile-time slicing of the policy set, so a decision evaluates only the policies whose
//! scope can match its action and target.
//!
//! Cedar evaluates every policy of the set it is given. Most policies name an action (group) and
//! many a connection in their scope, so for each concrete action and each target "slot" (a
//! connection some policy names, any other connection, the gateway) the engine keeps just the
//! policies that could apply. The filter is conservative: it drops a policy only when its scope
//! provably excludes the request, so the decision is the one Cedar would reach on the full set.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, EntityTypeName, EntityUid, Policy, PolicySet, ResourceConstraint,
};

/// A target a slice is computed for.
#[derive(Debug, Clone, Copy)]
struct Slot<'a> {
    ty: &'a EntityTypeName,
    /// `None` stands for every entity of the type that no policy names.
    id: Option<&'a str>,
}

/// Whether a policy's action scope admits `action`, whose ancestors (its action groups) are
/// `ancestors`.
fn action_matches(policy: &Policy, action: &EntityUid, ancestors: &HashSet<EntityUid>) -> bool {
    let covers = |uid: &EntityUid| uid == action || ancestors.contains(uid);
    match policy.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => uid == *action,
        ActionConstraint::In(uids) => uids.iter().any(covers),
    }
}

/// Whether a policy's resource scope may admit a target in `slot`. Connections and the gateway
/// have no parents, so `resource in E` holds for them exactly when the target is `E`.
fn resource_may_match(policy: &Policy, slot: Slot<'_>) -> bool {
    let is = |uid: &EntityUid| uid.type_name() == slot.ty && slot.id == Some(uid.id().unescaped());
    match policy.resource_constraint() {
        ResourceConstraint::Any => true,
        ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid) => is(&uid),
        ResourceConstraint::Is(ty) => &ty == slot.ty,
        ResourceConstraint::IsIn(ty, uid) => &ty == slot.ty && is(&uid),
    }
}

/// The ids of entities of type `ty` that some policy names in its resource scope.
pub(crate) fn named_resources<'p>(
    policies: impl IntoIterator<Item = &'p Policy>,
    ty: &EntityTypeName,
) -> Vec<String> {
    let mut names: Vec<String> = policies
        .into_iter()
        .filter_map(|p| match p.resource_constraint() {
            ResourceConstraint::Eq(uid)
            | ResourceConstraint::In(uid)
            | ResourceConstraint::IsIn(_, uid) => Some(uid),
            ResourceConstraint::Any | ResourceConstraint::Is(_) => None,
        })
        .filter(|uid| uid.type_name() == ty)
        .map(|uid| uid.id().unescaped().to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// One policy set per target slot for each action, with identical slices shared.
pub(crate) struct Slicer<'a> {
    policies: Vec<&'a Policy>,
    slots: Vec<Slot<'a>>,
    shared: HashMap<Vec<usize>, Option<Arc<PolicySet>>>,
}

impl<'a> Slicer<'a> {
    /// Slots, in order: each connection in `named`, any other connection, then `gateway`.
    pub(crate) fn new(
        policies: Vec<&'a Policy>,
        connection: &'a EntityTypeName,
        named: &'a [String],
        gateway: (&'a EntityTypeName, &'a str),
    ) -> Self {
        let mut slots: Vec<Slot<'a>> = named
            .iter()
            .map(|n| Slot {
                ty: connection,
                id: Some(n),
            })
            .collect();
        slots.push(Slot {
            ty: connection,
            id: None,
        });
        slots.push(Slot {
            ty: gateway.0,
            id: Some(gateway.1),
        });
        Slicer {
            policies,
            slots,
            shared: HashMap::new(),
        }
    }

    /// The slices of `action`, one per slot; `None` where no policy can apply.
    pub(crate) fn slices(
        &mut self,
        action: &EntityUid,
        ancestors: &HashSet<EntityUid>,
    ) -> Result<Vec<Option<Arc<PolicySet>>>, String> {
        let mut slices = Vec::with_capacity(self.slots.len());
        for i in 0..self.slots.len() {
            let slot = self.slots[i];
            let picked: Vec<usize> = self
                .policies
                .iter()
                .enumerate()
                .filter(|(_, p)| action_matches(p, action, ancestors))
                .filter(|(_, p)| resource_may_match(p, slot))
                .map(|(i, _)| i)
                .collect();
            slices.push(self.slice_for(picked)?);
        }
        Ok(slices)
    }

    fn slice_for(&mut self, picked: Vec<usize>) -> Result<Option<Arc<PolicySet>>, String> {
        if picked.is_empty() {
            return Ok(None);
        }
        if let Some(set) = self.shared.get(&picked) {
            return Ok(set.clone());
        }
        let policies = picked.iter().map(|&i| self.policies[i].clone());
        let set = PolicySet::from_policies(policies).map_err(|e| format!("policy slice: {e}"))?;
        let set = Some(Arc::new(set));
        self.shared.insert(picked, set.clone());
        Ok(set)
    }
}
