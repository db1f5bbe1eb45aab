// The open-addressing table against a std::unordered_map model, through
// growth, tombstone reuse and in-place rehashing; and lock-free readers
// racing a writer (run under ThreadSanitizer).
#include "table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "callcache/cache.h"
#include "reclaim.h"

namespace callcache::internal {
namespace table_test {

TEST(Table, MatchesModelUnderRandomInsertsAndErases) {
  const std::uint64_t seed = 99;
  Table table(500);
  table.set_seed(seed);
  std::unordered_map<std::string, Entry*> model;
  std::mt19937_64 rng(3);
  const ValueOps* ops = value_ops<int>();
  for (int step = 0; step < 50000; ++step) {
    std::string key = "k" + std::to_string(rng() % 700);
    std::uint64_t h = hash_key(seed, 1, key);
    Entry* found = table.find(h, TenantId{1}, key);
    auto it = model.find(key);
    ASSERT_EQ(found, it == model.end() ? nullptr : it->second) << step;
    if (found) {
      ASSERT_TRUE(table.erase(h, found));
      found->unref();
      model.erase(it);
    } else if (model.size() < 500) {
      int v = step;
      Entry* e = Entry::create(ops, register_type(ops).value(), &v, nullptr, TenantId{1}, key, 4,
                               TimePoint{}, 1);
      table.insert(h, e);
      model.emplace(key, e);
    }
    ASSERT_EQ(table.size(), model.size());
  }
  std::size_t seen = 0;
  table.for_each([&](Entry* e) {
    ++seen;
    EXPECT_EQ(model.at(std::string(e->key())), e);
  });
  EXPECT_EQ(seen, model.size());
  EXPECT_LE(table.slot_count(), 500 / 0.8 + 2) << "the table never grows past its shard's bound";
  for (auto& [k, e] : model) e->unref();
}

// Readers probe while one writer inserts, replaces, erases and grows the
// table, retiring what it unlinks. A reader finds either nothing or an entry
// with exactly the key it asked for, and never an entry already freed (ASan,
// TSan), and it always finds the keys that stay in the table throughout.
TEST(Table, ReadersRaceOneWriter) {
  const std::uint64_t seed = 5;
  const ValueOps* ops = value_ops<int>();
  const std::uint8_t type = register_type(ops).value();
  auto make = [&](const std::string& key, int v) {
    return Entry::create(ops, type, &v, nullptr, TenantId{1}, key, 4, TimePoint{}, 1);
  };
  auto key_of = [](int i) { return "key-" + std::to_string(i); };
  constexpr int kStable = 64, kChurn = 2000;
  Table table(kStable + kChurn);
  table.set_seed(seed);
  RetireList retired;
  auto release = [](void* e) noexcept { static_cast<Entry*>(e)->unref(); };
  for (int i = 0; i < kStable; ++i) table.insert(hash_key(seed, 1, key_of(i)), make(key_of(i), i));

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> found_stable{0};
  auto reader = [&](int id) {
    std::mt19937 rng(static_cast<unsigned>(id));
    while (!stop.load(std::memory_order_relaxed)) {
      const int i = static_cast<int>(rng() % (kStable + kChurn));
      const std::string key = key_of(i);
      ReadSection section;
      Entry* e = table.find(hash_key(seed, 1, key), TenantId{1}, key);
      if (e) {
        ASSERT_EQ(e->key(), key);
        ASSERT_EQ(*static_cast<const int*>(e->value()) % 100000, i);
      }
      if (i < kStable) {
        ASSERT_NE(e, nullptr) << key << " is never removed";
        found_stable.fetch_add(1, std::memory_order_relaxed);
      }
    }
  };
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) readers.emplace_back(reader, r);

  std::mt19937 rng(11);
  std::vector<Entry*> live(kChurn, nullptr);
  for (int step = 0; step < 200000; ++step) {
    const int j = static_cast<int>(rng() % kChurn);
    const std::string key = key_of(kStable + j);
    const std::uint64_t h = hash_key(seed, 1, key);
    if (!live[static_cast<std::size_t>(j)]) {
      live[static_cast<std::size_t>(j)] = make(key, kStable + j);
      table.insert(h, live[static_cast<std::size_t>(j)]);
    } else if (rng() % 2) {
      Entry* now = make(key, 100000 * (step % 7 + 1) + kStable + j);
      table.replace(h, live[static_cast<std::size_t>(j)], now);
      retired.retire(live[static_cast<std::size_t>(j)], release);
      live[static_cast<std::size_t>(j)] = now;
    } else {
      ASSERT_TRUE(table.erase(h, live[static_cast<std::size_t>(j)]));
      retired.retire(live[static_cast<std::size_t>(j)], release);
      live[static_cast<std::size_t>(j)] = nullptr;
    }
    while (Table::Array* a = table.take_replaced()) retired.retire(a, &Table::free_array);
    retired.collect();
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(found_stable.load(), 0u);
  table.for_each([](Entry* e) { e->unref(); });
}

}  // namespace table_test
}  // namespace callcache::internal
