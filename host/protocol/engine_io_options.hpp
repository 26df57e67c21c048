// Engine.IO server options. The one place the backpressure watermarks are defined: the
// layers above read them from here (through their sessions), never keep copies.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sf::eio {

struct Options {
    std::string path = "/socket.io/";
    uint64_t pingIntervalMs = 25000;
    uint64_t pingTimeoutMs = 20000;
    size_t maxPayload = 1000000;
    bool allowPolling = true;                 // false = WEBSOCKET_ONLY
    std::vector<std::string> corsOrigins;     // empty = no CORS headers; "*" = any origin
    uint64_t upgradeTimeoutMs = 10000;
    uint64_t httpIdleTimeoutMs = 60000;       // an idle or half-sent HTTP request is dropped
    // An HTTP request (handshake, poll, websocket upgrade) must be complete this long after
    // its first byte, however slowly it trickles in: the idle timer above restarts on every
    // byte, so it alone never ends a slowloris client (conf/README.md, handshakeTimeoutMs).
    // A new connection's first request counts from accept: a silent client, or a TLS
    // handshake that trickles, is closed at the same deadline.
    uint64_t handshakeTimeoutMs = 10000;
    // Caps of the `limits` block (conf/README.md): frames of one websocket message (first
    // plus continuations), long-poll requests in flight per session and overall (0 = none).
    size_t maxFramesPerMessage = 1024;
    int64_t maxPendingPollsPerSession = 4;
    int64_t maxPendingPolls = 100000;
    // Engine.IO sessions opened (handshakes) over one HTTP connection's lifetime; past it the
    // handshake is refused and the connection closed, so a further session costs a new
    // connection and meets the per-address accept limits (conf/README.md).
    int64_t maxSessionsPerConnection = 0;
    // Backpressure (docs/threads-and-ownership.md): a sender stops once a session's
    // bufferedBytes() reaches highWaterBytes; EngineSessionHandler::onDrain is then
    // guaranteed once the queue is at or below lowWaterBytes (unless the session closes).
    // Small on purpose: frames queued here left their lanes, so under a flood every
    // connection's queue pins its own sparse set of shared frames; 16 KiB x 10,000 clients
    // kept RSS growth at tens of MB where 256 KiB let it reach hundreds (docs/message-path.md).
    // The kernel's socket buffer does the bulk buffering; 16 KiB still batches ~100 small
    // frames per writev.
    size_t highWaterBytes = 16 * 1024;
    size_t lowWaterBytes = 4 * 1024;
};

}  // namespace sf::eio
