#include <map>

#include "delivery/delivery.hpp"

namespace sf::delivery {

namespace {

config::PluginOptions optionsFor(const config::Config& cfg, const std::string& name) {
    auto it = cfg.pluginOptions.find(name);
    return it == cfg.pluginOptions.end() ? config::PluginOptions{} : it->second;
}

}  // namespace

PluginResolver PluginResolver::fromRegistry(plugins::Registry& registry, const config::Config& config,
                                            const config::ServerConfig& server) {
    PluginResolver r;
    const std::string serverName = server.name;
    r.overflowPolicy = [&registry, config, serverName](const config::NamespaceConfig& ns) {
        return registry.instantiate(SF_KIND_OVERFLOW_POLICY, ns.overflowAction, optionsFor(config, ns.overflowAction),
                                    serverName + ":" + ns.path);
    };
    // One storage instance per backend name for the whole server (lane keys carry the ns).
    auto cache = std::make_shared<std::map<std::string, plugins::PluginInstancePtr>>();
    const std::string spillRoot = server.spillRootPath;
    r.storageBackend = [&registry, config, serverName, spillRoot, cache](const config::NamespaceConfig& ns) -> plugins::PluginInstancePtr {
        if (ns.overflowAction != "SPILL_TO_DISK") return nullptr;
        const std::string& name = ns.spillBackend.empty() ? std::string("disk") : ns.spillBackend;
        auto it = cache->find(name);
        if (it != cache->end()) return it->second;
        config::PluginOptions opts = optionsFor(config, name);
        bool hasRoot = false;
        for (auto& kv : opts.flat)
            if (kv.first == "spillRootPath") hasRoot = true;
        if (!hasRoot) {
            if (opts.flatMarks.size() == opts.flat.size()) opts.flatMarks.push_back(opts.mark);  // keep them parallel
            opts.flat.emplace_back("spillRootPath", spillRoot);
        }
        auto inst = registry.instantiate(SF_KIND_STORAGE_BACKEND, name, opts, serverName);
        (*cache)[name] = inst;
        return inst;
    };
    if (server.auth == config::AuthMode::TOKEN && !server.tokenValidator.empty()) {
        const std::string v = server.tokenValidator;
        r.tokenValidator = [&registry, config, serverName, v] {
            return registry.instantiate(SF_KIND_TOKEN_VALIDATOR, v, optionsFor(config, v), serverName);
        };
    }
    return r;
}

}  // namespace sf::delivery
