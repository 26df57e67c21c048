// streamfenced: parse arguments, load and check the config, start the servers it names,
// then wait for signals (TERM/INT stop, HUP reloads TLS certificates).
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <pthread.h>
#include <set>
#include <string>
#include <vector>

#include <streamfence/plugin.h>

#include "common/log.hpp"
#include "config/loader.hpp"
#include "embed/streamfence.hpp"
#include "net/tls.hpp"
#include "plugins/registry.hpp"

namespace {

const char* kUsage =
    "usage: streamfenced -c FILE [--server NAME] [--plugin-dir DIR] [--log-level LEVEL]\n"
    "       streamfenced --check -c FILE [--server NAME]\n"
    "\n"
    "  -c, --config FILE   YAML (.yaml/.yml) or JSON (.json) config (see conf/README.md)\n"
    "  --server NAME       run only this server of the config (default: all of them)\n"
    "  --check             validate the config, load its TLS files, resolve its plugins and\n"
    "                      initialise them with their options (storage backends on a scratch\n"
    "                      spill root), then exit 0/1\n"
    "  --plugin-dir DIR    override the config's pluginDir\n"
    "  --log-level LEVEL   debug | info | warn | error (overrides logLevel)\n"
    "  --version           print the version and the plugin ABI version\n"
    "  -h, --help          this text\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop cleanly; SIGHUP reloads TLS certificates.\n";

struct Args {
    std::string config, server, pluginDir, logLevel;
    bool check = false;
};

int usageError(const std::string& msg) {
    std::cerr << "streamfenced: " << msg << "\n\n" << kUsage;
    return 2;
}

// Everything --check verifies beyond the schema: plugins resolve and initialise with their
// options, TLS files load. Returns the problems, one per line.
std::vector<std::string> deepCheck(const sf::config::Config& cfg, const std::vector<const sf::config::ServerConfig*>& servers,
                                   sf::plugins::Registry& reg) {
    using sf::plugins::kindName;
    auto isInstalled = [&](const std::string& kind, const std::string& name) {
        for (uint32_t k = SF_KIND_OVERFLOW_POLICY; k <= SF_KIND_STORAGE_BACKEND; ++k)
            if (kind == kindName(k)) return reg.has(k, name);
        return false;
    };
    auto list = [&](const std::string& kind) {
        for (uint32_t k = SF_KIND_OVERFLOW_POLICY; k <= SF_KIND_STORAGE_BACKEND; ++k)
            if (kind == kindName(k)) return reg.names(k);
        return std::vector<std::string>{};
    };
    std::vector<std::string> problems = sf::config::checkPluginRefs(cfg, isInstalled, list);

    // Initialise (then destroy) every plugin instance a start would create, with the same
    // options, so an option the plugin refuses fails here as it would at start. Storage
    // backends get an empty scratch directory as their spill root: the disk backend acts on
    // stale spill under its root at init, which a check of a running server's config must
    // not touch.
    std::string scratch;
    auto tryInit = [&](uint32_t kind, const std::string& name, const sf::config::SourceMark& where, const std::string& instance) {
        if (name.empty() || !reg.has(kind, name)) return;  // reported by checkPluginRefs
        auto it = cfg.pluginOptions.find(name);
        sf::config::PluginOptions opts = it == cfg.pluginOptions.end() ? sf::config::PluginOptions{} : it->second;
        if (kind == SF_KIND_STORAGE_BACKEND) {
            if (scratch.empty()) {
                char tmpl[] = "/tmp/streamfenced-check-XXXXXX";
                if (!mkdtemp(tmpl)) {
                    problems.push_back(std::string("cannot create a scratch directory to check storage backends: ") + std::strerror(errno));
                    return;
                }
                scratch = tmpl;
            }
            for (auto& kv : opts.flat)
                if (kv.first == "root" || kv.first == "spillRootPath") kv.second = scratch;
            if (opts.flatMarks.size() == opts.flat.size()) opts.flatMarks.push_back(opts.mark);  // keep them parallel
            opts.flat.emplace_back("spillRootPath", scratch);
        }
        try {
            reg.instantiate(kind, name, opts, instance);
        } catch (const std::exception& e) {
            std::string at = (it != cfg.pluginOptions.end() ? it->second.mark : where).str();
            problems.push_back((at.empty() ? std::string() : at + ": ") + e.what());
        }
    };
    std::set<std::string> seen;  // one line per plugin and problem, however often it is used
    auto once = [&](uint32_t kind, const std::string& name, const sf::config::SourceMark& where, const std::string& instance) {
        if (seen.insert(std::to_string(kind) + "/" + name).second) tryInit(kind, name, where, instance);
    };
    for (size_t i = 0; i < cfg.metricsSinks.size(); ++i)
        once(SF_KIND_METRICS_SINK, cfg.metricsSinks[i], i < cfg.metricsSinkMarks.size() ? cfg.metricsSinkMarks[i] : sf::config::SourceMark{}, "check");
    for (const auto* s : servers) {
        if (s->auth == sf::config::AuthMode::TOKEN) once(SF_KIND_TOKEN_VALIDATOR, s->tokenValidator, s->tokenValidatorMark, s->name);
        for (const auto& ns : s->namespaces) {
            once(SF_KIND_OVERFLOW_POLICY, ns.overflowAction, ns.overflowActionMark, s->name + ":" + ns.path);
            if (ns.overflowAction == "SPILL_TO_DISK")
                once(SF_KIND_STORAGE_BACKEND, ns.spillBackend.empty() ? std::string("disk") : ns.spillBackend, ns.spillBackendMark, s->name);
        }
    }
    if (!scratch.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(scratch, ec);
    }
    for (const auto* s : servers) {
        if (s->transport == sf::config::Transport::WSS && s->tls) {
            try {
                sf::net::TlsContext ctx(s->tls->certChainPemPath, s->tls->privateKeyPemPath, s->tls->privateKeyPassword,
                                        s->tls->protocol);
            } catch (const std::exception& e) {
                problems.push_back(s->mark.str() + ": tls: " + e.what());
            }
        }
    }
    return problems;
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string s = argv[i];
        auto value = [&](std::string& out) -> bool {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        if (s == "-h" || s == "--help") {
            std::cout << kUsage;
            return 0;
        } else if (s == "--version") {
            std::cout << "streamfenced " << SF_VERSION << " (plugin ABI " << SF_ABI_VERSION << "." << SF_ABI_MINOR << ")\n";
            return 0;
        } else if (s == "-c" || s == "--config") {
            if (!value(a.config)) return usageError(s + " needs a file");
        } else if (s == "--server") {
            if (!value(a.server)) return usageError("--server needs a name");
        } else if (s == "--plugin-dir") {
            if (!value(a.pluginDir)) return usageError("--plugin-dir needs a directory");
        } else if (s == "--log-level") {
            if (!value(a.logLevel)) return usageError("--log-level needs a level");
        } else if (s == "--check") {
            a.check = true;
        } else {
            return usageError("unknown argument \"" + s + "\"");
        }
    }
    if (a.config.empty()) return usageError("no config file given (-c FILE)");

    sf::config::Config cfg;
    std::vector<const sf::config::ServerConfig*> servers;
    try {
        cfg = sf::config::loadFile(a.config);
        servers = sf::config::selectServers(cfg, a.server);
    } catch (const sf::config::ConfigError& e) {
        std::cerr << e.what() << "\n";
        if (a.check) std::cerr << "config check FAILED: " << a.config << "\n";
        return 1;
    }
    if (!a.pluginDir.empty()) cfg.pluginDir = a.pluginDir;
    const std::string& level = a.logLevel.empty() ? cfg.logLevel : a.logLevel;
    if (!sf::log::setLevel(level)) return usageError("unknown log level \"" + level + "\"");

    // Signals go to the main thread only: block them before any thread starts.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    signal(SIGPIPE, SIG_IGN);

    auto registry = std::make_shared<sf::plugins::Registry>();
    std::string dir = cfg.pluginDir.empty() ? sf::plugins::Registry::defaultDirectory() : cfg.pluginDir;
    registry->loadDirectory(dir);

    if (a.check) {
        auto problems = deepCheck(cfg, servers, *registry);
        for (auto& p : problems) std::cerr << p << "\n";
        if (!problems.empty()) {
            std::cerr << "config check FAILED: " << a.config << " (" << problems.size() << " problem"
                      << (problems.size() == 1 ? "" : "s") << ")\n";
            return 1;
        }
        std::cout << "config OK: " << a.config << " (servers:";
        for (auto* s : servers) std::cout << " " << s->name;
        std::cout << "; plugin dir: " << dir << ")\n";
        return 0;
    }

    std::vector<std::unique_ptr<sf::StreamFenceServer>> running;
    try {
        for (const auto* s : servers) {
            running.push_back(std::make_unique<sf::StreamFenceServer>(cfg, s->name, registry));
            running.back()->start();
        }
    } catch (const sf::config::ConfigError& e) {
        // Config problems read best as the plain file:line:col lines --check prints.
        std::cerr << e.what() << "\n";
        sf::log::error("startup_failed", {{"config", a.config}, {"reason", "config"}});
        for (auto& r : running) r->stop();
        return 1;
    } catch (const std::exception& e) {
        sf::log::error("startup_failed", {{"config", a.config}, {"error", e.what()}});
        for (auto& r : running) r->stop();
        return 1;
    }
    sf::log::info("started", {{"servers", std::to_string(running.size())}, {"version", SF_VERSION}});

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0) continue;
        if (sig == SIGHUP) {
            for (auto& r : running) {
                std::string err;
                if (r->config().transport != sf::config::Transport::WSS) continue;
                if (r->reloadTls(err))
                    sf::log::info("tls_reloaded", {{"server", r->config().name}});
                else
                    sf::log::error("tls_reload_failed", {{"server", r->config().name}, {"error", err}});
            }
            continue;
        }
        sf::log::info("stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
        break;
    }
    for (auto& r : running) r->stop();
    sf::log::info("stopped");
    return 0;
}
