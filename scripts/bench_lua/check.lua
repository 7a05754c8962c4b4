-- One fixed request, every answer checked.
-- wrk ... -s check.lua URL -- METHOD CONTENT_TYPE BODY [+must-contain | -must-not-contain]...
-- An answer counts as bad when its status is not 200 or a check fails.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local req
checks = {}

function init(args)
  local headers = {}
  if args[2] ~= nil and args[2] ~= "" then
    headers["Content-Type"] = args[2]
  end
  local body = args[3]
  if body == "" then body = nil end
  for i = 4, #args do
    table.insert(checks, args[i])
  end
  req = wrk.format(args[1] or "GET", nil, headers, body)
end

function request()
  return req
end

function response(status, headers, body)
  if status == 200 and body_passes(body, checks) then
    ok = ok + 1
  else
    note_bad(status, body)
  end
end

function done(summary, latency, requests)
  report(summary, latency)
end
