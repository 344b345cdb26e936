-- GET /v1/campaigns/{id}: a random one of the 100 campaigns each time.
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local ids = bench.lines("campaigns.txt")

init = bench.init
request = function()
  return bench.get("/v1/campaigns/" .. bench.pick(ids))
end
