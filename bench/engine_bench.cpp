// Engine throughput vs the seeds' design (bench/seeds_lru.h), in one binary so
// the ratios come from the same run on the same machine.
//
// Workload: 65,536 distinct 16-byte keys drawn Zipf(0.99); capacity
// 131,072 entries, fully populated (all hits) for the read/write mixes; plus a
// miss-heavy case and insert-with-eviction. Run:
//   build/release/bench/engine_bench --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "callcache/cache.h"
#include "seeds_lru.h"
#include "zipf.h"

namespace callcache::bench {
namespace {

constexpr std::uint64_t kKeys = 65536;
constexpr std::uint64_t kCapacity = 131072;
constexpr std::size_t kSeq = 1 << 20;

const std::vector<std::string>& keys() {
  static const std::vector<std::string> k = [] {
    std::vector<std::string> v;
    v.reserve(4 * kKeys);
    char buf[32];
    for (std::uint64_t i = 0; i < 4 * kKeys; ++i) {
      std::snprintf(buf, sizeof buf, "key:%012llu", static_cast<unsigned long long>(i));
      v.emplace_back(buf, 16);
    }
    return v;
  }();
  return k;
}

const std::vector<std::uint32_t>& sequence() {
  static const auto s = zipf_sequence(kKeys, 0.99, kSeq, 7);
  return s;
}

// Draws over 4x the key space: about three quarters of lookups miss.
const std::vector<std::uint32_t>& miss_sequence() {
  static const auto s = zipf_sequence(4 * kKeys, 0.99, kSeq, 11);
  return s;
}

struct Ours {
  std::unique_ptr<Engine> engine;
  Cache<std::uint64_t> cache;

  static Ours* make(EvictionPolicy pol, std::uint64_t capacity) {
    NamespacePolicy p;
    p.max_entries = capacity;
    p.ttl = std::chrono::hours(1);
    p.eviction = pol;
    EngineOptions o;
    o.namespaces = {{"bench", p}};
    o.sweep_interval = Duration::zero();
    auto engine = Engine::create(o).value();
    auto cache = Cache<std::uint64_t>::open(*engine, "bench").value();
    auto* ours = new Ours{std::move(engine), cache};
    for (std::uint64_t i = 0; i < kKeys; ++i) (void)ours->cache.put(kTenant, keys()[i], i);
    return ours;
  }
  bool get(std::uint32_t i) { return cache.get(kTenant, keys()[i]).has_value(); }
  void put(std::uint32_t i) { (void)cache.put(kTenant, keys()[i], i); }
  static constexpr TenantId kTenant{1};
};

struct Seeds {
  SeedsLru<std::uint64_t> cache{kCapacity};
  static Seeds* make(std::uint64_t capacity) {
    auto* s = new Seeds{SeedsLru<std::uint64_t>(capacity)};
    for (std::uint64_t i = 0; i < kKeys; ++i) s->cache.put(keys()[i], i);
    return s;
  }
  bool get(std::uint32_t i) { return cache.get(keys()[i]) != nullptr; }
  void put(std::uint32_t i) { cache.put(keys()[i], i); }
};

// One shared cache per benchmark, built by thread 0 before the timed loop.
template <class C>
C* shared_instance(benchmark::State& state, C* (*make)()) {
  static C* instance = nullptr;
  static std::mutex mu;
  std::lock_guard lock(mu);
  if (!instance) instance = make();
  (void)state;
  return instance;
}

template <class C>
void run_mix(benchmark::State& state, C* c, int write_percent, const std::vector<std::uint32_t>& seq) {
  std::size_t pos = static_cast<std::size_t>(state.thread_index()) * 7919 * 13;
  std::uint64_t hits = 0;
  std::uint32_t tick = 0;
  for (auto _ : state) {
    std::uint32_t k = seq[pos++ & (kSeq - 1)];
    if (write_percent && (++tick % 100) < static_cast<std::uint32_t>(write_percent)) {
      c->put(k);
    } else {
      hits += c->get(k);
    }
  }
  state.SetItemsProcessed(state.iterations());
  benchmark::DoNotOptimize(hits);
}

Ours* ours_s3() { return Ours::make(EvictionPolicy::kS3Fifo, kCapacity); }
Ours* ours_lru() { return Ours::make(EvictionPolicy::kLru, kCapacity); }
Seeds* seeds() { return Seeds::make(kCapacity); }

#define MIX_BENCH(name, maker, writes, seq)                              \
  void name(benchmark::State& state) {                                   \
    auto* c = shared_instance(state, maker);                             \
    run_mix(state, c, writes, seq());                                    \
  }                                                                      \
  BENCHMARK(name)->Threads(1)->Threads(2)->UseRealTime();

MIX_BENCH(BM_Reads_Seeds, seeds, 0, sequence)
MIX_BENCH(BM_Reads_S3Fifo, ours_s3, 0, sequence)
MIX_BENCH(BM_Reads_Lru, ours_lru, 0, sequence)

Seeds* seeds75() { return Seeds::make(kCapacity); }
Ours* ours75() { return Ours::make(EvictionPolicy::kS3Fifo, kCapacity); }
Ours* lru75() { return Ours::make(EvictionPolicy::kLru, kCapacity); }
MIX_BENCH(BM_Mixed75_Seeds, seeds75, 25, sequence)
MIX_BENCH(BM_Mixed75_S3Fifo, ours75, 25, sequence)
MIX_BENCH(BM_Mixed75_Lru, lru75, 25, sequence)

Seeds* seedsw() { return Seeds::make(kCapacity); }
Ours* oursw() { return Ours::make(EvictionPolicy::kS3Fifo, kCapacity); }
MIX_BENCH(BM_Writes_Seeds, seedsw, 100, sequence)
MIX_BENCH(BM_Writes_S3Fifo, oursw, 100, sequence)

Seeds* seedsm() { return Seeds::make(kCapacity); }
Ours* oursm() { return Ours::make(EvictionPolicy::kS3Fifo, kCapacity); }
MIX_BENCH(BM_MissHeavy_Seeds, seedsm, 0, miss_sequence)
MIX_BENCH(BM_MissHeavy_S3Fifo, oursm, 0, miss_sequence)

// Insert with eviction: a cache of 16,384 entries fed new keys from a space of
// 262,144 (nearly every insert evicts).
Seeds* seeds_small() { return Seeds::make(16384); }
Ours* ours_small() { return Ours::make(EvictionPolicy::kS3Fifo, 16384); }
Ours* lru_small() { return Ours::make(EvictionPolicy::kLru, 16384); }
template <class C>
void run_evicting(benchmark::State& state, C* c) {
  std::uint32_t i = static_cast<std::uint32_t>(state.thread_index()) * 100003u;
  for (auto _ : state) c->put(i++ & (4 * kKeys - 1));
  state.SetItemsProcessed(state.iterations());
}
void BM_InsertEvict_Seeds(benchmark::State& s) { run_evicting(s, shared_instance(s, seeds_small)); }
void BM_InsertEvict_S3Fifo(benchmark::State& s) { run_evicting(s, shared_instance(s, ours_small)); }
void BM_InsertEvict_Lru(benchmark::State& s) { run_evicting(s, shared_instance(s, lru_small)); }
BENCHMARK(BM_InsertEvict_Seeds)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_InsertEvict_S3Fifo)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_InsertEvict_Lru)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace callcache::bench

BENCHMARK_MAIN();
