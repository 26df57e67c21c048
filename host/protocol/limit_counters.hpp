// What the protocol layers refused or cut off for the `limits` of a server (conf/README.md
// "limits"), counted for streamfence_* metrics. One per server (the Engine.IO context owns
// it); relaxed atomics, bumped from every loop.
#pragma once
#include <atomic>
#include <cstdint>

#include "common/metric_sample.hpp"

namespace sf::net {
class AddressLimiter;
}

namespace sf::eio {

struct LimitCounters {
    std::atomic<uint64_t> handshakeTimeouts{0};  // closed at handshakeTimeoutMs (silent, trickling or TLS)
    std::atomic<uint64_t> namespaces{0};         // CONNECTs past maxNamespacesPerConnection
    std::atomic<uint64_t> pollsPerSession{0};    // polls past maxPendingPollsPerSession (429)
    std::atomic<uint64_t> polls{0};              // polls past maxPendingPolls (503)
    std::atomic<uint64_t> sessionsPerConnection{0};  // handshakes past maxSessionsPerConnection (429)
    std::atomic<uint64_t> wsFrames{0};           // websocket messages past maxFramesPerMessage (1008)
    std::atomic<uint64_t> attachments{0};        // packets past maxAttachmentsPerPacket
    std::atomic<int64_t> pendingPolls{0};        // polls in flight now, all sessions
};

// The limit metrics of one server: connections refused at accept {reason}, the address
// table's size, handshake timeouts, protocol limits {limit}. `addresses` may be null.
void appendLimitMetrics(const LimitCounters& c, const net::AddressLimiter* addresses, MetricSnapshot& out);

}  // namespace sf::eio
