#include "config/loader.hpp"

#include "common/json.hpp"
#include "config/hints.hpp"
#include "config/schema.hpp"
#include "config/yaml_documents.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace sf::config {
namespace {

std::string joinLines(const std::vector<std::string>& lines) { return joinNames(lines, "\n"); }

// A config larger than this is a mistake (wrong file), not a config.
constexpr size_t kMaxConfigBytes = 16 * 1024 * 1024;

std::string extensionOf(const std::string& path) {
    size_t slash = path.find_last_of('/');
    size_t dot = path.find_last_of('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
    std::string ext = path.substr(dot);
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return ext;
}

std::string readWholeFile(const std::string& path) {
    auto fail = [&](const std::string& why) {
        return ConfigError("Failed to read config file \"" + path + "\": " + why);
    };
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) throw fail(std::strerror(errno));
    std::string text;
    char buf[65536];
    for (;;) {
        size_t n = std::fread(buf, 1, sizeof buf, f.get());
        text.append(buf, n);
        if (text.size() > kMaxConfigBytes) throw fail("larger than 16 MiB");
        if (n < sizeof buf) break;
    }
    if (std::ferror(f.get())) throw fail(std::strerror(errno));  // e.g. EISDIR
    return text;
}

std::string at(const std::string& file, int line, int column) {
    if (line <= 0) return file + ": ";
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> messages)
    : std::runtime_error(joinLines(messages)), messages_(std::move(messages)) {}

Config loadString(const std::string& text, const std::string& fileNameForMessages, Format format) {
    const std::string& file = fileNameForMessages;
    if (format == Format::Json) {
        // yaml-cpp below reads the file for its line/column marks, but it also accepts
        // YAML-only syntax (comments, unquoted keys, single quotes) a .json file must not use.
        json::ParseLimits strict;
        strict.maxDepth = 256;
        strict.maxLength = text.size();
        try {
            json::parse(text, strict);
        } catch (const json::ParseError& e) {
            throw ConfigError(at(file, e.line, e.column) + "Failed to parse config file: invalid JSON: " + e.reason);
        }
    }
    std::vector<YAML::Node> docs;
    try {
        docs = loadYamlDocuments(text);
    } catch (const YAML::Exception& e) {
        // ParserException (and DeepRecursion) carry where the parser gave up.
        throw ConfigError(at(file, e.mark.line + 1, e.mark.column + 1) + "Failed to parse config file: " + e.msg);
    }
    Errors errors(file);
    if (docs.size() > 1) {
        const YAML::Mark m = docs[1].Mark();
        errors.add(m, "", "only one YAML document is allowed in a config file");
    }
    Config config;
    try {
        config = buildConfig(docs.empty() ? YAML::Node() : docs[0], errors);
    } catch (const std::exception& e) {
        // The walk checks types before converting, so this is a bug; still, never crash on input.
        errors.add(YAML::Mark(), "", std::string("internal error while reading the config: ") + e.what());
    }
    if (!errors.list().empty()) throw ConfigError(errors.list());
    return config;
}

Config loadFile(const std::string& path) {
    const std::string ext = extensionOf(path);
    Format format;
    if (ext == ".yaml" || ext == ".yml") format = Format::Yaml;
    else if (ext == ".json") format = Format::Json;
    else
        throw ConfigError("Unsupported config file extension \"" + ext + "\" (expected .yaml, .yml, or .json): " + path);
    return loadString(readWholeFile(path), path, format);
}

}  // namespace sf::config
