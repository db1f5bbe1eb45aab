// Fuzz target: the decoders of what the L2 tiers read back from SQLite files
// and Redis servers — the compression framing (callcache/codec.h), the
// gateway's stored answers (CachedAnswerCodec, gateway/cached_answer.h), Redis
// account-lock values and stored lifetimes (tiers/stored_record.h), the
// record TieredCache values are stored in (core/tier_record.h), and the JSON
// codec. The input is one stored value.
//
// Properties:
//   - unframing never returns more than its limit, and framing what it
//     returned (compressed or not) unframes to the same bytes;
//   - a decoded answer, encoded again, decodes to the same answer, and is
//     the input again unless its status was written with leading zeros; a
//     decoded lock value round-trips likewise;
//   - lifetimes and lock ages are within [0, kMaxStoredTtl];
//   - a tier record's payload is a suffix of the input (all of it for a
//     plain value), and a whole record encodes back to the input;
//   - the JSON codec never throws, and what it decodes round-trips.
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "callcache/codec.h"
#include "core/tier_record.h"
#include "fuzz_check.h"
#include "gateway/cached_answer.h"
#include "tiers/stored_record.h"

namespace callcache {
namespace {

constexpr std::size_t kLimit = 1 << 20;

void check_framing(std::string_view input) {
  auto raw = unframe_value(input, kLimit);
  if (!raw.ok()) {
    FUZZ_CHECK(raw.status().code() == Code::kCorruption);
    return;
  }
  FUZZ_CHECK(raw->size() <= kLimit);
  for (std::size_t threshold : {std::size_t{0}, std::size_t{1}, std::size_t{64}}) {
    auto again = unframe_value(frame_value(*raw, {threshold, 1}), kLimit);
    FUZZ_CHECK(again.ok() && *again == *raw);
  }
}

void check_cached_answer(std::string_view input) {
  const gateway::CachedAnswerCodec codec;
  auto a = codec.decode(input);
  if (!a.ok()) {
    FUZZ_CHECK(a.status().code() == Code::kCorruption);
    return;
  }
  FUZZ_CHECK(a->status >= 100 && a->status <= 599 && !a->upstream_failed);
  const std::string bytes = codec.encode(*a);
  if (!input.starts_with('0')) FUZZ_CHECK(bytes == input);
  auto again = codec.decode(bytes);
  FUZZ_CHECK(again.ok() && again->status == a->status && again->content_type == a->content_type &&
             again->body == a->body && again->headers.size() == a->headers.size());
  for (std::size_t i = 0; i < a->headers.size(); ++i) {
    FUZZ_CHECK(again->headers[i].name == a->headers[i].name &&
               again->headers[i].value == a->headers[i].value);
  }
}

void check_lock_value(std::string_view input, std::int64_t now_ms) {
  tiers::LockValue v = tiers::parse_lock_value(input);
  tiers::LockValue again =
      tiers::parse_lock_value(tiers::format_lock_value(v.token, v.since_ms, v.task));
  FUZZ_CHECK(again.token == v.token && again.since_ms == v.since_ms && again.task == v.task);
  const auto age = tiers::lock_age(v.since_ms, now_ms);
  FUZZ_CHECK(age.count() >= 0 && age <= tiers::kMaxStoredTtl);
  const Duration ttl = tiers::ttl_from_ms(now_ms);
  FUZZ_CHECK(ttl >= Duration::zero() && ttl <= tiers::kMaxStoredTtl);
}

void check_tier_record(std::string_view input) {
  const internal::TierRecord r = internal::parse_tier_record(input);
  FUZZ_CHECK(r.payload.size() <= input.size() &&
             r.payload.data() + r.payload.size() == input.data() + input.size());
  const bool plain = r.payload.size() == input.size();
  if (plain) {
    FUZZ_CHECK(r.loaded_at == internal::kUnknownLoadTime && r.tags.empty());
    return;
  }
  const std::optional<std::string> again =
      internal::encode_tier_record(r.loaded_at, r.tags, r.payload);
  FUZZ_CHECK(again && *again == input);
}

template <class V>
void check_json_codec(std::string_view input) {
  JsonCodec<V> codec;
  auto v = codec.decode(input);
  if (!v.ok()) {
    FUZZ_CHECK(v.status().code() == Code::kCorruption);
    return;
  }
  auto again = codec.decode(codec.encode(*v));
  FUZZ_CHECK(again.ok() && *again == *v);
}

bool has_float(const nlohmann::json& j) {
  if (j.is_number_float()) return true;
  for (const auto& child : j) {
    if (child.is_structured() ? has_float(child) : child.is_number_float()) return true;
  }
  return false;
}

void check_json_codecs(std::string_view input) {
  check_json_codec<std::map<std::string, std::vector<double>>>(input);
  check_json_codec<std::vector<std::pair<std::string, bool>>>(input);
  check_json_codec<std::string>(input);
  // A JSON float read into an integer field is nlohmann's static_cast,
  // undefined when out of range (documented on JsonCodec): not fuzzed.
  auto j = nlohmann::json::parse(input, nullptr, false);
  if (j.is_discarded() || !has_float(j)) {
    check_json_codec<std::map<std::string, std::vector<std::int64_t>>>(input);
    check_json_codec<std::vector<std::uint8_t>>(input);
  }
}

}  // namespace
}  // namespace callcache

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callcache;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::int64_t now_ms = 0;
  std::memcpy(&now_ms, data, std::min(size, sizeof now_ms));
  check_framing(input);
  check_cached_answer(input);
  // What the gateway reads: an answer inside the framing.
  if (auto raw = unframe_value(input, kLimit); raw.ok()) check_cached_answer(*raw);
  check_lock_value(input, now_ms);
  check_tier_record(input);
  check_json_codecs(input);
  return 0;
}
