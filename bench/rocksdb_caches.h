// RocksDB's two in-memory caches as engine_bench baselines, driven through
// their public API (Debian librocksdb-dev):
// - HyperClockCache: a lock-free open-addressing table; a lookup is one probe
//   and one atomic reference increment, a CLOCK sweep evicts;
// - LRUCache: a mutex per shard around a hash table and an LRU list.
//
// Both hold the same workload as callcache: 16-byte keys (HyperClockCache
// requires exactly 16), a charge of 1 per entry against a capacity counted in
// entries (metadata not charged), 64 shards (callcache's shard count on this
// machine; RocksDB's automatic choice for so small a capacity is one shard,
// which serialises LRUCache behind one mutex). The 8-byte value is carried in
// the value pointer itself with a no-op deleter: no allocation per insert, the
// cheapest way RocksDB can hold it. A read is Lookup, Value, Release: pinned
// and unpinned, as a callcache Ref<V> is.
#pragma once

#include <rocksdb/cache.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace callcache::bench {

class RocksCache {
 public:
  enum class Kind { kHyperClock, kLru };

  RocksCache(Kind kind, std::size_t capacity) {
    constexpr int kShardBits = 6;
    if (kind == Kind::kHyperClock) {
      rocksdb::HyperClockCacheOptions o(capacity, /*estimated_entry_charge=*/1, kShardBits);
      o.metadata_charge_policy = rocksdb::kDontChargeCacheMetadata;
      cache_ = o.MakeSharedCache();
    } else {
      rocksdb::LRUCacheOptions o;
      o.capacity = capacity;
      o.num_shard_bits = kShardBits;
      o.metadata_charge_policy = rocksdb::kDontChargeCacheMetadata;
      cache_ = rocksdb::NewLRUCache(o);
    }
  }

  bool get(std::string_view key) {
    rocksdb::Cache::Handle* h = cache_->Lookup(rocksdb::Slice(key.data(), key.size()));
    if (!h) return false;
    void* v = cache_->Value(h);
    asm volatile("" : : "r"(v) : "memory");
    cache_->Release(h);
    return true;
  }

  // The value stored for `key`, if any (for the check of what a put of a
  // present key does).
  std::optional<std::uint64_t> value(std::string_view key) {
    rocksdb::Cache::Handle* h = cache_->Lookup(rocksdb::Slice(key.data(), key.size()));
    if (!h) return std::nullopt;
    const auto v = reinterpret_cast<std::uintptr_t>(cache_->Value(h)) - 1;
    cache_->Release(h);
    return v;
  }
  void put(std::string_view key, std::uint64_t value) {
    // value + 1: a null value pointer means "failed" to RocksDB.
    (void)cache_->Insert(rocksdb::Slice(key.data(), key.size()), reinterpret_cast<void*>(value + 1), 1, &no_delete);
  }

  std::size_t size() const { return cache_->GetOccupancyCount(); }

 private:
  static void no_delete(const rocksdb::Slice&, void*) {}
  std::shared_ptr<rocksdb::Cache> cache_;
};

}  // namespace callcache::bench
