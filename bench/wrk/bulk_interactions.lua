-- POST /v2/interactions/bulk: a phone's outbox of BENCH_ITEMS knocks (default 200) at
-- random doors of the write campaigns, each with a fresh timestamp, in seed 001's flat form.
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local doors = {}
for _, line in ipairs(bench.lines("doors.txt")) do
  doors[#doors + 1] = bench.fields(line)
end
local ITEMS = tonumber(os.getenv("BENCH_ITEMS") or "200")
local SURVEY = "375d437b-3b47-4940-b43d-be8daec4afff"
local QUESTION = "9826940d-76a8-4700-8c92-5743ce7bb728"
local counter = 0

local function knock()
  local door = bench.pick(doors)
  counter = counter + 1
  local timestamp = os.date("!%Y-%m-%dT%H:%M:%S", os.time()) .. string.format(".%03dZ", counter % 1000)
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

init = bench.init
request = function()
  local items = {}
  for n = 1, ITEMS do
    items[n] = knock()
  end
  local body = '{"data":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", "/v2/interactions/bulk", bench.headers({ ["Content-Type"] = "application/json" }), body)
end
