-- wrk script: POSTs `tools/call` over Streamable HTTP, round-robin over the
-- sessions listed one per line in the file $WRK_SESSIONS (any request may
-- name any session; sessions are not tied to connections).
-- Environment: WRK_SESSIONS (required), WRK_KEY (bearer key, optional),
-- WRK_TOOL (default test_simple_text), WRK_ARGS (JSON, default {}).
--
-- The requests are built once, at start: a ring of 16 per session, each
-- with its own id, so no id is reused while the request that had it can
-- still be in flight. Building them per request in Lua took CPU that wrk
-- shares with the server under test, which a fast server pays for and a
-- slow one does not.
local sessions = {}
for line in io.lines(os.getenv("WRK_SESSIONS")) do sessions[#sessions + 1] = line end
local tool = os.getenv("WRK_TOOL") or "test_simple_text"
local args = os.getenv("WRK_ARGS") or "{}"
local key = os.getenv("WRK_KEY")
local ring = {}
local n = 0

init = function()
  for id = 1, #sessions * 16 do
    local headers = {
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json, text/event-stream",
      ["Mcp-Session-Id"] = sessions[(id % #sessions) + 1],
      ["Mcp-Protocol-Version"] = "2025-06-18",
    }
    if key and key ~= "" then headers["Authorization"] = "Bearer " .. key end
    local body = '{"jsonrpc":"2.0","id":' .. id .. ',"method":"tools/call","params":{"name":"'
      .. tool .. '","arguments":' .. args .. '}}'
    ring[id] = wrk.format("POST", nil, headers, body)
  end
end

request = function()
  n = n % #ring + 1
  return ring[n]
end
