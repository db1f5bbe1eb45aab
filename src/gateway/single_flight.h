// Internal: asynchronous single-flight for the gateway. Concurrent identical
// upstream reads (same namespace, tenant and key) are coalesced: the first
// caller leads and calls upstream; the others await its answer as coroutine
// completion handlers (no thread is parked), and each resumes on its own
// executor.
//
//   if (flights.try_lead(key)) {
//     FlightGuard guard(flights, key);            // completes on every exit path
//     ... call upstream ...; guard.complete(answer);
//   } else {
//     auto answer = co_await flights.async_wait(key, use_awaitable);
//     if (!answer) retry from the cache (the flight ended before we joined)
//   }
//
// (The engine's Cache<V>::get_or_load async form replaces this once it can be
// awaited from a coroutine; see docs/gateway.md.)
//
// Thread-safety: all members may be called from any thread; the flight table
// is guarded by one mutex held only to insert/remove/append.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gateway/http_message.h"

namespace callcache::gateway {

using SharedResponse = std::shared_ptr<const HttpResponse>;

// A waiter's copy of the shared answer: status and headers copied, the body
// handed out without a copy (it pins `shared`); `outcome` for X-Callcache.
HttpResponse shared_answer(const SharedResponse& shared, const char* outcome);

class SingleFlight {
 public:
  using Handler = boost::asio::any_completion_handler<void(SharedResponse)>;
  struct Waiter {
    boost::asio::any_io_executor executor;  // where the waiter resumes
    Handler handler;
  };

  // True if the caller now leads the flight for `key` (and must complete it);
  // false if another caller leads one.
  bool try_lead(const std::string& key);

  // Awaits the answer of the flight for `key`. Completes with nullptr at once
  // if no flight is running (it finished before the caller joined).
  template <class Token>
  auto async_wait(const std::string& key, Token&& token) {
    return boost::asio::async_initiate<Token, void(SharedResponse)>(
        [this](auto handler, const std::string& k) {
          boost::asio::any_io_executor ex = boost::asio::get_associated_executor(handler);
          join(k, Waiter{std::move(ex), Handler(std::move(handler))});
        },
        token, key);
  }

  // Ends the flight for `key`: every waiter receives `answer` (on its own
  // executor). REQUIRES: the caller leads the flight.
  void complete(const std::string& key, SharedResponse answer);

  // Flights running now, and waiters coalesced so far.
  std::size_t running() const;
  std::uint64_t coalesced() const;

 private:
  void join(const std::string& key, Waiter waiter);

  mutable std::mutex mu_;  // guards flights_ and coalesced_
  std::unordered_map<std::string, std::vector<Waiter>> flights_;
  std::uint64_t coalesced_ = 0;
};

// Completes a led flight on scope exit with a 502 answer if the leader did
// not complete it (an exception or a destroyed coroutine).
class FlightGuard {
 public:
  FlightGuard(SingleFlight& flights, std::string key) : flights_(flights), key_(std::move(key)) {}
  ~FlightGuard();
  FlightGuard(const FlightGuard&) = delete;
  FlightGuard& operator=(const FlightGuard&) = delete;

  void complete(SharedResponse answer);

 private:
  SingleFlight& flights_;
  std::string key_;
  bool done_ = false;
};

}  // namespace callcache::gateway
