//! The one place where the door's errors and refusals become PostgreSQL ErrorResponses:
//! the SQLSTATE for each [`PgError`] and the text a client may see. Nothing here formats an
//! upstream server's own error text or anything secret; those reach only the gateway log.
//!
//! SQLSTATEs: <https://www.postgresql.org/docs/current/errcodes-appendix.html>.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use portcullis_pgwire::Severity;
use portcullis_pgwire::encode_backend::{Report, error_response};

use portcullis_pipeline::{Code, Refusal};

use crate::error::PgError;
use crate::limits::Exceeded;

const OPERATOR_HINT: &str =
    "retry later; if it persists, tell the gateway operator (the details are in its log)";

/// What the client is told about `err`: SQLSTATE, message and hint.
fn describe(err: &PgError) -> (&'static str, Cow<'static, str>, Option<Cow<'static, str>>) {
    use PgError::*;
    let s = Cow::Borrowed;
    match err {
        Setup(_) => ("XX000", s("portcullis: internal error"), None),
        Protocol(w) => ("08P01", format!("protocol violation: {w}").into(), None),
        ClientIo(_) | ClientTls(_) => ("08006", s("client connection failed"), None),
        Unexpected(t) => (
            "08P01",
            format!("unexpected message type {t:?}").into(),
            None,
        ),
        TlsRequired => (
            "28000",
            s("portcullis: the token must be sent over TLS"),
            Some(s("connect with sslmode=require")),
        ),
        NoUser => (
            "28000",
            s("no PostgreSQL user name specified in startup packet"),
            None,
        ),
        Replication => (
            "0A000",
            s("portcullis: replication connections are not supported"),
            None,
        ),
        Encoding(e) => (
            "22023",
            format!("portcullis: client_encoding {e:?} is not supported").into(),
            Some(s("use client_encoding UTF8")),
        ),
        EncodingChanged(setting) => (
            "22023",
            format!(
                "terminating connection: the server now reads SQL with {setting}, which the gateway cannot follow"
            )
            .into(),
            Some(s(
                "use client_encoding UTF8 (or another encoding that is not client-only) and standard_conforming_strings on",
            )),
        ),
        ReadOnlyUndone(setting) => (
            "25006",
            format!(
                "terminating connection: the server reported {setting}, but this session may not write"
            )
            .into(),
            Some(s(
                "nothing this principal may run turns the read-only default off; ask for a policy that lets it write",
            )),
        ),
        Token(r) => (
            "28P01",
            format!("token rejected: {}", r.code).into(),
            Some(r.hint.clone().into()),
        ),
        AuditUnavailable => (
            "58000",
            s("portcullis: the audit trail is unavailable, so nothing runs"),
            Some(s(portcullis_pipeline::AUDIT_HINT)),
        ),
        UnknownDatabase(name) => (
            "3D000",
            format!("portcullis: no connection named {name:?}").into(),
            Some(s(
                "the database name selects one of the gateway's configured connections",
            )),
        ),
        ConnectDenied(r) => (
            "42501",
            r.message.clone().into(),
            Some(r.hint.clone().into()),
        ),
        UpstreamConnect(_) => (
            "08006",
            s("portcullis: cannot reach the database server"),
            Some(s(OPERATOR_HINT)),
        ),
        UpstreamAuth(_) => (
            "08006",
            s("upstream authentication failed"),
            Some(s(OPERATOR_HINT)),
        ),
        UpstreamStartup(_) => (
            "08006",
            s("portcullis: the database server refused the session"),
            Some(s(OPERATOR_HINT)),
        ),
        RowLimit(what) => (
            "08006",
            format!("terminating connection: {what}").into(),
            Some(s(OPERATOR_HINT)),
        ),
        UpstreamProtocol(_) => (
            "08006",
            s("portcullis: the database server broke the protocol"),
            Some(s(OPERATOR_HINT)),
        ),
        UpstreamGone => (
            "08006",
            s("portcullis: the connection to the database server was lost"),
            Some(s("reconnect")),
        ),
        Catalog(_) => (
            "08006",
            s("portcullis: the connection's catalog could not be read"),
            Some(s(OPERATOR_HINT)),
        ),
        TokenExpired => (
            "57P01",
            s("terminating connection: the token it was opened with expired"),
            Some(s(
                "reconnect with a fresh token (short-lived identities end their sessions when they expire)",
            )),
        ),
        RecordingUnavailable => (
            "58000",
            s("portcullis: the session cannot be recorded, so it does not run"),
            Some(s(OPERATOR_HINT)),
        ),
        Unmaskable(what) => (
            "42501",
            format!(
                "portcullis: {what} cannot be masked, and this session's results must be"
            )
            .into(),
            Some(s("use COPY ... TO STDOUT in text or CSV format, or SELECT")),
        ),
        Revoked(reason) => (
            "57P01",
            format!(
                "terminating connection: the identity was revoked ({})",
                reason.code()
            )
            .into(),
            Some(s("contact an administrator")),
        ),
        Shutdown => (
            "57P01",
            s("terminating connection due to gateway shutdown"),
            Some(s("reconnect")),
        ),
        Limit(l) => limit(*l),
    }
}

/// The reason code of a session-ending error, sent as `code: ...` in the DETAIL like every
/// refusal of the door's (a statement's denial, a review's outcome), so a client reads the
/// reason instead of the prose.
fn reason(err: &PgError) -> Option<Code> {
    use PgError::*;
    Some(match err {
        Token(r) | ConnectDenied(r) => r.code,
        Revoked(reason) => Code::Token(*reason),
        TokenExpired => Code::TokenExpired,
        TlsRequired => Code::TlsRequired,
        UnknownDatabase(_) => Code::ConnectionUnknown,
        AuditUnavailable => Code::AuditUnavailable,
        RecordingUnavailable => Code::RecordingUnavailable,
        Unmaskable(_) => Code::Unmaskable,
        Encoding(_) => Code::ClientEncodingForbidden,
        EncodingChanged(_) => Code::ClientEncodingChanged,
        ReadOnlyUndone(_) => Code::ReadOnlyUndone,
        Shutdown => Code::GatewayShutdown,
        UpstreamConnect(_) | UpstreamAuth(_) | UpstreamStartup(_) | UpstreamProtocol(_)
        | UpstreamGone => Code::UpstreamUnavailable,
        Catalog(_) => Code::CatalogUnavailable,
        Limit(l) => l.code(),
        _ => return None,
    })
}

/// What the client is told about a session-ending `err`, as the engine's typed refusal (for
/// callers inside the gateway, the exec API); `None` for the client's own protocol errors.
pub(crate) fn refusal(err: &PgError) -> Option<Refusal> {
    let code = reason(err)?;
    let (_, message, hint) = describe(err);
    let message = message.strip_prefix("portcullis: ").unwrap_or(&message);
    let policies = match err {
        PgError::ConnectDenied(r) => r.policies.clone(),
        _ => Vec::new(),
    };
    Some(Refusal::new(code, message, hint.unwrap_or_default()).with_policies(policies))
}

/// The SQLSTATE of a refusal: PostgreSQL's own code for the same condition where it has one,
/// else 42501 (insufficient privilege).
pub(crate) fn sqlstate_of(code: Code) -> &'static str {
    use Code::*;
    match code {
        ApprovalCanceled | QueryCanceled => "57014",
        InvalidEncoding => "22021",
        StandardConformingStringsOff => "0A000",
        PreparedStatementsLimit => "54000",
        AuditUnavailable | MaskingUnavailable | CatalogUnavailable | ApprovalsUnavailable
        | ReviewNotFound | ReviewNotPending | ReviewExpired | ReviewStore => "58000",
        _ => "42501",
    }
}

/// The SQLSTATE the client gets for `err`.
pub fn sqlstate(err: &PgError) -> &'static str {
    describe(err).0
}

/// `SQLSTATE: message` as the client saw it, for the audit: never the server's own words.
pub(crate) fn summary(err: &PgError) -> String {
    let (code, message, _) = describe(err);
    format!("{code}: {message}")
}

/// A FATAL ErrorResponse for `err`, after which the door closes the connection.
pub(crate) fn fatal(err: &PgError) -> Bytes {
    let (code, message, hint) = describe(err);
    let detail = reason(err).map(|r| format!("code: {r}"));
    let mut buf = BytesMut::new();
    error_response(
        &mut buf,
        &Report {
            severity: Severity::Fatal,
            code,
            message: &message,
            detail: detail.as_deref(),
            hint: hint.as_deref(),
        },
    );
    buf.freeze()
}

/// The ERROR a client gets in place of a refused statement. The DETAIL is
/// machine-readable for clients: what was refused, `review: ...`, `code: ...` and
/// `policies: ...`, separated by `; `.
pub(crate) fn denial(r: &Refusal) -> Bytes {
    let mut detail: Vec<String> = Vec::with_capacity(4);
    detail.extend(r.context.clone());
    if let Some(id) = &r.review_id {
        detail.push(format!("review: {id}"));
    }
    detail.push(format!("code: {}", r.code));
    if !r.policies.is_empty() {
        detail.push(format!("policies: {}", r.policies.join(", ")));
    }
    let detail = detail.join("; ");
    let mut buf = BytesMut::new();
    error_response(
        &mut buf,
        &Report {
            severity: Severity::Error,
            code: sqlstate_of(r.code),
            message: &r.message,
            detail: Some(&detail),
            hint: (!r.hint.is_empty()).then_some(r.hint.as_str()),
        },
    );
    buf.freeze()
}

/// A NoticeResponse: what the client is told while a statement is held for review.
pub(crate) fn notice(message: &str, detail: Option<&str>, hint: Option<&str>) -> Bytes {
    let mut buf = BytesMut::new();
    portcullis_pgwire::encode_backend::notice_response(
        &mut buf,
        &Report {
            severity: Severity::Notice,
            code: "00000",
            message,
            detail,
            hint,
        },
    );
    buf.freeze()
}

/// What the client is told about a limit of the door's: PostgreSQL's own SQLSTATE for the
/// same condition (and its words where it has them), the limit, and what to do about it.
fn limit(l: Exceeded) -> (&'static str, Cow<'static, str>, Option<Cow<'static, str>>) {
    use Exceeded::*;
    let (code, message, hint): (_, Cow<'static, str>, Cow<'static, str>) = match l {
        SessionsPerPrincipal(n) => (
            "53300",
            format!("portcullis: too many sessions for this identity (at most {n} at once)").into(),
            "close the sessions you no longer use, or reuse one, then retry".into(),
        ),
        SessionsPerConnection(n) => (
            "53300",
            format!("portcullis: too many sessions on this connection (at most {n} at once)")
                .into(),
            "retry in a moment: sessions free up as others end".into(),
        ),
        ServerConnections { limit, waited } => (
            "53300",
            format!(
                "portcullis: all {limit} server connections of this connection stayed in use for {}",
                human(waited)
            )
            .into(),
            "retry in a moment, or with fewer sessions at once; if it persists, tell the gateway operator"
                .into(),
        ),
        ClientStalled(after) => (
            "08P01",
            format!(
                "portcullis: the client sent part of a message and not the rest within {}",
                human(after)
            )
            .into(),
            "send each message whole; check the network between the client and the gateway".into(),
        ),
        IdleSession(after) => (
            "57P05",
            "terminating connection due to idle-session timeout".into(),
            format!(
                "the session sent nothing for {}; reconnect, and close sessions you are done with",
                human(after)
            )
            .into(),
        ),
        IdleInTransaction(after) => (
            "25P03",
            "terminating connection due to idle-in-transaction timeout".into(),
            format!(
                "the transaction was rolled back after {} without a statement; commit or roll back promptly",
                human(after)
            )
            .into(),
        ),
    };
    (code, message, Some(hint))
}

/// `30s`, `10min`, `1h`, `250ms`: a configured duration as the config spells it.
fn human(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".into(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}min", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}
