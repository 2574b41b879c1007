"""Benchmark peer: the official Python MCP SDK (1.x FastMCP) serving one trivial
tool, `echo(message: str) -> str`, over Streamable HTTP at
http://127.0.0.1:PORT/mcp. Stateful (the SDK's default: the server hands out an
Mcp-Session-Id on initialize), SSE responses (the default, json_response=False).

    python python_echo.py [PORT]        # or PORT=... in the environment; default 8000

Log level defaults to WARNING so that uvicorn's per-request access log and the
SDK's per-request INFO lines stay out of the measurement; PY_ECHO_LOG_LEVEL=INFO
turns them back on.
"""

import os
import sys

from mcp.server.fastmcp import FastMCP

port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8000"))

mcp = FastMCP(
    "python-echo",
    host="127.0.0.1",
    port=port,
    log_level=os.environ.get("PY_ECHO_LOG_LEVEL", "WARNING"),
)


@mcp.tool()
def echo(message: str) -> str:
    """Echoes back the input string."""
    return message


if __name__ == "__main__":
    mcp.run(transport="streamable-http")
