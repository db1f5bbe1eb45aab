// StatsHistory: points from consecutive samples, the two rings, the JSON.
#include "gateway/admin/stats_history.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace callcache::gateway {
namespace stats_history_test {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto idx(Outcome o) { return static_cast<std::size_t>(o); }

// A sample at second `s` of a run in which every counter grows linearly:
// per second 10 hits, 2 misses, 1 coalesced, 1 paced send, 1 rejected; 3
// upstream calls (2 misses, 1 send); `sns` (a generic API) had 4 of the hits.
StatsSample sample_at(int s) {
  const auto n = static_cast<std::uint64_t>(s);
  StatsSample x;
  x.unix_ms = 1'700'000'000'000 + s * 1000;
  x.at = std::chrono::steady_clock::time_point(std::chrono::seconds(s));
  MetricsSnapshot& m = x.gateway;
  m.outcomes[idx(Outcome::kHit)] = 10 * n;
  m.outcomes[idx(Outcome::kMiss)] = 2 * n;
  m.outcomes[idx(Outcome::kCoalesced)] = n;
  m.outcomes[idx(Outcome::kPaced)] = n;
  m.outcomes[idx(Outcome::kRejected)] = n;
  m.upstream_calls = 3 * n;
  m.received_429 = n / 2;
  m.retried_429 = n / 2;
  MetricsSnapshot::Rule sns;
  sns.label = "sns:template";
  sns.outcomes[idx(Outcome::kHit)] = 4 * n;
  sns.outcomes[idx(Outcome::kMiss)] = n;
  m.rules.push_back(sns);
  MetricsSnapshot::Method get_chat;
  get_chat.name = "getChat";
  get_chat.calls = 2 * n;
  get_chat.latency[7] = 2 * n;  // (20 ms, 30 ms]
  m.methods.push_back(get_chat);
  m.pacing.push_back({"private_chat", n, n / 5});
  StatsSample::Namespace chat;
  chat.name = "tg_chat";
  chat.hits = 6 * n;
  chat.lookups = 7 * n;
  chat.entries = 100 + n;
  chat.bytes = 1000 * n;
  chat.max_entries = 200000;
  chat.max_bytes = 1 << 20;
  x.namespaces.push_back(chat);
  x.l2.backend = "sqlite";
  x.l2.gets = 2 * n;
  x.l2.hits = n;
  x.l2.pending_writes = n % 3;
  return x;
}

json history_json(const StatsHistory& h, HistoryWindow w = HistoryWindow::kFine,
                  std::int64_t since = 0) {
  return json::parse(h.to_json(w, since));
}

TEST(StatsHistory, TheFirstSampleIsTheBaseline) {
  StatsHistory h;
  h.record(sample_at(0));
  EXPECT_EQ(h.size(HistoryWindow::kFine), 0u);
  json j = history_json(h);
  EXPECT_EQ(j["t"].size(), 0u);
  EXPECT_EQ(j["started_ms"], 1'700'000'000'000);
  EXPECT_EQ(j["resolution_s"], 1);
  EXPECT_EQ(j["window_s"], 300);
}

TEST(StatsHistory, APointHoldsTheCountsOfItsInterval) {
  StatsHistory h;
  h.record(sample_at(0));
  h.record(sample_at(1));
  h.record(sample_at(3));  // a 2 s interval
  json j = history_json(h);
  ASSERT_EQ(j["t"].size(), 2u);
  EXPECT_EQ(j["t"][1], 1'700'000'003'000);
  EXPECT_DOUBLE_EQ(j["dt"][0].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["dt"][1].get<double>(), 2.0);
  EXPECT_EQ(j["requests"]["hit"], json::array({10, 20}));
  EXPECT_EQ(j["requests"]["miss"], json::array({2, 4}));
  EXPECT_EQ(j["requests"]["rejected"], json::array({1, 2}));
  // Served: everything but rejected (10 + 2 + 1 + 1 per second); saved:
  // served minus upstream calls.
  EXPECT_EQ(j["served"], json::array({14, 28}));
  EXPECT_EQ(j["saved"], json::array({11, 22}));
  EXPECT_EQ(j["upstream"]["calls"], json::array({3, 6}));
  EXPECT_EQ(j["upstream"]["429"], json::array({0, 1}));
  EXPECT_EQ(j["upstream"]["retried"], json::array({0, 1}));
  // Per API: the generic API's rules, and the rest for the Bot API.
  EXPECT_EQ(j["apis"]["sns"]["hits"], json::array({4, 8}));
  EXPECT_EQ(j["apis"]["sns"]["reads"], json::array({5, 10}));
  EXPECT_EQ(j["apis"]["telegram"]["hits"], json::array({7, 14}));   // 10 + 1 coalesced - 4
  EXPECT_EQ(j["apis"]["telegram"]["reads"], json::array({8, 16}));  // + 2 misses - 1
  // Namespaces: counts per interval, gauges at its end, bounds once.
  const json& ns = j["namespaces"]["tg_chat"];
  EXPECT_EQ(ns["hits"], json::array({6, 12}));
  EXPECT_EQ(ns["lookups"], json::array({7, 14}));
  EXPECT_EQ(ns["entries"], json::array({101, 103}));
  EXPECT_EQ(ns["bytes"], json::array({1000, 3000}));
  EXPECT_EQ(ns["max_entries"], 200000);
  EXPECT_EQ(ns["max_bytes"], 1 << 20);
  EXPECT_EQ(j["pacing"]["private_chat"]["waits"], json::array({1, 2}));
  // Latency: 2 calls per second, all in (20 ms, 30 ms].
  const json& lat = j["latency"]["getChat"];
  EXPECT_EQ(lat["calls"], json::array({2, 4}));
  EXPECT_NEAR(lat["p50_ms"][0].get<double>(), 25.0, 0.01);
  EXPECT_NEAR(lat["p99_ms"][0].get<double>(), 29.9, 0.01);
  EXPECT_EQ(j["l2"]["backend"], "sqlite");
  EXPECT_EQ(j["l2"]["gets"], json::array({2, 4}));
  EXPECT_EQ(j["l2"]["hits"], json::array({1, 2}));
  EXPECT_EQ(j["l2"]["pending_writes"], json::array({1, 0}));
  EXPECT_EQ(j["l2"]["down"], json::array({0, 0}));
}

TEST(StatsHistory, MethodsAndRulesSeenLaterCountZeroBefore) {
  StatsHistory h;
  h.record(sample_at(0));
  h.record(sample_at(1));
  StatsSample later = sample_at(2);
  MetricsSnapshot::Method send;
  send.name = "sendMessage";
  send.calls = 3;
  send.latency[0] = 3;
  later.gateway.methods.push_back(send);  // sorted: getChat < sendMessage
  later.gateway.pacing.push_back({"bot", 2, 1});
  later.l2.down = true;
  h.record(later);
  h.record(sample_at(3));  // the method has no calls in this interval
  json j = history_json(h);
  EXPECT_EQ(j["latency"]["sendMessage"]["calls"], json::array({0, 3, 0}));
  EXPECT_EQ(j["latency"]["sendMessage"]["p50_ms"][0], nullptr);
  EXPECT_NEAR(j["latency"]["sendMessage"]["p50_ms"][1].get<double>(), 0.25, 1e-6);
  EXPECT_EQ(j["pacing"]["bot"]["waits"], json::array({0, 2, 0}));
  EXPECT_EQ(j["pacing"]["bot"]["refused"], json::array({0, 1, 0}));
  EXPECT_EQ(j["l2"]["down"], json::array({0, 1, 0}));
  // Only methods with calls in the selected points are listed.
  json recent = history_json(h, HistoryWindow::kFine, 1'700'000'002'000);
  EXPECT_EQ(recent["t"].size(), 1u);
  EXPECT_FALSE(recent["latency"].contains("sendMessage"));
  EXPECT_TRUE(recent["latency"].contains("getChat"));
}

TEST(StatsHistory, TenSecondPointsAreExactSumsWithMergedLatency) {
  StatsHistory h;
  for (int s = 0; s <= 20; ++s) {
    StatsSample x = sample_at(s);
    // One slow getChat call in second 7: the 10 s point's p99 must see it.
    if (s >= 7) {
      x.gateway.methods[0].calls += 1;
      x.gateway.methods[0].latency[14] += 1;  // (300 ms, 500 ms]
    }
    h.record(std::move(x));
  }
  EXPECT_EQ(h.size(HistoryWindow::kFine), 20u);
  EXPECT_EQ(h.size(HistoryWindow::kCoarse), 2u);
  json j = history_json(h, HistoryWindow::kCoarse);
  EXPECT_EQ(j["resolution_s"], 10);
  EXPECT_EQ(j["window_s"], 3600);
  EXPECT_EQ(j["t"], json::array({1'700'000'010'000, 1'700'000'020'000}));
  EXPECT_DOUBLE_EQ(j["dt"][0].get<double>(), 10.0);
  EXPECT_EQ(j["requests"]["hit"], json::array({100, 100}));
  EXPECT_EQ(j["latency"]["getChat"]["calls"], json::array({21, 20}));
  EXPECT_GT(j["latency"]["getChat"]["p99_ms"][0].get<double>(), 300.0);
  EXPECT_LT(j["latency"]["getChat"]["p99_ms"][1].get<double>(), 30.0);
  EXPECT_LT(j["latency"]["getChat"]["p50_ms"][0].get<double>(), 30.0);
  // Sum of the fine points = the coarse points.
  json fine = history_json(h);
  std::uint64_t sum = 0;
  for (const auto& v : fine["requests"]["hit"]) sum += v.get<std::uint64_t>();
  EXPECT_EQ(sum, 200u);
}

TEST(StatsHistory, RingsKeepTheirWindow) {
  StatsHistory h;
  for (int s = 0; s <= 400; ++s) h.record(sample_at(s));
  EXPECT_EQ(h.size(HistoryWindow::kFine), StatsHistory::kFinePoints);
  EXPECT_EQ(h.size(HistoryWindow::kCoarse), 40u);
  json j = history_json(h);
  EXPECT_EQ(j["t"].front(), 1'700'000'000'000 + 101 * 1000);
  EXPECT_EQ(j["t"].back(), 1'700'000'000'000 + 400 * 1000);
  EXPECT_EQ(j["now_ms"], 1'700'000'000'000 + 400 * 1000);
}

TEST(StatsHistory, NoL2TierIsNull) {
  StatsHistory h;
  StatsSample a = sample_at(0), b = sample_at(1);
  a.l2 = {};
  b.l2 = {};
  h.record(a);
  h.record(b);
  EXPECT_TRUE(history_json(h)["l2"].is_null());
}

TEST(StatsHistory, NamesAreJsonEscaped) {
  StatsHistory h;
  StatsSample a = sample_at(0), b = sample_at(1);
  b.gateway.pacing.push_back({"odd\"rule\\", 1, 0});
  h.record(a);
  h.record(b);
  json j = history_json(h);  // parses
  EXPECT_TRUE(j["pacing"].contains("odd\"rule\\"));
}

TEST(StatsHistory, ParsesItsQuery) {
  auto q = StatsHistory::parse_query("window=1h&since=1700000000000");
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  EXPECT_EQ(q->window, HistoryWindow::kCoarse);
  EXPECT_EQ(q->since_ms, 1'700'000'000'000);
  auto d = StatsHistory::parse_query("");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->window, HistoryWindow::kFine);
  EXPECT_EQ(d->since_ms, 0);
  auto w = StatsHistory::parse_query("window=2h");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("window: expected 5m or 1h, got '2h'"), std::string::npos);
  auto s = StatsHistory::parse_query("since=yesterday");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("since"), std::string::npos);
  auto u = StatsHistory::parse_query("limit=3");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("unknown parameter 'limit'"), std::string::npos);
}

TEST(LatencyQuantile, InterpolatesInsideTheBucket) {
  LatencyCounts c{};
  EXPECT_EQ(latency_quantile_ms(c, 0.5), 0.0);
  c[0] = 100;  // all in [0, 0.5 ms]
  EXPECT_NEAR(latency_quantile_ms(c, 0.5), 0.25, 1e-9);
  c = {};
  c[8] = 50;   // (30, 50] ms
  c[10] = 50;  // (75, 100] ms
  EXPECT_NEAR(latency_quantile_ms(c, 0.5), 50.0, 1e-9);
  EXPECT_NEAR(latency_quantile_ms(c, 0.99), 99.5, 1e-9);
  c = {};
  c.back() = 1;  // beyond the last bound: its lower bound
  EXPECT_NEAR(latency_quantile_ms(c, 0.99), 60000.0, 1e-9);
}

}  // namespace stats_history_test
}  // namespace callcache::gateway
