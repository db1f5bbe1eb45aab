// callcache/text_writer.h — the one writer of JSON string literals and
// Prometheus label values, shared by every module (core stats, limits, flow,
// the gateway's bodies and metrics). The library links no JSON library; what
// it writes by hand is numbers, fixed keys and the strings escaped here, so
// there is one place where untrusted text (a namespace, a rule name, an error
// message) is made safe for the format it goes into.
//
// Thread-safety: stateless functions, safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace callcache::text {

// Appends `s` as a JSON string literal, quotes included: `"` and `\` are
// escaped, \n \r \t by name, every other byte below 0x20 as \u00XX. Bytes at
// or above 0x80 are copied (the writer does not validate UTF-8).
void append_json_string(std::string& out, std::string_view s);

// `s` as a JSON string literal, quotes included.
std::string json_string(std::string_view s);

// Appends `s` escaped for a Prometheus label value (text exposition format:
// `\` `"` and newline escaped), without the quotes.
void append_label_value(std::string& out, std::string_view s);

// `s` escaped for a Prometheus label value, without the quotes.
std::string label_value(std::string_view s);

}  // namespace callcache::text
