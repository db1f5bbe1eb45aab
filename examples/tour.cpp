// The README's API tour, compiled with the project so it cannot drift.
#include <cstdio>
#include <string>

#include "callcache/cache.h"

struct User {
  std::string name;
  int followers = 0;
};

int main() {
  using namespace std::chrono_literals;

  // 1. An engine with two namespaces (or EngineOptions{} for the seeds' defaults).
  callcache::NamespacePolicy users_policy;
  users_policy.ttl = 5min;
  users_policy.max_entries = 10'000;
  users_policy.max_entries_per_tenant = 2'000;  // one account cannot evict the others
  callcache::NamespacePolicy posts_policy;
  posts_policy.ttl = 1min;
  posts_policy.max_bytes = 64 << 20;
  posts_policy.shared = true;  // public data: one fetch serves every account
  callcache::EngineOptions options;
  options.namespaces = {{"user", users_policy}, {"post", posts_policy}};
  auto engine = callcache::Engine::create(options);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().to_string().c_str());
    return 1;
  }

  // 2. Typed fronts. Unknown namespaces are errors, not silent defaults.
  auto users = callcache::Cache<User>::open(**engine, "user").value();
  auto posts = callcache::Cache<std::string>::open(**engine, "post").value();

  // 3. Tenants come from secrets through a keyed hash: the token is never stored.
  callcache::TenantId bot = callcache::tenant_from_secret("123456:ABC-bot-token");

  // 4. put / get. A hit is a Ref<V>: shared and immutable, no copy of the value.
  if (auto s = users.put(bot, "user:42", User{"alice", 1200}); !s.ok()) {
    std::fprintf(stderr, "put failed: %s\n", s.to_string().c_str());
  }
  if (auto alice = users.get(bot, "user:42")) {
    std::printf("%s has %d followers\n", (*alice)->name.c_str(), (*alice)->followers);
  }
  (void)posts.put(bot, "post:@channel/17", std::string("hello"), {.ttl = 30s, .tags = {"channel:@channel"}});

  // 5. Invalidation by key, tag, tenant or whole namespace (O(1)).
  (**engine).invalidate_tag("channel:@channel");
  (void)(**engine).invalidate_namespace("user");

  // 6. Statistics as JSON or Prometheus text.
  std::printf("%s\n", (**engine).stats().to_json().c_str());
  return 0;
}
