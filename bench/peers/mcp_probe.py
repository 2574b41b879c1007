#!/usr/bin/env python3
"""Small MCP Streamable HTTP client for bench/run.sh (standard library only).

  mcp_probe.py wait-ready --url URL [--header 'N: v']... [--key-log FILE]
                          [--started FILE] [--timeout S]
      Polls `initialize` every ~2 ms until one answers HTTP 200 with a JSON-RPC
      result, then prints {"ready_at": <unix seconds, float>, "attempts": n,
      "key": <bearer key or null>} and exits 0 (1 on timeout). Start it BEFORE
      the server: it touches --started once it is polling, so Python's own
      start-up is not counted; the caller subtracts its spawn timestamp.
      --key-log FILE: read the bootstrap key (dmcp_...) from the server's log
      and send it as `Authorization: Bearer` (devops-mcp).

  mcp_probe.py hold --url URL [--header 'N: v']... --sessions N --ready-file F
                    [--hold-timeout S] [--no-delete]
      Opens N sessions one after another (initialize + notifications/initialized,
      keeping each Mcp-Session-Id), writes {"opened": n, "errors": e,
      "open_ms": t} to F, then holds them (no traffic) until SIGTERM/SIGINT or
      --hold-timeout, and finally DELETEs them (bounded to 20 s). Sessions are
      kept server-side only: the helper does not keep one TCP connection per
      session open (Node and uvicorn close idle keep-alive connections after 5 s
      anyway), so the memory measured is the servers' session state.
"""

import argparse
import http.client
import json
import os
import re
import signal
import sys
import time
import urllib.parse

PROTOCOL = "2025-06-18"
KEY_RE = re.compile(r"dmcp_[a-z0-9]{12}_[A-Za-z0-9]{40}")


def init_body(req_id):
    return json.dumps({
        "jsonrpc": "2.0", "id": req_id, "method": "initialize",
        "params": {"protocolVersion": PROTOCOL, "capabilities": {},
                   "clientInfo": {"name": "bench-probe", "version": "0"}},
    })


def parse_headers(pairs):
    out = {}
    for h in pairs or []:
        name, _, value = h.partition(":")
        out[name.strip()] = value.strip()
    return out


def jsonrpc_messages(content_type, body):
    """The JSON-RPC messages in a JSON or SSE response body."""
    text = body.decode("utf-8", "replace")
    if "text/event-stream" in (content_type or ""):
        msgs = []
        for event in re.split(r"\r?\n\r?\n", text):
            data = "\n".join(line[5:].lstrip() for line in event.splitlines() if line.startswith("data:"))
            if data.strip():
                try:
                    msgs.append(json.loads(data))
                except ValueError:
                    pass
        return msgs
    try:
        parsed = json.loads(text)
    except ValueError:
        return []
    return parsed if isinstance(parsed, list) else [parsed]


class Conn:
    def __init__(self, url, headers, timeout):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path or "/"
        self.headers = headers
        self.timeout = timeout
        self.conn = None

    def request(self, method, body=None, extra=None):
        hdrs = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        hdrs.update(self.headers)
        hdrs.update(extra or {})
        for attempt in (0, 1):  # one retry on a stale keep-alive connection
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, self.path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    self.close()
                return resp.status, resp.getheader("mcp-session-id"), resp.getheader("content-type"), data
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def wait_ready(args):
    headers = parse_headers(args.header)
    if args.started:
        open(args.started, "w").close()
    deadline = time.monotonic() + args.timeout
    key = None
    attempts = 0
    while time.monotonic() < deadline:
        if args.key_log and key is None:
            try:
                with open(args.key_log, errors="replace") as f:
                    m = KEY_RE.search(f.read())
            except FileNotFoundError:
                m = None
            if not m:
                time.sleep(0.002)
                continue
            key = m.group(0)
            headers["Authorization"] = f"Bearer {key}"
        attempts += 1
        conn = Conn(args.url, headers, timeout=5)
        try:
            status, _, ctype, body = conn.request("POST", init_body(1))
            if status == 200 and any("result" in m for m in jsonrpc_messages(ctype, body)):
                print(json.dumps({"ready_at": time.time(), "attempts": attempts, "key": key}))
                return 0
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.002)
    print(f"wait-ready: {args.url} not ready within {args.timeout} s", file=sys.stderr)
    return 1


def hold(args):
    headers = parse_headers(args.header)
    stop = {"flag": False}

    def on_signal(*_):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    conn = Conn(args.url, headers, timeout=10)
    sessions, errors = [], 0
    t0 = time.monotonic()
    for i in range(args.sessions):
        if stop["flag"]:
            break
        try:
            status, sid, ctype, body = conn.request("POST", init_body(i + 1))
            if status != 200 or not any("result" in m for m in jsonrpc_messages(ctype, body)):
                errors += 1
                continue
            extra = {"MCP-Protocol-Version": PROTOCOL}
            if sid:
                extra["Mcp-Session-Id"] = sid
            status, _, _, _ = conn.request(
                "POST", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), extra)
            if status not in (200, 202):
                errors += 1
                continue
            sessions.append(sid)
        except OSError:
            errors += 1
            conn.close()
    open_ms = (time.monotonic() - t0) * 1000
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"opened": len(sessions), "errors": errors, "open_ms": round(open_ms, 1)}, f)
    os.replace(tmp, args.ready_file)

    deadline = time.monotonic() + args.hold_timeout
    while not stop["flag"] and time.monotonic() < deadline:
        time.sleep(0.05)

    if not args.no_delete:
        end = time.monotonic() + 20
        for sid in sessions:
            if sid is None or time.monotonic() > end:
                break
            try:
                conn.request("DELETE", None, {"Mcp-Session-Id": sid, "MCP-Protocol-Version": PROTOCOL})
            except OSError:
                conn.close()
    conn.close()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait-ready")
    w.add_argument("--url", required=True)
    w.add_argument("--header", action="append")
    w.add_argument("--key-log")
    w.add_argument("--started")
    w.add_argument("--timeout", type=float, default=60)
    h = sub.add_parser("hold")
    h.add_argument("--url", required=True)
    h.add_argument("--header", action="append")
    h.add_argument("--sessions", type=int, required=True)
    h.add_argument("--ready-file", required=True)
    h.add_argument("--hold-timeout", type=float, default=120)
    h.add_argument("--no-delete", action="store_true")
    args = p.parse_args()
    return wait_ready(args) if args.cmd == "wait-ready" else hold(args)


if __name__ == "__main__":
    sys.exit(main())
