// The open-addressing table against a std::unordered_map model, through
// growth, tombstone reuse and in-place rehashing.
#include "table.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>

#include "callcache/cache.h"

namespace callcache::internal {
namespace {

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
      Entry* e = Entry::create(ops, register_type(ops).value(), &v, nullptr, TenantId{1}, key, 4, TimePoint{}, 1);
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

}  // namespace
}  // namespace callcache::internal
