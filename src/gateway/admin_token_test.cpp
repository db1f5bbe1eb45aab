// admin_token_matches: the admin listener's Bearer token check.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "gateway/admin_handler.h"

namespace callcache::gateway {
namespace {

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
// time). With a 1 MiB token an early exit is orders of magnitude faster;
// the check allows a generous 20% for noise on a shared machine, taking the
// fastest of interleaved runs (the least noisy estimate).
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
  Clock::duration best_first = Clock::duration::max(), best_last = Clock::duration::max();
  for (int i = 0; i < 15; ++i) {
    best_first = std::min(best_first, time_of(wrong_first));
    best_last = std::min(best_last, time_of(wrong_last));
  }
  const double ratio = static_cast<double>(std::min(best_first, best_last).count()) /
                       static_cast<double>(std::max(best_first, best_last).count());
  EXPECT_GT(ratio, 0.8) << "wrong in the first byte: " << best_first.count()
                        << " ns, in the last: " << best_last.count() << " ns";
}

}  // namespace
}  // namespace callcache::gateway
