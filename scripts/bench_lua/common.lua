-- Shared by the bench scripts (loaded with dofile from $BENCH_LUA_DIR).
-- Each wrk thread counts checked answers in its own globals; done() runs in a separate Lua state,
-- so setup() keeps the thread handles and done() adds their counters up with thread:get().

threads = {}
ok = 0
bad = 0
first_bad = ""

function setup(thread)
  table.insert(threads, thread)
end

function note_bad(status, body)
  bad = bad + 1
  if first_bad == "" then
    first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 160)
  end
end

-- true when body has every "+text" and no "-text" of checks
function body_passes(body, checks)
  for _, check in ipairs(checks) do
    local sign, text = string.sub(check, 1, 1), string.sub(check, 2)
    local found = string.find(body, text, 1, true) ~= nil
    if (sign == "+" and not found) or (sign == "-" and found) then
      return false
    end
  end
  return true
end

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

local function sum_threads(name)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get(name) or 0)
  end
  return total
end

-- One line the harness parses: "BENCH_RESULT {json}". extra_counters: names of more per-thread counters.
function report(summary, latency, extra_counters)
  local sample = ""
  for _, t in ipairs(threads) do
    local s = t:get("first_bad") or ""
    if s ~= "" then sample = s; break end
  end
  local e = summary.errors
  local parts = {
    string.format('"requests":%d,"duration_us":%d,"bytes":%d', summary.requests, summary.duration, summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"ok":%d,"bad":%d', sum_threads("ok"), sum_threads("bad")),
    string.format('"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f',
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean),
    '"first_bad":' .. json_string(sample),
  }
  for _, name in ipairs(extra_counters or {}) do
    table.insert(parts, string.format('"%s":%d', name, sum_threads(name)))
  end
  io.write("BENCH_RESULT {" .. table.concat(parts, ",") .. "}\n")
end
