-- wrk script for bench/record.mjs: a deterministic request mix against bench/servers/http1.mjs.
-- With the script argument "small" (wrk ... -- small) every request is /small (~300 B JSON): many
-- small packets, the packet-rate-bound case.
-- Every wrk thread walks the same 20-step rotation, so the mix is exactly
-- 20% /small (~300 B JSON), 50% /medium (~4 KB JSON), 25% /large (~32 KB HTML, chunked),
-- 5% /blob (256 KB binary).
local paths = {
  "/medium", "/small", "/large", "/medium", "/medium",
  "/large", "/small", "/medium", "/large", "/medium",
  "/blob", "/medium", "/small", "/large", "/medium",
  "/medium", "/large", "/small", "/medium", "/medium",
}

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
  if args[1] == "small" then paths = { "/small" } end
  for k, p in ipairs(paths) do
    requests[k] = wrk.format("GET", p .. "?seq=" .. k, headers)
  end
end

function request()
  i = i % #requests + 1
  return requests[i]
end
