-- A phone's delta sync of a campaign's door records:
-- GET /v1/campaigns/{id}/contact-households?filter=/meta/modified gt "<last sync>"
-- (delta.txt: campaign id and a time after which about 2 % of its doors changed).
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local paths = {}
for _, line in ipairs(bench.lines("delta.txt")) do
  local f = bench.fields(line)
  local filter = bench.urlencode('/meta/modified gt "' .. f[2] .. '"')
  paths[#paths + 1] = "/v1/campaigns/" .. f[1] .. "/contact-households?filter=" .. filter
end

init = bench.init
request = function()
  return bench.get(bench.pick(paths))
end
