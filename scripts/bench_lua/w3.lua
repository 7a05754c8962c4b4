-- W3, stateful: createTurbo {"stream": false}, then TURNS chats on that conversation, then again.
-- wrk -t N -c N ... -s w3.lua URL -- TURNS QUESTION EXPECTED_ANSWER_TEXT
-- Needs one connection per thread (-t equal to -c): the conversation being used is kept in the
-- thread's globals, and wrk calls request() and response() of one thread in order only when that
-- thread has one connection.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

conv = nil
turns = 0
pending = nil
chats = 0
creates = 0
local turns_per, question, expected, create_req

function init(args)
  turns_per = tonumber(args[1]) or 5
  question = args[2] or "How are you?"
  expected = args[3] or ""
  create_req = wrk.format("POST", "/chatgpt/createTurbo", {["Content-Type"] = "application/json"},
    '{"stream": false}')
end

function request()
  if conv == nil then
    pending = "create"
    return create_req
  end
  pending = "chat"
  return wrk.format("POST", "/chatgpt/chat",
    {["Content-Type"] = "text/plain; charset=utf-8", ["conversation"] = conv}, question)
end

function response(status, headers, body)
  if pending == "create" then
    if status == 200 and string.match(body, "^%w+$") then
      ok = ok + 1
      creates = creates + 1
      conv = body
      turns = 0
    else
      note_bad(status, body)
    end
  elseif pending == "chat" then
    if status == 200 and string.find(body, expected, 1, true) then
      ok = ok + 1
      chats = chats + 1
    else
      note_bad(status, body)
    end
    turns = turns + 1
    if turns >= turns_per then
      conv = nil
    end
  end
end

function done(summary, latency, requests)
  report(summary, latency, {"chats", "creates"})
end
