use crate::context::{self, Common};
use cedar_policy::*;
use portcullis_identity::{Principal, PrincipalKind};
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;

#[test]
#[ignore]
fn prof() {
    let p = Principal {
        subject: "a".into(),
        issuer: "i".into(),
        client_id: None,
        groups: vec!["agents".into(), "team3".into()],
        kind: PrincipalKind::Machine,
        delegation: vec![],
        token_id: None,
        expires_at: 0,
        issued_at: None,
    };
    let n = 20000;
    let common = Common {
        principal: &p,
        now_unix: 1_700_000_000,
        source_ip: Some([10, 0, 0, 1].into()),
    };
    let facts = json!({"sql": {"tables": ["orders", "customers"], "has_where": true}});
    let fam = context::family_for("sql.select");
    let t = Instant::now();
    for _ in 0..n {
        black_box(context::build("sql.select", fam, &facts, &common).unwrap());
    }
    println!("context: {:?}/op", t.elapsed() / n);
    let common2 = Common {
        principal: &p,
        now_unix: 1_700_000_000,
        source_ip: None,
    };
    let t = Instant::now();
    for _ in 0..n {
        black_box(context::build("connect", None, &serde_json::Value::Null, &common2).unwrap());
    }
    println!("context connect: {:?}/op", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        black_box(RestrictedExpression::new_ip("10.0.0.1"));
    }
    println!("new_ip: {:?}/op", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        black_box(
            Context::from_pairs([("a".to_string(), RestrictedExpression::new_long(1))]).unwrap(),
        );
    }
    println!("ctx 1 long: {:?}/op", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        black_box(
            Context::from_pairs([("a".to_string(), RestrictedExpression::new_ip("10.0.0.1"))])
                .unwrap(),
        );
    }
    println!("ctx 1 ip: {:?}/op", t.elapsed() / n);
    let types = crate::schema::Types::new().unwrap();
    let schema = crate::schema::load().unwrap();
    let ae = schema.action_entities().unwrap();
    let auid: EntityUid = r#"Action::"sql.select""#.parse().unwrap();
    let aent = ae.get(&auid).unwrap().clone();
    let conn = crate::request::ConnectionInfo {
        name: "db".into(),
        kind: "pg".into(),
        labels: [("environment".to_string(), "prod".to_string())].into(),
    };
    let target = crate::request::Target::Connection(&conn);
    let t = Instant::now();
    for _ in 0..n {
        let pu = crate::entities::principal_uid(&types, &p);
        let tu = crate::entities::target_uid(&types, &target);
        black_box(crate::entities::build(&types, &p, pu, &target, tu, &aent).unwrap());
    }
    println!("entities: {:?}/op", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        black_box(
            Entity::new_with_tags(
                auid.clone(),
                [(
                    "k".to_string(),
                    RestrictedExpression::new_string("x".into()),
                )],
                [],
                [],
            )
            .unwrap(),
        );
    }
    println!("entity 1 attr: {:?}/op", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        black_box(Entities::from_entities([aent.clone()], None).unwrap());
    }
    println!("entities 1: {:?}/op", t.elapsed() / n);
}
