-- POST /v2/interactions at a random door of the write campaigns, with a fresh timestamp,
-- in seed 001's flat form: the server inserts it and moves the door in one transaction.
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local doors = {}
for _, line in ipairs(bench.lines("doors.txt")) do
  doors[#doors + 1] = bench.fields(line)
end
local counter = 0

init = bench.init
request = function()
  counter = counter + 1
  local body = bench.knock(bench.pick(doors), counter)
  return wrk.format("POST", "/v2/interactions", bench.headers({ ["Content-Type"] = "application/json" }), body)
end
