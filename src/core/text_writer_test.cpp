#include "callcache/text_writer.h"

#include <gtest/gtest.h>

#include <string>

namespace callcache::text {
namespace text_writer_test {

TEST(TextWriterTest, JsonStringEscapesQuotesBackslashesAndControlBytes) {
  EXPECT_EQ(json_string(""), "\"\"");
  EXPECT_EQ(json_string("plain"), "\"plain\"");
  EXPECT_EQ(json_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json_string("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(json_string(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
  EXPECT_EQ(json_string(std::string("nul\0end", 7)), "\"nul\\u0000end\"");
  // UTF-8 passes through unchanged.
  EXPECT_EQ(json_string("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

TEST(TextWriterTest, AppendJsonStringKeepsWhatIsThere) {
  std::string out = "{\"k\":";
  append_json_string(out, "v\"");
  EXPECT_EQ(out, "{\"k\":\"v\\\"\"");
}

TEST(TextWriterTest, LabelValueEscapesOnlyWhatPrometheusNames) {
  EXPECT_EQ(label_value("a\\b\"c\nd\te"), "a\\\\b\\\"c\\nd\te");
  std::string out = "x=\"";
  append_label_value(out, "q\"");
  EXPECT_EQ(out, "x=\"q\\\"");
}

}  // namespace text_writer_test
}  // namespace callcache::text
