// Strict JSON syntax check for .json configs. yaml-cpp parses them (for line/column marks),
// but it also accepts YAML-only syntax (comments, unquoted keys, single quotes), which a
// .json file must not rely on.
#pragma once
#include <optional>
#include <string>

namespace sf::config {

struct JsonSyntaxError {
    int line = 1;    // 1-based
    int column = 1;  // 1-based
    std::string message;
};

std::optional<JsonSyntaxError> checkJsonSyntax(const std::string& text);

}  // namespace sf::config
