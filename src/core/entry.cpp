#include "entry.h"

#include <algorithm>
#include <cstring>
#include <memory>

namespace callcache::internal {
namespace {

std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }

std::size_t payload_align(const ValueOps* ops) {
  return ops ? std::max<std::size_t>(ops->align, 1) : alignof(Status);
}
std::size_t payload_size(const ValueOps* ops) { return ops ? ops->size : sizeof(Status); }

}  // namespace

std::size_t Entry::value_offset() const noexcept {
  return align_up(sizeof(Entry), payload_align(ops_));
}

std::size_t Entry::key_offset() const noexcept { return value_offset() + payload_size(ops_); }

Entry* Entry::create(const ValueOps* ops, void* value, const Status* error, TenantId tenant,
                     std::string_view key, std::uint32_t charge, TimePoint expire,
                     std::uint32_t version) {
  const std::size_t align = std::max(payload_align(ops), alignof(Entry));
  const std::size_t value_at = align_up(sizeof(Entry), payload_align(ops));
  const std::size_t total = value_at + payload_size(ops) + key.size();
  void* mem = align > __STDCPP_DEFAULT_NEW_ALIGNMENT__ ? ::operator new(total, std::align_val_t(align))
                                                       : ::operator new(total);
  Entry* e = ::new (mem) Entry();
  e->ops_ = ops;
  e->expire_ = expire;
  e->tenant_ = tenant;
  e->charge_ = charge;
  e->version_ = version;
  e->key_len_ = static_cast<std::uint16_t>(key.size());
  char* base = static_cast<char*>(mem);
  if (ops) {
    ops->move_construct(base + value_at, value);
  } else {
    ::new (base + value_at) Status(*error);
    e->flags_ = kNegative;
  }
  if (!key.empty()) std::memcpy(base + value_at + payload_size(ops), key.data(), key.size());
  return e;
}

void Entry::destroy() noexcept {
  void* payload = reinterpret_cast<char*>(this) + value_offset();
  const std::size_t align = std::max(payload_align(ops_), alignof(Entry));
  if (ops_) {
    ops_->destroy(payload);
  } else {
    static_cast<Status*>(payload)->~Status();
  }
  this->~Entry();
  if (align > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
    ::operator delete(static_cast<void*>(this), std::align_val_t(align));
  } else {
    ::operator delete(static_cast<void*>(this));
  }
}

// Public pin helpers (declared in callcache/engine.h).
void ref(Entry* e) noexcept { e->ref(); }
void unref(Entry* e) noexcept { e->unref(); }
const void* value_of(const Entry* e) noexcept { return e->value(); }
const Status& error_of(const Entry* e) noexcept { return e->error(); }
TimePoint expires_at(const Entry* e) noexcept { return e->expire(); }

}  // namespace callcache::internal
