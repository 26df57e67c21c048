// StreamFence delivery control for one server: the public API the embed layer wires.
//
//   sf::delivery::Metrics metrics;                       // outlives the Delivery
//   auto resolver = sf::delivery::PluginResolver::fromRegistry(registry, config, serverCfg);
//   sf::delivery::Delivery d(serverCfg, resolver, metrics, {&loop0, &loop1});
//   sio layer: for each ns: setHandler(ns.path, d.handlerFor(ns.path));
//   d.publish("/feed", "prices", R"({"p":1})");          // any thread
//
// Threads: publish/publishTo/onMessage/addListener are thread-safe. Handlers and listener
// callbacks run on event-loop threads. The loops must outlive the Delivery and keep
// running until shutdown() returned (storage and validator completions are posted to them).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "delivery/cluster_bus.hpp"
#include "delivery/core.hpp"
#include "delivery/delivery_stats.hpp"
#include "delivery/listener.hpp"
#include "delivery/publish_status.hpp"
#include "delivery/metrics.hpp"
#include "net/event_loop.hpp"
#include "plugins/registry.hpp"
#include "protocol/sio_api.hpp"

namespace sf::delivery {



// Where the Delivery gets its plugin instances. Each function may be empty.
struct PluginResolver {
    // Required for every namespace (the overflowAction's policy plugin).
    std::function<plugins::PluginInstancePtr(const config::NamespaceConfig&)> overflowPolicy;
    // Called for every namespace; return null when it has no spill storage. The standard
    // resolver returns the namespace's spillBackend for overflowAction SPILL_TO_DISK.
    std::function<plugins::PluginInstancePtr(const config::NamespaceConfig&)> storageBackend;
    // Called once when auth is TOKEN.
    std::function<plugins::PluginInstancePtr()> tokenValidator;

    // Direct adapters (tests, in-process policies): used instead of the functions above
    // when set.
    std::function<std::unique_ptr<OverflowPolicy>(const config::NamespaceConfig&)> makePolicy;
    std::function<std::shared_ptr<SpillStorage>(const config::NamespaceConfig&)> makeStorage;
    std::function<std::unique_ptr<TokenValidator>()> makeValidator;

    // The standard mapping on a loaded registry: policy = instantiate(OVERFLOW_POLICY,
    // ns.overflowAction), storage = instantiate(STORAGE_BACKEND, ns.spillBackend) for
    // SPILL_TO_DISK namespaces (one instance per backend name, shared by the server; its
    // options get "spillRootPath" added when absent), validator = instantiate(TOKEN_VALIDATOR,
    // server.tokenValidator). Options come from config.pluginOptions[name]; instance names
    // are "<server>:<ns>" (policies) or "<server>" (storage, validator).
    static PluginResolver fromRegistry(plugins::Registry& registry, const config::Config& config,
                                       const config::ServerConfig& server);
};

class Delivery {
public:
    // Throws plugins::PluginError when a plugin cannot be resolved or has a wrong vtable.
    Delivery(const config::ServerConfig& cfg, const PluginResolver& resolver, Metrics& metrics,
             std::vector<net::EventLoop*> loops, DeliveryOptions options = {});
    ~Delivery();
    Delivery(const Delivery&) = delete;
    Delivery& operator=(const Delivery&) = delete;

    // The Socket.IO handler of a configured namespace (nullptr when not configured).
    std::shared_ptr<sio::NamespaceHandler> handlerFor(const std::string& path) const;

    // Publish to every subscriber of ns/topic: one append to the topic's bounded log. Counts
    // published once per accepted call (even with no subscriber). Overloaded when the log is
    // full and the topic cannot drop (docs/message-path.md); Stopping after shutdown().
    PublishStatus publish(const std::string& ns, const std::string& topic, const std::string& payloadJson);
    // The same with a payload already parsed (the control API parses each body once).
    PublishStatus publishValue(const std::string& ns, const std::string& topic, const json::Value& payload);
    // The same without waiting: done(status) runs exactly once, on the durable journal's
    // writer thread once the message is on disk (durable namespace, no cluster; it must not
    // block), else on this thread before the call returns. The payload is not kept.
    void publishValueAsync(const std::string& ns, const std::string& topic, const json::Value& payload,
                           std::function<void(PublishStatus)> done);
    // Publish to one client (its namespace socket id). Not counted when the client is
    // unknown or not subscribed.
    PublishStatus publishTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                            const std::string& payloadJson);
    PublishStatus publishValueTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                                 const json::Value& payload);
    // Handlers for client `publish` events (auth passed, before fan-out), on the loop thread.
    // Any time, also while running. A failure (returned or thrown) is logged; under
    // inboundAckPolicy ACK_AFTER_HANDLER_SUCCESS it also refuses the publish (HANDLER_FAILED).
    PublishStatus onMessage(const std::string& ns, const std::string& topic, MessageHandler handler);

    void addListener(std::shared_ptr<Listener> l);

    // Cluster mode (docs/cluster.md): set once, before the server takes traffic. From then
    // on publish/publishValue/publishTo and client publishes also reach the other nodes
    // through the bus, and are refused (ClusterUnavailable) while it cannot.
    void setClusterBus(std::shared_ptr<ClusterBus> bus);
    // What the bus received from another node: delivered here only, never sent on.
    // messageId: the origin's id ("" = a new one here); streamId: its stream entry (AT_LEAST_ONCE).
    PublishStatus publishLocal(const std::string& ns, const std::string& topic, const std::string& payloadJson,
                               const std::string& messageId = {}, const std::string& streamId = {});
    PublishStatus publishToLocal(const std::string& ns, const std::string& clientId, const std::string& topic,
                                 const std::string& payloadJson);
    // Another node claimed session pid (docs/cluster.md "Recovery across nodes"): hand its
    // lanes and replay history over and let it go here. `done` runs on the session's loop
    // (at once when this node does not hold it).
    void handOver(const std::string& pid, const std::string& ns, std::function<void(HandOver)> done);

    // Stop taking publishes (they get Stopping), give the lanes up to drainMs to reach their
    // clients, then drop what is left (counted and logged per namespace) with the lanes and
    // their spill. Call from a non-loop thread while the loops still run; waits for each
    // loop at most timeoutMs per step. Bounded whatever the backlog.
    void shutdown(uint64_t drainMs = 0, uint64_t timeoutMs = 2000);

    size_t connectedClients() const;
    // What the loops hold now (connections by transport, lanes, delivered counts), one task
    // per loop (delivery_stats.cpp); a loop that does not answer within timeoutMs is left out.
    DeliveryStats collectStats(uint64_t timeoutMs = 500) const;
    Metrics& metrics();
    const config::ServerConfig& config() const;

private:
    std::shared_ptr<Core> core_;
    std::vector<std::shared_ptr<sio::NamespaceHandler>> handlers_;
};

}  // namespace sf::delivery
