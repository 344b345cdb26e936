-- The deep page of list_interactions.lua by keyset: the same campaign's page that
-- starts after row BENCH_SKIP, through the after= token its previous page gave.
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local pages = {}
for _, line in ipairs(bench.lines("deep_after.txt")) do
  pages[#pages + 1] = bench.fields(line)
end

init = bench.init
request = function()
  local page = bench.pick(pages)
  return bench.get("/v2/interactions?filter%5B%2Fdata%2FcampaignId%5D=" .. page[1] ..
    "&limit=50&after=" .. page[2])
end
