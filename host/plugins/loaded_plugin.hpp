// Internal to host/plugins: a .so kept open with its checked descriptor.
#pragma once
#include <streamfence/plugin.h>

#include <boost/dll/shared_library.hpp>

#include <list>
#include <memory>
#include <mutex>
#include <string>

namespace sf::plugins {

// What host_ctx points at for one instance, so host log lines name the plugin.
struct HostContext {
    std::string plugin;
    std::string instance;  // e.g. the server name; may be empty
    sf_host_api api{};
};

struct LoadedPlugin {
    // Declared first so it is destroyed last: nothing below may outlive the mapping.
    boost::dll::shared_library lib;
    const sf_plugin_descriptor* desc = nullptr;
    std::string file;
    std::string name;

    // Host contexts of every instance ever created. They live as long as the library, not
    // the instance: an instance with a NULL handle has nothing unique to key a removal on,
    // and a few bytes per instantiate are cheaper than a dangling host_ctx.
    HostContext* newContext(const std::string& instanceName);

private:
    std::mutex mu_;
    std::list<HostContext> contexts_;
};

// Open `path` and check everything that can be checked without calling init. Returns
// nullptr and sets `reason` (the exact text of the refusal) when the file is refused.
std::shared_ptr<LoadedPlugin> inspectPlugin(const std::string& path, std::string& reason);

// Extracts the dlerror text from a Boost.DLL exception message (Boost appends its own
// generic errc, which is not the cause).
std::string dlerrorText(const std::string& what);

}  // namespace sf::plugins
