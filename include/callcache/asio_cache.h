// callcache/asio_cache.h — Boost.Asio adapter for the read-through calls of
// Cache<V> and TieredCache<V> (their get_or_load_async): an asynchronous
// operation usable with any completion token, and C++20 coroutine forms.
//
//   boost::asio::awaitable<void> resolve(Cache<Peer>& peers, TenantId t) {
//     auto peer = co_await callcache::co_get_or_load(peers, t, "@durov",
//         [](callcache::LoadCompletion<Peer> done) { start_fetch(std::move(done)); });
//     if (!peer.ok()) co_return;  // the loader's error, kTimeout, kCancelled ...
//     use((*peer)->id);
//   }
//
//   // With a second tier, and how the answer was served (for metrics):
//   auto [answer, served] = co_await callcache::co_get_or_load_served(tiered, t, key, loader);
//
// Part of the optional CMake target `callcache_asio` (header-only, needs
// Boost.Asio); libcallcache itself depends on the standard library only.
//
// Semantics are those of get_or_load_async (callcache/load.h): one load per
// key however many coroutines wait, no thread parked while waiting. The
// loader is started inline, on the calling coroutine's thread.
//
// async_get_or_load: the completion handler always runs through its
// associated executor (posted, never inline in the initiating call), and the
// operation keeps that executor's work count up while it waits, so
// io_context::run() does not return under a waiting coroutine.
// co_get_or_load / co_get_or_load_served: an answer available at once (an
// L1 hit, a stale value, a remembered failure, an L2 hit) is returned without
// suspending the coroutine; otherwise as async_get_or_load.
//
// Cancellation (per-operation cancellation slot, e.g. from
// awaitable_operators `||` or bind_cancellation_slot): the waiting operation
// completes with kCancelled; the load itself continues for the other waiters
// and its result is still stored. As everywhere in Asio, the cancellation
// signal must be emitted from the operation's execution context (a
// single-threaded io_context or a strand).
//
// Thread-safety: as get_or_load_async. REQUIRES: the cache's Engine (and
// Backend) outlive the operation.
#pragma once

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "callcache/cache.h"

namespace callcache {

// A read-through's answer and how it was served.
template <class V>
using ServedResult = std::pair<Result<Ref<V>>, Served>;

namespace internal {

// The state of one waiting Asio operation: the handler, released exactly
// once — by the flight's result or by cancellation, whichever comes first.
// R is what the handler receives.
template <class R, class Handler>
class AsioWait : public std::enable_shared_from_this<AsioWait<R, Handler>> {
 public:
  using Executor = boost::asio::associated_executor_t<Handler>;

  explicit AsioWait(Handler h)
      : handler_(std::move(h)),
        work_(boost::asio::make_work_guard(boost::asio::get_associated_executor(*handler_))) {}

  // Hooks cancellation up; call once, from the initiating context.
  // `cancelled` builds what the handler receives on cancellation.
  void arm_cancellation(R (*cancelled)()) {
    auto slot = boost::asio::get_associated_cancellation_slot(*handler_);
    if (!slot.is_connected()) return;
    std::weak_ptr<AsioWait> weak = this->shared_from_this();
    slot.assign([weak, cancelled](boost::asio::cancellation_type type) {
      if (type == boost::asio::cancellation_type::none) return;
      if (auto self = weak.lock()) self->complete(cancelled());
    });
  }

  // Delivers `r` through the handler's executor unless already delivered.
  // Thread-safe.
  void complete(R r) {
    std::optional<Handler> h;
    std::optional<boost::asio::executor_work_guard<Executor>> work;
    {
      std::lock_guard lock(mu_);
      if (!handler_) return;
      h.emplace(std::move(*handler_));
      handler_.reset();
      work.emplace(std::move(*work_));
      work_.reset();
    }
    auto ex = boost::asio::get_associated_executor(*h);
    boost::asio::post(ex, [h = std::move(*h), r = std::move(r), work = std::move(work)]() mutable {
      // On the operation's executor: detach the cancellation handler first.
      auto slot = boost::asio::get_associated_cancellation_slot(h);
      if (slot.is_connected()) slot.clear();
      std::move(h)(std::move(r));
      work.reset();
    });
  }

 private:
  std::mutex mu_;  // guards handler_, work_
  std::optional<Handler> handler_;
  std::optional<boost::asio::executor_work_guard<Executor>> work_;
};

inline Status wait_cancelled() {
  return Status::cancelled("get_or_load wait cancelled; the load continues for others");
}

// Where a read-through's callback meets the coroutine that started it: the
// answer if it came inline, else whoever waits for it later. Thread-safe.
template <class V>
class Meeting {
 public:
  void deliver(Result<Ref<V>> r, Served served) {
    std::function<void(ServedResult<V>)> waiter;
    {
      std::lock_guard lock(mu_);
      if (!waiter_) {
        answer_.emplace(std::move(r), served);
        return;
      }
      waiter = std::move(waiter_);
    }
    waiter(ServedResult<V>(std::move(r), served));
  }
  // The answer if it has arrived (then nobody will wait).
  std::optional<ServedResult<V>> take() {
    std::lock_guard lock(mu_);
    return std::exchange(answer_, std::nullopt);
  }
  // Calls `waiter` with the answer: now if it has arrived, else on arrival.
  void on_answer(std::function<void(ServedResult<V>)> waiter) {
    std::optional<ServedResult<V>> ready;
    {
      std::lock_guard lock(mu_);
      if (!answer_) {
        waiter_ = std::move(waiter);
        return;
      }
      ready = std::exchange(answer_, std::nullopt);
    }
    waiter(std::move(*ready));
  }

 private:
  std::mutex mu_;  // guards answer_, waiter_
  std::optional<ServedResult<V>> answer_;
  std::function<void(ServedResult<V>)> waiter_;
};

}  // namespace internal

// Starts get_or_load_async on `cache` (a Cache<V> or a TieredCache<V>) and
// completes `token` with Result<Ref<V>> (signature void(Result<Ref<V>>)).
// `loader` is an async loader as for get_or_load_async. Works with any
// completion token (use_awaitable, callbacks, use_future, deferred ...).
template <class CacheT, class AsyncLoader, class CompletionToken>
auto async_get_or_load(CacheT& cache, TenantId tenant, std::string key, AsyncLoader loader,
                       CompletionToken&& token, LoadOptions options = {}) {
  using V = typename CacheT::value_type;
  return boost::asio::async_initiate<CompletionToken, void(Result<Ref<V>>)>(
      [](auto handler, CacheT* cache, TenantId tenant, std::string key, AsyncLoader loader,
         LoadOptions options) {
        using Wait = internal::AsioWait<Result<Ref<V>>, decltype(handler)>;
        auto wait = std::make_shared<Wait>(std::move(handler));
        wait->arm_cancellation([] { return Result<Ref<V>>(internal::wait_cancelled()); });
        cache->get_or_load_async(
            tenant, key, std::move(loader),
            [wait](Result<Ref<V>> r) { wait->complete(std::move(r)); }, options);
      },
      token, &cache, tenant, std::move(key), std::move(loader), std::move(options));
}

// The coroutine form with how the answer was served:
//   auto [value, served] = co_await co_get_or_load_served(cache, tenant, key, loader);
// Returns without suspending when the answer is available at once.
template <class CacheT, class AsyncLoader>
boost::asio::awaitable<ServedResult<typename CacheT::value_type>> co_get_or_load_served(
    CacheT& cache, TenantId tenant, std::string key, AsyncLoader loader, LoadOptions options = {}) {
  using V = typename CacheT::value_type;
  auto meeting = std::make_shared<internal::Meeting<V>>();
  cache.get_or_load_async(
      tenant, key, std::move(loader),
      [meeting](Result<Ref<V>> r, Served s) { meeting->deliver(std::move(r), s); }, options);
  if (auto ready = meeting->take()) co_return std::move(*ready);
  // (Named, and no co_await in a return: GCC 12 destroys temporaries of a
  // co_await full-expression twice.)
  auto initiate = [meeting](auto handler) {
    using Wait = internal::AsioWait<ServedResult<V>, decltype(handler)>;
    auto wait = std::make_shared<Wait>(std::move(handler));
    wait->arm_cancellation(
        [] { return ServedResult<V>(internal::wait_cancelled(), Served::kCoalesced); });
    meeting->on_answer([wait](ServedResult<V> r) { wait->complete(std::move(r)); });
  };
  ServedResult<V> answer =
      co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>,
                                           void(ServedResult<V>)>(std::move(initiate),
                                                                  boost::asio::use_awaitable);
  co_return answer;
}

// The coroutine form: co_await co_get_or_load(cache, tenant, key, loader).
// Returns without suspending when the answer is available at once.
template <class CacheT, class AsyncLoader>
boost::asio::awaitable<Result<Ref<typename CacheT::value_type>>> co_get_or_load(
    CacheT& cache, TenantId tenant, std::string key, AsyncLoader loader, LoadOptions options = {}) {
  ServedResult<typename CacheT::value_type> answer = co_await co_get_or_load_served(
      cache, tenant, std::move(key), std::move(loader), std::move(options));
  co_return std::move(answer.first);
}

}  // namespace callcache
