// callcache/status.h — the outcome of an operation that can fail.
//
// No exception crosses callcache's public API. An operation that can fail
// returns a `Status` (no value) or a `Result<T>` (a value or a Status). Both are
// [[nodiscard]]: ignoring one is a compile warning. A cache miss is not an
// error: lookups return an empty std::optional.
//
// Thread-safety: Status and Result are plain values; distinct objects may be
// used from distinct threads without synchronisation.
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace callcache {

// What went wrong. Stable: values are rendered in logs and JSON by name.
enum class Code : std::uint8_t {
  kOk = 0,
  kInvalidArgument,    // a caller-supplied value is malformed (empty key, bad option)
  kNotFound,           // a named thing (namespace, tenant, file) does not exist
  kAlreadyExists,      // a named thing exists and must not
  kTooLarge,           // a value exceeds a configured size bound; it was not stored
  kResourceExhausted,  // a bounded structure is full and refuses (state store, queue)
  kDeadlineExceeded,   // waiting would exceed the caller's deadline; nothing was reserved
  kTimeout,            // an operation ran out of its time budget (load timeout, lock wait)
  kCancelled,          // the caller or a shutdown cancelled the operation
  kShutdown,           // the object was shut down and accepts no more work
  kUnavailable,        // a dependency (L2 tier, upstream) cannot be reached right now
  kBusy,               // held by someone else (account lock in strict mode)
  kLoadFailed,         // a user-supplied loader reported failure
  kIoError,            // file system or socket error
  kCorruption,         // stored data failed validation
  kInternal,           // a broken invariant inside callcache (a bug: please report)
};

// Returns the stable name of `code`, e.g. "invalid_argument".
std::string_view code_name(Code code) noexcept;

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() noexcept = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() noexcept { return Status(); }
  static Status invalid_argument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status already_exists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status too_large(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status resource_exhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
  static Status deadline_exceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
  static Status timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
  static Status cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
  static Status shutdown(std::string m) { return {Code::kShutdown, std::move(m)}; }
  static Status unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status busy(std::string m) { return {Code::kBusy, std::move(m)}; }
  static Status load_failed(std::string m) { return {Code::kLoadFailed, std::move(m)}; }
  static Status io_error(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const noexcept { return code_ == Code::kOk; }
  Code code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // "ok" or "<code name>: <message>".
  std::string to_string() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value of type T, or the Status that explains why there is none.
// REQUIRES: a Result built from a Status is never built from an OK status.
template <class T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cvref_t<T>, Status>, "Result<Status> is meaningless");

 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::in_place_index<1>, std::move(status)) {  // NOLINT
    assert(!std::get<1>(v_).ok() && "Result built from an OK status");
  }

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // The error; an OK status when ok().
  Status status() const { return ok() ? Status() : std::get<1>(v_); }

  // REQUIRES: ok().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace callcache
