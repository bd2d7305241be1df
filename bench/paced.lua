-- wrk script for bench/live.mjs: each connection sends GET /small, then waits DELAY ms before its
-- next request, so the offered rate is about connections × 1000 / DELAY requests per second.
-- Usage: wrk -c C -d Ns -s bench/paced.lua URL -- DELAY_MS
local delay_ms = 10
function init(args)
  if args[1] then delay_ms = tonumber(args[1]) end
end
function request()
  return wrk.format("GET", "/small")
end
function delay()
  return delay_ms
end
