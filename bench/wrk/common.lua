-- Shared by every benchmark script: id files, tokens, random picks, the JSON summary.
-- BENCH_DATA names the folder of id files; BENCH_OUT the file the summary goes to.
local bench = {}
local data = os.getenv("BENCH_DATA")

function bench.lines(name)
  local lines = {}
  for line in io.lines(data .. "/" .. name) do
    lines[#lines + 1] = line
  end
  return lines
end

function bench.fields(line)
  local fields = {}
  for word in line:gmatch("%S+") do
    fields[#fields + 1] = word
  end
  return fields
end

function bench.pick(list)
  return list[math.random(#list)]
end

function bench.urlencode(text)
  return (text:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- Many tokens of one tenant, one per phone: a realistic mix for the per-token rate limit.
local tokens = bench.lines("tokens.txt")

function bench.headers(extra)
  local headers = { ["Authorization"] = "Bearer " .. bench.pick(tokens) }
  for name, value in pairs(extra or {}) do
    headers[name] = value
  end
  return headers
end

function bench.get(path)
  return wrk.format("GET", path, bench.headers())
end

-- Each thread has its own Lua state: number them so they can split work and seeds.
local threads = 0
function setup(thread)
  thread:set("thread_number", threads)
  threads = threads + 1
end

function bench.init()
  math.randomseed(os.time() * 100 + (thread_number or 0))
end

function done(summary, latency, requests)
  local errors = summary.errors
  local out = io.open(os.getenv("BENCH_OUT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99),
    latency.max, latency.mean))
  out:close()
end

return bench
