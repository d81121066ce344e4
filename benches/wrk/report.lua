-- Shared done() and slurp() for kyso's wrk scripts: one machine-readable line the bench script parses.
-- "bad" counts HTTP statuses above 399; wrk counts a request once its response is complete.

local report = {}

-- A whole file's bytes (request bodies, API keys), read once in init().
function report.slurp(path)
   local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
   local data = f:read("*a")
   f:close()
   return data
end

function report.done(summary, latency, requests)
   local seconds = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d seconds=%.2f rps=%.1f bad_status=%d socket_errors=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
      summary.requests, seconds, summary.requests / seconds, e.status,
      e.connect + e.read + e.write + e.timeout,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end

return report
