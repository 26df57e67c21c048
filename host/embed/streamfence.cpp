// StreamFenceServer: composes one server out of the layers, in the order a message flows:
// SioServer (loops, protocol) -> Delivery (topics, lanes, plugins) -> control listener.
#include "embed/streamfence.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "admin/control_server.hpp"
#include "cluster/cluster_node.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "config/loader.hpp"
#include "config/validate.hpp"
#include "delivery/delivery.hpp"
#include "embed/server_stats.hpp"
#include "plugins/metrics_sinks.hpp"
#include "plugins/registry.hpp"
#include "protocol/sio_server.hpp"
#include "protocol/socket_io_codec.hpp"

namespace sf {
namespace {

// The control API's answer to a publish status.
admin::PublishOutcome outcomeOf(delivery::PublishStatus s, const std::string& ns, const std::string& topic,
                                const std::string& clientId) {
    using S = delivery::PublishStatus;
    switch (s) {
        case S::Ok: return admin::PublishOutcome{200, ""};
        case S::UnknownNamespace: return admin::PublishOutcome{404, "unknown namespace " + ns};
        case S::UnknownTopic: return admin::PublishOutcome{404, "unknown topic " + topic + " in namespace " + ns};
        case S::UnknownClient: return admin::PublishOutcome{404, "unknown client " + clientId + " in namespace " + ns};
        case S::NotSubscribed: return admin::PublishOutcome{404, "client " + clientId + " is not subscribed to " + topic};
        case S::InvalidPayload: return admin::PublishOutcome{400, "payload is not valid JSON"};
        case S::Overloaded:
            return admin::PublishOutcome{429, "overloaded: the topic's buffer is full, retry later", 1};
        case S::Stopping: return admin::PublishOutcome{503, "server is stopping", 1};
        case S::ClusterUnavailable:
            return admin::PublishOutcome{503, "cluster unavailable: the other nodes cannot be reached through Redis", 1};
    }
    return admin::PublishOutcome{500, "unexpected publish status"};
}

// The payload, parsed once: delivery encodes its frame from this value.
json::Value parsePayload(const std::string& s) {
    json::Value v;
    std::string err;
    if (!json::tryParse(s, v, err)) throw std::invalid_argument("payload is not valid JSON");
    return v;
}

json::Value binaryValue(const Bytes& b) { return json::Value::binary(std::string(b.begin(), b.end())); }

// JSON whose placeholders {"_placeholder":true,"num":i} stand for binary[i].
json::Value parseWithBinary(const std::string& s, const std::vector<Bytes>& binary) {
    sio::Packet p;
    p.data = parsePayload(s);
    std::vector<std::string> bufs;
    bufs.reserve(binary.size());
    for (auto& b : binary) bufs.emplace_back(b.begin(), b.end());
    std::string err;
    if (!sio::reconstruct(p, bufs, err)) throw std::invalid_argument("payload has a placeholder without its binary part");
    return std::move(p.data);
}

}  // namespace

struct StreamFenceServer::Impl {
    config::Config cfg;
    const config::ServerConfig* server = nullptr;
    std::shared_ptr<plugins::Registry> registry;
    std::vector<std::shared_ptr<ServerListener>> listeners;
    std::vector<std::tuple<std::string, std::string, delivery::MessageHandler>> handlers;

    // Guards start/stop against publish: publishers share it, so they never wait for each
    // other; `stopping` turns them away at once while stop() drains under the exclusive lock.
    mutable std::shared_mutex mu;
    std::atomic<bool> stopping{false};
    bool running = false;
    delivery::Metrics metrics;
    std::unique_ptr<sio::SioServer> sio;
    std::unique_ptr<delivery::Delivery> delivery;
    std::unique_ptr<plugins::MetricsSinks> sinks;
    std::unique_ptr<admin::ControlServer> control;
    std::shared_ptr<cluster::ClusterNode> cluster;  // cluster mode only (docs/cluster.md)

    std::atomic<uint64_t> controlRateLimited{0};  // control requests answered 429 (control.maxRequestsPerSecond)

    MetricSnapshot snapshot() const {
        MetricSnapshot s = metrics.snapshot();
        if (sio) sio->appendLimitMetrics(s);
        s.push_back(MetricSample{"streamfence_control_rate_limited_total",
                                 "Control-API requests answered 429 because their address went past control.maxRequestsPerSecond.",
                                 MetricSample::Type::Counter, {}, static_cast<double>(controlRateLimited.load())});
        if (cluster) cluster->appendMetrics(s);
        return s;
    }

    std::chrono::steady_clock::time_point startedAt;
    // Fill parts of the dashboard snapshot other layers own (detached sessions, cluster):
    // copy-on-write, called on a control-listener thread at most once a second.
    std::mutex contributorsMu;
    std::vector<std::function<void(admin::StatsSnapshot&)>> statsContributors;

    admin::StatsSnapshot stats() {
        const uint64_t up = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                      std::chrono::steady_clock::now() - startedAt)
                                                      .count());
        admin::StatsSnapshot s = buildServerStats(*server, metrics, *delivery, *registry, up);
        std::vector<std::function<void(admin::StatsSnapshot&)>> fns;
        {
            std::lock_guard<std::mutex> lk(contributorsMu);
            fns = statsContributors;
        }
        for (auto& f : fns) f(s);
        if (server->recovery.enabled) {
            // Connection-state recovery (docs/recovery.md), summed over namespaces.
            admin::DetachedSessions d;
            for (auto& n : server->namespaces) {
                auto& c = metrics.ns(n.path);
                d.sessions += static_cast<uint64_t>(std::max<int64_t>(0, c.detached.load()));
                auto [msgs, bytes] = c.detachedQueued();
                d.messages += msgs;
                d.bytes += bytes;
                d.resumed += c.sessionsRecovered.load();
                d.expired += c.sessionsExpired.load();
            }
            s.detached = d;
        }
        if (cluster) {
            admin::ClusterInfo ci;
            ci.nodeId = cluster->nodeId();
            std::vector<std::string> seen;
            const std::string link = cluster->linkState(&seen);
            for (auto& id : seen) ci.nodes.push_back(admin::ClusterNode{id, "", link == "UP" ? "up" : "unknown", 0, id == ci.nodeId});
            s.cluster = ci;
        }
        return s;
    }

    ServerInfo info() const {
        ServerInfo i;
        i.name = server->name;
        i.host = server->host;
        i.port = sio ? sio->port() : server->port;
        i.controlPort = control ? control->port() : 0;
        return i;
    }

    const config::NamespaceConfig* findNs(const std::string& ns) const {
        for (auto& n : server->namespaces)
            if (n.path == ns) return &n;
        return nullptr;
    }

    void checkTopic(const std::string& ns, const std::string& topic) const {
        const config::NamespaceConfig* n = findNs(ns);
        if (!n) throw UnknownTopicError("unknown namespace " + ns);
        for (auto& t : n->topics)
            if (t == topic) return;
        throw UnknownTopicError("unknown topic policy for " + ns + ":" + topic);
    }

    std::string healthJson() const {
        std::string out = "{\"status\":\"UP\",\"server\":" + json::quote(server->name);
        out += ",\"port\":" + std::to_string(sio ? sio->port() : 0);
        out += ",\"sessions\":" + std::to_string(sio ? sio->sessionCount() : 0);
        out += ",\"clients\":" + std::to_string(delivery ? delivery->connectedClients() : 0);
        out += ",\"plugins\":[";
        bool first = true;
        for (auto& p : registry->plugins()) {
            if (!first) out.push_back(',');
            first = false;
            out += "{\"name\":" + json::quote(p.name) + ",\"kind\":" + json::quote(plugins::kindName(p.kind)) +
                   ",\"version\":" + json::quote(p.version) + "}";
        }
        out += "],\"refusedPlugins\":" + std::to_string(registry->refusals().size());
        if (cluster) out += ",\"cluster\":" + cluster->healthJson();
        out += "}";
        return out;
    }
};

StreamFenceServer::StreamFenceServer(config::Config config, std::string serverName,
                                     std::shared_ptr<plugins::Registry> registry)
    : impl_(std::make_unique<Impl>()) {
    impl_->cfg = std::move(config);
    impl_->server = config::findServer(impl_->cfg, serverName);
    if (!impl_->server) {
        std::string names;
        for (auto& s : impl_->cfg.servers) names += (names.empty() ? "" : ", ") + s.name;
        throw config::ConfigError("No server named \"" + serverName + "\" found in config (available: " + names + ")");
    }
    if (!registry) {
        registry = std::make_shared<plugins::Registry>();
        registry->loadDirectory(impl_->cfg.pluginDir.empty() ? plugins::Registry::defaultDirectory() : impl_->cfg.pluginDir);
    }
    impl_->registry = std::move(registry);
}

StreamFenceServer::~StreamFenceServer() { stop(); }

void StreamFenceServer::addListener(std::shared_ptr<ServerListener> l) {
    std::lock_guard<std::shared_mutex> g(impl_->mu);
    impl_->listeners.push_back(l);
    if (impl_->delivery) impl_->delivery->addListener(std::move(l));  // running: events from now on
}

void StreamFenceServer::addMessageHandler(const std::string& ns, const std::string& topic, delivery::MessageHandler handler) {
    impl_->checkTopic(ns, topic);
    std::lock_guard<std::shared_mutex> g(impl_->mu);
    impl_->handlers.emplace_back(ns, topic, handler);
    if (impl_->delivery) impl_->delivery->onMessage(ns, topic, handler);
}

void StreamFenceServer::start() {
    std::lock_guard<std::shared_mutex> g(impl_->mu);
    if (impl_->running) return;
    Impl& m = *impl_;
    for (auto& l : m.listeners) l->onServerStarting(m.info());

    // Every plugin the config names must resolve before anything listens.
    auto problems = config::checkPluginRefs(
        m.cfg,
        [&](const std::string& kind, const std::string& name) {
            for (uint32_t k = SF_KIND_OVERFLOW_POLICY; k <= SF_KIND_STORAGE_BACKEND; ++k)
                if (kind == plugins::kindName(k)) return m.registry->has(k, name);
            return false;
        },
        [&](const std::string& kind) {
            for (uint32_t k = SF_KIND_OVERFLOW_POLICY; k <= SF_KIND_STORAGE_BACKEND; ++k)
                if (kind == plugins::kindName(k)) return m.registry->names(k);
            return std::vector<std::string>{};
        });
    if (!problems.empty()) throw config::ConfigError(problems);

    m.sio = std::make_unique<sio::SioServer>(*m.server);
    try {
        auto resolver = delivery::PluginResolver::fromRegistry(*m.registry, m.cfg, *m.server);
        m.delivery = std::make_unique<delivery::Delivery>(*m.server, resolver, m.metrics, m.sio->loops());
        for (auto& l : m.listeners) m.delivery->addListener(l);
        for (auto& [ns, topic, h] : m.handlers) m.delivery->onMessage(ns, topic, h);
        if (m.cfg.cluster) {
            // Before any client can connect: the node learns every subscription.
            m.cluster = std::make_shared<cluster::ClusterNode>(*m.cfg.cluster, *m.server, *m.delivery);
            m.delivery->setClusterBus(m.cluster);
            m.delivery->addListener(m.cluster);
            m.cluster->start();
        }
        for (auto& ns : m.server->namespaces) m.sio->addNamespace(ns.path, m.delivery->handlerFor(ns.path));

        m.sinks = std::make_unique<plugins::MetricsSinks>();
        for (auto& name : m.cfg.metricsSinks) {
            config::PluginOptions opts;
            if (auto it = m.cfg.pluginOptions.find(name); it != m.cfg.pluginOptions.end()) opts = it->second;
            m.sinks->add(m.registry->instantiate(SF_KIND_METRICS_SINK, name, opts, m.server->name));
        }
        m.sinks->start([&m] { return m.snapshot(); });

        m.sio->start();
        m.startedAt = std::chrono::steady_clock::now();
        if (m.server->control.enabled) {
            admin::ControlHooks hooks;
            hooks.publish = [&m](const std::string& ns, const std::string& topic, const json::Value& payload,
                                 const std::string& clientId) {
                return outcomeOf(clientId.empty() ? m.delivery->publishValue(ns, topic, payload)
                                                  : m.delivery->publishValueTo(ns, clientId, topic, payload),
                                 ns, topic, clientId);
            };
            hooks.publishAsync = [&m](const std::string& ns, const std::string& topic, const json::Value& payload,
                                      const std::string& clientId, std::function<void(admin::PublishOutcome)> done) {
                if (!clientId.empty()) return done(outcomeOf(m.delivery->publishValueTo(ns, clientId, topic, payload), ns, topic, clientId));
                m.delivery->publishValueAsync(ns, topic, payload, [ns, topic, done = std::move(done)](delivery::PublishStatus st) {
                    done(outcomeOf(st, ns, topic, ""));
                });
            };
            hooks.healthJson = [&m] { return m.healthJson(); };
            hooks.rateLimited = [&m] { return m.controlRateLimited.fetch_add(1) + 1; };
            hooks.stats = [&m] { return m.stats(); };
            hooks.metrics = [&m](std::string& body, std::string& type) {
                return m.sinks->render(m.snapshot(), body, type);
            };
            m.control = std::make_unique<admin::ControlServer>(m.server->control, m.server->name, std::move(hooks));
            m.control->start();
        }
    } catch (...) {
        if (m.control) m.control->stop();
        if (m.cluster) m.cluster->stop();
        if (m.sinks) m.sinks->stop();
        if (m.delivery) m.delivery->shutdown();
        m.sio->stop();
        m.control.reset();
        m.cluster.reset();
        m.delivery.reset();
        m.sinks.reset();
        m.sio.reset();
        throw;
    }
    m.running = true;
    for (auto& l : m.listeners) l->onServerStarted(m.info());
}

void StreamFenceServer::stop() {
    if (!impl_) return;
    impl_->stopping = true;
    std::unique_lock<std::shared_mutex> g(impl_->mu);
    Impl& m = *impl_;
    if (!m.running) return;
    for (auto& l : m.listeners) l->onServerStopping(m.info());
    ServerInfo last = m.info();
    if (m.control) m.control->stop();
    // The other nodes stop sending here before the lanes drain.
    if (m.cluster) m.cluster->stop();
    // Lanes drain (bounded), then they and their spill go while the loops still run, then
    // the loops stop.
    m.delivery->shutdown(static_cast<uint64_t>(std::max(0, m.server->shutdownDrainMs)));
    m.sio->stop();
    m.sinks->stop(true);
    m.control.reset();
    m.cluster.reset();
    m.delivery.reset();
    m.sio.reset();
    m.sinks.reset();
    m.running = false;
    m.stopping = false;
    g.unlock();
    for (auto& l : m.listeners) l->onServerStopped(last);
}

void StreamFenceServer::addStatsContributor(std::function<void(admin::StatsSnapshot&)> fn) {
    std::lock_guard<std::mutex> lk(impl_->contributorsMu);
    impl_->statsContributors.push_back(std::move(fn));
}

bool StreamFenceServer::running() const {
    std::lock_guard<std::shared_mutex> g(impl_->mu);
    return impl_->running;
}

const char* toString(PublishResult r) {
    switch (r) {
        case PublishResult::Accepted: return "ACCEPTED";
        case PublishResult::Overloaded: return "OVERLOADED";
        case PublishResult::NotRunning: return "NOT_RUNNING";
        case PublishResult::ClusterUnavailable: return "CLUSTER_UNAVAILABLE";
    }
    return "?";
}

namespace {

PublishResult resultOf(delivery::PublishStatus st) {
    switch (st) {
        case delivery::PublishStatus::Ok: return PublishResult::Accepted;
        case delivery::PublishStatus::Overloaded: return PublishResult::Overloaded;
        case delivery::PublishStatus::ClusterUnavailable: return PublishResult::ClusterUnavailable;
        default: return PublishResult::NotRunning;  // Stopping (checkTopic answered the rest)
    }
}

}  // namespace

PublishResult StreamFenceServer::publishValue(const std::string& ns, const std::string& topic, const json::Value& payload) {
    if (impl_->stopping) return PublishResult::NotRunning;
    std::shared_lock<std::shared_mutex> g(impl_->mu);
    if (!impl_->running) return PublishResult::NotRunning;
    return resultOf(impl_->delivery->publishValue(ns, topic, payload));
}

PublishResult StreamFenceServer::publish(const std::string& ns, const std::string& topic, const std::string& payloadJson) {
    impl_->checkTopic(ns, topic);
    return publishValue(ns, topic, parsePayload(payloadJson));
}

void StreamFenceServer::publishAsync(const std::string& ns, const std::string& topic, const std::string& payloadJson,
                                     std::function<void(PublishResult)> done) {
    impl_->checkTopic(ns, topic);
    json::Value v = parsePayload(payloadJson);
    // An answer given on this thread is passed on after the lock is released, so that done
    // may publish again; one from the journal's writer thread goes straight through.
    struct Pending {
        std::function<void(PublishResult)> done;
        std::thread::id caller = std::this_thread::get_id();
        std::atomic<bool> returned{false};
        bool answered = false;
        PublishResult result = PublishResult::NotRunning;
    };
    auto p = std::make_shared<Pending>();
    p->done = std::move(done);
    {
        std::shared_lock<std::shared_mutex> g(impl_->mu);
        if (!impl_->stopping && impl_->running) {
            impl_->delivery->publishValueAsync(ns, topic, v, [p](delivery::PublishStatus st) {
                if (!p->returned.load() && std::this_thread::get_id() == p->caller) {
                    p->answered = true;
                    p->result = resultOf(st);
                } else {
                    p->done(resultOf(st));
                }
            });
        } else {
            p->answered = true;
        }
    }
    p->returned = true;
    if (p->answered) p->done(p->result);
}

PublishResult StreamFenceServer::publish(const std::string& ns, const std::string& topic, const Bytes& payload) {
    impl_->checkTopic(ns, topic);
    return publishValue(ns, topic, binaryValue(payload));
}

PublishResult StreamFenceServer::publish(const std::string& ns, const std::string& topic, const std::string& payloadJson,
                                         const std::vector<Bytes>& binary) {
    impl_->checkTopic(ns, topic);
    return publishValue(ns, topic, parseWithBinary(payloadJson, binary));
}

bool StreamFenceServer::publishValueTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                                       const json::Value& payload) {
    if (impl_->stopping) return false;
    std::shared_lock<std::shared_mutex> g(impl_->mu);
    if (!impl_->running) return false;
    return impl_->delivery->publishValueTo(ns, clientId, topic, payload) == delivery::PublishStatus::Ok;
}

bool StreamFenceServer::publishTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                                  const std::string& payloadJson) {
    impl_->checkTopic(ns, topic);
    return publishValueTo(ns, clientId, topic, parsePayload(payloadJson));
}

bool StreamFenceServer::publishTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                                  const Bytes& payload) {
    impl_->checkTopic(ns, topic);
    return publishValueTo(ns, clientId, topic, binaryValue(payload));
}

bool StreamFenceServer::publishTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                                  const std::string& payloadJson, const std::vector<Bytes>& binary) {
    impl_->checkTopic(ns, topic);
    return publishValueTo(ns, clientId, topic, parseWithBinary(payloadJson, binary));
}

bool StreamFenceServer::reloadTls(std::string& error) {
    std::lock_guard<std::shared_mutex> g(impl_->mu);
    if (!impl_->sio) {
        error = "server not running";
        return false;
    }
    return impl_->sio->reloadTls(error);
}

ServerInfo StreamFenceServer::info() const {
    std::lock_guard<std::shared_mutex> g(impl_->mu);
    return impl_->info();
}

int StreamFenceServer::port() const { return info().port; }

const config::ServerConfig& StreamFenceServer::config() const { return *impl_->server; }

std::string StreamFenceServer::scrapeMetrics() const {
    std::lock_guard<std::shared_mutex> g(impl_->mu);
    std::string body, type;
    if (!impl_->sinks || !impl_->sinks->render(impl_->snapshot(), body, type)) return "";
    return body;
}

// ------------------------------------------------------------------ builder

StreamFenceServerBuilder::StreamFenceServerBuilder() {
    config::ServerConfig s;
    s.name = "default";
    cfg_.servers.push_back(s);
    serverName_ = "default";
}

StreamFenceServerBuilder StreamFenceServerBuilder::fromConfig(const config::Config& file, const std::string& serverName) {
    auto selected = config::selectServers(file, serverName);
    StreamFenceServerBuilder b;
    b.cfg_ = file;
    b.cfg_.servers = {*selected.front()};
    b.serverName_ = selected.front()->name;
    return b;
}

StreamFenceServerBuilder StreamFenceServerBuilder::fromYaml(const std::string& path, const std::string& serverName) {
    return fromConfig(config::loadFile(path), serverName);
}

StreamFenceServerBuilder StreamFenceServerBuilder::fromJson(const std::string& path, const std::string& serverName) {
    auto dot = path.rfind('.');
    std::string ext = dot == std::string::npos ? "" : path.substr(dot);
    if (ext != ".json")
        throw config::ConfigError("Unsupported config file extension \"" + ext + "\" for fromJson (expected .json): " + path);
    return fromConfig(config::loadFile(path), serverName);
}

StreamFenceServerBuilder& StreamFenceServerBuilder::name(const std::string& n) {
    cfg_.servers.front().name = n;
    serverName_ = n;
    return *this;
}
StreamFenceServerBuilder& StreamFenceServerBuilder::host(const std::string& h) { cfg_.servers.front().host = h; return *this; }
StreamFenceServerBuilder& StreamFenceServerBuilder::port(int p) { cfg_.servers.front().port = p; return *this; }
StreamFenceServerBuilder& StreamFenceServerBuilder::namespaceSpec(config::NamespaceConfig ns) {
    cfg_.servers.front().namespaces.push_back(std::move(ns));
    return *this;
}
StreamFenceServerBuilder& StreamFenceServerBuilder::control(config::ControlConfig c) {
    c.enabled = true;
    cfg_.servers.front().control = std::move(c);
    return *this;
}
StreamFenceServerBuilder& StreamFenceServerBuilder::pluginDir(const std::string& dir) { cfg_.pluginDir = dir; return *this; }
StreamFenceServerBuilder& StreamFenceServerBuilder::pluginOptions(const std::string& plugin, config::PluginOptions o) {
    cfg_.pluginOptions[plugin] = std::move(o);
    return *this;
}
StreamFenceServerBuilder& StreamFenceServerBuilder::connectionStateRecovery(int64_t maxDisconnectionDurationMs) {
    server().recovery.enabled = true;
    server().recovery.maxDisconnectionDurationMs = maxDisconnectionDurationMs;
    return *this;
}

StreamFenceServerBuilder& StreamFenceServerBuilder::listener(std::shared_ptr<ServerListener> l) {
    listeners_.push_back(std::move(l));
    return *this;
}
config::ServerConfig& StreamFenceServerBuilder::server() { return cfg_.servers.front(); }

std::unique_ptr<StreamFenceServer> StreamFenceServerBuilder::build() {
    auto problems = config::validateConfig(cfg_, nullptr, nullptr);
    if (!problems.empty()) throw config::ConfigError(problems);
    auto s = std::make_unique<StreamFenceServer>(cfg_, serverName_, nullptr);
    for (auto& l : listeners_) s->addListener(l);
    return s;
}

}  // namespace sf
