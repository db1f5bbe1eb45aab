// Internal: the engine sections as a MapReader step, for application loaders
// that read several modules' sections from one document and then reject
// unknown top-level keys themselves.
#pragma once

#include "callcache/config.h"
#include "yaml_reader.h"

namespace callcache::config {

// Reads `tenant_key`, `engine` and `namespaces` from the root mapping.
void read_engine_sections(MapReader& root, EngineConfig& out);

}  // namespace callcache::config
