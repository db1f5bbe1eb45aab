// callcache/codec.h — how typed values become the bytes a second-level tier
// (SQLite, Redis) stores, and how stored bytes are compressed.
//
// Codecs. A codec for V is any type with
//   std::string encode(const V&) const;            // never fails
//   Result<V> decode(std::string_view bytes) const;  // kCorruption on bad bytes
// (the `Codec<C, V>` concept below). callcache ships:
//   - StringCodec        std::string, stored as is;
//   - BytesCodec         std::vector<std::uint8_t> / std::vector<std::byte>;
//   - JsonCodec<V>       any V with nlohmann to_json/from_json (ADL or
//                        adl_serializer), stored as compact JSON text;
//   - DefaultCodec<V>    picks one of the above (string, bytes, else JSON);
//   - CodecFunctions<V>  two functions chosen at run time (a language
//                        binding's serialiser, a schema registry's).
// Users plug their own codec by passing any type that satisfies Codec<C, V>
// (e.g. a protobuf codec) to TieredCache.
//
// Compression. frame_value() prefixes every stored value with one header
// byte saying how the rest is stored: kRawFrame (as is) or kZstdFrame (zstd,
// used only when the value is at least `threshold` bytes AND compression made
// it smaller). unframe_value() reads either, so data written with different
// thresholds — or by a build with compression off — stays readable.
// wrap_compression() applies this framing to every value of a Backend.
//
// Thread-safety: codecs and the framing functions are stateless (or const)
// and may be used from any thread. A compressing backend is as thread-safe as
// the backend it wraps.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "callcache/backend.h"
#include "callcache/status.h"

namespace callcache {

// C encodes and decodes values of type V.
template <class C, class V>
concept Codec = requires(const C& c, const V& v, std::string_view bytes) {
  { c.encode(v) } -> std::convertible_to<std::string>;
  { c.decode(bytes) } -> std::same_as<Result<V>>;
};

// std::string stored byte for byte.
struct StringCodec {
  std::string encode(const std::string& v) const { return v; }
  Result<std::string> decode(std::string_view bytes) const { return std::string(bytes); }
};

// A vector of one-byte elements (uint8_t, std::byte, char) stored byte for byte.
template <class Vec>
struct BytesCodec {
  static_assert(sizeof(typename Vec::value_type) == 1, "BytesCodec needs one-byte elements");
  std::string encode(const Vec& v) const {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size());
  }
  Result<Vec> decode(std::string_view bytes) const {
    const auto* p = reinterpret_cast<const typename Vec::value_type*>(bytes.data());
    return Vec(p, p + bytes.size());
  }
};

// Any V that nlohmann::json can convert to and from (to_json/from_json found
// by ADL, or an adl_serializer specialisation). Stored as compact JSON text.
// decode() returns kCorruption naming the JSON error on malformed or
// mismatching text (no exception escapes). Numbers convert as nlohmann
// converts them: a JSON float read into an integer field that cannot hold it
// is undefined behaviour there (a static_cast). encode() never writes one;
// for values that other writers may have stored, use a codec that checks.
template <class V>
struct JsonCodec {
  std::string encode(const V& v) const { return nlohmann::json(v).dump(); }
  Result<V> decode(std::string_view bytes) const {
    try {
      return nlohmann::json::parse(bytes.begin(), bytes.end()).template get<V>();
    } catch (const std::exception& e) {
      return Status::corruption(std::string("JSON codec: ") + e.what());
    }
  }
};

// A codec made of two functions. `encode` may throw (TieredCache then keeps
// the value in L1 only and counts an encode error); `decode` reports bad
// bytes as an error Status (kCorruption). REQUIRES: both are set and
// callable from any thread.
template <class V>
struct CodecFunctions {
  std::function<std::string(const V&)> encode_fn;
  std::function<Result<V>(std::string_view)> decode_fn;
  std::string encode(const V& v) const { return encode_fn(v); }
  Result<V> decode(std::string_view bytes) const { return decode_fn(bytes); }
};

namespace internal {
template <class V>
inline constexpr bool kIsByteVector =
    std::is_same_v<V, std::vector<std::uint8_t>> || std::is_same_v<V, std::vector<std::byte>> ||
    std::is_same_v<V, std::vector<char>>;
template <class V>
struct DefaultCodecFor {
  using type = JsonCodec<V>;
};
template <>
struct DefaultCodecFor<std::string> {
  using type = StringCodec;
};
template <>
struct DefaultCodecFor<std::vector<std::uint8_t>> {
  using type = BytesCodec<std::vector<std::uint8_t>>;
};
template <>
struct DefaultCodecFor<std::vector<std::byte>> {
  using type = BytesCodec<std::vector<std::byte>>;
};
template <>
struct DefaultCodecFor<std::vector<char>> {
  using type = BytesCodec<std::vector<char>>;
};
}  // namespace internal

// The codec used when none is given: StringCodec for std::string, BytesCodec
// for byte vectors, JsonCodec<V> otherwise (V then needs to_json/from_json).
template <class V>
using DefaultCodec = typename internal::DefaultCodecFor<V>::type;

// ---- Compression framing ----

// The header byte of a framed value.
inline constexpr std::uint8_t kRawFrame = 0x00;
inline constexpr std::uint8_t kZstdFrame = 0x01;

struct CompressionOptions {
  // Values of at least this many bytes are zstd-compressed (0 = never).
  std::size_t threshold = 1024;
  // zstd level (1 fast … 19 small). 3 is zstd's default.
  int level = 3;
};

// The stored form of `raw`: one header byte, then raw or zstd bytes.
std::string frame_value(std::string_view raw, const CompressionOptions& options);

// The largest raw value unframe_value() returns unless told otherwise.
inline constexpr std::size_t kMaxUnframedBytes = std::size_t{1} << 31;

// The raw value of a framed one, at most `max_bytes` long. Errors:
// kCorruption for an empty input, an unknown header byte, a zstd frame that
// does not decode or that claims more than `max_bytes` (or more than its
// size can hold: a zstd block decodes to at most 128 KiB and takes at least 4
// bytes), so a damaged or hostile stored value never makes it allocate more
// (the message says which).
Result<std::string> unframe_value(std::string_view framed,
                                  std::size_t max_bytes = kMaxUnframedBytes);

// A Backend that frames (and maybe compresses) every value before passing it
// to `inner`, and unframes on the way back. Takes ownership of `inner`.
// A stored value that fails to unframe is reported as a miss and counted as
// an error in stats() (it is not returned and does not fail the call).
// REQUIRES: inner != nullptr.
std::unique_ptr<Backend> wrap_compression(std::unique_ptr<Backend> inner,
                                          CompressionOptions options);

}  // namespace callcache
