// Schema of the top-level `cluster` block (conf/README.md "cluster"): reads it into
// Config::cluster and reports every problem with file:line like the rest of the schema.
#pragma once
#include "config/config.hpp"
#include "config/node_reader.hpp"

namespace sf::config {

void readCluster(const MapView& root, Config& config);

}  // namespace sf::config
