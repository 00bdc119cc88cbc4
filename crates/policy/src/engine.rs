//! The compiled policy engine: built once per configuration load, then asked once per command.
//!
//! Compilation does everything that does not depend on the request: parsing, validation,
//! reading annotations, the action hierarchy, and per-(action, target) slices of the policy set
//! (see `slice.rs`). A decision then builds only the request's entities and context and
//! evaluates the few policies whose scope can match, unless the same request was decided
//! recently (see `memo.rs`).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use cedar_policy::{Authorizer, Entity, EntityUid, PolicyId, PolicySet, Schema};

use portcullis_identity::Principal;

use crate::compile::{self, Compiled, PolicySource, Problem};
use crate::context::{self, Common, Family, IpExprs};
use crate::decision::{Decision, DenyCode};
use crate::entities;
use crate::memo::{self, Hashes, Memo, Observed, SessionMemo};
use crate::meta::PolicyMeta;
use crate::request::{Request, Target};
use crate::schema::{self, Types};
use crate::slice::{self, Slicer};
use crate::verdict::{self, Subject};

/// A validated, precompiled policy set, shared behind an `Arc` and replaced whole on reload.
/// Its only interior state is the memo of recent decisions and entity stores (`memo.rs`).
pub struct PolicyEngine {
    ids: Vec<String>,
    meta: HashMap<PolicyId, PolicyMeta>,
    actions: HashMap<String, ActionEntry>,
    /// Names of action groups, to tell a caller that named one what went wrong.
    groups: HashSet<String>,
    /// Connections some policy names, to their slot; any other connection takes slot
    /// `connections.len()` and the gateway the one after.
    connections: HashMap<String, usize>,
    types: Types,
    authorizer: Authorizer,
    ips: IpExprs,
    memo: Memo,
    /// Unique per compiled engine: what a [`SessionMemo`] is bound to.
    id: u64,
}

/// Everything about one concrete action that does not depend on the request.
struct ActionEntry {
    uid: EntityUid,
    /// The action entity with its action groups as ancestors.
    entity: Entity,
    family: Option<&'static Family>,
    on_connection: bool,
    on_gateway: bool,
    /// Policies per target slot; `None` when no policy can apply.
    slices: Vec<Option<Arc<PolicySet>>>,
}

impl fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("policies", &self.ids)
            .field("actions", &self.actions.len())
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// Parses, validates and precompiles policy files. Returns every problem found, each with
    /// its file and, where known, line and column.
    pub fn compile(sources: &[PolicySource]) -> Result<PolicyEngine, Vec<Problem>> {
        let schema = schema::load().map_err(|p| vec![p])?;
        let types = Types::new().map_err(|p| vec![p])?;
        let compiled = compile::compile(sources, &schema)?;
        Self::build(&schema, types, compiled).map_err(|p| vec![p])
    }

    fn build(schema: &Schema, types: Types, compiled: Vec<Compiled>) -> Result<Self, Problem> {
        let internal = |message: String| Problem {
            source: "schema.cedarschema".to_owned(),
            line: None,
            column: None,
            message,
        };
        let action_entities = schema
            .action_entities()
            .map_err(|e| internal(format!("action entities: {e}")))?;
        let named = slice::named_resources(compiled.iter().map(|c| &c.policy), &types.connection);
        let mut slicer = Slicer::new(
            compiled.iter().map(|c| &c.policy).collect(),
            &types.connection,
            &named,
            (&types.gateway, entities::GATEWAY_ID),
        );
        let mut actions = HashMap::new();
        let mut groups = HashSet::new();
        for uid in schema.actions() {
            let name = uid.id().unescaped().to_owned();
            let resources: Vec<_> = schema
                .resources_for_action(uid)
                .map(|it| it.cloned().collect())
                .unwrap_or_default();
            // Action groups apply to nothing themselves; requests name their members.
            let Some(entity) = action_entities.get(uid).filter(|_| !resources.is_empty()) else {
                groups.insert(name);
                continue;
            };
            let ancestors: HashSet<EntityUid> = action_entities
                .ancestors(uid)
                .map(|it| it.cloned().collect())
                .unwrap_or_default();
            let entry = ActionEntry {
                uid: uid.clone(),
                entity: entity.clone(),
                family: context::family_for(&name),
                on_connection: resources.contains(&types.connection),
                on_gateway: resources.contains(&types.gateway),
                slices: slicer.slices(uid, &ancestors).map_err(internal)?,
            };
            actions.insert(name, entry);
        }
        let ids = compiled.iter().map(|c| c.meta.id.clone()).collect();
        let texts: Vec<Option<String>> = compiled.iter().map(|c| c.policy.to_cedar()).collect();
        let observed = Observed::scan(texts.iter().map(Option::as_deref));
        let meta = compiled
            .into_iter()
            .map(|c| (c.policy.id().clone(), c.meta))
            .collect();
        let connections = named.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        Ok(PolicyEngine {
            ids,
            meta,
            actions,
            groups,
            connections,
            types,
            authorizer: Authorizer::new(),
            ips: IpExprs::new(),
            memo: Memo::new(observed),
            id: memo::next_engine_id(),
        })
    }

    /// Unique per compiled engine in this process (never reused): tells a verdict kept
    /// beside the engine that gave it from one a reload made stale.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Policy ids in source order.
    pub fn policy_ids(&self) -> Vec<String> {
        self.ids.clone()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether some permit policy may allow `principal` doing `action` on `target`, every
    /// forbid aside: its scope admits them, and its conditions either hold for this principal
    /// and target or read the request's context (which a connect-time question cannot know;
    /// the check is textual, so `context` anywhere in the policy counts). `false` means no
    /// request of that action by that principal on that target can ever be allowed,
    /// whatever its facts. (A door uses it to make a session whose principal can never write
    /// read-only in the server too.)
    pub fn may_permit(&self, principal: &Principal, action: &str, target: &Target<'_>) -> bool {
        use cedar_policy::{Effect, PrincipalConstraint as P};
        let Some(entry) = self.actions.get(action) else {
            return false;
        };
        let Some(Some(policies)) = entry.slices.get(self.slot(target)) else {
            return false;
        };
        let uid = entities::principal_uid(&self.types, principal);
        let within = |group: &EntityUid| {
            *group == uid
                || group.type_name() == &self.types.group
                    && principal.groups.iter().any(|g| g == group.id().unescaped())
        };
        let scoped = |p: &&cedar_policy::Policy| match p.principal_constraint() {
            P::Any => true,
            P::Eq(e) => e == uid,
            P::In(e) => within(&e),
            P::Is(ty) => &ty == uid.type_name(),
            P::IsIn(ty, e) => &ty == uid.type_name() && within(&e),
        };
        // Built once, for the first permit whose conditions are evaluated.
        let mut question = None;
        policies
            .policies()
            .filter(|p| p.effect() == Effect::Permit)
            .filter(scoped)
            .any(|p| {
                if p.to_string().contains("context") {
                    return true;
                }
                let question = question.get_or_insert_with(|| {
                    let target_uid = entities::target_uid(&self.types, target);
                    let store = entities::build(
                        &self.types,
                        principal,
                        uid.clone(),
                        target,
                        target_uid.clone(),
                        &entry.entity,
                    )
                    .ok()?;
                    let request = cedar_policy::Request::new(
                        uid.clone(),
                        entry.uid.clone(),
                        target_uid,
                        cedar_policy::Context::empty(),
                        None,
                    )
                    .ok()?;
                    Some((request, store))
                });
                // A question that cannot be asked cannot rule the permit out.
                question
                    .as_ref()
                    .is_none_or(|(request, store)| self.permits(p, request, store))
            })
    }

    /// Whether `policy` alone allows `request`; an error evaluating it counts as allowing.
    fn permits(
        &self,
        policy: &cedar_policy::Policy,
        request: &cedar_policy::Request,
        store: &cedar_policy::Entities,
    ) -> bool {
        let Ok(set) = PolicySet::from_policies([policy.clone()]) else {
            return true;
        };
        let response = self.authorizer.is_authorized(request, &set, store);
        response.decision() == cedar_policy::Decision::Allow
            || response.diagnostics().errors().next().is_some()
    }

    /// The slice index of `target`: a connection some policy names, any other connection, or
    /// the gateway.
    fn slot(&self, target: &Target<'_>) -> usize {
        match target {
            Target::Connection(c) => self
                .connections
                .get(&c.name)
                .copied()
                .unwrap_or(self.connections.len()),
            Target::Gateway => self.connections.len() + 1,
        }
    }

    /// Whether `action` is a concrete action a request may name (not an action group).
    pub fn is_known_action(&self, action: &str) -> bool {
        self.actions.contains_key(action)
    }

    /// Decides one request. Never fails: every problem becomes a `Deny` with its code.
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        let Some(entry) = self.actions.get(req.action) else {
            return self.unknown_action(req.action);
        };
        let hashes = self.memo.hashes(req);
        if let Some(decision) = self.memo.decision(hashes, req) {
            return decision;
        }
        let decision = self.decide_uncached(req, entry, hashes);
        self.memo.remember_decision(hashes, req, &decision);
        decision
    }

    /// [`PolicyEngine::decide`] for one session's requests, remembered in its own `memo`
    /// (see [`SessionMemo`]): a repeated request costs a hash of its action and facts. A memo
    /// filled by another engine (before a reload) is emptied first.
    pub fn decide_in(&self, memo: &mut SessionMemo, req: &Request<'_>) -> Decision {
        let observed = self.memo.observed();
        let (hash, found) = memo.get(self.id, observed, req);
        if let Some(decision) = found {
            return decision;
        }
        let decision = self.decide(req);
        memo.put(hash, observed, req, &decision);
        decision
    }

    fn decide_uncached(&self, req: &Request<'_>, entry: &ActionEntry, hashes: Hashes) -> Decision {
        let subject = Subject {
            action: req.action,
            target: &req.target,
        };
        let slot = self.slot(&req.target);
        let fits = match &req.target {
            Target::Connection(_) => entry.on_connection,
            Target::Gateway => entry.on_gateway,
        };
        if !fits {
            return Decision::deny(
                DenyCode::ContextInvalid,
                format!(
                    "action {} does not apply to {}",
                    req.action,
                    subject.target()
                ),
                "the gateway built a request the policy schema does not allow".to_owned(),
            );
        }
        let common = Common {
            principal: req.principal,
            now_unix: req.now_unix,
            source_ip: self.ips.get(req.source_ip),
        };
        let context = match context::build(req.action, entry.family, req.facts, &common) {
            Ok(context) => context,
            Err(e) => {
                return Decision::deny(
                    DenyCode::ContextInvalid,
                    e.to_string(),
                    "the facts handed to the policy engine do not match its schema; this is a \
                     gateway bug, please report it"
                        .to_owned(),
                );
            }
        };
        let Some(Some(policies)) = entry.slices.get(slot) else {
            return verdict::no_permit(&subject);
        };
        match self.evaluate(req, entry, context, policies, hashes) {
            Ok(response) => verdict::decide(&response, &self.meta, &subject),
            Err(message) => Decision::deny(
                DenyCode::PolicyError,
                message,
                "the policy engine could not evaluate this request, so it was refused".to_owned(),
            ),
        }
    }

    fn evaluate(
        &self,
        req: &Request<'_>,
        entry: &ActionEntry,
        context: cedar_policy::Context,
        policies: &PolicySet,
        hashes: Hashes,
    ) -> Result<cedar_policy::Response, String> {
        let principal = entities::principal_uid(&self.types, req.principal);
        let target = entities::target_uid(&self.types, &req.target);
        let store = match self.memo.store(hashes, req) {
            Some(store) => store,
            None => {
                let store = Arc::new(entities::build(
                    &self.types,
                    req.principal,
                    principal.clone(),
                    &req.target,
                    target.clone(),
                    &entry.entity,
                )?);
                self.memo.remember_store(hashes, req, &store);
                store
            }
        };
        // The context was built to the schema's shape (checked by tests), so the request skips
        // Cedar's per-request schema validation.
        let request =
            cedar_policy::Request::new(principal, entry.uid.clone(), target, context, None)
                .map_err(|e| format!("request: {e}"))?;
        Ok(self.authorizer.is_authorized(&request, policies, &store))
    }

    fn unknown_action(&self, action: &str) -> Decision {
        let (reason, hint) = if self.groups.contains(action) {
            (
                format!("{action} is an action group, not an action"),
                "requests name a concrete action such as sql.select; groups are for policies"
                    .to_owned(),
            )
        } else {
            (
                format!("unknown action {action:?}"),
                "the command was classified as an action the policy schema does not define"
                    .to_owned(),
            )
        };
        Decision::deny(DenyCode::UnknownAction, reason, hint)
    }
}
