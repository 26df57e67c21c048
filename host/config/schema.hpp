// The config schema: walks the parsed document, fills Config with defaults for absent keys,
// and records every schema/validation problem in Errors (nothing is thrown from here).
#pragma once
#include "config/config.hpp"
#include "config/node_reader.hpp"

namespace sf::config {

Config buildConfig(const YAML::Node& root, Errors& errors);

}  // namespace sf::config
