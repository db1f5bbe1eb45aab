// Fuzz-ish robustness: random and mutated inputs into every parser of the
// gateway logic. Bounded iterations with a fixed seed (reproducible); the
// property is "never crashes, never throws, errors are well-formed". Under
// ASan/UBSan (CI) this also checks memory safety. Coverage-guided fuzzing of
// the same parsers, with stronger properties, is in fuzz/ (bot_api_request,
// canonical, rules); this test keeps a fixed, fast sweep in every build.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "plan.h"
#include "rules.h"
#include "telegram_call.h"
#include "test_util.h"
#include "yaml_reader.h"

namespace callcache::gateway::logic {
namespace logic_fuzz_test {

constexpr int kIterations = 20000;

class Fuzzer {
 public:
  explicit Fuzzer(std::uint32_t seed) : rng_(seed) {}

  std::size_t below(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }

  std::string bytes(std::size_t max_len) {
    std::string s(below(max_len + 1), '\0');
    for (char& c : s) c = static_cast<char>(below(256));
    return s;
  }

  // Text biased towards the characters parsers care about.
  std::string syntax(std::size_t max_len) {
    static const std::string kAlphabet =
        "{}[]\":,%+&=?/\\ \t\n0123456789-.abcdefghijklmnopqrstuvwxyzAZ_@*etrufalsnul";
    std::string s(below(max_len + 1), '\0');
    for (char& c : s)
      c = below(10) == 0 ? static_cast<char>(below(256)) : kAlphabet[below(kAlphabet.size())];
    return s;
  }

  // Flips, inserts and deletes a few bytes of `s`.
  std::string mutate(std::string s) {
    int n = 1 + static_cast<int>(below(4));
    for (int i = 0; i < n; ++i) {
      switch (below(3)) {
        case 0:
          if (!s.empty()) s[below(s.size())] = static_cast<char>(below(256));
          break;
        case 1:
          s.insert(s.begin() + static_cast<long>(below(s.size() + 1)),
                   static_cast<char>(below(256)));
          break;
        default:
          if (!s.empty()) s.erase(below(s.size()), 1 + below(3));
      }
    }
    return s;
  }

 private:
  std::mt19937 rng_;
};

void expect_well_formed_error(const Status& s) {
  ASSERT_FALSE(s.ok());
  int status = http_status_of(s);
  EXPECT_TRUE(status == 400 || status == 404 || status == 413) << s.to_string();
  auto j = nlohmann::json::parse(error_json(s), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << error_json(s);
  EXPECT_EQ(j["error_code"], status);
}

TEST(LogicFuzz, TelegramParserAndPlannerNeverCrash) {
  auto preset = builtin_preset();
  ASSERT_TRUE(preset.ok());
  PostWriteState state(1024);
  ManualClock clock;
  Fuzzer f(12345);
  const std::vector<std::string> seeds_targets = {
      testing::bot("getChat") + "?chat_id=-100123",
      testing::bot("sendMessage") + "?chat_id=1&text=hi%20there",
      testing::bot("setChatTitle") + "?chat_id=-5&title=x",
      std::string("/file/bot") + testing::kToken + "/photos/a.jpg",
      testing::bot("getMyCommands") + "?scope=%7B%22type%22%3A%22chat%22%2C%22chat_id%22%3A1%7D",
  };
  const std::vector<std::string> seed_bodies = {
      R"({"chat_id":-100,"user_id":"7","scope":{"type":"chat","chat_id":"-100"}})",
      "chat_id=-100&user_id=7&reply_markup=%7B%22a%22%3A%5B1%5D%7D", "", "[]",
      "{\"a\":{\"b\":[[[]]]}}"};
  const char* content_types[] = {"application/json",
                                 "application/x-www-form-urlencoded",
                                 "multipart/form-data; boundary=x",
                                 "",
                                 "text/plain",
                                 "APPLICATION/JSON ; charset=utf-8"};
  int parsed = 0, rejected = 0;
  for (int i = 0; i < kIterations; ++i) {
    testing::OwnedRequest r;
    r.method = f.below(2) ? "POST" : "GET";
    const std::string& seed_target = seeds_targets[f.below(seeds_targets.size())];
    const std::string& seed_body = seed_bodies[f.below(seed_bodies.size())];
    switch (f.below(4)) {
      case 0:
        r.target = f.mutate(seed_target);
        break;
      case 1:
        r.target = testing::bot(f.syntax(12)) + "?" + f.syntax(40);
        break;
      case 2:
        r.target = seed_target;
        break;
      default:
        r.target = f.bytes(60);
    }
    r.content_type = content_types[f.below(std::size(content_types))];
    switch (f.below(3)) {
      case 0:
        r.body = f.mutate(seed_body);
        break;
      case 1:
        r.body = seed_body;
        break;
      default:
        r.body = f.syntax(80);
    }
    auto call = parse_telegram(r.view());
    if (!call.ok()) {
      ++rejected;
      expect_well_formed_error(call.status());
      continue;
    }
    ++parsed;
    Plan p = plan(*call, *preset, clock.now(), state);
    if (auto* read = std::get_if<CachedRead>(&p)) {
      EXPECT_FALSE(read->key.empty());
      (void)classify_answer(*read, 400, r.body);
    }
    (void)redact_target(r.target);
  }
  // Both paths were exercised.
  EXPECT_GT(parsed, kIterations / 20);
  EXPECT_GT(rejected, kIterations / 20);
}

TEST(LogicFuzz, JsonAndQueryHelpersNeverCrash) {
  Fuzzer f(777);
  const RequestLimits limits;
  const std::string answer = R"({"ok":false,"error_code":429,"parameters":{"retry_after":3}})";
  for (int i = 0; i < kIterations; ++i) {
    std::string s = f.below(2) ? f.syntax(100) : f.mutate(answer);
    (void)canonical_json(s, 16);
    (void)canonical_text_value(s, limits);
    Params p;
    (void)add_json_object(p, s, limits);
    Params q;
    (void)add_urlencoded(q, s, limits);
    (void)parse_query(s);
    (void)percent_decode(s, true);
    (void)cacheable_answer(s);
    (void)retry_after(429, s, std::string_view(s).substr(0, 4));
    (void)json_nesting_depth(s);
  }
  // Deep inputs of every bracket kind, in every helper.
  for (const std::string& deep :
       {std::string(100000, '['), std::string(100000, '{'), "{\"a\":" + std::string(50000, '[')}) {
    EXPECT_FALSE(cacheable_answer(deep));
    EXPECT_FALSE(canonical_json(deep, 32).ok());
    (void)retry_after(429, deep, std::nullopt);
    Params p;
    EXPECT_FALSE(add_json_object(p, deep, limits).ok());
  }
}

TEST(LogicFuzz, RulesParserAndPlannerNeverCrash) {
  auto doc = config::load_string(R"(
rules:
  - {match: "GET /t/{id}", namespace: a, key: ["query.*", header.x], tenant: [header.k]}
  - {match: "GET /t*", namespace: a}
  - {match: "* /x/{a}/{b}*", invalidates: ["GET /t/{id}"]}
)");
  ASSERT_TRUE(doc.ok());
  auto rules = parse_rules((*doc)["rules"]);
  ASSERT_TRUE(rules.ok()) << rules.status().to_string();
  Fuzzer f(99);
  for (int i = 0; i < kIterations; ++i) {
    testing::OwnedRequest r;
    r.method = f.below(2) ? "GET" : "PUT";
    r.target = f.below(2) ? "/t/" + f.syntax(30) : "/x/" + f.syntax(30);
    r.headers = {{"k", f.bytes(8)}, {"X", f.syntax(8)}};
    auto p = plan_generic(r.view(), *rules);
    if (!p.ok()) expect_well_formed_error(p.status());
    (void)compile_pattern(f.syntax(20));
  }
  // Random YAML rule documents: errors, never crashes.
  for (int i = 0; i < 2000; ++i) {
    std::string yaml = "rules:\n  - match: " + f.syntax(20) + "\n    " + f.syntax(30) + "\n";
    auto d = config::load_string(yaml);
    if (d.ok()) (void)parse_rules((*d)["rules"]);
  }
}

TEST(LogicFuzz, PresetParserNeverCrashes) {
  Fuzzer f(4242);
  const std::string base(builtin_preset_text());
  int ok = 0;
  for (int i = 0; i < 300; ++i) {
    std::string text = f.mutate(f.mutate(base));
    auto p = parse_preset_text(text, "fuzz.yaml");
    if (p.ok())
      ++ok;
    else
      EXPECT_TRUE(p.status().message().starts_with("fuzz.yaml: ")) << p.status().message();
  }
  EXPECT_GT(ok, 0);  // small mutations (in comments) keep it valid
}

}  // namespace logic_fuzz_test
}  // namespace callcache::gateway::logic
