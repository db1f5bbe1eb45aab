#include "tools/sim/trace.h"

// GCC 12 warns falsely about assigning a one-character literal to a
// std::string at -O2 (GCC bug 105329).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zstd.h>

#include <cstring>

#include "tools/sim/test_util.h"

namespace callcache::sim {
namespace trace_test {

using test_util::cache2k_bytes;
using test_util::TempDir;
using test_util::write_file;
using test_util::xz_compress;
using ::testing::HasSubstr;

std::vector<std::uint32_t> ids(std::initializer_list<std::uint32_t> v) { return v; }

// One oracleGeneral record, little-endian, packed.
std::string oracle_record(std::uint32_t ts, std::uint64_t obj, std::uint32_t size,
                          std::int64_t next) {
  std::string r(24, '\0');
  auto put = [&](std::size_t at, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i)
      r[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
  };
  put(0, ts, 4);
  put(4, obj, 8);
  put(12, size, 4);
  put(16, static_cast<std::uint64_t>(next), 8);
  return r;
}

TEST(TraceFormat, DetectsFromName) {
  EXPECT_EQ(*detect_trace_format("a/b/web07.trace.xz"), TraceFormat::kCache2k);
  EXPECT_EQ(*detect_trace_format("x.trace"), TraceFormat::kCache2k);
  EXPECT_EQ(*detect_trace_format("keys.txt"), TraceFormat::kText);
  EXPECT_EQ(*detect_trace_format("keys.keys.zst"), TraceFormat::kText);
  EXPECT_EQ(*detect_trace_format("log.csv"), TraceFormat::kCsv);
  EXPECT_EQ(*detect_trace_format("log.tsv.xz"), TraceFormat::kCsv);
  EXPECT_EQ(*detect_trace_format("cluster52.oracleGeneral.zst"), TraceFormat::kOracleGeneral);
  EXPECT_EQ(*detect_trace_format("w.oracleGeneral.sample10"), TraceFormat::kOracleGeneral);
  EXPECT_EQ(*detect_trace_format("w.bin"), TraceFormat::kOracleGeneral);
  auto bad = detect_trace_format("dir/trace.dat");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("dir/trace.dat"));
  EXPECT_THAT(bad.status().message(), HasSubstr("--format"));
}

TEST(TraceFormat, ParsesNames) {
  EXPECT_EQ(*parse_trace_format("oracle"), TraceFormat::kOracleGeneral);
  EXPECT_EQ(*parse_trace_format("oracleGeneral"), TraceFormat::kOracleGeneral);
  EXPECT_EQ(*parse_trace_format("cache2k"), TraceFormat::kCache2k);
  EXPECT_FALSE(parse_trace_format("parquet").ok());
}

TEST(ReadText, InternsKeysInOrderOfFirstUse) {
  TempDir dir;
  write_file(dir.file("t.txt"), "user:1\n  user:2 \r\n\nuser:1\nuser 3\nuser:2");  // no final \n
  auto t = read_trace(dir.file("t.txt"));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->requests, ids({0, 1, 0, 2, 1}));
  EXPECT_EQ(t->distinct, 3u);
  EXPECT_EQ(t->name, "t.txt");
  EXPECT_EQ(count_one_hit_keys(*t), 1u);
}

TEST(ReadText, LongTraceAcrossBufferBoundaries) {
  TempDir dir;
  std::string body;
  const int n = 300'000;  // several MiB: crosses the read buffer many times
  for (int i = 0; i < n; ++i) body += "key-number-" + std::to_string(i % 1000) + "\n";
  write_file(dir.file("big.txt"), body);
  auto t = read_trace(dir.file("big.txt"));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  ASSERT_EQ(t->requests.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(t->distinct, 1000u);
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(t->requests[static_cast<std::size_t>(i)], static_cast<std::uint32_t>(i % 1000));
}

TEST(ReadText, LongestLineAcrossARead) {
  TempDir dir;
  std::string body;
  for (int i = 0; i < 10'000; ++i) body += "k" + std::to_string(i % 7) + "\n";
  const std::string longest(64 * 1024, 'y');  // the longest line accepted
  body += longest + "\nz\n" + longest;        // the last one without a final newline
  write_file(dir.file("long.txt"), body);
  auto t = read_trace(dir.file("long.txt"));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  ASSERT_EQ(t->requests.size(), 10'003u);
  EXPECT_EQ(t->distinct, 9u);
  EXPECT_EQ(t->requests[10'000], 7u);
  EXPECT_EQ(t->requests[10'001], 8u);
  EXPECT_EQ(t->requests[10'002], 7u);
}

TEST(ReadText, BinaryFileIsAnErrorNamingTheLine) {
  TempDir dir;
  write_file(dir.file("bin.txt"), std::string("a\nb\nc\0d\n", 8));
  auto t = read_trace(dir.file("bin.txt"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kCorruption);
  EXPECT_THAT(t.status().message(), HasSubstr("bin.txt"));
  EXPECT_THAT(t.status().message(), HasSubstr("line 3"));
  EXPECT_THAT(t.status().message(), HasSubstr("NUL"));
}

TEST(ReadText, OverlongLineIsAnError) {
  TempDir dir;
  write_file(dir.file("long.txt"), "a\n" + std::string(70'000, 'x') + "\n");
  auto t = read_trace(dir.file("long.txt"));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(t.status().message(), HasSubstr("longer than"));
}

TEST(ReadText, EmptyAndMissingFiles) {
  TempDir dir;
  write_file(dir.file("empty.txt"), "\n\n  \n");
  auto e = read_trace(dir.file("empty.txt"));
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("no requests"));
  auto m = read_trace(dir.file("missing.txt"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kIoError);
  EXPECT_THAT(m.status().message(), HasSubstr("missing.txt"));
  EXPECT_THAT(m.status().message(), HasSubstr("No such file"));
}

TEST(ReadText, LimitStopsEarly) {
  TempDir dir;
  write_file(dir.file("t.txt"), "a\nb\nc\nd\n");
  ReadOptions o;
  o.limit = 2;
  auto t = read_trace(dir.file("t.txt"), o);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->requests, ids({0, 1}));
  EXPECT_EQ(t->distinct, 2u);
}

TEST(ReadText, FormatOverrideBeatsTheName) {
  TempDir dir;
  write_file(dir.file("keys.dat"), "x\ny\nx\n");
  ReadOptions o;
  o.format = TraceFormat::kText;
  auto t = read_trace(dir.file("keys.dat"), o);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->requests, ids({0, 1, 0}));
}

TEST(ReadCsv, ColumnByIndexWithoutHeader) {
  TempDir dir;
  write_file(dir.file("t.csv"), "1,a,GET\n2,b,GET\n3,a,POST\n");
  ReadOptions o;
  o.csv_column = "2";
  auto t = read_trace(dir.file("t.csv"), o);
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->requests, ids({0, 1, 0}));
}

TEST(ReadCsv, ColumnByHeaderNameWithQuotes) {
  TempDir dir;
  write_file(dir.file("t.csv"),
             "ts, key ,method\n"
             "1,\"a,1\",GET\n"
             "2,\"say \"\"hi\"\"\",GET\n"
             "3,\"a,1\",GET\n"
             "4,plain,GET\n");
  ReadOptions o;
  o.csv_column = "key";
  auto t = read_trace(dir.file("t.csv"), o);
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->requests, ids({0, 1, 0, 2}));
  EXPECT_EQ(t->distinct, 3u);
}

TEST(ReadCsv, HeaderFlagSkipsFirstRowForIndexColumn) {
  TempDir dir;
  write_file(dir.file("t.csv"), "key\nx\ny\n");
  ReadOptions o;
  o.csv_header = true;
  auto t = read_trace(dir.file("t.csv"), o);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->requests, ids({0, 1}));
}

TEST(ReadCsv, TsvUsesTabs) {
  TempDir dir;
  write_file(dir.file("t.tsv"), "a,b\tx\nc\ty\na,b\tx\n");
  auto t = read_trace(dir.file("t.tsv"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->requests, ids({0, 1, 0}));  // "a,b" is one field
}

TEST(ReadCsv, ErrorsNameFileAndLine) {
  TempDir dir;
  write_file(dir.file("short.csv"), "1,a\n2,b\n3\n");
  ReadOptions o;
  o.csv_column = "2";
  auto t = read_trace(dir.file("short.csv"), o);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("short.csv' line 3"));
  EXPECT_THAT(t.status().message(), HasSubstr("1 column"));

  write_file(dir.file("quote.csv"), "1,a\n2,\"b\n");
  t = read_trace(dir.file("quote.csv"), o);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("quote.csv' line 2: unterminated"));

  write_file(dir.file("hdr.csv"), "ts,key\n1,a\n");
  o.csv_column = "user";
  t = read_trace(dir.file("hdr.csv"), o);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("no column named 'user'"));
  EXPECT_THAT(t.status().message(), HasSubstr("'ts', 'key'"));

  o.csv_header = false;
  t = read_trace(dir.file("hdr.csv"), o);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("needs a header row"));

  o = {};
  o.csv_column = "0";
  t = read_trace(dir.file("hdr.csv"), o);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("1-based"));

  write_file(dir.file("emptykey.csv"), "1,a\n2,\n");
  o.csv_column = "2";
  t = read_trace(dir.file("emptykey.csv"), o);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("line 2: the key (column 2) is empty"));
}

TEST(ReadOracleGeneral, ReadsObjIds) {
  TempDir dir;
  std::string body = oracle_record(1, 0xDEADBEEFCAFEULL, 100, 2) + oracle_record(2, 7, 1, -1) +
                     oracle_record(3, 0xDEADBEEFCAFEULL, 100, -1);
  write_file(dir.file("t.oracleGeneral"), body);
  auto t = read_trace(dir.file("t.oracleGeneral"));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->requests, ids({0, 1, 0}));
  EXPECT_EQ(t->distinct, 2u);
}

TEST(ReadOracleGeneral, TruncatedRecordNamesTheOffset) {
  TempDir dir;
  std::string body = oracle_record(1, 5, 1, -1) + oracle_record(2, 6, 1, -1) + "0123456789";
  write_file(dir.file("t.oracleGeneral"), body);
  auto t = read_trace(dir.file("t.oracleGeneral"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kCorruption);
  EXPECT_THAT(t.status().message(), HasSubstr("t.oracleGeneral"));
  EXPECT_THAT(t.status().message(), HasSubstr("byte offset 48"));
  EXPECT_THAT(t.status().message(), HasSubstr("10 trailing bytes"));
}

TEST(ReadOracleGeneral, ManyReadsAndATruncatedLastRecord) {
  TempDir dir;
  std::string body;
  const std::uint64_t n = 20'000;  // 480 kB: several reads
  for (std::uint64_t i = 0; i < n; ++i) body += oracle_record(1, i % 3000, 1, -1);
  write_file(dir.file("t.oracleGeneral"), body);
  auto t = read_trace(dir.file("t.oracleGeneral"));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  ASSERT_EQ(t->requests.size(), n);
  EXPECT_EQ(t->distinct, 3000u);
  for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(t->requests[i], i % 3000);

  write_file(dir.file("cut.oracleGeneral"), body + "abc");
  auto cut = read_trace(dir.file("cut.oracleGeneral"));
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.status().message(), HasSubstr("byte offset 480000"));
  EXPECT_THAT(cut.status().message(), HasSubstr("3 trailing bytes"));
}

TEST(ReadOracleGeneral, ZstdCompressed) {
  TempDir dir;
  std::string body;
  for (std::uint64_t i = 0; i < 1000; ++i) body += oracle_record(1, i % 10, 1, -1);
  std::string z(ZSTD_compressBound(body.size()), '\0');
  z.resize(ZSTD_compress(z.data(), z.size(), body.data(), body.size(), 3));
  write_file(dir.file("t.oracleGeneral.zst"), z);
  auto t = read_trace(dir.file("t.oracleGeneral.zst"));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->requests.size(), 1000u);
  EXPECT_EQ(t->distinct, 10u);

  write_file(dir.file("cut.oracleGeneral.zst"), z.substr(0, z.size() / 2));
  auto cut = read_trace(dir.file("cut.oracleGeneral.zst"));
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.status().message(), HasSubstr("cut.oracleGeneral.zst"));
}

TEST(ReadCache2k, RawBigEndianKeys) {
  TempDir dir;
  write_file(dir.file("t.trace"), cache2k_bytes({0x01020304, 9, 0x01020304, 0xFFFFFFFF}));
  auto t = read_trace(dir.file("t.trace"));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->requests, ids({0, 1, 0, 2}));
}

TEST(ReadCache2k, XzCompressedWithLiblzma) {
  TempDir dir;
  std::vector<std::uint32_t> keys;
  for (std::uint32_t i = 0; i < 100'000; ++i) keys.push_back((i * 7919u) % 5000u);
  write_file(dir.file("t.trace.xz"), xz_compress(cache2k_bytes(keys)));
  auto t = read_trace(dir.file("t.trace.xz"));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->requests.size(), 100'000u);
  EXPECT_EQ(t->distinct, 5000u);
  // Same key → same id: requests i and i+5000 share a key.
  EXPECT_EQ(t->requests[3], t->requests[5003]);
}

TEST(ReadCache2k, TrailingBytesAreAnError) {
  TempDir dir;
  write_file(dir.file("t.trace.xz"), xz_compress(cache2k_bytes({1, 2}) + "ab"));
  auto t = read_trace(dir.file("t.trace.xz"));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("byte offset 8"));
  EXPECT_THAT(t.status().message(), HasSubstr("2 trailing bytes"));
}

TEST(ReadCache2k, CorruptXzIsAnError) {
  TempDir dir;
  std::vector<std::uint32_t> keys(10'000);
  for (std::uint32_t i = 0; i < keys.size(); ++i) keys[i] = i * 2654435761u;
  std::string xz = xz_compress(cache2k_bytes(keys));
  std::string damaged = xz;
  damaged[damaged.size() / 2] ^= 0x5A;
  write_file(dir.file("bad.trace.xz"), damaged);
  auto t = read_trace(dir.file("bad.trace.xz"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Code::kCorruption);
  EXPECT_THAT(t.status().message(), HasSubstr("bad.trace.xz"));
  EXPECT_THAT(t.status().message(), HasSubstr("compressed byte offset"));

  write_file(dir.file("cut.trace.xz"), xz.substr(0, xz.size() - 20));
  t = read_trace(dir.file("cut.trace.xz"));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("cut.trace.xz"));

  write_file(dir.file("plain.trace.xz"), cache2k_bytes({1, 2, 3}));
  t = read_trace(dir.file("plain.trace.xz"));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("not an xz file"));
}

TEST(ReadText, XzCompressedTextIsSniffedByMagic) {
  TempDir dir;
  write_file(dir.file("keys.txt"), xz_compress("a\nb\na\n"));  // no .xz suffix
  auto t = read_trace(dir.file("keys.txt"));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->requests, ids({0, 1, 0}));
}

TEST(Densify, RenumbersByFirstAppearance) {
  Trace t = densify("x", {100, 5, 100, 7, 5});
  EXPECT_EQ(t.requests, ids({0, 1, 0, 2, 1}));
  EXPECT_EQ(t.distinct, 3u);
}

}  // namespace trace_test
}  // namespace callcache::sim
