//! What a door asks the engine: who, which action, on what, with which facts, when and from
//! where. Everything is borrowed: building a request allocates nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use portcullis_identity::Principal;

/// A configured connection as policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionInfo {
    /// The connection's name: the entity `Connection::"<name>"`.
    pub name: String,
    /// The protocol (`postgres`, `http`, ...): `resource.kind`.
    pub kind: String,
    /// Labels such as `environment = "prod"`: the entity's tags.
    pub labels: BTreeMap<String, String>,
}

/// The resource of a request.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Connection(&'a ConnectionInfo),
    /// The gateway itself (`Gateway::"self"`), for the admin API.
    Gateway,
}

/// One question for the policy engine.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    /// A concrete action such as `sql.delete`; action groups (`sql.write`) are refused.
    pub action: &'a str,
    pub target: Target<'a>,
    /// Partial context for the action's family, e.g. `{"sql": {"has_where": false}}`;
    /// `Null` when the door has no facts. Missing facts get defaults; unknown ones are refused.
    pub facts: &'a serde_json::Value,
    /// The decision time, handed in because the engine never reads a clock.
    pub now_unix: i64,
    /// The client's address; `None` becomes `0.0.0.0`.
    pub source_ip: Option<IpAddr>,
}
