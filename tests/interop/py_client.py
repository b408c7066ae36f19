"""The official MCP Python SDK as a client-credentials client of the todo server.

Usage: py_client.py URL CLIENT_ID CLIENT_SECRET ISSUER
Discovers everything else from the server URL. Prints one JSON object with
what it saw: the tools, whoami before and after a step-up, add_todo's result.
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client


class MemoryStorage:
    def __init__(self):
        self.tokens = None
        self.info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.info

    async def set_client_info(self, info):
        self.info = info


def text(result):
    return json.loads(result.content[0].text)


async def main(url, client_id, secret, issuer):
    provider = ClientCredentialsOAuthProvider(
        server_url=url,
        storage=MemoryStorage(),
        client_id=client_id,
        client_secret=secret,
        issuer=issuer,
    )
    out = {}
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                out["tools"] = sorted(t.name for t in tools.tools)
                out["whoami"] = text(await session.call_tool("whoami", {}))
                # Needs todo:write: the first token has only todo:read, so this
                # goes through a 403 insufficient_scope step-up.
                out["add_todo"] = text(await session.call_tool("add_todo", {"title": "from python"}))
                out["whoami_after"] = text(await session.call_tool("whoami", {}))
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
