// The answer helpers of plan.h: which upstream answers may be stored, and
// what a 429 asks for.
#include <charconv>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "canonical.h"
#include "plan.h"
#include "request.h"

namespace callcache::gateway::logic {
namespace {

using Json = nlohmann::json;

// Validates a document and records whether its top level is an object with
// "ok": true, without building a DOM.
class OkSax : public nlohmann::json_sax<Json> {
 public:
  bool ok_true() const { return root_is_object_ && ok_true_; }
  bool root_is_object() const { return root_is_object_; }

  bool null() override { return value(false); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t) override { return value(false); }
  bool number_unsigned(number_unsigned_t) override { return value(false); }
  bool number_float(number_float_t, const string_t&) override { return value(false); }
  bool string(string_t&) override { return value(false); }
  bool binary(binary_t&) override { return value(false); }
  bool start_object(std::size_t) override {
    if (depth_ == 0) root_is_object_ = true;
    value(false);
    ++depth_;
    return true;
  }
  bool key(string_t& k) override {
    ok_key_ = depth_ == 1 && k == "ok";
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    value(false);
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  // Every value passes here; the one right after the top-level "ok" key
  // decides.
  bool value(bool is_true) {
    if (ok_key_) ok_true_ = is_true;
    ok_key_ = false;
    return true;
  }

  std::size_t depth_ = 0;
  bool root_is_object_ = false;
  bool ok_key_ = false;
  bool ok_true_ = false;
};

std::optional<Json> parse(std::string_view body) {
  if (has_raw_nul(body) || json_nesting_depth(body) > 64) return std::nullopt;
  try {
    Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

bool cacheable_answer(std::string_view body) {
  if (has_raw_nul(body)) return false;
  try {
    OkSax sax;
    bool valid = Json::sax_parse(body, &sax, nlohmann::detail::input_format_t::json, true);
    return valid && sax.ok_true();
  } catch (const std::exception&) {
    return false;
  }
}

bool bot_api_answer(std::string_view body) {
  try {
    OkSax sax;
    bool valid = Json::sax_parse(body, &sax, nlohmann::detail::input_format_t::json, true);
    return valid && sax.root_is_object();
  } catch (const std::exception&) {
    return false;
  }
}

AnswerDecision classify_answer(const CachedRead& read, int http_status, std::string_view body) {
  if (read.bypass) return {};
  if (http_status == 200 && cacheable_answer(body)) return {AnswerAction::kStore, read.ttl};
  if (http_status != 400 || read.negative_ttl <= Duration::zero() || !read.method) return {};
  auto j = parse(body);
  if (!j || !j->is_object()) return {};
  auto ok = j->find("ok");
  auto desc = j->find("description");
  if (ok == j->end() || !ok->is_boolean() || ok->get<bool>()) return {};
  if (desc == j->end() || !desc->is_string()) return {};
  std::string text = ascii_lower(desc->get_ref<const std::string&>());
  for (const std::string& pattern : read.method->negative_match) {
    if (text.find(pattern) != std::string::npos) {
      return {AnswerAction::kStoreNegative, read.negative_ttl};
    }
  }
  return {};
}

std::optional<Duration> retry_after(int http_status, std::string_view body,
                                    std::optional<std::string_view> header) {
  bool is_429 = http_status == 429;
  std::optional<Duration> from_body;
  if (auto j = parse(body); j && j->is_object()) {
    auto code = j->find("error_code");
    if (code != j->end() && code->is_number_integer() && code->get<std::int64_t>() == 429) {
      is_429 = true;
    }
    auto params = j->find("parameters");
    if (params != j->end() && params->is_object()) {
      auto ra = params->find("retry_after");
      if (ra != params->end() && ra->is_number()) {
        double s = ra->get<double>();
        if (s >= 0 && s < 1e7) {
          from_body = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
        }
      }
    }
  }
  if (!is_429) return std::nullopt;
  if (from_body) return from_body;
  if (header) {
    std::string_view h = *header;
    while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
    while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
    std::int64_t s = 0;
    auto [p, ec] = std::from_chars(h.data(), h.data() + h.size(), s);
    if (ec == std::errc() && p == h.data() + h.size() && s >= 0 && s < 10'000'000) {
      return std::chrono::seconds(s);
    }
  }
  return std::nullopt;
}

}  // namespace callcache::gateway::logic
