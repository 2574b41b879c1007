"""Real-client test: the official Python SDK `mcp` 1.x (`mcp[ws]<2`) ClientSession over
its WebSocket transport. Env: MCP_WS_URL (ws://…/ws), MCP_KEY. Exit 1 on any failed check."""

import asyncio
import json
import os
import sys
import uuid
import warnings

from mcp import ClientSession
from mcp.client.websocket import websocket_client

URL = os.environ.get("MCP_WS_URL", "ws://127.0.0.1:18080/ws")
KEY = os.environ["MCP_KEY"]
passed = failed = 0
warnings.simplefilter("ignore", DeprecationWarning)  # 1.x marks its WebSocket transport deprecated


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def payload(result):
    """A tool's JSON result: structuredContent, else the first text block parsed."""
    if result.structuredContent is not None:
        return result.structuredContent
    return json.loads(result.content[0].text)


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


try:
    asyncio.run(main())
except Exception as exc:  # a crash (connect, protocol) is a failure too, not a traceback-only exit
    failed += 1
    print(f"FAIL sdk1_websocket crashed: {exc!r}")
print(f"sdk1_websocket: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
