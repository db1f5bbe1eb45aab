// Engine throughput against other caches, all in one binary so the ratios
// come from the same run on the same machine:
// - the seeds' design (bench/seeds_lru.h): one mutex, a map and a list;
// - RocksDB's HyperClockCache and LRUCache (bench/rocksdb_caches.h).
//
// Workload: 65,536 distinct 16-byte keys drawn Zipf(0.99); capacity 131,072
// entries, fully populated (all hits) for the read/write mixes; plus writes
// with the threads' hot keys apart (a diagnostic), a miss-heavy case and
// insert-with-eviction. After the Google Benchmark
// output, a summary prints each contender's median throughput, the default
// policy's ratios against the baselines, and the targets for the default
// and for S3-FIFO (the default before the adaptive policy). Run:
//   build/release/bench/engine_bench --benchmark_min_time=0.5
//       --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
// (one line; --benchmark_filter=Reads for one workload).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "callcache/cache.h"
#include "seeds_lru.h"
#include "zipf.h"
#if CALLCACHE_HAVE_ROCKSDB
#include "rocksdb_caches.h"
#endif

namespace callcache::bench {
namespace {

constexpr std::uint64_t kKeys = 65536;
constexpr std::uint64_t kCapacity = 131072;
constexpr std::uint64_t kSmallCapacity = 16384;
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

// ---- Contenders: get(i) -> hit?, put(i) ------------------------------------

struct Ours {
  std::unique_ptr<Engine> engine;
  Cache<std::uint64_t> cache;

  explicit Ours(EvictionPolicy pol, std::uint64_t capacity)
      : engine(make_engine(pol, capacity)),
        cache(Cache<std::uint64_t>::open(*engine, "bench").value()) {}
  static std::unique_ptr<Engine> make_engine(EvictionPolicy pol, std::uint64_t capacity) {
    NamespacePolicy p;
    p.max_entries = capacity;
    p.ttl = std::chrono::hours(1);
    p.eviction = pol;
    EngineOptions o;
    o.namespaces = {{"bench", p}};
    o.sweep_interval = Duration::zero();
    return Engine::create(o).value();
  }
  bool get(std::uint32_t i) { return cache.get(kTenant, keys()[i]).has_value(); }
  void put(std::uint32_t i) { (void)cache.put(kTenant, keys()[i], i); }
  static constexpr TenantId kTenant{1};
};

struct Seeds {
  SeedsLru<std::uint64_t> cache;
  explicit Seeds(std::uint64_t capacity) : cache(capacity) {}
  bool get(std::uint32_t i) { return cache.get(keys()[i]) != nullptr; }
  void put(std::uint32_t i) { cache.put(keys()[i], i); }
};

#if CALLCACHE_HAVE_ROCKSDB
struct Rocks {
  RocksCache cache;
  Rocks(RocksCache::Kind kind, std::uint64_t capacity) : cache(kind, capacity) {}
  bool get(std::uint32_t i) { return cache.get(keys()[i]); }
  void put(std::uint32_t i) { cache.put(keys()[i], i); }
};
#endif

// `apart`: each thread's keys are shifted by half the key space per thread
// index (of the Zipf sequence over kKeys), so two threads never share a hot
// key: a diagnostic of what the threads still contend on, the cache's own
// structure.
template <class C>
void run_mix(benchmark::State& state, C& c, int write_percent,
             const std::vector<std::uint32_t>& seq, bool apart = false) {
  std::size_t pos = static_cast<std::size_t>(state.thread_index()) * 7919 * 13;
  const auto shift = static_cast<std::uint32_t>(state.thread_index()) * (kKeys / 2);
  std::uint64_t hits = 0;
  std::uint32_t tick = 0;
  for (auto _ : state) {
    std::uint32_t k = seq[pos++ & (kSeq - 1)];
    if (apart) k = (k + shift) & (kKeys - 1);
    if (write_percent && (++tick % 100) < static_cast<std::uint32_t>(write_percent)) {
      c.put(k);
    } else {
      hits += c.get(k);
    }
  }
  state.SetItemsProcessed(state.iterations());
  benchmark::DoNotOptimize(hits);
}

// Insert with eviction: new keys from a space of 262,144 into a small cache
// (nearly every insert evicts).
template <class C>
void run_evicting(benchmark::State& state, C& c) {
  std::uint32_t i = static_cast<std::uint32_t>(state.thread_index()) * 100003u;
  for (auto _ : state) c.put(i++ & (4 * kKeys - 1));
  state.SetItemsProcessed(state.iterations());
}

enum class Workload { kReads, kMixed75, kWrites, kWritesApart, kMissHeavy, kInsertEvict };
struct WorkloadInfo {
  Workload w;
  const char* name;
  const char* label;
};
constexpr WorkloadInfo kWorkloads[] = {
    {Workload::kReads, "Reads", "100% reads"},
    {Workload::kMixed75, "Mixed75", "75% reads / 25% writes"},
    {Workload::kWrites, "Writes", "100% writes"},
    {Workload::kWritesApart, "WritesApart", "100% writes, keys apart"},
    {Workload::kMissHeavy, "MissHeavy", "miss-heavy (3/4 misses)"},
    {Workload::kInsertEvict, "InsertEvict", "insert with eviction"},
};

// One instance per (contender, workload), built by the first thread to get
// there and kept for every repetition and thread count.
template <class C, class Make>
void register_one(const std::string& contender, const WorkloadInfo& wl, Make make) {
  auto holder = std::make_shared<std::pair<std::mutex, std::unique_ptr<C>>>();
  auto fn = [holder, make, wl](benchmark::State& state) {
    C* c;
    {
      std::lock_guard lock(holder->first);
      if (!holder->second) {
        holder->second = make(wl.w == Workload::kInsertEvict ? kSmallCapacity : kCapacity);
        for (std::uint32_t i = 0; i < kKeys; ++i) holder->second->put(i);
      }
      c = holder->second.get();
    }
    switch (wl.w) {
      case Workload::kReads:
        run_mix(state, *c, 0, sequence());
        break;
      case Workload::kMixed75:
        run_mix(state, *c, 25, sequence());
        break;
      case Workload::kWrites:
        run_mix(state, *c, 100, sequence());
        break;
      case Workload::kWritesApart:
        run_mix(state, *c, 100, sequence(), /*apart=*/true);
        break;
      case Workload::kMissHeavy:
        run_mix(state, *c, 0, miss_sequence());
        break;
      case Workload::kInsertEvict:
        run_evicting(state, *c);
        break;
    }
  };
  benchmark::RegisterBenchmark(("BM_" + std::string(wl.name) + "_" + contender).c_str(), fn)
      ->Threads(1)
      ->Threads(2)
      ->UseRealTime();
}

struct PolicyRow {
  EvictionPolicy policy;
  const char* name;
};

std::vector<PolicyRow> engine_policies() {
  return {{EvictionPolicy::kS3Fifo, "S3Fifo"},
          {EvictionPolicy::kLru, "Lru"},
          {EvictionPolicy::kWTinyLfu, "WTinyLfu"},
          {EvictionPolicy::kAdaptive, "Adaptive"}};
}

EvictionPolicy default_policy() { return NamespacePolicy{}.eviction; }

const char* policy_name(EvictionPolicy p) {
  for (const auto& r : engine_policies()) {
    if (r.policy == p) return r.name;
  }
  return "?";
}

void register_all() {
  for (const WorkloadInfo& wl : kWorkloads) {
    register_one<Seeds>("Seeds", wl,
                        [](std::uint64_t cap) { return std::make_unique<Seeds>(cap); });
#if CALLCACHE_HAVE_ROCKSDB
    register_one<Rocks>("HyperClock", wl, [](std::uint64_t cap) {
      return std::make_unique<Rocks>(RocksCache::Kind::kHyperClock, cap);
    });
    register_one<Rocks>("RocksLru", wl, [](std::uint64_t cap) {
      return std::make_unique<Rocks>(RocksCache::Kind::kLru, cap);
    });
#endif
    for (const PolicyRow& p : engine_policies()) {
      register_one<Ours>(p.name, wl, [pol = p.policy](std::uint64_t cap) {
        return std::make_unique<Ours>(pol, cap);
      });
    }
  }
}

// ---- Summary: medians and ratios --------------------------------------------

class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  SummaryReporter() : ConsoleReporter(OO_None) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      auto it = r.counters.find("items_per_second");
      if (it == r.counters.end()) continue;
      samples_[{r.run_name.function_name, static_cast<int>(r.threads)}].push_back(it->second.value);
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::FILE* out = stdout;
    const std::string ours = policy_name(default_policy());
    std::fprintf(out,
                 "\nSummary: median M ops/s (samples); ratios are callcache %s (the default "
                 "policy) / baseline\n",
                 ours.c_str());
    std::fprintf(out, "%-26s %2s %9s %9s %9s", "workload", "th", "seeds", "hyperclk", "rockslru");
    for (const auto& p : engine_policies()) std::fprintf(out, " %9s", p.name);
    std::fprintf(out, " %8s %8s %8s\n", "x seeds", "x hyper", "x rlru");
    for (const WorkloadInfo& wl : kWorkloads) {
      for (int th : {1, 2}) {
        auto med = [&](const std::string& who) {
          return median(std::string("BM_") + wl.name + "_" + who, th);
        };
        const double s = med("Seeds"), h = med("HyperClock"), l = med("RocksLru"), o = med(ours);
        if (s < 0 && h < 0 && o < 0) continue;
        std::fprintf(out, "%-26s %2d %9s %9s %9s", wl.label, th, fmt(s).c_str(), fmt(h).c_str(),
                     fmt(l).c_str());
        for (const auto& p : engine_policies()) std::fprintf(out, " %9s", fmt(med(p.name)).c_str());
        std::fprintf(out, " %8s %8s %8s\n", ratio(o, s).c_str(), ratio(o, h).c_str(),
                     ratio(o, l).c_str());
      }
    }
    struct Target {
      const char* wl;
      const char* label;
      int threads;
      double min;
    };
    std::vector<std::string> who = {ours};
    if (ours != "S3Fifo") who.push_back("S3Fifo");
    for (const std::string& w : who) {
      std::fprintf(out, "\nTargets (callcache %s%s / HyperClockCache):\n", w.c_str(),
                   w == ours ? ", the default" : "");
      for (const Target& t :
           {Target{"Reads", "100% reads", 2, 1.2}, Target{"Reads", "100% reads", 1, 1.0},
            Target{"Mixed75", "75/25", 2, 1.5}, Target{"Writes", "100% writes", 2, 1.5}}) {
        const double o = median(std::string("BM_") + t.wl + "_" + w, t.threads);
        const double h = median(std::string("BM_") + t.wl + "_HyperClock", t.threads);
        if (o < 0 || h < 0) continue;
        std::fprintf(out, "  %-12s %d thread%s: %5.2fx (target >= %.1fx) %s\n", t.label, t.threads,
                     t.threads == 1 ? " " : "s", o / h, t.min, o / h >= t.min ? "met" : "NOT MET");
      }
    }
  }

 private:
  double median(const std::string& name, int threads) const {
    auto it = samples_.find({name, threads});
    if (it == samples_.end() || it->second.empty()) return -1;
    std::vector<double> v = it->second;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  std::string fmt(double v) const {
    if (v < 0) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v / 1e6);
    return buf;
  }
  std::string ratio(double a, double b) const {
    if (a < 0 || b < 0) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2fx", a / b);
    return buf;
  }
  std::map<std::pair<std::string, int>, std::vector<double>> samples_;
};

}  // namespace
}  // namespace callcache::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  callcache::bench::register_all();
  callcache::bench::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
