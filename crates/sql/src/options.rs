//! What the classifier treats as dangerous beyond the statement type: the functions whose call
//! turns any statement into `sql.admin`.

/// Classifier settings. Built once from configuration and shared by reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Lower-case names of functions with side effects outside the statement's own tables
    /// (server files, other backends, configuration, large objects, remote servers, dynamic
    /// SQL, locks, sequences). A call to any of them, schema-qualified or not, in any
    /// notation, makes the statement `sql.admin`. An entry ending in `*` is a prefix.
    pub side_effect_functions: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            side_effect_functions: DEFAULT_SIDE_EFFECT_FUNCTIONS
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
        }
    }
}

impl Options {
    /// Whether `function` (lower-case, possibly schema-qualified) is on the side-effect list.
    /// Only the last name part is compared: a look-alike in another schema is still treated
    /// as dangerous, which fails closed, while `pg_catalog.set_config` cannot slip past. An
    /// entry ending in `*` matches every name that starts with the rest (`lo_*`).
    pub(crate) fn is_side_effect(&self, function: &str) -> bool {
        let bare = function.rsplit('.').next().unwrap_or(function);
        self.side_effect_functions
            .iter()
            .any(|entry| match entry.strip_suffix('*') {
                Some(prefix) => bare.starts_with(prefix),
                None => entry == bare,
            })
    }
}

/// The default list, by family. Families are written as prefixes where PostgreSQL names them
/// so, which also covers members added by later releases and extensions.
///
/// A read-only agent must not change anything outside its statement's tables either: no
/// sequence advanced (`nextval`), no lock that blocks other sessions (advisory locks), no
/// signal to another backend, no file read or written on the server, no remote connection,
/// no setting changed. Functions that run a query given as text (`query_to_xml`, `ts_stat`,
/// tablefunc's `crosstab` and `connectby`, ...) are in because the gateway cannot see the
/// tables or calls of that text. `txid_current`/`pg_current_xact_id` (which assign a
/// transaction id) and `pg_sleep` are left out: they change nothing another session can see.
pub const DEFAULT_SIDE_EFFECT_FUNCTIONS: &[&str] = &[
    // Other backends and the server process.
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_signal_backend",
    "pg_log_backend_memory_contexts",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_logfile_rotate",
    "pg_promote",
    // The WAL, backups and recovery (with the names before PostgreSQL 10 and 15).
    "pg_switch_wal",
    "pg_switch_xlog",
    "pg_create_restore_point",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_wal_replay_*",
    "pg_xlog_replay_*",
    // Statistics resets (pg_stat_statements' own too).
    "pg_stat_reset*",
    "pg_stat_statements_reset",
    // Replication slots, origins and the logical decoding stream.
    "pg_replication_*",
    "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_drop_replication_slot",
    "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot",
    "pg_sync_replication_slots",
    "pg_logical_*",
    // Server files (core and adminpack).
    "pg_read_*",
    "pg_ls_*",
    "pg_stat_file",
    "pg_file_*",
    "pg_logdir_ls",
    // Large objects: all of them live outside any table, and some read or write server files.
    "lo_*",
    "loread",
    "lowrite",
    // Remote servers.
    "dblink*",
    // Locks that block other sessions, and sequence writes.
    "pg_advisory_*",
    "pg_try_advisory_*",
    "nextval",
    "setval",
    // Session state and notifications.
    "set_config",
    "pg_notify",
    // Dynamic SQL: the query text is an argument the gateway does not classify.
    "query_to_xml*",
    "cursor_to_xml*",
    "table_to_xml*",
    "schema_to_xml*",
    "database_to_xml*",
    "ts_stat",
    "ts_rewrite",
    // The tablefunc extension runs its text arguments as queries: `crosstab` in every arity
    // (`crosstab2`, `crosstab3`, `crosstab4`, `crosstab_hash`, and those a later release or a
    // user wrapper adds under the same prefix) and `connectby`.
    "crosstab*",
    "connectby",
    // Index and storage maintenance that writes outside the statement's rows
    // (pg_visibility's and pg_surgery's too).
    "brin_summarize_*",
    "brin_desummarize_range",
    "gin_clean_pending_list",
    "pg_import_system_collations",
    "pg_truncate_visibility_map",
    "heap_force_kill",
    "heap_force_freeze",
];
