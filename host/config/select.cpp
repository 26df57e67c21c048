#include "config/hints.hpp"
#include "config/loader.hpp"

namespace sf::config {

const ServerConfig* findServer(const Config& config, const std::string& name) {
    for (const auto& s : config.servers)
        if (s.name == name) return &s;
    return nullptr;
}

std::vector<const ServerConfig*> selectServers(const Config& config, const std::string& name) {
    std::vector<const ServerConfig*> out;
    if (name.empty()) {
        for (const auto& s : config.servers) out.push_back(&s);
        return out;
    }
    if (const ServerConfig* s = findServer(config, name)) {
        out.push_back(s);
        return out;
    }
    std::vector<std::string> names;
    for (const auto& s : config.servers) names.push_back(s.name);
    throw ConfigError("No server named \"" + name + "\" found in config (available: " + joinNames(names) + ")");
}

}  // namespace sf::config
