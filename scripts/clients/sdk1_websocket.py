"""Real-client test: the official Python SDK `mcp` 1.x (`mcp[ws]<2`) ClientSession over
its WebSocket transport. Env: MCP_WS_URL (ws://…/ws), MCP_KEY. Exit 1 on any failed check."""

import asyncio
import os
import uuid
import warnings

import checks
from checks import check
from mcp import ClientSession
from mcp.client.websocket import websocket_client

URL = os.environ.get("MCP_WS_URL", "ws://127.0.0.1:18080/ws")
KEY = os.environ["MCP_KEY"]
warnings.simplefilter("ignore", DeprecationWarning)  # 1.x marks its WebSocket transport deprecated


def payload(result):
    return checks.payload(result.structuredContent, result.content)


async def main():
    # websocket_client(url) takes no headers or extra subprotocols, so the key rides in the query.
    async with websocket_client(f"{URL}?api_key={KEY}") as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            check("initialize", init.serverInfo.name == "devops-mcp", repr(init.serverInfo))
            print(f"connected: protocol {init.protocolVersion}")

            tools = {t.name for t in (await session.list_tools()).tools}
            check("tools/list has whoami and create_context", {"whoami", "create_context"} <= tools, sorted(tools))

            who = await session.call_tool("whoami", {})
            check("whoami tenant_name == default", not who.isError and payload(who).get("tenant_name") == "default", repr(who))

            name = f"sdk1-ws-{uuid.uuid4().hex[:12]}"
            created = await session.call_tool("create_context", {"name": name})
            ctx_id = None if created.isError else payload(created).get("id")
            check("create_context returns an id", bool(ctx_id), repr(created))

            got = await session.call_tool("get_context", {"context_id": ctx_id})
            check("get_context returns it", not got.isError and payload(got)["context"]["name"] == name, repr(got))

            deleted = await session.call_tool("delete_context", {"context_id": ctx_id})  # leave no litter
            check("delete_context", not deleted.isError, repr(deleted))


checks.guarded("sdk1_websocket", lambda: asyncio.run(main()))
checks.finish("sdk1_websocket")
