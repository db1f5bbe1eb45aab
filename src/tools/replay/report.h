// Internal (replay): renders a ReplayReport as text tables or JSON. Both are
// pure functions of the report (byte-identical for identical reports).
#pragma once

#include <string>

#include "runner.h"

namespace callcache::replay {

std::string render_text(const ReplayReport& report);
std::string render_json(const ReplayReport& report);
// One line: calls saved by callcache (modes 3 and 4) vs modes 1 and 2.
std::string verdict(const ReplayReport& report);

}  // namespace callcache::replay
