// callcache/tiered_cache.h — the library's read path with a second tier:
// reads through L1 (the in-memory Cache<V>), L2 (a Backend: SQLite or Redis)
// and one coalesced load, keeps working when L2 fails, and invalidates both
// tiers (also loads in flight, and other processes sharing L2).
//
// TieredCache<V, C> (below) is a typed cache over one namespace of a Tiers
// (callcache/tiers.h: an Engine and a Backend used together) that reads
// L1 → L2 → loader, in a blocking form, a callback form, and
// (callcache/asio_cache.h) an Asio awaitable form. Wrap the Backend in a
// DegradingBackend (callcache/degrading_backend.h) so that an L2 outage costs
// a counter increment per call instead of a timeout.
//
// Thread-safety: all members may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "callcache/backend.h"
#include "callcache/cache.h"
#include "callcache/clock.h"
#include "callcache/codec.h"
#include "callcache/load.h"
#include "callcache/status.h"
#include "callcache/tiers.h"

namespace callcache {

// A typed cache over one namespace that reads L1 → L2 → loader, as one
// coalesced load per key:
//   - an L1 hit never touches L2;
//   - on an L1 miss, ONE caller per key (the single flight covers the whole
//     path) reads L2; an L2 hit is decoded with the codec and fills L1 with
//     the value's REMAINING ttl and its tags; an L2 miss runs the loader.
//     N concurrent misses make one L2 read and at most one load;
//   - a loaded value is kept where Loaded<V>::retain says: in L1 and, for
//     Retain::kAllTiers, written through to L2 (ttl: the loader's
//     Loaded<V>::ttl, else the namespace ttl) — after L1 stored it, so a load
//     overtaken by an invalidation reaches neither tier. Failed loads are
//     never written to L2;
//   - stale-while-revalidate and refresh-ahead as for Cache<V>
//     (callcache/load.h); a refresh reads L2 first too;
//   - put() writes both tiers; erase()/invalidate_*() go through Tiers.
//   An L2 value whose remaining ttl is inside the namespace's refresh_ahead
//   window is treated as a miss (so a refresh really reloads). Values that
//   fail to decode count as decode_errors and are reloaded. Shared namespaces
//   (policy.shared) store under kSharedTenant in L2 too.
//
// Codecs (callcache/codec.h) turn V into L2 bytes and back; any type with
// `std::string encode(const V&) const` and `Result<V> decode(string_view)
// const` works (CodecFunctions<V> takes two functions). An encode that
// throws counts as an encode error and the value stays in L1 only.
//
// The L2 read runs on the thread of the call that leads the load (a
// blocking call for SQLite, a network round trip for Redis).
//
// Thread-safety: all members may be called from any thread.
// Ownership: TieredCache borrows the Tiers (or, built from a Cache<V> and a
// Backend, owns a private one); the Engine and the Backend must outlive it
// and any background refresh it started.
template <class V, class C = DefaultCodec<V>, class SizeFn = DefaultSize<V>>
requires Codec<C, V>
class TieredCache {
 public:
  using value_type = V;

  // The typed front of namespace `ns` over `tiers`. Errors as Cache<V>::open.
  static Result<TieredCache> open(Tiers& tiers, std::string_view ns, C codec = {},
                                  SizeFn size = {}) {
    auto l1 = Cache<V, SizeFn>::open(tiers.engine(), ns, std::move(size));
    if (!l1.ok()) return l1.status();
    return TieredCache(Private{}, std::move(*l1), tiers, nullptr, std::move(codec));
  }

  // `l1`: the in-memory front of the namespace. `l2`: the second tier, or
  // nullptr for L1 + loader only. Invalidation goes through a private Tiers
  // over the Engine and `l2`. REQUIRES: the Engine and `l2` outlive this
  // object and its background refreshes.
  TieredCache(Cache<V, SizeFn> l1, Backend* l2, C codec = {})
      : TieredCache(Private{}, l1, std::make_shared<Tiers>(l1.engine(), l2), std::move(codec)) {}

  // L1 only: the fresh value or nullopt. Never touches L2 or a loader.
  std::optional<Ref<V>> get(TenantId tenant, std::string_view key) const {
    return l1_.get(tenant, key);
  }

  // L1 only, as Cache<V>::hit: a fresh value counted as a read-through hit,
  // else nullopt counting nothing (then call get_or_load or
  // get_or_load_async). For callers that build a loader only when it may run.
  std::optional<Ref<V>> hit(TenantId tenant, std::string_view key) const {
    return l1_.hit(tenant, key);
  }

  // Blocking form: the value for (tenant, key) through L1 → L2 → `loader`.
  //   loader: callable as `loader()` returning Result<V>, Result<Loaded<V>>,
  //   V or Loaded<V>; copied, and may run later on another thread for a
  //   background refresh (capture by value).
  // Errors: as Cache<V>::get_or_load (the loader's error, kTimeout, ...);
  // never an L2 error. Blocks the calling thread while a load runs.
  template <class Loader>
  Result<Ref<V>> get_or_load(TenantId tenant, std::string_view key, Loader loader,
                             const LoadOptions& options = {}) {
    internal::TypedLoad<V> load(&l1_.engine(), l1_.id(), tenant, key, &options, true);
    if (auto hit = load.probe()) return std::move(*hit);
    internal::BlockingSlot<V> slot;  // lives until the receiver ran: wait() returns only then
    load.run(prepare<true>(load, std::move(loader)), slot.receiver());
    return slot.wait();
  }

  // Callback form: the value for (tenant, key) through L1 → L2 → `loader`,
  // without parking a thread. Usable from any runtime (an event loop, a
  // foreign-language binding) with any V and codec.
  //   loader: callable as `loader(LoadCompletion<V> done)`: it starts the
  //   work and returns; `done(...)` is then called once, from any thread,
  //   with a V, Loaded<V>, Result<V>, Result<Loaded<V>> or an error Status.
  //   It is invoked inline on the calling thread, after the L2 read missed,
  //   also for background refreshes (on the thread of the read that found
  //   the value stale), so it must not block. Copied for refreshes.
  //   callback: invoked exactly once, as `callback(Result<Ref<V>>, Served)`
  //   when it takes both, else `callback(Result<Ref<V>>)`: inline when the
  //   value is in L1 or L2 (or a remembered failure), else on the thread
  //   that calls `done` (or the engine scheduler's thread for a load or wait
  //   timeout). It may be move-only.
  // Returns nothing; the result (never an L2 error) is the callback's.
  // Ownership: the call keeps the loader and callback until they have run
  // and the loaded value in the tiers; the caller keeps nothing alive but
  // the TieredCache's Engine and Backend.
  // REQUIRES: callback does not throw (an exception from it is discarded);
  // the Engine and Backend outlive the load; V's destructor may run on any
  // thread (whichever drops the last Ref).
  template <class AsyncLoader, class Callback>
  void get_or_load_async(TenantId tenant, std::string_view key, AsyncLoader loader,
                         Callback&& callback, const LoadOptions& options = {}) {
    internal::TypedLoad<V> load(&l1_.engine(), l1_.id(), tenant, key, &options, false);
    if (load.serve_hit(callback)) return;
    auto cb = std::make_shared<std::decay_t<Callback>>(std::forward<Callback>(callback));
    load.run(prepare<false>(load, std::move(loader)), internal::typed_receiver<V>(std::move(cb)));
  }

  // Stores `value` in L1 and writes it through to L2 (ttl: options.ttl, else
  // the namespace ttl; tags: options.tags). Errors: L1's (kInvalidArgument,
  // kTooLarge, kShutdown); L2 failures are counted, not returned.
  Status put(TenantId tenant, std::string_view key, V value, const PutOptions& options = {}) {
    if (core_->tiers->l2()) {
      core_->write_through(tenant, key, value, options.ttl.value_or(core_->ttl), options.tags,
                           core_->tiers->now_us());
    }
    return l1_.put(tenant, key, std::move(value), options);
  }

  // Drops the key from both tiers. Returns true if it was in L1.
  bool erase(TenantId tenant, std::string_view key) {
    const bool present = l1_.erase(tenant, key);
    (void)core_->tiers->invalidate(core_->ns, tenant, key);
    return present;
  }

  // Drops every entry of the namespace in both tiers (O(1) version bumps).
  Status invalidate_namespace() { return core_->tiers->invalidate_namespace(core_->ns); }
  // Drops every entry of `tenant` in both tiers, in EVERY namespace (the
  // engine and backends drop tenants across namespaces).
  Status invalidate_tenant(TenantId tenant) {
    core_->tiers->invalidate_tenant(tenant);
    return Status();
  }
  // Drops every entry carrying `tag` in both tiers, in EVERY namespace.
  // Returns L1 entries dropped.
  std::uint64_t invalidate_tag(std::string_view tag) { return core_->tiers->invalidate_tag(tag); }

  // This namespace's L2 counters.
  TieredStats stats() const { return core_->counters.snapshot(); }

  Cache<V, SizeFn>& l1() noexcept { return l1_; }
  Backend* l2() const noexcept { return core_->tiers->l2(); }
  Tiers& tiers() const noexcept { return *core_->tiers; }
  const C& codec() const noexcept { return core_->codec; }

 private:
  // What a (possibly background) load needs; shared with in-flight loads.
  struct Core {
    std::shared_ptr<Tiers> owned;  // set when built from a Cache<V> and a Backend
    Tiers* tiers = nullptr;
    C codec;
    SizeFn size;
    std::string ns;
    bool shared = false;
    Duration ttl{};
    Duration refresh_ahead{};
    internal::TieredCounters counters;

    TenantId stored_as(TenantId t) const { return shared ? kSharedTenant : t; }

    void write_through(TenantId tenant, std::string_view key, const V& value, Duration ttl,
                       const std::vector<std::string>& tags, std::int64_t loaded_at_us) {
      std::string bytes;
      try {
        bytes = codec.encode(value);
      } catch (...) {  // e.g. JSON of invalid UTF-8: keep the value in L1 only
        tiers->count(&internal::TieredCounters::encode_errors, counters);
        return;
      }
      tiers->write(ns, stored_as(tenant), key, bytes, ttl, tags, loaded_at_us, counters);
    }

    // After L1 stored a loaded value: write it through to L2 when the loader
    // asked for every tier (not for a value L2 itself supplied).
    void after_store(TenantId tenant, std::string_view key, const V& stored,
                     const internal::LoadOutcome& out, std::int64_t loaded_at_us) {
      if (!tiers->l2() || out.from_second_tier || out.retain != Retain::kAllTiers) return;
      write_through(tenant, key, stored, out.put.ttl.value_or(ttl), out.put.tags, loaded_at_us);
    }

    // The value L2 holds for the key, decoded, for a load to complete with.
    std::optional<Loaded<V>> read(TenantId tenant, std::string_view key) {
      auto found = tiers->read(ns, stored_as(tenant), key, refresh_ahead, counters);
      if (!found) return std::nullopt;
      auto v = codec.decode(found->bytes);
      if (!v.ok()) {
        tiers->count(&internal::TieredCounters::decode_errors, counters);
        return std::nullopt;
      }
      tiers->count(&internal::TieredCounters::l2_hits, counters);
      return Loaded<V>{std::move(*v), found->ttl_left, std::move(found->tags), Retain::kMemoryOnly};
    }
  };

  struct Private {};
  TieredCache(Private, Cache<V, SizeFn> l1, std::shared_ptr<Tiers> owned, C codec)
      : TieredCache(Private{}, std::move(l1), *owned, owned, std::move(codec)) {}
  TieredCache(Private, Cache<V, SizeFn> l1, Tiers& tiers, std::shared_ptr<Tiers> owned, C codec)
      : l1_(std::move(l1)), core_(std::make_shared<Core>()) {
    const NamespacePolicy& p = l1_.engine().policy(l1_.id());
    core_->owned = std::move(owned);
    core_->tiers = &tiers;
    core_->codec = std::move(codec);
    core_->size = l1_.size_fn();
    core_->ns = l1_.engine().name(l1_.id());
    core_->shared = p.shared;
    core_->ttl = p.ttl;
    core_->refresh_ahead = p.refresh_ahead;
  }

  // Makes `load` write through to L2 after a store, and returns the flight's
  // loader: L2 first, then the caller's loader. The two share the load's
  // wall-clock start time (what invalidation markers are compared with).
  template <bool kBlocking, class Loader>
  internal::LoadStarter prepare(internal::TypedLoad<V>& load, Loader loader) const {
    auto started = std::make_shared<std::atomic<std::int64_t>>(0);
    auto key = std::make_shared<const std::string>(load.key);
    const TenantId tenant = load.tenant;
    load.after_store = [core = core_, tenant, key, started](const void* stored,
                                                            const internal::LoadOutcome& out) {
      core->after_store(tenant, *key, *static_cast<const V*>(stored), out,
                        started->load(std::memory_order_acquire));
    };
    auto held = std::make_shared<Loader>(std::move(loader));
    return [core = core_, held, tenant, key, started](std::shared_ptr<internal::LoadSink> sink) {
      started->store(core->tiers->now_us(), std::memory_order_release);
      read_or_load<kBlocking>(core, held, tenant, key, std::move(sink), false);
    };
  }

  // Completes `sink` with a value L2 supplied: into L1 with its remaining ttl
  // and tags, and not written back to L2.
  template <class Found>
  static void complete_from_second_tier(const Core& core, internal::LoadSink& sink, Found& found) {
    internal::LoadOutcome out;
    out.value = &found.value;
    out.charge = core.size(found.value);
    out.put.ttl = found.ttl;
    out.put.tags = std::move(found.tags);
    out.retain = Retain::kMemoryOnly;
    out.from_second_tier = true;
    internal::complete_load(sink, out);
  }

  // Completes `sink` with the L2 value if there is one. Else, with a
  // coordinator, takes the key's lease and loads (releasing the lease once
  // the value is in both tiers), or — another process holds it — waits for
  // that process (at most lease_wait; this thread for the blocking form, the
  // coordinator's otherwise) and starts over once (`waited`), loading
  // without a lease if L2 still misses.
  template <bool kBlocking, class Loader>
  static void read_or_load(const std::shared_ptr<Core>& core, const std::shared_ptr<Loader>& held,
                           TenantId tenant, const std::shared_ptr<const std::string>& key,
                           std::shared_ptr<internal::LoadSink> sink, bool waited) {
    Tiers& tiers = *core->tiers;
    using K = internal::TieredCounters;
    TierCoordinator* co = tiers.coordinator();
    std::string lease, token;
    if (tiers.l2()) {
      if (auto found = core->read(tenant, *key)) {
        if (waited) tiers.count(&K::lease_wait_hits, core->counters);
        complete_from_second_tier(*core, *sink, *found);
        return;
      }
      if (co && !waited) {
        lease = Tiers::lease_name(core->ns, core->stored_as(tenant), *key);
        auto got = co->try_lease(lease, tiers.options().lease_ttl);
        if (got.ok() && *got) {
          // The previous holder may have finished between our read and our
          // claim: look once more before loading.
          if (auto found = core->read(tenant, *key)) {
            co->release_lease(lease, **got);
            complete_from_second_tier(*core, *sink, *found);
            return;
          }
          token = std::move(**got);
          tiers.count(&K::leases_taken, core->counters);
        } else if (got.ok()) {  // another process is loading it: wait for its value
          tiers.count(&K::lease_waits, core->counters);
          const Duration wait = tiers.options().lease_wait;
          if constexpr (kBlocking) {
            auto gate = std::make_shared<internal::Gate>();
            co->wait_lease(lease, wait, [gate] { gate->open(); });
            gate->wait_for(wait + std::chrono::milliseconds(100));
          } else {
            co->wait_lease(lease, wait, [core, held, tenant, key, sink]() mutable {
              read_or_load<kBlocking>(core, held, tenant, key, std::move(sink), true);
            });
            return;
          }
          read_or_load<kBlocking>(core, held, tenant, key, std::move(sink), true);
          return;
        }
      }
    }
    tiers.count(&K::loads, core->counters);
    LoadCompletion<V> done(std::move(sink), core->size);
    if (!token.empty()) {
      done.set_finisher([co, lease = std::move(lease), token = std::move(token)] {
        co->release_lease(lease, token);
      });
    }
    if constexpr (kBlocking) {
      internal::run_blocking_loader<V>(*held, done);
    } else {
      internal::run_async_loader<V>(*held, done);
    }
  }

  Cache<V, SizeFn> l1_;
  std::shared_ptr<Core> core_;
};

}  // namespace callcache
