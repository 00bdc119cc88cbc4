//! Compile-time slicing of the policy set, so a decision evaluates only the policies whose
//! scope can match its action and target.
//!
//! Cedar evaluates every policy of the set it is given. Most policies name an action (group) and
//! many a connection in their scope, so for each concrete action and each target "slot" (a
//! connection some policy names, any other connection, the gateway) the engine keeps just the
//! policies that could apply. The filter is conservative: it drops a policy only when its scope
//! provably excludes the request, so the decision is the one Cedar would reach on the full set.

use std::collections::HashSet;

use cedar_policy::{ActionConstraint, EntityTypeName, EntityUid, Policy, ResourceConstraint};

/// A target a slice is computed for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot<'a> {
    pub(crate) ty: &'a EntityTypeName,
    /// `None` stands for every entity of the type that no policy names.
    pub(crate) id: Option<&'a str>,
}

/// Whether a policy's action scope admits `action`, whose ancestors (its action groups) are
/// `ancestors`.
pub(crate) fn action_matches(
    policy: &Policy,
    action: &EntityUid,
    ancestors: &HashSet<EntityUid>,
) -> bool {
    let covers = |uid: &EntityUid| uid == action || ancestors.contains(uid);
    match policy.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => uid == *action,
        ActionConstraint::In(uids) => uids.iter().any(covers),
    }
}

/// Whether a policy's resource scope may admit a target in `slot`. Connections and the gateway
/// have no parents, so `resource in E` holds for them exactly when the target is `E`.
pub(crate) fn resource_may_match(policy: &Policy, slot: Slot<'_>) -> bool {
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
