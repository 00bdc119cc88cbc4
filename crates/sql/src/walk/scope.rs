//! CTE name resolution with PostgreSQL's scoping rules.
//!
//! A relation name without a schema refers to a CTE when an enclosing query level defines a
//! CTE of that name visible from where the name sits: from the query body always; from inside
//! a CTE body only for an earlier CTE of the same `WITH`, or any of them under
//! `WITH RECURSIVE`. Because `WITH` is serialized after the FROM clause that uses it, names
//! are collected with their chain of enclosing levels and resolved once the walk is over.

/// A query level that can own a `WITH`, and which of its CTE bodies the walk is inside.
#[derive(Debug, Clone, Copy)]
struct Level {
    id: usize,
    in_cte: Option<usize>,
}

#[derive(Debug)]
struct CteDef {
    level: usize,
    index: usize,
    name: String,
}

/// An unqualified relation name: a table unless a CTE claims it.
#[derive(Debug)]
struct Reference {
    name: String,
    chain: Vec<Level>,
}

#[derive(Debug, Default)]
pub(super) struct Scopes {
    levels: Vec<Level>,
    next_id: usize,
    ctes: Vec<CteDef>,
    recursive: Vec<usize>,
    references: Vec<Reference>,
}

impl Scopes {
    /// Entering a SELECT/INSERT/UPDATE/DELETE/MERGE.
    pub(super) fn enter(&mut self) {
        self.levels.push(Level {
            id: self.next_id,
            in_cte: None,
        });
        self.next_id += 1;
    }

    pub(super) fn exit(&mut self) {
        self.levels.pop();
    }

    pub(super) fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Entering the `index`-th CTE of the innermost level's `WITH`.
    pub(super) fn enter_cte(&mut self, index: usize) {
        if let Some(owner) = self.levels.last_mut() {
            owner.in_cte = Some(index);
            self.ctes.push(CteDef {
                level: owner.id,
                index,
                name: String::new(),
            });
        }
    }

    pub(super) fn exit_cte(&mut self) {
        if let Some(owner) = self.levels.last_mut() {
            owner.in_cte = None;
        }
    }

    /// The name of the CTE just entered (`ctename` is its first field).
    pub(super) fn name_cte(&mut self, name: &str) {
        if let Some(def) = self.ctes.last_mut() {
            name.clone_into(&mut def.name);
        }
    }

    /// The innermost level's `WITH` is `WITH RECURSIVE`.
    pub(super) fn mark_recursive(&mut self) {
        if let Some(owner) = self.levels.last() {
            self.recursive.push(owner.id);
        }
    }

    pub(super) fn reference(&mut self, name: String) {
        let chain = self.levels.clone();
        self.references.push(Reference { name, chain });
    }

    /// The referenced names that are tables, once every `WITH` has been seen.
    pub(super) fn into_tables(self) -> impl Iterator<Item = String> {
        let Self {
            ctes,
            recursive,
            references,
            ..
        } = self;
        references.into_iter().filter_map(move |reference| {
            let is_cte = reference.chain.iter().any(|level| {
                ctes.iter().any(|def| {
                    def.level == level.id
                        && def.name == reference.name
                        && match level.in_cte {
                            None => true,
                            Some(current) => def.index < current || recursive.contains(&level.id),
                        }
                })
            });
            (!is_cte).then_some(reference.name)
        })
    }
}
