//! The data of the masking-bypass test (`masking_bypass.toml`): the sensitive rows, the
//! cases, the transports that can run them, and the fixture built from the rows.

use std::fmt;

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

use crate::decode::Needle;

/// A client path through the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// psql, each step a `-c` (one Query message), one process for every case.
    PsqlC,
    /// psql reading one script with every case.
    PsqlScript,
    /// psycopg 3, named prepared statements, text results.
    PsycopgText,
    /// psycopg 3, unnamed statements, binary results.
    PsycopgBinary,
    /// asyncpg: binary results, `statement_cache_size=0` (as behind pgbouncer): each query an
    /// unnamed statement, parsed and described, then parsed again to run.
    Asyncpg,
    /// tokio-postgres `simple_query`.
    TokioSimple,
    /// tokio-postgres `query` (extended protocol, binary results), `copy_out`, portals.
    TokioExtended,
    /// `POST /v1/exec`: the whole case as one command.
    Exec,
    /// The MCP tool `query_appdb`: the whole case as one command.
    Mcp,
    /// A raw TCP frontend that records every byte.
    Raw,
}

impl Transport {
    pub const ALL: [Transport; 10] = [
        Transport::PsqlC,
        Transport::PsqlScript,
        Transport::PsycopgText,
        Transport::PsycopgBinary,
        Transport::Asyncpg,
        Transport::TokioSimple,
        Transport::TokioExtended,
        Transport::Exec,
        Transport::Mcp,
        Transport::Raw,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Transport::PsqlC => "psql-c",
            Transport::PsqlScript => "psql-f",
            Transport::PsycopgText => "psycopg-text",
            Transport::PsycopgBinary => "psycopg-bin",
            Transport::Asyncpg => "asyncpg",
            Transport::TokioSimple => "tokio-simple",
            Transport::TokioExtended => "tokio-ext",
            Transport::Exec => "exec",
            Transport::Mcp => "mcp",
            Transport::Raw => "raw",
        }
    }

    fn parse(name: &str) -> Result<Transport> {
        Transport::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .with_context(|| format!("unknown transport {name:?}"))
    }

    /// Whether this client path can run `step`.
    fn runs(self, step: &Step) -> bool {
        use Transport::*;
        match step {
            Step::Sql { .. } => true,
            Step::Copy { .. } => !matches!(self, PsycopgBinary | TokioSimple),
            Step::Cursor(_) => {
                matches!(self, PsycopgText | PsycopgBinary | Asyncpg | TokioExtended)
            }
            Step::Portal(_) => self == Raw,
        }
    }

    /// An identifier for SQL: `{transport}` in a case's SQL becomes this, so that what crosses
    /// sessions (NOTIFY channels) stays with the client that asked for it.
    pub fn ident(self) -> String {
        self.name().replace('-', "_")
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One step of a case.
#[derive(Debug, Clone)]
pub enum Step {
    Sql {
        sql: String,
        cleanup: bool,
    },
    Copy {
        source: String,
        format: String,
    },
    /// A driver-level cursor over this query.
    Cursor(String),
    /// Describe + Execute of this portal, unbound.
    Portal(String),
}

impl Step {
    /// The SQL a client sends for this step (`None` for a bare portal Execute).
    pub fn sql(&self) -> Option<String> {
        match self {
            Step::Sql { sql, .. } | Step::Cursor(sql) => Some(sql.clone()),
            Step::Copy { source, format } => {
                Some(format!("COPY {source} TO STDOUT (FORMAT {format})"))
            }
            Step::Portal(_) => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    sql: Option<String>,
    #[serde(default)]
    cleanup: bool,
    copy: Option<String>,
    format: Option<String>,
    cursor: Option<String>,
    portal: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSpec {
    id: String,
    class: String,
    sql: Option<String>,
    steps: Option<Vec<StepSpec>>,
    #[serde(default)]
    only: Vec<String>,
    #[serde(default)]
    gaps: Vec<String>,
}

/// The bypass classes, in report order.
pub const CLASSES: [&str; 8] = [
    "direct",
    "error",
    "notice",
    "cursor",
    "copy",
    "returning",
    "side",
    "reversible",
];

#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub class: &'static str,
    pub steps: Vec<Step>,
    only: Vec<Transport>,
    /// Where a leak is a known gap (class `reversible` only).
    pub gaps: Vec<Transport>,
}

impl Case {
    pub fn runs_on(&self, t: Transport) -> bool {
        (self.only.is_empty() || self.only.contains(&t)) && self.steps.iter().all(|s| t.runs(s))
    }

    /// The steps' SQL for `t` (`{transport}` filled in).
    pub fn steps_for(&self, t: Transport) -> Vec<Step> {
        let fill = |s: &String| s.replace("{transport}", &t.ident());
        self.steps
            .iter()
            .map(|s| match s {
                Step::Sql { sql, cleanup } => Step::Sql {
                    sql: fill(sql),
                    cleanup: *cleanup,
                },
                Step::Copy { source, format } => Step::Copy {
                    source: fill(source),
                    format: format.clone(),
                },
                Step::Cursor(q) => Step::Cursor(fill(q)),
                Step::Portal(p) => Step::Portal(p.clone()),
            })
            .collect()
    }

    /// The case as one command (exec, MCP): its statements joined, cleanup steps left out
    /// (the session ends with the command).
    pub fn one_command(&self, t: Transport) -> String {
        self.steps_for(t)
            .iter()
            .filter(|s| !matches!(s, Step::Sql { cleanup: true, .. }))
            .filter_map(Step::sql)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn step(spec: StepSpec) -> Result<Step> {
    let step = match spec {
        StepSpec {
            sql: Some(sql),
            copy: None,
            format: None,
            cursor: None,
            portal: None,
            cleanup,
        } => Step::Sql { sql, cleanup },
        StepSpec {
            copy: Some(source),
            format: Some(format),
            sql: None,
            cursor: None,
            portal: None,
            cleanup: false,
        } => Step::Copy { source, format },
        StepSpec {
            cursor: Some(q),
            sql: None,
            copy: None,
            format: None,
            portal: None,
            cleanup: false,
        } => Step::Cursor(q),
        StepSpec {
            portal: Some(p),
            sql: None,
            copy: None,
            format: None,
            cursor: None,
            cleanup: false,
        } => Step::Portal(p),
        other => bail!("a step is one of sql, copy+format, cursor, portal: {other:?}"),
    };
    Ok(step)
}

fn case(spec: CaseSpec) -> Result<Case> {
    let class = CLASSES
        .into_iter()
        .find(|c| *c == spec.class)
        .with_context(|| format!("{}: unknown class {:?}", spec.id, spec.class))?;
    let steps = match (spec.sql, spec.steps) {
        (Some(sql), None) => vec![Step::Sql {
            sql,
            cleanup: false,
        }],
        (None, Some(steps)) => steps.into_iter().map(step).collect::<Result<_>>()?,
        _ => bail!("{}: give `sql` or `steps`", spec.id),
    };
    let only = spec
        .only
        .iter()
        .map(|t| Transport::parse(t))
        .collect::<Result<Vec<_>>>()?;
    let mut case = Case {
        id: spec.id,
        class,
        steps,
        only,
        gaps: Vec::new(),
    };
    ensure!(
        spec.gaps.is_empty() || class == "reversible",
        "{}: only reversible cases have known gaps",
        case.id
    );
    case.gaps = if spec.gaps == ["*"] {
        Transport::ALL
            .into_iter()
            .filter(|t| case.runs_on(*t))
            .collect()
    } else {
        spec.gaps
            .iter()
            .map(|t| Transport::parse(t))
            .collect::<Result<_>>()?
    };
    ensure!(
        Transport::ALL.iter().any(|t| case.runs_on(*t)),
        "{}: no transport runs it",
        case.id
    );
    Ok(case)
}

/// A row of `members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: i32,
    pub name: String,
    pub email: String,
    pub card: String,
    pub ssn: String,
    pub phone: String,
    pub api_key: String,
    pub iban: String,
    pub jwt: Option<String>,
}

impl Member {
    /// The `note` column: the JWT in a sentence, when the member has one.
    pub fn note(&self) -> String {
        match &self.jwt {
            Some(jwt) => format!("session token {jwt}"),
            None => "no secrets here".into(),
        }
    }

    /// The sensitive values, labelled `column#id`.
    pub fn needles(&self) -> Vec<Needle> {
        let mut out = vec![
            Needle::new(format!("email#{}", self.id), &self.email, false),
            Needle::new(format!("card#{}", self.id), &self.card, true),
            Needle::new(format!("ssn#{}", self.id), &self.ssn, true),
            Needle::new(format!("phone#{}", self.id), &self.phone, true),
            Needle::new(format!("api_key#{}", self.id), &self.api_key, false),
            Needle::new(format!("iban#{}", self.id), &self.iban, false),
        ];
        if let Some(jwt) = &self.jwt {
            out.push(Needle::new(format!("jwt#{}", self.id), jwt, false));
        }
        out
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    member: Vec<Member>,
    case: Vec<CaseSpec>,
}

pub struct Data {
    pub members: Vec<Member>,
    pub cases: Vec<Case>,
}

/// Reads `masking_bypass.toml`.
pub fn load() -> Result<Data> {
    let mut file: File = portcullis_integration_tests::test_toml("masking_bypass.toml")?;
    // Vendor-format keys are split with ‹› in the file so that secret scanners pass it.
    for m in &mut file.member {
        for v in [
            &mut m.email,
            &mut m.card,
            &mut m.ssn,
            &mut m.phone,
            &mut m.api_key,
            &mut m.iban,
        ] {
            *v = v.replace(['‹', '›'], "");
        }
    }
    let cases = file
        .case
        .into_iter()
        .map(case)
        .collect::<Result<Vec<_>>>()?;
    let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ensure!(ids.len() == cases.len(), "duplicate case ids");
    Ok(Data {
        members: file.member,
        cases,
    })
}

/// The fixture, run as superuser in `appdb`: `members` holding the sensitive rows, tables
/// whose constraints quote a failing row or key, and functions that raise their argument.
pub fn fixture_sql(members: &[Member]) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let rows: Vec<String> = members
        .iter()
        .map(|m| {
            format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, {})",
                m.id,
                q(&m.name),
                q(&m.email),
                q(&m.card),
                q(&m.ssn),
                q(&m.phone),
                q(&m.api_key),
                q(&m.iban),
                q(&m.note())
            )
        })
        .collect();
    format!(
        "{FIXTURE_SCHEMA}\nINSERT INTO members VALUES\n{};\n{FIXTURE_AFTER}",
        rows.join(",\n")
    )
}

const FIXTURE_SCHEMA: &str = r#"
CREATE TABLE members (
    id int PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    card text NOT NULL,
    ssn text NOT NULL,
    phone text NOT NULL,
    api_key text NOT NULL,
    iban text NOT NULL,
    note text
);
-- The free-text column is marked sensitive by its comment (no name rule covers "note"), so
-- masking follows it through any expression like a named one.
COMMENT ON COLUMN members.note IS 'free text; may hold tokens. portcullis:sensitive=JWT';
"#;

const FIXTURE_AFTER: &str = r#"
CREATE TABLE strict_t (
    id int PRIMARY KEY,
    email text NOT NULL UNIQUE,
    card text NOT NULL CHECK (card !~ '^3'),
    ssn text
);
INSERT INTO strict_t SELECT id, email, card, ssn FROM members WHERE id <= 2;
CREATE TABLE strict_ref (email text REFERENCES strict_t (email));
ALTER TABLE members OWNER TO app;
ALTER TABLE strict_t OWNER TO app;
ALTER TABLE strict_ref OWNER TO app;

-- A NOTICE (and a WARNING) quoting the argument in message, detail and hint.
CREATE FUNCTION leak_notice(v text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'checking %', v USING DETAIL = 'value: ' || v, HINT = 'hint: ' || v;
    RETURN 'ok';
END $$;
CREATE FUNCTION leak_warning(v text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING 'warning about %', v;
    RETURN 'ok';
END $$;
-- An EXCEPTION quoting the argument in message, detail and hint.
CREATE FUNCTION leak_raise(v text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rejected %', v USING DETAIL = 'value: ' || v, HINT = 'hint: ' || v;
END $$;
-- An error whose message is innocent (division by zero): the argument is only in the
-- CONTEXT, which quotes the dynamic statement that failed.
CREATE FUNCTION leak_context(v text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE r int;
BEGIN
    EXECUTE 'SELECT 1 / 0 WHERE ' || quote_literal(v) || ' IS NOT NULL' INTO r;
    RETURN r;
END $$;
"#;
