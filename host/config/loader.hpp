// Loading streamfenced's YAML/JSON configuration into sf::config::Config, with every
// problem reported as "FILE:LINE:COL: KEYPATH: message" (all of them, not just the first).
#pragma once
#include "config/config.hpp"

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sf::config {

enum class Format { Yaml, Json };

// Thrown for any unusable config. messages() holds one entry per problem;
// what() is them joined with '\n'.
class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<std::string> messages);
    explicit ConfigError(const std::string& message) : ConfigError(std::vector<std::string>{message}) {}
    const std::vector<std::string>& messages() const { return messages_; }

private:
    std::vector<std::string> messages_;
};

// .yaml/.yml -> YAML, .json -> strict JSON; any other extension is an error naming the file.
Config loadFile(const std::string& path);

// fileNameForMessages is used in every message and stored as Config::file.
Config loadString(const std::string& text, const std::string& fileNameForMessages, Format format);

// The semantic rules loadString applies, for a Config built in code (the embed builder).
// Returns one "keypath: message" per problem (with "file:line:col: " when the marks in the
// structs say where); empty means valid. Treats maxInFlight <= 0 as 1, like the loader.
std::vector<std::string> validate(const Config& config);

// nullptr when there is no server with that name.
const ServerConfig* findServer(const Config& config, const std::string& name);

// name empty -> every server in file order; otherwise exactly that one, or throws ConfigError
// `No server named "x" found in config (available: a, b)`.
std::vector<const ServerConfig*> selectServers(const Config& config, const std::string& name);

// Plugin kinds as named by the plugin ABI.
inline constexpr const char* kOverflowPolicy = "overflow-policy";
inline constexpr const char* kTokenValidator = "token-validator";
inline constexpr const char* kMetricsSink = "metrics-sink";
inline constexpr const char* kStorageBackend = "storage-backend";

// Checks every plugin the config refers to (overflowAction, tokenValidator, metrics sinks,
// spillBackend of SPILL_TO_DISK namespaces) against what is installed. Returns one
// "file:line:col: keypath: ..." string per missing plugin; empty means all resolve.
// listInstalled (optional) names the installed plugins of a kind, for the hint in messages.
std::vector<std::string> checkPluginRefs(
    const Config& config,
    const std::function<bool(const std::string& kind, const std::string& name)>& isInstalled,
    const std::function<std::vector<std::string>(const std::string& kind)>& listInstalled = {});

}  // namespace sf::config
