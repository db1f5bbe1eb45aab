// What each tier costs per read, against an L1 hit and a 50 ms upstream call,
// in one run (so the README can quote ratios):
//   L1 hit (Cache::get, TieredCache::get_or_load hit)
//   L2 hit, SQLite and Redis: single get, get_many of 16 (per item), and the
//     full TieredCache path with L1 missing (L2 read + decode + L1 fill)
//   L2 write: put (SQLite write-behind, Redis round trip)
//   a simulated upstream call of 50 ms (sleep)
// The Redis benchmarks start their own redis-server on a free loopback port.
// Rates are wall-clock (UseRealTime): an L2 read mostly waits.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <thread>

#include "callcache/redis_backend.h"
#include "callcache/sqlite_backend.h"
#include "callcache/tiered_cache.h"
#include "redis_fixture.h"
#include "test_util.h"

namespace callcache {
namespace {

using namespace std::chrono_literals;

constexpr int kKeys = 10000;
constexpr std::size_t kValueBytes = 256;
const TenantId kTenant = tenant_from_name("bench");

std::string g_redis_url;  // empty if redis-server could not start
tiers::testing::TempDir* g_dir = nullptr;

std::string key_of(std::uint64_t i) { return "key:" + std::to_string(i % kKeys); }
std::string value_of(int i) { return std::string(kValueBytes, static_cast<char>('a' + i % 26)); }

// A cheap deterministic key sequence.
struct Keys {
  std::uint64_t x = 88172645463325252ull;
  std::uint64_t next() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }
};

std::unique_ptr<Backend> make_sqlite(bool preload) {
  SqliteOptions o;
  o.path = g_dir->file("bench.sqlite3");
  o.purge_interval = Duration::zero();
  auto b = open_sqlite_backend(o).value();
  if (preload) {
    for (int i = 0; i < kKeys; ++i) (void)b->put({"entity", kTenant, key_of(i)}, value_of(i), 1h);
    (void)b->flush();
  }
  return b;
}

std::unique_ptr<Backend> make_redis(bool preload) {
  RedisOptions o;
  (void)parse_redis_url(g_redis_url, o);
  o.pool_size = 1;
  auto b = open_redis_backend(o).value();
  if (preload) {
    std::vector<std::string> keys, values;
    for (int i = 0; i < kKeys; ++i) {
      keys.push_back(key_of(i));
      values.push_back(value_of(i));
    }
    std::vector<BackendItem> items;
    for (int i = 0; i < kKeys; ++i) items.push_back({{"entity", kTenant, keys[i]}, values[i], 1h});
    for (int i = 0; i < kKeys; i += 500) {
      (void)b->put_many(std::span<const BackendItem>(items).subspan(i, 500));
    }
  }
  return b;
}

std::unique_ptr<Backend> make_backend(int which, bool preload) {
  return which == 0 ? make_sqlite(preload) : make_redis(preload);
}

bool skip_without_redis(benchmark::State& state, int which) {
  if (which == 1 && g_redis_url.empty()) {
    state.SkipWithError("redis-server could not be started");
    return true;
  }
  return false;
}

std::unique_ptr<Engine> make_engine() {
  EngineOptions eo;
  NamespacePolicy p;
  p.ttl = 1h;
  p.max_entries = 2 * kKeys;
  eo.namespaces = {{"entity", p}};
  eo.sweep_interval = Duration::zero();
  return Engine::create(eo).value();
}

// ---- L1 ----

void BM_L1Hit(benchmark::State& state) {
  auto engine = make_engine();
  auto cache = Cache<std::string>::open(*engine, "entity").value();
  for (int i = 0; i < kKeys; ++i) (void)cache.put(kTenant, key_of(i), value_of(i));
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(key_of(i));
  Keys k;
  for (auto _ : state) {
    auto r = cache.get(kTenant, keys[k.next() % kKeys]);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_L1Hit)->UseRealTime();

void BM_TieredL1Hit(benchmark::State& state) {
  auto engine = make_engine();
  auto l2 = make_sqlite(false);
  TieredCache<std::string> c(Cache<std::string>::open(*engine, "entity").value(), l2.get());
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) {
    keys.push_back(key_of(i));
    (void)c.get_or_load(kTenant, keys.back(), [i] { return value_of(i); });
  }
  Keys k;
  for (auto _ : state) {
    auto r = c.get_or_load(kTenant, keys[k.next() % kKeys], [] { return std::string("miss"); });
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TieredL1Hit)->UseRealTime();

// ---- L2 (arg 0 = SQLite, 1 = Redis) ----

void BM_L2Get(benchmark::State& state) {
  int which = static_cast<int>(state.range(0));
  if (skip_without_redis(state, which)) return;
  auto b = make_backend(which, true);
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(key_of(i));
  Keys k;
  std::uint64_t hits = 0;
  for (auto _ : state) {
    auto r = b->get({"entity", kTenant, keys[k.next() % kKeys]});
    hits += r.ok() && r->has_value();
  }
  if (hits != static_cast<std::uint64_t>(state.iterations())) state.SkipWithError("L2 missed");
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(b->name()));
}
BENCHMARK(BM_L2Get)->Arg(0)->Arg(1)->UseRealTime();

void BM_L2GetMany16(benchmark::State& state) {
  int which = static_cast<int>(state.range(0));
  if (skip_without_redis(state, which)) return;
  auto b = make_backend(which, true);
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(key_of(i));
  Keys k;
  std::vector<BackendKey> batch(16);
  for (auto _ : state) {
    for (auto& bk : batch) bk = {"entity", kTenant, keys[k.next() % kKeys]};
    auto r = b->get_many(batch);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * 16);  // items/s = per-key cost
  state.SetLabel(std::string(b->name()) + " batch 16");
}
BENCHMARK(BM_L2GetMany16)->Arg(0)->Arg(1)->UseRealTime();

void BM_L2Put(benchmark::State& state) {
  int which = static_cast<int>(state.range(0));
  if (skip_without_redis(state, which)) return;
  auto b = make_backend(which, false);
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(key_of(i));
  std::string v = value_of(1);
  Keys k;
  for (auto _ : state) (void)b->put({"entity", kTenant, keys[k.next() % kKeys]}, v, 1h);
  (void)b->flush();  // inside the run: write-behind must pay for its commits
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(b->name()));
}
BENCHMARK(BM_L2Put)->Arg(0)->Arg(1)->UseRealTime();

// The full tiered path on an L1 miss served by L2: L1 lookup, single-flight
// setup, L2 read, decode, L1 insert with the remaining ttl.
void BM_TieredL2Hit(benchmark::State& state) {
  int which = static_cast<int>(state.range(0));
  if (skip_without_redis(state, which)) return;
  auto engine = make_engine();
  auto l2 = make_backend(which, true);
  TieredCache<std::string> c(Cache<std::string>::open(*engine, "entity").value(), l2.get());
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(key_of(i));
  Keys k;
  std::uint64_t loads_before = c.stats().loads;
  for (auto _ : state) {
    const std::string& key = keys[k.next() % kKeys];
    c.l1().erase(kTenant, key);  // force the L1 miss
    auto r = c.get_or_load(kTenant, key, [] { return std::string("loader"); });
    benchmark::DoNotOptimize(r);
  }
  if (c.stats().loads != loads_before) state.SkipWithError("the loader ran: L2 missed");
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(l2->name()));
}
BENCHMARK(BM_TieredL2Hit)->Arg(0)->Arg(1)->UseRealTime();

// ---- The upstream call the tiers save ----

void BM_Upstream50ms(benchmark::State& state) {
  for (auto _ : state) std::this_thread::sleep_for(50ms);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Upstream50ms)->Iterations(10)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace callcache

int main(int argc, char** argv) {
  callcache::tiers::testing::TempDir dir;
  callcache::g_dir = &dir;
  callcache::testing::RedisServer redis;
  std::string err = redis.start();
  if (err.empty()) {
    callcache::g_redis_url = redis.url();
  } else {
    std::fprintf(stderr, "tiers_bench: no Redis benchmarks: %s\n", err.c_str());
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
