#include "entry.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <memory>
#include <mutex>

#include "reclaim.h"
#include "slab.h"

namespace callcache::internal {
namespace {

// REQUIRES: a is a power of two (an alignment).
std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) & ~(a - 1); }

std::size_t payload_align(const ValueOps* ops) {
  return ops ? std::max<std::size_t>(ops->align, 1) : alignof(Status);
}
std::size_t payload_size(const ValueOps* ops) { return ops ? ops->size : sizeof(Status); }

}  // namespace

namespace {

constexpr int kMaxTypes = 256;
std::array<std::atomic<const ValueOps*>, kMaxTypes> g_types{};  // [0] unused (negative)
std::atomic<int> g_type_count{1};
std::mutex g_type_mu;  // serialises registration

}  // namespace

Result<std::uint8_t> register_type(const ValueOps* ops) {
  std::lock_guard lock(g_type_mu);
  int n = g_type_count.load(std::memory_order_relaxed);
  for (int i = 1; i < n; ++i) {
    if (g_types[static_cast<std::size_t>(i)].load(std::memory_order_relaxed)->type_tag ==
        ops->type_tag) {
      return static_cast<std::uint8_t>(i);
    }
  }
  if (n == kMaxTypes)
    return Status::resource_exhausted("more than 255 distinct cached value types");
  g_types[static_cast<std::size_t>(n)].store(ops, std::memory_order_release);
  g_type_count.store(n + 1, std::memory_order_release);
  return static_cast<std::uint8_t>(n);
}

const ValueOps* Entry::ops() const noexcept {
  return type_ ? g_types[type_].load(std::memory_order_acquire) : nullptr;
}

std::size_t Entry::value_offset() const noexcept {
  return align_up(sizeof(Entry) + key_len_, payload_align(ops()));
}

std::uint32_t Entry::out_of_line_charge() const noexcept {
  const ValueOps* o = ops();
  const std::size_t value_end = value_offset() + payload_size(o);
  std::uint32_t c;
  std::memcpy(&c, reinterpret_cast<const char*>(this) + charge_offset(value_end), sizeof c);
  return c;
}

Entry* Entry::create(const ValueOps* ops, std::uint8_t type, void* value, const Status* error,
                     TenantId tenant, std::string_view key, std::uint32_t charge, TimePoint expire,
                     std::uint16_t version) {
  const std::size_t align = std::max(payload_align(ops), alignof(Entry));
  const std::size_t value_at = align_up(sizeof(Entry) + key.size(), payload_align(ops));
  const std::size_t value_end = value_at + payload_size(ops);
  const bool charge_out_of_line = charge >= kChargeOutOfLine;
  const std::size_t total =
      charge_out_of_line ? charge_offset(value_end) + sizeof(std::uint32_t) : value_end;
  void* mem = align <= SlabAllocator::kGranule ? SlabAllocator::global().allocate(total) : nullptr;
  const bool in_slab = mem != nullptr;
  if (!in_slab) {
    mem = align > __STDCPP_DEFAULT_NEW_ALIGNMENT__ ? ::operator new(total, std::align_val_t(align))
                                                   : ::operator new(total);
  }
  assert((reinterpret_cast<std::uintptr_t>(mem) & 7) == 0 &&
         (reinterpret_cast<std::uintptr_t>(mem) >> 47) == 0 && "prev()/next() keep 44 bits");
  Entry* e = ::new (mem) Entry();
  if (in_slab) e->set(kInSlab);
  e->type_ = ops ? type : 0;
  e->expire_ns_.store(expire.time_since_epoch().count(), std::memory_order_relaxed);
  e->tenant_ = tenant;
  e->version_ = version;
  e->key_len_ = static_cast<std::uint16_t>(key.size());
  char* base = static_cast<char*>(mem);
  if (charge_out_of_line) {
    e->charge_ = kChargeOutOfLine;
    std::memcpy(base + charge_offset(value_end), &charge, sizeof charge);
  } else {
    e->charge_ = static_cast<std::uint16_t>(charge);
  }
  if (ops) {
    ops->move_construct(base + value_at, value);
  } else {
    ::new (base + value_at) Status(*error);
  }
  if (!key.empty()) std::memcpy(base + sizeof(Entry), key.data(), key.size());
  return e;
}

void Entry::destroy() noexcept {
  const ValueOps* o = ops();
  const std::size_t value_at = align_up(sizeof(Entry) + key_len_, payload_align(o));
  void* payload = reinterpret_cast<char*>(this) + value_at;
  const std::size_t align = std::max(payload_align(o), alignof(Entry));
  if (o) {
    o->destroy(payload);
  } else {
    static_cast<Status*>(payload)->~Status();
  }
  const bool in_slab = has(kInSlab);
  const std::size_t value_end = value_at + payload_size(o);  // as in create()
  const std::size_t total =
      charge_ == kChargeOutOfLine ? charge_offset(value_end) + sizeof(std::uint32_t) : value_end;
  this->~Entry();
  if (in_slab) {
    SlabAllocator::global().deallocate(this, total);
  } else if (align > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
    ::operator delete(static_cast<void*>(this), std::align_val_t(align));
  } else {
    ::operator delete(static_cast<void*>(this));
  }
}

// Public pin helpers (declared in callcache/engine.h). A handle is either an
// entry holding a reference, or — low bit set — the address of the reader
// record pin slot (reclaim.h) that holds the entry (Engine::lookup).
namespace {

bool is_pin(const Entry* e) noexcept { return reinterpret_cast<std::uintptr_t>(e) & 1; }
std::atomic<void*>* slot_of(const Entry* e) noexcept {
  return reinterpret_cast<std::atomic<void*>*>(reinterpret_cast<std::uintptr_t>(e) &
                                               ~std::uintptr_t{1});
}
const Entry* entry_of(const Entry* e) noexcept {
  return is_pin(e) ? static_cast<const Entry*>(slot_of(e)->load(std::memory_order_acquire)) : e;
}

}  // namespace

Entry* pin_handle(std::atomic<void*>* slot) noexcept {
  return reinterpret_cast<Entry*>(reinterpret_cast<std::uintptr_t>(slot) | 1);
}

void ref(Entry* e) noexcept { const_cast<Entry*>(entry_of(e))->ref(); }
Entry* share(Entry* e) noexcept {
  Entry* x = const_cast<Entry*>(entry_of(e));
  x->ref();
  return x;
}
void unref(Entry* e) noexcept {
  if (is_pin(e)) {
    release_pin(slot_of(e));
  } else {
    e->unref();
  }
}
const void* value_of(const Entry* e) noexcept { return entry_of(e)->value(); }
const Status& error_of(const Entry* e) noexcept { return entry_of(e)->error(); }
TimePoint expires_at(const Entry* e) noexcept { return entry_of(e)->expire(); }
TimePoint read_in_place(const Entry* e, std::uint64_t* word) noexcept {
  return entry_of(e)->read_in_place(word);
}

}  // namespace callcache::internal
