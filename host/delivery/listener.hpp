// Delivery events for the embed layer. Method names and signatures match
// sf::ServerListener (embed/streamfence.hpp) minus the server lifecycle, so the embed
// layer can forward one-to-one (or derive its listener from this one).
// Callbacks run on event-loop threads (or the publisher's thread for publish results of
// the server-side API): keep them quick and never block.
#pragma once
#include <cstdint>
#include <string>

namespace sf::delivery {

class Listener {
public:
    virtual ~Listener() = default;
    virtual void onClientConnected(const std::string& /*ns*/, const std::string& /*clientId*/, const std::string& /*remote*/) {}
    virtual void onClientDisconnected(const std::string& /*ns*/, const std::string& /*clientId*/, const std::string& /*reason*/) {}
    virtual void onSubscribed(const std::string& /*ns*/, const std::string& /*clientId*/, const std::string& /*topic*/) {}
    virtual void onUnsubscribed(const std::string& /*ns*/, const std::string& /*clientId*/, const std::string& /*topic*/) {}
    // Client `publish` events (clientId is the publishing socket).
    virtual void onPublishAccepted(const std::string& /*ns*/, const std::string& /*topic*/, const std::string& /*clientId*/) {}
    virtual void onPublishRejected(const std::string& /*ns*/, const std::string& /*topic*/, const std::string& /*clientId*/,
                                   const std::string& /*code*/, const std::string& /*reason*/) {}
    // A subscriber's lane did not take a message in memory (rejected, or spilled: reason says).
    virtual void onQueueOverflow(const std::string& /*ns*/, const std::string& /*clientId*/, const std::string& /*topic*/,
                                 const std::string& /*reason*/) {}
    // remote = "ip:port" of the peer; reason e.g. "Invalid token", "RATE_LIMITED".
    virtual void onAuthRejected(const std::string& /*ns*/, const std::string& /*remote*/, const std::string& /*reason*/) {}
    // attempt = 1 for the first re-send.
    virtual void onRetry(const std::string& /*ns*/, const std::string& /*clientId*/, const std::string& /*topic*/,
                         const std::string& /*messageId*/, int /*attempt*/) {}
    // Connection-state recovery (docs/recovery.md): a reconnecting client got its session
    // back (same clientId); a detached session expired unclaimed with queuedMessages
    // still in its lanes (memory and spill), which are dropped.
    // The client's connection ended abnormally and its session is held for it (its lanes
    // keep taking publishes). By default this is a disconnect like any other; a listener
    // that tracks interest in topics (the cluster node) keeps it until onSessionExpired.
    virtual void onSessionDetached(const std::string& ns, const std::string& clientId, const std::string& reason) {
        onClientDisconnected(ns, clientId, reason);
    }
    virtual void onSessionRecovered(const std::string& /*ns*/, const std::string& /*clientId*/) {}
    virtual void onSessionExpired(const std::string& /*ns*/, const std::string& /*clientId*/, uint64_t /*queuedMessages*/) {}
    virtual void onRetryExhausted(const std::string& /*ns*/, const std::string& /*clientId*/, const std::string& /*topic*/,
                                  const std::string& /*messageId*/) {}
};

// A client's `publish` event as handed to onMessage handlers (same fields as sf::ClientMessage).
struct ClientMessage {
    std::string ns, topic, clientId, principal;
    std::string payloadJson;
};

}  // namespace sf::delivery
