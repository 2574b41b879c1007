-- wrk script: POSTs `tools/call` over Streamable HTTP, round-robin over the
-- sessions listed one per line in the file $WRK_SESSIONS (any request may
-- name any session; sessions are not tied to connections).
-- Environment: WRK_SESSIONS (required), WRK_KEY (bearer key, optional),
-- WRK_TOOL (default test_simple_text), WRK_ARGS (JSON, default {}).
local sessions = {}
for line in io.lines(os.getenv("WRK_SESSIONS")) do sessions[#sessions + 1] = line end
local tool = os.getenv("WRK_TOOL") or "test_simple_text"
local args = os.getenv("WRK_ARGS") or "{}"
local key = os.getenv("WRK_KEY")
local n = 0
request = function()
  n = n + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["Mcp-Session-Id"] = sessions[(n % #sessions) + 1],
    ["Mcp-Protocol-Version"] = "2025-06-18",
  }
  if key and key ~= "" then headers["Authorization"] = "Bearer " .. key end
  local body = '{"jsonrpc":"2.0","id":' .. n .. ',"method":"tools/call","params":{"name":"'
    .. tool .. '","arguments":' .. args .. '}}'
  return wrk.format("POST", nil, headers, body)
end
