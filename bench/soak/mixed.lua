-- wrk script for bench/soak.sh: a mixed Bot API workload.
--
--   wrk ... -s mixed.lua URL -- <delay ms per request per connection, 0 = none> <seed>
--
-- Per request, at random:
--   80% getChat of one of 10 bots for one of 10,000 chats   (mostly hits; misses
--       as entries expire, every 5 minutes; writes make some reads bypass)
--   10% getChatMember of one of 10 bots, 1,000 chats x 100 users (hits and misses)
--    5% setChatTitle of one of 10 bots for one of 10,000 chats (invalidates getChat)
--    5% sendMessage of a bot seen once to a chat seen once (paced; never cached)
-- With a delay, each connection waits that long after each answer: the rate
-- is about connections x 1000 / (delay + latency) requests per second.
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  pause = tonumber(args[1]) or 0
  math.randomseed((tonumber(args[2]) or 1) * 1000 + tonumber(wrk.thread:get("tid")))
  tid = tonumber(wrk.thread:get("tid"))
  sends = 0
end

local function token(bot)
  return string.format("%d:soak-bot-token-secret-%06d", 700000 + bot, bot)
end

function request()
  local x = math.random()
  local bot = math.random(0, 9)
  if x < 0.80 then
    return wrk.format("GET", string.format("/bot%s/getChat?chat_id=-%d", token(bot),
                                           1000000 + math.random(0, 9999)))
  elseif x < 0.90 then
    return wrk.format("GET", string.format("/bot%s/getChatMember?chat_id=-%d&user_id=%d", token(bot),
                                           2000000 + math.random(0, 999), math.random(1, 100)))
  elseif x < 0.95 then
    return wrk.format("GET", string.format("/bot%s/setChatTitle?chat_id=-%d&title=t%d", token(bot),
                                           1000000 + math.random(0, 9999), math.random(0, 999999)))
  else
    sends = sends + 1
    local id = string.format("%d%09d", tid + 1, sends)
    return wrk.format("GET", string.format("/bot%s:soak-send-token-secret-0001/sendMessage?chat_id=%s&text=x", id, id))
  end
end

function delay()
  return pause
end
