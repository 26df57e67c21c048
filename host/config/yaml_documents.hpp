// The YAML documents of a config text, loaded with a guard against a yaml-cpp 0.7 bug:
// YAML::LoadAll never returns on some malformed input (a stream starting with ',' is
// enough, found by tests/fuzz fuzz_config), because its parser keeps reporting an empty
// document without consuming the offending token, and LoadAll keeps collecting them.
#pragma once
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace sf::config {

// Like YAML::LoadAll(text). Throws YAML::ParserException (with the mark of the token the
// parser cannot get past) where LoadAll would loop forever, and YAML::Exception as LoadAll.
std::vector<YAML::Node> loadYamlDocuments(const std::string& text);

}  // namespace sf::config
