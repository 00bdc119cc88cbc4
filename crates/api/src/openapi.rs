//! The OpenAPI 3.1 document for `/v1`. Written by hand: the API is small, and a document
//! kept beside the routes is easier to review than one generated from annotations.
//! `tests` check that every routed path is documented.

use axum::Json;
use serde_json::{Value, json};

#[cfg(test)]
pub(crate) const PATHS: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/whoami",
    "/v1/revocations",
    "/v1/admin/reload",
    "/v1/connections/{name}/refresh",
    "/v1/openapi.json",
    "/v1/reviews",
    "/v1/reviews/{id}",
    "/v1/reviews/{id}/approve",
    "/v1/reviews/{id}/deny",
    "/v1/exec",
    "/v1/sessions",
    "/v1/sessions/{id}",
    "/v1/sessions/{id}/recording",
];

fn problem_response(desc: &str) -> Value {
    json!({
        "description": desc,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

pub(crate) fn spec() -> Value {
    let unauthorized = problem_response("Token missing or rejected; `code` names the reason");
    let forbidden = problem_response("Denied by policy; `code`, `policies` and `hint` say why");
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Portcullis API", "version": env!("CARGO_PKG_VERSION")},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail", "code", "hint"],
                    "properties": {
                        "type": {"type": "string"}, "title": {"type": "string"},
                        "status": {"type": "integer"}, "detail": {"type": "string"},
                        "code": {"type": "string"}, "hint": {"type": "string"},
                        "policies": {"type": "array", "items": {"type": "string"}}
                    }
                },
                "Principal": {
                    "type": "object",
                    "required": ["subject", "issuer", "groups", "kind", "expires_at", "valid_until"],
                    "properties": {
                        "subject": {"type": "string"}, "issuer": {"type": "string"},
                        "client_id": {"type": "string"},
                        "groups": {"type": "array", "items": {"type": "string"}},
                        "kind": {"enum": ["machine", "human"]},
                        "delegation": {"type": "array", "items": {"type": "object"}},
                        "token_id": {"type": "string"},
                        "expires_at": {"type": "integer", "description": "the token's exp (Unix seconds)"},
                        "valid_until": {"type": "integer", "description": "exp plus the issuer's leeway: when the principal's authority ends on every door (Unix seconds)"},
                        "issued_at": {"type": "integer"}
                    }
                },
                "Review": {
                    "type": "object",
                    "required": ["id", "status", "requester", "connection", "action", "command", "reviewers", "approvals_needed"],
                    "properties": {
                        "id": {"type": "string"},
                        "status": {"enum": ["pending", "approved", "denied", "expired", "executed"]},
                        "requester": {"type": "object"}, "connection": {"type": "string"},
                        "action": {"type": "string"}, "command": {"type": "string"},
                        "policies": {"type": "array", "items": {"type": "string"}},
                        "reviewers": {"type": "array", "items": {"type": "string"}},
                        "approvals_needed": {"type": "integer"},
                        "approvals": {"type": "array", "items": {"type": "object"}},
                        "denial": {"type": ["object", "null"]},
                        "created_ms": {"type": "integer"}, "expires_ms": {"type": "integer"}
                    }
                },
                "Receipt": {
                    "type": "object", "required": ["seq", "action", "outcome"],
                    "description": "one audited decision the command took: its audit seq, what was asked, the outcome",
                    "properties": {
                        "seq": {"type": "integer"}, "action": {"type": "string"},
                        "outcome": {"type": "string"},
                        "policies": {"type": "array", "items": {"type": "string"}}
                    }
                },
                "ExecDone": {
                    "description": "The command ran: the door's output beside `status`, its kind named by `output`",
                    "oneOf": [
                        {"$ref": "#/components/schemas/ExecRows"},
                        {"$ref": "#/components/schemas/ExecStream"},
                        {"$ref": "#/components/schemas/ExecHttp"}
                    ],
                    "discriminator": {"propertyName": "output", "mapping": {
                        "rows": "#/components/schemas/ExecRows",
                        "stream": "#/components/schemas/ExecStream",
                        "http": "#/components/schemas/ExecHttp"
                    }}
                },
                "ExecRows": exec_done("rows", "SQL doors: column names and rows of (masked) text values; null is NULL", json!({
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "rows": {"type": "array", "items": {"type": "array", "items": {"type": ["string", "null"]}}},
                    "row_count": {"type": "integer", "description": "rows the statement produced or changed, even when fewer are returned"},
                    "truncated": {"type": "boolean", "description": "rows were left out by the gateway's limits"}
                })),
                "ExecStream": exec_done("stream", "command and terminal doors: what the command wrote (masked) and how it ended", json!({
                    "stdout": {"type": "string"}, "stderr": {"type": "string"},
                    "exit_status": {"type": ["integer", "null"], "description": "null when the command ended without one (a signal, or the session closed first)"},
                    "truncated": {"type": "boolean", "description": "output was left out by the gateway's limits"}
                })),
                "ExecHttp": exec_done("http", "HTTP doors: the (masked) response", json!({
                    "status_code": {"type": "integer", "description": "the HTTP status (`status` is the outcome's)"},
                    "headers": {"type": "array", "description": "[name, value] pairs in the order received; a repeated header once per value",
                        "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}},
                    "body": {"type": "string", "description": "UTF-8 text as it is, or standard padded base64 when not UTF-8 (see body_encoding)"},
                    "body_encoding": {"enum": ["utf8", "base64"]},
                    "truncated": {"type": "boolean", "description": "the body was cut short by the gateway's limits"}
                })),
                "ExecPending": {
                    "type": "object",
                    "required": ["status", "review_id", "message", "hint", "session_id", "decision", "decisions"],
                    "properties": {
                        "status": {"const": "pending"},
                        "review_id": {"type": "string"}, "message": {"type": "string"},
                        "hint": {"type": "string"}, "session_id": {"type": ["string", "null"]},
                        "decision": {"type": "string"},
                        "decisions": {"type": "array", "items": {"$ref": "#/components/schemas/Receipt"}}
                    }
                },
                "Revocation": {
                    "type": "object", "required": ["kind", "value"],
                    "properties": {
                        "kind": {"enum": ["subject", "client_id", "token_id"]},
                        "value": {"type": "string"}, "reason": {"type": "string"}
                    }
                }
            }
        },
        "paths": {
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"summary": "Readiness (store reachable, policies loaded)",
                "responses": {"200": {"description": "ready"}, "503": problem_response("not ready")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition"}}}},
            "/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/v1/whoami": {"get": {
                "summary": "The principal resolved from the bearer token",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {"description": "principal", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Principal"}}}},
                    "401": unauthorized
                }
            }},
            "/v1/revocations": {
                "get": {"summary": "Revocations in force (action admin.read)", "security": [{"bearer": []}],
                    "responses": {"200": {"description": "list"}, "401": unauthorized, "403": forbidden}},
                "post": {"summary": "Revoke a subject, client id or token id at once (action admin.revoke)",
                    "security": [{"bearer": []}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Revocation"}}}},
                    "responses": {"201": {"description": "revoked"}, "400": problem_response("bad body"), "401": unauthorized, "403": forbidden}}
            },
            "/v1/reviews": {"get": {
                "summary": "Reviews the caller asked for or whose reviewer groups it is in",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"enum": ["pending", "approved", "denied", "expired", "executed", "all"]}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 1000}}
                ],
                "responses": {"200": {"description": "{\"reviews\": [Review]}"}, "401": unauthorized}
            }},
            "/v1/reviews/{id}": {"get": {
                "summary": "One review; `wait` long-polls until it leaves pending (at most 60s)",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "wait", "in": "query", "schema": {"type": "string", "examples": ["30s"]}}
                ],
                "responses": {"200": {"description": "the review", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Review"}}}},
                    "401": unauthorized, "404": problem_response("no such review, or not yours to see")}
            }},
            "/v1/reviews/{id}/approve": {"post": verdict("Approve the held command (a reviewer group member; not the requester)", &unauthorized)},
            "/v1/reviews/{id}/deny": {"post": verdict("Deny the held command; the comment reaches the agent", &unauthorized)},
            "/v1/exec": {"post": {
                "summary": "Run one command through its connection's door (masked result, or 202 with the review id when approval is needed)",
                "security": [{"bearer": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["connection", "input"],
                    "properties": {"connection": {"type": "string"}, "input": {"type": "string"},
                        "parameters": {"type": "array", "description": "values bound to $1, $2, ... (text; null is NULL; objects and arrays as JSON text)"},
                        "wait": {"type": "boolean", "description": "wait up to the hold time for approval"}}}}}},
                "responses": {
                    "200": {"description": "it ran: `output` names the door's kind of result (rows, stream, http)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExecDone"}}}},
                    "202": {"description": "held for approval: the review id to wait on",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExecPending"}}}},
                    "401": unauthorized, "403": forbidden,
                    "404": problem_response("no such connection"),
                    "422": problem_response("the target refused the statement")
                }
            }},
            "/v1/sessions": {"get": {
                "summary": "Sessions opened in a period, from the audit trail (action admin.read)",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "principal", "in": "query", "schema": {"type": "string"}},
                    {"name": "connection", "in": "query", "schema": {"type": "string"}},
                    {"name": "since_ms", "in": "query", "schema": {"type": "integer"}},
                    {"name": "until_ms", "in": "query", "schema": {"type": "integer"}}
                ],
                "responses": {"200": {"description": "{\"sessions\": [...]}"}, "401": unauthorized, "403": forbidden}
            }},
            "/v1/sessions/{id}": {"get": {
                "summary": "One session: who, identity and token id, connection, duration, decisions, masking, recording hash (admin.read)",
                "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "session"}, "401": unauthorized, "403": forbidden, "404": problem_response("no such session")}
            }},
            "/v1/sessions/{id}/recording": {"get": {
                "summary": "The session's recording, JSONL with masked values only (admin.read)",
                "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "application/x-ndjson"}, "401": unauthorized, "403": forbidden, "404": problem_response("no such recording")}
            }},
            "/v1/admin/reload": {"post": {
                "summary": "Recompile policies (action admin.reload); a bad set keeps the old one",
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "reloaded"}, "401": unauthorized, "403": forbidden,
                    "422": problem_response("the new policies have problems; the old ones stay")}
            }},
            "/v1/connections/{name}/refresh": {"post": {
                "summary": "Read the connection's catalog again now: relations, views, functions, triggers, rules (action admin.refresh)",
                "security": [{"bearer": []}],
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "refreshed: {connection, refreshed, relations, user_functions}"},
                    "401": unauthorized, "403": forbidden, "404": problem_response("no such connection"),
                    "503": problem_response("the catalog could not be read")}
            }}
        }
    })
}

/// A `done` exec answer whose output is `kind`, with that output's `fields`.
fn exec_done(kind: &str, description: &str, fields: Value) -> Value {
    let mut properties = json!({
        "status": {"const": "done"},
        "output": {"const": kind},
        "session_id": {"type": ["string", "null"]},
        "decision": {"type": "string", "description": "the outcome of the command's own last decision (allow, ...)"},
        "decisions": {"type": "array", "items": {"$ref": "#/components/schemas/Receipt"}}
    });
    let mut required = vec![json!("status"), json!("output"), json!("session_id")];
    if let (Value::Object(p), Value::Object(f)) = (&mut properties, fields) {
        for (name, schema) in f {
            required.push(json!(name));
            p.insert(name, schema);
        }
    }
    required.extend([json!("decision"), json!("decisions")]);
    json!({
        "type": "object",
        "description": description,
        "required": required,
        "properties": properties
    })
}

fn verdict(summary: &str, unauthorized: &Value) -> Value {
    json!({
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"comment": {"type": "string"}}}}}},
        "responses": {
            "200": {"description": "the review after the verdict", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Review"}}}},
            "401": unauthorized,
            "403": problem_response("not in a reviewer group (`reviewer_not_in_group`) or your own request (`self_approval`)"),
            "404": problem_response("no such review"),
            "409": problem_response("not pending any more, expired, or you already reviewed it")
        }
    })
}

pub(crate) async fn document() -> Json<Value> {
    Json(spec())
}

#[cfg(test)]
mod tests {
    /// Each exec output kind is documented with the fields its JSON has.
    #[test]
    fn exec_outputs_are_documented() {
        let spec = super::spec();
        let schemas = &spec["components"]["schemas"];
        for (schema, kind, field) in [
            ("ExecRows", "rows", "row_count"),
            ("ExecStream", "stream", "exit_status"),
            ("ExecHttp", "http", "status_code"),
        ] {
            let s = &schemas[schema];
            assert_eq!(s["properties"]["output"]["const"], kind);
            assert!(s["properties"].get(field).is_some(), "{schema}");
            let required = s["required"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            assert!(required.iter().any(|r| r == field), "{schema}");
            assert!(
                schemas["ExecDone"]["discriminator"]["mapping"][kind].is_string(),
                "{kind}"
            );
        }
    }

    #[test]
    fn every_route_is_documented() {
        let spec = super::spec();
        for p in super::PATHS {
            assert!(spec["paths"].get(*p).is_some(), "{p} missing from OpenAPI");
        }
    }
}
