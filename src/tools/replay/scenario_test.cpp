// Scenario files, call logs and their errors.
#include "scenario.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "replay_main.h"
#include "report.h"
#include "rule_limiter.h"
#include "runner.h"

namespace callcache::replay {
namespace scenario_test {

std::string source_dir() {
  const char* d = std::getenv("CALLCACHE_SOURCE_DIR");
  return d ? d : ".";
}

const char* kMinimal = R"(
name: tiny
accounts: {count: 2}
objects: {groups: 1, items_per_group: 2}
namespaces:
  message: {ttl: 60s, shared: true}
methods:
  get_messages: {namespace: message, latency: 100ms}
  view: {latency: 50ms}
workload:
  steps: [get_messages, view]
  workers: 2
)";

std::string error_of(const std::string& yaml) {
  auto s = parse_scenario(yaml, "test.yaml");
  return s.ok() ? std::string("(no error)") : s.status().message();
}

TEST(Scenario, MinimalFileParsesWithDefaults) {
  auto s = parse_scenario(kMinimal, "test.yaml");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->accounts, (std::vector<std::string>{"account1", "account2"}));
  EXPECT_EQ(s->methods.at("view").ns, "");
  EXPECT_EQ(s->upstream_limits.size(), telegram_user_limits().size());
  EXPECT_EQ(s->pacing.size(), s->upstream_limits.size());
  auto r = run_replay(*s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->floor.first_run, 2u + 4u);  // 2 posts (shared) + 4 views
  EXPECT_EQ(r->modes[0].calls, 8u);
  EXPECT_EQ(r->modes[2].calls, 6u);
  EXPECT_EQ(r->modes[3].calls, 4u);
}

TEST(Scenario, ShippedLikebotFileEqualsTheBuiltIn) {
  auto file = load_scenario_file(source_dir() + "/scenarios/likebot.yaml");
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  auto a = run_replay(*file);
  auto b = run_replay(builtin_likebot());
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(render_json(*a), render_json(*b));
}

TEST(Scenario, OtherShippedScenariosRun) {
  auto s = load_scenario_file(source_dir() + "/scenarios/bot_chats.yaml");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  auto r = run_replay(*s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->modes[2].floods, 0u);
  EXPECT_EQ(r->modes[2].calls, r->floor.first_run);

  Scenario likebot = builtin_likebot();
  Status st = load_call_log(source_dir() + "/scenarios/example.log.jsonl", likebot);
  ASSERT_TRUE(st.ok()) << st.to_string();
  auto lr = run_replay(likebot);
  ASSERT_TRUE(lr.ok()) << lr.status().to_string();
  EXPECT_EQ(lr->modes[0].calls, likebot.log.size());
  EXPECT_EQ(lr->modes[2].calls, lr->floor.first_run);
}

TEST(Scenario, ErrorsNameTheKeyPath) {
  std::string y = kMinimal;
  EXPECT_NE(error_of(y + "bogus: 1\n").find("test.yaml: bogus"), std::string::npos)
      << error_of(y + "bogus: 1\n");
  std::string bad_latency = y;
  bad_latency.replace(bad_latency.find("latency: 50ms"), 13, "latency: fast");
  EXPECT_NE(error_of(bad_latency).find("methods.view.latency"), std::string::npos)
      << error_of(bad_latency);
  std::string bad_ns = y;
  bad_ns.replace(bad_ns.find("namespace: message"), 18, "namespace: msgs");
  EXPECT_NE(error_of(bad_ns).find("methods.get_messages.namespace: unknown namespace 'msgs'"),
            std::string::npos)
      << error_of(bad_ns);
  std::string bad_step = y;
  bad_step.replace(bad_step.find("[get_messages, view]"), 20, "[get_messages, react]");
  EXPECT_NE(error_of(bad_step).find("workload.steps: unknown method 'react'"), std::string::npos)
      << error_of(bad_step);
  EXPECT_NE(error_of(y + "limits:\n  upstream:\n    - {per: account, method: nope, interval: 1s}\n")
                .find("limits.upstream[0].method: unknown method 'nope'"),
            std::string::npos);
  EXPECT_NE(error_of(y + "limits:\n  upstream:\n    - {per: planet, method: view, interval: 1s}\n")
                .find("limits.upstream[0].per"),
            std::string::npos);
  EXPECT_NE(error_of(y + "limits:\n  seeds: fastest\n").find("limits.seeds"), std::string::npos);
  EXPECT_NE(error_of(y + "limits:\n  upstream:\n    - {per: object, method: view, interval: 1s}\n")
                .find("limits.pacing: rule 0 is per: object"),
            std::string::npos);
  EXPECT_NE(error_of("name: x\nmethods: [oops\n").find("test.yaml: malformed YAML at line 3"),
            std::string::npos)
      << error_of("name: x\nmethods: [oops\n");
  EXPECT_NE(error_of("methods: {v: {}}\n").find("name: is required"), std::string::npos);
  auto missing = load_scenario_file("/nonexistent/x.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/x.yaml"), std::string::npos);
}

TEST(Scenario, WorkloadsTooLargeToHoldAreRefusedBeforeBuilt) {
  // Counts are checked before accounts are made: a huge count is an error at
  // once, not a process that fills memory.
  std::string y = kMinimal;
  std::string many = y;
  many.replace(many.find("count: 2"), 8, "count: 100000000000");
  EXPECT_NE(error_of(many).find("accounts.count: at most 100000 accounts"), std::string::npos)
      << error_of(many);
  std::string objects = y;
  objects.replace(objects.find("items_per_group: 2"), 18, "items_per_group: 4294967296");
  objects.replace(objects.find("groups: 1"), 9, "groups: 4294967296");
  EXPECT_NE(error_of(objects).find("objects: at most 10000000 objects"), std::string::npos)
      << error_of(objects);
  std::string pairs = y;
  pairs.replace(pairs.find("count: 2"), 8, "count: 100000");
  pairs.replace(pairs.find("items_per_group: 2"), 18, "items_per_group: 10000");
  EXPECT_NE(error_of(pairs).find("workload.tasks: at most 100000000 tasks"), std::string::npos)
      << error_of(pairs);
  pairs.replace(pairs.find("items_per_group: 10000"), 22, "items_per_group: 1000");
  EXPECT_EQ(error_of(pairs), "(no error)");
}

TEST(CallLog, ParsesAndRejectsWithLineNumbers) {
  Scenario s = builtin_likebot();
  Status ok = parse_call_log(
      "# a comment\n"
      "{\"t\": 0, \"account\": \"alice\", \"method\": \"get_messages\", \"object\": \"c1/1\"}\n"
      "\n"
      "{\"t\": 0.5, \"account\": \"bob\", \"method\": \"view\", \"object\": \"c1/1\"}\n",
      "log", s);
  ASSERT_TRUE(ok.ok()) << ok.to_string();
  ASSERT_EQ(s.log.size(), 2u);
  EXPECT_EQ(s.log[1].t, std::chrono::milliseconds(500));
  EXPECT_EQ(s.log[1].line, 4u);
  EXPECT_EQ(s.accounts, (std::vector<std::string>{"alice", "bob"}));

  auto err = [](const std::string& text) {
    Scenario sc = builtin_likebot();
    Status st = parse_call_log(text, "traffic.jsonl", sc);
    return st.ok() ? std::string("(no error)") : st.message();
  };
  const std::string good =
      "{\"t\": 1, \"account\": \"a\", \"method\": \"view\", \"object\": \"c/1\"}\n";
  EXPECT_NE(err(good + "{not json\n").find("traffic.jsonl:2: not a JSON object"),
            std::string::npos);
  EXPECT_NE(err(good + "{\"t\": 2, \"account\": \"a\", \"method\": \"fly\", \"object\": \"c\"}\n")
                .find("traffic.jsonl:2: 'method': unknown method 'fly'"),
            std::string::npos);
  EXPECT_NE(
      err(good + "{\"t\": 0.5, \"account\": \"a\", \"method\": \"view\", \"object\": \"c\"}\n")
          .find("traffic.jsonl:2: 't': lines must be in time order"),
      std::string::npos);
  EXPECT_NE(err("{\"t\": 1, \"method\": \"view\", \"object\": \"c\"}\n")
                .find("traffic.jsonl:1: 'account'"),
            std::string::npos);
  EXPECT_NE(err("{\"t\": \"soon\", \"account\": \"a\", \"method\": \"view\", \"object\": \"c\"}\n")
                .find("traffic.jsonl:1: 't'"),
            std::string::npos);
  EXPECT_NE(err(good + "{\"t\": 3, \"account\": \"a\", \"method\": \"view\", \"object\": \"c\", "
                       "\"extra\": 1}\n")
                .find("traffic.jsonl:2: unknown field 'extra'"),
            std::string::npos);
  EXPECT_NE(err("\n# only comments\n").find("no calls"), std::string::npos);
}

TEST(RuleLimiter, IntervalBurstAndPenalty) {
  RuleLimiter l({{Per::kAccount, "send_reaction", std::chrono::milliseconds(500), 2},
                 {Per::kAccount, "default", std::chrono::milliseconds(200), 1}});
  TimePoint t0(std::chrono::seconds(10));
  CallKey react{"a", "send_reaction", "c", "c/1"};
  EXPECT_FALSE(l.try_acquire(react, t0));  // burst 2: two at once
  EXPECT_FALSE(l.try_acquire(react, t0));
  auto wait = l.try_acquire(react, t0);
  ASSERT_TRUE(wait);
  EXPECT_EQ(*wait, std::chrono::milliseconds(500));
  CallKey other{"b", "send_reaction", "c", "c/1"};
  EXPECT_FALSE(l.try_acquire(other, t0));  // another account: its own bucket
  CallKey view{"a", "view", "c", "c/1"};   // "default": view has its own bucket
  EXPECT_FALSE(l.try_acquire(view, t0));
  EXPECT_EQ(l.reserve(view, t0), t0 + std::chrono::milliseconds(200));
  l.penalize(other, t0 + std::chrono::seconds(5));
  EXPECT_EQ(l.earliest(other, t0), t0 + std::chrono::seconds(5));
}

TEST(Presets, ScenarioPresetsAgreeWithTheToolkit) {
  // The upstream's per-account intervals must be what the toolkit's Telegram
  // user preset paces at, or mode 3 would flood (or be slower than needed).
  auto rules = telegram_user_preset();
  auto interval_of = [&](const std::string& method) {
    for (const auto& r : rules)
      for (const auto& m : r.methods)
        if (m == method) return emission_interval(r);
    return Duration::zero();
  };
  for (const auto& lr : telegram_user_limits()) {
    if (lr.per == Per::kAccount && lr.method != "default" && lr.method != "any") {
      EXPECT_EQ(interval_of(lr.method), lr.interval) << lr.method;
    }
  }
}

int run_cli(std::vector<std::string> args, std::string* out = nullptr) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  int rc = replay_main(static_cast<int>(argv.size()), argv.data());
  std::string o = ::testing::internal::GetCapturedStdout();
  std::string e = ::testing::internal::GetCapturedStderr();
  if (out) *out = o + e;
  return rc;
}

TEST(Cli, ExitCodesAndJson) {
  std::string out;
  EXPECT_EQ(run_cli({"replay", "--workers", "0"}, &out), 2);
  EXPECT_NE(out.find("--workers: expected a positive number"), std::string::npos) << out;
  EXPECT_EQ(run_cli({"replay", "--frobnicate"}, &out), 2);
  EXPECT_NE(out.find("unknown option '--frobnicate'"), std::string::npos) << out;
  EXPECT_EQ(run_cli({"replay", "--scenario", "/nonexistent.yaml"}, &out), 2);
  EXPECT_NE(out.find("/nonexistent.yaml"), std::string::npos) << out;
  EXPECT_EQ(run_cli({"replay", "--builtin", "likebot", "--json"}, &out), 0);
  EXPECT_NE(out.find("\"first_run\": 1105"), std::string::npos) << out;
  EXPECT_EQ(run_cli({"replay", "--help"}, &out), 0);
  EXPECT_NE(out.find("usage: callcache replay"), std::string::npos);
}

}  // namespace scenario_test
}  // namespace callcache::replay
