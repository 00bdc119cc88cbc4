//! The only module that calls libpg_query, and the text helpers around it.
//!
//! Every call is wrapped in `catch_unwind`: the Rust side of `pg_query` indexes into the
//! tree it builds, and although PostgreSQL's grammar guarantees those shapes, the gateway
//! must never go down on input, so a panic there becomes a parse failure (fail closed).

use std::panic::{self, AssertUnwindSafe};

use pg_query::protobuf::{RawStmt, Token};

/// The longest parser message kept: the message may quote the offending token, which can be
/// an arbitrarily long literal.
const MAX_ERROR_LEN: usize = 240;

/// Stands for a statement whose literals could not be located, so that nothing of it leaks.
const UNREDACTABLE: &str = "<unredactable>";

/// Parses `sql` with PostgreSQL's grammar, or returns the parser's message.
pub(crate) fn parse(sql: &str) -> Result<pg_query::ParseResult, String> {
    guarded(|| pg_query::parse(sql, 0)).map_err(|error| bounded(&error))
}

/// The lexer's tokens of `sql` (`None` when it rejects the text).
pub(crate) fn scan(sql: &str) -> Option<pg_query::protobuf::ScanResult> {
    guarded(|| pg_query::scan(sql)).ok()
}

/// `pg_query::normalize` (literals become `$n`), falling back to token-level redaction.
pub(crate) fn normalize(text: &str) -> String {
    guarded(|| pg_query::normalize(text)).unwrap_or_else(|_| redact(text))
}

/// Replaces every literal token with `$n` using only the lexer, for input the grammar
/// rejects. Input the lexer rejects too (an unterminated quote) is not echoed at all.
pub(crate) fn redact(text: &str) -> String {
    let Ok(scan) = guarded(|| pg_query::scan(text)) else {
        return UNREDACTABLE.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut param = 0;
    for token in &scan.tokens {
        let is_literal = matches!(
            Token::try_from(token.token),
            Ok(Token::Sconst
                | Token::Usconst
                | Token::Bconst
                | Token::Xconst
                | Token::Iconst
                | Token::Fconst)
        );
        let (Ok(start), Ok(end)) = (usize::try_from(token.start), usize::try_from(token.end))
        else {
            return UNREDACTABLE.to_owned();
        };
        if !is_literal {
            continue;
        }
        let (Some(before), true) = (text.get(copied..start), start <= end) else {
            return UNREDACTABLE.to_owned();
        };
        param += 1;
        out.push_str(before);
        out.push('$');
        out.push_str(&param.to_string());
        copied = end;
    }
    match text.get(copied..) {
        Some(rest) => out.push_str(rest),
        None => return UNREDACTABLE.to_owned(),
    }
    out
}

/// The statement's own text: libpg_query gives its byte range, which starts after leading
/// comments and ends before the `;`; a length of 0 means "to the end of the input".
pub(crate) fn statement_text<'a>(sql: &'a str, raw: &RawStmt) -> &'a str {
    let start = usize::try_from(raw.stmt_location).unwrap_or(0);
    let end = match usize::try_from(raw.stmt_len) {
        Ok(len) if len > 0 => start.saturating_add(len).min(sql.len()),
        _ => sql.len(),
    };
    sql.get(start..end).unwrap_or(sql).trim()
}

fn guarded<T>(call: impl FnOnce() -> pg_query::Result<T>) -> Result<T, String> {
    match panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(message(error)),
        Err(_) => Err("the SQL parser failed on this input".to_owned()),
    }
}

fn message(error: pg_query::Error) -> String {
    match error {
        pg_query::Error::Parse(message) | pg_query::Error::Scan(message) => {
            without_literal(message)
        }
        pg_query::Error::Conversion(_) => "input contains a NUL byte".to_owned(),
        pg_query::Error::Decode(_) => "parse tree too deep to decode".to_owned(),
        other => other.to_string(),
    }
}

/// PostgreSQL quotes the token it stopped at (`at or near "..."`). When that token is a
/// string literal it may carry a secret, so its content is dropped; keywords and names stay,
/// since they are what makes the message useful.
fn without_literal(message: String) -> String {
    const NEAR: &str = " at or near \"";
    let Some(start) = message.find(NEAR).map(|at| at + NEAR.len()) else {
        return message;
    };
    let token = message.get(start..).unwrap_or_default();
    let body = token.trim_start_matches(['E', 'e', 'B', 'b', 'X', 'x', 'N', 'n', 'U', 'u', '&']);
    if body.starts_with(['\'', '$']) {
        format!("{}a literal", message.get(..start - 1).unwrap_or_default())
    } else {
        message
    }
}

fn bounded(message: &str) -> String {
    match message.char_indices().nth(MAX_ERROR_LEN) {
        Some((cut, _)) => format!("{}...", message.get(..cut).unwrap_or_default()),
        None => message.to_owned(),
    }
}
