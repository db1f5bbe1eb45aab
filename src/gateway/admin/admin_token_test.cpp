// admin_token_matches: the admin listener's Bearer token check.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "gateway/admin/admin_handler.h"

namespace callcache::gateway {
namespace admin_token_test {

TEST(AdminToken, AcceptsExactlyBearerAndTheToken) {
  const std::string token = "s3cret-admin-token";
  EXPECT_TRUE(admin_token_matches("Bearer s3cret-admin-token", token));
  EXPECT_FALSE(admin_token_matches("", token));
  EXPECT_FALSE(admin_token_matches("Bearer ", token));
  EXPECT_FALSE(admin_token_matches("Bearer s3cret-admin-toke", token));    // shorter
  EXPECT_FALSE(admin_token_matches("Bearer s3cret-admin-tokenX", token));  // longer
  EXPECT_FALSE(admin_token_matches("Bearer S3CRET-ADMIN-TOKEN", token));
  EXPECT_FALSE(admin_token_matches("bearer s3cret-admin-token", token));
  EXPECT_FALSE(admin_token_matches("s3cret-admin-token", token));
  EXPECT_FALSE(admin_token_matches("Bearer  s3cret-admin-token", token));
  EXPECT_FALSE(admin_token_matches(std::string("Bearer s3cret-admin-token\0", 26), token));
}

// The time a wrong header takes must not depend on where it differs from the
// token (an early-exit comparison answers a header wrong in its first byte
// sooner than one wrong in its last, which leaks the token a byte at a
// time). With a 1 MiB token an early exit is about a thousand times faster,
// so the check allows noise a wide margin: the fastest of 100 interleaved
// runs of each (the least noisy estimate) must be within 4x, in one of three
// rounds (noise on a shared machine only ever slows a run down, so an early
// exit can never pass, while a constant-time comparison passes at once).
TEST(AdminToken, TimeDoesNotDependOnWhereTheHeaderDiffers) {
  std::string token(1 << 20, 'a');
  for (std::size_t i = 0; i < token.size(); ++i) token[i] = static_cast<char>('a' + i * 7 % 26);
  std::string wrong_first = "Bearer " + token;
  std::string wrong_last = wrong_first;
  wrong_first[7] = '#';
  wrong_last.back() = '#';
  using Clock = std::chrono::steady_clock;
  auto time_of = [&](const std::string& header) {
    auto t0 = Clock::now();
    bool m = admin_token_matches(header, token);
    auto t = Clock::now() - t0;
    EXPECT_FALSE(m);
    return t;
  };
  double ratio = 0;
  Clock::duration best_first{}, best_last{};
  for (int round = 0; round < 3 && ratio <= 0.25; ++round) {
    best_first = best_last = Clock::duration::max();
    for (int i = 0; i < 100; ++i) {
      best_first = std::min(best_first, time_of(wrong_first));
      best_last = std::min(best_last, time_of(wrong_last));
    }
    ratio = static_cast<double>(std::min(best_first, best_last).count()) /
            static_cast<double>(std::max(best_first, best_last).count());
  }
  EXPECT_GT(ratio, 0.25) << "wrong in the first byte: " << best_first.count()
                         << " ns, in the last: " << best_last.count() << " ns";
}

}  // namespace admin_token_test
}  // namespace callcache::gateway
