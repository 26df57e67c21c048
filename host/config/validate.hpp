// The semantic rules (streamfence-js's plus ours, conf/README.md) on a plain Config, shared by the file
// loader and by configs built in code. Parse-level problems (types, unknown keys, enum
// spelling) are the loader's; everything that can be wrong in a struct is checked here.
#pragma once
#include "config/config.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace sf::config {

// marks: where each key path was written (nullptr: built in code, messages carry only the
// key path). skip: key paths that already have a parse error, so they are not reported twice.
std::vector<std::string> validateConfig(const Config& config, const std::map<std::string, SourceMark>* marks,
                                        const std::set<std::string>* skip);

}  // namespace sf::config
