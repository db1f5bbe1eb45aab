# Compiles the dashboard's files into the binary: writes a C++ source with
# each file's bytes and find_dashboard_asset() (gateway/admin/dashboard_assets.h).
# Usage: cmake -DOUT=<cpp> -DASSETS="<file>|<file>..." -P embed_assets.cmake
# Served paths are "/" + the file name ("/" itself serves index.html).
string(REPLACE "|" ";" ASSETS "${ASSETS}")
set(tables "")
set(entries "")
set(i 0)
foreach(file IN LISTS ASSETS)
  get_filename_component(name "${file}" NAME)
  get_filename_component(ext "${file}" LAST_EXT)
  if(ext STREQUAL ".html")
    set(type "text/html; charset=utf-8")
  elseif(ext STREQUAL ".js")
    set(type "text/javascript; charset=utf-8")
  elseif(ext STREQUAL ".css")
    set(type "text/css; charset=utf-8")
  elseif(ext STREQUAL ".svg")
    set(type "image/svg+xml")
  else()
    message(FATAL_ERROR "embed_assets.cmake: no content type for ${file}")
  endif()
  file(READ "${file}" hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x..,){24})" "\\1\n    " bytes "${bytes}")
  string(APPEND tables "const unsigned char kAsset${i}[] = {\n    ${bytes}};\n")
  string(APPEND entries "    {\"/${name}\", \"${type}\", bytes(kAsset${i}, ${size})},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(WRITE "${OUT}.tmp"
  "// Generated from src/gateway/dashboard/ by embed_assets.cmake: do not edit.\n"
  "#include \"gateway/admin/dashboard_assets.h\"\n\n"
  "#include <array>\n\n"
  "namespace callcache::gateway {\n"
  "namespace {\n\n"
  "${tables}\n"
  "std::string_view bytes(const unsigned char* data, std::size_t size) {\n"
  "  return {reinterpret_cast<const char*>(data), size};\n"
  "}\n\n"
  "const std::array<DashboardAsset, ${i}> kAssets = {{\n"
  "${entries}}};\n\n"
  "}  // namespace\n\n"
  "const DashboardAsset* find_dashboard_asset(std::string_view path) {\n"
  "  if (path == \"/\") path = \"/index.html\";\n"
  "  for (const DashboardAsset& a : kAssets) {\n"
  "    if (a.path == path) return &a;\n"
  "  }\n"
  "  return nullptr;\n"
  "}\n\n"
  "}  // namespace callcache::gateway\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
