// DegradingBackend's state machine, over a scripted store whose failures the
// test switches on and off (the Redis kill/restart version is in
// redis_backend_test and tiered_cache_test).
#include "callcache/degrading_backend.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "callcache/sqlite_backend.h"
#include "switchable_backend.h"
#include "test_util.h"

namespace callcache {
namespace degrading_backend_test {

using namespace std::chrono_literals;

using testing::SwitchableBackend;

class DegradingBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SqliteOptions o;
    o.path = dir_.file("d.sqlite3");
    o.flush_interval = o.purge_interval = Duration::zero();
    auto inner = std::make_unique<SwitchableBackend>(open_sqlite_backend(o).value(),
                                                     Status::io_error("disk on fire"));
    sw_ = inner.get();
    DegradeOptions d;
    d.clock = &clock_;
    d.initial_backoff = 1s;
    d.max_backoff = 4s;
    d.log = [this](TierLogLevel level, std::string_view m) {
      std::lock_guard l(mu_);
      lines_.emplace_back(m);
      levels_.push_back(level);
    };
    b_ = std::make_unique<DegradingBackend>(std::move(inner), d);
  }
  std::size_t lines() {
    std::lock_guard l(mu_);
    return lines_.size();
  }

  tiers::testing::TempDir dir_;
  ManualClock clock_;
  SwitchableBackend* sw_ = nullptr;
  std::unique_ptr<DegradingBackend> b_;
  std::mutex mu_;  // guards lines_, levels_
  std::vector<std::string> lines_;
  std::vector<TierLogLevel> levels_;
};

const TenantId kT = tenant_from_name("t");

TEST_F(DegradingBackendTest, HealthyCallsPassThrough) {
  ASSERT_TRUE(b_->put({"ns", kT, "k"}, "v", 1h).ok());
  EXPECT_EQ((*b_->get({"ns", kT, "k"}))->bytes, "v");
  EXPECT_EQ(sw_->calls.load(), 2);
  EXPECT_EQ(lines(), 0u);
  EXPECT_EQ(b_->name(), "switchable");
}

TEST_F(DegradingBackendTest, BacksOffExponentiallyWithoutTouchingTheStore) {
  sw_->failing = true;
  EXPECT_EQ(b_->get({"ns", kT, "k"}).status().code(), Code::kIoError);
  EXPECT_EQ(sw_->calls.load(), 1);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(b_->get({"ns", kT, "k"}).status().code(), Code::kUnavailable);
    EXPECT_EQ(b_->put({"ns", kT, "k"}, "v", 1h).code(), Code::kUnavailable);
  }
  EXPECT_EQ(sw_->calls.load(), 1);
  // Backoff 1 s, then 2 s, then 4 s (the cap), then 4 s.
  Duration expected[] = {1s, 2s, 4s, 4s};
  int calls = 1;
  for (Duration d : expected) {
    clock_.advance(d - 1ms);
    EXPECT_EQ(b_->get({"ns", kT, "k"}).status().code(), Code::kUnavailable);
    EXPECT_EQ(sw_->calls.load(), calls);
    clock_.advance(1ms);
    EXPECT_EQ(b_->get({"ns", kT, "k"}).status().code(), Code::kIoError);  // the probe
    EXPECT_EQ(sw_->calls.load(), ++calls);
  }
  EXPECT_EQ(lines(), 1u);  // one line for the whole outage
  EXPECT_EQ(levels_[0], TierLogLevel::kWarning);
  auto ds = b_->degrade_stats();
  EXPECT_EQ(ds.outages, 1u);
  EXPECT_EQ(ds.errors, 5u);
  EXPECT_EQ(ds.skipped, 24u);
  EXPECT_TRUE(ds.down);

  sw_->failing = false;
  clock_.advance(4s);
  EXPECT_TRUE(b_->put({"ns", kT, "k"}, "v", 1h).ok());
  EXPECT_FALSE(b_->degrade_stats().down);
  EXPECT_EQ(lines(), 2u);
  EXPECT_NE(lines_[1].find("recovered"), std::string::npos);
  EXPECT_TRUE(b_->get({"ns", kT, "k"}).ok());

  // A new outage starts over at the initial backoff and logs again.
  sw_->failing = true;
  EXPECT_FALSE(b_->get({"ns", kT, "k"}).ok());
  EXPECT_EQ(lines(), 3u);
  sw_->failing = false;
  clock_.advance(1s);
  EXPECT_TRUE(b_->get({"ns", kT, "k"}).ok());
  EXPECT_EQ(b_->degrade_stats().outages, 2u);
  EXPECT_EQ(b_->degrade_stats().recoveries, 2u);
}

TEST_F(DegradingBackendTest, CallerErrorsDoNotStartAnOutage) {
  EXPECT_EQ(b_->put({"ns", kT, ""}, "v", 1h).code(), Code::kInvalidArgument);
  EXPECT_FALSE(b_->degrade_stats().down);
  EXPECT_EQ(lines(), 0u);
  // ... nor wedge the probe slot during one.
  sw_->failing = true;
  EXPECT_FALSE(b_->get({"ns", kT, "k"}).ok());
  sw_->failing = false;
  clock_.advance(1s);
  b_->set_log(nullptr);  // stderr from now on
  b_->set_log([this](TierLogLevel, std::string_view m) {
    std::lock_guard l(mu_);
    lines_.emplace_back(m);
  });
  EXPECT_EQ(b_->put({"ns", kT, ""}, "v", 1h).code(), Code::kInvalidArgument);  // inner refuses
  EXPECT_TRUE(b_->get({"ns", kT, "k"}).ok());  // the next call may probe
  EXPECT_FALSE(b_->degrade_stats().down);
}

TEST_F(DegradingBackendTest, HealthProbesDuringBackoff) {
  sw_->failing = true;
  EXPECT_FALSE(b_->get({"ns", kT, "k"}).ok());
  sw_->failing = false;
  EXPECT_TRUE(b_->health().ok());
  EXPECT_FALSE(b_->degrade_stats().down);
}

TEST_F(DegradingBackendTest, FlushIsNeverSkipped) {
  sw_->failing = true;
  EXPECT_FALSE(b_->get({"ns", kT, "k"}).ok());
  const int calls = sw_->calls.load();
  EXPECT_EQ(b_->flush().code(), Code::kIoError) << "tried, not skipped, during the backoff";
  EXPECT_EQ(sw_->calls.load(), calls + 1);
  sw_->failing = false;
  EXPECT_TRUE(b_->flush().ok());
  EXPECT_FALSE(b_->degrade_stats().down);
}

TEST_F(DegradingBackendTest, ConcurrentCallersShareOneOutage) {
  sw_->failing = true;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < 500; ++i) (void)b_->get({"ns", kT, "k"});
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(lines(), 1u);
  EXPECT_EQ(b_->degrade_stats().outages, 1u);
  // Calls already past admit() when the outage began may still reach the store.
  EXPECT_LE(sw_->calls.load(), 4);
  sw_->failing = false;
  clock_.advance(1s);
  std::atomic<int> ok{0};
  threads.clear();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) ok += b_->get({"ns", kT, "k"}).ok();
    });
  }
  for (auto& t : threads) t.join();
  // Calls racing the probe are skipped; once it succeeds all pass.
  EXPECT_GT(ok.load(), 0);
  EXPECT_FALSE(b_->degrade_stats().down);
  EXPECT_TRUE(b_->get({"ns", kT, "k"}).ok());
  EXPECT_EQ(lines(), 2u);
}

}  // namespace degrading_backend_test
}  // namespace callcache
