// Loaded plugins and their instances, as the rest of the host sees them.
// The loader (loader.cpp) fills the registry from a directory; refusals are logged
// (one line naming the file and the reason) and kept for --check and /health.
#pragma once
#include <streamfence/plugin.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace sf::plugins {

struct PluginError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

const char* kindName(uint32_t kind);  // "overflow-policy", "token-validator", "metrics-sink", "storage-backend"

struct LoadedPlugin;  // a .so kept open, with its descriptor

// One initialised instance. Destroying it calls the plugin's destroy(); the .so stays
// loaded at least as long as any of its instances.
class PluginInstance {
public:
    PluginInstance(std::shared_ptr<LoadedPlugin> lib, void* instance);
    ~PluginInstance();
    PluginInstance(const PluginInstance&) = delete;
    PluginInstance& operator=(const PluginInstance&) = delete;

    const sf_plugin_descriptor& descriptor() const;
    const std::string& name() const;
    void* handle() const { return instance_; }
    template <class VT>
    const VT* vtable() const { return static_cast<const VT*>(descriptor().vtable); }

private:
    std::shared_ptr<LoadedPlugin> lib_;
    void* instance_;
};
using PluginInstancePtr = std::shared_ptr<PluginInstance>;

struct Refusal {
    std::string file;
    std::string reason;
};

struct PluginInfo {
    std::string file, name, version, description;
    uint32_t kind = 0;
    uint32_t abiVersion = 0;
    uint32_t abiMinor = 0;
};

class Registry {
public:
    Registry();
    ~Registry();

    // Inspect every *.so in dir (sorted by name). Never throws for a bad plugin: refuses it
    // with a log line `event=plugin_refused file=<path> reason="..."`.
    void loadDirectory(const std::string& dir);
    // Load one file; returns false (and records the refusal) if refused.
    bool loadFile(const std::string& path);

    bool has(uint32_t kind, const std::string& name) const;
    std::vector<std::string> names(uint32_t kind) const;
    std::vector<PluginInfo> plugins() const;
    const std::vector<Refusal>& refusals() const;

    // Create an instance of plugin `name` of `kind`. Throws PluginError naming the plugin and
    // the reason when it is not installed or its init fails (or throws).
    PluginInstancePtr instantiate(uint32_t kind, const std::string& name, const config::PluginOptions& options,
                                  const std::string& instanceName = "");

    // The directory used when the config names none: the build tree's plugins/ when
    // running from the build tree, else the installed plugin directory.
    static std::string defaultDirectory();

    // ABI majors this host supports, newest first.
    static const std::vector<uint32_t>& supportedAbiVersions();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The host services table handed to every plugin (logging, clocks).
const sf_host_api* hostApi();

}  // namespace sf::plugins
