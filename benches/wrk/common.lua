-- Shared by describe.lua and update.lua: the seeded association IDs
-- (WRK_IDS, written by seed.py), a per-thread random generator, and an
-- error count that wrk's summary does not break down.
dofile(os.getenv("WRK_IDS"))

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid)
  failed = 0
end

function response(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
    if failed <= 3 then
      io.stderr:write(string.format("thread %d: %d %s\n", tid, status, body))
    end
  end
end

function done(summary, latency, requests)
  local failures = 0
  for _, thread in ipairs(threads) do
    failures = failures + thread:get("failed")
  end
  io.write(string.format(
    "RESULT r_requests=%d r_seconds=%.3f r_rps=%.0f r_p50_ms=%.3f r_p99_ms=%.3f r_p999_ms=%.3f r_non2xx=%d r_socket_errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    failures, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
