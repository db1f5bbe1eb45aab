// Tiers: how TieredCache values and invalidation markers are kept in L2.
//
// A value is stored as a record (tier_record.h):
//   "\xff" "cc" "\x01"       magic and format version (never the start of
//                            JSON or UTF-8 text, so plain values are told apart)
//   int64 LE                 wall-clock µs at which the load began
//   uint16 LE                number of tags
//   (uint16 LE len, bytes)*  the tags
//   bytes                    the codec's bytes
// A marker is a value in the namespace "_callcache_inv" (tenant
// kSharedTenant) holding the decimal wall-clock µs of an invalidation; its
// key names what was invalidated:
//   "k\x1f<ns>\x1f<tenant hex>\x1f<key>"   one key
//   "n\x1f<ns>"                            a namespace
//   "u\x1f<tenant hex>"                    a tenant
//   "t\x1f<tag>"                           a tag
// A record whose load began no later than a marker covering it is hidden.
// The invalidation that writes a marker has already dropped L1 and bumped
// the engine's epoch, so a load in flight in this process is not stored in
// L1; in any process, what it writes to L2 afterwards is hidden by the
// marker. Markers outlive every value such a load can write (marker_ttl).
//
// With a coordinator, each invalidation is also published to the other
// processes as the marker's key, except that a key's names the caller's
// tenant (not the stored-as one); a receiver applies it to its own L1 only
// (the invalidating process has already written L2). A lease is named
// "<ns>\x1f<stored-as tenant hex>\x1f<key>".
#include "callcache/tiers.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <limits>

#include "tier_record.h"

namespace callcache {
namespace {

constexpr std::string_view kMarkerNs = "_callcache_inv";
using internal::parse_tier_record;
using internal::TierRecord;

std::int64_t parse_us(std::string_view s) {
  std::int64_t v = std::numeric_limits<std::int64_t>::max();  // unreadable: hides (safe side)
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string key_marker(std::string_view ns, TenantId stored_as, std::string_view key) {
  std::string m = "k\x1f";
  m += ns;
  m += '\x1f';
  m += to_hex(stored_as);
  m += '\x1f';
  m += key;
  return m;
}
std::string namespace_marker(std::string_view ns) { return "n\x1f" + std::string(ns); }
std::string tenant_marker(TenantId t) { return "u\x1f" + to_hex(t); }
std::string tag_marker(std::string_view tag) { return "t\x1f" + std::string(tag); }

BackendKey marker_key(std::string_view marker) { return {kMarkerNs, kSharedTenant, marker}; }

// Whether a marker in `got` is at or after `loaded_at`.
bool hides(const std::optional<StoredValue>& marker, std::int64_t loaded_at) {
  return marker && parse_us(marker->bytes) >= loaded_at;
}

std::optional<TenantId> parse_hex(std::string_view s) {
  std::uint64_t v = 0;
  if (s.size() != 16) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return TenantId{v};
}

Duration default_marker_ttl(const Engine& engine) {
  Duration longest{};
  for (const std::string& name : engine.namespace_names()) {
    auto id = engine.find(name);
    if (!id.ok()) continue;
    const NamespacePolicy& p = engine.policy(*id);
    longest = std::max(longest, p.ttl + p.stale_ttl + p.load_timeout);
  }
  return longest + std::chrono::hours(1);
}

}  // namespace

std::string coordination_prometheus(const TieredStats& t, std::string_view metric) {
  std::string out = "# HELP " + std::string(metric) +
                    " Coordination with the other processes sharing Redis: invalidations "
                    "applied from them, L1 flushes (subscription lost/regained), leases taken, "
                    "waits for another process's load and the waits it answered.\n"
                    "# TYPE " +
                    std::string(metric) + " counter\n";
  auto line = [&](std::string_view event, std::uint64_t v) {
    out += metric;
    out += "{event=\"";
    out += event;
    out += "\"} " + std::to_string(v) + "\n";
  };
  line("remote_invalidation", t.remote_invalidations);
  line("l1_flush", t.l1_flushes);
  line("lease_taken", t.leases_taken);
  line("lease_wait", t.lease_waits);
  line("lease_wait_hit", t.lease_wait_hits);
  return out;
}

TieredStats internal::TieredCounters::snapshot() const {
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  TieredStats s;
  s.l2_hits = get(l2_hits);
  s.l2_misses = get(l2_misses);
  s.l2_invalidated = get(l2_invalidated);
  s.l2_errors = get(l2_errors);
  s.l2_writes = get(l2_writes);
  s.l2_write_errors = get(l2_write_errors);
  s.decode_errors = get(decode_errors);
  s.encode_errors = get(encode_errors);
  s.loads = get(loads);
  s.remote_invalidations = get(remote_invalidations);
  s.l1_flushes = get(l1_flushes);
  s.leases_taken = get(leases_taken);
  s.lease_waits = get(lease_waits);
  s.lease_wait_hits = get(lease_wait_hits);
  return s;
}

Tiers::Tiers(Engine& engine, Backend* l2, TiersOptions options)
    : engine_(&engine), l2_(l2), options_(std::move(options)) {
  if (options_.marker_ttl <= Duration::zero()) options_.marker_ttl = default_marker_ttl(engine);
  if (options_.coordinator) {
    TierCoordinator::Handlers h;
    h.on_message = [this](std::string_view m) { apply(m); };
    h.on_lost = [this] { flush_l1(); };
    h.on_resubscribed = [this] { flush_l1(); };
    options_.coordinator->start(std::move(h));
  }
}

Tiers::~Tiers() {
  if (options_.coordinator) options_.coordinator->stop();
}

std::string Tiers::lease_name(std::string_view ns, TenantId stored_as, std::string_view key) {
  std::string n(ns);
  n += '\x1f';
  n += to_hex(stored_as);
  n += '\x1f';
  n += key;
  return n;
}

void Tiers::publish(std::span<const std::string> messages) {
  if (!options_.coordinator || messages.empty()) return;
  Status s = options_.coordinator->publish(messages);
  if (!s.ok()) {
    totals_.l2_write_errors.fetch_add(1, std::memory_order_relaxed);
    failed(s, "publish");
  }
}

void Tiers::apply(std::string_view m) {
  // "k\x1f<ns>\x1f<tenant>\x1f<key>", "n\x1f<ns>", "u\x1f<tenant>", "t\x1f<tag>"
  if (m.size() < 2 || m[1] != '\x1f') return;
  const char kind = m[0];
  std::string_view rest = m.substr(2);
  bool applied = true;
  if (kind == 'k') {
    const auto a = rest.find('\x1f');
    const auto b = a == std::string_view::npos ? a : rest.find('\x1f', a + 1);
    auto tenant =
        b == std::string_view::npos ? std::nullopt : parse_hex(rest.substr(a + 1, b - a - 1));
    applied = tenant && engine_->invalidate(rest.substr(0, a), *tenant, rest.substr(b + 1)).ok();
  } else if (kind == 'n') {
    applied = engine_->invalidate_namespace(rest).ok();
  } else if (kind == 'u') {
    auto tenant = parse_hex(rest);
    if (tenant) engine_->invalidate_tenant(*tenant);
    applied = tenant.has_value();
  } else if (kind == 't') {
    engine_->invalidate_tag(rest);
  } else {
    applied = false;
  }
  if (applied) totals_.remote_invalidations.fetch_add(1, std::memory_order_relaxed);
}

void Tiers::flush_l1() {
  for (const std::string& ns : engine_->namespace_names()) (void)engine_->invalidate_namespace(ns);
  totals_.l1_flushes.fetch_add(1, std::memory_order_relaxed);
}

std::int64_t Tiers::now_us() const {
  if (options_.wall_clock_us) return options_.wall_clock_us();
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Tiers::failed(const Status& s, std::string_view operation) {
  if (options_.on_error) options_.on_error(s, operation);
}

TenantId Tiers::stored_as(std::string_view ns, TenantId tenant) const {
  auto id = engine_->find(ns);
  return id.ok() && engine_->policy(*id).shared ? kSharedTenant : tenant;
}

void Tiers::mark(std::string marker) {
  const std::string now = std::to_string(now_us());
  Status s = l2_->put(marker_key(marker), now, options_.marker_ttl);
  if (!s.ok()) {
    totals_.l2_write_errors.fetch_add(1, std::memory_order_relaxed);
    failed(s, "mark");
  }
}

Status Tiers::invalidate(std::string_view ns, TenantId tenant, std::string_view key) {
  Status s = engine_->invalidate(ns, tenant, key);
  if (!s.ok() || !l2_) return s;
  const TenantId as = stored_as(ns, tenant);
  mark(key_marker(ns, as, key));
  const std::string message = key_marker(ns, tenant, key);
  publish({&message, 1});
  Status e = l2_->erase({ns, as, key});
  if (!e.ok()) {
    totals_.l2_write_errors.fetch_add(1, std::memory_order_relaxed);
    failed(e, "erase");
  }
  return Status();
}

std::uint64_t Tiers::invalidate_tag(std::string_view tag) {
  std::uint64_t n = engine_->invalidate_tag(tag);
  if (!l2_) return n;
  const std::string marker = tag_marker(tag);
  mark(marker);
  publish({&marker, 1});
  return n;
}

std::uint64_t Tiers::invalidate_tags(const std::vector<std::string>& tags) {
  std::uint64_t n = 0;
  for (const std::string& t : tags) n += engine_->invalidate_tag(t);
  if (!l2_ || tags.empty()) return n;
  const std::string now = std::to_string(now_us());
  std::vector<std::string> markers;
  markers.reserve(tags.size());
  for (const std::string& t : tags) markers.push_back(tag_marker(t));
  std::vector<BackendItem> items;
  items.reserve(tags.size());
  for (const std::string& m : markers) items.push_back({marker_key(m), now, options_.marker_ttl});
  Status s = l2_->put_many(items);
  if (!s.ok()) {
    totals_.l2_write_errors.fetch_add(1, std::memory_order_relaxed);
    failed(s, "mark");
  }
  publish(markers);
  return n;
}

std::uint64_t Tiers::invalidate_tenant(TenantId tenant) {
  std::uint64_t n = engine_->invalidate_tenant(tenant);
  if (!l2_) return n;
  const std::string marker = tenant_marker(tenant);
  mark(marker);
  publish({&marker, 1});
  Status s = l2_->erase_tenant(tenant);
  if (!s.ok()) {
    totals_.l2_write_errors.fetch_add(1, std::memory_order_relaxed);
    failed(s, "erase_tenant");
  }
  return n;
}

Status Tiers::invalidate_namespace(std::string_view ns) {
  Status s = engine_->invalidate_namespace(ns);
  if (!s.ok() || !l2_) return s;
  const std::string marker = namespace_marker(ns);
  mark(marker);
  publish({&marker, 1});
  Status e = l2_->erase_namespace(ns);
  if (!e.ok()) {
    totals_.l2_write_errors.fetch_add(1, std::memory_order_relaxed);
    failed(e, "erase_namespace");
  }
  return Status();
}

std::optional<Tiers::Found> Tiers::read(std::string_view ns, TenantId stored_as,
                                        std::string_view key, Duration min_ttl_left,
                                        internal::TieredCounters& counters) {
  using C = internal::TieredCounters;
  const std::string km = key_marker(ns, stored_as, key);
  const std::string nm = namespace_marker(ns);
  const std::string um = tenant_marker(stored_as);
  const std::array<BackendKey, 4> keys = {BackendKey{ns, stored_as, key}, marker_key(km),
                                          marker_key(nm), marker_key(um)};
  auto got = l2_->get_many(keys);
  if (!got.ok() || got->size() != keys.size()) {
    count(&C::l2_errors, counters);
    failed(
        got.ok() ? Status::internal("get_many answered the wrong number of values") : got.status(),
        "get");
    return std::nullopt;
  }
  const std::optional<StoredValue>& value = (*got)[0];
  if (!value || value->ttl_left <= min_ttl_left) {
    count(&C::l2_misses, counters);
    return std::nullopt;
  }
  TierRecord r = parse_tier_record(value->bytes);
  bool hidden = hides((*got)[1], r.loaded_at) || hides((*got)[2], r.loaded_at) ||
                hides((*got)[3], r.loaded_at);
  if (!hidden && !r.tags.empty()) {
    std::vector<std::string> markers;
    markers.reserve(r.tags.size());
    for (const std::string& t : r.tags) markers.push_back(tag_marker(t));
    std::vector<BackendKey> tag_keys;
    tag_keys.reserve(markers.size());
    for (const std::string& m : markers) tag_keys.push_back(marker_key(m));
    auto tag_got = l2_->get_many(tag_keys);
    if (!tag_got.ok()) {  // cannot prove it is still valid
      count(&C::l2_errors, counters);
      failed(tag_got.status(), "get");
      return std::nullopt;
    }
    hidden =
        std::any_of(tag_got->begin(), tag_got->end(),
                    [&](const std::optional<StoredValue>& m) { return hides(m, r.loaded_at); });
  }
  if (hidden) {
    count(&C::l2_invalidated, counters);
    return std::nullopt;
  }
  return Found{std::string(r.payload), value->ttl_left, std::move(r.tags)};
}

void Tiers::write(std::string_view ns, TenantId stored_as, std::string_view key,
                  std::string_view bytes, Duration ttl, const std::vector<std::string>& tags,
                  std::int64_t loaded_at_us, internal::TieredCounters& counters) {
  using C = internal::TieredCounters;
  std::optional<std::string> record = internal::encode_tier_record(loaded_at_us, tags, bytes);
  if (!record) {
    count(&C::encode_errors, counters);  // a record cannot say it: keep the value in L1 only
    return;
  }
  Status s = l2_->put({ns, stored_as, key}, *record, ttl);
  if (s.ok()) {
    count(&C::l2_writes, counters);
  } else {
    count(&C::l2_write_errors, counters);
    failed(s, "put");
  }
}

}  // namespace callcache
