//! A rough throughput measurement, not a pass/fail timing test: run it with
//! `cargo test -p portcullis-policy --release --test decision_speed -- --ignored --nocapture`.
//!
//! 100 policies in the shapes real configurations use (per-connection grants, group-wide
//! grants, label conditions, forbids on facts), decided on one thread.

// Test helpers report a broken fixture by panicking with its name.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use portcullis_identity::{Principal, PrincipalKind};
use portcullis_policy::{ConnectionInfo, PolicyEngine, PolicySource, Request, Target};
use serde_json::json;

fn policies() -> String {
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!(
            "@id(\"read-{i}\") @mask(\"default\")\n\
             permit (principal in Group::\"team{t}\", action in Action::\"sql.read\", \
             resource == Connection::\"db{i}\");\n",
            t = i % 10
        ));
    }
    for i in 0..30 {
        text.push_str(&format!(
            "@id(\"write-{i}\") @approval(\"dba\")\n\
             permit (principal in Group::\"team{t}\", action in Action::\"sql.write\", \
             resource == Connection::\"db{i}\")\n\
             when {{ resource.hasTag(\"environment\") && resource.getTag(\"environment\") == \"prod\" }};\n",
            t = i % 10
        ));
    }
    for i in 0..20 {
        text.push_str(&format!(
            "@id(\"http-{i}\")\n\
             permit (principal in Group::\"web{i}\", action in Action::\"http.read\", resource)\n\
             when {{ context.http.path like \"/api/{i}/*\" }};\n"
        ));
    }
    text.push_str(
        "@id(\"agents-connect\") permit (principal in Group::\"agents\", action == Action::\"connect\", resource);\n\
         @id(\"agents-read\") permit (principal in Group::\"agents\", action in Action::\"sql.read\", resource);\n\
         @id(\"no-unbounded\") @reason(\"no WHERE\")\n\
         forbid (principal, action in [Action::\"sql.update\", Action::\"sql.delete\"], resource) when { !context.sql.has_where };\n\
         @id(\"no-unparsed\") forbid (principal, action, resource) when { context has sql && !context.sql.parsed };\n\
         @id(\"big\") forbid (principal, action, resource) when { context has sql && context.sql.statement_count > 10 };\n\
         @id(\"office\") forbid (principal in Group::\"daytime\", action, resource) when { context.now.hour < 6 };\n\
         @id(\"ips\") forbid (principal in Group::\"internal\", action, resource) when { !context.source_ip.isInRange(ip(\"10.0.0.0/8\")) };\n\
         @id(\"tables\") forbid (principal, action == Action::\"sql.select\", resource) when { context.sql.tables.contains(\"secrets\") };\n\
         @id(\"admins\") permit (principal in Group::\"admins\", action in Action::\"admin\", resource == Gateway::\"self\");\n\
         @id(\"k8s\") permit (principal in Group::\"sre\", action in Action::\"k8s.read\", resource) when { context.k8s.namespace != \"kube-system\" };\n",
    );
    text
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn decisions_per_second() {
    let engine = PolicyEngine::compile(&[PolicySource {
        name: "bench.cedar".into(),
        text: policies(),
    }])
    .unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(engine.len(), 100);
    let principal = Principal {
        subject: "agent-7".into(),
        issuer: "https://idp.example".into(),
        client_id: Some("agent-7".into()),
        groups: vec!["agents".into(), "team3".into(), "internal".into()],
        kind: PrincipalKind::Machine,
        delegation: Vec::new(),
        token_id: Some("jti".into()),
        expires_at: 1_700_000_300,
        valid_until: 1_700_000_300,
        issued_at: None,
    };
    let conn = ConnectionInfo {
        name: "db13".into(),
        kind: "postgres".into(),
        labels: BTreeMap::from([("environment".into(), "prod".into())]),
    };
    let other = ConnectionInfo {
        name: "warehouse".into(),
        kind: "postgres".into(),
        labels: BTreeMap::new(),
    };
    let select = json!({"sql": {"tables": ["orders", "customers"], "has_where": true}});
    let update = json!({"sql": {"tables": ["orders"], "has_where": true, "modifies_data": true}});
    let requests = [
        ("sql.select", &conn, &select),
        ("sql.update", &conn, &update),
        ("sql.select", &other, &select),
        ("connect", &other, &serde_json::Value::Null),
    ];
    // `vary`: 0 = repeated requests, 1 = distinct facts (each decision evaluated by Cedar),
    // 2 = distinct principals too (nothing remembered: the entity store is rebuilt as well).
    let decide_all = |n: usize, vary: u8| {
        let start = Instant::now();
        for i in 0..n {
            let (action, c, facts) = requests[i % requests.len()];
            let distinct;
            let facts = if vary >= 1 && action.starts_with("sql.") {
                distinct = json!({"sql": {"tables": [format!("t{i}")], "has_where": true}});
                &distinct
            } else {
                facts
            };
            let mut who = principal.clone();
            if vary >= 2 {
                who.subject = format!("agent-{i}");
            }
            let req = Request {
                principal: &who,
                action,
                target: Target::Connection(c),
                facts,
                now_unix: 1_700_000_000 + i as i64,
                source_ip: Some([10, 0, 0, 7].into()),
            };
            black_box(engine.decide(black_box(&req)));
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    let cold = decide_all(40_000, 2);
    let facts = decide_all(40_000, 1);
    let warm = decide_all(400_000, 0);
    println!(
        "100 policies, one thread, decisions/s: {cold:.0} cold (nothing remembered), \
         {facts:.0} new facts per command (entity store remembered), {warm:.0} repeated"
    );
}
