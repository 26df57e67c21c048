// Schema of a server's `limits` block (conf/README.md "limits"): reads it into
// ServerConfig::limits, types reported with file:line; ranges are checked in validate.cpp.
#pragma once
#include "config/config.hpp"
#include "config/node_reader.hpp"

namespace sf::config {

void readLimits(const MapView& server, ServerConfig& out);

}  // namespace sf::config
