#include "callcache/codec.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace callcache {
namespace codec_test {

struct User {
  int id = 0;
  std::string name;
  friend bool operator==(const User&, const User&) = default;
};
void to_json(nlohmann::json& j, const User& u) { j = {{"id", u.id}, {"name", u.name}}; }
void from_json(const nlohmann::json& j, User& u) {
  j.at("id").get_to(u.id);
  j.at("name").get_to(u.name);
}

static_assert(Codec<StringCodec, std::string>);
static_assert(Codec<BytesCodec<std::vector<std::uint8_t>>, std::vector<std::uint8_t>>);
static_assert(Codec<JsonCodec<User>, User>);
static_assert(std::is_same_v<DefaultCodec<std::string>, StringCodec>);
static_assert(std::is_same_v<DefaultCodec<User>, JsonCodec<User>>);

// A user-supplied codec: an int as decimal text.
struct DecimalCodec {
  std::string encode(int v) const { return std::to_string(v); }
  Result<int> decode(std::string_view s) const {
    if (s.empty()) return Status::corruption("empty");
    return std::stoi(std::string(s));
  }
};
static_assert(Codec<DecimalCodec, int>);

TEST(Codec, StringAndBytesRoundTripBinarySafe) {
  std::string s("a\0b\xff", 4);
  EXPECT_EQ(*StringCodec{}.decode(StringCodec{}.encode(s)), s);
  std::vector<std::uint8_t> b = {0, 1, 255, 0};
  BytesCodec<std::vector<std::uint8_t>> bc;
  EXPECT_EQ(bc.encode(b).size(), 4u);
  EXPECT_EQ(*bc.decode(bc.encode(b)), b);
}

TEST(Codec, JsonRoundTripAndCorruption) {
  JsonCodec<User> c;
  User u{42, "alice"};
  std::string bytes = c.encode(u);
  EXPECT_EQ(bytes, R"({"id":42,"name":"alice"})");
  EXPECT_EQ(*c.decode(bytes), u);
  auto bad = c.decode("{\"id\": \"x\"}");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kCorruption);
  EXPECT_FALSE(c.decode("not json").ok());
  JsonCodec<std::map<std::string, int>> mc;
  EXPECT_EQ(mc.decode(mc.encode({{"a", 1}}))->at("a"), 1);
}

TEST(Compression, SmallValuesStayRawLargeOnesAreCompressed) {
  CompressionOptions opt{.threshold = 64, .level = 3};
  std::string small = "hello";
  std::string f = frame_value(small, opt);
  ASSERT_EQ(f.size(), small.size() + 1);
  EXPECT_EQ(static_cast<std::uint8_t>(f[0]), kRawFrame);
  EXPECT_EQ(*unframe_value(f), small);

  std::string big(10000, 'x');
  std::string g = frame_value(big, opt);
  EXPECT_EQ(static_cast<std::uint8_t>(g[0]), kZstdFrame);
  EXPECT_LT(g.size(), 200u);
  EXPECT_EQ(*unframe_value(g), big);
}

TEST(Compression, IncompressibleDataIsStoredRaw) {
  std::mt19937 rng(1);
  std::string noise(4096, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  std::string f = frame_value(noise, {.threshold = 16});
  EXPECT_EQ(static_cast<std::uint8_t>(f[0]), kRawFrame);
  EXPECT_EQ(*unframe_value(f), noise);
}

TEST(Compression, MixedThresholdsStayReadable) {
  std::string v(5000, 'y');
  std::string compressed = frame_value(v, {.threshold = 100});
  std::string raw = frame_value(v, {.threshold = 0});
  EXPECT_NE(compressed, raw);
  EXPECT_EQ(*unframe_value(compressed), v);
  EXPECT_EQ(*unframe_value(raw), v);
}

TEST(Compression, BadFramesAreCorruption) {
  EXPECT_EQ(unframe_value("").status().code(), Code::kCorruption);
  EXPECT_EQ(unframe_value("\x07zz").status().code(), Code::kCorruption);
  std::string g = frame_value(std::string(5000, 'z'), {.threshold = 10});
  g.resize(g.size() - 3);
  EXPECT_EQ(unframe_value(g).status().code(), Code::kCorruption);
}

TEST(Compression, UnframedValuesNeverExceedTheLimit) {
  const std::string v(4096, 'q');
  const std::string compressed = frame_value(v, {.threshold = 10});
  const std::string raw = frame_value(v, {.threshold = 0});
  ASSERT_EQ(static_cast<std::uint8_t>(compressed[0]), kZstdFrame);
  EXPECT_EQ(*unframe_value(compressed, 4096), v);
  EXPECT_EQ(*unframe_value(raw, 4096), v);
  for (const std::string& f : {compressed, raw}) {
    auto r = unframe_value(f, 4095);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kCorruption);
    EXPECT_NE(r.status().message().find("over the limit of 4095"), std::string::npos)
        << r.status().message();
  }
}

TEST(Compression, AFewBytesCannotClaimGigabytes) {
  // A damaged (or hostile) 17-byte value whose zstd frame header claims 2 GiB:
  // refused before anything is allocated, whatever the limit.
  std::string bomb = std::string("\x01\x28\xb5\x2f\xfd\xe0", 6) +
                     std::string("\xff\xff\xff\x7f\x00\x00\x00\x00", 8) +
                     std::string("\x01\x00\x00", 3);
  auto r = unframe_value(bomb);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("more than its 16 bytes can hold"), std::string::npos)
      << r.status().message();
}

}  // namespace codec_test
}  // namespace callcache
