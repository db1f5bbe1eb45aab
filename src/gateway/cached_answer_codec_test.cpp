// CachedAnswerCodec: the L2 form of a gateway answer, read back from SQLite
// files and Redis servers that other processes write too.
#include <gtest/gtest.h>

#include <string>

#include "gateway/cached_answer.h"

namespace callcache::gateway {
namespace cached_answer_codec_test {

TEST(CachedAnswerCodec, RoundTripsAnAnswer) {
  CachedAnswer a;
  a.status = 429;
  a.content_type = "application/json";
  a.headers = {{"Retry-After", "5"}, {"X-Note", "a: b"}};
  a.body = "{\"ok\":false}\n\nsecond line";  // blank lines in the body are body
  const CachedAnswerCodec codec;
  const std::string bytes = codec.encode(a);
  EXPECT_EQ(bytes,
            "429\napplication/json\nRetry-After: 5\nX-Note: a: b\n\n{\"ok\":false}\n\nsecond line");
  auto back = codec.decode(bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->status, 429);
  EXPECT_EQ(back->content_type, a.content_type);
  ASSERT_EQ(back->headers.size(), 2u);
  EXPECT_EQ(back->headers[1].name, "X-Note");
  EXPECT_EQ(back->headers[1].value, "a: b");
  EXPECT_EQ(back->body, a.body);
  EXPECT_FALSE(back->upstream_failed);
}

TEST(CachedAnswerCodec, EmptyBodyAndNoHeaders) {
  const CachedAnswerCodec codec;
  auto back = codec.decode("204\n\n\n");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->status, 204);
  EXPECT_TRUE(back->content_type.empty());
  EXPECT_TRUE(back->headers.empty());
  EXPECT_TRUE(back->body.empty());
}

TEST(CachedAnswerCodec, AnythingElseIsCorruptionNotACrash) {
  const CachedAnswerCodec codec;
  for (std::string bad :
       {"", "200", "200\n", "200\ntext/plain\n", "200\ntext/plain\nNoColon\n\nx", "99\n\n\n",
        "600\n\n\n", "-200\n\n\n", "+200\n\n\n", "2x0\n\n\n", "99999999999999999999\n\n\n",
        "\xff"
        "cc\x01garbage"}) {
    auto got = codec.decode(bad);
    EXPECT_FALSE(got.ok()) << bad;
    if (!got.ok()) {
      EXPECT_EQ(got.status().code(), Code::kCorruption) << bad;
    }
  }
}

}  // namespace cached_answer_codec_test
}  // namespace callcache::gateway
