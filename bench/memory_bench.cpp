// Bytes per entry beyond key and value: loads 1,000,000 entries (16-byte
// keys, 8-byte values) and measures the memory they take.
//   build/release/bench/memory_bench
//
// Two independent measures, both as growth over the empty process:
// - held: the heap growth reported by mallinfo2() (tables, ghosts, shard
//   state, any entry too large for a slab) plus every byte of slab memory
//   the entry allocator has mapped (whole slabs: free slots, slab headers
//   and the unused tail of each slab included). This is the figure.
// - RSS: resident memory from /proc/self/statm, which no allocator can
//   hide from (it counts only pages touched, so it may be a little lower).
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "callcache/cache.h"
#include "callcache/internal/engine_access.h"
#include "core/adaptive.h"
#include "core/slab.h"
#include "seeds_lru.h"

namespace {

using callcache::internal::QueueMode;
using callcache::internal::SlabAllocator;

constexpr std::uint64_t kEntries = 1'000'000;
constexpr double kPayload = 16 + 8;

struct Snapshot {
  double heap = 0;  // mallinfo2: bytes in use
  double slab = 0;  // slab memory mapped
  double slot = 0;  // bytes of slab slots in use
  double rss = 0;   // resident set
};

// With `fresh`, first gives back the slots this thread cached and unmaps the
// empty slabs an earlier run left (they would be reused, hiding that much
// growth).
Snapshot snapshot(bool fresh) {
  if (fresh) {
    SlabAllocator::global().flush_thread_cache();
    SlabAllocator::global().release_cached();
  }
  malloc_trim(0);
  Snapshot s;
  struct mallinfo2 mi = mallinfo2();
  s.heap = static_cast<double>(mi.uordblks + mi.hblkhd);
  SlabAllocator::Stats st = SlabAllocator::global().stats();
  s.slab = static_cast<double>(st.mapped_bytes);
  s.slot = static_cast<double>(st.slot_bytes);
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  s.rss = static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
  return s;
}

std::string key_of(std::uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "key:%012llu", static_cast<unsigned long long>(i));
  return std::string(buf, 16);
}

struct Result {
  double held, rss;                   // per entry, beyond key and value
  double entry, slab_overhead, rest;  // `held`, split
  double slab_left_after_destroy;     // bytes of slab memory still mapped once the engine is gone
};

// `switches`: adaptive only, modes forced on the namespace at even steps of
// the steady-state inserts (the first at their start).
Result measure_ours(callcache::EvictionPolicy pol, const std::vector<QueueMode>& switches = {}) {
  Result r{};
  const Snapshot before = snapshot(true);
  {
    callcache::NamespacePolicy p;
    p.max_entries = kEntries;
    p.ttl = std::chrono::hours(1);
    p.eviction = pol;
    callcache::EngineOptions o;
    o.namespaces = {{"m", p}};
    o.sweep_interval = callcache::Duration::zero();
    auto engine = callcache::Engine::create(o).value();
    auto cache = callcache::Cache<std::uint64_t>::open(*engine, "m").value();
    for (std::uint64_t i = 0; i < kEntries; ++i)
      (void)cache.put(callcache::TenantId{1}, key_of(i), i);
    // Steady state: another million inserts of new keys, so every shard is
    // full and evicting and the policies' ghosts and sketches are populated.
    const std::uint64_t step = kEntries / std::max<std::size_t>(switches.size(), 1);
    for (std::uint64_t i = kEntries; i < 2 * kEntries; ++i) {
      const std::uint64_t k = (i - kEntries) / step;
      if ((i - kEntries) % step == 0 && k < switches.size())
        callcache::internal::EngineAccess::adaptive(*engine, cache.id())->force_mode(switches[k]);
      (void)cache.put(callcache::TenantId{1}, key_of(i), i);
    }
    const double n = static_cast<double>(engine->size());
    // Empty slabs cached for reuse are memory held too: counted.
    const Snapshot after = snapshot(false);
    const double heap = after.heap - before.heap;
    const double slab = after.slab - before.slab;
    const double slot = after.slot - before.slot;
    r.held = (heap + slab) / n - kPayload;
    r.rss = (after.rss - before.rss) / n - kPayload;
    r.entry = slot / n - kPayload;
    r.slab_overhead = (slab - slot) / n;
    r.rest = heap / n;
  }
  r.slab_left_after_destroy = static_cast<double>(SlabAllocator::global().stats().mapped_bytes);
  return r;
}

double measure_seeds() {
  const Snapshot before = snapshot(true);
  auto* c = new callcache::bench::SeedsLru<std::uint64_t>(kEntries);
  for (std::uint64_t i = 0; i < kEntries; ++i) c->put(key_of(i), i);
  const Snapshot after = snapshot(false);
  double r = (after.heap - before.heap) / kEntries - kPayload;
  delete c;
  return r;
}

void print(const char* name, const Result& r, const Result& lru) {
  // LRU keeps nothing beside its list, so the heap beyond LRU's is the
  // policy's own state (ghost, sketch, the adaptive policy's simulations).
  const bool has_state = &r != &lru;
  std::printf("  callcache %-9s %6.1f %6.1f  | %5.1f %5.1f %7.1f  ", name, r.held, r.rss, r.entry,
              r.slab_overhead, lru.rest);
  if (has_state) {
    std::printf("%6.1f\n", r.rest - lru.rest);
  } else {
    std::printf("     -\n");
  }
}

}  // namespace

int main() {
  const Result s3 = measure_ours(callcache::EvictionPolicy::kS3Fifo);
  const Result wt = measure_ours(callcache::EvictionPolicy::kWTinyLfu);
  // The adaptive policy as it runs here (no lookups, so in S3-FIFO mode),
  // switched to W-TinyLFU, and switched there and back.
  const Result adaptive = measure_ours(callcache::EvictionPolicy::kAdaptive);
  const Result adaptive_wt =
      measure_ours(callcache::EvictionPolicy::kAdaptive, {QueueMode::kWTinyLfu});
  const Result adaptive_back = measure_ours(callcache::EvictionPolicy::kAdaptive,
                                            {QueueMode::kWTinyLfu, QueueMode::kS3Fifo});
  const Result lru = measure_ours(callcache::EvictionPolicy::kLru);
  const double seeds = measure_seeds();
  std::printf(
      "bytes per entry beyond the 16-byte key and 8-byte value (1,000,000 entries, steady "
      "state)\n");
  std::printf("                        held    RSS  | entry  slab  tables  policy\n");
  print("s3fifo", s3, lru);
  print("wtinylfu", wt, lru);
  print("adaptive", adaptive, lru);
  print(" ->wt", adaptive_wt, lru);
  print(" ->wt->s3", adaptive_back, lru);
  print("lru", lru, lru);
  std::printf(
      "  seeds' design      %6.1f         (mutex + unordered_map + std::list + shared_ptr; heap "
      "only)\n",
      seeds);
  std::printf(
      "held   = heap growth (mallinfo2) + slab memory mapped for entries (whole slabs)\n"
      "RSS    = resident growth (/proc/self/statm)\n"
      "entry  = an entry's slab slot beyond key and value (the 40-byte header)\n"
      "slab   = slab headers, slab tails, free slots and cached empty slabs\n"
      "tables = heap of an LRU namespace: hash tables, per-shard state\n"
      "policy = extra heap over LRU's: S3-FIFO's ghost of evicted keys, W-TinyLFU's frequency\n"
      "         sketch; the adaptive policy's simulations of both + the ghost in S3-FIFO mode\n"
      "         (adaptive), the sketch in W-TinyLFU mode (->wt: switched to W-TinyLFU for the\n"
      "         second million inserts; ->wt->s3: to W-TinyLFU, then back half-way)\n");
  std::printf(
      "slab memory still mapped once the engine is destroyed: %.0f KiB (s3fifo run), %.0f KiB (lru "
      "run)\n"
      "  = at most %zu cached empty slabs + slabs kept by slots parked in this thread's cache\n",
      s3.slab_left_after_destroy / 1024, lru.slab_left_after_destroy / 1024,
      SlabAllocator::kCachedEmptySlabs);
  return 0;
}
