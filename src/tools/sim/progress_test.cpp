// The progress bar: silent when disabled or before its delay, drawn on one
// line with carriage returns, erased at the end.
#include "tools/sim/progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

namespace callcache::sim {
namespace progress_test {

using ::testing::HasSubstr;

TEST(Progress, RendersDoneTotalElapsedAndWhatIsLeft) {
  EXPECT_EQ(Progress::render(0, 4, 0.5), "[....................] 0/4 runs  0.5 s");
  EXPECT_EQ(Progress::render(1, 4, 2.0), "[#####...............] 1/4 runs  2.0 s, about 6 s left");
  EXPECT_EQ(Progress::render(4, 4, 8.25), "[####################] 4/4 runs  8.2 s");
}

TEST(Progress, SilentWhenDisabledOrQuick) {
  double now = 0;
  std::ostringstream off, quick;
  {
    Progress p(off, /*enabled=*/false, 4, 1.0, 0, [&] { return now; });
    now = 5;
    p.advance(2);
  }
  {
    Progress p(quick, /*enabled=*/true, 4, 1.0, 0, [&] { return now; });
    now += 0.5;  // under the one-second delay
    p.advance(4);
  }
  EXPECT_EQ(off.str(), "");
  EXPECT_EQ(quick.str(), "");
}

TEST(Progress, DrawsOnOneLineAndErasesItself) {
  double now = 0;
  std::ostringstream out;
  Progress p(out, true, 4, 1.0, 0, [&] { return now; });
  now = 1.5;
  p.advance(1);
  now = 3;
  p.advance(3);
  p.finish();
  const std::string s = out.str();
  EXPECT_THAT(s, HasSubstr("\r[#####...............] 1/4 runs  1.5 s, about 5 s left"));
  EXPECT_THAT(s, HasSubstr("\r[###############.....] 3/4 runs  3.0 s, about 1 s left"));
  EXPECT_EQ(s.find('\n'), std::string::npos) << "one terminal line";
  EXPECT_EQ(s.back(), '\r') << "ends erased, the cursor at the start of the line";
  p.finish();  // idempotent
  EXPECT_EQ(out.str(), s);
}

TEST(Progress, TicksWhileARunIsLong) {
  std::ostringstream out;
  Progress p(out, true, 2, /*delay=*/0, /*tick=*/0.01);
  // The stream is the ticker's until finish() has joined it: read it after.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  p.finish();
  EXPECT_THAT(out.str(), HasSubstr("0/2 runs")) << "drawn by the ticker before any run completed";
}

}  // namespace progress_test
}  // namespace callcache::sim
