-- GET a random line of the file BENCH_PATHS (request paths with their query strings):
-- bench/geo.py writes one file per query, its centres spread over where people live;
-- bench/routes.py one per route. BENCH_ACCEPT, if set, is sent as the Accept header.
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do
  paths[#paths + 1] = line
end

local accept = os.getenv("BENCH_ACCEPT")

init = bench.init
request = function()
  if accept then
    return wrk.format("GET", bench.pick(paths), bench.headers({ ["Accept"] = accept }))
  end
  return bench.get(bench.pick(paths))
end
