-- POST /v2/interactions/bulk: a phone's outbox of BENCH_ITEMS knocks (default 200) at
-- random doors of the write campaigns, each with a fresh timestamp, in seed 001's flat form.
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local doors = {}
for _, line in ipairs(bench.lines("doors.txt")) do
  doors[#doors + 1] = bench.fields(line)
end
local ITEMS = tonumber(os.getenv("BENCH_ITEMS") or "200")
local counter = 0

init = bench.init
request = function()
  local items = {}
  for n = 1, ITEMS do
    counter = counter + 1
    items[n] = bench.knock(bench.pick(doors), counter)
  end
  local body = '{"data":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", "/v2/interactions/bulk", bench.headers({ ["Content-Type"] = "application/json" }), body)
end
