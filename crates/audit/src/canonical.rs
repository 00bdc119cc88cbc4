//! The canonical JSON encoding that audit hashes are computed over.
//!
//! Written out explicitly rather than borrowed from `serde_json::to_string`, because the
//! latter follows the map's iteration order, and any crate in the build may switch
//! `serde_json` to insertion order (`preserve_order`). The rules (also in the crate docs):
//!
//! - objects: keys sorted by their UTF-8 bytes, recursively; `{"k":v,...}`;
//! - arrays in their order; no whitespace anywhere;
//! - strings: `"` and `\` escaped, `\b \f \n \r \t` for those controls, other characters
//!   below U+0020 as `\u00xx` (lowercase hex), everything else as literal UTF-8 — the same
//!   output as `serde_json`;
//! - numbers as `serde_json` prints them; `true`, `false`, `null`.

use std::fmt::Write as _;

use serde_json::Value;

/// `value` in canonical form.
pub fn to_canonical(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(value, &mut out);
    out
}

pub(crate) fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        // Writing into a String cannot fail.
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

pub(crate) fn write_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Every byte that needs escaping is ASCII, so the runs between them are whole UTF-8
    // sequences and are copied as they are.
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::to_canonical;
    use serde_json::json;

    fn check(value: serde_json::Value, expect: &str) {
        assert_eq!(to_canonical(&value), expect);
    }

    #[test]
    fn sorts_keys_recursively_without_whitespace() {
        check(
            json!({"b": 1, "a": {"z": [3, {"y": null, "x": true}], "c": "s"}}),
            r#"{"a":{"c":"s","z":[3,{"x":true,"y":null}]},"b":1}"#,
        );
        // Byte order, not locale order: uppercase sorts before lowercase.
        check(
            json!({"b": 1, "B": 2, "é": 3, "e": 4}),
            r#"{"B":2,"b":1,"e":4,"é":3}"#,
        );
    }

    #[test]
    fn numbers_and_literals() {
        // Numbers are printed by serde_json (ryu for floats, hence "1e+20").
        let value = json!([0, -7, 1.5, 1e20, u64::MAX, i64::MIN, false, null]);
        check(
            value.clone(),
            "[0,-7,1.5,1e+20,18446744073709551615,-9223372036854775808,false,null]",
        );
        assert_eq!(to_canonical(&value), serde_json::to_string(&value).unwrap());
    }

    #[test]
    fn strings_escape_like_serde_json() {
        let samples = [
            "plain",
            "quote \" backslash \\ slash /",
            "controls \u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f} del \u{7f}",
            "unicode é 日本 \u{2028} 🦀",
        ];
        for s in samples {
            assert_eq!(
                to_canonical(&json!(s)),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    proptest::proptest! {
        /// Strings are written exactly as serde_json writes them, whatever they hold.
        #[test]
        fn strings_match_serde_json(s in "(?s).{0,40}", ctl in proptest::collection::vec(0u8..0x20, 0..4)) {
            let mut text = s.clone();
            for c in ctl {
                text.push(char::from(c));
                text.push_str(&s);
            }
            let mut out = String::new();
            super::write_string(&text, &mut out);
            proptest::prop_assert_eq!(out, serde_json::to_string(&text).unwrap());
        }
    }
}
