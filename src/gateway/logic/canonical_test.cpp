#include "canonical.h"

#include <gtest/gtest.h>

namespace callcache::gateway::logic {
namespace canonical_test {

const RequestLimits kLimits;

std::string key_of_form(std::string_view form) {
  Params p;
  Status s = add_urlencoded(p, form, kLimits);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return key_string(p);
}

std::string key_of_json(std::string_view json) {
  Params p;
  Status s = add_json_object(p, json, kLimits);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return key_string(p);
}

TEST(Canonical, NumericIdsAreOneKeyWhateverTheirSpelling) {
  const std::string form = key_of_form("chat_id=-100123");
  EXPECT_EQ(form, "chat_id=-100123");
  EXPECT_EQ(key_of_json(R"({"chat_id": "-100123"})"), form);
  EXPECT_EQ(key_of_json(R"({"chat_id":-100123})"), form);
  EXPECT_EQ(key_of_form("chat_id=%2D100123"), form);
}

TEST(Canonical, KeyOrderAndWhitespaceDoNotMatter) {
  EXPECT_EQ(key_of_form("user_id=5&chat_id=7"), key_of_form("chat_id=7&user_id=5"));
  EXPECT_EQ(key_of_json(R"({"user_id":5,"chat_id":7})"),
            key_of_json("{\n  \"chat_id\" : 7 ,\t\"user_id\":\"5\"}"));
  EXPECT_EQ(key_of_json(R"({"user_id":5,"chat_id":7})"), key_of_form("chat_id=7&user_id=5"));
}

TEST(Canonical, NestedJsonIsCanonicalInBodyAndInFormValues) {
  // The same scope sent three ways: JSON object, url-encoded JSON text with
  // other key order and whitespace, and a string id inside.
  std::string a = key_of_json(R"({"scope":{"type":"chat","chat_id":-100}})");
  std::string b = key_of_form("scope=%7B%22chat_id%22%3A+%22-100%22%2C+%22type%22%3A%22chat%22%7D");
  std::string c = key_of_json(R"({"scope":"{\"type\": \"chat\", \"chat_id\": -100}"})");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_NE(a.find(percent_encode(R"({"chat_id":-100,"type":"chat"})")), std::string::npos) << a;
}

TEST(Canonical, ScalarsAndNull) {
  EXPECT_EQ(key_of_json(R"({"for_channels":true})"), key_of_form("for_channels=true"));
  EXPECT_EQ(key_of_json(R"({"a":null,"b":1})"), "b=1");  // null = absent
  EXPECT_EQ(key_of_json(R"({"x":1.5})"), "x=1.5");
  // Not integers in canonical form: kept as text, so distinct.
  EXPECT_NE(key_of_form("chat_id=007"), key_of_form("chat_id=7"));
}

TEST(Canonical, NonJsonTextValuesAreKeptVerbatim) {
  Params p;
  ASSERT_TRUE(add_urlencoded(p, "text=%7Bnot+json&caption=%5B1%2C", kLimits).ok());
  EXPECT_EQ(*p.find("text"), "{not json");
  EXPECT_EQ(*p.find("caption"), "[1,");
}

TEST(Canonical, SeparatorsInValuesCannotForgeOtherKeys) {
  EXPECT_NE(key_of_json(R"({"a":"1&b=2"})"), key_of_json(R"({"a":"1","b":"2"})"));
  EXPECT_NE(key_of_form("a=1%26b%3D2"), key_of_form("a=1&b=2"));
}

TEST(Canonical, DuplicateParametersAreErrors) {
  Params p;
  Status s = add_urlencoded(p, "chat_id=1&chat_id=1", kLimits);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("chat_id"), std::string::npos) << s.message();

  Params q;
  s = add_json_object(q, R"({"chat_id":1,"chat_id":2})", kLimits);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("more than once"), std::string::npos) << s.message();

  // Across sources (query then body).
  Params r;
  ASSERT_TRUE(add_urlencoded(r, "chat_id=1", kLimits).ok());
  EXPECT_FALSE(add_json_object(r, R"({"chat_id":1})", kLimits).ok());
}

TEST(Canonical, MalformedJsonBodies) {
  for (const char* bad : {"{", "{\"a\":}", "[1,2]", "\"text\"", "42", "nul", "{\"a\":1}x"}) {
    Params p;
    Status s = add_json_object(p, bad, kLimits);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_TRUE(s.message().starts_with("Bad Request:")) << s.message();
  }
  Params p;
  Status s = add_json_object(p, "[1]", kLimits);
  EXPECT_NE(s.message().find("must be an object"), std::string::npos) << s.message();
}

TEST(Canonical, RawNulIsNeverJson) {
  // The parser would stop at the NUL: these would all be {"chat_id":1}.
  using namespace std::string_literals;
  for (const std::string& bad :
       {"{\"chat_id\":1}\0"s, "{\"chat_id\":1}\0{\"chat_id\":2}"s, "{\"chat_id\":1\0}"s}) {
    Params p;
    EXPECT_EQ(add_json_object(p, bad, kLimits).code(), Code::kInvalidArgument);
    EXPECT_FALSE(canonical_json(bad, 32).ok());
    // A form value that is not JSON is kept verbatim: a different key.
    EXPECT_EQ(canonical_text_value(bad, kLimits), bad);
  }
}

TEST(Canonical, TooDeepJsonIsRejectedBeforeParsing) {
  std::string deep = "{\"a\":" + std::string(10000, '[') + std::string(10000, ']') + "}";
  Params p;
  Status s = add_json_object(p, deep, kLimits);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("deeper"), std::string::npos) << s.message();
  // Brackets inside strings do not count.
  EXPECT_TRUE(add_json_object(p, "{\"t\":\"" + std::string(100, '[') + "\"}", kLimits).ok());
  EXPECT_EQ(json_nesting_depth("[[[\"]]]\"]]]"), 3u);
}

TEST(Canonical, BadNamesAndPercentEncoding) {
  Params p;
  EXPECT_EQ(add_urlencoded(p, "chat%20id=1", kLimits).code(), Code::kInvalidArgument);
  EXPECT_EQ(add_urlencoded(p, "=1", kLimits).code(), Code::kInvalidArgument);
  EXPECT_EQ(add_urlencoded(p, "a=%zz", kLimits).code(), Code::kInvalidArgument);
  EXPECT_EQ(add_urlencoded(p, "a=%4", kLimits).code(), Code::kInvalidArgument);
  EXPECT_EQ(add_urlencoded(p, "a=100%", kLimits).code(), Code::kInvalidArgument);
  EXPECT_EQ(add_json_object(p, R"({"a-b":1})", kLimits).code(), Code::kInvalidArgument);
  EXPECT_TRUE(add_urlencoded(p, "&&a=1&", kLimits).ok());  // empty pieces skipped
  EXPECT_EQ(*p.find("a"), "1");
}

TEST(Canonical, ParameterCountIsBounded) {
  RequestLimits limits;
  limits.max_params = 3;
  Params p;
  EXPECT_TRUE(add_urlencoded(p, "a=1&b=2&c=3", limits).ok());
  EXPECT_FALSE(add_urlencoded(p, "d=4", limits).ok());
  Params q;
  EXPECT_FALSE(add_json_object(q, R"({"a":1,"b":2,"c":3,"d":4})", limits).ok());
}

TEST(Canonical, CanonicalIntegers) {
  for (const char* yes : {"0", "7", "-1", "-1001234567890", "9223372036854775807"}) {
    EXPECT_TRUE(is_canonical_integer(yes)) << yes;
  }
  for (const char* no :
       {"", "-", "-0", "007", "+1", "1.0", "1e3", " 1", "9223372036854775808", "abc", "12a"}) {
    EXPECT_FALSE(is_canonical_integer(no)) << no;
  }
}

TEST(Canonical, KeyStringOverSelectedNames) {
  Params p;
  ASSERT_TRUE(add_urlencoded(p, "c=3&a=1&b=2", kLimits).ok());
  EXPECT_EQ(key_string(p, {"a", "c", "z"}), "a=1&c=3");
  EXPECT_EQ(key_string(p, {}), "");
  EXPECT_EQ(key_string(p), "a=1&b=2&c=3");
}

TEST(Canonical, CanonicalJsonOfDocuments) {
  EXPECT_EQ(*canonical_json(R"({ "b" : [ 1 , "2" ], "a" : {"y":1,"x":"-3"} })", 8),
            R"({"a":{"x":-3,"y":1},"b":[1,2]})");
  EXPECT_FALSE(canonical_json("{", 8).ok());
  EXPECT_FALSE(canonical_json("[[[[1]]]]", 3).ok());
}

}  // namespace canonical_test
}  // namespace callcache::gateway::logic
