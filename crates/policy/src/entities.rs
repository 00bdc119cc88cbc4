//! The per-request Cedar entities: the principal (with its groups as parents), the target, and
//! the action (with its action groups as ancestors, precomputed from the schema).
//!
//! Group entities themselves are not needed: `principal in Group::"agents"` is answered from the
//! principal's parents alone.

use cedar_policy::{Entities, Entity, EntityId, EntityUid, RestrictedExpression};
use portcullis_identity::{Principal, PrincipalKind};

use crate::request::Target;
use crate::schema::Types;

/// The id of the only `Gateway` entity.
pub(crate) const GATEWAY_ID: &str = "self";

pub(crate) fn principal_uid(types: &Types, p: &Principal) -> EntityUid {
    let ty = match p.kind {
        PrincipalKind::Machine => &types.machine,
        PrincipalKind::Human => &types.human,
    };
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(&p.subject))
}

pub(crate) fn target_uid(types: &Types, target: &Target<'_>) -> EntityUid {
    match target {
        Target::Connection(c) => {
            EntityUid::from_type_name_and_id(types.connection.clone(), EntityId::new(&c.name))
        }
        Target::Gateway => {
            EntityUid::from_type_name_and_id(types.gateway.clone(), EntityId::new(GATEWAY_ID))
        }
    }
}

/// Builds the entity store for one request.
pub(crate) fn build(
    types: &Types,
    principal: &Principal,
    principal_uid: EntityUid,
    target: &Target<'_>,
    target_uid: EntityUid,
    action: &Entity,
) -> Result<Entities, String> {
    let actors = principal
        .delegation
        .iter()
        .map(|a| RestrictedExpression::new_string(a.subject.clone()));
    let attrs = [
        (
            "issuer".to_owned(),
            RestrictedExpression::new_string(principal.issuer.clone()),
        ),
        (
            "client_id".to_owned(),
            RestrictedExpression::new_string(principal.client_id.clone().unwrap_or_default()),
        ),
        (
            "delegated".to_owned(),
            RestrictedExpression::new_bool(!principal.delegation.is_empty()),
        ),
        ("actors".to_owned(), RestrictedExpression::new_set(actors)),
    ];
    let groups = principal
        .groups
        .iter()
        .map(|g| EntityUid::from_type_name_and_id(types.group.clone(), EntityId::new(g)));
    let who = Entity::new_with_tags(principal_uid, attrs, groups, [])
        .map_err(|e| format!("principal entity: {e}"))?;
    let what = match target {
        Target::Connection(c) => {
            let kind = [(
                "kind".to_owned(),
                RestrictedExpression::new_string(c.kind.clone()),
            )];
            let tags = c
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
            Entity::new_with_tags(target_uid, kind, [], tags)
                .map_err(|e| format!("connection entity: {e}"))?
        }
        Target::Gateway => Entity::with_uid(target_uid),
    };
    Entities::from_entities([who, what, action.clone()], None)
        .map_err(|e| format!("entity store: {e}"))
}
