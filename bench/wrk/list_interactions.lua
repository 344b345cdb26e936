-- GET /v2/interactions?filter[/data/campaignId]=...&limit=50 of a random read campaign;
-- BENCH_SKIP > 0 asks for a deep page instead of the first; BENCH_ACCEPT=text/csv the
-- page as CSV.
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local ids = bench.lines("read_campaigns.txt")
local skip = tonumber(os.getenv("BENCH_SKIP") or "0")
local suffix = "&limit=50" .. (skip > 0 and ("&skip=" .. skip) or "")

local accept = os.getenv("BENCH_ACCEPT")

init = bench.init
request = function()
  local path = "/v2/interactions?filter%5B%2Fdata%2FcampaignId%5D=" .. bench.pick(ids) .. suffix
  if accept then
    return wrk.format("GET", path, bench.headers({ ["Accept"] = accept }))
  end
  return bench.get(path)
end
