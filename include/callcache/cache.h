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
// the caller holds it. Values are immutable once stored.
//
// Thread-safety: a Cache<V> is a small handle (engine pointer + namespace id);
// copies may be used concurrently from any thread. REQUIRES: the Engine
// outlives every Cache<V> opened on it (Refs may outlive both).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "callcache/engine.h"

namespace callcache {

// A pinned, immutable cached value. Copyable (one atomic increment) and
// movable; never null unless moved from.
template <class V>
class Ref {
 public:
  Ref(const Ref& o) noexcept : e_(o.e_) {
    if (e_) internal::ref(e_);
  }
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

  // Adopts an already pinned entry (for the engine's own fronts).
  static Ref adopt(internal::Entry* e) noexcept { return Ref(e); }

 private:
  explicit Ref(internal::Entry* e) noexcept : e_(e) {}
  internal::Entry* e_;
};

// The bytes an entry is charged against max_bytes: size() for strings and
// contiguous byte containers, sizeof(V) otherwise. Supply your own SizeFn to
// Cache<V> for types that own heap memory.
template <class V>
struct DefaultSize {
  std::size_t operator()(const V& v) const noexcept {
    if constexpr (requires { v.size(); v.data(); }) {
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
      sizeof(V),
      alignof(V),
      [](void* p) noexcept { static_cast<V*>(p)->~V(); },
      [](void* dst, void* src) noexcept { ::new (dst) V(std::move(*static_cast<V*>(src))); },
  };
  return &ops;
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
    auto id = engine.bind(ns, internal::value_ops<V>());
    if (!id.ok()) return id.status();
    return Cache(engine, *id, std::move(size));
  }

  // The fresh value for (tenant, key), or nullopt (miss, expired, or a
  // remembered failure). Never blocks on a load.
  std::optional<Ref<V>> get(TenantId tenant, std::string_view key) const {
    internal::Entry* e = engine_->lookup(ns_, tenant, key);
    if (!e) return std::nullopt;
    return Ref<V>::adopt(e);
  }

  // Stores `value` (replacing any previous value for the key).
  // Errors: kInvalidArgument (empty key), kTooLarge (value larger than the
  // namespace's byte budget: not stored, counted), kShutdown.
  Status put(TenantId tenant, std::string_view key, V value, const PutOptions& options = {}) {
    std::size_t charge = size_(value);
    return engine_->insert(ns_, tenant, key, &value, charge, options);
  }

  // Drops one key. Returns true if it was present.
  bool erase(TenantId tenant, std::string_view key) { return engine_->erase(ns_, tenant, key); }

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
