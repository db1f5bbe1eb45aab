// callcache/asio_cache.h — Boost.Asio adapter for Cache<V>::get_or_load_async:
// an asynchronous operation usable with any completion token, and a C++20
// coroutine form.
//
//   boost::asio::awaitable<void> resolve(Cache<Peer>& peers, TenantId t) {
//     auto peer = co_await callcache::co_get_or_load(peers, t, "@durov",
//         [](callcache::LoadCompletion<Peer> done) { start_fetch(std::move(done)); });
//     if (!peer.ok()) co_return;  // the loader's error, kTimeout, kCancelled ...
//     use((*peer)->id);
//   }
//
// Part of the optional CMake target `callcache_asio` (header-only, needs
// Boost.Asio); libcallcache itself depends on the standard library only.
//
// Semantics are those of get_or_load_async (callcache/load.h): one load per
// key however many coroutines wait, no thread parked while waiting. The
// completion handler always runs through its associated executor (posted,
// never inline in the initiating call), and the operation keeps that
// executor's work count up while it waits, so io_context::run() does not
// return under a waiting coroutine.
//
// Cancellation (per-operation cancellation slot, e.g. from
// awaitable_operators `||` or bind_cancellation_slot): the waiting operation
// completes with kCancelled; the load itself continues for the other waiters
// and its result is still stored. As everywhere in Asio, the cancellation
// signal must be emitted from the operation's execution context (a
// single-threaded io_context or a strand).
//
// Thread-safety: as get_or_load_async. REQUIRES: the Cache's Engine outlives
// the operation.
#pragma once

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "callcache/cache.h"

namespace callcache {

namespace internal {

// The state of one waiting Asio operation: the handler, released exactly
// once — by the flight's result or by cancellation, whichever comes first.
template <class V, class Handler>
class AsioWait : public std::enable_shared_from_this<AsioWait<V, Handler>> {
 public:
  using Executor = boost::asio::associated_executor_t<Handler>;

  explicit AsioWait(Handler h)
      : handler_(std::move(h)),
        work_(boost::asio::make_work_guard(boost::asio::get_associated_executor(*handler_))) {}

  // Hooks cancellation up; call once, from the initiating context.
  void arm_cancellation() {
    auto slot = boost::asio::get_associated_cancellation_slot(*handler_);
    if (!slot.is_connected()) return;
    std::weak_ptr<AsioWait> weak = this->shared_from_this();
    slot.assign([weak](boost::asio::cancellation_type type) {
      if (type == boost::asio::cancellation_type::none) return;
      if (auto self = weak.lock()) {
        self->complete(
            Status::cancelled("get_or_load wait cancelled; the load continues for others"));
      }
    });
  }

  // Delivers `r` through the handler's executor unless already delivered.
  // Thread-safe.
  void complete(Result<Ref<V>> r) {
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

}  // namespace internal

// Starts get_or_load_async on `cache` and completes `token` with
// Result<Ref<V>> (signature void(Result<Ref<V>>)). `loader` is an async
// loader as for get_or_load_async. Works with any completion token
// (use_awaitable, callbacks, use_future, deferred ...).
template <class V, class SizeFn, class AsyncLoader, class CompletionToken>
auto async_get_or_load(Cache<V, SizeFn>& cache, TenantId tenant, std::string key,
                       AsyncLoader loader, CompletionToken&& token, LoadOptions options = {}) {
  return boost::asio::async_initiate<CompletionToken, void(Result<Ref<V>>)>(
      [](auto handler, Cache<V, SizeFn>* cache, TenantId tenant, std::string key,
         AsyncLoader loader, LoadOptions options) {
        using Wait = internal::AsioWait<V, decltype(handler)>;
        auto wait = std::make_shared<Wait>(std::move(handler));
        wait->arm_cancellation();
        cache->get_or_load_async(
            tenant, key, std::move(loader),
            [wait](Result<Ref<V>> r) { wait->complete(std::move(r)); }, options);
      },
      token, &cache, tenant, std::move(key), std::move(loader), std::move(options));
}

// The coroutine form: co_await co_get_or_load(cache, tenant, key, loader).
template <class V, class SizeFn, class AsyncLoader>
boost::asio::awaitable<Result<Ref<V>>> co_get_or_load(Cache<V, SizeFn>& cache, TenantId tenant,
                                                      std::string key, AsyncLoader loader,
                                                      LoadOptions options = {}) {
  co_return co_await async_get_or_load(cache, tenant, std::move(key), std::move(loader),
                                       boost::asio::use_awaitable, std::move(options));
}

}  // namespace callcache
