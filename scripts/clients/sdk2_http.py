"""Real-client test: the official Python SDK `mcp` 2.x high-level `Client` over
Streamable HTTP. Env: MCP_URL (…/mcp), MCP_KEY (API key). Exit 1 on any failed check."""

import asyncio
import os
import uuid

import httpx2  # mcp 2.x ships its own httpx fork; its Client takes a Transport, not headers
import checks
from checks import check
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

URL = os.environ.get("MCP_URL", "http://127.0.0.1:18080/mcp")
KEY = os.environ["MCP_KEY"]


def payload(result):
    return checks.payload(result.structured_content, result.content)


async def main(mode):
    # Client("url") cannot set headers, so hand it a transport built on an authenticated httpx2 client.
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        async with Client(streamable_http_client(URL, http_client=http), mode=mode) as client:
            print(f"mode {mode}: protocol {client.protocol_version}, server {client.server_info.name}")
            tools = {t.name: t for t in (await client.list_tools()).tools}
            check("tools/list has whoami and create_context", {"whoami", "create_context"} <= tools.keys(), sorted(tools))
            hints = tools.get("delete_context") and tools["delete_context"].annotations
            check("delete_context destructiveHint", bool(hints and hints.destructive_hint is True), repr(hints))

            who = await client.call_tool("whoami", {})
            check("whoami tenant_name == default", not who.is_error and payload(who).get("tenant_name") == "default", repr(who))

            name = f"sdk2-{uuid.uuid4().hex[:12]}"
            created = await client.call_tool("create_context", {"name": name, "description": "mcp 2.x client test"})
            ctx_id = None if created.is_error else payload(created).get("id")
            check("create_context returns an id", bool(ctx_id), repr(created))

            items = [
                {"role": "user", "content": f"first note zebracorn {name}"},
                {"role": "assistant", "content": "second note about pelicans"},
            ]
            appended = await client.call_tool("append_to_context", {"context_id": ctx_id, "items": items})
            check("append_to_context two items", not appended.is_error, repr(appended))

            got = await client.call_tool("get_context", {"context_id": ctx_id, "full_content": True})
            got_items = payload(got).get("items", []) if not got.is_error else []
            contents = [i.get("content") for i in got_items]
            check("get_context returns both items in order", contents == [i["content"] for i in items], repr(got_items))

            found = await client.call_tool("search_context", {"query": "zebracorn", "context_id": ctx_id})
            hits = [] if found.is_error else payload(found).get("hits", [])
            check("search_context finds one", [h.get("seq") for h in hits] == [1], repr(found))

            missing = await client.call_tool("get_context", {"context_id": str(uuid.uuid4())})
            # Tool errors name their code in the text (and in _meta), never in structured content.
            text = missing.content[0].text if missing.content else ""
            check("get_context of a random UUID isError not_found", missing.is_error and "[not_found]" in text, repr(missing))

            deleted = await client.call_tool("delete_context", {"context_id": ctx_id})
            check("delete_context", not deleted.is_error and payload(deleted).get("deleted") == ctx_id, repr(deleted))


# "auto" probes server/discover and lands on the newest protocol (stateless); "legacy" forces the
# initialize handshake with an Mcp-Session-Id, the path 2025-era clients take.
for mode in ("auto", "legacy"):
    checks.guarded(f"sdk2_http ({mode})", lambda: asyncio.run(main(mode)))
checks.finish("sdk2_http")
