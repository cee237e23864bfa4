-- Pipelined load for the worker-scaling test: every write carries `depth` requests (the
-- script argument after `--`, default 16), so wrk needs a fraction of a core and the
-- edge's worker processes get the rest of the box. The report hook is wrk-report.lua's.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk-report.lua")

init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do r[i] = wrk.format() end
  batch = table.concat(r)
end

request = function()
  return batch
end
