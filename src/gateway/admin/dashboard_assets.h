// Internal: the dashboard's static files (src/gateway/dashboard/: the page,
// its scripts (ES modules), style sheet and icon), compiled into the binary at build time
// by dashboard/embed_assets.cmake, so the admin listener serves them with no
// file on disk and nothing fetched from elsewhere at run time.
//
// Thread-safety: immutable data.
#pragma once

#include <string_view>

namespace callcache::gateway {

struct DashboardAsset {
  std::string_view path;          // "/index.html", "/dashboard.js" ...
  std::string_view content_type;  // "text/html; charset=utf-8" ...
  std::string_view body;
};

// The asset served at `path` ("/" is "/index.html"), or nullptr.
const DashboardAsset* find_dashboard_asset(std::string_view path);

}  // namespace callcache::gateway
