-- GET /v1/lists/{id}/contact-households?limit=BENCH_LIMIT: the bench list's members,
-- each with its contact and household embedded (a limit past the page size streams).
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local list = bench.lines("member_list.txt")[1]
local path = "/v1/lists/" .. list .. "/contact-households?limit=" .. os.getenv("BENCH_LIMIT")

init = bench.init
request = function()
  return bench.get(path)
end
