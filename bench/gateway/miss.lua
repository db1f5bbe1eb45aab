-- wrk script: every request asks getChat for a new chat id (a cache miss).
-- Env: CC_TOKEN (bot token), CC_LIMIT (stop after this many requests per
-- thread; 0 = no limit), CC_OFFSET (first chat id).
local counter = 0
local threads = {}
-- `thread_id` is a global set per thread by setup() (a local here would
-- shadow it and make every thread ask the same ids).
local token = os.getenv("CC_TOKEN") or "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"
local limit = tonumber(os.getenv("CC_LIMIT") or "0")
local offset = tonumber(os.getenv("CC_OFFSET") or "1")

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local id = offset + (thread_id or 0) * 100000000 + counter
  return wrk.format("GET", "/bot" .. token .. "/getChat?chat_id=" .. id)
end

function response(status, headers, body)
  if limit > 0 and counter >= limit then
    wrk.thread:stop()
  end
end
