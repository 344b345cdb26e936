-- PATCH /v1/campaigns/{id} with If-Match. Each thread owns every n-th campaign and
-- never has two requests on one campaign in flight, so each PATCH names the campaign's
-- current etag, read from the ETag header of the previous answer (patch_campaigns.txt
-- holds the etags at the start). 412s would show as non-2xx errors.
local bench = dofile(os.getenv("BENCH_WRK") .. "/common.lua")
local THREADS = tonumber(os.getenv("BENCH_THREADS") or "1")
local free, etags, edits = {}, {}, 0

init = function()
  bench.init()
  for n, line in ipairs(bench.lines("patch_campaigns.txt")) do
    if (n - 1) % THREADS == thread_number then
      local f = bench.fields(line)
      free[#free + 1] = f[1]
      etags[f[1]] = f[2]
    end
  end
end

request = function()
  local id = table.remove(free) or next(etags)  -- a busy one only if more connections than campaigns
  edits = edits + 1
  local body = '{"data":[{"op":"replace","path":"/description","value":"Bench edit ' .. edits .. '"}]}'
  local headers = bench.headers({ ["Content-Type"] = "application/json", ["If-Match"] = '"' .. etags[id] .. '"' })
  return wrk.format("PATCH", "/v1/campaigns/" .. id, headers, body)
end

response = function(status, headers, body)
  if status == 200 then
    local id = body:match('"id"%s*:%s*"([^"]+)"')
    local etag = headers["etag"] or headers["ETag"]
    if id and etag then
      etags[id] = etag:gsub('"', "")
      free[#free + 1] = id
    end
  end
end
