//! An [`Event`] written straight into its canonical JSON (`canonical.rs`'s rules), without
//! building a `serde_json::Value` tree first: the recording task's share of the cost of an
//! event. The fields are written in the byte order of their names, and each is left out
//! exactly when serde would skip it; a test checks the output against
//! `to_canonical(to_value(event))`.

use serde_json::Value;

use crate::canonical::{write_string, write_value};
use crate::event::{Event, Who};

/// `event` in canonical form.
pub(crate) fn event(event: &Event) -> String {
    // Every field named, so that a new one cannot be forgotten here.
    let Event {
        kind,
        outcome,
        who,
        source_ip,
        connection,
        protocol,
        session_id,
        run_id,
        tool_call_id,
        action,
        command,
        policies,
        reason_code,
        detail,
        data,
    } = event;
    let mut out = String::with_capacity(320);
    let mut o = Object::new(&mut out);
    o.opt("action", action.as_deref());
    o.opt("command", command.as_deref());
    o.opt("connection", connection.as_deref());
    if let Some(v) = data {
        o.key("data").value(v);
    }
    o.opt("detail", detail.as_deref());
    o.key("kind").str(kind);
    o.opt("outcome", outcome.as_deref());
    if !policies.is_empty() {
        o.key("policies").strs(policies);
    }
    o.opt("protocol", protocol.as_deref());
    o.opt("reason_code", reason_code.as_deref());
    o.opt("run_id", run_id.as_deref());
    o.opt("session_id", session_id.as_deref());
    o.opt("source_ip", source_ip.as_deref());
    o.opt("tool_call_id", tool_call_id.as_deref());
    if let Some(who) = who {
        o.key("who");
        write_who(who, o.out);
    }
    o.end();
    out
}

fn write_who(who: &Who, out: &mut String) {
    let Who {
        subject,
        issuer,
        client_id,
        groups,
        kind,
        delegation,
        token_id,
    } = who;
    let mut o = Object::new(out);
    o.opt("client_id", client_id.as_deref());
    if !delegation.is_empty() {
        o.key("delegation").strs(delegation);
    }
    if !groups.is_empty() {
        o.key("groups").strs(groups);
    }
    o.key("issuer").str(issuer);
    o.key("kind").str(kind);
    o.key("subject").str(subject);
    o.opt("token_id", token_id.as_deref());
    o.end();
}

/// An object being written: keys must come in byte order (debug builds check).
struct Object<'a> {
    out: &'a mut String,
    first: bool,
    #[cfg(debug_assertions)]
    last: &'static str,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self {
            out,
            first: true,
            #[cfg(debug_assertions)]
            last: "",
        }
    }

    fn key(&mut self, key: &'static str) -> &mut Self {
        #[cfg(debug_assertions)]
        {
            debug_assert!(self.first || self.last.as_bytes() < key.as_bytes());
            self.last = key;
        }
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_string(key, self.out);
        self.out.push(':');
        self
    }

    /// `key: v` when there is a value; nothing otherwise (serde's `skip_serializing_if`).
    fn opt(&mut self, key: &'static str, v: Option<&str>) {
        if let Some(v) = v {
            self.key(key).str(v);
        }
    }

    fn str(&mut self, v: &str) {
        write_string(v, self.out);
    }

    fn strs(&mut self, vs: &[String]) {
        self.out.push('[');
        for (i, v) in vs.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write_string(v, self.out);
        }
        self.out.push(']');
    }

    fn value(&mut self, v: &Value) {
        write_value(v, self.out);
    }

    fn end(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::canonical::to_canonical;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z]{1,8}",
            "\\PC{0,12}",
            "[\\x00-\\x20\"\\\\]{0,6}"
        ]
    }

    fn who() -> impl Strategy<Value = Who> {
        (
            text(),
            text(),
            proptest::option::of(text()),
            proptest::collection::vec(text(), 0..3),
            text(),
            proptest::collection::vec(text(), 0..3),
            proptest::option::of(text()),
        )
            .prop_map(
                |(subject, issuer, client_id, groups, kind, delegation, token_id)| Who {
                    subject,
                    issuer,
                    client_id,
                    groups,
                    kind,
                    delegation,
                    token_id,
                },
            )
    }

    proptest! {
        #[test]
        fn the_direct_encoding_is_the_canonical_encoding(
            kind in text(),
            strings in proptest::collection::vec(proptest::option::of(text()), 11),
            policies in proptest::collection::vec(text(), 0..3),
            who in proptest::option::of(who()),
            data in proptest::option::of(prop_oneof![
                Just(json!(null)),
                Just(json!({"z": 1, "a": [1.5, "x\n"], "m": {"b": true, "a": -3}})),
                text().prop_map(|t| json!({ t.clone(): t })),
            ]),
        ) {
            let s = |i: usize| strings[i].clone();
            let ev = Event {
                kind,
                outcome: s(0),
                who,
                source_ip: s(1),
                connection: s(2),
                protocol: s(3),
                session_id: s(4),
                run_id: s(5),
                tool_call_id: s(6),
                action: s(7),
                command: s(8),
                policies,
                reason_code: s(9),
                detail: s(10),
                data,
            };
            let expect = to_canonical(&serde_json::to_value(&ev).unwrap());
            prop_assert_eq!(super::event(&ev), expect);
        }
    }
}
