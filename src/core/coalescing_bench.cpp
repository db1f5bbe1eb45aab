// Coalescing under contention: 2 threads each issue W waiters (callback form)
// for the same missing key at once; the upstream answers each request after
// sleeping 1 ms. One iteration = one new key.
//
// Reported per benchmark (counters):
//   loader_calls_per_key   upstream requests per distinct key (coalesced: must be 1)
//   wall_us_per_key        time from the first call to the last callback
//   overhead_ns_per_waiter (wall - the upstream's own 1 ms sleep) / (2W - 1): what each
//                          extra waiter costs (issuing it, joining the flight, being called back)
//
// BM_NoCoalescing is the baseline in the same run: the same callers with a
// plain get-then-fetch-then-put cache (what the seeds do): every caller that
// misses calls the upstream itself.
//
// BM_HitGet / BM_HitGetOrLoad: the cost of get_or_load on a hit vs a plain get.
//
// Run: build/<dir>/src/core/coalescing_bench
#include <benchmark/benchmark.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "callcache/cache.h"

namespace callcache {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A serial upstream: each request sleeps 1 ms, then its response runs (on
// this thread, like an HTTP client's completion).
class Upstream {
 public:
  Upstream() : worker_([this] { run(); }) {}
  ~Upstream() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  void request(std::function<void()> respond) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(respond));
    }
    cv_.notify_all();
  }
  std::uint64_t calls() const { return calls_.load(); }
  // Total time spent sleeping (the simulated upstream latency).
  std::chrono::nanoseconds slept() const { return std::chrono::nanoseconds(slept_ns_.load()); }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto respond = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      auto t0 = Clock::now();
      std::this_thread::sleep_for(1ms);
      slept_ns_.fetch_add((Clock::now() - t0).count());
      calls_.fetch_add(1);
      respond();
      lock.lock();
    }
  }

  std::mutex mu_;  // guards queue_, stop_
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::atomic<std::uint64_t> calls_{0};
  std::atomic<std::int64_t> slept_ns_{0};
  std::thread worker_;
};

std::unique_ptr<Engine> make_engine() {
  NamespacePolicy p;
  p.ttl = 1h;
  p.max_entries = 1 << 20;
  EngineOptions o;
  o.namespaces = {{"bench", p}};
  o.sweep_interval = Duration::zero();
  return Engine::create(std::move(o)).value();
}

// Two caller threads released together for each key; `issue(key, done)`
// issues one caller's request, `done()` is called when it is answered.
template <class Issue>
void run_two_threads(benchmark::State& state, Upstream& upstream, Issue issue) {
  const int waiters = static_cast<int>(state.range(0));
  std::string key;
  std::atomic<int> remaining{0};
  std::mutex mu;  // guards nothing but pairs with cv for "all answered"
  std::condition_variable cv;
  auto answered = [&] {
    if (remaining.fetch_sub(1) == 1) {
      std::lock_guard lock(mu);
      cv.notify_all();
    }
  };
  bool stop = false;
  std::barrier go(3);
  std::barrier issued(3);
  std::vector<std::thread> callers;
  for (int t = 0; t < 2; ++t) {
    callers.emplace_back([&] {
      for (;;) {
        go.arrive_and_wait();
        if (stop) return;
        for (int i = 0; i < waiters; ++i) issue(key, answered);
        issued.arrive_and_wait();
      }
    });
  }
  std::uint64_t n = 0;
  double overhead_ns = 0;
  const auto calls0 = upstream.calls();
  for (auto _ : state) {
    key = "key-" + std::to_string(n++);
    remaining = 2 * waiters;
    const auto slept0 = upstream.slept();
    const auto t0 = Clock::now();
    go.arrive_and_wait();
    issued.arrive_and_wait();
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return remaining.load() == 0; });
    }
    const auto wall = Clock::now() - t0;
    state.SetIterationTime(std::chrono::duration<double>(wall).count());
    overhead_ns += static_cast<double>((wall - (upstream.slept() - slept0)).count());
  }
  stop = true;
  go.arrive_and_wait();
  for (auto& c : callers) c.join();
  const double keys = static_cast<double>(n);
  state.counters["loader_calls_per_key"] = static_cast<double>(upstream.calls() - calls0) / keys;
  state.counters["overhead_ns_per_waiter"] =
      waiters * 2 > 1 ? overhead_ns / keys / (2.0 * waiters - 1) : overhead_ns / keys;
  state.counters["waiters_per_key"] = 2.0 * waiters;
}

void BM_Coalesced(benchmark::State& state) {
  auto engine = make_engine();
  auto cache = Cache<std::string>::open(*engine, "bench").value();
  Upstream upstream;
  const TenantId tenant{1};
  std::atomic<std::uint64_t> errors{0};
  run_two_threads(state, upstream, [&](const std::string& key, auto& answered) {
    cache.get_or_load_async(
        tenant, key,
        [&upstream](LoadCompletion<std::string> done) {
          upstream.request([done] { done(std::string(64, 'x')); });
        },
        [&](Result<Ref<std::string>> r) {
          if (!r.ok()) errors.fetch_add(1);
          answered();
        });
  });
  state.counters["errors"] = static_cast<double>(errors.load());
  auto s = engine->stats().total;
  state.counters["coalesced_per_key"] =
      static_cast<double>(s.coalesced) / static_cast<double>(s.loads ? s.loads : 1);
}

// Baseline: no single flight. Each caller checks the cache, and on a miss
// fetches from the upstream itself and stores the answer.
void BM_NoCoalescing(benchmark::State& state) {
  auto engine = make_engine();
  auto cache = Cache<std::string>::open(*engine, "bench").value();
  Upstream upstream;
  const TenantId tenant{1};
  run_two_threads(state, upstream, [&](const std::string& key, auto& answered) {
    if (cache.get(tenant, key)) {
      answered();
      return;
    }
    upstream.request([&cache, &answered, tenant, key] {
      (void)cache.put(tenant, key, std::string(64, 'x'));
      answered();
    });
  });
}

// The hit path: get_or_load on a cached key vs a plain get (same engine).
struct HitFixture {
  HitFixture() : engine(make_engine()), cache(Cache<std::string>::open(*engine, "bench").value()) {
    for (int i = 0; i < 1024; ++i) (void)cache.put(TenantId{1}, "k" + std::to_string(i), "v");
  }
  std::unique_ptr<Engine> engine;
  Cache<std::string> cache;
};
HitFixture& hit_fixture() {
  static HitFixture* f = new HitFixture();
  return *f;
}
std::vector<std::string> hit_keys() {
  std::vector<std::string> keys;
  for (int i = 0; i < 1024; ++i) keys.push_back("k" + std::to_string(i));
  return keys;
}

void BM_HitGet(benchmark::State& state) {
  auto& f = hit_fixture();
  auto keys = hit_keys();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 64;
  for (auto _ : state) benchmark::DoNotOptimize(f.cache.get(TenantId{1}, keys[i++ & 1023]));
}

void BM_HitGetOrLoad(benchmark::State& state) {
  auto& f = hit_fixture();
  auto keys = hit_keys();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 64;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.cache.get_or_load(TenantId{1}, keys[i++ & 1023],
                                                 [] { return Result<std::string>("x"); }));
  }
}

BENCHMARK(BM_HitGet)->Threads(1)->Threads(2);
BENCHMARK(BM_HitGetOrLoad)->Threads(1)->Threads(2);

BENCHMARK(BM_Coalesced)
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->Arg(2048)
    ->UseManualTime()
    ->Iterations(200)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_NoCoalescing)
    ->Arg(1)
    ->Arg(16)
    ->Arg(64)
    ->UseManualTime()
    ->Iterations(20)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace callcache

BENCHMARK_MAIN();
