//! The MCP handler: lists the caller's tools and runs them.

use std::sync::Arc;
use std::time::Duration;

use portcullis_identity::Principal;
use portcullis_pipeline::{Ask, ExecDoor, ExecRequest, Origin, ToolCall, ToolSpec};
use portcullis_policy::{Decision, Target};
use rmcp::ErrorData;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, InitializeResult,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::Value;

use super::Caller;
use super::tools::{self, Correlation};
use crate::AppState;

/// One MCP server instance (the SDK makes one per stateless request).
#[derive(Clone)]
pub(crate) struct McpServer {
    state: AppState,
}

impl McpServer {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn caller(ctx: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    ctx.extensions
        .get::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| {
            ErrorData::internal_error("the request carries no authenticated caller", None)
        })
}

fn origin(c: &Caller) -> Origin {
    Origin {
        source_ip: Some(c.peer.ip()),
        protocol: "mcp",
        session_id: None,
        ..Origin::default()
    }
}

/// A run or tool-call id from `_meta`: identifiers, so at most 256 characters (they are
/// written into every audit event of the call).
fn meta_str(meta: Option<&rmcp::model::RequestMetaObject>, key: &str) -> Option<String> {
    meta.and_then(|m| m.0.0.get(key))
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map(str::to_owned)
}

pub(crate) use crate::reviews::visible;

/// A tool a door declared on one of its connections.
pub(crate) struct Declared {
    pub(crate) door: Arc<dyn ExecDoor>,
    pub(crate) connection: String,
    pub(crate) spec: ToolSpec,
}

/// The tool named `name` among those the doors declare on their connections (the first, if
/// two declared the same name). Found by its declared name only: the server assumes nothing
/// of how a door names its tools.
pub(crate) fn declared(doors: &[Arc<dyn ExecDoor>], name: &str) -> Option<Declared> {
    doors.iter().find_map(|door| {
        door.connections().into_iter().find_map(|connection| {
            let spec = door
                .tools(&connection)
                .into_iter()
                .find(|t| t.name == name)?;
            Some(Declared {
                door: door.clone(),
                connection,
                spec,
            })
        })
    })
}

/// The tools `principal` may use: the tools each door declares on each connection whose
/// `connect` the policy does not deny, then the review tools. Each question is an audited
/// decision.
pub(crate) async fn list_for(
    state: &AppState,
    principal: &Principal,
    origin: &Origin,
) -> Result<Vec<Tool>, ErrorData> {
    let mut tools = Vec::new();
    for door in &state.exec {
        for name in door.connections() {
            let declared = door.tools(&name);
            let Some(info) = door.connection_info(&name).filter(|_| !declared.is_empty()) else {
                continue;
            };
            let facts = Value::Null;
            let ask = Ask {
                action: "connect",
                target: Target::Connection(&info),
                facts: &facts,
                command: None,
            };
            let decision = state
                .pipeline
                .decide(principal, &ask, origin)
                .await
                .map_err(|r| ErrorData::internal_error(r.message.clone(), None))?;
            if !matches!(decision, Decision::Deny { .. }) {
                tools.extend(declared.iter().map(tools::tool));
            }
        }
    }
    if state.reviews.is_some() {
        tools.push(tools::check_review_tool());
        tools.push(tools::wait_for_review_tool());
    }
    Ok(tools)
}

impl McpServer {
    /// The ExecRequest of a tool call on `connection`, before the tool's arguments.
    fn request(&self, c: &Caller, connection: &str, corr: &Correlation) -> ExecRequest {
        ExecRequest {
            token: c.token.to_string().into(),
            connection: connection.to_owned(),
            input: String::new(),
            parameters: Vec::new(),
            wait: false,
            peer: c.peer,
            max_rows: self.state.exec_limits.0,
            max_bytes: self.state.exec_limits.1,
            run_id: corr.run_id.clone(),
            tool_call_id: corr.tool_call_id.clone(),
        }
    }

    /// A call of a door's tool, mapped to the door as the tool's declaration says. The door
    /// decides, as it does for `POST /v1/exec`.
    async fn call_declared(
        &self,
        c: &Caller,
        d: Declared,
        args: &serde_json::Map<String, Value>,
        corr: &Correlation,
    ) -> CallToolResult {
        let mut req = self.request(c, &d.connection, corr);
        match d.spec.call {
            ToolCall::Run {
                input,
                parameters,
                example,
            } => {
                match tools::run_arguments((input, parameters, example), args) {
                    Ok((command, values)) => {
                        req.input = command;
                        req.parameters = values;
                    }
                    Err(invalid) => return invalid.result(corr),
                }
                match d.door.exec(req).await {
                    Ok(out) => tools::outcome_result(out, corr),
                    Err(r) => tools::refusal_result(r, corr),
                }
            }
            ToolCall::Describe => match d.door.describe(req).await {
                Ok(described) => tools::described_result(&d.connection, described, corr),
                Err(r) => tools::refusal_result(r, corr),
            },
        }
    }

    async fn review(
        &self,
        c: &Caller,
        args: &serde_json::Map<String, Value>,
        wait: bool,
        corr: &Correlation,
    ) -> CallToolResult {
        let Some(reviews) = &self.state.reviews else {
            return tools::error_result(
                "reviews_disabled",
                "this gateway holds no reviews",
                "approvals are served by the gateway that holds the commands",
                corr,
            );
        };
        let Some(id) = args.get("review_id").and_then(Value::as_str) else {
            return tools::error_result(
                "argument_invalid",
                "`review_id` (a string) is required",
                "pass the review_id a pending query returned",
                corr,
            );
        };
        let not_found = || {
            tools::error_result(
                "review_not_found",
                format!("no review {id:?} that you may see"),
                "use the review_id a pending query returned to you",
                corr,
            )
        };
        let review = match reviews.get(id).await {
            Ok(Some(r)) if visible(&c.principal, &r) => r,
            Ok(_) => return not_found(),
            Err(e) => {
                return tools::error_result(e.code(), e.to_string(), e.hint(), corr);
            }
        };
        let review = if wait && review.status == portcullis_reviews::Status::Pending {
            let secs = args
                .get("timeout_seconds")
                .and_then(Value::as_u64)
                .unwrap_or(tools::DEFAULT_WAIT_SECS)
                .clamp(1, tools::MAX_WAIT_SECS);
            match reviews.wait(id, Duration::from_secs(secs)).await {
                Ok(r) => r,
                Err(e) => return tools::error_result(e.code(), e.to_string(), e.hint(), corr),
            }
        } else {
            review
        };
        tools::review_result(&review, corr)
    }
}

impl rmcp::ServerHandler for McpServer {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("portcullis", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Portcullis gateway: each connection's tools run commands on it under the \
                 gateway's policy (on a SQL connection, query_<connection> runs one statement \
                 and describe_<connection> lists the tables and columns you may read). \
                 Refusals carry a code and a hint; held commands return a review_id to wait on.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let c = caller(&ctx)?;
        let tools = list_for(&self.state, &c.principal, &origin(&c)).await?;
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let c = caller(&ctx)?;
        // The SDK moves the request's `_meta` into the context; look in both.
        let metas = [Some(&ctx.meta), request.meta.as_ref()];
        let from_meta = |key: &str| metas.iter().find_map(|m| meta_str(*m, key));
        let corr = Correlation {
            run_id: from_meta("run_id").or_else(|| c.run_id.clone()),
            tool_call_id: from_meta("tool_call_id").or_else(|| c.tool_call_id.clone()),
        };
        let name = request.name.as_ref();
        tracing::info!(
            tool = name,
            subject = %c.principal.subject,
            run_id = corr.run_id.as_deref().unwrap_or(""),
            tool_call_id = corr.tool_call_id.as_deref().unwrap_or(""),
            "mcp tool call"
        );
        let args = request.arguments.clone().unwrap_or_default();
        // The gateway's own tools first, so that no door's declaration can shadow them.
        let result = if name == tools::CHECK_REVIEW {
            self.review(&c, &args, false, &corr).await
        } else if name == tools::WAIT_FOR_REVIEW {
            self.review(&c, &args, true, &corr).await
        } else if let Some(d) = declared(&self.state.exec, name) {
            self.call_declared(&c, d, &args, &corr).await
        } else {
            return Err(ErrorData::invalid_params(
                format!("no tool named {name:?}; call tools/list for the tools you may use"),
                None,
            ));
        };
        Ok(result.into())
    }
}
