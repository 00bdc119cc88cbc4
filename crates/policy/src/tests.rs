//! Crate-internal checks that the Rust side and the shipped schema agree.

use cedar_policy::{EntityId, EntityUid, Request};
use portcullis_identity::{Actor, Principal, PrincipalKind};
use serde_json::{Value, json};

use crate::context::{self, Common};
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
        source_ip: None,
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
    // connect, 12 sql, 7 http, 9 k8s, 2 ssh, mcp, data.unmask, 3 admin.
    assert_eq!(checked, 36);
}

#[test]
fn full_sql_facts_conform() {
    let schema = schema::load().unwrap();
    let types = Types::new().unwrap();
    let p = principal();
    let common = Common {
        principal: &p,
        now_unix: -1,
        source_ip: Some("::ffff:10.1.2.3".parse().unwrap()),
    };
    let facts = json!({"sql": {
        "parsed": false, "has_where": true, "statement_count": 3,
        "tables": ["a", "b"], "functions": ["now"], "modifies_data": true, "kinds": ["select"]
    }});
    let family = context::family_for("sql.select");
    let ctx = context::build("sql.select", family, &facts, &common).unwrap();
    let action: EntityUid = r#"Action::"sql.select""#.parse().unwrap();
    let resource = EntityUid::from_type_name_and_id(types.connection.clone(), EntityId::new("db"));
    let who = EntityUid::from_type_name_and_id(types.human.clone(), EntityId::new("bob"));
    Request::new(who, action, resource, ctx, Some(&schema)).unwrap();
}
