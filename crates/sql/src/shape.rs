//! A statement's shape: its tokens with the literals' values left out, from one pass of
//! PostgreSQL's own lexer. Statements of one shape parse to the same tree but for the values
//! of their constants, so a classification that read no constant's value
//! ([`crate::literal`]) is the classification of every statement of its shape, and the door
//! answers the next one from it without parsing (DESIGN.md §5, issue [11]).
//!
//! Only a single SELECT, INSERT, UPDATE, DELETE or MERGE is shared this way: the statements
//! whose classification comes from the tree alone. Settings, transaction modes, `DO` bodies
//! and everything else are classified per text.

use pg_query::protobuf::Token;

use crate::model::Classification;
use crate::options::Options;
use crate::pg;

/// Separates the tokens of a key; PostgreSQL rejects NUL in query text, so no token holds it.
const SEP: char = '\0';
/// Marks a literal in a key (its kind follows).
const LITERAL: char = '\u{1}';

/// The shape of a single-statement input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    key: String,
    /// The statement's own text: from its first token to the end of the input or to its
    /// `;`, trimmed (as the classifier cuts it).
    text: (usize, usize),
    /// Byte ranges of the literals inside the text.
    literals: Vec<(usize, usize)>,
    /// The highest `$n` the text uses: literals are numbered after it.
    params: u32,
}

impl Shape {
    /// The shape of `sql`, when it is one statement the lexer reads (`None` for several
    /// statements, none, or text the lexer rejects).
    pub fn of(sql: &str) -> Option<Shape> {
        let scan = pg::scan(sql)?;
        let mut key = String::with_capacity(sql.len() + 16);
        let mut literals = Vec::new();
        let (mut params, mut first, mut end, mut ended) = (0u32, None, sql.len(), false);
        // The two tokens before this one, for the literals whose value the grammar reads.
        let mut before = [Token::Nul, Token::Nul];
        for token in &scan.tokens {
            let start = usize::try_from(token.start).ok()?;
            let stop = usize::try_from(token.end).ok()?;
            let kind = Token::try_from(token.token).ok()?;
            if matches!(kind, Token::SqlComment | Token::CComment) {
                continue;
            }
            if ended {
                // Anything after the `;` is a second statement.
                return None;
            }
            if kind == Token::Ascii59 {
                ended = true;
                end = start;
                continue;
            }
            first.get_or_insert(start);
            let text = sql.get(start..stop)?;
            // Values the parser itself reads, so that they can make the input fail to parse
            // or parse to another type, stay in the key: the escapes of a `U&'...'` string
            // and its `UESCAPE '...'` character, and the precision of `float(p)`.
            let parser_reads = kind == Token::Usconst
                || before[1] == Token::Uescape
                || (before == [Token::FloatP, Token::Ascii40] && kind == Token::Iconst);
            before = [before[1], kind];
            match kind {
                Token::Sconst | Token::Bconst | Token::Xconst | Token::Iconst | Token::Fconst
                    if !parser_reads =>
                {
                    key.push(LITERAL);
                    key.push(match kind {
                        Token::Sconst => 's',
                        Token::Bconst => 'b',
                        Token::Xconst => 'x',
                        Token::Iconst => 'i',
                        _ => 'f',
                    });
                    literals.push((start, stop));
                }
                Token::Param => {
                    params = params.max(text.get(1..)?.parse().ok()?);
                    key.push_str(text);
                }
                _ => key.push_str(text),
            }
            key.push(SEP);
        }
        let first = first?;
        let whole = sql.get(first..end)?;
        let trimmed = whole.trim_end();
        Some(Shape {
            key,
            text: (first, first + trimmed.len()),
            literals,
            params,
        })
    }

    /// What statements of this shape share.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The statement's own text.
    pub fn text<'a>(&self, sql: &'a str) -> &'a str {
        sql.get(self.text.0..self.text.1).unwrap_or(sql)
    }

    /// The text with every literal replaced by `$n`, numbered after the text's own
    /// parameters, in the order they are written.
    pub fn normalized(&self, sql: &str) -> String {
        let (start, end) = self.text;
        let mut out = String::with_capacity(end.saturating_sub(start));
        let mut copied = start;
        for (n, &(from, to)) in (self.params + 1..).zip(&self.literals) {
            out.push_str(sql.get(copied..from).unwrap_or_default());
            out.push('$');
            out.push_str(&n.to_string());
            copied = to;
        }
        out.push_str(sql.get(copied..end).unwrap_or_default());
        out
    }

    /// The classification of `sql` (of this shape) from `template`, the classification of
    /// another statement of the shape that [`classify_shaped`] said may be shared.
    pub fn instantiate(&self, template: &Classification, sql: &str) -> Classification {
        let mut classification = template.clone();
        for statement in &mut classification.statements {
            statement.text = self.text(sql).to_owned();
            statement.normalized = self.normalized(sql);
        }
        classification
    }
}

/// Classifies `sql`, whose shape is `shape` (from [`Shape::of`]), and says whether the
/// classification holds for every statement of that shape: a single SELECT, INSERT, UPDATE,
/// DELETE or MERGE that parsed and whose classification read no literal's value.
pub fn classify_shaped(sql: &str, opts: &Options, shape: Option<&Shape>) -> (Classification, bool) {
    // Parsed once, whatever the answer: `shape` (or its absence) is what `classify` would
    // compute from the same text.
    let parsed = match pg::parse(sql) {
        Ok(parsed) => parsed,
        Err(error) => return (crate::classify::unparsed(sql, error), false),
    };
    let shareable_kind = shape.is_some()
        && matches!(
            parsed.protobuf.stmts.as_slice(),
            [raw] if matches!(
                raw.stmt.as_ref().and_then(|n| n.node.as_ref()),
                Some(
                    pg_query::NodeEnum::SelectStmt(_)
                        | pg_query::NodeEnum::InsertStmt(_)
                        | pg_query::NodeEnum::UpdateStmt(_)
                        | pg_query::NodeEnum::DeleteStmt(_)
                        | pg_query::NodeEnum::MergeStmt(_)
                )
            )
        );
    let (classification, read) =
        crate::literal::tracked(|| crate::classify::from_parsed(sql, &parsed, opts, shape));
    (classification, shareable_kind && !read)
}

#[cfg(test)]
mod tests {
    use super::Shape;

    fn key(sql: &str) -> Option<String> {
        Shape::of(sql).map(|s| s.key().to_owned())
    }

    #[test]
    fn literals_of_one_kind_share_a_key_and_other_tokens_do_not() {
        assert_eq!(
            key("SELECT 1 FROM t WHERE a = 'x'"),
            key("SELECT  2 FROM t /* c */ WHERE a = 'yy' ;")
        );
        assert_eq!(key("SELECT 1"), key("  -- c\n SELECT 42 ;"));
        assert_ne!(key("SELECT 1"), key("SELECT 1.5"));
        assert_ne!(key("SELECT 1"), key("SELECT '1'"));
        assert_ne!(key("SELECT 1"), key("SELECT $1"));
        assert_ne!(key("SELECT a FROM t"), key("SELECT b FROM t"));
        assert_ne!(key("SELECT float(1)"), key("SELECT float(2)"));
        assert_ne!(key("SELECT U&'a'"), key("SELECT U&'b'"));
        assert_eq!(key("SELECT 1; SELECT 2"), None);
        assert_eq!(key("SELECT 'unterminated"), None);
        assert_eq!(key("-- nothing"), None);
    }

    #[test]
    fn the_literal_free_text_numbers_literals_after_the_parameters() {
        let sql = "  SELECT $2, 'a''b', 3 FROM t /* c */ ; ";
        let shape = Shape::of(sql).unwrap();
        assert_eq!(shape.text(sql), "SELECT $2, 'a''b', 3 FROM t /* c */");
        assert_eq!(shape.normalized(sql), "SELECT $2, $3, $4 FROM t /* c */");
    }
}
