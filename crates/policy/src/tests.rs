//! Crate-internal checks that the Rust side and the shipped schema agree.

use cedar_policy::{EntityId, EntityUid, Request};
use portcullis_identity::{Actor, Principal, PrincipalKind};
use serde_json::{Value, json};

use crate::context::{self, Common};
use crate::decision::{Decision, DenyCode};
use crate::memo::Observed;
use crate::schema::{self, Types};

fn principal() -> Principal {
    Principal {
        subject: "bot".into(),
        issuer: "https://idp.example".into(),
        client_id: Some("bot-client".into()),
        groups: vec!["agents".into()],
        kind: PrincipalKind::Machine,
        delegation: vec![Actor {
            subject: "alice".into(),
            client_id: None,
            issuer: None,
        }],
        token_id: None,
        expires_at: 2_000_000_000,
        valid_until: 2_000_000_000,
        issued_at: None,
    }
}

/// Every concrete action's context, built from defaults and from a full set of facts, must
/// pass Cedar's own request validation against the schema.
#[test]
fn contexts_conform_to_schema() {
    let schema = schema::load().unwrap();
    let types = Types::new().unwrap();
    let p = principal();
    let common = Common {
        principal: &p,
        now_unix: 1_700_000_000,
        source_ip: context::IpExprs::new().get(None),
    };
    let mut checked = 0;
    for action in schema.actions() {
        let name = action.id().unescaped();
        let Some(resources) = schema.resources_for_action(action) else {
            continue;
        };
        let Some(resource_type) = resources.into_iter().next() else {
            continue; // an action group
        };
        let family = context::family_for(name);
        let facts = family.map_or(Value::Null, |f| json!({ f.key: {} }));
        let ctx = context::build(name, family, &facts, &common).unwrap();
        let resource = EntityUid::from_type_name_and_id(resource_type.clone(), EntityId::new("x"));
        let who = EntityUid::from_type_name_and_id(types.machine.clone(), EntityId::new("bot"));
        Request::new(who, action.clone(), resource, ctx, Some(&schema))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        checked += 1;
    }
    // connect, 12 sql, 7 http, 9 k8s, 2 ssh, mcp, data.unmask, 4 admin.
    assert_eq!(checked, 37);
}

#[test]
fn full_sql_facts_conform() {
    let schema = schema::load().unwrap();
    let types = Types::new().unwrap();
    let p = principal();
    let common = Common {
        principal: &p,
        now_unix: -1,
        source_ip: context::IpExprs::new().get(Some("::ffff:10.1.2.3".parse().unwrap())),
    };
    let facts = json!({"sql": {
        "parsed": false, "has_where": true, "statement_count": 3,
        "tables": ["a", "b"], "functions": ["now"], "modifies_data": true, "kinds": ["select"],
        "user_functions": ["public.f"], "function_owners": ["app"], "writing_functions": ["public.f"], "opaque_reads": true,
        "triggers": ["public.t.audit"], "rules": ["public.t.r"]
    }});
    let family = context::family_for("sql.select");
    let ctx = context::build("sql.select", family, &facts, &common).unwrap();
    let action: EntityUid = r#"Action::"sql.select""#.parse().unwrap();
    let resource = EntityUid::from_type_name_and_id(types.connection.clone(), EntityId::new("db"));
    let who = EntityUid::from_type_name_and_id(types.human.clone(), EntityId::new("bob"));
    Request::new(who, action, resource, ctx, Some(&schema)).unwrap();
}

#[test]
fn observed_inputs_are_found_conservatively() {
    let none = Observed::scan([Some("permit (principal, action, resource);")]);
    assert!(!none.time && !none.unix && !none.source_ip);
    let hour = Observed::scan([Some(
        "forbid (principal, action, resource) when { context.now.hour < 8 };",
    )]);
    assert!(hour.time && !hour.unix);
    let unix = Observed::scan([None, Some("permit (principal, action, resource);")]);
    assert!(
        unix.time && unix.unix && unix.source_ip,
        "a policy without text reads everything"
    );
    let ip = Observed::scan([Some("when { context.source_ip.isLoopback() }")]);
    assert!(ip.source_ip && !ip.time);
    // A mention in a string still counts: over-including an input only costs memo hits.
    let quoted = Observed::scan([Some(r#"when { principal.client_id == "unixbox" }"#)]);
    assert!(quoted.unix);
}

#[test]
fn decisions_serialize_with_their_outcome_and_code() {
    let approval = Decision::RequireApproval {
        policies: vec!["p".into()],
        reviewers: vec!["dba".into()],
        approvals: 2,
        masks: vec![],
        max_rows: None,
    };
    let value = serde_json::to_value(&approval).unwrap();
    assert_eq!(value["outcome"], approval.outcome());
    assert_eq!(value["approvals"], 2);
    for code in [
        DenyCode::Forbidden,
        DenyCode::NoPermit,
        DenyCode::PolicyError,
        DenyCode::UnknownAction,
        DenyCode::ContextInvalid,
    ] {
        let deny = Decision::deny(code, "r".into(), "h".into());
        let value = serde_json::to_value(&deny).unwrap();
        assert_eq!(value["outcome"], "deny");
        assert_eq!(value["code"], code.code());
        assert_eq!(deny.policies(), [] as [String; 0]);
    }
    let allow = Decision::Allow {
        policies: vec![],
        masks: vec!["default".into()],
        max_rows: None,
    };
    let value = serde_json::to_value(&allow).unwrap();
    assert_eq!(value["outcome"], "allow");
    assert!(value.get("max_rows").is_none(), "no limit, no field");
}

/// `may_permit` reads scopes only: a conditional permit counts, a forbid does not remove it,
/// and a principal outside every permit's scope (or an action no permit names) gets `false`.
#[test]
fn may_permit_reads_scopes_only() {
    use crate::engine::PolicyEngine;
    use crate::request::{ConnectionInfo, Target};
    let text = r#"
        permit (principal in Group::"agents", action == Action::"sql.select", resource);
        permit (principal in Group::"writers", action in Action::"sql.write", resource == Connection::"app")
            when { context.sql.has_where };
        permit (principal == Machine::"ops", action == Action::"sql.admin", resource);
        forbid (principal, action == Action::"sql.delete", resource);
    "#;
    let engine = PolicyEngine::compile(&[crate::compile::PolicySource {
        name: "t.cedar".into(),
        text: text.into(),
    }])
    .unwrap();
    let app = ConnectionInfo {
        name: "app".into(),
        kind: "postgres".into(),
        labels: Default::default(),
    };
    let other = ConnectionInfo {
        name: "other".into(),
        ..app.clone()
    };
    let mut p = principal();
    assert!(engine.may_permit(&p, "sql.select", &Target::Connection(&app)));
    assert!(!engine.may_permit(&p, "sql.update", &Target::Connection(&app)));
    p.groups.push("writers".into());
    assert!(engine.may_permit(&p, "sql.update", &Target::Connection(&app)));
    assert!(
        engine.may_permit(&p, "sql.delete", &Target::Connection(&app)),
        "forbids aside"
    );
    assert!(!engine.may_permit(&p, "sql.update", &Target::Connection(&other)));
    assert!(!engine.may_permit(&p, "sql.admin", &Target::Connection(&app)));
    p.subject = "ops".into();
    assert!(engine.may_permit(&p, "sql.admin", &Target::Connection(&other)));
    assert!(!engine.may_permit(&p, "no.such", &Target::Connection(&app)));
}

/// Conditions on the principal and the target are evaluated (the quickstart's writes only on
/// dev connections); a condition that reads the context cannot be known at connect, so it
/// counts as allowing.
#[test]
fn may_permit_evaluates_conditions_that_do_not_read_the_context() {
    use crate::engine::PolicyEngine;
    use crate::request::{ConnectionInfo, Target};
    let text = r#"
        permit (principal in Group::"agents", action in Action::"sql.write", resource is Connection)
            when { resource.hasTag("environment") && resource.getTag("environment") == "dev" };
        permit (principal in Group::"agents", action == Action::"sql.ddl", resource is Connection)
            when { context has sql && context.sql.has_where };
        permit (principal in Group::"agents", action == Action::"sql.admin", resource is Connection)
            when { principal.issuer == "https://other.example" };
    "#;
    let engine = PolicyEngine::compile(&[crate::compile::PolicySource {
        name: "t.cedar".into(),
        text: text.into(),
    }])
    .unwrap();
    let conn = |env: Option<&str>| ConnectionInfo {
        name: "c".into(),
        kind: "postgres".into(),
        labels: env
            .map(|e| [("environment".to_owned(), e.to_owned())].into())
            .unwrap_or_default(),
    };
    let (dev, prod, bare) = (conn(Some("dev")), conn(Some("prod")), conn(None));
    let p = principal();
    assert!(engine.may_permit(&p, "sql.update", &Target::Connection(&dev)));
    assert!(!engine.may_permit(&p, "sql.update", &Target::Connection(&prod)));
    assert!(!engine.may_permit(&p, "sql.update", &Target::Connection(&bare)));
    assert!(
        engine.may_permit(&p, "sql.ddl", &Target::Connection(&prod)),
        "reads the context"
    );
    assert!(
        !engine.may_permit(&p, "sql.admin", &Target::Connection(&prod)),
        "another issuer"
    );
}

/// A session's memo answers exactly as the engine does, per action, facts and (when a policy
/// reads it) the hour; a memo filled by one engine is emptied when another asks.
#[test]
fn session_memo_answers_as_the_engine_and_forgets_on_reload() {
    use crate::engine::PolicyEngine;
    use crate::memo::SessionMemo;
    use crate::request::{ConnectionInfo, Request as Req, Target};
    let compile = |text: &str| {
        PolicyEngine::compile(&[crate::compile::PolicySource {
            name: "t.cedar".into(),
            text: text.into(),
        }])
        .unwrap()
    };
    let permit = r#"permit (principal, action in Action::"sql.write", resource)
        when { context.sql.has_where };"#;
    let by_hour = r#"permit (principal, action in Action::"sql.write", resource)
        when { context.sql.has_where && context.now.hour < 12 };"#;
    let app = ConnectionInfo {
        name: "app".into(),
        kind: "postgres".into(),
        labels: Default::default(),
    };
    let p = principal();
    let with_where = json!({"sql": {"has_where": true}});
    let without = json!({"sql": {"has_where": false}});
    let ask = |facts: &'static Value, action: &'static str, now_unix: i64| Req {
        principal: Box::leak(Box::new(p.clone())),
        action,
        target: Target::Connection(Box::leak(Box::new(app.clone()))),
        facts,
        now_unix,
        source_ip: None,
    };
    let with_where: &'static Value = Box::leak(Box::new(with_where));
    let without: &'static Value = Box::leak(Box::new(without));
    let mut memo = SessionMemo::new();
    let first = compile(permit);
    for _ in 0..2 {
        for (facts, action) in [(with_where, "sql.update"), (without, "sql.update")] {
            for facts_action in [(facts, action), (facts, "sql.delete")] {
                let req = ask(facts_action.0, facts_action.1, 0);
                assert_eq!(first.decide_in(&mut memo, &req), first.decide(&req));
            }
        }
    }
    assert_eq!(memo.len(), 4, "one entry per action and facts");
    assert!(matches!(
        first.decide_in(&mut memo, &ask(with_where, "sql.update", 0)),
        Decision::Allow { .. }
    ));
    // A reload: the new engine's answer, not the memo's.
    let second = compile("forbid (principal, action, resource);");
    let req = ask(with_where, "sql.update", 0);
    assert!(matches!(
        second.decide_in(&mut memo, &req),
        Decision::Deny { .. }
    ));
    assert_eq!(memo.len(), 1);
    // A policy that reads the hour: the memo keys the hour, so 11:00 and 13:00 differ.
    let third = compile(by_hour);
    let morning = ask(with_where, "sql.update", 11 * 3600);
    let afternoon = ask(with_where, "sql.update", 13 * 3600);
    assert!(matches!(
        third.decide_in(&mut memo, &morning),
        Decision::Allow { .. }
    ));
    assert!(matches!(
        third.decide_in(&mut memo, &afternoon),
        Decision::Deny { .. }
    ));
    assert!(matches!(
        third.decide_in(&mut memo, &morning),
        Decision::Allow { .. }
    ));
}
