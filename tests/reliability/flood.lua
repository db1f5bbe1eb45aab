-- wrk script for the flood test (tests/reliability/flood.py): every request
-- carries a key no other request of the run carries.
--
--   wrk -t<n> -c64 -d300s -s flood.lua http://127.0.0.1:<port> -- <requests> <token of bot A> <n>
--
-- Request i (0 <= i < <requests>, split over the threads) is, by i % 10:
--   0-3  getChat of bot A for chat -(10^12 + i)     (one bot, distinct chats: tg_chat)
--   4-6  getMe of bot <10^9 + i>                    (distinct tokens: tg_bot)
--   7-9  sendMessage of bot <2*10^9 + i> to chat i  (distinct pacing keys: bot and chat)
-- A thread stops after its share (requests it sends while stopping are
-- getMe of bot A, a cache hit). done() prints one line the test parses:
--   FLOOD requests=<n> bad=<non-200 answers> connect=.. read=.. write=.. timeout=.. ...
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  total = tonumber(args[1])
  token_a = args[2]
  nthreads = tonumber(args[3])
  tid = tonumber(wrk.thread:get("tid"))
  sent = 0
  bad = 0
end

local function path_of(i)
  local kind = i % 10
  if kind < 4 then
    return string.format("/bot%s/getChat?chat_id=-%d", token_a, 1000000000000 + i)
  elseif kind < 7 then
    return string.format("/bot%d:flood-token-secret-%012d/getMe", 1000000000 + i, i)
  else
    return string.format("/bot%d:flood-send-secret-%013d/sendMessage?chat_id=%d&text=x", 2000000000 + i, i, i)
  end
end

function request()
  -- Thread t of n sends i = t, t + n, t + 2n, ... below `total`.
  local i = tid + sent * nthreads
  if i >= total then
    wrk.thread:stop()
    return wrk.format("GET", "/bot" .. token_a .. "/getMe")
  end
  sent = sent + 1
  return wrk.format("GET", path_of(i))
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  end
  wrk.thread:set("bad", bad)
  wrk.thread:set("sent", sent)
end

function done(summary, latency, requests)
  local n, b = 0, 0
  for _, t in ipairs(threads) do
    n = n + (tonumber(t:get("sent")) or 0)
    b = b + (tonumber(t:get("bad")) or 0)
  end
  local e = summary.errors
  io.write(string.format("FLOOD requests=%d bad=%d connect=%d read=%d write=%d timeout=%d "
                         .. "completed=%d seconds=%.1f p50_ms=%.3f p99_ms=%.3f\n",
                         n, b, e.connect, e.read, e.write, e.timeout, summary.requests,
                         summary.duration / 1e6, latency:percentile(50) / 1000,
                         latency:percentile(99) / 1000))
end
