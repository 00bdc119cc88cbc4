"""AutoGen tools for agents that reach databases through the Portcullis gateway.

- :func:`portcullis_workbench`: an ``McpWorkbench`` on the gateway's MCP server.
- :func:`sql_tool`: a SQL tool over ``POST /v1/exec`` for agents that do not use MCP.
- Token providers: :class:`ClientCredentials`, :class:`TokenFile`, :class:`StaticToken`.
"""

from ._http import RUN_ID_HEADER, TOOL_CALL_ID_HEADER, BearerAuth, GatewayUnavailable, PortcullisError
from .exec import ExecAnswer, ExecClient, SqlTool, format_answer, sql_tool
from .tokens import (
    ClientCredentials,
    StaticToken,
    TokenError,
    TokenFile,
    TokenProvider,
    jwt_expiry,
    token_provider_from_env,
)
from .workbench import PortcullisWorkbench, portcullis_workbench, result_parts

__all__ = [
    "RUN_ID_HEADER",
    "TOOL_CALL_ID_HEADER",
    "BearerAuth",
    "ClientCredentials",
    "ExecAnswer",
    "ExecClient",
    "GatewayUnavailable",
    "PortcullisError",
    "PortcullisWorkbench",
    "SqlTool",
    "StaticToken",
    "TokenError",
    "TokenFile",
    "TokenProvider",
    "format_answer",
    "jwt_expiry",
    "portcullis_workbench",
    "result_parts",
    "sql_tool",
    "token_provider_from_env",
]
