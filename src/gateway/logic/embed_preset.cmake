# Embeds config/telegram_preset.yaml in the library as builtin_preset_text().
# Usage: cmake -DIN=<yaml> -DOUT=<cpp> -P embed_preset.cmake
file(READ "${IN}" content)
string(FIND "${content}" ")callcache_preset\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )callcache_preset\"")
endif()
file(WRITE "${OUT}.tmp"
  "// Generated from config/telegram_preset.yaml by embed_preset.cmake: do not edit.\n"
  "#include <string_view>\n\n"
  "#include \"preset.h\"\n\n"
  "namespace callcache::gateway::logic {\n"
  "std::string_view builtin_preset_text() {\n"
  "  static constexpr std::string_view kText = R\"callcache_preset(${content})callcache_preset\";\n"
  "  return kText;\n"
  "}\n"
  "}  // namespace callcache::gateway::logic\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
