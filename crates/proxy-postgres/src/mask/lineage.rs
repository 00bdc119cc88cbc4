//! Masking that follows the data: a result column made of a sensitive column is replaced whole,
//! whatever expression made it (`reverse(card)`, `'x' || ssn`, `substr(email, 1, 3)`), from
//! the statement's lineage (`portcullis_sql::Lineage`). A column is sensitive when a name rule
//! of the masker covers its name or its `table.column`; a whole row (`t::text`,
//! `row_to_json(t)`) is taken as sensitive, since its columns are not known here. What no
//! sensitive column flows into is left to value detection, as before.

use std::sync::Arc;

use portcullis_masking::{ColumnPlan, Counts, Entity, Masked, Masker};
use portcullis_sql::{CopyFormat, Lineage, Sources};

use crate::catalog::Catalog;

/// How deep view columns are followed into the views under them.
const MAX_VIEW_DEPTH: usize = 8;

/// A statement's lineage and the catalog it was decided with (which follows view columns to
/// the columns under them, and tells a whole row's columns).
#[derive(Debug, Clone)]
pub(crate) struct Followed {
    pub(crate) lineage: Arc<Lineage>,
    pub(crate) catalog: Option<Arc<Catalog>>,
}

/// The whole-value plan for a result column made of `sources`, when one of them is sensitive.
pub(crate) fn derived_plan(
    masker: &Masker,
    catalog: Option<&Catalog>,
    sources: &Sources,
) -> Option<ColumnPlan> {
    derived(masker, catalog, sources, 0)
}

fn derived(
    masker: &Masker,
    catalog: Option<&Catalog>,
    sources: &Sources,
    depth: usize,
) -> Option<ColumnPlan> {
    for c in &sources.columns {
        if let Some(plan) = column(masker, catalog, c.table.as_deref(), &c.column, depth) {
            return Some(plan);
        }
    }
    for t in &sources.whole_rows {
        // A whole row is as sensitive as its most sensitive column; one whose columns are
        // not known is taken as sensitive.
        let relations = catalog.map(|c| c.relations(t)).unwrap_or_default();
        if relations.is_empty() {
            return Some(masker.whole(Entity::GenericSecret));
        }
        for rel in relations {
            for col in &rel.columns {
                if let Some(plan) = column(masker, catalog, Some(t), col, depth) {
                    return Some(plan);
                }
            }
        }
    }
    None
}

/// Whether column `name` of `table` is sensitive: a name rule covers it by its name or its
/// `table.column`, or it is a view column made of a sensitive column.
fn column(
    masker: &Masker,
    catalog: Option<&Catalog>,
    table: Option<&str>,
    name: &str,
    depth: usize,
) -> Option<ColumnPlan> {
    let whole = |name: &str| match masker.column(name, "") {
        plan @ ColumnPlan::Whole { .. } => Some(plan),
        _ => None,
    };
    if let Some(plan) = whole(name) {
        return Some(plan);
    }
    let t = table?;
    let bare = t.rsplit_once('.').map_or(t, |(_, t)| t);
    if let Some(plan) = whole(&format!("{t}.{name}")).or_else(|| {
        (bare != t)
            .then(|| whole(&format!("{bare}.{name}")))
            .flatten()
    }) {
        return Some(plan);
    }
    let catalog = catalog?;
    for rel in catalog.relations(t) {
        if let Some(label) = rel.sensitive.get(name) {
            // Marked by its comment: the entity it names, else a generic secret.
            let entity = label
                .as_deref()
                .and_then(|l| l.parse::<Entity>().ok())
                .unwrap_or(Entity::GenericSecret);
            return Some(masker.whole(entity));
        }
    }
    if depth >= MAX_VIEW_DEPTH {
        return None;
    }
    for rel in catalog.relations(t) {
        let Some(lineage) = rel.view.as_ref().and_then(|v| v.lineage()) else {
            continue;
        };
        let Some(i) = rel.columns.iter().position(|c| c == name) else {
            continue;
        };
        let names: Vec<&str> = rel.columns.iter().map(String::as_str).collect();
        let fields = lineage.fields(&names);
        if let Some(plan) = fields
            .get(i)
            .and_then(|s| derived(masker, Some(catalog), s, depth + 1))
        {
            return Some(plan);
        }
    }
    None
}

/// Whether column `column` of `table` is sensitive itself (a rule, a label, a view column
/// made of one); `None` for either means the text does not say, which is not sensitive.
pub(crate) fn column_sensitive(
    masker: &Masker,
    catalog: Option<&Catalog>,
    table: Option<&str>,
    column_name: Option<&str>,
) -> bool {
    column_name.is_some_and(|c| column(masker, catalog, table, c, 0).is_some())
}

/// The derived plan of each result column, from the names the server gave them.
pub(crate) fn column_plans(
    masker: &Masker,
    followed: &Followed,
    names: &[&str],
) -> Vec<Option<ColumnPlan>> {
    let catalog = followed.catalog.as_deref();
    followed
        .lineage
        .fields(names)
        .iter()
        .map(|s| derived_plan(masker, catalog, s))
        .collect()
}

/// Whether the statement reads a sensitive column anywhere, so that its errors and notices
/// may quote a value made of one (`reverse(email)::int` fails quoting the reversed address).
pub(crate) fn reads_sensitive(masker: &Masker, followed: &Followed) -> bool {
    derived_plan(masker, followed.catalog.as_deref(), &followed.lineage.reads).is_some()
}

/// A text or CSV COPY row (one CopyData, its newline included) with the fields `plans` marks
/// replaced whole; `None` when nothing changed. NULLs stay NULL.
pub(crate) fn mask_copy_row(
    masker: &Masker,
    format: &CopyFormat,
    row: &[u8],
    plans: &[Option<ColumnPlan>],
    counts: &mut Counts,
) -> Option<Vec<u8>> {
    let spans = split_row(format, row);
    let mut out = Vec::with_capacity(row.len());
    let mut last = 0;
    let mut changed = false;
    for (i, &(start, end)) in spans.iter().enumerate() {
        let Some(Some(plan)) = plans.get(i) else {
            continue;
        };
        let field = row.get(start..end).unwrap_or_default();
        let null = if format.csv {
            field.is_empty()
        } else {
            field == b"\\N"
        };
        if null {
            continue;
        }
        let replacement: Vec<u8> = match masker.mask_value(plan, field, counts) {
            Masked::Replaced(r) => encode_field(format, &r),
            Masked::Null if format.csv => Vec::new(),
            Masked::Null => b"\\N".to_vec(),
            Masked::Unchanged(_) => continue,
        };
        out.extend_from_slice(row.get(last..start).unwrap_or_default());
        out.extend_from_slice(&replacement);
        last = end;
        changed = true;
    }
    if !changed {
        return None;
    }
    out.extend_from_slice(row.get(last..).unwrap_or_default());
    Some(out)
}

/// How many fields a text or CSV COPY row has.
pub(crate) fn field_count(format: &CopyFormat, row: &[u8]) -> usize {
    split_row(format, row).len()
}

/// The byte ranges of a row's fields (the newline excluded).
fn split_row(format: &CopyFormat, row: &[u8]) -> Vec<(usize, usize)> {
    let end = row
        .strip_suffix(b"\n")
        .map_or(row.len(), |r| r.strip_suffix(b"\r").unwrap_or(r).len());
    let mut spans = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut quoted = false;
    while i < end {
        let b = row[i];
        if format.csv {
            if quoted && b == format.escape && row.get(i + 1) == Some(&format.quote) {
                i += 2;
                continue;
            }
            if b == format.quote {
                quoted = !quoted;
            } else if b == format.delimiter && !quoted {
                spans.push((start, i));
                start = i + 1;
            }
        } else if b == b'\\' {
            i += 2;
            continue;
        } else if b == format.delimiter {
            spans.push((start, i));
            start = i + 1;
        }
        i += 1;
    }
    spans.push((start, end.max(start)));
    spans
}

/// A replacement written as a field of the format (replacements hold no quotes, backslashes
/// or newlines, but may hold the delimiter).
fn encode_field(format: &CopyFormat, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 2);
    if format.csv {
        out.push(format.quote);
        for &b in value {
            if b == format.quote || b == format.escape {
                out.push(format.escape);
            }
            out.push(b);
        }
        out.push(format.quote);
    } else {
        for &b in value {
            match b {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\\' => out.extend_from_slice(b"\\\\"),
                _ if b == format.delimiter => out.extend_from_slice(&[b'\\', b]),
                _ => out.push(b),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_masking::ProfileSpec;

    fn masker() -> Masker {
        Masker::new(&[&ProfileSpec::builtin_default()], None).unwrap()
    }

    fn lineage(sql: &str) -> Followed {
        let c = portcullis_sql::classify(sql, &portcullis_sql::Options::default());
        Followed {
            lineage: c.statements[0].lineage().unwrap(),
            catalog: None,
        }
    }

    #[test]
    fn expressions_of_sensitive_columns_are_masked_whole() {
        let m = masker();
        let l = lineage("SELECT id, reverse(email), upper(name), ssn || 'x' AS s FROM members");
        let plans = column_plans(&m, &l, &["id", "reverse", "upper", "s"]);
        assert!(plans[0].is_none() && plans[2].is_none(), "{plans:?}");
        assert!(matches!(
            plans[1],
            Some(ColumnPlan::Whole {
                entity: Entity::Email,
                ..
            })
        ));
        assert!(matches!(
            plans[3],
            Some(ColumnPlan::Whole {
                entity: Entity::UsSsn,
                ..
            })
        ));
        assert!(reads_sensitive(
            &m,
            &lineage("SELECT id FROM members WHERE email LIKE 'a%'")
        ));
        assert!(!reads_sensitive(
            &m,
            &lineage("SELECT id, name FROM members")
        ));
    }

    /// The README's example, as the default profile answers it.
    #[test]
    fn the_readme_example_answers_as_it_says() {
        let m = masker();
        let l = lineage("SELECT id, reverse(email) AS r, substr(card, 1, 8) FROM customers");
        let plans = column_plans(&m, &l, &["id", "r", "substr"]);
        let shown: Vec<String> = [
            ("1", &plans[0]),
            ("moc.elpmaxe@ada", &plans[1]),
            ("41111111", &plans[2]),
        ]
        .iter()
        .map(|(v, p)| match p {
            None => (*v).to_owned(),
            Some(p) => match m.mask_value(p, v.as_bytes(), &mut Counts::default()) {
                Masked::Replaced(r) => String::from_utf8(r).unwrap(),
                other => format!("{other:?}"),
            },
        })
        .collect();
        assert_eq!(shown, ["1", "[EMAIL]", "[CREDIT_CARD]"]);
    }

    #[test]
    fn copy_rows_have_their_sensitive_fields_replaced() {
        let m = masker();
        let plan = Some(m.whole(Entity::Email));
        let text = lineage("COPY (SELECT 1) TO STDOUT").lineage.copy.unwrap();
        let out = mask_copy_row(
            &m,
            &text,
            b"1\tmoc.elpmaxe@ada\t\\N\n",
            &[None, plan, plan],
            &mut Counts::default(),
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "1\t[EMAIL]\t\\N\n");
        let csv = lineage("COPY (SELECT 1) TO STDOUT (FORMAT csv)")
            .lineage
            .copy
            .unwrap();
        let out = mask_copy_row(
            &m,
            &csv,
            b"1,\"a,\"\"b\",,x\n",
            &[None, plan, plan, None],
            &mut Counts::default(),
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "1,\"[EMAIL]\",,x\n");
    }
}
