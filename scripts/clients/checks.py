"""What the client tests share: counted checks, tool payloads, and the closing
`name: N passed, M failed` line that scripts/clients.sh adds up."""

import json
import sys

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def payload(structured, content):
    """A tool's JSON result: its structured content, else the first text block parsed.
    (The 1.x and 2.x SDKs name the fields differently, so callers pass them in.)"""
    if structured is not None:
        return structured
    return json.loads(content[0].text)


def guarded(label, run):
    """Runs `run()`; a crash (connect, protocol) is a failure too, not a traceback-only exit."""
    global failed
    try:
        run()
    except Exception as exc:
        failed += 1
        print(f"FAIL {label} crashed: {exc!r}")


def finish(name):
    print(f"{name}: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
