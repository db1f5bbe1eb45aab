#include "yaml_reader.h"

#include <gtest/gtest.h>

namespace callcache::config {
namespace yaml_reader_test {

using namespace std::chrono_literals;

TEST(ParseDuration, AcceptsPlainSecondsAndUnits) {
  EXPECT_EQ(*parse_duration("300"), 300s);
  EXPECT_EQ(*parse_duration("300s"), 300s);
  EXPECT_EQ(*parse_duration("5m"), 300s);
  EXPECT_EQ(*parse_duration("1h"), 3600s);
  EXPECT_EQ(*parse_duration("250ms"), 250ms);
  EXPECT_EQ(*parse_duration("1.5s"), 1500ms);
}

TEST(ParseDuration, RejectsGarbage) {
  for (const char* bad : {"", "-5s", "five", "5 minutes", "5x", "s"}) {
    auto d = parse_duration(bad);
    EXPECT_FALSE(d.ok()) << bad;
  }
}

TEST(ParseBytes, Units) {
  EXPECT_EQ(*parse_bytes("1000"), 1000u);
  EXPECT_EQ(*parse_bytes("64KB"), 64u * 1024);
  EXPECT_EQ(*parse_bytes("10MiB"), 10u * 1024 * 1024);
  EXPECT_FALSE(parse_bytes("10 parsecs").ok());
}

TEST(MapReader, ReadingLeavesTheDocumentUnchanged) {
  // The gateway reads sections of one document with several readers (the
  // telegram: section twice); reading must not rewrite it.
  auto doc = load_string("a: {x: 5s, y: 250ms, z: text}\n");
  ASSERT_TRUE(doc.ok());
  const std::string before = YAML::Dump(*doc);
  for (int pass = 0; pass < 2; ++pass) {
    MapReader root(*doc, "");
    MapReader a = root.map("a");
    Duration x{}, y{};
    std::string z;
    a.duration("x", x);
    a.duration("y", y);
    a.string("z", z);
    EXPECT_TRUE(a.finish().ok());
    EXPECT_EQ(x, 5s) << pass;
    EXPECT_EQ(y, 250ms) << pass;
    EXPECT_EQ(z, "text") << pass;
  }
  EXPECT_EQ(YAML::Dump(*doc), before);
}

TEST(MapReader, NamesPathAndValueOnError) {
  auto doc = load_string("a:\n  ttl: 5 minutes\n");
  ASSERT_TRUE(doc.ok());
  MapReader root(*doc, "");
  MapReader a = root.map("a");
  Duration ttl{};
  a.duration("ttl", ttl);
  Status s = a.finish();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("a.ttl"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("5 minutes"), std::string::npos) << s.message();
}

TEST(MapReader, RejectsUnknownKeys) {
  auto doc = load_string("ttl: 5\nttk: 3\n");
  MapReader r(*doc, "ns");
  Duration ttl{};
  r.duration("ttl", ttl);
  Status s = r.finish();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("ns.ttk: unknown key"), std::string::npos) << s.message();
  EXPECT_EQ(ttl, 5s);
}

TEST(MapReader, ZeroRejectedWhereNotAllowed) {
  auto doc = load_string("max_entries: 0\n");
  MapReader r(*doc, "x");
  std::uint64_t n = 7;
  r.count("max_entries", n, /*allow_zero=*/false);
  EXPECT_FALSE(r.finish().ok());
  EXPECT_EQ(n, 7u);
}

TEST(MapReader, AbsentStringListLeavesTheFieldAlone) {
  auto doc = load_string("other: 1\n");
  MapReader r(*doc, "x");
  std::vector<std::string> v = {"keep"};
  r.string_list("methods", v);
  std::int64_t other = 0;
  r.integer("other", other);
  EXPECT_TRUE(r.finish().ok()) << r.error().to_string();
  EXPECT_EQ(v, std::vector<std::string>{"keep"});
}

TEST(LoadString, MalformedYamlNamesLine) {
  auto doc = load_string("a: [1, 2\nb: 3\n");
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("line"), std::string::npos);
}

}  // namespace yaml_reader_test
}  // namespace callcache::config
