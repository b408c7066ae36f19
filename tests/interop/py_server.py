"""An MCP server with the todo tools and no auth of its own (the official
Python SDK: MCPServer, streamable HTTP), for guard_proxy to protect.

Usage: py_server.py PORT EXECUTED_LOG

Every tool it executes is appended to EXECUTED_LOG as one JSON line
({"tool": ..., "arguments": ...}): the attack test checks that nothing a
read-only token must not do got here. `whoami` answers with the identity
headers the proxy sets (and whether an Authorization header arrived).
"""

import json
import sys

import uvicorn
from mcp.server import MCPServer
from mcp.server.mcpserver import Context

PORT = int(sys.argv[1])
LOG = sys.argv[2]

server = MCPServer("py-todo", version="1.0.0")
todos: list[dict] = []


def executed(tool: str, arguments: dict) -> None:
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps({"tool": tool, "arguments": arguments}) + "\n")


def headers(ctx: Context) -> dict:
    request = ctx.request_context.request
    return dict(request.headers) if request is not None else {}


@server.tool(description="Who is calling, as the proxy says")
def whoami(ctx: Context) -> str:
    h = headers(ctx)
    executed("whoami", {})
    return json.dumps({
        "sub": h.get("x-mcp-subject"),
        "client_id": h.get("x-mcp-client-id"),
        "scopes": (h.get("x-mcp-scopes") or "").split(),
        "authorization_forwarded": "authorization" in h,
        "dpop_forwarded": "dpop" in h,
    })


@server.tool(description="List the to-do items")
def list_todos() -> str:
    executed("list_todos", {})
    return json.dumps(todos)


@server.tool(description="Add a to-do item")
def add_todo(title: str, ctx: Context) -> str:
    executed("add_todo", {"title": title})
    todo = {"id": len(todos) + 1, "title": title, "owner": headers(ctx).get("x-mcp-subject")}
    todos.append(todo)
    return json.dumps(todo)


@server.tool(description="Delete one of your to-do items")
def delete_todo(id: int, ctx: Context) -> str:
    executed("delete_todo", {"id": id})
    owner = headers(ctx).get("x-mcp-subject")
    before = len(todos)
    todos[:] = [t for t in todos if not (t["id"] == id and t["owner"] == owner)]
    return json.dumps({"deleted": before != len(todos)})


app = server.streamable_http_app()
uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning")
