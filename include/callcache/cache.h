// callcache/cache.h — the typed front: Cache<V> over one namespace of an
// Engine, and Ref<V>, a shared immutable handle to a cached value.
//
//   auto engine = callcache::Engine::create().value();
//   auto users = callcache::Cache<User>::open(*engine, "entity").value();
//   auto alice = callcache::tenant_from_secret(bot_token);
//   (void)users.put(alice, "user:42", User{...});
//   if (auto u = users.get(alice, "user:42")) use((*u)->name);
//
// A hit returns a Ref<V>: it pins the stored value (no copy of the payload)
// and stays valid after the entry is evicted or invalidated, for as long as
// the caller holds it. Values are immutable once stored. Small trivially
// copyable values (at most 8 bytes: ids, counters, flags) are the exception:
// a put updates their entry in place, without allocating, and their Ref<V>
// holds a copy of the value instead of a pin — the same guarantees, since a
// copy never changes either.
//
// With a second tier (SQLite, Redis) use TieredCache<V>
// (callcache/tiered_cache.h): the same calls, reading through L1 → L2 →
// loader.
//
// Thread-safety: a Cache<V> is a small handle (engine pointer + namespace id);
// copies may be used concurrently from any thread. REQUIRES: the Engine
// outlives every Cache<V> opened on it (Refs may outlive both).
#pragma once

#include <array>
#include <bit>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "callcache/engine.h"
#include "callcache/internal/engine_access.h"
#include "callcache/load.h"

namespace callcache {

// A pinned, immutable cached value. Copyable (one atomic increment) and
// movable; never null unless moved from.
template <class V>
class Ref {
 public:
  Ref(const Ref& o) noexcept : e_(o.e_ ? internal::share(o.e_) : nullptr) {}
  Ref(Ref&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  Ref& operator=(Ref o) noexcept {
    std::swap(e_, o.e_);
    return *this;
  }
  ~Ref() {
    if (e_) internal::unref(e_);
  }

  const V& operator*() const noexcept { return *get(); }
  const V* operator->() const noexcept { return get(); }
  const V* get() const noexcept { return static_cast<const V*>(internal::value_of(e_)); }
  // When the value stops being fresh.
  TimePoint expires_at() const noexcept { return internal::expires_at(e_); }

  // Adopts an already pinned entry (for the library's own fronts).
  static Ref adopt(internal::Entry* e) noexcept { return Ref(e); }

 private:
  explicit Ref(internal::Entry* e) noexcept : e_(e) {}
  internal::Entry* e_;
};

// The Ref of a value updated in place (internal::kInPlace<V>): a copy of the
// value and its expiry, taken from the entry as of one moment. Trivially
// copyable; pins nothing once built.
template <class V>
  requires internal::kInPlace<V>
class Ref<V> {
 public:
  const V& operator*() const noexcept { return value_; }
  const V* operator->() const noexcept { return &value_; }
  const V* get() const noexcept { return &value_; }
  TimePoint expires_at() const noexcept { return expires_; }

  // Copies out of an already pinned entry and releases the pin.
  static Ref adopt(internal::Entry* e) noexcept {
    std::uint64_t word;
    const TimePoint expires = internal::read_in_place(e, &word);
    internal::unref(e);
    return of_word(word, expires);
  }
  // From the value word copied out of an entry (for the library's own fronts).
  static Ref of_word(std::uint64_t word, TimePoint expires) noexcept {
    std::array<unsigned char, sizeof(V)> bytes;
    std::memcpy(bytes.data(), &word, sizeof(V));
    return Ref(std::bit_cast<V>(bytes), expires);
  }

 private:
  Ref(const V& value, TimePoint expires) noexcept : value_(value), expires_(expires) {}
  V value_;
  TimePoint expires_;
};

// The bytes an entry is charged against max_bytes: size() for strings and
// contiguous byte containers, sizeof(V) otherwise. Supply your own SizeFn to
// Cache<V> for types that own heap memory.
template <class V>
struct DefaultSize {
  std::size_t operator()(const V& v) const noexcept {
    if constexpr (requires {
                    v.size();
                    v.data();
                  }) {
      return v.size() * sizeof(*v.data());
    } else {
      return sizeof(V);
    }
  }
};

namespace internal {
template <class V>
struct TypeTag {
  static constexpr char tag = 0;
};
template <class V>
const ValueOps* value_ops() noexcept {
  static const ValueOps ops = {
    &TypeTag<V>::tag,
#if defined(__GNUC__)
    __PRETTY_FUNCTION__,
#else
    "V",
#endif
    kInPlace<V> ? sizeof(std::uint64_t) : sizeof(V),
    kInPlace<V> ? alignof(std::uint64_t) : alignof(V),
    [](void* p) noexcept { static_cast<V*>(p)->~V(); },
    [](void* dst, void* src) noexcept {
      if constexpr (kInPlace<V>) std::memset(dst, 0, sizeof(std::uint64_t));  // the whole word
      ::new (dst) V(std::move(*static_cast<V*>(src)));
    },
    kInPlace<V> ? static_cast<std::uint8_t>(sizeof(V)) : std::uint8_t{0},
  };
  return &ops;
}

// Invokes a read-through callback with the result and, when it takes one,
// how the call was served. An exception it throws is discarded.
template <class V, class Callback>
void invoke_callback(Callback& cb, Result<Ref<V>> r, Served served) noexcept {
  try {
    if constexpr (std::is_invocable_v<Callback&, Result<Ref<V>>, Served>) {
      cb(std::move(r), served);
    } else {
      cb(std::move(r));
    }
  } catch (...) {  // documented: a throwing callback's exception is discarded
  }
}

// The typed read-through shared by Cache<V> and TieredCache<V>: looks the
// key up and, on anything but a fresh hit, hands over to the loading layer
// with a starter (which runs the loader).
template <class V>
struct TypedLoad {
  Engine* engine;
  NamespaceId ns;
  TenantId tenant;
  std::string_view key;
  const LoadOptions* options;
  bool blocking_loader;
  AfterStore after_store;
  // What probe() found, when it was not a fresh hit (pinned; run() takes it).
  Entry* entry = nullptr;
  Freshness freshness = Freshness::kMiss;

  TypedLoad(Engine* engine, NamespaceId ns, TenantId tenant, std::string_view key,
            const LoadOptions* options, bool blocking_loader)
      : engine(engine),
        ns(ns),
        tenant(tenant),
        key(key),
        options(options),
        blocking_loader(blocking_loader) {}
  TypedLoad(const TypedLoad&) = delete;
  TypedLoad& operator=(const TypedLoad&) = delete;
  ~TypedLoad() {
    if (entry) unref(entry);
  }

  // A fresh hit (counted), else nullopt with the lookup kept for run().
  std::optional<Ref<V>> probe() {
    entry = EngineAccess::lookup_for_load(*engine, ns, tenant, key, &freshness);
    if (entry && freshness == Freshness::kFresh) {
      EngineAccess::record(*engine, ns, LoadEvent::kHit);
      return Ref<V>::adopt(std::exchange(entry, nullptr));
    }
    return std::nullopt;
  }

  // probe(), and on a fresh hit hands it to `callback`. True if it did.
  template <class Callback>
  bool serve_hit(Callback& callback) {
    auto hit = probe();
    if (hit) invoke_callback<V>(callback, Result<Ref<V>>(std::move(*hit)), Served::kHit);
    return hit.has_value();
  }

  // Everything but a fresh hit. REQUIRES: probe() found no fresh hit.
  void run(LoadStarter starter, LoadReceiver receiver) {
    LoadCall call{engine,          ns,         tenant, key, options, std::move(starter),
                  blocking_loader, after_store};
    load_slow(call, std::exchange(entry, nullptr), freshness, std::move(receiver));
  }
};

// Blocks until a load's receiver ran; the result as a Result<Ref<V>>.
template <class V>
class BlockingSlot {
 public:
  LoadReceiver receiver() {
    return [this](Entry* got, Status status, Served) {
      std::lock_guard lock(mu_);
      entry_ = got;
      status_ = std::move(status);
      ready_ = true;
      cv_.notify_one();  // under the lock: the slot may die as soon as it is released
    };
  }
  Result<Ref<V>> wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return ready_; });
    if (entry_) return Ref<V>::adopt(entry_);
    return std::move(status_);
  }

 private:
  std::mutex mu_;  // guards ready_, entry_, status_
  std::condition_variable cv_;
  bool ready_ = false;
  Entry* entry_ = nullptr;
  Status status_;
};

// Adapts a typed callback to a LoadReceiver.
template <class V, class Callback>
LoadReceiver typed_receiver(std::shared_ptr<Callback> cb) {
  return [cb = std::move(cb)](Entry* got, Status status, Served served) {
    if (got) {
      invoke_callback<V>(*cb, Result<Ref<V>>(Ref<V>::adopt(got)), served);
    } else {
      invoke_callback<V>(*cb, Result<Ref<V>>(std::move(status)), served);
    }
  };
}

}  // namespace internal

template <class V, class SizeFn = DefaultSize<V>>
class Cache {
  static_assert(std::is_nothrow_move_constructible_v<V> || std::is_copy_constructible_v<V>,
                "cached values must be movable or copyable");

 public:
  using value_type = V;

  // Opens the typed front of namespace `ns`. Errors: kNotFound for an unknown
  // namespace; kInvalidArgument if the namespace is already bound to another
  // value type.
  static Result<Cache> open(Engine& engine, std::string_view ns, SizeFn size = {}) {
    auto id = internal::EngineAccess::bind(engine, ns, internal::value_ops<V>());
    if (!id.ok()) return id.status();
    return Cache(engine, *id, std::move(size));
  }

  // The fresh value for (tenant, key), or nullopt (miss, expired, or a
  // remembered failure). Never blocks on a load.
  std::optional<Ref<V>> get(TenantId tenant, std::string_view key) const {
    if constexpr (internal::kInPlace<V>) {
      std::uint64_t word;
      TimePoint expires;
      if (!internal::EngineAccess::lookup_copy(*engine_, ns_, tenant, key, &word, &expires)) {
        return std::nullopt;
      }
      return Ref<V>::of_word(word, expires);
    } else {
      internal::Entry* e = internal::EngineAccess::lookup(*engine_, ns_, tenant, key);
      if (!e) return std::nullopt;
      return Ref<V>::adopt(e);
    }
  }

  // The fresh value for (tenant, key) when memory holds one, counted as a
  // read-through hit; else nullopt, counting nothing (then call
  // get_or_load or get_or_load_async, which look again and count the miss).
  // The fast path for callers that build a loader only when it may run.
  std::optional<Ref<V>> hit(TenantId tenant, std::string_view key) const {
    LoadOptions none;
    internal::TypedLoad<V> load(engine_, ns_, tenant, key, &none, false);
    return load.probe();
  }

  // Stores `value` (replacing any previous value for the key).
  // Errors: kInvalidArgument (empty key), kTooLarge (value larger than the
  // namespace's byte budget: not stored, counted), kShutdown.
  Status put(TenantId tenant, std::string_view key, V value, const PutOptions& options = {}) {
    std::size_t charge = size_(value);
    return internal::EngineAccess::insert(*engine_, ns_, tenant, key, &value, charge, options);
  }

  // Drops one key. Returns true if it was present.
  bool erase(TenantId tenant, std::string_view key) {
    return internal::EngineAccess::erase(*engine_, ns_, tenant, key);
  }

  // ---- Loading (single flight; semantics in callcache/load.h) ----

  // Blocking form. Returns the value for (tenant, key); on a miss runs
  // `loader` — on this thread if this caller starts the load, otherwise waits
  // for the caller that did — and stores what it returns.
  //   loader: callable as `loader()` returning Result<V>, Result<Loaded<V>>,
  //   V or Loaded<V>. Exceptions it throws become kLoadFailed.
  // Errors: the loader's error (every waiter gets the same Status, also when
  // remembered by negative_ttl); kTimeout (load_timeout); kDeadlineExceeded
  // (options.wait_timeout); kInvalidArgument (empty key); kShutdown (the
  // engine was destroyed during the load). A loaded value that cannot be
  // cached (too large, engine shut down, Retain::kNone, overtaken by an
  // invalidation) is still returned, uncached.
  // Blocks the calling thread while a load runs. Returns at once with the
  // stale value when one may be served.
  // REQUIRES: when the namespace has stale_ttl or refresh_ahead, `loader` may
  // be copied and run after this call returns, on another thread: it must
  // not capture references to the caller's stack.
  template <class Loader>
  Result<Ref<V>> get_or_load(TenantId tenant, std::string_view key, Loader&& loader,
                             const LoadOptions& options = {}) {
    internal::TypedLoad<V> load(engine_, ns_, tenant, key, &options, true);
    if (auto hit = load.probe()) return std::move(*hit);
    auto held = std::make_shared<std::decay_t<Loader>>(std::forward<Loader>(loader));
    internal::BlockingSlot<V> slot;  // lives until the receiver has run: wait() returns only then
    load.run(
        [held, size = size_](std::shared_ptr<internal::LoadSink> sink) {
          LoadCompletion<V> done(std::move(sink), size);
          internal::run_blocking_loader<V>(*held, done);
        },
        slot.receiver());
    return slot.wait();
  }

  // Callback form: never parks a thread. The callback is invoked exactly
  // once, as `callback(Result<Ref<V>>, Served)` when it takes both, else as
  // `callback(Result<Ref<V>>)`: inline on a hit (or a remembered failure),
  // else on the thread that completes the load (the loader's completion, the
  // scheduler thread for timeouts). On a miss this caller may start the load:
  //   loader: callable as `loader(LoadCompletion<V> done)`; it starts the work
  //   and returns; `done(...)` is called once later, from any thread (see
  //   LoadCompletion). It is invoked inline, also for background refreshes,
  //   so it must not block. Exceptions it throws become kLoadFailed.
  // Errors as for get_or_load. Both callables may be move-only.
  // REQUIRES: callback does not throw (an exception from it is discarded);
  // the Engine outlives the load.
  template <class AsyncLoader, class Callback>
  void get_or_load_async(TenantId tenant, std::string_view key, AsyncLoader&& loader,
                         Callback&& callback, const LoadOptions& options = {}) {
    internal::TypedLoad<V> load(engine_, ns_, tenant, key, &options, false);
    if (load.serve_hit(callback)) return;
    auto held = std::make_shared<std::decay_t<AsyncLoader>>(std::forward<AsyncLoader>(loader));
    auto cb = std::make_shared<std::decay_t<Callback>>(std::forward<Callback>(callback));
    load.run(
        [held, size = size_](std::shared_ptr<internal::LoadSink> sink) {
          LoadCompletion<V> done(std::move(sink), size);
          internal::run_async_loader<V>(*held, done);
        },
        internal::typed_receiver<V>(std::move(cb)));
  }

  Engine& engine() const noexcept { return *engine_; }
  NamespaceId id() const noexcept { return ns_; }
  const SizeFn& size_fn() const noexcept { return size_; }

 private:
  Cache(Engine& engine, NamespaceId ns, SizeFn size)
      : engine_(&engine), ns_(ns), size_(std::move(size)) {}

  Engine* engine_;
  NamespaceId ns_;
  SizeFn size_;
};

}  // namespace callcache
