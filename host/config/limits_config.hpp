// The `limits` block of a server (ours, conf/README.md "limits"): what one address, one
// connection or one client may take of the server. Plain data, filled by limits_schema.cpp.
// Every default is meant to be kept by a public deployment: it stops the floods measured in
// issue 16 and leaves room for stock socket.io clients, many of them behind one NAT.
#pragma once
#include <cstdint>

namespace sf::config {

struct LimitsConfig {
    // Accept time, before any TLS or HTTP work (host/net/address_limiter.hpp); 0 = no cap.
    int maxConnections = 100000;                 // open connections, all addresses together
    int maxConnectionsPerAddress = 1000;         // open connections from one address (IPv6: one /64)
    int maxConnectionsPerAddressPerSecond = 100; // new connections per address: a token bucket of 2 s worth
    int addressTableSize = 65536;                // addresses without open connections still remembered
    bool exemptLoopback = true;                  // per-address caps skip 127.0.0.0/8 and ::1 (a local proxy)
    // Per connection / per client.
    int maxNamespacesPerConnection = 32;         // Socket.IO namespaces joined on one Engine.IO session
    int maxSubscriptionsPerClient = 1000;        // topics one client socket holds in one namespace
    int maxPendingPollsPerSession = 4;           // long-poll requests (GET + POST) in flight for one session
    int maxPendingPolls = 100000;                // ... for the whole server; 0 = no cap
    int maxSessionsPerConnection = 0;            // Engine.IO handshakes on one HTTP keep-alive connection; 0 = no cap (a proxy multiplexes many clients on one)
    int maxFramesPerMessage = 1024;              // WebSocket frames (first + continuations) of one message
    int maxAttachmentsPerPacket = 64;            // binary attachments of one Socket.IO packet
};

}  // namespace sf::config
