#include "config/config.hpp"

namespace sf::config {

std::string SourceMark::str() const {
    std::string out;
    if (!file.empty()) {
        out = file;
        if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
    }
    if (!keyPath.empty()) {
        if (!out.empty()) out += ": ";
        out += keyPath;
    }
    return out;
}

}  // namespace sf::config
