// Fuzz target: how the gateway reads an upstream's answer to a cached read
// (gateway/logic/plan.h) — whether it may be stored (cacheable_answer,
// classify_answer) and how long a 429 asks to wait (retry_after). The input
// is an answer as text: a first line "<HTTP status>" or "<HTTP status>
// <Retry-After header>", then the body.
//
// Properties, each against the body parsed into a document (no document
// when the body holds a raw NUL, which JSON never does):
//   - cacheable_answer, a pass without building the document, is true exactly
//     when the body is JSON whose top level is an object with "ok": true;
//   - classify_answer stores a 200 answer for the read's ttl exactly when it
//     is cacheable, a 400 answer for the negative ttl exactly when it is
//     {"ok": false, "description": <text with one of the read's negative
//     matches, in any case>} (at most 64 levels deep), and nothing while the
//     read bypasses the cache;
//   - retry_after answers only a 429 (HTTP status or "error_code": 429), with
//     a wait in [0, 10^7 s): the body's parameters.retry_after when usable,
//     else the header's whole seconds.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "gateway/logic/canonical.h"
#include "gateway/logic/plan.h"

namespace callcache::gateway::logic {
namespace {

using Json = nlohmann::json;

const Preset& preset() {
  static const Preset p = builtin_preset().value();
  return p;
}

std::size_t depth_of(const Json& j) {
  std::size_t d = 0;
  if (j.is_structured()) {
    for (const Json& child : j) d = std::max(d, depth_of(child));
    ++d;
  }
  return d;
}

bool ok_true(const std::optional<Json>& doc) {
  if (!doc || !doc->is_object()) return false;
  auto ok = doc->find("ok");
  return ok != doc->end() && ok->is_boolean() && ok->get<bool>();
}

// A read of getChatMember (negative matches) as plan() makes it.
CachedRead read_of(std::string_view method) {
  CachedRead read;
  read.method = preset().find_read(method);
  FUZZ_CHECK(read.method != nullptr);
  read.ns = read.method->ns;
  read.key = read.method->name + "?chat_id=1";
  read.ttl = read.method->ttl;
  read.negative_ttl = read.method->negative_ttl;
  return read;
}

void check_classify(int status, std::string_view body, const std::optional<Json>& doc) {
  for (std::string_view method : {"getchatmember", "getme"}) {
    CachedRead read = read_of(method);
    const AnswerDecision d = classify_answer(read, status, body);
    AnswerAction expected = AnswerAction::kDoNotStore;
    if (status == 200 && ok_true(doc)) expected = AnswerAction::kStore;
    if (status == 400 && read.negative_ttl > Duration::zero() && doc && doc->is_object() &&
        depth_of(*doc) <= 64) {
      auto ok = doc->find("ok");
      auto desc = doc->find("description");
      if (ok != doc->end() && ok->is_boolean() && !ok->get<bool>() && desc != doc->end() &&
          desc->is_string()) {
        const std::string text = ascii_lower(desc->get<std::string>());
        for (const std::string& m : read.method->negative_match) {
          if (text.find(m) != std::string::npos) expected = AnswerAction::kStoreNegative;
        }
      }
    }
    FUZZ_CHECK(d.action == expected);
    if (expected == AnswerAction::kStore) FUZZ_CHECK(d.ttl == read.ttl);
    if (expected == AnswerAction::kStoreNegative) FUZZ_CHECK(d.ttl == read.negative_ttl);
    read.bypass = true;
    FUZZ_CHECK(classify_answer(read, status, body).action == AnswerAction::kDoNotStore);
  }
}

void check_retry_after(int status, std::string_view body, std::optional<std::string_view> header,
                       const std::optional<Json>& doc) {
  const std::optional<Duration> wait = retry_after(status, body, header);
  const bool readable = doc && doc->is_object() && depth_of(*doc) <= 64;
  bool is_429 = status == 429;
  std::optional<double> from_body;
  if (readable) {
    auto code = doc->find("error_code");
    if (code != doc->end() && code->is_number_integer() && code->get<std::int64_t>() == 429) {
      is_429 = true;
    }
    auto params = doc->find("parameters");
    if (params != doc->end() && params->is_object()) {
      auto ra = params->find("retry_after");
      if (ra != params->end() && ra->is_number()) {
        const double s = ra->get<double>();
        if (s >= 0 && s < 1e7) from_body = s;
      }
    }
  }
  if (!is_429) {
    FUZZ_CHECK(!wait);
    return;
  }
  std::optional<Duration> expected;
  if (from_body) {
    expected = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(*from_body));
  } else if (header) {
    // Whole seconds, blanks around them allowed.
    std::string_view h = *header;
    while (h.starts_with(' ')) h.remove_prefix(1);
    while (h.ends_with(' ')) h.remove_suffix(1);
    std::int64_t s = 0;
    auto [p, ec] = std::from_chars(h.data(), h.data() + h.size(), s);
    if (ec == std::errc() && p == h.data() + h.size() && s >= 0 && s < 10'000'000) {
      expected = std::chrono::seconds(s);
    }
  }
  FUZZ_CHECK(wait == expected);
  if (wait) FUZZ_CHECK(*wait >= Duration::zero() && *wait < std::chrono::seconds(10'000'000));
}

}  // namespace
}  // namespace callcache::gateway::logic

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callcache::gateway::logic;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nl = input.find('\n');
  const std::string_view first = input.substr(0, nl);
  const std::string_view body =
      nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
  const std::size_t sp = first.find(' ');
  int status = 0;
  for (char c : first.substr(0, std::min<std::size_t>(sp, 3))) {
    if (c < '0' || c > '9') return 0;
    status = status * 10 + (c - '0');
  }
  std::optional<std::string_view> header;
  if (sp != std::string_view::npos) header = first.substr(sp + 1);

  // The reference document. A raw NUL is never JSON; nlohmann's parser
  // would stop there and read what comes before it, so check it first.
  std::optional<Json> doc;
  FUZZ_CHECK(has_raw_nul(body) == (body.find('\0') != std::string_view::npos));
  if (!has_raw_nul(body)) {
    if (Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false); !j.is_discarded()) {
      doc = std::move(j);
      // The bracket count the gateway's depth limit uses agrees with the document.
      FUZZ_CHECK(json_nesting_depth(body) == depth_of(*doc));
    }
  }
  FUZZ_CHECK(cacheable_answer(body) == ok_true(doc));
  check_classify(status, body, doc);
  check_retry_after(status, body, header, doc);
  return 0;
}
