// The plugin registry: which plugins were accepted, which refused and why, and creating
// instances with the host services and the plugin's options.
#include "plugins/registry.hpp"

#include "common/log.hpp"
#include "plugins/loaded_plugin.hpp"

#include <boost/dll/runtime_symbol_info.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>

namespace sf::plugins {
namespace fs = std::filesystem;

const char* kindName(uint32_t kind) {
    switch (kind) {
        case SF_KIND_OVERFLOW_POLICY: return "overflow-policy";
        case SF_KIND_TOKEN_VALIDATOR: return "token-validator";
        case SF_KIND_METRICS_SINK: return "metrics-sink";
        case SF_KIND_STORAGE_BACKEND: return "storage-backend";
        default: return "unknown";
    }
}

// ------------------------------------------------------------------ host services

namespace {

void hostLog(void* ctx, int level, const char* event, const char* msg) {
    auto* c = static_cast<const HostContext*>(ctx);
    log::Level l = level <= SF_LOG_DEBUG ? log::Level::Debug
                 : level == SF_LOG_INFO  ? log::Level::Info
                 : level == SF_LOG_WARN  ? log::Level::Warn
                                         : log::Level::Error;
    if (!log::enabled(l)) return;
    std::string ev = event && *event ? event : "plugin_log";
    std::string plugin = c ? c->plugin : "unknown";
    std::string m = msg ? msg : "";
    if (c && !c->instance.empty())
        log::write(l, ev, {{"plugin", plugin}, {"instance", c->instance}, {"msg", m}});
    else
        log::write(l, ev, {{"plugin", plugin}, {"msg", m}});
}

uint64_t hostNowMs(void*) {
    using namespace std::chrono;
    return static_cast<uint64_t>(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

uint64_t hostWallMs(void*) {
    using namespace std::chrono;
    return static_cast<uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

// sf_options over a config::PluginOptions: the strings must outlive init only. std::string
// keeps a NUL after its data, so key and value are NUL-terminated as plugin.h promises.
struct OptionsView {
    std::vector<sf_option> items;
    sf_options raw{};
    OptionsView(const config::PluginOptions& o, const std::string& instanceName) {
        items.reserve(o.flat.size());
        for (const auto& kv : o.flat) {
            sf_option item{};
            item.struct_size = sizeof item;
            item.key = sf_str{kv.first.data(), kv.first.size()};
            item.value = sf_str{kv.second.data(), kv.second.size()};
            items.push_back(item);
        }
        raw.struct_size = sizeof raw;
        raw.count = static_cast<uint32_t>(items.size());
        raw.items = items.data();
        raw.json = o.json.c_str();
        raw.instance_name = instanceName.c_str();
    }
};

}  // namespace

const sf_host_api* hostApi() {
    static const sf_host_api api = [] {
        sf_host_api a{};
        a.struct_size = sizeof a;
        a.abi_version = SF_ABI_VERSION;
        a.host_ctx = nullptr;  // instances get a copy pointing at their HostContext
        a.log = &hostLog;
        a.now_ms = &hostNowMs;
        a.wall_ms = &hostWallMs;
        return a;
    }();
    return &api;
}

// ------------------------------------------------------------------ instances

PluginInstance::PluginInstance(std::shared_ptr<LoadedPlugin> lib, void* instance)
    : lib_(std::move(lib)), instance_(instance) {}

PluginInstance::~PluginInstance() {
    // destroy() runs while lib_ still holds the .so open; lib_ is released afterwards.
    if (lib_ && lib_->desc && lib_->desc->destroy) {
        try {
            lib_->desc->destroy(instance_);
        } catch (...) {
            log::error("plugin_destroy_failed", {{"plugin", lib_->name}, {"file", lib_->file}});
        }
    }
}

const sf_plugin_descriptor& PluginInstance::descriptor() const { return *lib_->desc; }
const std::string& PluginInstance::name() const { return lib_->name; }

// ------------------------------------------------------------------ registry

struct Registry::Impl {
    mutable std::mutex mu;
    std::vector<std::shared_ptr<LoadedPlugin>> plugins;  // in load order
    std::vector<Refusal> refusals;

    void refuse(const std::string& file, const std::string& reason) {
        log::warn("plugin_refused", {{"file", file}, {"reason", reason}});
        std::lock_guard<std::mutex> lk(mu);
        refusals.push_back(Refusal{file, reason});
    }

    std::shared_ptr<LoadedPlugin> find(uint32_t kind, const std::string& name) const {
        for (const auto& p : plugins)
            if (p->desc->kind == kind && p->name == name) return p;
        return nullptr;
    }
};

Registry::Registry() : impl_(std::make_unique<Impl>()) {}
// Drops the registry's references; each .so is closed once its last instance is gone.
Registry::~Registry() = default;

const std::vector<uint32_t>& Registry::supportedAbiVersions() {
    static const std::vector<uint32_t> v = {SF_ABI_VERSION};
    return v;
}

void Registry::loadDirectory(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        log::warn("plugin_dir_missing", {{"dir", dir}});
        return;
    }
    std::vector<std::string> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const fs::path& p = it->path();
        if (p.extension() != ".so") continue;
        std::error_code fec;
        if (!fs::is_directory(p, fec)) files.push_back(p.string());
    }
    if (ec) log::warn("plugin_dir_unreadable", {{"dir", dir}, {"error", ec.message()}});
    std::sort(files.begin(), files.end());
    for (const auto& f : files) loadFile(f);
}

bool Registry::loadFile(const std::string& path) {
    std::string reason;
    std::shared_ptr<LoadedPlugin> p = inspectPlugin(path, reason);
    if (!p) {
        impl_->refuse(path, reason);
        return false;
    }
    {
        std::lock_guard<std::mutex> lk(impl_->mu);
        if (auto other = impl_->find(p->desc->kind, p->name)) {
            reason = std::string("duplicate ") + kindName(p->desc->kind) + " name \"" + p->name +
                     "\" (already loaded from " + other->file + ")";
        } else {
            impl_->plugins.push_back(p);
        }
    }
    if (!reason.empty()) {
        impl_->refuse(path, reason);
        return false;
    }
    const sf_plugin_descriptor& d = *p->desc;
    log::info("plugin_loaded", {{"file", path},
                                {"name", p->name},
                                {"kind", kindName(d.kind)},
                                {"version", d.version ? d.version : ""},
                                {"abi", std::to_string(d.abi_version) + "." + std::to_string(d.abi_minor)}});
    return true;
}

bool Registry::has(uint32_t kind, const std::string& name) const {
    std::lock_guard<std::mutex> lk(impl_->mu);
    return impl_->find(kind, name) != nullptr;
}

std::vector<std::string> Registry::names(uint32_t kind) const {
    std::lock_guard<std::mutex> lk(impl_->mu);
    std::vector<std::string> out;
    for (const auto& p : impl_->plugins)
        if (p->desc->kind == kind) out.push_back(p->name);
    return out;
}

std::vector<PluginInfo> Registry::plugins() const {
    std::lock_guard<std::mutex> lk(impl_->mu);
    std::vector<PluginInfo> out;
    for (const auto& p : impl_->plugins) {
        const sf_plugin_descriptor& d = *p->desc;
        out.push_back(PluginInfo{p->file, p->name, d.version ? d.version : "", d.description ? d.description : "",
                                 d.kind, d.abi_version, d.abi_minor});
    }
    return out;
}

const std::vector<Refusal>& Registry::refusals() const { return impl_->refusals; }

PluginInstancePtr Registry::instantiate(uint32_t kind, const std::string& name, const config::PluginOptions& options,
                                        const std::string& instanceName) {
    std::shared_ptr<LoadedPlugin> p;
    {
        std::lock_guard<std::mutex> lk(impl_->mu);
        p = impl_->find(kind, name);
    }
    if (!p) throw PluginError(std::string("no ") + kindName(kind) + " plugin named \"" + name + "\" is installed");

    HostContext* ctx = p->newContext(instanceName);
    OptionsView opts(options, instanceName);
    char buf[1024] = {0};
    sf_error err{};
    err.struct_size = sizeof err;
    err.capacity = sizeof buf;
    err.message = buf;
    void* instance = nullptr;
    std::string failure;
    // The C++ wrapper catches its own exceptions; a raw C++ plugin may not, so guard here too.
    try {
        int rc = p->desc->init(&ctx->api, &opts.raw, &instance, &err);
        if (rc != SF_OK) {
            buf[sizeof buf - 1] = '\0';
            failure = buf[0] ? std::string(buf) : "init returned " + std::to_string(rc);
        }
    } catch (const std::exception& e) {
        failure = std::string("init threw: ") + e.what();
    } catch (...) {
        failure = "init threw an unknown exception";
    }
    if (!failure.empty()) {
        std::string msg = "plugin \"" + name + "\" (" + p->file + ") failed to initialise: " + failure;
        impl_->refuse(p->file, "failed to initialise: " + failure);
        throw PluginError(msg);
    }
    return std::make_shared<PluginInstance>(std::move(p), instance);
}

std::string Registry::defaultDirectory() {
    if (const char* env = std::getenv("STREAMFENCE_PLUGIN_DIR"); env && *env) return env;
    std::error_code ec;
    fs::path build = fs::path(SF_PLUGIN_BUILD_DIR);
    fs::path buildRoot = fs::weakly_canonical(build.parent_path(), ec);
    fs::path exe = boost::dll::program_location(ec);
    if (!ec && fs::is_directory(build, ec)) {
        exe = fs::weakly_canonical(exe, ec);
        // The executable sits in the build tree when the build root is a prefix of its path.
        auto mismatch = std::mismatch(buildRoot.begin(), buildRoot.end(), exe.begin(), exe.end());
        if (!ec && mismatch.first == buildRoot.end()) return build.string();
    }
    return SF_PLUGIN_INSTALL_DIR;
}

}  // namespace sf::plugins
