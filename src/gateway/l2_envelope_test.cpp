#include "gateway/l2_envelope.h"

#include <gtest/gtest.h>

namespace callcache::gateway {
namespace {

TEST(L2Envelope, RoundTripsTimeTagsAndBody) {
  auto bytes = encode_l2_envelope(1700000000123, {"tg:1:getchat", "rule:ab:t:p.id=1"},
                                  "{\"ok\":true,\"result\":\"a\\nb\"}\n");
  ASSERT_TRUE(bytes);
  EXPECT_EQ(
      *bytes,
      "cc1\n1700000000123\ntg:1:getchat\trule:ab:t:p.id=1\n{\"ok\":true,\"result\":\"a\\nb\"}\n");
  auto e = decode_l2_envelope(*bytes);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->stored_ms, 1700000000123);
  EXPECT_EQ(e->tags, (std::vector<std::string>{"tg:1:getchat", "rule:ab:t:p.id=1"}));
  EXPECT_EQ(e->body, "{\"ok\":true,\"result\":\"a\\nb\"}\n");

  auto untagged = decode_l2_envelope(*encode_l2_envelope(5, {}, ""));
  ASSERT_TRUE(untagged);
  EXPECT_TRUE(untagged->tags.empty());
  EXPECT_EQ(untagged->body, "");
}

TEST(L2Envelope, TagsThatWouldSplitTheTagLineAreNotStored) {
  // A tag with a newline would move its tail into the body of the answer.
  EXPECT_FALSE(encode_l2_envelope(1, {"rule:ab:a\nb"}, "body"));
  EXPECT_FALSE(encode_l2_envelope(1, {"a", "b\tc"}, "body"));
}

TEST(L2Envelope, AnythingElseIsAMiss) {
  for (std::string_view bad :
       {"", "cc1", "cc1\n", "cc1\n12", "cc1\n12\n", "cc2\n12\n\nbody", "cc1\n-5\n\nbody",
        "cc1\nx12\n\nbody", "cc1\n12x\n\nbody", "cc1\n99999999999999999999\n\nbody"}) {
    EXPECT_FALSE(decode_l2_envelope(bad)) << bad;
  }
  EXPECT_EQ(decode_marker_ms("1700000000123"), 1700000000123);
  EXPECT_EQ(decode_marker_ms(""), -1);
  EXPECT_EQ(decode_marker_ms("12 "), -1);
  EXPECT_EQ(decode_marker_ms("99999999999999999999"), -1);
}

}  // namespace
}  // namespace callcache::gateway
