-- GET /v2/interactions/{id}: a random interaction of the whole dataset each time.
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local ids = bench.lines("interactions.txt")

init = bench.init
request = function()
  return bench.get("/v2/interactions/" .. bench.pick(ids))
end
