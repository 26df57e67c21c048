// A Socket.IO v5 server on our own event loops: the listener, the engine.io layer and the
// namespace sockets. Delivery control plugs in through addNamespace(NamespaceHandler).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/metric_sample.hpp"
#include "config/config.hpp"
#include "protocol/sio_api.hpp"

namespace sf::net {
class EventLoop;
}

namespace sf::sio {

class SioServer {
public:
    explicit SioServer(config::ServerConfig cfg);
    ~SioServer();  // stop()
    SioServer(const SioServer&) = delete;
    SioServer& operator=(const SioServer&) = delete;

    // Before start(). A CONNECT to any other namespace gets CONNECT_ERROR "Invalid namespace".
    void addNamespace(const std::string& path, std::shared_ptr<NamespaceHandler> h);
    // Before start(): a client that joins no namespace within this time is closed (Node: connectTimeout).
    void setConnectTimeoutMs(uint64_t ms);

    // Creates ioThreads loops (0 = cores), binds, starts accepting, logs the listening line.
    // Throws std::runtime_error (bind failure, bad TLS files).
    void start();
    int port() const;
    std::vector<net::EventLoop*> loops();
    bool reloadTls(std::string& err);  // WSS only; false + err otherwise
    // Closes every session and connection, stops the loops and joins their threads. Idempotent.
    void stop();

    size_t sessionCount() const;
    // The limits' counters (conf/README.md "limits"): streamfence_connections_refused_total,
    // streamfence_handshake_timeouts_total, streamfence_protocol_limit_refused_total, ...
    void appendLimitMetrics(MetricSnapshot& out) const;
    const config::ServerConfig& config() const;

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace sf::sio
