#include "rules.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "test_util.h"
#include "yaml_reader.h"

namespace callcache::gateway::logic {
namespace rules_test {

using namespace std::chrono_literals;

constexpr const char* kSnsRules = R"(
rules:
  - match: GET /templates/{id}
    name: template
    namespace: sns
    ttl: 5m
    key: [query.lang, header.Accept-Language]
    tenant: [header.x-api-key]
  - match: GET /templates*
    namespace: sns
    ttl: 1m
    key: [query.*]
    tenant: [header.x-api-key]
  - match: GET /public/{kind}/{id}.json
    namespace: public
  - match: GET /health
    cache: false
  - match: POST /templates/*
    invalidates: [GET /templates*]
  - match: PUT /templates/{id}
    invalidates: [template, GET   /templates*]
  - match: "* /purge/{id}"
    invalidates: [template]
)";

Rules load(const char* yaml = kSnsRules) {
  auto doc = config::load_string(yaml);
  EXPECT_TRUE(doc.ok());
  auto r = parse_rules((*doc)["rules"]);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(*r) : Rules{};
}

Status load_error(const std::string& yaml) {
  auto doc = config::load_string(yaml);
  if (!doc.ok()) return doc.status();
  auto r = parse_rules((*doc)["rules"]);
  return r.ok() ? Status() : r.status();
}

testing::OwnedRequest req(std::string method, std::string target,
                          std::vector<std::pair<std::string, std::string>> headers = {}) {
  testing::OwnedRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.headers = std::move(headers);
  return r;
}

RulePlan plan_of(const Rules& rules, testing::OwnedRequest r) {
  auto p = plan_generic(r.view(), rules);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? std::move(*p) : RulePlan{};
}

bool shares_tag(const RulePlan& write, const RulePlan& read) {
  return std::any_of(write.invalidate_tags.begin(), write.invalidate_tags.end(),
                     [&](const std::string& t) {
                       return std::find(read.tags.begin(), read.tags.end(), t) != read.tags.end();
                     });
}

TEST(Patterns, Matching) {
  auto p = compile_pattern("/templates/{id}");
  ASSERT_TRUE(p.ok());
  std::vector<std::string_view> caps;
  EXPECT_TRUE(match_pattern(*p, "/templates/42", caps));
  ASSERT_EQ(caps.size(), 1u);
  EXPECT_EQ(caps[0], "42");
  caps.clear();
  EXPECT_FALSE(match_pattern(*p, "/templates/", caps));
  EXPECT_FALSE(match_pattern(*p, "/templates/42/versions", caps));
  EXPECT_FALSE(match_pattern(*p, "/templates", caps));
  EXPECT_TRUE(caps.empty());

  auto star = compile_pattern("/templates*");
  for (const char* yes : {"/templates", "/templates/", "/templates/1/2", "/templatesXYZ"}) {
    EXPECT_TRUE(match_pattern(*star, yes, caps)) << yes;
  }
  EXPECT_FALSE(match_pattern(*star, "/template", caps));

  auto dotted = compile_pattern("/public/{kind}/{id}.json");
  caps.clear();
  EXPECT_TRUE(match_pattern(*dotted, "/public/img/a.b.json", caps));
  ASSERT_EQ(caps.size(), 2u);
  EXPECT_EQ(caps[1], "a.b");

  // Pathological patterns stay bounded (no exponential backtracking).
  auto many = compile_pattern("/*a*a*a*a*a*a*a*a*b");
  caps.clear();
  EXPECT_FALSE(match_pattern(*many, "/" + std::string(5000, 'a'), caps));
}

TEST(Patterns, CompileErrors) {
  for (const char* bad :
       {"", "templates", "/t/{id", "/t/{}", "/t/{a-b}", "/t/{id}/{id}", "/t?x", "/t}"}) {
    EXPECT_FALSE(compile_pattern(bad).ok()) << bad;
  }
}

TEST(Rules, CachedReadKeyAndTenant) {
  Rules rules = load();
  RulePlan p = plan_of(rules, req("GET", "/templates/42?lang=en&ignored=1",
                                  {{"X-Api-Key", "secret-key-1"}, {"accept-language", "fr"}}));
  ASSERT_EQ(p.kind, RulePlan::Kind::kCachedRead);
  EXPECT_EQ(p.rule->name, "template");
  EXPECT_EQ(p.ns, "sns");
  EXPECT_EQ(p.ttl, 5min);
  EXPECT_EQ(p.key, "template?p.id=42&q.lang=en&h.accept-language=fr");
  EXPECT_EQ(p.tenant, tenant_from_secret("h.x-api-key=secret-key-1"));
  EXPECT_NE(p.tenant, kSharedTenant);
  for (const auto& s : p.tags) EXPECT_EQ(s.find("secret-key-1"), std::string::npos) << s;
  EXPECT_EQ(p.key.find("secret-key-1"), std::string::npos);
  // Percent-encoding of the captured id does not split the key.
  RulePlan q = plan_of(rules, req("GET", "/templates/%34%32?lang=en",
                                  {{"x-api-key", "secret-key-1"}, {"Accept-Language", "fr"}}));
  EXPECT_EQ(q.key, p.key);
  // Another tenant: another tenant id, same key.
  RulePlan other = plan_of(rules, req("GET", "/templates/42?lang=en",
                                      {{"x-api-key", "secret-key-2"}, {"accept-language", "fr"}}));
  EXPECT_EQ(other.key, p.key);
  EXPECT_NE(other.tenant, p.tenant);
}

TEST(Rules, AllQueryKeyIsSorted) {
  Rules rules = load();
  RulePlan a = plan_of(rules, req("GET", "/templates?page=2&limit=10", {{"x-api-key", "k"}}));
  RulePlan b = plan_of(rules, req("GET", "/templates?limit=10&page=2", {{"x-api-key", "k"}}));
  ASSERT_EQ(a.kind, RulePlan::Kind::kCachedRead);
  EXPECT_EQ(a.rule->name, "GET /templates*");
  EXPECT_EQ(a.key, "GET /templates*?q.limit=10&q.page=2");
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.ttl, 1min);
}

TEST(Rules, MissingTenantIsNeverCached) {
  Rules rules = load();
  RulePlan p = plan_of(rules, req("GET", "/templates/42"));
  EXPECT_EQ(p.kind, RulePlan::Kind::kPassthrough);
  EXPECT_EQ(p.reason, "no tenant");
}

TEST(Rules, SharedTenantWithoutTenancyAndUnmatched) {
  Rules rules = load();
  RulePlan pub = plan_of(rules, req("GET", "/public/img/7.json"));
  ASSERT_EQ(pub.kind, RulePlan::Kind::kCachedRead);
  EXPECT_EQ(pub.tenant, kSharedTenant);
  EXPECT_FALSE(pub.ttl.has_value());
  EXPECT_EQ(pub.key, "GET /public/{kind}/{id}.json?p.kind=img&p.id=7");

  RulePlan health = plan_of(rules, req("GET", "/health"));
  EXPECT_EQ(health.kind, RulePlan::Kind::kPassthrough);
  ASSERT_NE(health.rule, nullptr);
  RulePlan none = plan_of(rules, req("GET", "/nothing/here"));
  EXPECT_EQ(none.kind, RulePlan::Kind::kPassthrough);
  EXPECT_EQ(none.rule, nullptr);
  EXPECT_EQ(none.reason, "no rule");
  // The method matters: DELETE /templates/1 matches no rule.
  EXPECT_EQ(plan_of(rules, req("DELETE", "/templates/1")).rule, nullptr);
}

TEST(Rules, WritesInvalidateWhatTheyName) {
  Rules rules = load();
  const std::vector<std::pair<std::string, std::string>> alice = {{"x-api-key", "alice"}};
  const std::vector<std::pair<std::string, std::string>> bob = {{"x-api-key", "bob"}};
  RulePlan list = plan_of(rules, req("GET", "/templates?page=1", alice));
  RulePlan one = plan_of(rules, req("GET", "/templates/42", alice));
  RulePlan two = plan_of(rules, req("GET", "/templates/43", alice));
  RulePlan bobs_list = plan_of(rules, req("GET", "/templates?page=1", bob));

  // POST /templates/* → GET /templates* (all of it, for this tenant).
  RulePlan post = plan_of(rules, req("POST", "/templates/new", alice));
  ASSERT_EQ(post.kind, RulePlan::Kind::kInvalidate);
  EXPECT_TRUE(shares_tag(post, list));
  EXPECT_FALSE(shares_tag(post, one));  // another rule
  EXPECT_FALSE(shares_tag(post, bobs_list));

  // PUT /templates/{id} → template {id} exactly, and the list.
  RulePlan put = plan_of(rules, req("PUT", "/templates/42", alice));
  ASSERT_EQ(put.kind, RulePlan::Kind::kInvalidate);
  EXPECT_TRUE(shares_tag(put, one));
  EXPECT_FALSE(shares_tag(put, two));
  EXPECT_TRUE(shares_tag(put, list));
  EXPECT_FALSE(shares_tag(put, bobs_list));

  // A write that captures {id} under another pattern still scopes by id.
  RulePlan purge = plan_of(rules, req("DELETE", "/purge/43", alice));
  EXPECT_TRUE(shares_tag(purge, two));
  EXPECT_FALSE(shares_tag(purge, one));
  // No tenant header on the write: nothing of the tenanted rules is named.
  EXPECT_TRUE(plan_of(rules, req("POST", "/templates/x")).invalidate_tags.empty());
}

TEST(Rules, NamespacesUsedAndChecked) {
  Rules rules = load();
  EXPECT_EQ(rules.namespaces_used(), (std::vector<std::string>{"public", "sns"}));
  std::vector<NamespaceSpec> ns = {{"sns", {}}};
  Status s = check_namespaces(rules, ns);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("rules[2].namespace"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("public"), std::string::npos) << s.message();
  ns.push_back({"public", {}});
  EXPECT_TRUE(check_namespaces(rules, ns).ok());
}

TEST(Rules, ErrorsNameTheEntryAndKey) {
  struct Case {
    const char* yaml;
    std::vector<const char*> needles;
  } cases[] = {
      {"rules: {a: 1}", {"rules", "list"}},
      {"rules:\n  - namespace: x\n", {"rules[0].match", "required"}},
      {"rules:\n  - match: templates\n    namespace: x\n", {"rules[0].match", "templates"}},
      {"rules:\n  - match: get /t\n    namespace: x\n", {"rules[0].match", "get"}},
      {"rules:\n  - match: GET /t/{id\n    namespace: x\n", {"rules[0].match", "unclosed"}},
      {"rules:\n  - match: GET /t\n    namespace: x\n    ttl: forever\n",
       {"rules[0].ttl", "forever"}},
      {"rules:\n  - match: GET /t\n    namespace: x\n    key: [path.id]\n",
       {"rules[0].key", "path.id"}},
      {"rules:\n  - match: GET /t\n    namespace: x\n    tenant: [query.*]\n",
       {"rules[0].tenant", "query.*"}},
      {"rules:\n  - match: GET /t\n    namespace: x\n    colour: red\n",
       {"rules[0].colour", "unknown key"}},
      {"rules:\n  - match: GET /t\n", {"rules[0]", "needs namespace"}},
      {"rules:\n  - match: GET /t\n    namespace: x\n    invalidates: [GET /t]\n",
       {"rules[0].invalidates", "not both"}},
      {"rules:\n  - match: POST /t\n    invalidates: [GET /nothing]\n",
       {"rules[0].invalidates[0]", "GET /nothing"}},
      {"rules:\n  - match: GET /h\n    cache: false\n  - match: POST /t\n    invalidates: [GET "
       "/h]\n",
       {"rules[1].invalidates[0]", "does not cache"}},
      {"rules:\n  - match: GET /a\n    namespace: x\n  - match: GET /b\n    name: GET /a\n    "
       "namespace: x\n",
       {"rules[1].name", "already used by rules[0]"}},
      {"rules:\n  - match: POST /t\n    invalidates: [x]\n    ttl: 5s\n",
       {"rules[0].ttl", "only caching"}},
      // Names and match texts end up in single-line keys and tags.
      {"rules:\n  - match: GET /t\n    name: \"a\\tb\"\n    namespace: x\n",
       {"rules[0].name", "control character", "'a?b'"}},
      {"rules:\n  - match: \"GET /t\\nx\"\n    namespace: x\n",
       {"rules[0].match", "control character", "'GET /t?x'"}},
      {"rules:\n  - match: GET /t\n    name: \"\\x7f\"\n    namespace: x\n",
       {"rules[0].name", "control character"}},
  };
  for (const auto& c : cases) {
    Status s = load_error(c.yaml);
    ASSERT_FALSE(s.ok()) << c.yaml;
    for (const char* n : c.needles) {
      EXPECT_NE(s.message().find(n), std::string::npos)
          << "missing '" << n << "' in " << s.message();
    }
  }
  // No rules at all is fine.
  EXPECT_TRUE(load_error("other: 1").ok());
}

TEST(Rules, BadRequestsAreErrors) {
  Rules rules = load();
  auto r = req("GET", "/templates/42?lang=%zz", {{"x-api-key", "k"}});
  auto p = plan_generic(r.view(), rules);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(http_status_of(p.status()), 400);
  auto bad_id = req("GET", "/templates/%G1", {{"x-api-key", "k"}});
  EXPECT_FALSE(plan_generic(bad_id.view(), rules).ok());
  auto long_target = req("GET", "/templates/" + std::string(20000, 'a'));
  EXPECT_FALSE(plan_generic(long_target.view(), rules).ok());
}

}  // namespace rules_test
}  // namespace callcache::gateway::logic
