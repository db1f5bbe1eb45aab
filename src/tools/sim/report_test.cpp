#include "tools/sim/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tools/sim/test_util.h"

namespace callcache::sim {
namespace report_test {

using test_util::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

// Two engine policies and one reference at three sizes, 1,000 requests.
SimResults sample() {
  SimResults r;
  r.trace_name = "demo.trace.xz";
  r.requests = 1000;
  r.distinct = 400;
  r.one_hit_keys = 100;
  r.sizes = {4, 40, 400};
  SimResults::Column lru{"lru", "lru", true, false, {900, 600, 400}, 0.5};
  SimResults::Column s3{"s3fifo", "s3fifo (default)", true, true, {880, 605, 400}, 0.25};
  SimResults::Column opt{"opt", "OPT (ref, offline)", false, false, {800, 500, 400}, 0.1};
  r.policies = {lru, s3, opt};
  return r;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(Report, RelativeGap) {
  EXPECT_DOUBLE_EQ(relative_gap(101, 100), 0.01);
  EXPECT_DOUBLE_EQ(relative_gap(99, 100), -0.01);
  EXPECT_DOUBLE_EQ(relative_gap(5, 0), 0.0);
}

TEST(Report, TableMarksBestAndJudgesTheDefault) {
  SimResults r = sample();
  EXPECT_EQ(r.best_engine(0), 1);  // s3fifo 880 < 900
  EXPECT_EQ(r.best_engine(1), 0);  // lru 600 < 605
  EXPECT_EQ(r.best_engine(2), 0);  // tie: first listed
  std::string t = format_table(r);
  EXPECT_THAT(t, HasSubstr("demo.trace.xz"));
  EXPECT_THAT(t, HasSubstr("1,000 requests"));
  EXPECT_THAT(t, HasSubstr("*0.8800"));  // s3fifo best at size 4
  EXPECT_THAT(t, HasSubstr("*0.6000"));  // lru best at size 40
  EXPECT_THAT(t, Not(HasSubstr("*0.6050")));
  EXPECT_THAT(t, HasSubstr("*0.4000"));  // ties: both marked
  EXPECT_THAT(t, HasSubstr("OPT (ref, offline)"));
  EXPECT_THAT(t, HasSubstr("+0.83%"));  // 605 vs 600
  EXPECT_THAT(t, HasSubstr("-2.22%"));  // 880 vs 900 (vs lru)
  // 0.83% is within the 1% target: met at every size.
  EXPECT_THAT(t, HasSubstr("within 1% of the best engine policy at 3 of 3 sizes"));

  r.policies[1].misses[1] = 620;  // +3.33%: misses the target
  t = format_table(r);
  EXPECT_THAT(t, HasSubstr("at 2 of 3 sizes; worst gap +3.33% at size 40"));
  EXPECT_THAT(t, HasSubstr("NO"));
}

TEST(Report, Markdown) {
  std::string m = format_markdown(sample());
  EXPECT_THAT(m, HasSubstr("| size | % keys | lru | s3fifo (default) | OPT (ref, offline) |"));
  EXPECT_THAT(m, HasSubstr("|---:|---:|"));
  EXPECT_THAT(m, HasSubstr("| 4 | 1.00% | 0.9000 | **0.8800** | 0.8000 | +0.00% | yes | -2.22% |"));
  EXPECT_THAT(m, Not(HasSubstr("cpu seconds")));
}

TEST(Report, Json) {
  auto j = nlohmann::json::parse(format_json(sample()));
  EXPECT_EQ(j["trace"]["requests"], 1000);
  EXPECT_EQ(j["trace"]["distinct_keys"], 400);
  EXPECT_EQ(j["sizes"], nlohmann::json({4, 40, 400}));
  ASSERT_EQ(j["policies"].size(), 3u);
  EXPECT_EQ(j["policies"][0]["name"], "lru");
  EXPECT_EQ(j["policies"][2]["engine_policy"], false);
  EXPECT_DOUBLE_EQ(j["policies"][1]["miss_ratio"][0].get<double>(), 0.88);
  EXPECT_EQ(j["best_engine_policy"], nlohmann::json({"s3fifo", "lru", "lru"}));
  EXPECT_EQ(j["default_policy"], "s3fifo");
  EXPECT_NEAR(j["default_gap_to_best"][1].get<double>(), 5.0 / 600, 1e-12);
  EXPECT_EQ(j["default_within_1_percent"], nlohmann::json({true, true, true}));
}

TEST(Report, ChartFilesAndGnuplot) {
  TempDir dir;
  const std::string prefix = dir.file("demo");
  auto c = write_chart(sample(), prefix);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  std::string dat = slurp(c->dat);
  EXPECT_THAT(dat, HasSubstr("# size\tfraction_of_keys\tlru\ts3fifo\topt\n"));
  EXPECT_THAT(dat, HasSubstr("40\t0.100000\t0.600000\t0.605000\t0.500000\n"));
  std::string gp = slurp(c->gp);
  EXPECT_THAT(gp, HasSubstr("\"demo.dat\" using 1:4"));  // relative: re-runnable anywhere
  EXPECT_THAT(gp, Not(HasSubstr(dir.path().string())));
  EXPECT_THAT(gp, HasSubstr("title \"s3fifo (default)\""));
  if (find_on_path("gnuplot").empty()) {
    EXPECT_THAT(c->note, HasSubstr("gnuplot not found"));
    GTEST_SKIP() << "gnuplot is not installed: chart rendering not checked";
  }
  ASSERT_EQ(c->svg, prefix + ".svg");
  std::string svg = slurp(c->svg);
  EXPECT_THAT(svg, HasSubstr("<svg"));
  EXPECT_THAT(svg, HasSubstr("s3fifo (default)"));
  if (!c->png.empty()) {
    std::string png = slurp(c->png);
    EXPECT_EQ(png.substr(1, 3), "PNG");
  } else {
    EXPECT_THAT(c->note, HasSubstr("pngcairo"));
  }
}

TEST(Report, ChartWithoutGnuplotStillWritesDataAndSaysSo) {
  TempDir dir;
  const char* old = std::getenv("PATH");
  std::string saved = old ? old : "";
  ::setenv("PATH", dir.path().c_str(), 1);  // an empty directory: no gnuplot
  auto c = write_chart(sample(), dir.file("demo"));
  ::setenv("PATH", saved.c_str(), 1);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_TRUE(c->svg.empty());
  EXPECT_THAT(c->note, HasSubstr("gnuplot not found"));
  EXPECT_FALSE(slurp(c->dat).empty());
}

TEST(Report, ChartIntoMissingDirectoryIsAnError) {
  TempDir dir;
  auto c = write_chart(sample(), dir.file("no/such/dir/demo"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kIoError);
  EXPECT_THAT(c.status().message(), HasSubstr("no/such/dir/demo.dat"));
}

}  // namespace report_test
}  // namespace callcache::sim
