//! The one way into a literal's value, so that a classification knows whether it read one.
//!
//! Two statements that differ only in their literals (`WHERE id = 1`, `WHERE id = 2`) parse
//! to the same tree but for the values of its `AConst` nodes. A classification that never
//! read such a value is therefore the classification of every statement of that shape, and
//! the door may answer the next one from it ([`crate::shape`]). One that did read one (a
//! tautology `1 = 1`, a `set_config('name', ...)`, a `SET`, a transaction mode) may not.
//! Every read of a constant's value goes through [`value`] (or calls [`read`] where a visit
//! reports it), which notes it for the classification under way on this thread; a test
//! keeps the rest of the crate from touching `a_const::Val` directly.

use std::cell::Cell;

use pg_query::protobuf::AConst;
use pg_query::protobuf::a_const::Val;

thread_local! {
    static READ: Cell<bool> = const { Cell::new(false) };
}

/// A constant's value, as written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Literal<'a> {
    Int(i32),
    Float(&'a str),
    Bool(bool),
    Str(&'a str),
    Bits,
}

/// The value of `constant` (`None` for NULL), noting that the classification read it. A
/// value of the kind `kind` does not return is not read: the kind of a constant is the kind
/// of its token, which is part of the shape, and `true`/`false` are keywords.
pub(crate) fn value<'a>(
    constant: &'a AConst,
    kind: fn(&Literal<'_>) -> bool,
) -> Option<Literal<'a>> {
    let literal = match constant.val.as_ref()? {
        Val::Ival(integer) => Literal::Int(integer.ival),
        Val::Fval(float) => Literal::Float(&float.fval),
        Val::Boolval(boolean) => Literal::Bool(boolean.boolval),
        Val::Sval(string) => Literal::Str(&string.sval),
        Val::Bsval(_) => Literal::Bits,
    };
    if !kind(&literal) {
        return None;
    }
    if !matches!(literal, Literal::Bool(_)) {
        read();
    }
    Some(literal)
}

/// Any kind of constant, for [`value`].
pub(crate) fn any(_: &Literal<'_>) -> bool {
    true
}

/// String constants only, for [`value`].
pub(crate) fn string(literal: &Literal<'_>) -> bool {
    matches!(literal, Literal::Str(_))
}

/// Number constants only, for [`value`].
pub(crate) fn number(literal: &Literal<'_>) -> bool {
    matches!(literal, Literal::Int(_) | Literal::Float(_))
}

/// The constants a boolean is read from: `true`/`false`, and strings.
pub(crate) fn boolean(literal: &Literal<'_>) -> bool {
    matches!(literal, Literal::Bool(_) | Literal::Str(_))
}

/// Notes that the classification under way used a literal's value.
pub(crate) fn read() {
    READ.set(true);
}

/// Runs `f` and says whether it read a literal's value.
pub(crate) fn tracked<T>(f: impl FnOnce() -> T) -> (T, bool) {
    let before = READ.replace(false);
    let out = f();
    let read = READ.replace(before);
    (out, read)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Only this module may match on a constant's value; everything else asks [`super::value`].
    #[test]
    fn only_this_module_reads_constant_values() {
        fn scan(dir: &Path, offenders: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    scan(&path, offenders);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && path.file_name().is_some_and(|n| n != "literal.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    if text.contains("a_const::") || text.contains(".val.as_ref()") {
                        offenders.push(path.display().to_string());
                    }
                }
            }
        }
        let mut offenders = Vec::new();
        scan(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut offenders,
        );
        assert!(
            offenders.is_empty(),
            "constant values read outside literal.rs: {offenders:?}"
        );
    }
}
