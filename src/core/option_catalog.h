// Every option Ferry declares, collected from the parts that read them: the engine's own
// (engine_options), the selector's, file segments', the metadata stores' and each
// transport's (through the registry). Config's defaults, Config::validate, `ferry-info
// --config`/`--options` and the README's configuration table come from here.
#pragma once

#include <string>

#include "common/options.h"

namespace ferry {

/// All declarations, in a stable order (core, selector, files, metadata, transports).
const OptionTable& optionCatalog();
/// The defaults as one nested JSON object.
std::string catalogDefaultsJson(int indent);
/// The configuration and environment tables of the README, as markdown.
std::string optionsMarkdown();

}  // namespace ferry
