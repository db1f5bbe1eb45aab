// Scope registry: task, process and isolated caches; warm starts; per-tenant
// caps across tasks; background sweeping and shutdown. Virtual time.
#include "callcache/scope.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "callcache/cache.h"

namespace callcache {
namespace scope_test {

using namespace std::chrono_literals;

const TenantId kAlice = tenant_from_name("alice");
const TenantId kBob = tenant_from_name("bob");

class ScopeTest : public ::testing::Test {
 protected:
  ScopeOptions options(CacheScope scope) {
    ScopeOptions o;
    o.settings.scope = scope;
    o.settings.cleanup_interval = 30s;
    NamespacePolicy entity;
    entity.ttl = 300s;
    entity.max_entries = 100;
    NamespacePolicy message;
    message.ttl = 60s;
    message.max_entries = 100;
    o.engine.namespaces = {{"entity", entity}, {"message", message}};
    o.engine.clock = &clock_;
    o.scheduler = &sched_;
    return o;
  }

  // One "task": resolves `key` for `tenant` through get_or_load.
  void fetch(TaskScope& task, TenantId tenant, const std::string& key) {
    auto c = Cache<std::string>::open(task.engine(), "entity").value();
    auto r = c.get_or_load(tenant, key, [this, key] {
      ++upstream_calls_;
      return Result<std::string>("entity " + key);
    });
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(**r, "entity " + key);
  }

  ManualClock clock_;
  ManualScheduler sched_{clock_};
  int upstream_calls_ = 0;
};

TEST_F(ScopeTest, ProcessScopeSharesEntriesBetweenConsecutiveTasks) {
  auto reg = ScopeRegistry::create(options(CacheScope::kProcess)).value();
  {
    auto task = reg->begin_task("first").value();
    EXPECT_FALSE(task.warm());
    EXPECT_EQ(task.scope(), CacheScope::kProcess);
    fetch(task, kAlice, "@channel");
  }
  {
    auto task = reg->begin_task("second").value();
    EXPECT_TRUE(task.warm());
    EXPECT_EQ(task.entries_at_start(), 1u);
    fetch(task, kAlice, "@channel");  // a hit: no upstream call
    auto stats = task.engine().stats();
    EXPECT_EQ(stats.namespaces[0].scope, "process");
    EXPECT_EQ(stats.namespaces[0].hits, 1u);
  }
  EXPECT_EQ(upstream_calls_, 1);
  EXPECT_EQ(reg->tasks_started(), 2u);
  EXPECT_EQ(reg->warm_starts(), 1u);
  EXPECT_EQ(reg->tasks_running(), 0u);
}

TEST_F(ScopeTest, TaskScopeStartsColdEveryTimeAndDropsTheCacheAtTaskEnd) {
  auto reg = ScopeRegistry::create(options(CacheScope::kTask)).value();
  std::shared_ptr<Engine> first_engine;
  {
    auto task = reg->begin_task("first").value();
    fetch(task, kAlice, "@channel");
    first_engine = task.share();
    EXPECT_EQ(task.engine().stats().namespaces[0].scope, "task");
    EXPECT_EQ(reg->tasks_running(), 1u);
  }
  EXPECT_TRUE(first_engine->is_shut_down());
  EXPECT_EQ(first_engine->size(), 0u);
  {
    auto task = reg->begin_task("second").value();
    EXPECT_FALSE(task.warm());
    EXPECT_NE(&task.engine(), first_engine.get());
    fetch(task, kAlice, "@channel");
  }
  EXPECT_EQ(upstream_calls_, 2);
  EXPECT_EQ(reg->warm_starts(), 0u);
  EXPECT_EQ(reg->process_engine(), nullptr);
}

TEST_F(ScopeTest, PerTenantCapsHoldAcrossTasksInProcessScope) {
  auto o = options(CacheScope::kProcess);
  o.settings.per_tenant_max_entries = 3;
  auto reg = ScopeRegistry::create(std::move(o)).value();
  for (int t = 0; t < 3; ++t) {
    auto task = reg->begin_task().value();
    for (int i = 0; i < 4; ++i) fetch(task, kAlice, "a" + std::to_string(t * 4 + i));
    fetch(task, kBob, "b" + std::to_string(t));
  }
  auto task = reg->begin_task().value();
  auto c = Cache<std::string>::open(task.engine(), "entity").value();
  int alice = 0, bob = 0;
  for (int i = 0; i < 12; ++i) alice += c.get(kAlice, "a" + std::to_string(i)).has_value();
  for (int i = 0; i < 3; ++i) bob += c.get(kBob, "b" + std::to_string(i)).has_value();
  EXPECT_EQ(alice, 3);  // capped, whatever the number of tasks
  EXPECT_EQ(bob, 3);    // and alice never evicted bob
  EXPECT_GT(task.engine().stats().namespaces[0].evicted(EvictionCause::kTenantCap), 0u);
}

TEST_F(ScopeTest, PerTenantCapsHoldInTaskScopeAndIsolatedCaches) {
  auto o = options(CacheScope::kTask);
  o.settings.per_tenant_max_entries = 2;
  auto reg = ScopeRegistry::create(std::move(o)).value();
  auto task = reg->begin_task().value();
  for (int i = 0; i < 5; ++i) fetch(task, kAlice, "a" + std::to_string(i));
  EXPECT_EQ(task.engine().size(), 2u);
  auto iso = reg->make_isolated().value();
  EXPECT_EQ(iso->policy(iso->find("entity").value()).max_entries_per_tenant, 2u);
  EXPECT_EQ(iso->stats().namespaces[0].scope, "isolated");
}

TEST_F(ScopeTest, ProcessMaxSizeBoundsEveryNamespaceOfTheProcessCache) {
  auto o = options(CacheScope::kProcess);
  o.settings.process_max_entries = 7;
  auto reg = ScopeRegistry::create(std::move(o)).value();
  auto e = reg->process_engine();
  EXPECT_EQ(e->policy(e->find("entity").value()).max_entries, 7u);
  EXPECT_EQ(e->policy(e->find("message").value()).max_entries, 7u);
}

TEST_F(ScopeTest, ProcessCacheIsSweptInTheBackground) {
  auto reg = ScopeRegistry::create(options(CacheScope::kProcess)).value();
  {
    auto task = reg->begin_task().value();
    auto c = Cache<std::string>::open(task.engine(), "message").value();  // ttl 60 s
    ASSERT_TRUE(c.put(kAlice, "m1", "hello").ok());
  }
  EXPECT_EQ(reg->process_engine()->size(), 1u);
  sched_.advance(30s);  // a sweep runs, nothing expired yet
  EXPECT_EQ(reg->process_engine()->size(), 1u);
  sched_.advance(40s);  // expired at 60 s, swept at 60 s: no read needed
  EXPECT_EQ(reg->process_engine()->size(), 0u);
  EXPECT_EQ(reg->process_engine()->stats().total.expirations, 1u);
}

TEST_F(ScopeTest, ShutdownFlushesDropsEverythingStopsTheSweeperAndRefusesTasks) {
  auto reg = ScopeRegistry::create(options(CacheScope::kProcess)).value();
  std::uint64_t seen_by_hook = 0;
  reg->on_shutdown([&](Engine& e) { seen_by_hook = e.size(); });
  auto running = reg->begin_task().value();
  fetch(running, kAlice, "@channel");
  EXPECT_GE(sched_.pending(), 1u);  // the sweep is scheduled
  reg->shutdown();
  EXPECT_EQ(seen_by_hook, 1u);  // the flush hook saw the entries before they were dropped
  EXPECT_TRUE(reg->is_shut_down());
  EXPECT_EQ(reg->process_engine(), nullptr);
  EXPECT_TRUE(running.engine().is_shut_down());
  EXPECT_EQ(running.engine().size(), 0u);
  EXPECT_EQ(sched_.pending(), 0u);  // sweeper stopped
  auto refused = reg->begin_task();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kShutdown);
  reg->shutdown();  // idempotent
}

TEST_F(ScopeTest, DestroyingTheRegistryFlushesTheProcessCache) {
  std::shared_ptr<Engine> engine;
  {
    auto reg = ScopeRegistry::create(options(CacheScope::kProcess)).value();
    auto task = reg->begin_task().value();
    fetch(task, kAlice, "@channel");
    engine = task.share();
  }
  EXPECT_TRUE(engine->is_shut_down());
  EXPECT_EQ(engine->size(), 0u);
}

TEST(ScopeExitTest, ARegistryStillAliveAtExitIsFlushed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ScopeOptions o;
        o.settings.scope = CacheScope::kProcess;
        auto reg = ScopeRegistry::create(std::move(o)).value();
        auto task = reg->begin_task().value();
        auto c = Cache<std::string>::open(task.engine(), "entity").value();
        (void)c.put(kAlice, "k", "v");
        reg->on_shutdown([](Engine& e) {
          std::fprintf(stderr, "flushed %llu entries\n", static_cast<unsigned long long>(e.size()));
        });
        (void)reg.release();  // never destroyed: only the exit handler can flush it
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "flushed 1 entries");
}

TEST_F(ScopeTest, TaskScopeMayOutliveTheRegistry) {
  std::optional<TaskScope> task;
  {
    auto o = options(CacheScope::kTask);
    o.scheduler = nullptr;  // the registry's own scheduler must outlive the engine
    auto reg = ScopeRegistry::create(std::move(o)).value();
    task.emplace(reg->begin_task().value());
  }
  EXPECT_TRUE(task->engine().is_shut_down());  // the registry shut it down
  task.reset();
}

TEST_F(ScopeTest, IsolatedCachesNeverTouchTheRegistry) {
  auto reg = ScopeRegistry::create(options(CacheScope::kProcess)).value();
  auto iso = reg->make_isolated().value();
  auto c = Cache<std::string>::open(*iso, "entity").value();
  ASSERT_TRUE(c.put(kAlice, "k", "v").ok());
  EXPECT_EQ(reg->process_engine()->size(), 0u);
  reg->shutdown();
  EXPECT_FALSE(iso->is_shut_down());
  EXPECT_TRUE(c.get(kAlice, "k"));
}

TEST_F(ScopeTest, BadSettingsAreRejectedWithTheSettingName) {
  auto o = options(CacheScope::kProcess);
  o.settings.cleanup_interval = Duration::zero();
  auto r = ScopeRegistry::create(std::move(o));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("process.cleanup_interval"), std::string::npos);
  auto iso = options(CacheScope::kIsolated);
  EXPECT_EQ(ScopeRegistry::create(std::move(iso)).status().code(), Code::kInvalidArgument);
  auto bad = options(CacheScope::kTask);
  bad.engine.namespaces[0].policy.ttl = Duration::zero();
  auto b = ScopeRegistry::create(std::move(bad));
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("entity"), std::string::npos);
}

// A background refresh queued on the registry's shared scheduler when a
// task-scoped engine is dropped must not run against the dead engine.
TEST_F(ScopeTest, QueuedRefreshOfADroppedTaskEngineIsDiscarded) {
  auto o = options(CacheScope::kTask);
  o.engine.namespaces[0].policy.stale_ttl = 600s;
  auto reg = ScopeRegistry::create(std::move(o)).value();
  int calls = 0;
  auto loader = [&calls] {
    ++calls;
    return Result<std::string>(std::string("v"));
  };
  {
    auto task = reg->begin_task().value();
    auto c = Cache<std::string>::open(task.engine(), "entity").value();
    ASSERT_TRUE(c.get_or_load(kAlice, "k", loader).ok());
    clock_.advance(301s);
    ASSERT_TRUE(c.get_or_load(kAlice, "k", loader).ok());  // stale: refresh queued
    EXPECT_GE(sched_.pending(), 1u);
  }
  sched_.run_due();  // the engine is gone: the refresh is dropped
  EXPECT_EQ(calls, 1);
}

}  // namespace scope_test
}  // namespace callcache
