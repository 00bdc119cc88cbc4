//! OCSF export of the audit trail (`portcullis audit export --format ocsf`), for SIEMs that
//! speak the [Open Cybersecurity Schema Framework](https://schema.ocsf.io/1.3.0/).
//!
//! Each stored record becomes one OCSF 1.3.0 event, one JSON object per line, in the same
//! `(ts_ms, node, seq)` order and with the same paging as [`crate::export_jsonl`]. Every
//! event carries the base attributes the schema requires (`class_uid`, `category_uid`,
//! `activity_id`, `type_uid = class_uid * 100 + activity_id`, `severity_id`, `time` in Unix
//! milliseconds, `metadata` with `version` and `product`) and their captions, plus
//! `metadata.uid = "<node>:<seq>"` (the record's place in its chain) and
//! `metadata.original_time` (RFC 3339). The stored record itself, unchanged, is kept under
//! `unmapped`: its canonical encoding ([`crate::to_canonical`]) is byte for byte the stored
//! body, so its SHA-256 is the event's chain hash and an OCSF event can be checked against a
//! verified chain or a signed checkpoint.
//!
//! # Mapping
//!
//! | Portcullis event | OCSF class (`class_uid`) | `activity_id` (name) | status and security control |
//! |---|---|---|---|
//! | `decision` on `sql.*`, or on any action through `postgres`/`mysql` | Datastore Activity (6005) | from the action: `sql.select`, `sql.explain` → 4 Query; `sql.copy_to` → 1 Read; `sql.insert` → 6 Create; `sql.copy_from` → 5 Write; `sql.update`, `sql.merge` → 2 Update; `sql.delete` → 7 Delete; `connect` → 3 Connect; anything else (`sql.ddl`, `sql.admin`, `sql.transaction`, `sql.session`, `sql.function_call`, `data.unmask`, ...) → 99 Other, `activity_name` = the action | allow: status 1 Success, `action_id` 1 Allowed, `disposition_id` 1 Allowed; deny: status 2 Failure, `status_code` = reason code, `action_id` 2 Denied, `disposition_id` 2 Blocked; approval_required: status 99 Other (`Pending Approval`), `disposition_id` 14 Delayed and no `action_id` (nothing ran yet, and the schema pairs Delayed with Allowed) |
//! | `statement.result` | Datastore Activity (6005) | from its action, as above | ok: 1 Success; error: 2 Failure with `status_code` = SQLSTATE; `duration` (ms); `metadata.correlation_uid` = `"<node>:<decision_seq>"` |
//! | `decision` on `admin.*` and any other door (HTTP, Kubernetes, SSH, MCP) | API Activity (6003) | from the action's verb: create/revoke/post → 1 Create; get/list/watch/read → 2 Read; update/patch/put/reload → 3 Update; delete → 4 Delete; else 99 Other | as for SQL decisions |
//! | `token.rejected` | Authentication (3002) | 1 Logon | 2 Failure, `status_code` = reason code, `status_detail` = detail; `user` = the token's unverified subject, or `unknown` |
//! | `session.open` | Authentication (3002) | 1 Logon | ok: 1 Success; `session.uid` = session id; `service.name` = connection |
//! | `session.close` | Authentication (3002) | 2 Logoff | ok: 1 Success, error: 2 Failure; `status_detail` = how it ended; `duration` (ms) |
//! | `session.refused` (a limit turned the session away after `connect`) | Authentication (3002) | 1 Logon | 2 Failure, `status_code` = reason code (`session_limit_principal`, ...), `status_detail` = what the client was told; `session.uid` = session id |
//! | `review.requested` | API Activity (6003) | 1 Create | 1 Success; `resources` = the review and the connection |
//! | `review.approved`, `review.denied`, `review.expired`, `review.executed` | API Activity (6003) | 3 Update | 1 Success, `status_detail` = the review's status after the change; approved: `action_id` 1 Allowed, `disposition_id` 8 Approved; denied: `action_id` 2 Denied, `disposition_id` 2 Blocked; the actor is the reviewer (approved, denied) or the requester |
//! | `revocation` | Account Change (3001) | 5 Disable for a subject or client id; 99 Other (`Revoke Token`) for a token id | 1 Success; `user` = the revoked identity (`user.credential_uid` for a token id) |
//! | `config.reload` | API Activity (6003) | 3 Update | ok: 1 Success, error: 2 Failure with the problems in `status_detail` |
//! | `notify.failed` | API Activity (6003) | 1 Create (a webhook delivery) | 2 Failure |
//! | `gateway.start`, `gateway.stop` | Application Lifecycle (6002) | 3 Start, 4 Stop | 1 Success; `app` = Portcullis and its version |
//! | any other kind | Base Event (0), category 0 Uncategorized | 99 Other, `activity_name` = the kind | from the outcome when it is ok/allow (Success) or error/deny (Failure) |
//!
//! Common attributes: `actor.user` from the event's identity (`uid` and `name` = subject,
//! `uid_alt` = client id, `groups`, `credential_uid` = token id, `type_id` 4 Service for
//! machines and 1 User for humans and reviewers), `actor.idp.name` = issuer,
//! `actor.session.uid` = session id, `actor.authorizations` = one entry per determining
//! policy with the decision, `actor.app_name` = Portcullis for what the gateway did itself;
//! `src_endpoint.ip` when the client address is known (`statement.result` events leave it
//! to the decision they quote); `database` `{name: connection, type: protocol}` with
//! `type_id` 1 Database and `query_info` `{query_string: command, uid: metadata.uid}` on
//! datastore decisions; `policy` = the first determining policy; `severity_id` 2 Low for
//! denials and failures, else 1 Informational. Events using `action_id`/`disposition_id`
//! list the `security_control` profile in `metadata.profiles`. Delegation chains, masking
//! counts, rows and bytes have no OCSF 1.3 attribute and are found under `unmapped`.
//!
//! Sources: the class, object and profile definitions of the OCSF schema repository
//! (`events/application/datastore_activity.json`, `api_activity.json`,
//! `application_lifecycle.json`, `events/iam/authentication.json`, `account_change.json`,
//! `events/base_event.json`, `objects/{metadata,actor,user,api,database,query_info,authorization}.json`,
//! `profiles/security_control.json`), the 1.3.0 reference
//! (<https://docs.tenzir.com/reference/ocsf/1-3-0/classes/datastore_activity>), and the
//! `status_id`, `severity_id` and `disposition_id` enumerations
//! (<https://lmodel.github.io/ocsf/elements/DispositionIdEnum/>).

mod classes;

use serde_json::{Map, Value, json};

use crate::error::AuditError;
use crate::pages::{self, Pages};
use crate::utc::Utc;

/// The OCSF schema version the export follows.
pub const OCSF_VERSION: &str = "1.3.0";

/// `metadata.product.name` and `vendor_name`.
pub const OCSF_PRODUCT: &str = "Portcullis";

/// Maps one stored record (a line of the JSONL export, parsed) to an OCSF event. Never
/// panics: missing or mistyped fields are left out, an unknown kind becomes a Base Event.
pub fn to_ocsf(record: &Value) -> Value {
    let rec = classes::Rec::new(record);
    let mapped = classes::map(&rec);
    let actor = rec.actor(&mapped);
    let c = mapped.class;
    let activity_id = mapped.activity_id;
    let mut out = Map::new();
    out.insert("class_uid".into(), c.uid.into());
    out.insert("class_name".into(), c.name.into());
    out.insert("category_uid".into(), c.category_uid.into());
    out.insert("category_name".into(), c.category_name.into());
    out.insert("activity_id".into(), activity_id.into());
    out.insert("activity_name".into(), mapped.activity_name.clone().into());
    out.insert("type_uid".into(), (c.uid * 100 + activity_id).into());
    out.insert(
        "type_name".into(),
        format!("{}: {}", c.name, mapped.activity_name).into(),
    );
    let failed = mapped.status.as_ref().is_some_and(|s| s.id == 2);
    let (severity_id, severity) = if failed || rec.outcome() == Some("deny") {
        (2, "Low")
    } else {
        (1, "Informational")
    };
    out.insert("severity_id".into(), severity_id.into());
    out.insert("severity".into(), severity.into());
    out.insert("time".into(), rec.ts_ms().into());
    out.insert("message".into(), rec.message().into());
    out.insert(
        "metadata".into(),
        metadata(&rec, mapped.correlation.as_deref(), mapped.profiles),
    );
    if let Some(status) = mapped.status {
        status.write(&mut out);
    }
    if let Some(actor) = actor {
        out.insert("actor".into(), actor);
    }
    if let Some(ip) = rec.str("source_ip") {
        out.insert("src_endpoint".into(), json!({ "ip": ip }));
    }
    for (key, value) in mapped.fields {
        out.insert(key, value);
    }
    out.insert("unmapped".into(), record.clone());
    Value::Object(out)
}

fn metadata(rec: &classes::Rec<'_>, correlation: Option<&str>, profiles: bool) -> Value {
    let mut m = Map::new();
    m.insert("version".into(), OCSF_VERSION.into());
    m.insert(
        "product".into(),
        json!({ "name": OCSF_PRODUCT, "vendor_name": OCSF_PRODUCT }),
    );
    m.insert("uid".into(), rec.uid().into());
    m.insert("log_name".into(), "audit".into());
    m.insert(
        "original_time".into(),
        Utc::from_ms(rec.ts_ms()).rfc3339().into(),
    );
    m.insert("logged_time".into(), rec.ts_ms().into());
    if let Some(seq) = rec.seq() {
        m.insert("sequence".into(), seq.into());
    }
    if let Some(c) = correlation {
        m.insert("correlation_uid".into(), c.into());
    }
    if profiles {
        m.insert("profiles".into(), json!(["security_control"]));
    }
    Value::Object(m)
}

/// Writes the records with `since_ms <= ts_ms < until_ms` to `out` as OCSF events, one JSON
/// object per line, and returns how many were written. Reads a page at a time, so memory
/// stays bounded. A stored body that is not JSON stops the export with an error naming it.
pub async fn export_ocsf(
    store: &dyn portcullis_store::Store,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    out: &mut (dyn std::io::Write + Send),
) -> Result<u64, AuditError> {
    let mut written = 0u64;
    let mut pages = Pages::new(since_ms, until_ms);
    while let Some(page) = pages.next(store).await? {
        for row in &page {
            let record = pages::parse(row)?;
            let mut line = serde_json::to_vec(&to_ocsf(&record))?;
            line.push(b'\n');
            out.write_all(&line)?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests;
