// Virtual-time tests of the in-process rate limiter and its presets.
#include "callcache/rate_limiter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>

namespace callcache {
namespace rate_limiter_test {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

std::unique_ptr<RateLimiter> make(std::vector<Rule> rules, const Clock& clock,
                                  Scheduler* scheduler = nullptr) {
  RateLimiterOptions o;
  o.rules = std::move(rules);
  o.clock = &clock;
  o.scheduler = scheduler;
  auto r = make_local_rate_limiter(std::move(o));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(r).value();
}

// (Helpers instead of designated initialisers: GCC 12 warns on omitted fields.)
Rule rule(std::string name, std::uint64_t limit, Duration period, std::uint64_t burst = 1,
          KeyScope key = key_scope::kGlobal) {
  Rule r;
  r.name = std::move(name);
  r.limit = limit;
  r.period = period;
  r.burst = burst;
  r.key = key;
  return r;
}

CallAttributes acct(std::string_view method, std::string_view account) {
  CallAttributes c;
  c.method = method;
  c.account = account;
  return c;
}

CallAttributes bot_only(std::string_view bot) {
  CallAttributes c;
  c.bot = bot;
  return c;
}

CallAttributes send(std::string_view bot, std::int64_t chat) {
  CallAttributes c;
  c.method = "sendMessage";
  c.bot = bot;
  c.chat = chat;
  return c;
}

// Largest number of times in any half-open window [t, t + width).
std::size_t max_in_window(std::vector<TimePoint> times, Duration width) {
  std::sort(times.begin(), times.end());
  std::size_t best = 0, lo = 0;
  for (std::size_t hi = 0; hi < times.size(); ++hi) {
    while (times[hi] - times[lo] >= width) ++lo;
    best = std::max(best, hi - lo + 1);
  }
  return best;
}

// Drives `call_at` once per `step` for `span` of virtual time, sending as
// many calls as try_acquire admits at each step; returns admission times.
template <class MakeCall>
std::vector<TimePoint> flood(RateLimiter& rl, ManualClock& clock, Duration step, Duration span,
                             MakeCall make_call) {
  std::vector<TimePoint> admitted;
  const TimePoint end = clock.now() + span;
  std::int64_t n = 0;
  while (clock.now() < end) {
    for (;;) {
      auto r = rl.try_acquire(make_call(n));
      if (!r.admitted) {
        EXPECT_GT(r.wait, Duration::zero());
        break;
      }
      admitted.push_back(clock.now());
      ++n;
    }
    clock.advance(step);
  }
  return admitted;
}

TEST(RateLimiterPreset, BotLetsExactlyThirtySendsPerSecond) {
  ManualClock clock;
  auto rl = make(telegram_bot_preset(), clock);
  const TimePoint t0 = clock.now();
  // Every send to a new private chat: only the per-bot rule can hold them back.
  auto times = flood(*rl, clock, milliseconds(1), seconds(5),
                     [](std::int64_t n) { return send("bot1", 1000 + n); });
  std::size_t first_second = std::count_if(times.begin(), times.end(),
                                           [&](TimePoint t) { return t < t0 + seconds(1); });
  EXPECT_EQ(first_second, 30u);
  EXPECT_EQ(max_in_window(times, seconds(1)), 30u);
  EXPECT_GE(times.size(), 145u);  // 5 s at 30/s, less the 1 ms polling grid
  // Another bot is not slowed by the first.
  EXPECT_TRUE(rl->try_acquire(send("bot2", 1)).admitted);
}

TEST(RateLimiterPreset, PaidBroadcastUsesItsOwnThousandPerSecond) {
  ManualClock clock;
  auto rl = make(telegram_bot_preset(), clock);
  const TimePoint t0 = clock.now();
  auto times = flood(*rl, clock, milliseconds(1), seconds(2), [](std::int64_t n) {
    CallAttributes c = send("bot1", 5000 + n);
    c.paid = true;
    return c;
  });
  std::size_t first_second = std::count_if(times.begin(), times.end(),
                                           [&](TimePoint t) { return t < t0 + seconds(1); });
  EXPECT_EQ(first_second, 1000u);
  EXPECT_EQ(max_in_window(times, seconds(1)), 1000u);
}

TEST(RateLimiterPreset, NeverTwoInOneSecondToOnePrivateChat) {
  ManualClock clock;
  auto rl = make(telegram_bot_preset(), clock);
  auto times = flood(*rl, clock, milliseconds(10), seconds(10),
                     [](std::int64_t) { return send("bot1", 42); });
  EXPECT_EQ(max_in_window(times, seconds(1)), 1u);
  // The rule that holds a call back is named.
  EXPECT_TRUE(rl->try_acquire(send("bot1", 77)).admitted);
  auto held = rl->try_acquire(send("bot1", 77));
  ASSERT_FALSE(held.admitted);
  ASSERT_LT(held.binding_rule, rl->rules().size());
  EXPECT_EQ(rl->rules()[held.binding_rule].name, "private_chat");
  EXPECT_EQ(times.size(), 10u);
  for (std::size_t i = 1; i < times.size(); ++i) EXPECT_GE(times[i] - times[i - 1], seconds(1));
}

TEST(RateLimiterPreset, NeverTwentyOneInAMinuteToOneGroup) {
  ManualClock clock;
  auto rl = make(telegram_bot_preset(), clock);
  const TimePoint t0 = clock.now();
  auto times = flood(*rl, clock, milliseconds(100), minutes(3),
                     [](std::int64_t) { return send("bot1", -1001234); });
  EXPECT_EQ(max_in_window(times, minutes(1)), 20u);
  std::size_t first_minute = std::count_if(times.begin(), times.end(),
                                           [&](TimePoint t) { return t < t0 + minutes(1); });
  EXPECT_EQ(first_minute, 20u);
  // A second group is independent.
  EXPECT_TRUE(rl->try_acquire(send("bot1", -1005678)).admitted);
}

TEST(RateLimiterPreset, ReadsAreNotPacedByTheBotPreset) {
  ManualClock clock;
  auto rl = make(telegram_bot_preset(), clock);
  CallAttributes get_chat = send("bot1", 42);
  get_chat.method = "getChat";
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(rl->try_acquire(get_chat).admitted);
}

TEST(RateLimiterPreset, UserPresetPacesEachAccountNotAllAccounts) {
  ManualClock clock;
  auto rl = make(telegram_user_preset(), clock);
  CallAttributes a = acct("get_entity", "acc1");
  CallAttributes b = acct("get_entity", "acc2");
  EXPECT_TRUE(rl->try_acquire(a).admitted);
  EXPECT_TRUE(rl->try_acquire(b).admitted);  // another account: its own pace
  auto again = rl->try_acquire(a);
  EXPECT_FALSE(again.admitted);
  EXPECT_EQ(again.wait, seconds(3));
  // Each method has its own interval; unlisted methods share "default" (0.2 s) per method.
  CallAttributes msgs = acct("get_messages", "acc1");
  EXPECT_TRUE(rl->try_acquire(msgs).admitted);
  EXPECT_EQ(rl->try_acquire(msgs).wait, milliseconds(300));
  CallAttributes view = acct("view_message", "acc1");
  EXPECT_TRUE(rl->try_acquire(view).admitted);
  EXPECT_EQ(rl->try_acquire(view).wait, milliseconds(200));
  CallAttributes react = acct("send_reaction", "acc1");
  EXPECT_TRUE(rl->try_acquire(react).admitted);
  EXPECT_EQ(rl->try_acquire(react).wait, milliseconds(500));
}

TEST(RateLimiterPreset, SeedsGlobalPresetSerialisesEveryAccount) {
  ManualClock clock;
  auto rl = make(seeds_global_preset(), clock);
  // Ten accounts resolving an entity each: one queue, 3 s apart.
  std::vector<Duration> waits;
  for (int i = 0; i < 10; ++i) {
    std::string acc = "acc" + std::to_string(i);
    auto w = rl->reserve(acct("get_entity", acc));
    ASSERT_TRUE(w.ok());
    waits.push_back(*w);
  }
  EXPECT_EQ(waits.back(), seconds(27));
  auto per_account = make(telegram_user_preset(), clock);
  for (int i = 0; i < 10; ++i) {
    std::string acc = "acc" + std::to_string(i);
    auto w = per_account->reserve(acct("get_entity", acc));
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(*w, Duration::zero());
  }
}

TEST(RateLimiter, PenaltyOnOneChatDoesNotSlowAnother) {
  ManualClock clock;
  auto rl = make(telegram_bot_preset(), clock);
  ASSERT_TRUE(rl->penalize(send("bot1", 7), key_scope::kBot | key_scope::kChat, seconds(30)).ok());
  auto blocked = rl->try_acquire(send("bot1", 7));
  EXPECT_FALSE(blocked.admitted);
  EXPECT_EQ(blocked.wait, seconds(30));
  EXPECT_EQ(blocked.binding_rule, rl->rules().size());  // the "penalty" row
  EXPECT_TRUE(rl->try_acquire(send("bot1", 8)).admitted);
  EXPECT_TRUE(rl->try_acquire(send("bot2", 7)).admitted);  // same chat id, other bot
  // A shorter penalty never shortens the one in force.
  ASSERT_TRUE(rl->penalize(send("bot1", 7), key_scope::kBot | key_scope::kChat, seconds(1)).ok());
  EXPECT_EQ(rl->try_acquire(send("bot1", 7)).wait, seconds(30));
  clock.advance(seconds(30));
  EXPECT_TRUE(rl->try_acquire(send("bot1", 7)).admitted);
  auto st = rl->stats();
  EXPECT_EQ(st.rules.back().name, "penalty");
  EXPECT_EQ(st.rules.back().penalties, 2u);
  EXPECT_EQ(st.rules.back().deadline_refusals, 2u);  // the two refused try_acquire calls
  EXPECT_EQ(st.rules[2].name, "private_chat");
  EXPECT_EQ(st.rules[2].penalties, 2u);  // same key scope as the penalty
}

TEST(RateLimiter, PenaltyOnTheWholeBotBlocksEveryChatOfThatBotOnly) {
  ManualClock clock;
  auto rl = make(telegram_bot_preset(), clock);
  ASSERT_TRUE(rl->penalize(bot_only("bot1"), key_scope::kBot, seconds(5)).ok());
  EXPECT_EQ(rl->try_acquire(send("bot1", 1)).wait, seconds(5));
  EXPECT_EQ(rl->try_acquire(send("bot1", -2)).wait, seconds(5));
  EXPECT_TRUE(rl->try_acquire(send("bot2", 1)).admitted);
  // A penalty on one method of one account leaves its other methods alone.
  auto user = make(telegram_user_preset(), clock);
  CallAttributes react = acct("send_reaction", "acc1");
  ASSERT_TRUE(user->penalize(react, key_scope::kAccount | key_scope::kMethod, seconds(42)).ok());
  EXPECT_EQ(user->try_acquire(react).wait, seconds(42));
  EXPECT_TRUE(user->try_acquire(acct("get_messages", "acc1")).admitted);
  EXPECT_TRUE(user->try_acquire(acct("send_reaction", "acc2")).admitted);
}

TEST(RateLimiter, PenalizeRejectsBadInput) {
  ManualClock clock;
  auto rl = make(telegram_bot_preset(), clock);
  Status s = rl->penalize(bot_only("bot1"), key_scope::kChat, seconds(1));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("attribute"), std::string::npos);
  EXPECT_EQ(rl->penalize(send("b", 1), key_scope::kBot, -seconds(1)).code(), Code::kInvalidArgument);
}

TEST(RateLimiter, DeadlineRefusalReservesNothing) {
  ManualClock clock;
  Rule bot = rule("bot", 2, seconds(1), 2, key_scope::kBot);
  Rule chat = rule("chat", 1, seconds(1), 1, key_scope::kBot | key_scope::kChat);
  auto rl = make({bot, chat}, clock);
  ASSERT_TRUE(rl->reserve(send("b", 1), milliseconds(500)).ok());  // bot: 1 of 2 used
  auto refused = rl->reserve(send("b", 1), milliseconds(500));     // chat 1 needs 1 s
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kDeadlineExceeded);
  EXPECT_NE(refused.status().message().find("'chat'"), std::string::npos);
  EXPECT_NE(refused.status().message().find("exceed the deadline"), std::string::npos);
  Status blocking = rl->acquire(send("b", 1), milliseconds(999));
  EXPECT_EQ(blocking.code(), Code::kDeadlineExceeded);
  // Had the refusals consumed bot capacity, chat 2 would have to wait.
  auto w = rl->reserve(send("b", 2), Duration::zero());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_EQ(*w, Duration::zero());
  // Now the bot's burst is spent: chat 3 needs half a second.
  EXPECT_EQ(rl->try_acquire(send("b", 3)).wait, milliseconds(500));
  auto ok = rl->reserve(send("b", 1), seconds(1));  // exactly at the deadline: admitted
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, seconds(1));
  auto st = rl->stats();
  EXPECT_EQ(st.rules[1].deadline_refusals, 2u);
  EXPECT_EQ(st.rules[0].deadline_refusals, 1u);  // the try_acquire of chat 3
  EXPECT_EQ(st.rules[0].calls, 3u);
  EXPECT_EQ(st.rules[1].calls, 3u);
  EXPECT_EQ(st.rules[1].waits, 1u);
  EXPECT_EQ(st.rules[1].max_wait, seconds(1));
}

TEST(RateLimiter, AsyncCallbackRunsOnTheSchedulerAtTheReservedTime) {
  ManualClock clock;
  ManualScheduler sched(clock);
  auto rl = make(telegram_bot_preset(), clock, &sched);
  std::vector<std::pair<TimePoint, Status>> done;
  auto record = [&](Status s) { done.emplace_back(clock.now(), std::move(s)); };
  const TimePoint t0 = clock.now();
  ASSERT_TRUE(rl->acquire_async(send("b", 5), RateLimiter::kNoDeadline, record).ok());
  ASSERT_TRUE(rl->acquire_async(send("b", 5), RateLimiter::kNoDeadline, record).ok());
  ASSERT_TRUE(rl->acquire_async(send("b", 5), milliseconds(1500), record).ok());
  EXPECT_TRUE(done.empty());  // never inline
  sched.run_due();
  ASSERT_EQ(done.size(), 2u);  // the first, and the refusal of the third
  EXPECT_TRUE(done[0].second.ok());
  EXPECT_EQ(done[1].second.code(), Code::kDeadlineExceeded);
  sched.advance(milliseconds(999));
  EXPECT_EQ(done.size(), 2u);
  sched.advance(milliseconds(1));
  ASSERT_EQ(done.size(), 3u);
  EXPECT_TRUE(done[2].second.ok());
  EXPECT_EQ(done[2].first, t0 + seconds(1));
}

TEST(RateLimiter, AsyncWithoutSchedulerIsAnError) {
  ManualClock clock;
  auto rl = make(telegram_bot_preset(), clock);
  bool called = false;
  Status s = rl->acquire_async(send("b", 1), RateLimiter::kNoDeadline, [&](Status) { called = true; });
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_FALSE(called);
}

TEST(RateLimiter, BurstAllowsBackToBackCallsThenPaces) {
  ManualClock clock;
  Rule r = rule("acct", 10, seconds(1), 5, key_scope::kAccount);
  auto rl = make({r}, clock);
  CallAttributes c = acct("", "a");
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rl->try_acquire(c).admitted) << i;
  EXPECT_EQ(rl->try_acquire(c).wait, milliseconds(100));
  clock.advance(milliseconds(100));
  EXPECT_TRUE(rl->try_acquire(c).admitted);
  EXPECT_FALSE(rl->try_acquire(c).admitted);
}

TEST(RateLimiter, CallsNoRuleMatchesProceed) {
  ManualClock clock;
  auto rl = make(telegram_user_preset(), clock);
  CallAttributes no_account = acct("get_entity", "");  // rules are keyed by account
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl->try_acquire(no_account).admitted);
  EXPECT_EQ(rl->stats().tracked_keys, 0u);
}

TEST(RateLimiter, AMillionChatsSeenOnceCostNothingOnceIdle) {
  ManualClock clock;
  Rule chat = rule("chat", 1, seconds(1), 1, key_scope::kBot | key_scope::kChat);
  RateLimiterOptions o;
  o.rules = {chat};
  o.clock = &clock;
  o.sweep_interval = seconds(10);  // no lazy sweep during the fill
  auto rl = std::move(make_local_rate_limiter(std::move(o))).value();
  constexpr int kChats = 1'000'000;
  for (int i = 0; i < kChats; ++i) ASSERT_TRUE(rl->try_acquire(send("b", i + 1)).admitted);
  EXPECT_EQ(rl->stats().tracked_keys, static_cast<std::uint64_t>(kChats));
  EXPECT_EQ(rl->stats().rules[0].keys, static_cast<std::uint64_t>(kChats));
  clock.advance(milliseconds(999));
  EXPECT_EQ(rl->sweep_idle(), 0u);  // not idle yet: their next slot is still ahead
  clock.advance(milliseconds(1));
  EXPECT_EQ(rl->sweep_idle(), static_cast<std::size_t>(kChats));
  EXPECT_EQ(rl->stats().tracked_keys, 0u);
}

TEST(RateLimiter, IdleKeysAreSweptLazilyAndPeriodically) {
  ManualClock clock;
  ManualScheduler sched(clock);
  Rule chat = rule("chat", 1, seconds(1), 1, key_scope::kBot | key_scope::kChat);
  RateLimiterOptions o;
  o.rules = {chat};
  o.clock = &clock;
  o.scheduler = &sched;
  o.sweep_interval = seconds(2);
  auto rl = std::move(make_local_rate_limiter(std::move(o))).value();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(rl->try_acquire(send("b", i + 1)).admitted);
  ASSERT_TRUE(rl->penalize(send("b", 1), key_scope::kBot, seconds(1)).ok());
  EXPECT_EQ(rl->stats().tracked_keys, 1001u);
  EXPECT_EQ(rl->stats().active_penalties, 1u);
  sched.advance(seconds(2));  // the periodic sweep runs
  EXPECT_EQ(rl->stats().tracked_keys, 0u);
  EXPECT_EQ(rl->stats().active_penalties, 0u);
  // Lazy: touching a stripe after the interval sweeps it.
  RateLimiterOptions lazy;
  lazy.rules = {chat};
  lazy.clock = &clock;
  lazy.shards = 1;
  lazy.sweep_interval = seconds(2);
  auto rl2 = std::move(make_local_rate_limiter(std::move(lazy))).value();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(rl2->try_acquire(send("b", i + 1)).admitted);
  clock.advance(seconds(3));
  ASSERT_TRUE(rl2->try_acquire(send("b", 5000)).admitted);
  EXPECT_EQ(rl2->stats().tracked_keys, 1u);
}

TEST(RateLimiter, DestroyedLimiterCancelsItsSweep) {
  ManualClock clock;
  ManualScheduler sched(clock);
  {
    RateLimiterOptions o;
    o.rules = telegram_bot_preset();
    o.scheduler = &sched;
    auto rl = std::move(make_local_rate_limiter(std::move(o))).value();
    sched.advance(seconds(3));
    EXPECT_EQ(sched.pending(), 1u);
  }
  EXPECT_EQ(sched.pending(), 0u);
  sched.advance(seconds(3));
}

TEST(RateLimiterOptions, BadOptionsNameTheRuleAndField) {
  auto expect_error = [](std::vector<Rule> rules, std::string_view fragment) {
    RateLimiterOptions o;
    o.rules = std::move(rules);
    auto r = make_local_rate_limiter(std::move(o));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
  };
  expect_error({rule("", 1, seconds(1))}, "name must not be empty");
  expect_error({rule("a", 1, seconds(1)), rule("a", 1, seconds(1))}, "'a' is used by another rule");
  expect_error({rule("z", 0, seconds(1))}, "rule #1 'z': limit must be at least 1");
  expect_error({rule("p", 1, Duration::zero())}, "'p': period must be greater than zero");
  expect_error({rule("b", 1, seconds(1), 0)}, "'b': burst must be at least 1");
  Rule both = rule("m", 1, seconds(1));
  both.methods = {"x"};
  both.except_methods = {"x"};
  expect_error({both}, "'x' is in both methods and except_methods");
  RateLimiterOptions o;
  o.shards = 0;
  EXPECT_EQ(make_local_rate_limiter(std::move(o)).status().code(), Code::kInvalidArgument);
}

// Method names are case-insensitive, as the Bot API's: a rule's methods and
// except_methods match any spelling, and every spelling counts in one key.
TEST(RateLimiterRules, MethodNamesMatchAndCountCaseInsensitively) {
  Rule only_send = rule("send", 1, seconds(10), 1, key_scope::kBot | key_scope::kMethod);
  only_send.methods = {"sendMessage"};
  Rule not_send = rule("other", 1, seconds(10), 1, key_scope::kBot);
  not_send.except_methods = {"SENDMESSAGE"};
  CallAttributes lower = send("b", 5);
  lower.method = "sendmessage";
  CallAttributes upper = send("b", 5);
  upper.method = "SENDMESSAGE";
  EXPECT_TRUE(rule_matches(only_send, lower));
  EXPECT_TRUE(rule_matches(only_send, upper));
  EXPECT_FALSE(rule_matches(not_send, lower));
  std::string a, b;
  append_scope_key(a, "r", key_scope::kMethod, lower);
  append_scope_key(b, "r", key_scope::kMethod, send("b", 5));
  EXPECT_EQ(a, b);
  ManualClock clock;
  auto limiter = make({only_send, not_send}, clock);
  EXPECT_TRUE(limiter->try_acquire(send("b", 5)).admitted);
  EXPECT_FALSE(limiter->try_acquire(upper).admitted) << "the same method, the same budget";
  EXPECT_FALSE(limiter->try_acquire(lower).admitted);
  Rule both = rule("m", 1, seconds(1));
  both.methods = {"getChat"};
  both.except_methods = {"GETCHAT"};
  EXPECT_FALSE(validate_rules({both}).ok());
}

TEST(RateLimiterRules, KeysAreUnambiguousAndMatchingIsExact) {
  std::string a, b;
  append_scope_key(a, "r", key_scope::kAccount | key_scope::kMethod,
                   acct("x1:", "y"));
  append_scope_key(b, "r", key_scope::kAccount | key_scope::kMethod,
                   acct("x", "1:y"));
  EXPECT_NE(a, b);
  Rule group = telegram_bot_preset()[3];
  EXPECT_TRUE(rule_matches(group, send("b", -5)));
  EXPECT_FALSE(rule_matches(group, send("b", 5)));
  CallAttributes no_chat = send("b", 0);
  no_chat.chat.reset();
  EXPECT_FALSE(rule_matches(group, no_chat));
  EXPECT_EQ(emission_interval(rule("t", 30, seconds(1))),
            Duration(33'333'334));
}

TEST(RateLimiterStats, RendersJsonAndPrometheus) {
  ManualClock clock;
  auto rl = make(telegram_bot_preset(), clock);
  ASSERT_TRUE(rl->reserve(send("b\"1", 1)).ok());
  ASSERT_TRUE(rl->reserve(send("b\"1", 1)).ok());
  auto st = rl->stats();
  std::string json = st.to_json();
  EXPECT_NE(json.find("\"private_chat\":{\"calls\":2,\"waits\":1,\"total_wait_seconds\":1,"
                      "\"max_wait_seconds\":1,\"deadline_refusals\":0,\"penalties\":0,\"keys\":1}"),
            std::string::npos)
      << json;
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '}');
  std::string prom = st.to_prometheus();
  EXPECT_NE(prom.find("callcache_ratelimit_calls_total{rule=\"bot\"} 2\n"), std::string::npos) << prom;
  EXPECT_NE(prom.find("callcache_ratelimit_wait_seconds_max{rule=\"private_chat\"} 1\n"),
            std::string::npos);
  EXPECT_NE(prom.find("# TYPE callcache_ratelimit_keys gauge"), std::string::npos);
  EXPECT_NE(prom.find("callcache_ratelimit_tracked_keys 2\n"), std::string::npos);
}

}  // namespace rate_limiter_test
}  // namespace callcache
