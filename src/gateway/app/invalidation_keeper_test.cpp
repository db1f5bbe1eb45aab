// InvalidationKeeper: invalidations of L2 are committed at once, and the
// ones the store misses are replayed before it is read again (and in the
// background), over a real SQLite file whose calls the test fails on command.
#include "gateway/app/invalidation_keeper.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>

#include "callcache/engine.h"
#include "callcache/sqlite_backend.h"
#include "callcache/tiers.h"
#include "switchable_backend.h"

namespace callcache::gateway {
namespace invalidation_keeper_test {

using namespace std::chrono_literals;

using testing::SwitchableBackend;

constexpr TenantId kAlice{1};

class InvalidationKeeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cc-keeper-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    SqliteOptions so;
    so.path = dir_ + "/l2.sqlite3";
    so.flush_interval = so.purge_interval = Duration::zero();  // commits on flush only
    auto sw = std::make_unique<SwitchableBackend>(open_sqlite_backend(so).value());
    store_ = sw.get();
    keeper_ = std::make_unique<InvalidationKeeper>(std::move(sw),
                                                   std::vector<std::string>{"entity"}, &sched_);
    EngineOptions eo;
    NamespacePolicy p;
    p.max_entries = 100;
    p.ttl = 60s;
    eo.namespaces = {{"entity", p}};
    eo.clock = &clock_;
    eo.sweep_interval = Duration::zero();
    engine_ = Engine::create(std::move(eo)).value();
    tiers_ = std::make_unique<Tiers>(*engine_, keeper_.get());
  }
  void TearDown() override {
    tiers_.reset();
    keeper_.reset();
    std::filesystem::remove_all(dir_);
  }

  void write(std::string_view key, std::string_view value) {
    tiers_->write("entity", kAlice, key, value, 60s, {"tag:" + std::string(key)}, tiers_->now_us(),
                  counters_);
  }
  std::optional<std::string> read(std::string_view key) {
    auto f = tiers_->read("entity", kAlice, key, Duration::zero(), counters_);
    if (!f) return std::nullopt;
    return f->bytes;
  }

  std::string dir_;
  ManualClock clock_;
  ManualScheduler sched_{clock_};
  SwitchableBackend* store_ = nullptr;
  std::unique_ptr<InvalidationKeeper> keeper_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Tiers> tiers_;
  internal::TieredCounters counters_;
};

TEST_F(InvalidationKeeperTest, AnInvalidationIsCommittedBeforeItReturns) {
  write("a", "A");
  ASSERT_TRUE(keeper_->flush().ok());
  const int before = store_->flushes.load();
  ASSERT_TRUE(tiers_->invalidate("entity", kAlice, "a").ok());
  EXPECT_GE(store_->flushes.load(), before + 2);  // the marker's and the erase's
  tiers_->invalidate_tags({"tag:b"});
  EXPECT_GE(store_->flushes.load(), before + 3);
  EXPECT_EQ(read("a"), std::nullopt);
}

TEST_F(InvalidationKeeperTest, MissedInvalidationsAreReplayedBeforeTheStoreIsReadAgain) {
  write("a", "A");
  write("b", "B");
  write("c", "C");
  ASSERT_EQ(read("a"), "A");
  store_->failing = true;  // the store goes away; writes still invalidate
  ASSERT_TRUE(tiers_->invalidate("entity", kAlice, "a").ok());
  tiers_->invalidate_tags({"tag:b"});
  EXPECT_GE(keeper_->missed(), 2u);
  store_->failing = false;  // back, with its old data
  // Read before any background retry: the keeper replays first, so neither
  // dropped value is served, and the one no write touched still is.
  EXPECT_EQ(read("a"), std::nullopt);
  EXPECT_EQ(read("b"), std::nullopt);
  EXPECT_EQ(read("c"), "C");
  EXPECT_EQ(keeper_->missed(), 0u);
}

TEST_F(InvalidationKeeperTest, ReadsFailWhileMissedInvalidationsCannotBeApplied) {
  write("a", "A");
  store_->failing = true;
  tiers_->invalidate_tenant(kAlice);
  // The store answers reads again but refuses erases: nothing is served.
  store_->failing = false;
  write("z", "Z");  // (so the store holds something readable)
  store_->failing = true;
  auto got = keeper_->get({"entity", kAlice, "z"});
  EXPECT_FALSE(got.ok());
  store_->failing = false;
  EXPECT_EQ(read("a"), std::nullopt);
}

TEST_F(InvalidationKeeperTest, MissedInvalidationsAreRetriedInTheBackground) {
  write("a", "A");
  store_->failing = true;
  ASSERT_TRUE(tiers_->invalidate("entity", kAlice, "a").ok());
  ASSERT_GE(keeper_->missed(), 1u);
  sched_.advance(200ms);  // still down: retried later, backing off
  EXPECT_GE(keeper_->missed(), 1u);
  store_->failing = false;
  sched_.advance(1s);
  EXPECT_EQ(keeper_->missed(), 0u);                 // without any read through this keeper
  auto raw = store_->get({"entity", kAlice, "a"});  // as another gateway would see it
  ASSERT_TRUE(raw.ok());
  EXPECT_FALSE(raw->has_value());
}

TEST_F(InvalidationKeeperTest, TooManyMissedInvalidationsEraseEveryNamespace) {
  write("keep-me-not", "X");
  store_->failing = true;
  for (std::size_t i = 0; i <= InvalidationKeeper::kMaxMissed; ++i) {
    (void)keeper_->erase({"entity", kAlice, "k" + std::to_string(i)});
  }
  store_->failing = false;
  EXPECT_EQ(read("keep-me-not"), std::nullopt);
  EXPECT_EQ(keeper_->missed(), 0u);
  write("new", "N");
  EXPECT_EQ(read("new"), "N");
}

TEST_F(InvalidationKeeperTest, ValuesPassThrough) {
  store_->failing = true;
  EXPECT_FALSE(keeper_->put({"entity", kAlice, "v"}, "V", 60s).ok());
  EXPECT_EQ(keeper_->missed(), 0u);  // a value write is not an invalidation
  store_->failing = false;
  ASSERT_TRUE(keeper_->put({"entity", kAlice, "v"}, "V", 60s).ok());
  auto got = keeper_->get({"entity", kAlice, "v"});
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->bytes, "V");
}

}  // namespace invalidation_keeper_test
}  // namespace callcache::gateway
