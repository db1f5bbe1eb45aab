// callcache/load.h — the vocabulary of the read-through calls
// (Cache<V>::get_or_load and get_or_load_async in callcache/cache.h, and the
// same calls of TieredCache<V> in callcache/tiered_cache.h): what a loader
// returns, where a loaded value is kept, how a call was served, per-call
// load options, and the completion handle an asynchronous loader calls.
//
// Semantics (per namespace policy, see callcache/policy.h):
//  - single flight: a missing key is loaded once however many callers ask
//    while the load runs; every waiter gets the same value or the same error.
//    Waiters that joined another caller's load are counted as `coalesced`.
//  - a load overtaken by an invalidation that touches its namespace (by key,
//    tag, tenant or namespace) is handed to its waiters but never stored: the
//    value may predate the change the invalidation stands for.
//  - a loader that throws is caught: the flight fails with kLoadFailed and a
//    message naming the exception. No exception escapes get_or_load.
//  - negative_ttl > 0: a failed load is remembered and returned (the same
//    Status) without calling the loader until negative_ttl ends.
//  - load_timeout > 0: a load still running after load_timeout fails with
//    kTimeout for all its waiters and frees the key; its loader's late
//    completion is discarded. Timeouts are never negatively cached.
//  - stale_ttl > 0: an entry past its ttl but within stale_ttl is returned at
//    once and starts exactly one background refresh (stale-while-revalidate).
//    If the refresh fails (or yields a value it may not keep, Retain::kNone),
//    the stale value keeps being served (stale-if-error) and the next refresh
//    starts no sooner than negative_ttl later (1 s when negative_ttl is 0).
//    Past stale_ttl callers wait for a fresh load.
//  - refresh_ahead > 0: an entry read within refresh_ahead of its expiry is
//    returned and refreshed in the background, so hot keys never miss.
//  - background refreshes of the blocking form run the loader on
//    LoadOptions::executor or, by default, on Engine::scheduler()'s thread —
//    never on the thread that read the entry. The asynchronous form starts
//    its (non-blocking) loader inline. The scheduler has one thread, shared
//    with expiry sweeps and load timeouts: give an executor to blocking
//    loaders that may take long, or a hung refresh delays those timers.
//
// Statistics (NamespaceStats): hits (fresh and refresh-due), misses (a load
// was needed), stale_hits, negative_hits, coalesced, loads (every loader
// invocation, refreshes included), refreshes, load_failures (loader errors,
// refreshes included), refresh_failures, load_timeouts, load_latency.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "callcache/engine.h"
#include "callcache/internal/engine_access.h"

namespace callcache {

// Where a loaded value is kept. Every waiter of the load receives it
// whichever is chosen.
enum class Retain : std::uint8_t {
  kAllTiers,    // memory, and the second tier of a TieredCache
  kMemoryOnly,  // memory only (e.g. a short-lived answer not worth sharing)
  kNone,        // nowhere: only this load's waiters get it (e.g. an error page)
};

// How a read-through call was answered, for metrics and response headers.
enum class Served : std::uint8_t {
  kHit,         // a fresh value from memory (a refresh may have started)
  kStale,       // a stale value from memory; a refresh started
  kNegative,    // a remembered failure (negative_ttl)
  kLoaded,      // this call led the load and the loader ran
  kSecondTier,  // this call led the load and the second tier had the value
  kCoalesced,   // this call joined a load another call (or a refresh) led
};

// What a loader may return instead of a bare value: the value plus per-entry
// storage options. `ttl` overrides the namespace ttl for this entry (e.g. an
// L2 value's remaining lifetime); `tags` are for invalidation by tag;
// `retain` says where the value is kept.
template <class V>
struct Loaded {
  V value;
  std::optional<Duration> ttl;
  std::vector<std::string> tags;
  Retain retain = Retain::kAllTiers;
};

// Runs a task exactly once, soon, on some thread (a thread pool, an event
// loop's post). Used for background refreshes of the blocking form.
using Executor = std::function<void(std::function<void()> task)>;

struct LoadOptions {
  // How long this caller waits for a load (its own or another caller's)
  // before giving up with kDeadlineExceeded. Giving up never cancels the load
  // for the other waiters, and the result is still stored. Measured on
  // Engine::scheduler()'s clock. nullopt = wait until the load completes (or
  // the namespace's load_timeout fails it). Does not apply to a blocking
  // caller that leads the load: it runs the loader itself and returns the
  // load's result when the loader returns.
  std::optional<Duration> wait_timeout;
  // Where background refreshes run for the blocking form (empty = the
  // engine's scheduler thread). Must outlive the call only.
  Executor executor;
};

namespace internal {

// A loader's outcome with its type erased.
struct LoadOutcome {
  void* value = nullptr;   // a V of the namespace's type, moved from when stored; null = error
  std::size_t charge = 0;  // bytes, for max_bytes
  PutOptions put;          // ttl override and tags
  Retain retain = Retain::kAllTiers;
  bool from_second_tier = false;  // read from a TieredCache's L2, not loaded
  Status error;                   // why there is no value (REQUIRES: !ok() when value is null)
};

// Runs after a loaded value was stored in memory, on the completing thread,
// once the load's waiters have been handed the value: `stored` is the value
// as stored (valid during the call), `outcome` what the loader returned
// (its value moved from). TieredCache writes the value through to L2 here.
using AfterStore = std::function<void(const void* stored, const LoadOutcome& outcome)>;

// The receiving end of one flight's loader (defined in src/core/load.cpp).
// Destroying the last reference without completing fails the flight with
// kLoadFailed, so a loader that drops its completion cannot wedge the key.
class LoadSink;
// Delivers the outcome of the load. Returns false (and stores nothing) if the
// flight was already completed or timed out. Thread-safe; the first call wins.
bool complete_load(LoadSink& sink, LoadOutcome& outcome);

// Starts the loader of a flight; the loader completes `sink` exactly once.
using LoadStarter = std::function<void(std::shared_ptr<LoadSink> sink)>;
// Receives a get_or_load result: a pinned entry (ownership passes; non-null
// exactly when status is OK) or an error, and how the call was served.
// Called exactly once.
using LoadReceiver = std::function<void(Entry* entry, Status status, Served served)>;

struct LoadCall {
  Engine* engine;
  NamespaceId ns;
  TenantId tenant;
  std::string_view key;
  const LoadOptions* options;
  LoadStarter starter;     // copied if a background refresh needs it
  bool blocking_loader;    // the loader blocks its thread: refreshes go to an executor
  AfterStore after_store;  // optional
};

// Everything but a fresh hit: `entry`/`freshness` are what lookup_for_load
// returned for the call (entry pinned or null; ownership passes). Calls
// `receiver` exactly once, inline or later from the completing thread.
void load_slow(const LoadCall& call, Entry* entry, Freshness freshness, LoadReceiver receiver);

}  // namespace internal

// The handle an asynchronous loader completes. Call it exactly once, from any
// thread, with a Result<V>, a Result<Loaded<V>>, a V, a Loaded<V> or an error
// Status; later calls are ignored. Copyable (copies share one completion). If
// every copy is destroyed without a call, the load fails with kLoadFailed.
template <class V>
class LoadCompletion {
 public:
  using SizeFunction = std::function<std::size_t(const V&)>;

  LoadCompletion(std::shared_ptr<internal::LoadSink> sink, SizeFunction size)
      : core_(std::make_shared<Core>()) {
    core_->sink = std::move(sink);
    core_->size = std::move(size);
  }

  // Returns false if the result was discarded (already completed, or the
  // load timed out).
  bool operator()(Result<V> r) const {
    internal::LoadOutcome out;
    if (r.ok()) {
      out.value = &r.value();
      out.charge = core_->size(r.value());
    } else {
      out.error = r.status();
    }
    return finish(internal::complete_load(*core_->sink, out));
  }
  bool operator()(Result<Loaded<V>> r) const {
    internal::LoadOutcome out;
    if (r.ok()) {
      out.value = &r->value;
      out.charge = core_->size(r->value);
      out.put.ttl = r->ttl;
      out.put.tags = std::move(r->tags);
      out.retain = r->retain;
    } else {
      out.error = r.status();
    }
    return finish(internal::complete_load(*core_->sink, out));
  }
  bool operator()(Status error) const {
    internal::LoadOutcome out;
    out.error = error.ok() ? Status::internal("loader completed with an OK status and no value")
                           : std::move(error);
    return finish(internal::complete_load(*core_->sink, out));
  }

  // Internal (TieredCache): runs `f` once, after the first call above has
  // delivered its result (the value is in L1 and written through by then),
  // or when every copy is destroyed without a call.
  void set_finisher(std::function<void()> f) const { core_->finisher = std::move(f); }

 private:
  struct Core {
    std::shared_ptr<internal::LoadSink> sink;
    SizeFunction size;
    std::function<void()> finisher;  // see set_finisher; run at most once
    std::atomic<bool> finished{false};
    ~Core() {
      if (finisher && !finished.exchange(true)) finisher();
    }
  };
  bool finish(bool delivered) const {
    if (core_->finisher && !core_->finished.exchange(true)) core_->finisher();
    return delivered;
  }
  std::shared_ptr<Core> core_;
};

namespace internal {

// The message of a caught loader exception.
Status loader_threw(const char* what);

// Runs a blocking loader and completes `done` with what it returned or threw.
template <class V, class Loader>
void run_blocking_loader(Loader& loader, const LoadCompletion<V>& done) {
  using R = std::invoke_result_t<Loader&>;
  static_assert(std::is_convertible_v<R, Result<V>> || std::is_convertible_v<R, Result<Loaded<V>>>,
                "a loader returns Result<V>, Result<Loaded<V>>, V or Loaded<V>");
  try {
    if constexpr (std::is_convertible_v<R, Result<V>>) {
      done(Result<V>(loader()));
    } else {
      done(Result<Loaded<V>>(loader()));
    }
  } catch (const std::exception& e) {
    done(loader_threw(e.what()));
  } catch (...) {
    done(loader_threw(nullptr));
  }
}

// Starts an asynchronous loader; an exception it throws completes `done`.
template <class V, class AsyncLoader>
void run_async_loader(AsyncLoader& loader, const LoadCompletion<V>& done) {
  try {
    loader(done);
  } catch (const std::exception& e) {
    done(loader_threw(e.what()));
  } catch (...) {
    done(loader_threw(nullptr));
  }
}

}  // namespace internal
}  // namespace callcache
