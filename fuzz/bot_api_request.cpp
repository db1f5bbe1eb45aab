// Fuzz target: a Telegram Bot API request through the gateway's planning —
// parse_telegram (route, token, query string, JSON or url-encoded body), then
// plan() against the built-in preset, answer classification and access-log
// redaction. The input is a request as text (fuzz/request_text.h).
//
// Properties:
//   - a refusal is a 400, 404 or 413 whose error body is Bot API-shaped JSON;
//   - the parameters do not depend on how they were sent: the same call
//     re-sent as a url-encoded form of its canonical parameters parses to the
//     same parameters and plans to the same cache key;
//   - the access-log form of the target never shows the token;
//   - a cached read has a key, and its tags contain no tab or newline (tags
//     are text in invalidation-marker keys and log lines).
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "fuzz_check.h"
#include "gateway/logic/plan.h"
#include "gateway/logic/telegram_call.h"
#include "request_text.h"

namespace callcache::gateway::logic {
namespace {

const Preset& preset() {
  static const Preset p = builtin_preset().value();
  return p;
}

void check_error(const Status& s) {
  FUZZ_CHECK(!s.ok());
  const int status = http_status_of(s);
  FUZZ_CHECK(status == 400 || status == 404 || status == 413);
  auto j = nlohmann::json::parse(error_json(s), nullptr, false);
  FUZZ_CHECK(!j.is_discarded() && j["ok"] == false && j["error_code"] == status);
}

// The cache key plan() gives `call`, or "" when it is not a cached read.
std::string key_of(const TelegramCall& call) {
  PostWriteState state(16);
  Plan p = plan(call, preset(), TimePoint(std::chrono::hours(1)), state);
  if (auto* reject = std::get_if<Reject>(&p)) {
    auto j = nlohmann::json::parse(reject->json, nullptr, false);
    FUZZ_CHECK(!j.is_discarded() && j["error_code"] == reject->status);
  }
  auto* read = std::get_if<CachedRead>(&p);
  if (!read) return "";
  FUZZ_CHECK(!read->key.empty());
  for (const std::string& tag : read->tags) {
    FUZZ_CHECK(tag.find_first_of("\t\n") == std::string::npos);
  }
  (void)classify_answer(*read, 200, R"({"ok":true,"result":{}})");
  (void)classify_answer(*read, 400, R"({"ok":false,"error_code":400,"description":"x"})");
  return read->key;
}

}  // namespace
}  // namespace callcache::gateway::logic

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callcache::gateway::logic;
  callcache::fuzz::TextRequest text =
      callcache::fuzz::parse_text_request({reinterpret_cast<const char*>(data), size});
  auto call = parse_telegram(text.view());
  if (!call.ok()) {
    check_error(call.status());
    return 0;
  }
  const bool file = call->kind == TelegramCall::Kind::kFile;
  FUZZ_CHECK(
      redact_target(text.target).starts_with(file ? "/file/bot<redacted>/" : "/bot<redacted>"));
  FUZZ_CHECK(redact_target(text.target, callcache::kDefaultTenantKey)
                 .starts_with(file ? "/file/bot<t:" : "/bot<t:"));
  if (file) return 0;
  FUZZ_CHECK(call->method_lower == ascii_lower(call->method));
  const std::string key = key_of(*call);
  if (call->multipart) return 0;

  // The same call as a form of its canonical parameters.
  const std::string form = key_string(call->params);
  std::string path = text.target.substr(0, text.target.find('?'));
  callcache::fuzz::TextRequest again;
  again.method = "POST";
  again.target = path;
  again.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  again.body = form;
  auto call2 = parse_telegram(again.view());
  FUZZ_CHECK(call2.ok());
  FUZZ_CHECK(call2->tenant == call->tenant && call2->method == call->method);
  FUZZ_CHECK(key_string(call2->params) == form);
  FUZZ_CHECK(key_of(*call2) == key);
  return 0;
}
