//! `describe_<connection>`: the tables and columns the caller may read. The catalog is read
//! through the door like any query (decided, masked, recorded, audited); each table is then
//! shown only if the policy would let the caller `SELECT * FROM` it, asked as a preview
//! ([`portcullis_pipeline::Pipeline::preview`]): a preview grants nothing, and every real
//! read still gets its own audited decision.

use portcullis_pipeline::{
    Ask, Described, DescribedColumn, DescribedTable, ExecRefusal, ExecRequest, Origin, ToolCall,
    ToolSpec,
};
use portcullis_policy::{Decision, Target};
use secrecy::ExposeSecret;

use super::client::Limit;
use super::{PgExec, failed};

/// The catalog question: every column of every ordinary table, view, materialized view,
/// foreign and partitioned table outside the system schemas, that the upstream role can see.
const CATALOG_SQL: &str = "SELECT n.nspname, c.relname, a.attname, \
     pg_catalog.format_type(a.atttypid, a.atttypmod) \
     FROM pg_catalog.pg_attribute a \
     JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND a.attnum > 0 AND NOT a.attisdropped \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_%' \
     AND pg_catalog.has_table_privilege(c.oid, 'SELECT') \
     ORDER BY 1, 2, a.attnum";

/// At most this many columns are read from the catalog (`truncated` says when there were more).
const MAX_COLUMNS: usize = 20_000;

/// `describe_<connection>`, which takes no arguments.
pub(super) fn tool(connection: &str, kind: &str) -> ToolSpec {
    ToolSpec {
        name: format!("describe_{connection}"),
        title: format!("Describe {connection}"),
        description: format!(
            "List the tables (with their columns and types) you may read on the {kind} \
             connection `{connection}`. Call it before writing a query."
        ),
        input_schema: serde_json::json!({
            "type": "object", "properties": {}, "additionalProperties": false
        }),
        read_only: true,
        call: ToolCall::Describe,
    }
}

pub(super) async fn describe(exec: &PgExec, req: ExecRequest) -> Result<Described, ExecRefusal> {
    let limit = Limit {
        rows: MAX_COLUMNS,
        bytes: usize::MAX,
    };
    let (a, session_id, decisions) = exec.answer(&req, CATALOG_SQL, limit).await?;
    if let Some(e) = a.error {
        return Err(failed(&e, a.refusal, session_id, decisions));
    }
    let mut tables: Vec<DescribedTable> = Vec::new();
    for row in a.rows {
        let [Some(schema), Some(table), Some(column), Some(kind)] =
            <[Option<String>; 4]>::try_from(row).unwrap_or([None, None, None, None])
        else {
            continue;
        };
        let column = DescribedColumn { name: column, kind };
        match tables.last_mut() {
            Some(t) if t.schema == schema && t.name == table => t.columns.push(column),
            _ => tables.push(DescribedTable {
                schema,
                name: table,
                columns: vec![column],
            }),
        }
    }

    // Only what the policy would let this caller read.
    let origin = Origin {
        source_ip: Some(req.peer.ip().to_canonical()),
        protocol: "postgres",
        session_id: session_id.clone(),
        ..Origin::default()
    };
    let pipeline = exec.door.engine.pipeline();
    let principal = pipeline
        .authenticate(req.token.expose_secret(), &origin)
        .await
        .map_err(ExecRefusal::from)?;
    let Some(target) = exec.door.targets.get(&req.connection) else {
        return Err(ExecRefusal::unknown_connection(&req.connection));
    };
    // The catalog as the door decides with it (read when the describe session started), so
    // a view over a table the caller may not read is not offered either.
    let catalog = target.catalog.snapshot();
    let total = tables.len();
    let mut shown = Vec::with_capacity(total);
    for t in tables {
        // As an agent would write it: qualified, and unqualified for `public` (policies often
        // name tables without their schema). Shown only if neither form is denied.
        let mut forms = vec![format!("{}.{}", quote(&t.schema), quote(&t.name))];
        if t.schema == "public" {
            forms.push(quote(&t.name));
        }
        let readable = forms.iter().all(|name| {
            let sql = format!("SELECT * FROM {name}");
            let classified = exec.door.cache.classify(&sql);
            let (Some(statement), Some(facts)) = (
                classified.classification.statements.first(),
                classified.facts.first(),
            ) else {
                return false;
            };
            let resolved = catalog
                .as_ref()
                .map(|c| c.resolve(statement, &target.target.safe_functions));
            let (action, facts) = match &resolved {
                Some(r) => (
                    r.action.unwrap_or(statement.action),
                    std::borrow::Cow::Owned(r.facts(facts)),
                ),
                None => (statement.action, std::borrow::Cow::Borrowed(facts)),
            };
            let ask = Ask {
                action,
                target: Target::Connection(&target.target.info),
                facts: &facts,
                command: None,
            };
            !matches!(
                pipeline.preview(&principal, &ask, &origin),
                Decision::Deny { .. }
            )
        });
        if readable {
            shown.push(t);
        }
    }
    Ok(Described {
        session_id,
        hidden: total - shown.len(),
        tables: shown,
        truncated: a.truncated,
        decisions,
    })
}

/// An SQL identifier, double-quoted.
fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}
