// Private to store/src/registry*.cc: what the registry's files share. registry.cc holds the
// schema, Open, artifacts, functions and versions (and their garbage collection);
// registry_routes.cc the routes table; registry_keys.cc API keys.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "faas/base/log.h"

namespace faas::store::registry_internal {

// The "store" logger.
std::shared_ptr<spdlog::logger> Log();

// A user-given name for an error message, quoted (faas::QuoteForMessage).
std::string Quote(std::string_view s);

}  // namespace faas::store::registry_internal
