-- GET /v2/interactions?filter[/data/campaignId]=...&limit=50 of a random read campaign;
-- BENCH_SKIP > 0 asks for a deep page instead of the first.
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local ids = bench.lines("read_campaigns.txt")
local skip = tonumber(os.getenv("BENCH_SKIP") or "0")
local suffix = "&limit=50" .. (skip > 0 and ("&skip=" .. skip) or "")

init = bench.init
request = function()
  return bench.get("/v2/interactions?filter%5B%2Fdata%2FcampaignId%5D=" .. bench.pick(ids) .. suffix)
end
