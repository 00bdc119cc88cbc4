//! The per-kind half of the OCSF mapping: which class and activity an event is, and the
//! class-specific attributes. The table in the parent module's docs is the contract.

use serde_json::{Map, Value, json};

use super::OCSF_PRODUCT;

/// An OCSF event class and its category.
#[derive(Debug, Clone, Copy)]
pub(super) struct Class {
    pub uid: i64,
    pub name: &'static str,
    pub category_uid: i64,
    pub category_name: &'static str,
}

const IAM: (i64, &str) = (3, "Identity & Access Management");
const APPLICATION: (i64, &str) = (6, "Application Activity");

const fn class(uid: i64, name: &'static str, category: (i64, &'static str)) -> Class {
    Class {
        uid,
        name,
        category_uid: category.0,
        category_name: category.1,
    }
}

const BASE_EVENT: Class = class(0, "Base Event", (0, "Uncategorized"));
const ACCOUNT_CHANGE: Class = class(3001, "Account Change", IAM);
const AUTHENTICATION: Class = class(3002, "Authentication", IAM);
const APP_LIFECYCLE: Class = class(6002, "Application Lifecycle", APPLICATION);
const API_ACTIVITY: Class = class(6003, "API Activity", APPLICATION);
const DATASTORE: Class = class(6005, "Datastore Activity", APPLICATION);

/// `activity_id` 99: the schema's "not mapped", with a source-specific `activity_name`.
const OTHER: i64 = 99;

/// `status_id`, its caption, and the source's code and detail.
#[derive(Debug)]
pub(super) struct Status {
    pub id: i64,
    pub name: String,
    pub code: Option<String>,
    pub detail: Option<String>,
}

impl Status {
    fn new(id: i64, name: &str) -> Self {
        Self {
            id,
            name: name.to_owned(),
            code: None,
            detail: None,
        }
    }

    fn success() -> Self {
        Self::new(1, "Success")
    }

    fn failure() -> Self {
        Self::new(2, "Failure")
    }

    pub(super) fn write(self, out: &mut Map<String, Value>) {
        out.insert("status_id".into(), self.id.into());
        out.insert("status".into(), self.name.into());
        if let Some(code) = self.code {
            out.insert("status_code".into(), code.into());
        }
        if let Some(detail) = self.detail {
            out.insert("status_detail".into(), detail.into());
        }
    }
}

/// What one event becomes, before the common attributes are added.
pub(super) struct Mapped {
    pub class: Class,
    pub activity_id: i64,
    pub activity_name: String,
    pub status: Option<Status>,
    /// Class-specific attributes, copied into the event as they are.
    pub fields: Map<String, Value>,
    pub correlation: Option<String>,
    /// The event uses the `security_control` profile (`action_id`, `disposition_id`).
    pub profiles: bool,
    /// The gateway acted on its own: with no identity, the actor is the product.
    pub gateway_actor: bool,
    /// `actor.authorizations`: the determining policies of a decision.
    pub authorizations: Option<Value>,
}

impl Mapped {
    fn new(rec: &Rec<'_>, class: Class, activity_id: i64, activity_name: &str) -> Self {
        Self {
            class,
            activity_id,
            activity_name: activity_name.to_owned(),
            status: outcome_status(rec.outcome()),
            fields: Map::new(),
            correlation: None,
            profiles: false,
            gateway_actor: false,
            authorizations: None,
        }
    }

    fn set(&mut self, key: &str, value: Value) {
        self.fields.insert(key.to_owned(), value);
    }

    /// `action_id` and `disposition_id` of the security control profile.
    fn control(&mut self, action: Option<(i64, &str)>, disposition: (i64, &str)) {
        if let Some((id, name)) = action {
            self.set("action_id", id.into());
            self.set("action", name.into());
        }
        self.set("disposition_id", disposition.0.into());
        self.set("disposition", disposition.1.into());
        self.profiles = true;
    }

    fn status_mut(&mut self) -> &mut Status {
        self.status.get_or_insert_with(|| Status::new(0, "Unknown"))
    }
}

fn outcome_status(outcome: Option<&str>) -> Option<Status> {
    Some(match outcome? {
        "ok" | "allow" | "success" => Status::success(),
        "error" | "deny" | "failure" => Status::failure(),
        "approval_required" => Status::new(OTHER, "Pending Approval"),
        other => Status::new(OTHER, other),
    })
}

/// Read access to one record, tolerant of anything missing or mistyped.
pub(super) struct Rec<'a> {
    record: &'a Value,
    event: &'a Value,
}

impl<'a> Rec<'a> {
    pub(super) fn new(record: &'a Value) -> Self {
        let event = record.get("event").unwrap_or(&Value::Null);
        Self { record, event }
    }

    /// A non-empty string field of the event.
    pub(super) fn str(&self, key: &str) -> Option<&'a str> {
        self.event.get(key)?.as_str().filter(|s| !s.is_empty())
    }

    fn kind(&self) -> &'a str {
        self.str("kind").unwrap_or("")
    }

    pub(super) fn outcome(&self) -> Option<&'a str> {
        self.str("outcome")
    }

    fn data(&self, key: &str) -> Option<&'a Value> {
        self.event.get("data")?.get(key)
    }

    fn data_str(&self, key: &str) -> Option<&'a str> {
        self.data(key)?.as_str().filter(|s| !s.is_empty())
    }

    fn policies(&self) -> Vec<&'a str> {
        self.event
            .get("policies")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    pub(super) fn ts_ms(&self) -> i64 {
        self.record
            .get("ts_ms")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    pub(super) fn seq(&self) -> Option<i64> {
        self.record.get("seq").and_then(Value::as_i64)
    }

    fn node(&self) -> &'a str {
        self.record
            .get("node")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `<node>:<seq>`, the record's place in its chain.
    pub(super) fn uid(&self) -> String {
        let seq = self.seq().map_or_else(|| "?".to_owned(), |s| s.to_string());
        format!("{}:{seq}", self.node())
    }

    /// A one-line summary: `decision deny sql.delete on billing`.
    pub(super) fn message(&self) -> String {
        let mut parts = vec![if self.kind().is_empty() {
            "event"
        } else {
            self.kind()
        }];
        parts.extend(self.outcome());
        parts.extend(self.str("action"));
        let mut message = parts.join(" ");
        if let Some(connection) = self.str("connection") {
            message.push_str(" on ");
            message.push_str(connection);
        }
        message
    }

    /// The `actor` object, or `None` when nothing is known about who acted.
    pub(super) fn actor(&self, mapped: &Mapped) -> Option<Value> {
        let mut a = Map::new();
        let who = self.event.get("who");
        if let Some(user) = who.and_then(user_of) {
            a.insert("user".into(), user);
        }
        if let Some(issuer) = who.and_then(|w| nonempty(w.get("issuer"))) {
            a.insert("idp".into(), json!({ "name": issuer }));
        }
        if let Some(session) = self.str("session_id") {
            a.insert("session".into(), json!({ "uid": session }));
        }
        if let Some(auth) = &mapped.authorizations {
            a.insert("authorizations".into(), auth.clone());
        }
        if mapped.gateway_actor && !a.contains_key("user") {
            a.insert("app_name".into(), OCSF_PRODUCT.into());
        }
        (!a.is_empty()).then_some(Value::Object(a))
    }

    /// `service.name`: the target connection, else the door, else the gateway.
    fn service(&self) -> Value {
        let name = match (self.str("connection"), self.str("protocol")) {
            (Some(c), _) => c.to_owned(),
            (None, Some(p)) => format!("{OCSF_PRODUCT} {p}"),
            (None, None) => OCSF_PRODUCT.to_owned(),
        };
        json!({ "name": name })
    }

    fn is_datastore(&self) -> bool {
        self.str("action").is_some_and(|a| a.starts_with("sql."))
            || matches!(self.str("protocol"), Some("postgres" | "mysql"))
    }
}

fn nonempty(v: Option<&Value>) -> Option<&str> {
    v?.as_str().filter(|s| !s.is_empty())
}

/// An OCSF `user` from an event's `who`; `None` without a subject.
fn user_of(who: &Value) -> Option<Value> {
    let subject = nonempty(who.get("subject"))?;
    let mut u = Map::new();
    u.insert("uid".into(), subject.into());
    u.insert("name".into(), subject.into());
    if let Some(client) = nonempty(who.get("client_id")) {
        u.insert("uid_alt".into(), client.into());
    }
    let groups: Vec<Value> = who
        .get("groups")
        .and_then(Value::as_array)
        .map(|gs| {
            gs.iter()
                .filter_map(Value::as_str)
                .map(|g| json!({ "name": g }))
                .collect()
        })
        .unwrap_or_default();
    if !groups.is_empty() {
        u.insert("groups".into(), groups.into());
    }
    if let Some(token) = nonempty(who.get("token_id")) {
        u.insert("credential_uid".into(), token.into());
    }
    let (type_id, type_name) = match nonempty(who.get("kind")) {
        Some("machine") => (4, "Service"),
        Some("human" | "reviewer") => (1, "User"),
        _ => (0, "Unknown"),
    };
    u.insert("type_id".into(), type_id.into());
    u.insert("type".into(), type_name.into());
    Some(Value::Object(u))
}

/// A `user` that the schema requires but the event cannot name.
fn unknown_user() -> Value {
    json!({ "name": "unknown", "type_id": 0, "type": "Unknown" })
}

/// Maps one record; dispatches on the kind.
pub(super) fn map(rec: &Rec<'_>) -> Mapped {
    match rec.kind() {
        "decision" if rec.is_datastore() => datastore(rec),
        "decision" => api_decision(rec),
        "statement.result" => datastore(rec),
        "token.rejected" => token_rejected(rec),
        "session.open" | "session.close" | "session.refused" => session(rec),
        "revocation" => revocation(rec),
        "config.reload" => config_reload(rec),
        "notify.failed" => notify_failed(rec),
        "gateway.start" | "gateway.stop" => lifecycle(rec),
        k if k.starts_with("review.") => review(rec),
        _ => base(rec),
    }
}

fn sql_activity(action: &str) -> (i64, &str) {
    match action {
        "sql.select" | "sql.explain" => (4, "Query"),
        "sql.copy_to" => (1, "Read"),
        "sql.insert" => (6, "Create"),
        "sql.copy_from" => (5, "Write"),
        "sql.update" | "sql.merge" => (2, "Update"),
        "sql.delete" => (7, "Delete"),
        "connect" => (3, "Connect"),
        "" => (0, "Unknown"),
        other => (OTHER, other),
    }
}

fn datastore(rec: &Rec<'_>) -> Mapped {
    let (id, name) = sql_activity(rec.str("action").unwrap_or(""));
    let mut m = Mapped::new(rec, DATASTORE, id, name);
    m.set("type_id", 1.into());
    m.set("type", "Database".into());
    if let Some(connection) = rec.str("connection") {
        let mut db = json!({ "name": connection });
        if let (Some(p), Some(obj)) = (rec.str("protocol"), db.as_object_mut()) {
            obj.insert("type".into(), p.into());
        }
        m.set("database", db);
    }
    if rec.kind() == "decision" {
        decision(rec, &mut m);
        if let Some(command) = rec.str("command") {
            m.set(
                "query_info",
                json!({ "query_string": command, "uid": rec.uid() }),
            );
        }
    } else {
        if let Some(us) = rec.data("duration_us").and_then(Value::as_u64) {
            m.set("duration", (us / 1000).into());
        }
        if let Some(seq) = rec.data("decision_seq").and_then(Value::as_i64) {
            m.correlation = Some(format!("{}:{seq}", rec.node()));
        }
        if let Some(state) = rec.data_str("sqlstate") {
            m.status_mut().code = Some(state.to_owned());
        }
    }
    m
}

/// What every decision carries: the security control outcome, the policies, the reason.
fn decision(rec: &Rec<'_>, m: &mut Mapped) {
    match rec.outcome() {
        Some("allow") => m.control(Some((1, "Allowed")), (1, "Allowed")),
        Some("deny") => {
            m.control(Some((2, "Denied")), (2, "Blocked"));
            let status = m.status_mut();
            status.code = rec.str("reason_code").map(str::to_owned);
            status.detail = rec.str("detail").map(str::to_owned);
        }
        Some("approval_required") => m.control(None, (14, "Delayed")),
        _ => {}
    }
    let policies = rec.policies();
    if let Some(first) = policies.first() {
        m.set("policy", json!({ "uid": first, "name": first }));
    }
    let decision = rec.outcome().unwrap_or("unknown");
    let auth: Vec<Value> = if policies.is_empty() {
        vec![json!({ "decision": decision })]
    } else {
        policies
            .iter()
            .map(|p| json!({ "decision": decision, "policy": { "uid": p, "name": p } }))
            .collect()
    };
    m.authorizations = Some(auth.into());
    m.correlation = Some(rec.uid());
    m.gateway_actor = true;
}

fn api(operation: &str) -> Value {
    json!({ "operation": operation, "service": { "name": OCSF_PRODUCT } })
}

fn api_activity(action: &str) -> (i64, &str) {
    let verb = action.rsplit('.').next().unwrap_or(action);
    match verb {
        "" => (0, "Unknown"),
        "create" | "revoke" | "post" => (1, "Create"),
        "get" | "list" | "watch" | "read" | "head" => (2, "Read"),
        "update" | "patch" | "put" | "reload" => (3, "Update"),
        "delete" => (4, "Delete"),
        _ => (OTHER, action),
    }
}

fn api_decision(rec: &Rec<'_>) -> Mapped {
    let action = rec.str("action").unwrap_or("");
    let (id, name) = api_activity(action);
    let mut m = Mapped::new(rec, API_ACTIVITY, id, name);
    m.set("api", api(action));
    if let Some(connection) = rec.str("connection") {
        m.set(
            "resources",
            json!([{ "type": "Connection", "name": connection }]),
        );
    }
    decision(rec, &mut m);
    m
}

fn auth_protocol(m: &mut Mapped) {
    // The token is presented as an OAuth 2.0 bearer token (RFC 6750), whatever the door.
    m.set("auth_protocol_id", 6.into());
    m.set("auth_protocol", "OAUTH 2.0".into());
}

fn token_rejected(rec: &Rec<'_>) -> Mapped {
    let mut m = Mapped::new(rec, AUTHENTICATION, 1, "Logon");
    let mut status = Status::failure();
    status.code = rec.str("reason_code").map(str::to_owned);
    status.detail = rec.str("detail").map(str::to_owned);
    m.status = Some(status);
    // The subject of a rejected token is unverified: it names a claim, not an identity.
    let user = rec
        .data_str("subject")
        .map_or_else(unknown_user, |s| json!({ "uid": s, "name": s }));
    m.set("user", user);
    m.set("service", rec.service());
    auth_protocol(&mut m);
    m
}

fn session(rec: &Rec<'_>) -> Mapped {
    let close = rec.kind() == "session.close";
    let (id, name) = if close { (2, "Logoff") } else { (1, "Logon") };
    let mut m = Mapped::new(rec, AUTHENTICATION, id, name);
    let user = rec
        .event
        .get("who")
        .and_then(user_of)
        .unwrap_or_else(unknown_user);
    m.set("user", user);
    m.set("service", rec.service());
    if let Some(session) = rec.str("session_id") {
        m.set("session", json!({ "uid": session }));
    }
    auth_protocol(&mut m);
    if rec.kind() == "session.refused" {
        // A limit turned the logon away: the reason code, and what the client was told.
        let status = m.status_mut();
        status.code = rec.str("reason_code").map(str::to_owned);
        status.detail = rec.str("detail").map(str::to_owned);
    }
    if close {
        if let Some(ms) = rec.data("duration_ms").and_then(Value::as_u64) {
            m.set("duration", ms.into());
        }
        let ended = rec.data_str("ended").map(str::to_owned);
        let detail = rec.str("detail").map(str::to_owned);
        if ended.is_some() || detail.is_some() {
            let status = m.status_mut();
            status.code = ended;
            status.detail = detail;
        }
    }
    m
}

fn review(rec: &Rec<'_>) -> Mapped {
    let kind = rec.kind();
    let (id, name) = match kind {
        "review.requested" => (1, "Create"),
        "review.approved" | "review.denied" | "review.expired" | "review.executed" => (3, "Update"),
        other => (OTHER, other),
    };
    let mut m = Mapped::new(rec, API_ACTIVITY, id, name);
    let mut status = Status::success();
    // The review's status after the change: `pending` while more approvals are needed.
    status.detail = rec.outcome().map(str::to_owned);
    m.status = Some(status);
    match kind {
        "review.approved" => m.control(Some((1, "Allowed")), (8, "Approved")),
        "review.denied" => m.control(Some((2, "Denied")), (2, "Blocked")),
        _ => {}
    }
    m.set("api", api(kind));
    let mut resources = Vec::new();
    if let Some(review) = rec.data_str("review_id") {
        resources.push(json!({ "type": "Review", "uid": review }));
        m.correlation = Some(review.to_owned());
    }
    if let Some(connection) = rec.str("connection") {
        resources.push(json!({ "type": "Connection", "name": connection }));
    }
    if !resources.is_empty() {
        m.set("resources", resources.into());
    }
    m
}

fn revocation(rec: &Rec<'_>) -> Mapped {
    let value = rec.data_str("value");
    let (id, name, user) = match (rec.data_str("kind"), value) {
        (Some("subject"), Some(v)) => (5, "Disable", json!({ "uid": v, "name": v })),
        (Some("client_id"), Some(v)) => (5, "Disable", json!({ "name": v, "uid_alt": v })),
        (Some("token_id"), Some(v)) => (
            OTHER,
            "Revoke Token",
            json!({ "name": "unknown", "credential_uid": v }),
        ),
        _ => (OTHER, "Revoke", unknown_user()),
    };
    let mut m = Mapped::new(rec, ACCOUNT_CHANGE, id, name);
    m.set("user", user);
    if let Some(reason) = rec.str("detail") {
        m.status_mut().detail = Some(reason.to_owned());
    }
    m
}

fn config_reload(rec: &Rec<'_>) -> Mapped {
    let mut m = Mapped::new(rec, API_ACTIVITY, 3, "Update");
    m.set("api", api("config.reload"));
    if let Some(problems) = rec.str("detail") {
        m.status_mut().detail = Some(problems.to_owned());
    }
    m.gateway_actor = true;
    m
}

fn notify_failed(rec: &Rec<'_>) -> Mapped {
    let mut m = Mapped::new(rec, API_ACTIVITY, 1, "Create");
    let mut status = Status::failure();
    status.detail = rec.str("detail").map(str::to_owned);
    m.status = Some(status);
    m.set("api", api("notify"));
    if let Some(review) = rec.data_str("review_id") {
        m.set("resources", json!([{ "type": "Review", "uid": review }]));
        m.correlation = Some(review.to_owned());
    }
    m.gateway_actor = true;
    m
}

fn lifecycle(rec: &Rec<'_>) -> Mapped {
    let (id, name) = if rec.kind() == "gateway.start" {
        (3, "Start")
    } else {
        (4, "Stop")
    };
    let mut m = Mapped::new(rec, APP_LIFECYCLE, id, name);
    let mut app = json!({ "name": OCSF_PRODUCT, "vendor_name": OCSF_PRODUCT });
    if let (Some(v), Some(obj)) = (rec.data_str("version"), app.as_object_mut()) {
        obj.insert("version".into(), v.into());
    }
    m.set("app", app);
    m.gateway_actor = true;
    m
}

fn base(rec: &Rec<'_>) -> Mapped {
    let (id, name) = match rec.kind() {
        "" => (0, "Unknown"),
        kind => (OTHER, kind),
    };
    Mapped::new(rec, BASE_EVENT, id, name)
}
