// The Boost.Asio adapter: coroutines on one io_context thread share one
// load; cancellation releases a waiter without cancelling the load.
#include "callcache/asio_cache.h"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "callcache/tiered_cache.h"

namespace callcache {
namespace asio_cache_test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

const TenantId kAlice = tenant_from_name("alice");

class AsioCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NamespacePolicy p;
    p.ttl = std::chrono::hours(1);
    EngineOptions o;
    o.namespaces = {{"entity", p}};
    o.sweep_interval = Duration::zero();
    engine_ = Engine::create(std::move(o)).value();
    cache_.emplace(Cache<std::string>::open(*engine_, "entity").value());
  }
  NamespaceStats stats() { return engine_->stats().namespaces[0]; }

  std::unique_ptr<Engine> engine_;
  std::optional<Cache<std::string>> cache_;
  asio::io_context io_;
};

TEST_F(AsioCacheTest, CoroutinesOnOneThreadShareOneLoad) {
  constexpr int kCoroutines = 20;
  int loads = 0;
  std::vector<std::string> got;
  // The "upstream" answers 5 ms later through a timer on the same io_context:
  // if any coroutine parked the thread, the answer could never arrive.
  auto loader = [&](LoadCompletion<std::string> done) {
    ++loads;
    auto timer = std::make_shared<asio::steady_timer>(io_, 5ms);
    timer->async_wait([timer, done](boost::system::error_code) { done(std::string("peer")); });
  };
  for (int i = 0; i < kCoroutines; ++i) {
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          auto r = co_await co_get_or_load(*cache_, kAlice, "@durov", loader);
          got.push_back(r.ok() ? **r : r.status().to_string());
        },
        asio::detached);
  }
  io_.run();
  EXPECT_EQ(loads, 1);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kCoroutines));
  for (auto& g : got) EXPECT_EQ(g, "peer");
  EXPECT_EQ(stats().coalesced, static_cast<std::uint64_t>(kCoroutines - 1));
}

TEST_F(AsioCacheTest, RunDoesNotReturnWhileALoadCompletesOnAnotherThread) {
  std::thread upstream;
  std::optional<Result<Ref<std::string>>> got;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        got.emplace(
            co_await co_get_or_load(*cache_, kAlice, "k", [&](LoadCompletion<std::string> done) {
              upstream = std::thread([done] {
                std::this_thread::sleep_for(20ms);
                done(std::string("from another thread"));
              });
            }));
      },
      asio::detached);
  io_.run();  // returns only after the coroutine has finished
  upstream.join();
  ASSERT_TRUE(got && got->ok());
  EXPECT_EQ(***got, "from another thread");
}

TEST_F(AsioCacheTest, HitsAndErrorsComeBackThroughTheExecutor) {
  ASSERT_TRUE(cache_->put(kAlice, "cached", "v").ok());
  std::optional<Result<Ref<std::string>>> hit, failed;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        hit.emplace(co_await co_get_or_load(*cache_, kAlice, "cached",
                                            [](LoadCompletion<std::string>) { FAIL(); }));
        failed.emplace(co_await co_get_or_load(
            *cache_, kAlice, "missing",
            [](LoadCompletion<std::string> done) { done(Status::not_found("no such peer")); }));
      },
      asio::detached);
  io_.run();
  ASSERT_TRUE(hit && hit->ok());
  EXPECT_EQ(***hit, "v");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status(), Status::not_found("no such peer"));
}

// The read path with a second tier has the same coroutine forms, and says
// how each answer was served; an answer available at once needs no trip
// through the executor.
TEST_F(AsioCacheTest, TieredCacheCoroutinesSayHowTheyWereServed) {
  Tiers tiers(*engine_, nullptr);
  auto tiered = TieredCache<std::string>::open(tiers, "entity").value();
  std::vector<std::pair<std::string, Served>> got;
  auto loader = [&](LoadCompletion<std::string> done) {
    auto timer = std::make_shared<asio::steady_timer>(io_, 5ms);
    timer->async_wait([timer, done](boost::system::error_code) { done(std::string("v")); });
  };
  for (int i = 0; i < 2; ++i) {
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          auto [r, how] = co_await co_get_or_load_served(tiered, kAlice, "k", loader);
          got.emplace_back(r.ok() ? **r : r.status().to_string(), how);
        },
        asio::detached);
  }
  io_.run();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], std::make_pair(std::string("v"), Served::kLoaded));
  EXPECT_EQ(got[1], std::make_pair(std::string("v"), Served::kCoalesced));
  bool resumed_inline = false;
  io_.restart();
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        auto [r, how] = co_await co_get_or_load_served(tiered, kAlice, "k", loader);
        resumed_inline = how == Served::kHit && r.ok();
      },
      asio::detached);
  EXPECT_EQ(io_.run_one(), 1u);  // the coroutine's start; it completes without a second handler
  EXPECT_TRUE(resumed_inline);
}

TEST_F(AsioCacheTest, CancelledWaiterLeavesTheLoadToTheOthers) {
  std::optional<LoadCompletion<std::string>> pending;
  auto loader = [&](LoadCompletion<std::string> done) { pending = done; };
  asio::cancellation_signal cancel;
  std::vector<Status> cancelled_results;
  std::optional<Result<Ref<std::string>>> patient;
  async_get_or_load(*cache_, kAlice, "k", loader,
                    asio::bind_cancellation_slot(
                        cancel.slot(), asio::bind_executor(io_, [&](Result<Ref<std::string>> r) {
                          cancelled_results.push_back(r.status());
                        })));
  async_get_or_load(
      *cache_, kAlice, "k", loader,
      asio::bind_executor(io_, [&](Result<Ref<std::string>> r) { patient.emplace(r); }));
  asio::post(io_, [&] { cancel.emit(asio::cancellation_type::terminal); });
  io_.run_one();  // the emit
  io_.run_one();  // the cancelled handler
  ASSERT_EQ(cancelled_results.size(), 1u);
  EXPECT_EQ(cancelled_results[0].code(), Code::kCancelled);
  EXPECT_FALSE(patient);
  ASSERT_TRUE(pending);
  EXPECT_TRUE((*pending)(std::string("v")));  // the load was not cancelled
  io_.restart();
  io_.run();
  ASSERT_TRUE(patient && patient->ok());
  EXPECT_EQ(***patient, "v");
  EXPECT_EQ(cancelled_results.size(), 1u);  // not called a second time
  EXPECT_TRUE(cache_->get(kAlice, "k"));    // and the value was stored
}

}  // namespace asio_cache_test
}  // namespace callcache
