//! Policy decisions per second on one core with 100 policies over 25 connections.
//! Baseline: Cedar's own authorizer over the same 100 policies with the entities and the
//! policy set prepared once, which is the floor for any Cedar-based engine.

use std::collections::BTreeMap;

use cedar_policy::{Authorizer, Context, Entities, EntityUid, PolicySet, Request as CedarRequest};
use portcullis_identity::{Principal, PrincipalKind};
use portcullis_policy::{ConnectionInfo, PolicyEngine, PolicySource, Request, Target};
use serde_json::json;

use crate::{rate, row};

const CONNECTIONS: usize = 25;

fn policies() -> String {
    let mut s = String::new();
    for i in 0..CONNECTIONS {
        s.push_str(&format!(
            r#"@id("read-{i}")
permit(principal in Group::"team{i}", action in Action::"sql.read", resource == Connection::"db{i}");
@id("write-{i}")
permit(principal in Group::"team{i}", action in Action::"sql.write", resource == Connection::"db{i}")
when {{ context.sql.has_where }};
@id("ddl-{i}") @approval("dba")
permit(principal in Group::"team{i}", action == Action::"sql.ddl", resource == Connection::"db{i}");
@id("unparsed-{i}") @reason("unparsed SQL")
forbid(principal, action in [Action::"sql.read", Action::"sql.write"], resource == Connection::"db{i}")
when {{ !context.sql.parsed }};
"#
        ));
    }
    s
}

fn principal(i: usize) -> Principal {
    Principal {
        subject: format!("agent-{i}"),
        issuer: "https://bench.invalid".into(),
        client_id: Some(format!("agent-{i}")),
        groups: vec![format!("team{i}"), "agents".into()],
        kind: PrincipalKind::Machine,
        delegation: vec![],
        token_id: Some("jti".into()),
        expires_at: i64::MAX,
        valid_until: i64::MAX,
        issued_at: None,
    }
}

const ACTIONS: [(&str, bool); 3] = [
    ("sql.select", true),
    ("sql.update", true),
    ("sql.delete", false),
];

pub fn run() -> anyhow::Result<()> {
    let text = policies();
    let engine = PolicyEngine::compile(&[PolicySource {
        name: "bench.cedar".into(),
        text: text.clone(),
    }])
    .map_err(|p| anyhow::anyhow!("{p:?}"))?;
    assert_eq!(engine.len(), 4 * CONNECTIONS);
    let conns: Vec<ConnectionInfo> = (0..CONNECTIONS)
        .map(|i| ConnectionInfo {
            name: format!("db{i}"),
            kind: "postgres".into(),
            labels: BTreeMap::from([("environment".into(), "prod".into())]),
        })
        .collect();
    let principals: Vec<Principal> = (0..CONNECTIONS).map(principal).collect();
    let facts: Vec<serde_json::Value> = ACTIONS
        .iter()
        .map(|(_, w)| json!({"sql": {"has_where": w}}))
        .collect();
    // `fresh`: a new principal per decision defeats the decision memo and the per-principal
    // entity cache, so that run measures the full evaluation path.
    let measure = |fresh: bool| {
        let mut n = 0usize;
        rate(|| {
            n += 1;
            let i = n % CONNECTIONS;
            let a = n % ACTIONS.len();
            let renamed;
            let p = if fresh {
                let mut p = principals[i].clone();
                p.subject = format!("agent-{n}");
                renamed = p;
                &renamed
            } else {
                &principals[i]
            };
            let d = engine.decide(&Request {
                principal: p,
                action: ACTIONS[a].0,
                target: Target::Connection(&conns[i]),
                facts: &facts[a],
                now_unix: 1_800_000_000,
                source_ip: None,
            });
            std::hint::black_box(&d);
            1
        })
    };
    let ours = measure(false);
    let raw = cedar_baseline(&text)?;
    row(
        "policy decision, 100 policies, 75 recurring requests (1 core)",
        ours,
        "Cedar is_authorized",
        raw,
    );
    let cold = measure(true);
    row(
        "policy decision, 100 policies, every request new (1 core)",
        cold,
        "Cedar is_authorized",
        raw,
    );
    Ok(())
}

fn cedar_baseline(text: &str) -> anyhow::Result<f64> {
    let set: PolicySet = text.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut ents = Vec::new();
    for i in 0..CONNECTIONS {
        ents.push(json!({"uid": {"type": "Machine", "id": format!("agent-{i}")}, "attrs": {},
            "parents": [{"type": "Group", "id": format!("team{i}")}, {"type": "Group", "id": "agents"}]}));
        ents.push(json!({"uid": {"type": "Connection", "id": format!("db{i}")}, "attrs": {"kind": "postgres"}, "parents": []}));
    }
    let entities = Entities::from_json_value(serde_json::Value::Array(ents), None)?;
    let uid =
        |t: &str, id: &str| -> anyhow::Result<EntityUid> { Ok(format!("{t}::\"{id}\"").parse()?) };
    let principals: Vec<EntityUid> = (0..CONNECTIONS)
        .map(|i| uid("Machine", &format!("agent-{i}")))
        .collect::<anyhow::Result<_>>()?;
    let resources: Vec<EntityUid> = (0..CONNECTIONS)
        .map(|i| uid("Connection", &format!("db{i}")))
        .collect::<anyhow::Result<_>>()?;
    let actions: Vec<EntityUid> = ACTIONS
        .iter()
        .map(|(a, _)| uid("Action", a))
        .collect::<anyhow::Result<_>>()?;
    let auth = Authorizer::new();
    let mut n = 0usize;
    Ok(rate(|| {
        n += 1;
        let i = n % CONNECTIONS;
        let a = n % ACTIONS.len();
        let ctx = Context::from_json_value(
            json!({"sql": {"has_where": ACTIONS[a].1, "parsed": true}}),
            None,
        );
        let Ok(ctx) = ctx else { return 0 };
        let Ok(req) = CedarRequest::new(
            principals[i].clone(),
            actions[a].clone(),
            resources[i].clone(),
            ctx,
            None,
        ) else {
            return 0;
        };
        std::hint::black_box(auth.is_authorized(&req, &set, &entities));
        1
    }))
}
