// Engine throughput against other caches, all in one binary so the ratios
// come from the same run on the same machine:
// - the seeds' design (bench/seeds_lru.h): one mutex, a map and a list;
// - RocksDB's HyperClockCache and LRUCache (bench/rocksdb_caches.h).
//
// Workload: 65,536 distinct 16-byte keys drawn Zipf(0.99); capacity 131,072
// entries, fully populated (all hits) for the read/write mixes. A put stores
// the key's own index, so it re-puts an unchanged value (what HyperClockCache
// needs to be compared at all: it keeps the first value on a put of a present
// key, which the summary checks and prints). Diagnostics: writes of a new
// value every time, writes with the threads' hot keys apart, a miss-heavy
// case and insert-with-eviction. After the Google Benchmark output, a summary
// prints each contender's median throughput, the default policy's ratios
// against the baselines, and the targets for the default and for S3-FIFO
// (the default before the adaptive policy). Run:
//   build/release/bench/engine_bench --benchmark_min_time=0.5
//       --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
// (one line; --benchmark_filter=Reads for one workload).
//
// `engine_bench --paired` measures the targets' ratios instead, robustly on
// a noisy machine: the default policy (or `--policy=S3Fifo|Lru|WTinyLfu|
// Adaptive`) and HyperClockCache alternate in short slices on pinned CPUs
// (`--slice_ms=100`; `--pairs=N` pairs per target, 21 by default), each pair
// gives one ratio, and the median ratio is reported with its quartiles.
// Two contenders measured 100 ms apart see the same machine; medians of
// separate repetitions seconds apart do not, on a VM whose speed changes by
// half from one second to the next.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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

// The keys in one block, 16 bytes each, as every contender reads them: a key
// is a single load with no pointer to chase, so the harness adds as little
// as it can to every contender's time per operation.
class KeyBlock {
 public:
  static constexpr std::size_t kLen = 16;
  KeyBlock() : bytes_(block().data()) {}
  std::string_view operator[](std::uint32_t i) const { return {bytes_ + kLen * i, kLen}; }

 private:
  static const std::vector<char>& block() {
    static const std::vector<char> b = [] {
      std::vector<char> v;
      v.reserve(kLen * keys().size());
      for (const std::string& k : keys()) v.insert(v.end(), k.begin(), k.end());
      return v;
    }();
    return b;
  }
  const char* bytes_;
};

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
  KeyBlock key;
  bool get(std::uint32_t i) { return cache.get(kTenant, key[i]).has_value(); }
  void put(std::uint32_t i, std::uint64_t v) { (void)cache.put(kTenant, key[i], v); }
  std::optional<std::uint64_t> value(std::uint32_t i) {
    auto r = cache.get(kTenant, key[i]);
    if (!r) return std::nullopt;
    return **r;
  }
  static constexpr TenantId kTenant{1};
};

struct Seeds {
  SeedsLru<std::uint64_t> cache;
  explicit Seeds(std::uint64_t capacity) : cache(capacity) {}
  KeyBlock key;
  bool get(std::uint32_t i) { return cache.get(key[i]) != nullptr; }
  void put(std::uint32_t i, std::uint64_t v) { cache.put(key[i], v); }
};

#if CALLCACHE_HAVE_ROCKSDB
struct Rocks {
  RocksCache cache;
  Rocks(RocksCache::Kind kind, std::uint64_t capacity) : cache(kind, capacity) {}
  KeyBlock key;
  bool get(std::uint32_t i) { return cache.get(key[i]); }
  void put(std::uint32_t i, std::uint64_t v) { cache.put(key[i], v); }
  std::optional<std::uint64_t> value(std::uint32_t i) { return cache.value(key[i]); }
};
#endif

// How a mix draws its operations.
struct MixSpec {
  int write_percent = 0;
  const std::vector<std::uint32_t>* seq = nullptr;
  // Each thread's keys are shifted by half the key space per thread index
  // (of the Zipf sequence over kKeys), so two threads never share a hot
  // key: a diagnostic of what the threads still contend on, the cache's
  // own structure.
  bool apart = false;
  // Every put stores a value the key has not held (else the key's index).
  bool new_values = false;
};

// One thread's operations; `more()` is asked before each. Returns how many
// ran. Shared by the Google Benchmark runs and the paired ratios.
template <class C, class More>
std::uint64_t mix_loop(C& c, const MixSpec& m, int thread_index, More&& more) {
  const std::vector<std::uint32_t>& seq = *m.seq;
  std::size_t pos = static_cast<std::size_t>(thread_index) * 7919 * 13;
  const auto shift = static_cast<std::uint32_t>(thread_index) * (kKeys / 2);
  std::uint64_t hits = 0, ops = 0;
  std::uint64_t fresh = static_cast<std::uint64_t>(thread_index) << 48;
  std::uint32_t tick = 0;
  while (more()) {
    std::uint32_t k = seq[pos++ & (kSeq - 1)];
    if (m.apart) k = (k + shift) & (kKeys - 1);
    if (m.write_percent && (++tick % 100) < static_cast<std::uint32_t>(m.write_percent)) {
      c.put(k, m.new_values ? ++fresh : k);
    } else {
      hits += c.get(k);
    }
    ++ops;
  }
  benchmark::DoNotOptimize(hits);
  return ops;
}

// Not inlined, so that profilers can collect exactly the measured loop
// (callgrind's --toggle-collect='*run_mix*', as in the README).
template <class C>
[[gnu::noinline]] void run_mix(benchmark::State& state, C& c, const MixSpec& m) {
  auto it = state.begin();
  const auto end = state.end();
  mix_loop(c, m, state.thread_index(), [&] { return it != end && (++it, true); });
  state.SetItemsProcessed(state.iterations());
}

// Insert with eviction: new keys from a space of 262,144 into a small cache
// (nearly every insert evicts).
template <class C>
void run_evicting(benchmark::State& state, C& c) {
  std::uint32_t i = static_cast<std::uint32_t>(state.thread_index()) * 100003u;
  for (auto _ : state) {
    const std::uint32_t k = i++ & (4 * kKeys - 1);
    c.put(k, k);
  }
  state.SetItemsProcessed(state.iterations());
}

enum class Workload {
  kReads,
  kMixed75,
  kWrites,
  kWritesNew,
  kWritesApart,
  kMissHeavy,
  kInsertEvict
};
struct WorkloadInfo {
  Workload w;
  const char* name;
  const char* label;
};
constexpr WorkloadInfo kWorkloads[] = {
    {Workload::kReads, "Reads", "100% reads"},
    {Workload::kMixed75, "Mixed75", "75% reads / 25% writes"},
    {Workload::kWrites, "Writes", "100% writes"},
    {Workload::kWritesNew, "WritesNew", "100% writes, new values"},
    {Workload::kWritesApart, "WritesApart", "100% writes, keys apart"},
    {Workload::kMissHeavy, "MissHeavy", "miss-heavy (3/4 misses)"},
    {Workload::kInsertEvict, "InsertEvict", "insert with eviction"},
};

MixSpec mix_of(Workload w) {
  MixSpec m;
  m.seq = &sequence();
  switch (w) {
    case Workload::kReads:
      break;
    case Workload::kMixed75:
      m.write_percent = 25;
      break;
    case Workload::kWrites:
      m.write_percent = 100;
      break;
    case Workload::kWritesNew:
      m.write_percent = 100;
      m.new_values = true;
      break;
    case Workload::kWritesApart:
      m.write_percent = 100;
      m.apart = true;
      break;
    case Workload::kMissHeavy:
      m.seq = &miss_sequence();
      break;
    case Workload::kInsertEvict:
      break;
  }
  return m;
}

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
        for (std::uint32_t i = 0; i < kKeys; ++i) holder->second->put(i, i);
      }
      c = holder->second.get();
    }
    if (wl.w == Workload::kInsertEvict) {
      run_evicting(state, *c);
    } else {
      run_mix(state, *c, mix_of(wl.w));
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

// ---- What a put of a present key does ----------------------------------------

// Puts 1 and then 2 under one key of a fresh cache and reads the key back.
template <class C>
const char* put_over_present(C& c) {
  c.put(0, 1);
  c.put(0, 2);
  const std::optional<std::uint64_t> v = c.value(0);
  return !v ? "drops the key" : *v == 2 ? "replaces the value" : "keeps the first value";
}

// Caches of the benchmark's size and shards: with a handful of entries per
// shard, RocksDB's caches may evict the first value before the second put.
void print_put_semantics(std::FILE* out) {
  Ours ours(default_policy(), kCapacity);
  std::fprintf(out, "On a put of a present key (checked in this run): callcache %s",
               put_over_present(ours));
#if CALLCACHE_HAVE_ROCKSDB
  Rocks hyper(RocksCache::Kind::kHyperClock, kCapacity), lru(RocksCache::Kind::kLru, kCapacity);
  std::fprintf(out, "; HyperClockCache %s; RocksDB LRU %s", put_over_present(hyper),
               put_over_present(lru));
#endif
  std::fprintf(out, ".\n");
}

// ---- Summary: medians and ratios --------------------------------------------

// The engine's targets, as ratios to HyperClockCache.
struct Target {
  const char* wl;
  const char* label;
  int threads;
  double min;
};
constexpr Target kTargets[] = {{"Reads", "100% reads", 2, 1.2},
                               {"Reads", "100% reads", 1, 1.0},
                               {"Mixed75", "75/25", 2, 1.5},
                               {"Writes", "100% writes", 2, 1.5}};

Workload workload_named(std::string_view name) {
  for (const WorkloadInfo& wl : kWorkloads) {
    if (name == wl.name) return wl.w;
  }
  std::abort();
}

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
    std::fprintf(out, "\n");
    print_put_semantics(out);
    std::vector<std::string> who = {ours};
    if (ours != "S3Fifo") who.push_back("S3Fifo");
    for (const std::string& w : who) {
      std::fprintf(out, "\nTargets (callcache %s%s / HyperClockCache):\n", w.c_str(),
                   w == ours ? ", the default" : "");
      for (const Target& t : kTargets) {
        const double o = median(std::string("BM_") + t.wl + "_" + w, t.threads);
        const double h = median(std::string("BM_") + t.wl + "_HyperClock", t.threads);
        if (o < 0 || h < 0) continue;
        std::fprintf(out, "  %-12s %d thread%s: %5.2fx (target >= %.1fx) %s\n", t.label, t.threads,
                     t.threads == 1 ? " " : "s", o / h, t.min, o / h >= t.min ? "met" : "NOT MET");
      }
    }
    std::fprintf(out,
                 "(Ratios of medians of separate repetitions. engine_bench --paired measures them "
                 "in alternating 100 ms slices instead, which this machine's swings affect far "
                 "less.)\n");
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

// ---- Paired ratios (--paired) -------------------------------------------------

// Pins the calling thread to CPU `i` when there is one, so both sides of a
// pair run on the same CPUs: on a VM the vCPUs differ in speed from moment
// to moment, and a thread placed afresh for each slice would land on either.
void pin_to_cpu(int i) {
  if (i >= static_cast<int>(std::thread::hardware_concurrency())) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(i, &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// Runs `m` on `c` from `threads` threads for about `slice`; ops per second.
template <class C>
double slice_rate(C& c, const MixSpec& m, int threads, std::chrono::milliseconds slice) {
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  std::vector<std::uint64_t> ops(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      pin_to_cpu(t);
      ready.fetch_add(1);
      while (ready.load() <= threads) std::this_thread::yield();
      std::uint32_t n = 0;
      ops[static_cast<std::size_t>(t)] = mix_loop(c, m, t, [&] {
        return (++n & 255) != 0 || !stop.load(std::memory_order_relaxed);
      });
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto start = std::chrono::steady_clock::now();
  ready.fetch_add(1);
  std::this_thread::sleep_for(slice);
  stop.store(true);
  for (std::thread& w : workers) w.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::uint64_t total = 0;
  for (std::uint64_t o : ops) total += o;
  return static_cast<double>(total) / secs;
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double at = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(at);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (at - static_cast<double>(lo));
}

int run_paired(int pairs, std::chrono::milliseconds slice, EvictionPolicy policy) {
#if CALLCACHE_HAVE_ROCKSDB
  std::FILE* out = stdout;
  Ours ours(policy, kCapacity);
  Rocks hyper(RocksCache::Kind::kHyperClock, kCapacity);
  for (std::uint32_t i = 0; i < kKeys; ++i) {
    ours.put(i, i);
    hyper.put(i, i);
  }
  print_put_semantics(out);
  std::fprintf(out,
               "Paired ratios: callcache %s%s / HyperClockCache; %d pairs of %lld ms slices per row, "
               "alternating which runs first\n",
               policy_name(policy), policy == default_policy() ? " (the default)" : "", pairs,
               static_cast<long long>(slice.count()));
  std::fprintf(out, "%-12s %2s %11s %11s %8s %15s  %s\n", "workload", "th", "callcache", "hyperclk",
               "ratio", "quartiles", "target");
  bool all_met = true;
  for (const Target& t : kTargets) {
    const MixSpec m = mix_of(workload_named(t.wl));
    std::vector<double> ratios, a_rates, b_rates;
    for (int p = 0; p < pairs; ++p) {
      double a, b;
      if (p % 2 == 0) {
        a = slice_rate(ours, m, t.threads, slice);
        b = slice_rate(hyper, m, t.threads, slice);
      } else {
        b = slice_rate(hyper, m, t.threads, slice);
        a = slice_rate(ours, m, t.threads, slice);
      }
      ratios.push_back(a / b);
      a_rates.push_back(a);
      b_rates.push_back(b);
    }
    const double r = quantile(ratios, 0.5);
    const bool met = r >= t.min;
    all_met = all_met && met;
    std::fprintf(out, "%-12s %2d %11.2f %11.2f %7.2fx %6.2f-%5.2fx   >= %.1fx %s\n", t.label,
                 t.threads, quantile(a_rates, 0.5) / 1e6, quantile(b_rates, 0.5) / 1e6, r,
                 quantile(ratios, 0.25), quantile(ratios, 0.75), t.min, met ? "met" : "NOT MET");
    std::fflush(out);
  }
  std::fprintf(out, "(M ops/s: median of each side's slices; ratio: median of the pairs' ratios)\n");
  std::fprintf(out, "%s\n", all_met ? "All targets met." : "Not all targets met.");
  return 0;
#else
  (void)pairs;
  (void)slice;
  (void)policy;
  std::fprintf(stderr, "engine_bench --paired: built without librocksdb-dev (no HyperClockCache)\n");
  return 2;
#endif
}

// Takes engine_bench's own flags out of argv (the rest is Google
// Benchmark's). Returns false, having said why, on a bad value.
bool take_own_flags(int* argc, char** argv, bool* paired, int* pairs, int* slice_ms,
                    EvictionPolicy* policy) {
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    const std::string_view a = argv[i];
    auto number = [&](std::string_view flag, int lo, int hi, int* v) {
      const std::string text(a.substr(flag.size()));
      char* end = nullptr;
      const long n = std::strtol(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || n < lo || n > hi) {
        std::fprintf(stderr, "engine_bench: %.*s'%s' is not a number in [%d, %d]\n",
                     static_cast<int>(flag.size()), flag.data(), text.c_str(), lo, hi);
        return false;
      }
      *v = static_cast<int>(n);
      return true;
    };
    if (a == "--paired") {
      *paired = true;
    } else if (a.starts_with("--pairs=")) {
      if (!number("--pairs=", 1, 1000, pairs)) return false;
    } else if (a.starts_with("--slice_ms=")) {
      if (!number("--slice_ms=", 10, 10000, slice_ms)) return false;
    } else if (a.starts_with("--policy=")) {
      const std::string_view name = a.substr(9);
      bool found = false;
      for (const PolicyRow& p : engine_policies()) {
        if (name == p.name) {
          *policy = p.policy;
          found = true;
        }
      }
      if (!found) {
        std::fprintf(stderr, "engine_bench: --policy='%.*s' is none of S3Fifo, Lru, WTinyLfu, Adaptive\n",
                     static_cast<int>(name.size()), name.data());
        return false;
      }
    } else {
      argv[kept++] = argv[i];
    }
  }
  *argc = kept;
  return true;
}

}  // namespace
}  // namespace callcache::bench

int main(int argc, char** argv) {
  bool paired = false;
  int pairs = 21, slice_ms = 100;
  callcache::EvictionPolicy policy = callcache::bench::default_policy();
  if (!callcache::bench::take_own_flags(&argc, argv, &paired, &pairs, &slice_ms, &policy)) return 1;
  if (paired) {
    return callcache::bench::run_paired(pairs, std::chrono::milliseconds(slice_ms), policy);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  callcache::bench::register_all();
  callcache::bench::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
