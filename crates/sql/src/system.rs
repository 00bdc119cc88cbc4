//! Writes aimed at PostgreSQL's own catalogs and views.
//!
//! Only a superuser-like role can write the system catalogs, and some system views turn a
//! write into a call: `pg_settings` has rules that make an UPDATE run `set_config()` (and
//! an INSERT or DELETE do nothing), so `UPDATE pg_settings SET setting = 'off' WHERE name =
//! 'default_transaction_read_only'` is a `SET`. No such write may pass as a plain
//! `sql.update`: [`crate::classify()`] makes it `sql.admin`, and a write to `pg_settings` also
//! tells the door that `client_encoding` may have changed.
//!
//! The name is read as PostgreSQL resolves it without the catalog: a relation in schema
//! `pg_catalog` or `information_schema`, or an unqualified name starting with `pg_`, which
//! PostgreSQL looks up in `pg_catalog` first unless `search_path` places it later. Names are
//! compared without case, which also catches quoted look-alikes (fail closed).

use pg_query::NodeEnum;
use pg_query::protobuf::RangeVar;

/// A write target the gateway treats as the system's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SystemTarget {
    /// A system catalog or view (or a name that resolves there first).
    Catalog,
    /// `pg_settings`, whose UPDATE rule calls `set_config()`.
    Settings,
}

/// The system relation a top-level `TRUNCATE` or `COPY ... FROM` writes, if any: the walk
/// ([`crate::walk`]) finds the targets of INSERT/UPDATE/DELETE/MERGE, which may nest.
pub(crate) fn truncated_or_copied(node: &NodeEnum) -> Option<SystemTarget> {
    let relations: Vec<&RangeVar> = match node {
        NodeEnum::TruncateStmt(stmt) => stmt
            .relations
            .iter()
            .filter_map(|relation| match relation.node.as_ref() {
                Some(NodeEnum::RangeVar(range_var)) => Some(range_var),
                _ => None,
            })
            .collect(),
        NodeEnum::CopyStmt(stmt) if stmt.is_from => stmt.relation.iter().collect(),
        _ => Vec::new(),
    };
    relations
        .into_iter()
        .filter_map(|relation| system_target(&relation.schemaname, &relation.relname))
        .max()
}

const SYSTEM_SCHEMAS: &[&str] = &["pg_catalog", "information_schema"];

/// What the relation `schema.relation` (schema possibly empty) is, when it is the system's.
pub(crate) fn system_target(schema: &str, relation: &str) -> Option<SystemTarget> {
    let system_schema = SYSTEM_SCHEMAS
        .iter()
        .any(|system| schema.eq_ignore_ascii_case(system));
    let unqualified = schema.is_empty();
    let settings = relation.eq_ignore_ascii_case("pg_settings");
    let pg_prefixed = relation
        .get(..3)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("pg_"));
    match (system_schema, unqualified) {
        (true, _) | (false, true) if settings => Some(SystemTarget::Settings),
        (true, _) => Some(SystemTarget::Catalog),
        (false, true) if pg_prefixed => Some(SystemTarget::Catalog),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{SystemTarget, system_target};

    #[test]
    fn system_names() {
        let cases = [
            ("", "pg_settings", Some(SystemTarget::Settings)),
            ("pg_catalog", "pg_settings", Some(SystemTarget::Settings)),
            ("PG_CATALOG", "PG_SETTINGS", Some(SystemTarget::Settings)),
            ("pg_catalog", "pg_class", Some(SystemTarget::Catalog)),
            (
                "information_schema",
                "sql_features",
                Some(SystemTarget::Catalog),
            ),
            ("", "pg_authid", Some(SystemTarget::Catalog)),
            ("", "Pg_Foo", Some(SystemTarget::Catalog)),
            ("public", "pg_settings", None),
            ("public", "pg_foo", None),
            ("", "orders", None),
            ("", "pg", None),
            ("", "é", None),
        ];
        for (schema, relation, want) in cases {
            assert_eq!(system_target(schema, relation), want, "{schema}.{relation}");
        }
    }
}
