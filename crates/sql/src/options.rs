//! What the classifier treats as dangerous beyond the statement type: the functions whose call
//! turns any statement into `sql.admin`.

/// Classifier settings. Built once from configuration and shared by reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Lower-case names of functions with side effects outside the statement's own tables
    /// (server files, other backends, configuration, large objects, remote servers, dynamic
    /// SQL). A call to any of them, schema-qualified or not, makes the statement `sql.admin`.
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
    /// as dangerous, which fails closed, while `pg_catalog.set_config` cannot slip past.
    pub(crate) fn is_side_effect(&self, function: &str) -> bool {
        let bare = function.rsplit('.').next().unwrap_or(function);
        self.side_effect_functions.iter().any(|name| name == bare)
    }
}

/// The default list. Advisory locks, `pg_sleep` and `nextval` are left out on purpose: they
/// are harmless or routine. Functions that run a query given as text (`query_to_xml`,
/// `ts_stat`, ...) are in, because the gateway cannot see the tables or calls of that text.
pub const DEFAULT_SIDE_EFFECT_FUNCTIONS: &[&str] = &[
    // Other backends and the server process.
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_log_backend_memory_contexts",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_promote",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "pg_stat_reset",
    "pg_stat_reset_shared",
    "pg_stat_reset_single_table_counters",
    "pg_stat_reset_single_function_counters",
    "pg_stat_reset_slru",
    "pg_stat_reset_replication_slot",
    "pg_stat_reset_subscription_stats",
    "pg_import_system_collations",
    // Replication slots, origins and the WAL stream.
    "pg_logical_emit_message",
    "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_drop_replication_slot",
    "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot",
    "pg_replication_slot_advance",
    "pg_logical_slot_get_changes",
    "pg_logical_slot_get_binary_changes",
    "pg_sync_replication_slots",
    "pg_replication_origin_create",
    "pg_replication_origin_drop",
    "pg_replication_origin_advance",
    "pg_replication_origin_session_setup",
    // Server files (core and adminpack).
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_ls_logdir",
    "pg_ls_waldir",
    "pg_ls_tmpdir",
    "pg_ls_archive_statusdir",
    "pg_ls_logicalsnapdir",
    "pg_ls_logicalmapdir",
    "pg_ls_replslotdir",
    "pg_stat_file",
    "pg_file_write",
    "pg_file_rename",
    "pg_file_unlink",
    "pg_file_sync",
    "pg_logdir_ls",
    // Large objects: server-side import/export and writes outside any table.
    "lo_import",
    "lo_export",
    "lo_unlink",
    "lo_from_bytea",
    "lo_put",
    "lo_create",
    "lo_creat",
    "lo_truncate",
    "lo_truncate64",
    "lowrite",
    // Remote servers.
    "dblink",
    "dblink_exec",
    "dblink_connect",
    "dblink_connect_u",
    "dblink_open",
    "dblink_fetch",
    "dblink_send_query",
    // Session state and notifications.
    "set_config",
    "pg_notify",
    "setval",
    // Dynamic SQL: the query text is an argument the gateway does not classify.
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "schema_to_xml",
    "schema_to_xmlschema",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xmlschema",
    "database_to_xml_and_xmlschema",
    "ts_stat",
    "ts_rewrite",
];
