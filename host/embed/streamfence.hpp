// The embeddable API: run a StreamFence server inside your own program.
//
//   auto server = sf::StreamFenceServerBuilder::fromYaml("streamfence.yaml", "feed").build();
//   server->onMessage("/chat", "messages", [](const sf::ClientMessage& m) { ... });
//   server->start();
//   server->publish("/feed", "prices", R"({"symbol":"ACME","price":12.5})");
//
// streamfenced itself is built on exactly this class.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "config/config.hpp"
#include "delivery/listener.hpp"

namespace sf {
namespace admin {
struct StatsSnapshot;
}

namespace plugins {
class Registry;
}
namespace json {
class Value;
}

struct ServerInfo {
    std::string name;
    std::string host;
    int port = 0;         // bound port (after start)
    int controlPort = 0;  // 0 when the control listener is off
};

// A client's `publish` event, handed to onMessage handlers (on the client's I/O thread:
// keep handlers short or hand the work off). Binary parts arrive as bytes in `binary`.
using ClientMessage = delivery::ClientMessage;
// What a handler may return (or just return void / bool); throwing counts as failure.
using HandlerResult = delivery::HandlerResult;
// Binary payload bytes.
using Bytes = std::vector<uint8_t>;

// Every callback is optional; they run on server threads, so keep them quick. The
// delivery events (connect, subscribe, overflow, retries...) are delivery::Listener's.
class ServerListener : public delivery::Listener {
public:
    virtual void onServerStarting(const ServerInfo&) {}
    virtual void onServerStarted(const ServerInfo&) {}
    virtual void onServerStopping(const ServerInfo&) {}
    virtual void onServerStopped(const ServerInfo&) {}
};

struct UnknownTopicError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// ClusterUnavailable: cluster mode, and the other nodes cannot be reached (docs/cluster.md).
enum class PublishResult { Accepted, Overloaded, NotRunning, ClusterUnavailable };
const char* toString(PublishResult r);

class StreamFenceServer {
public:
    // One server of a loaded config. The registry may be shared by several servers.
    StreamFenceServer(config::Config config, std::string serverName, std::shared_ptr<plugins::Registry> registry);
    ~StreamFenceServer();
    StreamFenceServer(const StreamFenceServer&) = delete;
    StreamFenceServer& operator=(const StreamFenceServer&) = delete;

    void addListener(std::shared_ptr<ServerListener> l);  // any time; after start() it gets events from then on
    // Handlers for client `publish` events of ns/topic, any time. F is callable with a
    // const ClientMessage& and returns void, bool or HandlerResult; false, a failed result
    // or an exception is a failure: logged, and under inboundAckPolicy
    // ACK_AFTER_HANDLER_SUCCESS the publisher's ack is {ok:false, code:"HANDLER_FAILED"}.
    template <class F>
    void onMessage(const std::string& ns, const std::string& topic, F handler) {
        using R = std::invoke_result_t<F&, const ClientMessage&>;
        if constexpr (std::is_void_v<R>) {
            addMessageHandler(ns, topic, [h = std::move(handler)](const ClientMessage& m) mutable {
                h(m);
                return HandlerResult{};
            });
        } else {
            addMessageHandler(ns, topic, [h = std::move(handler)](const ClientMessage& m) mutable { return HandlerResult(h(m)); });
        }
    }

    void start();  // throws on failure (port in use, plugin missing, bad TLS files)
    void stop();   // idempotent
    bool running() const;

    // Publish to every subscriber of ns/topic. payloadJson must be valid JSON.
    // Throws UnknownTopicError for an unknown namespace/topic. Accepted means the message is
    // in the topic's bounded log and every lane gets it under its policy; Overloaded means
    // the log is full (a lossless topic whose loops are behind): nothing was queued, try
    // again later. NotRunning before start() and after stop(). Never blocks on delivery.
    // Cluster mode (docs/cluster.md): ClusterUnavailable while the other nodes cannot be
    // reached; an AT_LEAST_ONCE publish waits (at most cluster.redis.commandTimeoutMs) for
    // its Redis append, and is refused instead when called on an I/O loop thread.
    PublishResult publish(const std::string& ns, const std::string& topic, const std::string& payloadJson);
    // A binary payload: delivered as one binary argument (a Buffer in socket.io-client).
    PublishResult publish(const std::string& ns, const std::string& topic, const Bytes& payload);
    // JSON with binary parts: payloadJson holds {"_placeholder":true,"num":i} where binary[i]
    // goes (the form onMessage hands over); throws std::invalid_argument on a bad placeholder.
    PublishResult publish(const std::string& ns, const std::string& topic, const std::string& payloadJson,
                          const std::vector<Bytes>& binary);
    // publish() without blocking the caller: done(result) is called exactly once. A durable
    // namespace (docs/recovery.md) answers Accepted only once the message is on disk, from
    // the journal's writer thread: done must be quick and must not block (it may publish
    // again); many in-flight publishes share one fsync. Otherwise done runs on the calling
    // thread before publishAsync returns. Throws like publish (unknown topic, bad JSON).
    void publishAsync(const std::string& ns, const std::string& topic, const std::string& payloadJson,
                      std::function<void(PublishResult)> done);
    // Publish to one client (socket id of the namespace). False when the client is unknown
    // or not subscribed, when its loop has too many publishTo hand-offs waiting (overload),
    // or when not running; throws UnknownTopicError for an unknown namespace/topic.
    bool publishTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                   const std::string& payloadJson);
    bool publishTo(const std::string& ns, const std::string& clientId, const std::string& topic, const Bytes& payload);
    bool publishTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                   const std::string& payloadJson, const std::vector<Bytes>& binary);

    bool reloadTls(std::string& error);  // SIGHUP
    ServerInfo info() const;
    int port() const;  // the bound port once started (a configured port 0 is resolved), else the configured one
    const config::ServerConfig& config() const;
    // Prometheus text of this server's metrics ("" when no sink renders).
    std::string scrapeMetrics() const;
    // Add to the dashboard / GET /v1/stats snapshot (admin/stats_snapshot.hpp: detached
    // sessions, cluster nodes). Called on a control-listener thread, at most once a second,
    // while the server runs; must not block for long.
    void addStatsContributor(std::function<void(admin::StatsSnapshot&)> fn);

private:
    PublishResult publishValue(const std::string& ns, const std::string& topic, const json::Value& payload);
    bool publishValueTo(const std::string& ns, const std::string& clientId, const std::string& topic, const json::Value& payload);
    void addMessageHandler(const std::string& ns, const std::string& topic, delivery::MessageHandler handler);
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Builder: from a config file, or from code.
class StreamFenceServerBuilder {
public:
    static StreamFenceServerBuilder fromYaml(const std::string& path, const std::string& serverName = "");
    static StreamFenceServerBuilder fromJson(const std::string& path, const std::string& serverName = "");
    StreamFenceServerBuilder();  // host 0.0.0.0, port 0, WS, no namespaces

    StreamFenceServerBuilder& name(const std::string& n);
    StreamFenceServerBuilder& host(const std::string& h);
    StreamFenceServerBuilder& port(int p);
    StreamFenceServerBuilder& namespaceSpec(config::NamespaceConfig ns);
    StreamFenceServerBuilder& control(config::ControlConfig c);
    StreamFenceServerBuilder& pluginDir(const std::string& dir);
    StreamFenceServerBuilder& pluginOptions(const std::string& plugin, config::PluginOptions o);
    StreamFenceServerBuilder& listener(std::shared_ptr<ServerListener> l);
    // Socket.IO connection-state recovery (docs/recovery.md): sessions held this long after
    // an abnormal disconnect; listeners hear onSessionRecovered / onSessionExpired.
    StreamFenceServerBuilder& connectionStateRecovery(int64_t maxDisconnectionDurationMs = 120000);
    // Direct access for anything else (ping settings, TLS, auth...).
    config::ServerConfig& server();

    std::unique_ptr<StreamFenceServer> build();  // validates; throws config::ConfigError

    // A loaded config narrowed to one server (its global keys kept: plugins, sinks, pluginDir).
    static StreamFenceServerBuilder fromConfig(const config::Config& file, const std::string& serverName = "");

private:
    config::Config cfg_;
    std::string serverName_;
    std::vector<std::shared_ptr<ServerListener>> listeners_;
};

}  // namespace sf
