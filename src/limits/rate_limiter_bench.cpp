// Cost of an uncontended rate-limit check, callcache's limiter vs the seeds'
// design, in the same run:
//   seeds               one std::mutex over std::unordered_map<std::string,
//                       last_call_time>; a sleep-free check ("wait needed, or
//                       record the call now"), given a pre-built key string.
//   seeds_key_per_call  the same, building "<account>:<method>" per call (what
//                       a per-account version of the seeds' limiter must do).
//   callcache           make_local_rate_limiter(), one rule keyed by (account,
//                       method), try_acquire(): GCRA, striped locks, the key
//                       built from the call's attributes, per-rule stats.
//   callcache_default_clock  the same on default_clock() (the library default,
//                       a 1 ms coarse clock) instead of SteadyClock.
// Limits are loose enough that every call is admitted, so the numbers are the
// bookkeeping cost. A last pair sends to 1,000,000 distinct chats once each
// and reports the keys still held once they are idle (keys_retained). Workloads: one hot key per thread, and 100,000 distinct
// keys visited round-robin (a cache-missing working set), on 1 and 2 threads.
// At the end the callcache/seeds throughput ratios are printed (> 1 =
// callcache faster).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "callcache/rate_limiter.h"

namespace {

using callcache::CallAttributes;
using callcache::Duration;
using callcache::TimePoint;

constexpr int kKeys = 100'000;

const callcache::SteadyClock& steady() {
  static const callcache::SteadyClock clock;
  return clock;
}

// The seeds' limiter, reduced to its check (no sleeping).
class SeedsLimiter {
 public:
  explicit SeedsLimiter(Duration interval) : interval_(interval) {}
  // Returns the wait needed; zero = admitted (and recorded).
  Duration check(const std::string& key) {
    std::lock_guard lock(mu_);
    const TimePoint now = steady().now();
    auto [it, inserted] = last_.try_emplace(key, now);
    if (!inserted) {
      const Duration since = now - it->second;
      if (since < interval_) return interval_ - since;
      it->second = now;
    }
    return Duration::zero();
  }

  std::size_t size() {
    std::lock_guard lock(mu_);
    return last_.size();
  }

 private:
  std::mutex mu_;  // guards last_
  std::unordered_map<std::string, TimePoint> last_;
  const Duration interval_;
};

const std::vector<std::string>& accounts() {
  static const std::vector<std::string> a = [] {
    std::vector<std::string> v;
    v.reserve(kKeys);
    for (int i = 0; i < kKeys; ++i) v.push_back("account-" + std::to_string(1'000'000 + i * 7919));
    return v;
  }();
  return a;
}

// The seeds key a limiter entry by method; with per-account pacing the same
// map holds "<account>:<method>". Pre-built, so the baseline pays no key building.
const std::vector<std::string>& seeds_keys() {
  static const std::vector<std::string> k = [] {
    std::vector<std::string> v;
    for (const auto& a : accounts()) v.push_back(a + ":send_reaction");
    return v;
  }();
  return k;
}

std::unique_ptr<callcache::RateLimiter> build_limiter(const callcache::Clock& clock) {
  callcache::Rule r;
  r.name = "per_account_method";
  // 1 call per second with a burst of a billion: every call is admitted (all
  // bookkeeping done) and every key stays live (never swept as idle), like the
  // seeds' map, which never forgets a key.
  r.limit = 1;
  r.period = std::chrono::seconds(1);
  r.burst = 1'000'000'000;
  r.key = callcache::key_scope::kAccount | callcache::key_scope::kMethod;
  callcache::RateLimiterOptions o;
  o.rules = {r};
  o.clock = &clock;
  o.shards = 64;
  return std::move(callcache::make_local_rate_limiter(std::move(o))).value();
}

callcache::RateLimiter& limiter_on(bool default_clock) {
  static std::unique_ptr<callcache::RateLimiter> steady_rl = build_limiter(steady());
  static std::unique_ptr<callcache::RateLimiter> coarse_rl = build_limiter(callcache::default_clock());
  return default_clock ? *coarse_rl : *steady_rl;
}

SeedsLimiter& seeds_limiter() {
  static SeedsLimiter s{Duration(1)};
  return s;
}

template <bool kDefaultClock>
void callcache_one_key(benchmark::State& state) {
  auto& rl = limiter_on(kDefaultClock);
  CallAttributes call;
  call.method = "send_reaction";
  call.account = accounts()[state.thread_index()];
  std::int64_t refused = 0;
  for (auto _ : state) refused += !rl.try_acquire(call).admitted;
  state.SetItemsProcessed(state.iterations());
  state.counters["refused"] = static_cast<double>(refused);
}

std::string key_of(std::string_view account, std::string_view method) {
  std::string key(account);
  key += ':';
  key += method;
  return key;
}

void seeds_key_per_call_one_key(benchmark::State& state) {
  auto& s = seeds_limiter();
  const std::string& account = accounts()[state.thread_index()];
  std::int64_t refused = 0;
  for (auto _ : state) refused += s.check(key_of(account, "send_reaction")) != Duration::zero();
  state.SetItemsProcessed(state.iterations());
  state.counters["refused"] = static_cast<double>(refused);
}

void seeds_key_per_call_many_keys(benchmark::State& state) {
  auto& s = seeds_limiter();
  const auto& acc = accounts();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7;
  std::int64_t refused = 0;
  for (auto _ : state) {
    refused += s.check(key_of(acc[i], "send_reaction")) != Duration::zero();
    if (++i == acc.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["refused"] = static_cast<double>(refused);
}

constexpr int kDistinctChats = 1'000'000;

// Per (bot, chat): 1 message per second, the Bot API's private-chat limit.
void callcache_distinct_chats_once(benchmark::State& state) {
  double retained = 0;
  for (auto _ : state) {
    callcache::ManualClock clock;
    callcache::Rule r;
    r.name = "private_chat";
    r.key = callcache::key_scope::kBot | callcache::key_scope::kChat;
    callcache::RateLimiterOptions o;
    o.rules = {r};
    o.clock = &clock;
    auto rl = std::move(callcache::make_local_rate_limiter(std::move(o))).value();
    CallAttributes call;
    call.method = "sendMessage";
    call.bot = "bot";
    for (int i = 0; i < kDistinctChats; ++i) {
      call.chat = 1'000'000 + i;
      benchmark::DoNotOptimize(rl->try_acquire(call));
    }
    clock.advance(std::chrono::seconds(1));  // every chat is idle now
    (void)rl->sweep_idle();
    retained = static_cast<double>(rl->stats().tracked_keys);
  }
  state.SetItemsProcessed(state.iterations() * kDistinctChats);
  state.counters["keys_retained"] = retained;
}

void seeds_distinct_chats_once(benchmark::State& state) {
  double retained = 0;
  for (auto _ : state) {
    SeedsLimiter s{std::chrono::seconds(1)};
    for (int i = 0; i < kDistinctChats; ++i) {
      benchmark::DoNotOptimize(s.check(key_of("bot", std::to_string(1'000'000 + i))));
    }
    retained = static_cast<double>(s.size());  // the seeds' map never forgets
  }
  state.SetItemsProcessed(state.iterations() * kDistinctChats);
  state.counters["keys_retained"] = retained;
}

void seeds_one_key(benchmark::State& state) {
  auto& s = seeds_limiter();
  const std::string& key = seeds_keys()[state.thread_index()];
  std::int64_t refused = 0;
  for (auto _ : state) refused += s.check(key) != Duration::zero();
  state.SetItemsProcessed(state.iterations());
  state.counters["refused"] = static_cast<double>(refused);
}

template <bool kDefaultClock>
void callcache_many_keys(benchmark::State& state) {
  auto& rl = limiter_on(kDefaultClock);
  const auto& acc = accounts();
  CallAttributes call;
  call.method = "send_reaction";
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7;
  std::int64_t refused = 0;
  for (auto _ : state) {
    call.account = acc[i];
    refused += !rl.try_acquire(call).admitted;
    if (++i == acc.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["refused"] = static_cast<double>(refused);
}

void seeds_many_keys(benchmark::State& state) {
  auto& s = seeds_limiter();
  const auto& keys = seeds_keys();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7;
  std::int64_t refused = 0;
  for (auto _ : state) {
    refused += s.check(keys[i]) != Duration::zero();
    if (++i == keys.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["refused"] = static_cast<double>(refused);
}

// Records every run's throughput, then prints the seeds/callcache ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      auto it = r.counters.find("items_per_second");
      if (it != r.counters.end()) items_per_second_[r.benchmark_name()] = it->second.value;
      cpu_ns_[r.benchmark_name()] = r.GetAdjustedCPUTime();
    }
    ConsoleReporter::ReportRuns(runs);
  }
  // Pairs "<workload>/<impl>/<suffix>" runs of callcache* and seeds* impls.
  // Two ratios: CPU time per call (robust on a shared, loaded machine) and
  // wall-clock throughput (what multi-threaded callers see; noisy when other
  // processes compete for the cores).
  void print_ratios() const {
    std::printf("\nratios callcache vs seeds (> 1: callcache better)\n");
    std::printf("  %-58s %-19s %14s %14s\n", "benchmark", "baseline", "cpu ns ratio",
                "throughput");
    for (const auto& [name, ips] : items_per_second_) {
      const auto a = name.find('/');
      const auto b = name.find('/', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      const std::string impl = name.substr(a + 1, b - a - 1);
      if (impl.rfind("callcache", 0) != 0) continue;
      for (const char* baseline : {"seeds", "seeds_key_per_call"}) {
        const std::string other = name.substr(0, a + 1) + baseline + name.substr(b);
        auto s = items_per_second_.find(other);
        if (s == items_per_second_.end() || s->second == 0) continue;
        const double cpu_ratio = cpu_ns_.at(other) / cpu_ns_.at(name);
        std::printf("  %-58s %-19s %5.0f/%-5.0f=%4.2f %14.2f\n", name.c_str(), baseline,
                    cpu_ns_.at(other), cpu_ns_.at(name), cpu_ratio, ips / s->second);
      }
    }
  }

 private:
  std::map<std::string, double> items_per_second_;
  std::map<std::string, double> cpu_ns_;  // CPU time per iteration (per thread)
};

}  // namespace

int main(int argc, char** argv) {
  (void)accounts();
  (void)seeds_keys();
  (void)limiter_on(false);
  (void)limiter_on(true);
  for (int threads : {1, 2}) {
    auto add = [threads](const char* name, void (*fn)(benchmark::State&)) {
      benchmark::RegisterBenchmark(name, fn)->Threads(threads)->UseRealTime();
    };
    add("acquire_one_key/callcache", callcache_one_key<false>);
    add("acquire_one_key/callcache_default_clock", callcache_one_key<true>);
    add("acquire_one_key/seeds", seeds_one_key);
    add("acquire_one_key/seeds_key_per_call", seeds_key_per_call_one_key);
    add("acquire_100k_keys/callcache", callcache_many_keys<false>);
    add("acquire_100k_keys/callcache_default_clock", callcache_many_keys<true>);
    add("acquire_100k_keys/seeds", seeds_many_keys);
    add("acquire_100k_keys/seeds_key_per_call", seeds_key_per_call_many_keys);
  }
  benchmark::RegisterBenchmark("distinct_chats_once/callcache", callcache_distinct_chats_once)
      ->Iterations(1)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("distinct_chats_once/seeds", seeds_distinct_chats_once)
      ->Iterations(1)->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_ratios();
  benchmark::Shutdown();
  return 0;
}
