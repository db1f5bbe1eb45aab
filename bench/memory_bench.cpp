// Bytes per entry beyond key and value: loads 1,000,000 entries (16-byte
// keys, 8-byte values) and measures the heap growth with mallinfo2().
//   build/release/bench/memory_bench
#include <malloc.h>

#include <cstdio>
#include <string>
#include <vector>

#include "callcache/cache.h"
#include "seeds_lru.h"

namespace {

constexpr std::uint64_t kEntries = 1'000'000;
constexpr double kPayload = 16 + 8;

std::size_t heap_in_use() {
  malloc_trim(0);
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

std::string key_of(std::uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "key:%012llu", static_cast<unsigned long long>(i));
  return std::string(buf, 16);
}

double measure_ours(callcache::EvictionPolicy pol) {
  std::size_t before = heap_in_use();
  callcache::NamespacePolicy p;
  p.max_entries = kEntries;
  p.ttl = std::chrono::hours(1);
  p.eviction = pol;
  callcache::EngineOptions o;
  o.namespaces = {{"m", p}};
  o.sweep_interval = callcache::Duration::zero();
  auto engine = callcache::Engine::create(o).value();
  auto cache = callcache::Cache<std::uint64_t>::open(*engine, "m").value();
  for (std::uint64_t i = 0; i < kEntries; ++i) (void)cache.put(callcache::TenantId{1}, key_of(i), i);
  // Steady state: another million inserts of new keys, so every shard is
  // full and evicting and the S3-FIFO ghost is populated.
  for (std::uint64_t i = kEntries; i < 2 * kEntries; ++i) (void)cache.put(callcache::TenantId{1}, key_of(i), i);
  std::size_t after = heap_in_use();
  return static_cast<double>(after - before) / static_cast<double>(engine->size()) - kPayload;
}

double measure_seeds() {
  std::size_t before = heap_in_use();
  auto* c = new callcache::bench::SeedsLru<std::uint64_t>(kEntries);
  for (std::uint64_t i = 0; i < kEntries; ++i) c->put(key_of(i), i);
  std::size_t after = heap_in_use();
  double r = static_cast<double>(after - before) / kEntries - kPayload;
  delete c;
  return r;
}

}  // namespace

int main() {
  std::printf("bytes per entry beyond the 16-byte key and 8-byte value (1,000,000 entries)\n");
  std::printf("  callcache s3fifo : %6.1f\n", measure_ours(callcache::EvictionPolicy::kS3Fifo));
  std::printf("  callcache lru    : %6.1f\n", measure_ours(callcache::EvictionPolicy::kLru));
  std::printf("  seeds' design    : %6.1f  (mutex + unordered_map + std::list + shared_ptr)\n", measure_seeds());
  return 0;
}
