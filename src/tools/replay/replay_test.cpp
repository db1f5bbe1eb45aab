// End-to-end tests of the replay: the built-in likebot scenario through all
// four designs, the simulated upstream's limits, and the floors.
#include <gtest/gtest.h>

#include "callcache/clock.h"
#include "report.h"
#include "runner.h"
#include "scenario.h"
#include "upstream.h"

namespace callcache::replay {
namespace replay_test {

const ReplayReport& likebot_report() {
  static const ReplayReport report = [] {
    auto r = run_replay(builtin_likebot());
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : ReplayReport{};
  }();
  return report;
}

const ModeResult& mode(const ReplayReport& r, int m) {
  for (const auto& x : r.modes)
    if (x.mode == m) return x;
  static ModeResult none;
  ADD_FAILURE() << "no mode " << m;
  return none;
}

TEST(Replay, SameSeedGivesByteIdenticalOutput) {
  auto a = run_replay(builtin_likebot());
  auto b = run_replay(builtin_likebot());
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(render_text(*a), render_text(*b));
  EXPECT_EQ(render_json(*a), render_json(*b));
}

TEST(Replay, DifferentSeedChangesLatenciesNotCalls) {
  Scenario s = builtin_likebot();
  s.seed = 7;
  auto r = run_replay(s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_NE(mode(*r, 1).virtual_time, mode(likebot_report(), 1).virtual_time);
  EXPECT_EQ(mode(*r, 1).calls, 2500u);
}

TEST(Replay, LikebotFloorNamesEachNamespaceScope) {
  const Floor& f = likebot_report().floor;
  ASSERT_EQ(f.namespaces.size(), 3u);
  EXPECT_TRUE(f.namespaces.at("entity").shared);
  EXPECT_EQ(f.namespaces.at("entity").objects, 5u);  // 5 channels, shared
  EXPECT_FALSE(f.namespaces.at("input_peer").shared);
  EXPECT_EQ(f.namespaces.at("input_peer").objects, 50u);  // 10 accounts x 5 channels
  EXPECT_TRUE(f.namespaces.at("message").shared);
  EXPECT_EQ(f.namespaces.at("message").objects, 50u);  // 50 posts, shared
  EXPECT_EQ(f.action_total, 1000u);
  EXPECT_EQ(f.actions.at("view"), 500u);
  EXPECT_EQ(f.actions.at("send_reaction"), 500u);
  EXPECT_EQ(f.first_run, 1105u);
  EXPECT_EQ(f.rerun, 1000u);
}

TEST(Replay, NoCacheMakesTwoThousandFiveHundredCalls) {
  const ModeResult& m = mode(likebot_report(), 1);
  EXPECT_EQ(m.calls, 2500u);
  for (const char* method :
       {"get_entity", "get_input_entity", "get_messages", "view", "send_reaction"})
    EXPECT_EQ(m.methods.at(method).calls, 500u) << method;
  EXPECT_EQ(m.floods, 0u);
  EXPECT_EQ(m.steps, 2500u);
}

TEST(Replay, SeedsDesignIsAboveTheFloorAndSlow) {
  const ReplayReport& r = likebot_report();
  const ModeResult& m = mode(r, 2);
  EXPECT_GT(m.calls, r.floor.first_run);
  EXPECT_LT(m.calls, 2500u);
  EXPECT_EQ(m.coalesced, 0u);  // the seeds do not coalesce
  EXPECT_EQ(m.steps, 2500u);
}

TEST(Replay, CallcacheFirstRunReachesTheFloorWithoutFloodWaits) {
  const ReplayReport& r = likebot_report();
  const ModeResult& m = mode(r, 3);
  EXPECT_EQ(m.calls, r.floor.first_run);
  EXPECT_EQ(m.floods, 0u);
  EXPECT_EQ(m.methods.at("get_entity").calls, 5u);
  EXPECT_EQ(m.methods.at("get_input_entity").calls, 50u);
  EXPECT_EQ(m.methods.at("get_messages").calls, 50u);
  EXPECT_EQ(m.steps, 2500u);
  for (const auto& [name, n] : m.namespaces) {
    EXPECT_EQ(n.requests, n.hits + n.coalesced + n.loads + n.l2_hits) << name;
    EXPECT_EQ(n.loads, r.floor.namespaces.at(name).objects) << name;
  }
  // At most a quarter of the seeds' virtual completion time.
  EXPECT_LE(m.virtual_time * 4, mode(r, 2).virtual_time);
}

TEST(Replay, CallcacheRerunReadsTheSqliteTierAndMakesOnlyTheActions) {
  const ReplayReport& r = likebot_report();
  const ModeResult& m = mode(r, 4);
  EXPECT_EQ(m.calls, r.floor.rerun);
  EXPECT_EQ(m.floods, 0u);
  std::uint64_t l2 = 0;
  for (const auto& [name, n] : m.namespaces) {
    EXPECT_EQ(n.loads, 0u) << name;
    EXPECT_EQ(n.l2_hits, r.floor.namespaces.at(name).objects) << name;
    l2 += n.l2_hits;
  }
  EXPECT_EQ(l2, 105u);
}

TEST(Replay, PacingLooserThanTheUpstreamIsCaughtByFloodWaits) {
  Scenario s = builtin_likebot();
  for (LimitRule& rule : s.pacing) rule.interval /= 2;  // a broken limiter
  auto r = run_replay(s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_GT(mode(*r, 3).floods, 0u);
  EXPECT_GT(mode(*r, 3).calls, r->floor.first_run);  // refused calls count
}

TEST(Replay, NoPacingAtAllFloods) {
  Scenario s = builtin_likebot();
  s.pacing.clear();
  auto r = run_replay(s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_GT(mode(*r, 3).floods, 10u);
  EXPECT_EQ(mode(*r, 3).steps, 2500u);  // every step still completes, after retries
}

// ---- the simulated upstream --------------------------------------------------

struct UpstreamFixture : ::testing::Test {
  ManualClock clock;
  ManualScheduler sched{clock};
  std::vector<UpstreamReply> replies;
  SimUpstream::Done record() {
    return [this](const UpstreamReply& r) { replies.push_back(r); };
  }
};

TEST_F(UpstreamFixture, RefusesAPerAccountMethodLimitWithFloodWait) {
  Scenario s = builtin_likebot();
  SimUpstream up(s, sched, 1);
  up.call({"account1", "get_entity", "channel1", "channel1"}, record());
  up.call({"account1", "get_entity", "channel2", "channel2"}, record());  // 3 s limit
  up.call({"account2", "get_entity", "channel2", "channel2"}, record());  // other account
  sched.advance(std::chrono::seconds(5));
  ASSERT_EQ(replies.size(), 3u);
  int refused = 0;
  for (const auto& r : replies) {
    if (!r.ok) {
      ++refused;
      EXPECT_EQ(r.error, "FLOOD_WAIT_3");
      EXPECT_EQ(r.retry_after, std::chrono::seconds(3));
    }
  }
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(up.total_calls(), 3u);
  EXPECT_EQ(up.total_floods(), 1u);
  // After the interval the account may call again.
  up.call({"account1", "get_entity", "channel3", "channel3"}, record());
  sched.advance(std::chrono::seconds(1));
  EXPECT_TRUE(replies.back().ok);
}

TEST_F(UpstreamFixture, PerChannelReactionLimitSpansAccounts) {
  Scenario s = builtin_likebot();
  SimUpstream up(s, sched, 1);
  // 5 reactions at once on one channel from 5 accounts pass (burst 5); the 6th is refused.
  for (int a = 1; a <= 6; ++a)
    up.call({"account" + std::to_string(a), "send_reaction", "channel1", "channel1/post1"},
            record());
  sched.advance(std::chrono::seconds(2));
  ASSERT_EQ(replies.size(), 6u);
  int refused = 0;
  for (const auto& r : replies) refused += r.ok ? 0 : 1;
  EXPECT_EQ(refused, 1);
}

TEST_F(UpstreamFixture, BotsGetHttp429WithRetryAfter) {
  Scenario s = builtin_likebot();
  s.account_kind = AccountKind::kBot;
  s.methods["sendMessage"] = {"sendMessage", "", Target::kGroup, std::chrono::milliseconds(50), 0};
  s.upstream_limits = telegram_bot_limits();
  SimUpstream up(s, sched, 1);
  up.call({"bot1", "sendMessage", "chat1", "chat1"}, record());
  up.call({"bot1", "sendMessage", "chat1", "chat1"}, record());  // 1 per second per chat
  up.call({"bot1", "sendMessage", "chat2", "chat2"}, record());
  sched.advance(std::chrono::seconds(1));
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_TRUE(replies[0].ok);
  EXPECT_FALSE(replies[1].ok);
  EXPECT_EQ(replies[1].error, "429 Too Many Requests: retry after 1");
  EXPECT_TRUE(replies[2].ok);
}

TEST_F(UpstreamFixture, RepliesArriveAfterTheMethodLatency) {
  Scenario s = builtin_likebot();
  s.methods["view"].latency_sigma = 0;  // exactly the median
  SimUpstream up(s, sched, 1);
  up.call({"account1", "view", "channel1", "channel1/post1"}, record());
  sched.advance(std::chrono::milliseconds(99));
  EXPECT_TRUE(replies.empty());
  sched.advance(std::chrono::milliseconds(1));
  EXPECT_EQ(replies.size(), 1u);
}

}  // namespace replay_test
}  // namespace callcache::replay
