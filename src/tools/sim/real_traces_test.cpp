// Reads the production traces beside the project (../shared/traces, cache2k
// format, CC BY 4.0) and checks their published request and distinct-key
// counts. Skips, saying so, when the traces are absent.
//
// Where the traces are: $CALLCACHE_TRACES_DIR, else --traces-dir=DIR on the
// test's command line, else $CALLCACHE_SOURCE_DIR/../shared/traces (set by
// cc_test).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tools/sim/reference.h"
#include "tools/sim/trace.h"

namespace callcache::sim {
namespace real_traces_test {

std::string traces_dir() {
  if (const char* d = std::getenv("CALLCACHE_TRACES_DIR")) return d;
  for (const std::string& arg : ::testing::internal::GetArgvs()) {
    if (arg.rfind("--traces-dir=", 0) == 0) return arg.substr(13);
  }
  if (const char* src = std::getenv("CALLCACHE_SOURCE_DIR")) {
    return std::string(src) + "/../shared/traces";
  }
  return "";
}

// The trace's path, or "" (after recording why) when it is absent.
std::string trace_path(const std::string& file) {
  std::string dir = traces_dir();
  if (dir.empty()) return "";
  std::string path = dir + "/" + file;
  return std::filesystem::exists(path) ? path : "";
}

#define REQUIRE_TRACE(var, file)                                                  \
  const std::string var = trace_path(file);                                       \
  if (var.empty()) {                                                              \
    GTEST_SKIP() << "SKIPPED: trace " file " not found in '" << traces_dir()      \
                 << "' (set CALLCACHE_TRACES_DIR, pass --traces-dir=DIR, or put " \
                    "../shared/traces beside the source tree)";                   \
  }

TEST(RealTraces, Web07) {
  REQUIRE_TRACE(path, "web07.trace.xz");
  auto t = read_trace(path);
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->requests.size(), 76'118u);
  EXPECT_EQ(t->distinct, 20'484u);
  EXPECT_EQ(t->name, "web07.trace.xz");
  // Sanity of the replay itself: everything fits → only cold misses.
  EXPECT_EQ(simulate_reference(ReferencePolicy::kLru, *t, t->distinct), 20'484u);
}

TEST(RealTraces, OrmBusy) {
  REQUIRE_TRACE(path, "orm-busy.trace.xz");
  auto t = read_trace(path);
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->requests.size(), 5'000'000u);
  EXPECT_EQ(t->distinct, 76'349u);
}

TEST(RealTraces, LimitReadsAPrefix) {
  REQUIRE_TRACE(path, "orm-busy.trace.xz");
  ReadOptions o;
  o.limit = 1'000;
  auto t = read_trace(path, o);
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->requests.size(), 1'000u);
  EXPECT_LE(t->distinct, 1'000u);
}

}  // namespace real_traces_test
}  // namespace callcache::sim
