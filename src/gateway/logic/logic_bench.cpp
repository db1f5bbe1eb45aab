// Cost of planning one request, beside the cheapest thing every request must
// do anyway (hashing the token into the tenant): the ratio is what planning
// adds on the gateway's hit path.
//
//   cmake --build <dir> --target logic_bench && <dir>/src/gateway/logic/logic_bench
#include <benchmark/benchmark.h>

#include "plan.h"
#include "rules.h"
#include "test_util.h"
#include "yaml_reader.h"

namespace callcache::gateway::logic {
namespace {

const Preset& preset() {
  static const Preset p = *builtin_preset();
  return p;
}

void BM_TenantHashOnly(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(tenant_from_secret(testing::kToken));
}
BENCHMARK(BM_TenantHashOnly);

void BM_ParseGetChat(benchmark::State& state) {
  auto r = testing::get(testing::bot("getChat") + "?chat_id=-1001234567890");
  HttpRequestView v = r.view();
  for (auto _ : state) benchmark::DoNotOptimize(parse_telegram(v));
}
BENCHMARK(BM_ParseGetChat);

void plan_loop(benchmark::State& state, testing::OwnedRequest r, PostWriteState& windows) {
  ManualClock clock;
  HttpRequestView v = r.view();
  for (auto _ : state) {
    auto call = parse_telegram(v);
    Plan p = plan(*call, preset(), clock.now(), windows);
    benchmark::DoNotOptimize(p);
  }
}

void BM_ParsePlanGetChat(benchmark::State& state) {
  PostWriteState windows;
  plan_loop(state, testing::get(testing::bot("getChat") + "?chat_id=-1001234567890"), windows);
}
BENCHMARK(BM_ParsePlanGetChat);

void BM_ParsePlanGetChatMemberJson(benchmark::State& state) {
  PostWriteState windows;
  plan_loop(state,
            testing::post(testing::bot("getChatMember"), "application/json",
                          R"({"chat_id":"-1001234567890","user_id":123456789})"),
            windows);
}
BENCHMARK(BM_ParsePlanGetChatMemberJson);

// 10,000 post-write windows open (other chats): reads take the locked path.
void BM_ParsePlanGetChatWindowsOpen(benchmark::State& state) {
  PostWriteState windows;
  ManualClock clock;
  for (int i = 0; i < 10000; ++i) {
    windows.mark("tg:0000000000000000:getChat:chat_id=" + std::to_string(i),
                 clock.now() + std::chrono::hours(1));
  }
  plan_loop(state, testing::get(testing::bot("getChat") + "?chat_id=-1001234567890"), windows);
}
BENCHMARK(BM_ParsePlanGetChatWindowsOpen);

void BM_ParsePlanSendMessage(benchmark::State& state) {
  PostWriteState windows;
  plan_loop(
      state,
      testing::post(testing::bot("sendMessage"), "application/json",
                    R"({"chat_id":-1001234567890,"text":"hello, world","parse_mode":"HTML"})"),
      windows);
}
BENCHMARK(BM_ParsePlanSendMessage);

void BM_GenericPlan(benchmark::State& state) {
  auto doc = config::load_string(R"(
rules:
  - {match: "GET /templates/{id}", namespace: sns, key: [query.lang], tenant: [header.x-api-key]}
  - {match: "GET /templates*", namespace: sns, key: ["query.*"], tenant: [header.x-api-key]}
)");
  Rules rules = *parse_rules((*doc)["rules"]);
  auto r = testing::get("/templates/42?lang=en");
  r.headers = {{"x-api-key", "k-123"}};
  HttpRequestView v = r.view();
  for (auto _ : state) benchmark::DoNotOptimize(plan_generic(v, rules));
}
BENCHMARK(BM_GenericPlan);

}  // namespace
}  // namespace callcache::gateway::logic

BENCHMARK_MAIN();
