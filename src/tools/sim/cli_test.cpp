// The `callcache sim` command line with stand-in engine policies (the
// simulator's exact LRU and FIFO); engine_policies_test.cpp drives the real
// engine.
#include "tools/sim/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tools/sim/test_util.h"

namespace callcache::sim {
namespace cli_test {

using test_util::cache2k_bytes;
using test_util::TempDir;
using test_util::write_file;
using test_util::xz_compress;
using ::testing::HasSubstr;

std::vector<PolicyRun> stand_ins() {
  PolicyRun lru = reference_run("lru-exact");
  lru.name = "lru";
  lru.label = "lru";
  lru.engine = true;
  PolicyRun fifo = reference_run("fifo");
  fifo.name = "fifo";
  fifo.label = "fifo (default)";
  fifo.engine = true;
  fifo.is_default = true;
  return {lru, fifo};
}

struct CliRun {
  int rc;
  std::string out, err;
};

CliRun run(std::vector<std::string> args) {
  args.insert(args.begin(), "sim");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  int rc = run_sim_cli(static_cast<int>(argv.size()), argv.data(), out, err, stand_ins());
  return {rc, out.str(), err.str()};
}

TEST(Cli, GeneratedTraceTable) {
  CliRun r = run(
      {"--generate", "zipf", "--requests", "20000", "--keys", "2000", "--sizes", "10,100,1000"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("zipf(alpha=0.9, keys=2000, requests=20000, seed=1)"));
  EXPECT_THAT(r.out, HasSubstr("OPT (ref, offline)"));
  EXPECT_THAT(r.out, HasSubstr("FIFO (ref)"));
  EXPECT_THAT(r.out, HasSubstr("default policy fifo"));
  EXPECT_THAT(r.out, HasSubstr("1,000"));
}

TEST(Cli, JsonIsDeterministicForASeed) {
  std::vector<std::string> args = {"--generate", "scan",   "--requests", "30000",
                                   "--keys",     "3000",   "--json",     "--reference",
                                   "opt",        "--seed", "7"};
  CliRun a = run(args), b = run(args);
  ASSERT_EQ(a.rc, 0) << a.err;
  auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  ASSERT_EQ(ja["policies"].size(), 3u);  // lru, fifo, opt
  for (std::size_t p = 0; p < 3; ++p)
    EXPECT_EQ(ja["policies"][p]["misses"], jb["policies"][p]["misses"]);
  EXPECT_EQ(ja["policies"][2]["name"], "opt");
  EXPECT_EQ(ja["sizes"].size(), 7u);  // default fractions
}

TEST(Cli, ReadsATraceFileAndWritesAChart) {
  TempDir dir;
  std::vector<std::uint32_t> keys;
  for (std::uint32_t i = 0; i < 5000; ++i) keys.push_back((i * i) % 701);
  write_file(dir.file("t.trace.xz"), xz_compress(cache2k_bytes(keys)));
  CliRun r = run({dir.file("t.trace.xz"), "--fractions", "1%,0.1", "--chart", dir.file("chart"),
                  "--policies", "lru", "--reference", "none"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("t.trace.xz — 5,000 requests"));
  EXPECT_THAT(r.out, HasSubstr("chart data: " + dir.file("chart.dat")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("chart.gp")));
}

TEST(Cli, BadTraceFileIsARuntimeErrorNamingTheFile) {
  TempDir dir;
  write_file(dir.file("bad.csv"), "1,a\n2\n");
  CliRun r = run({dir.file("bad.csv"), "--csv-column", "2"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("bad.csv' line 2"));
  EXPECT_TRUE(r.out.empty());
}

TEST(Cli, UsageErrors) {
  EXPECT_EQ(run({}).rc, 2);
  EXPECT_THAT(run({}).err, HasSubstr("either a trace file or --generate"));
  EXPECT_EQ(run({"x.txt", "--generate", "zipf"}).rc, 2);
  EXPECT_EQ(run({"--generate", "gauss"}).rc, 2);
  CliRun r = run({"--generate", "zipf", "--policies", "arc"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("'arc' is not an engine policy (known: lru, fifo)"));
  r = run({"--generate", "zipf", "--reference", "clairvoyant"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown reference policy 'clairvoyant'"));
  r = run({"--generate", "zipf", "--sizes", "10,ten"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("'ten' is not a cache size"));
  r = run({"--generate", "zipf", "--fractions", "0"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(run({"--generate", "zipf", "--sizes", "1", "--fractions", "0.1"}).rc, 2);
  r = run({"--generate", "zipf", "--alpha", "-1"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_THAT(r.err, HasSubstr("alpha"));
  r = run({"t.dat"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_THAT(r.err, HasSubstr("--format"));
}

TEST(Cli, Help) {
  CliRun r = run({"--help"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_THAT(r.out, HasSubstr("--csv-column"));
  EXPECT_THAT(r.out, HasSubstr("--generate"));
}

TEST(Cli, ProgressAndThreadsOptions) {
  // Quick runs draw nothing, whatever --progress says; a bad value is a
  // usage error. --threads 0 (the default) means one per hardware thread.
  for (const char* mode : {"auto", "on", "off"}) {
    CliRun r = run({"--generate", "loop", "--requests", "1000", "--keys", "100", "--sizes", "10",
                    "--progress", mode, "--threads", "0"});
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.err.find('\r'), std::string::npos) << mode;
  }
  EXPECT_EQ(run({"--generate", "loop", "--progress", "maybe"}).rc, 2);
  EXPECT_THAT(run({"--help"}).out, HasSubstr("one per hardware thread"));
}

}  // namespace cli_test
}  // namespace callcache::sim
