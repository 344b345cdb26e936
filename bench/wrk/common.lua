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

-- A knock in seed 001's flat form at ``door`` (campaign, contact, household,
-- contact-household ids), stamped now; ``n`` keeps a thread's timestamps apart.
local SURVEY = "375d437b-3b47-4940-b43d-be8daec4afff"
local QUESTION = "9826940d-76a8-4700-8c92-5743ce7bb728"

function bench.knock(door, n)
  local timestamp = os.date("!%Y-%m-%dT%H:%M:%S", os.time()) .. string.format(".%03dZ", n % 1000)
  local unavailable = math.random() < 0.45
  return string.format(
    '{"campaignId":"%s","contactId":"%s","householdId":"%s","contactHouseholdId":"%s",' ..
    '"timestamp":"%s","unavailable":%s,%s"successful":%s,' ..
    '"survey":{"surveyId":"%s","responses":{"%s":{"fields":{"available":"%s"},"questionId":"%s"}}},' ..
    '"location":{"lat":%.6f,"lng":%.6f,"confidence":0}}',
    door[1], door[2], door[3], door[4], timestamp, tostring(unavailable),
    unavailable and '"unavailableReason":"Not Home",' or "",
    tostring(not unavailable and math.random() < 0.5),
    SURVEY, QUESTION, tostring(not unavailable), QUESTION,
    33.6 + math.random() * 0.5, -84.6 + math.random() * 0.5)
end

return bench
