// The entry header's packed fields: queue links, flags and charge share
// bytes, so each must read back exactly what was written, whatever its
// neighbours hold; charges too large for the header live after the value.
#include "entry.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "callcache/cache.h"

namespace callcache::internal {
namespace entry_test {

struct alignas(16) Wide {
  std::uint64_t a = 1, b = 2;
};

template <class V>
Entry* make(V v, std::string_view key, std::uint32_t charge) {
  const ValueOps* ops = value_ops<V>();
  return Entry::create(ops, register_type(ops).value(), &v, nullptr, TenantId{7}, key, charge,
                       TimePoint{} + std::chrono::seconds(5), 3);
}

TEST(Entry, ChargeReadsBackExactlyInAndOutOfLine) {
  const std::uint32_t charges[] = {
      0, 1, 65534, 65535, 65536, 100000, 1u << 24, std::numeric_limits<std::uint32_t>::max()};
  for (std::uint32_t c : charges) {
    for (std::string key : {std::string(), std::string(16, 'k'), std::string(501, 'k')}) {
      Entry* small = make<std::uint64_t>(42, key, c);
      Entry* wide = make<Wide>(Wide{}, key, c);
      Entry* str = make<std::string>(std::string(300, 's'), key, c);
      const Status err = Status::unavailable("down");
      Entry* neg = Entry::create(nullptr, 0, nullptr, &err, TenantId{7}, key, c, TimePoint{}, 3);
      for (Entry* e : {small, wide, str, neg}) {
        EXPECT_EQ(e->charge(), c) << "key of " << key.size();
        EXPECT_EQ(e->key(), key);
        EXPECT_EQ(e->tenant(), TenantId{7});
        EXPECT_EQ(e->version(), 3);
      }
      EXPECT_EQ(*static_cast<const std::uint64_t*>(small->value()), 42u);
      EXPECT_EQ(static_cast<const Wide*>(wide->value())->b, 2u);
      EXPECT_EQ(*static_cast<const std::string*>(str->value()), std::string(300, 's'));
      EXPECT_FALSE(small->negative());
      EXPECT_TRUE(neg->negative());
      EXPECT_EQ(neg->error().message(), "down");
      for (Entry* e : {small, wide, str, neg}) e->unref();  // ASan: sizes match create()
    }
  }
}

TEST(Entry, LinksFlagsAndChargeDoNotDisturbEachOther) {
  std::vector<Entry*> es;
  for (int i = 0; i < 64; ++i) {
    // Alternate slab slots and operator new (keys past the largest slot).
    es.push_back(make<int>(i, std::string(i % 2 ? 600 : 10, 'k'), 1000u + i));
  }
  const Entry::Flag all[] = {Entry::kLinked, Entry::kMain, Entry::kTagged, Entry::kProtected,
                             Entry::kFresh};
  for (std::size_t i = 0; i < es.size(); ++i) {
    Entry* e = es[i];
    EXPECT_EQ(e->prev(), nullptr);
    EXPECT_EQ(e->next(), nullptr);
    for (Entry::Flag f : all) e->set(f);
    e->set_prev(es[(i + 1) % es.size()]);
    e->set_next(es[(i + 7) % es.size()]);
  }
  for (std::size_t i = 0; i < es.size(); ++i) {
    Entry* e = es[i];
    EXPECT_EQ(e->prev(), es[(i + 1) % es.size()]);
    EXPECT_EQ(e->next(), es[(i + 7) % es.size()]);
    EXPECT_EQ(e->charge(), 1000u + i);
    for (Entry::Flag f : all) EXPECT_TRUE(e->has(f));
    e->clear(Entry::kMain);
    e->set_next(nullptr);
    EXPECT_EQ(e->prev(), es[(i + 1) % es.size()]);
    EXPECT_EQ(e->next(), nullptr);
    EXPECT_FALSE(e->has(Entry::kMain));
    EXPECT_TRUE(e->has(Entry::kFresh));
    e->set_prev(nullptr);
    e->set_next(es[i]);
    EXPECT_EQ(e->prev(), nullptr);
    EXPECT_EQ(e->next(), es[i]);
    EXPECT_EQ(e->charge(), 1000u + i);
    EXPECT_EQ(*static_cast<const int*>(e->value()), static_cast<int>(i));
  }
  for (Entry* e : es) e->unref();  // in_slab kept beside the flags: frees to the right place
}

}  // namespace entry_test
}  // namespace callcache::internal
