-- wrk script for bench/record.mjs: a deterministic request mix against bench/servers/http1.mjs.
-- Every request is the same small GET.
-- Only /small (~300 B JSON): many small packets, the packet-rate-bound case.
local paths = { "/small" }

local headers = {
  ["Accept"] = "application/json, text/html;q=0.9, */*;q=0.8",
  ["Accept-Language"] = "en-US,en;q=0.8",
  ["User-Agent"] = "wrk/4.1 (tapwire bench)",
  ["Authorization"] = "Bearer bench-token-0123456789abcdef",
  ["Cookie"] = "session=bench-session-42; theme=dark",
}

local requests = {}
local i = 0

function init(args)
  for k, p in ipairs(paths) do
    requests[k] = wrk.format("GET", p .. "?seq=" .. k, headers)
  end
end

function request()
  i = i % #requests + 1
  return requests[i]
end
