"""An MCP server with no auth of its own (the official Python SDK:
MCPServer, streamable HTTP), for guard_proxy to protect.

Usage: py_server.py PORT EXECUTED_LOG

Every tool, resource and prompt it executes is appended to EXECUTED_LOG as
one JSON line: what ran ({"tool": ..., "arguments": ...}, {"resource":
...} or {"prompt": ...}), the session it ran in, whose session that is (the
subject whose request the session was issued to) and for whom (the
proxy's identity header). The differential harness and the attack test
compare it with what the guard judged. `whoami` answers with the identity
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
# Session id -> the subject whose request the server issued it to.
owners: dict[str, str | None] = {}


def headers(ctx: Context) -> dict:
    request = ctx.request_context.request
    return dict(request.headers) if request is not None else {}


def executed(ctx: Context, what: dict) -> None:
    h = headers(ctx)
    session = h.get("mcp-session-id")
    line = {**what, "session": session, "owner": owners.get(session) if session else None,
            "subject": h.get("x-mcp-subject")}
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


@server.tool(description="Who is calling, as the proxy says")
def whoami(ctx: Context) -> str:
    h = headers(ctx)
    executed(ctx, {"tool": "whoami", "arguments": {}})
    return json.dumps({
        "sub": h.get("x-mcp-subject"),
        "client_id": h.get("x-mcp-client-id"),
        "scopes": (h.get("x-mcp-scopes") or "").split(),
        "authorization_forwarded": "authorization" in h,
        "dpop_forwarded": "dpop" in h,
    })


@server.tool(description="List the to-do items")
def list_todos(ctx: Context) -> str:
    executed(ctx, {"tool": "list_todos", "arguments": {}})
    return json.dumps(todos)


@server.tool(description="Add a to-do item")
def add_todo(title: str, ctx: Context) -> str:
    executed(ctx, {"tool": "add_todo", "arguments": {"title": title}})
    todo = {"id": len(todos) + 1, "title": title, "owner": headers(ctx).get("x-mcp-subject")}
    todos.append(todo)
    return json.dumps(todo)


@server.tool(description="Delete one of your to-do items")
def delete_todo(id: int, ctx: Context) -> str:
    executed(ctx, {"tool": "delete_todo", "arguments": {"id": id}})
    owner = headers(ctx).get("x-mcp-subject")
    before = len(todos)
    todos[:] = [t for t in todos if not (t["id"] == id and t["owner"] == owner)]
    return json.dumps({"deleted": before != len(todos)})


# Templates only: the SDK gives static resources no Context (and so no
# request headers to log).
@server.resource("file:///public/{name}")
def public_any(name: str, ctx: Context) -> str:
    executed(ctx, {"resource": f"file:///public/{name}"})
    return f"public {name}"


@server.resource("file:///secret/{name}")
def secret_any(name: str, ctx: Context) -> str:
    executed(ctx, {"resource": f"file:///secret/{name}"})
    return f"secret {name}"


@server.prompt(description="A greeting")
def hello(ctx: Context) -> str:
    executed(ctx, {"prompt": "hello"})
    return "hello"


@server.prompt(description="Secret")
def secret_prompt(ctx: Context) -> str:
    executed(ctx, {"prompt": "secret_prompt"})
    return "secret"


inner = server.streamable_http_app()


async def app(scope, receive, send):
    """Records who each session the server issues belongs to."""
    if scope["type"] != "http":
        return await inner(scope, receive, send)
    request_headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

    async def send_and_record(message):
        if message["type"] == "http.response.start" and "mcp-session-id" not in request_headers:
            for k, v in message.get("headers", []):
                if k.decode("latin-1").lower() == "mcp-session-id":
                    owners.setdefault(v.decode("latin-1"), request_headers.get("x-mcp-subject"))
        await send(message)

    return await inner(scope, receive, send_and_record)


uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning")
