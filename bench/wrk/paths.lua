-- GET a random line of the file BENCH_PATHS (request paths with their query strings):
-- bench/geo.py writes one file per query, its centres spread over where people live.
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do
  paths[#paths + 1] = line
end

init = bench.init
request = function()
  return bench.get(bench.pick(paths))
end
