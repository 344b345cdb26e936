-- GET /v1/campaigns/{id}<BENCH_SUFFIX> of a random campaign: the organiser's reads
-- (BENCH_SUFFIX=/progress, /review).
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local ids = bench.lines("campaigns.txt")
local suffix = os.getenv("BENCH_SUFFIX") or ""

init = bench.init
request = function()
  return bench.get("/v1/campaigns/" .. bench.pick(ids) .. suffix)
end
