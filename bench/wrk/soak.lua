-- The soak's wrapper around one of the benchmark scripts (SOAK_SCRIPT, e.g.
-- post_interaction.lua): the requests are that script's; this counts every answer by
-- status and, with SOAK_IDS set, keeps the id of every created (201) document, so the
-- soak can check afterwards that each acknowledged write is stored. The counts and ids
-- go to SOAK_OUT ("status <code> <count>" and "id <uuid>" lines); the script's own
-- summary still goes to BENCH_OUT.
dofile(os.getenv("BENCH_WRK") .. "/" .. os.getenv("SOAK_SCRIPT"))

local keep_ids = os.getenv("SOAK_IDS") ~= nil
local script_setup, script_response, script_done = setup, response, done
local threads = {}

statuses = {} -- per thread; read by done() through thread:get
ids = {}

setup = function(thread)
  script_setup(thread)
  threads[#threads + 1] = thread
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if keep_ids and status == 201 then
    ids[#ids + 1] = body:match('"id"%s*:%s*"([^"]+)"')
  end
  if script_response then
    script_response(status, headers, body)
  end
end

done = function(summary, latency, requests)
  script_done(summary, latency, requests)
  local out = io.open(os.getenv("SOAK_OUT"), "w")
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      out:write(string.format("status %d %d\n", status, count))
    end
    for _, id in ipairs(thread:get("ids")) do
      out:write("id " .. id .. "\n")
    end
  end
  out:close()
end
