#include "stored_record.h"

#include <gtest/gtest.h>

#include <limits>

namespace callcache::tiers {
namespace stored_record_test {

using std::chrono::milliseconds;
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

TEST(StoredRecord, TtlsAreClampedInsteadOfOverflowing) {
  EXPECT_EQ(ttl_from_ms(1500), milliseconds(1500));
  EXPECT_EQ(ttl_from_ms(0), Duration::zero());
  EXPECT_EQ(ttl_from_ms(-5), Duration::zero());
  // A damaged expiry (or a Redis PTTL far in the future): milliseconds to
  // nanoseconds would overflow; the lifetime is clamped.
  EXPECT_EQ(ttl_from_ms(kMax), kMaxStoredTtl);
  EXPECT_EQ(ttl_from_ms(kMin), Duration::zero());
}

TEST(StoredRecord, LockValuesRoundTrip) {
  const std::string v = format_lock_value("a1b2c3", 1700000000123, "likebot worker 7");
  EXPECT_EQ(v, "a1b2c3 1700000000123 likebot worker 7");
  LockValue p = parse_lock_value(v);
  EXPECT_EQ(p.token, "a1b2c3");
  EXPECT_EQ(p.since_ms, 1700000000123);
  EXPECT_EQ(p.task, "likebot worker 7");
}

TEST(StoredRecord, DamagedLockValuesDecodeToSomethingSafe) {
  EXPECT_EQ(parse_lock_value("").task, "");
  EXPECT_EQ(parse_lock_value("token").token, "token");
  EXPECT_EQ(parse_lock_value("token 12").since_ms, 0);  // no task: not a value we wrote
  EXPECT_EQ(parse_lock_value("t 12x task").since_ms, 0);
  EXPECT_EQ(parse_lock_value("t 99999999999999999999 task").since_ms, 0);
  EXPECT_EQ(parse_lock_value("t -9223372036854775808 task").since_ms, kMin);
  // Ages never overflow, never go negative.
  EXPECT_EQ(lock_age(1000, 1500), milliseconds(500));
  EXPECT_EQ(lock_age(2000, 1500), milliseconds(0));
  EXPECT_EQ(lock_age(kMin, kMax), std::chrono::duration_cast<milliseconds>(kMaxStoredTtl));
  EXPECT_EQ(lock_age(kMax, kMin), milliseconds(0));
}

}  // namespace stored_record_test
}  // namespace callcache::tiers
