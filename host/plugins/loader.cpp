// Opening a plugin file and checking its descriptor. Every check produces the exact
// refusal reason the registry logs; nothing here throws for a bad plugin.
#include "plugins/loaded_plugin.hpp"
#include "plugins/registry.hpp"

#include <algorithm>
#include <cstddef>
#include <exception>

namespace sf::plugins {
namespace {

// Bytes a struct must have so that `member` lies inside it.
#define SF_NEED(type, member) (offsetof(type, member) + sizeof(static_cast<type*>(nullptr)->member))

std::string tooSmall(const char* what, uint32_t got, size_t need) {
    return std::string(what) + " too small (struct_size " + std::to_string(got) + ", need at least " +
           std::to_string(need) + ")";
}

// Checks the kind's vtable; returns "" when it is usable.
std::string checkVtable(uint32_t kind, const void* vtable) {
    const std::string k = kindName(kind);
    uint32_t size = *static_cast<const uint32_t*>(vtable);  // every vtable starts with struct_size
    switch (kind) {
        case SF_KIND_OVERFLOW_POLICY: {
            auto vt = static_cast<const sf_overflow_policy_vtable*>(vtable);
            if (size < SF_NEED(sf_overflow_policy_vtable, on_enqueue)) return tooSmall((k + " vtable").c_str(), size, SF_NEED(sf_overflow_policy_vtable, on_enqueue));
            if (!vt->on_enqueue) return k + " vtable has no on_enqueue";
            // Unknown future bits are ignored, but one the host knows must be set.
            if (!(vt->when & (SF_POLICY_ON_OVERFLOW | SF_POLICY_ON_EVERY)))
                return k + " vtable: invalid when " + std::to_string(vt->when);
            return "";
        }
        case SF_KIND_TOKEN_VALIDATOR: {
            auto vt = static_cast<const sf_token_validator_vtable*>(vtable);
            if (size < SF_NEED(sf_token_validator_vtable, validate)) return tooSmall((k + " vtable").c_str(), size, SF_NEED(sf_token_validator_vtable, validate));
            if (!vt->validate) return k + " vtable has no validate";
            return "";
        }
        case SF_KIND_METRICS_SINK: {
            auto vt = static_cast<const sf_metrics_sink_vtable*>(vtable);
            if (size < SF_NEED(sf_metrics_sink_vtable, render)) return tooSmall((k + " vtable").c_str(), size, SF_NEED(sf_metrics_sink_vtable, render));
            if (!vt->flush && !vt->render) return k + " vtable has neither flush nor render";
            return "";
        }
        case SF_KIND_STORAGE_BACKEND: {
            auto vt = static_cast<const sf_storage_backend_vtable*>(vtable);
            if (size < SF_NEED(sf_storage_backend_vtable, usage)) return tooSmall((k + " vtable").c_str(), size, SF_NEED(sf_storage_backend_vtable, usage));
            if (!vt->append || !vt->read_oldest || !vt->remove_oldest || !vt->clear || !vt->usage)
                return k + " vtable lacks one of append, read_oldest, remove_oldest, clear, usage";
            return "";
        }
        default:
            return "unknown plugin kind " + std::to_string(kind);
    }
}

std::string joinVersions() {
    std::string out;
    for (uint32_t v : Registry::supportedAbiVersions()) {
        if (!out.empty()) out += ", ";
        out += std::to_string(v);
    }
    return out;
}

}  // namespace

std::string dlerrorText(const std::string& what) {
    static const std::string marker = "(dlerror system message: ";
    size_t b = what.find(marker);
    if (b == std::string::npos) return what;
    b += marker.size();
    size_t e = what.rfind("): ");
    if (e == std::string::npos || e < b) e = what.rfind(')');
    if (e == std::string::npos || e < b) return what.substr(b);
    return what.substr(b, e - b);
}

HostContext* LoadedPlugin::newContext(const std::string& instanceName) {
    std::lock_guard<std::mutex> lk(mu_);
    contexts_.emplace_back();
    HostContext& c = contexts_.back();
    c.plugin = name;
    c.instance = instanceName;
    c.api = *hostApi();
    c.api.host_ctx = &c;
    return &c;
}

std::shared_ptr<LoadedPlugin> inspectPlugin(const std::string& path, std::string& reason) {
    auto p = std::make_shared<LoadedPlugin>();
    p->file = path;
    namespace dll = boost::dll;
    try {
        // rtld_now: an unresolved symbol fails here, not at the first call (which would kill
        // the process); rtld_local: plugins never see each other's symbols.
        p->lib.load(dll::fs::path(path), dll::load_mode::rtld_now | dll::load_mode::rtld_local);
    } catch (const std::exception& e) {
        reason = "cannot load shared object: " + dlerrorText(e.what());
        return nullptr;
    }
    if (!p->lib.has(SF_PLUGIN_ENTRY_SYMBOL)) {
        reason = "missing entry symbol " SF_PLUGIN_ENTRY_SYMBOL;
        return nullptr;
    }
    const sf_plugin_descriptor* d = nullptr;
    try {
        auto& entry = p->lib.get<const sf_plugin_descriptor*(const uint32_t*, uint32_t)>(SF_PLUGIN_ENTRY_SYMBOL);
        const auto& versions = Registry::supportedAbiVersions();
        d = entry(versions.data(), static_cast<uint32_t>(versions.size()));
    } catch (const std::exception& e) {
        reason = std::string("entry " SF_PLUGIN_ENTRY_SYMBOL " threw: ") + e.what();
        return nullptr;
    } catch (...) {
        reason = "entry " SF_PLUGIN_ENTRY_SYMBOL " threw an unknown exception";
        return nullptr;
    }
    if (!d) {
        reason = "entry " SF_PLUGIN_ENTRY_SYMBOL " returned NULL (plugin cannot run on this host)";
        return nullptr;
    }
    // The frozen head (struct_size, abi_version) first, so even a plugin from a future
    // major gets an explanation rather than a misread.
    if (d->struct_size < SF_NEED(sf_plugin_descriptor, abi_version)) {
        reason = tooSmall("descriptor", d->struct_size, SF_NEED(sf_plugin_descriptor, abi_version));
        return nullptr;
    }
    const auto& versions = Registry::supportedAbiVersions();
    if (std::find(versions.begin(), versions.end(), d->abi_version) == versions.end()) {
        reason = "plugin implements ABI " + std::to_string(d->abi_version) + ", host supports " + joinVersions();
        // A plugin of an older major is read no further (its structs have another layout);
        // what to do about it is the useful part of the message.
        if (d->abi_version < versions.back())
            reason += " (rebuild it against the SDK of ABI " + std::to_string(versions.front()) +
                      "; sdk/COMPATIBILITY.md says how to port)";
        return nullptr;
    }
    if (d->struct_size < SF_NEED(sf_plugin_descriptor, vtable)) {
        reason = tooSmall("descriptor", d->struct_size, SF_NEED(sf_plugin_descriptor, vtable));
        return nullptr;
    }
    if (!d->name || !*d->name) {
        reason = "descriptor has no name";
        return nullptr;
    }
    if (d->kind < SF_KIND_OVERFLOW_POLICY || d->kind > SF_KIND_STORAGE_BACKEND) {
        reason = "unknown plugin kind " + std::to_string(d->kind);
        return nullptr;
    }
    if (!d->init) { reason = "descriptor has no init function"; return nullptr; }
    if (!d->destroy) { reason = "descriptor has no destroy function"; return nullptr; }
    if (!d->vtable) { reason = std::string("descriptor has no ") + kindName(d->kind) + " vtable"; return nullptr; }
    std::string vt = checkVtable(d->kind, d->vtable);
    if (!vt.empty()) {
        reason = vt;
        return nullptr;
    }
    p->desc = d;
    p->name = d->name;
    return p;
}

}  // namespace sf::plugins
