//! Disjunctions that keep every row although each part restricts: `a = 1 OR a <> 1`,
//! `a < 5 OR a >= 5`, `active OR NOT active`, `x LIKE 'a%' OR x NOT LIKE 'a%'`.
//!
//! Each part is read as a condition on one subject (the same expression, compared by its
//! parse tree without positions): a boolean truth value, an order against number constants,
//! equality with constants, or any other condition and its negation. When the parts on one
//! subject together hold for every non-null value, the disjunction keeps every row (columns
//! are taken as never null when unsure, as elsewhere in the analysis).

use std::collections::{BTreeMap, BTreeSet};

use pg_query::NodeEnum;
use pg_query::protobuf::{AExprKind, BoolExprType, BoolTestType, NullTestType};
use serde::Serialize;

use crate::visit::{Hooks, visit};

/// A boolean's possible values, as a set: true, false (null is assumed away). A null test
/// on a subject of any type uses the same sets: `IS NOT NULL` passes every value.
const TRUE: u8 = 1;
const FALSE: u8 = 2;

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    /// Which truth values of the subject pass.
    Truth(u8),
    /// The subject compared with a constant: `op` is `=`, `<` or `>`, `holds` false for the
    /// negated operator (`<>`, `>=`, `<=`).
    Order {
        op: char,
        value: Constant,
        holds: bool,
    },
    /// Anything else, and whether it is negated.
    Other { key: String, holds: bool },
}

#[derive(Debug, Clone, PartialEq)]
enum Constant {
    Number(f64),
    Text(String),
    Bool(bool),
}

/// Whether the disjunction of `args`, each read negated when `negated` (a negated AND is
/// such a disjunction, by De Morgan), holds for every row.
pub(super) fn covers_all(args: &[pg_query::Node], negated: bool) -> bool {
    let mut parts = Vec::new();
    for arg in args {
        flatten(arg, negated, &mut parts);
    }
    let mut subjects: BTreeMap<String, Vec<Condition>> = BTreeMap::new();
    for (node, negated) in parts {
        if let Some((subject, condition)) = condition(node, negated) {
            subjects.entry(subject).or_default().push(condition);
        }
    }
    subjects.values().any(|conditions| covers(conditions))
}

/// The parts of a disjunction, nested disjunctions included, with their polarity.
fn flatten<'a>(node: &'a pg_query::Node, negated: bool, out: &mut Vec<(&'a NodeEnum, bool)>) {
    let Some(inner) = node.node.as_ref() else {
        return;
    };
    if let NodeEnum::BoolExpr(expr) = inner {
        let op = BoolExprType::try_from(expr.boolop).unwrap_or(BoolExprType::Undefined);
        match (op, negated) {
            (BoolExprType::OrExpr, false) | (BoolExprType::AndExpr, true) => {
                for arg in &expr.args {
                    flatten(arg, negated, out);
                }
                return;
            }
            (BoolExprType::NotExpr, _) => {
                if let [arg] = expr.args.as_slice() {
                    flatten(arg, !negated, out);
                }
                return;
            }
            _ => {}
        }
    }
    out.push((inner, negated));
}

/// One part as a condition on a subject.
fn condition(node: &NodeEnum, negated: bool) -> Option<(String, Condition)> {
    let truth = |set: u8| Condition::Truth(if negated { (TRUE | FALSE) & !set } else { set });
    match node {
        NodeEnum::ColumnRef(_) => Some((key(node)?, truth(TRUE))),
        NodeEnum::BooleanTest(test) => {
            let set = match BoolTestType::try_from(test.booltesttype).ok()? {
                BoolTestType::IsTrue => TRUE,
                BoolTestType::IsNotTrue | BoolTestType::IsFalse => FALSE,
                BoolTestType::IsNotFalse => TRUE,
                BoolTestType::IsNotUnknown => TRUE | FALSE,
                BoolTestType::IsUnknown | BoolTestType::Undefined => 0,
            };
            Some((key(test.arg.as_deref()?)?, truth(set)))
        }
        NodeEnum::NullTest(test) => {
            let set = if test.nulltesttype == NullTestType::IsNotNull as i32 {
                TRUE | FALSE
            } else {
                0
            };
            Some((key(test.arg.as_deref()?)?, truth(set)))
        }
        NodeEnum::AExpr(expr) => order(expr, negated).or_else(|| {
            let (key, negative) = negatable(expr)?;
            let holds = negative == negated;
            Some((String::new(), Condition::Other { key, holds }))
        }),
        _ => other(node, negated),
    }
}

/// An operator and its negated spelling as one key: `=`/`<>`, `<`/`>=`, `>`/`<=`,
/// `LIKE`/`NOT LIKE` (`~~`/`!~~`), `IN`/`NOT IN`, `BETWEEN`/`NOT BETWEEN`,
/// `IS [NOT] DISTINCT FROM`. The flag is true for the negated spelling.
fn negatable(expr: &pg_query::protobuf::AExpr) -> Option<(String, bool)> {
    use AExprKind as K;
    let op = operator(expr)?;
    let kind = K::try_from(expr.kind).ok()?;
    // BETWEEN and DISTINCT spell their negation in the kind (and BETWEEN in the name).
    let (kind, op, negative) = match kind {
        K::AexprIn => (K::AexprIn, "=", op == "<>"),
        K::AexprBetween | K::AexprBetweenSym | K::AexprDistinct => (kind, "", false),
        K::AexprNotBetween => (K::AexprBetween, "", true),
        K::AexprNotBetweenSym => (K::AexprBetweenSym, "", true),
        K::AexprNotDistinct => (K::AexprDistinct, "", true),
        K::AexprOpAny | K::AexprOpAll => return None,
        // `a <> b` is `NOT a = b`, `a >= b` is `NOT a < b`, `a <= b` is `NOT a > b`.
        K::AexprOp if matches!(op, "<>" | "!=") => (kind, "=", true),
        K::AexprOp if op == ">=" => (kind, "<", true),
        K::AexprOp if op == "<=" => (kind, ">", true),
        kind => (kind, op.trim_start_matches('!'), op.starts_with('!')),
    };
    let (left, right) = (key(expr.lexpr.as_deref()?)?, key(expr.rexpr.as_deref()?)?);
    Some((format!("{}|{op}|{left}|{right}", kind as i32), negative))
}

fn operator(expr: &pg_query::protobuf::AExpr) -> Option<&str> {
    match expr.name.last()?.node.as_ref()? {
        NodeEnum::String(op) => Some(op.sval.as_str()),
        _ => None,
    }
}

/// `subject op constant` (or `constant op subject`) with an order or equality operator;
/// equality with a boolean constant is a truth value.
fn order(expr: &pg_query::protobuf::AExpr, negated: bool) -> Option<(String, Condition)> {
    if expr.kind != AExprKind::AexprOp as i32 {
        return None;
    }
    let op = operator(expr)?;
    let (left, right) = (expr.lexpr.as_deref()?, expr.rexpr.as_deref()?);
    let (subject, value, mirrored) = match (constant(right), constant(left)) {
        (Some(value), _) => (left, value, false),
        (None, Some(value)) => (right, value, true),
        (None, None) => return None,
    };
    let (op, holds) = match (op, mirrored) {
        ("=", _) => ('=', true),
        ("<>" | "!=", _) => ('=', false),
        ("<", false) | (">", true) => ('<', true),
        (">=", false) | ("<=", true) => ('<', false),
        (">", false) | ("<", true) => ('>', true),
        ("<=", false) | (">=", true) => ('>', false),
        _ => return None,
    };
    let holds = holds != negated;
    let condition = match value {
        Constant::Bool(value) if op == '=' => {
            Condition::Truth(if value == holds { TRUE } else { FALSE })
        }
        Constant::Bool(_) => return None,
        value => Condition::Order { op, value, holds },
    };
    Some((key(subject)?, condition))
}

fn other(node: &NodeEnum, negated: bool) -> Option<(String, Condition)> {
    let key = key(node)?;
    Some((
        String::new(),
        Condition::Other {
            key,
            holds: !negated,
        },
    ))
}

fn constant(node: &pg_query::Node) -> Option<Constant> {
    use pg_query::protobuf::a_const::Val;
    let value = match node.node.as_ref()? {
        NodeEnum::AConst(constant) => constant.val.as_ref()?,
        NodeEnum::TypeCast(cast) => return constant(cast.arg.as_deref()?),
        _ => return None,
    };
    match value {
        Val::Ival(integer) => Some(Constant::Number(f64::from(integer.ival))),
        Val::Fval(float) => float.fval.parse().ok().map(Constant::Number),
        Val::Sval(string) => Some(Constant::Text(string.sval.clone())),
        Val::Boolval(boolean) => Some(Constant::Bool(boolean.boolval)),
        Val::Bsval(_) => None,
    }
}

/// Whether the conditions on one subject together hold for every non-null value.
fn covers(conditions: &[Condition]) -> bool {
    let truth = conditions.iter().fold(0, |set, c| match c {
        Condition::Truth(passing) => set | passing,
        _ => set,
    });
    let mut others = BTreeSet::new();
    let complementary = conditions.iter().any(|c| match c {
        Condition::Other { key, holds } => {
            others.insert((key.as_str(), *holds));
            others.contains(&(key.as_str(), !*holds))
        }
        _ => false,
    });
    truth == TRUE | FALSE || complementary || covers_values(conditions)
}

/// Order and equality conditions cover every value when the values that fail all of them
/// form an empty set: the intersection of an interval (from the order conditions), of at
/// most one point (from `<> c`; two different ones leave nothing) and of everything but
/// the `= c` points. Text is judged for equality only (its order is the collation's).
fn covers_values(conditions: &[Condition]) -> bool {
    let mut failing = Failing::default();
    let mut any = false;
    for condition in conditions {
        let Condition::Order { op, value, holds } = condition else {
            continue;
        };
        any = true;
        match (value, op) {
            (Constant::Number(c), _) => failing.number(*op, *c, *holds),
            (Constant::Text(text), '=') => failing.text(text, *holds),
            _ => return false,
        }
    }
    any && failing.is_empty()
}

/// The values for which every condition seen so far is false.
#[derive(Default)]
struct Failing {
    /// Lower and upper bound, each with whether it is excluded: `None` is unbounded.
    lower: Option<(f64, bool)>,
    upper: Option<(f64, bool)>,
    /// The one value allowed by `<> c` conditions (which fail only at `c`), if any.
    point: Option<Constant>,
    /// More than one such value: nothing fails them all.
    no_point: bool,
    /// Values excluded by `= c` conditions.
    excluded: Vec<Constant>,
    numbers: bool,
    texts: bool,
}

impl Failing {
    fn number(&mut self, op: char, c: f64, holds: bool) {
        self.numbers = true;
        match (op, holds) {
            ('=', true) => self.excluded.push(Constant::Number(c)),
            ('=', false) => self.only(Constant::Number(c)),
            // `x < c` fails for x >= c; `x >= c` fails for x < c.
            ('<', true) => self.above(c, false),
            ('<', false) => self.below(c, true),
            ('>', true) => self.below(c, false),
            _ => self.above(c, true),
        }
    }

    fn text(&mut self, text: &str, holds: bool) {
        self.texts = true;
        let value = Constant::Text(text.to_owned());
        if holds {
            self.excluded.push(value);
        } else {
            self.only(value);
        }
    }

    fn only(&mut self, value: Constant) {
        match &self.point {
            Some(point) if *point != value => self.no_point = true,
            _ => self.point = Some(value),
        }
    }

    /// Failing values are at least `c` (beyond it when `strict`).
    fn above(&mut self, c: f64, strict: bool) {
        let tighter = match self.lower {
            None => true,
            Some((lower, lower_strict)) => c > lower || (c == lower && strict && !lower_strict),
        };
        if tighter {
            self.lower = Some((c, strict));
        }
    }

    /// Failing values are at most `c` (below it when `strict`).
    fn below(&mut self, c: f64, strict: bool) {
        let tighter = match self.upper {
            None => true,
            Some((upper, upper_strict)) => c < upper || (c == upper && strict && !upper_strict),
        };
        if tighter {
            self.upper = Some((c, strict));
        }
    }

    fn inside(&self, x: f64) -> bool {
        let above = self
            .lower
            .is_none_or(|(c, strict)| if strict { x > c } else { x >= c });
        let below = self
            .upper
            .is_none_or(|(c, strict)| if strict { x < c } else { x <= c });
        above && below
    }

    fn is_empty(&self) -> bool {
        if self.no_point {
            return true;
        }
        if self.numbers && self.texts {
            return false;
        }
        let excluded = |value: &Constant| self.excluded.contains(value);
        match (&self.point, self.lower, self.upper) {
            (Some(Constant::Number(p)), _, _) => {
                !self.inside(*p) || excluded(&Constant::Number(*p))
            }
            (Some(point), _, _) => excluded(point),
            (None, Some((lower, false)), Some((upper, false))) if lower == upper => {
                excluded(&Constant::Number(lower))
            }
            (None, Some((lower, ls)), Some((upper, us))) => {
                lower > upper || (lower == upper && (ls || us))
            }
            (None, _, _) => false,
        }
    }
}

/// The parse tree of `node` without positions, as a comparable string.
fn key(node: &impl Serialize) -> Option<String> {
    visit(node, Key::default()).ok().map(|key| key.0)
}

/// Builds the key; positions (`location` and the like) are left out, so that the same
/// expression written twice gives the same key.
#[derive(Default)]
struct Key(String, bool);

impl Hooks for Key {
    fn on_struct_start(&mut self, name: &'static str) {
        self.0.push('{');
        self.0.push_str(name);
    }
    fn on_field(&mut self, key: &'static str) {
        self.1 = key.contains("location") || key.starts_with("rexpr_list");
        self.0.push(' ');
        self.0.push_str(key);
        self.0.push(':');
    }
    fn on_struct_end(&mut self) {
        self.0.push('}');
    }
    fn on_str(&mut self, value: &str) {
        self.0.push_str(&format!("{value:?}"));
    }
    fn on_bool(&mut self, value: bool) {
        self.0.push_str(if value { "t" } else { "f" });
    }
    fn on_i32(&mut self, value: i32) {
        if !self.1 {
            self.0.push_str(&value.to_string());
        }
    }
}
