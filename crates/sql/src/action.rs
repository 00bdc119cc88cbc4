//! The Cedar action ids a SQL statement can map to, and how nested writes combine.

/// One Cedar action id per statement. `as_str` gives the exact id the policy refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Select,
    CopyTo,
    Explain,
    Insert,
    Update,
    Delete,
    Merge,
    CopyFrom,
    Ddl,
    Admin,
    Transaction,
    Session,
}

impl Action {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Select => "sql.select",
            Self::CopyTo => "sql.copy_to",
            Self::Explain => "sql.explain",
            Self::Insert => "sql.insert",
            Self::Update => "sql.update",
            Self::Delete => "sql.delete",
            Self::Merge => "sql.merge",
            Self::CopyFrom => "sql.copy_from",
            Self::Ddl => "sql.ddl",
            Self::Admin => "sql.admin",
            Self::Transaction => "sql.transaction",
            Self::Session => "sql.session",
        }
    }

    /// Whether running the statement can change anything in the database. Only plain reads,
    /// plans, transaction control and session settings cannot; everything else, `sql.admin`
    /// included, is treated as modifying so that read-only policies fail closed.
    pub(crate) const fn modifies_data(self) -> bool {
        !matches!(
            self,
            Self::Select | Self::CopyTo | Self::Explain | Self::Transaction | Self::Session
        )
    }
}

/// A data-modifying statement found anywhere in a tree, weakest first so that `max` picks
/// the strongest (delete > update > merge > insert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum WriteKind {
    Insert,
    Merge,
    Update,
    Delete,
}

impl WriteKind {
    pub(crate) const fn action(self) -> Action {
        match self {
            Self::Insert => Action::Insert,
            Self::Merge => Action::Merge,
            Self::Update => Action::Update,
            Self::Delete => Action::Delete,
        }
    }

    /// Whether a WHERE clause bounds this kind of write (MERGE and INSERT have no such notion).
    pub(crate) const fn has_where_notion(self) -> bool {
        matches!(self, Self::Update | Self::Delete)
    }
}

/// The public action ids, for callers that match on them.
pub mod ids {
    use super::Action;

    pub const SELECT: &str = Action::Select.as_str();
    pub const COPY_TO: &str = Action::CopyTo.as_str();
    pub const EXPLAIN: &str = Action::Explain.as_str();
    pub const INSERT: &str = Action::Insert.as_str();
    pub const UPDATE: &str = Action::Update.as_str();
    pub const DELETE: &str = Action::Delete.as_str();
    pub const MERGE: &str = Action::Merge.as_str();
    pub const COPY_FROM: &str = Action::CopyFrom.as_str();
    pub const DDL: &str = Action::Ddl.as_str();
    pub const ADMIN: &str = Action::Admin.as_str();
    pub const TRANSACTION: &str = Action::Transaction.as_str();
    pub const SESSION: &str = Action::Session.as_str();
}
