// Delivery events for the embed layer. sf::ServerListener (embed/streamfence.hpp) derives
// from this and adds the server lifecycle. Each callback takes one event whose fields are
// named as in streamfence-js's ServerEventListener tables (README, "Embedding"); `ns` is
// its `namespace` (a C++ keyword), and a missing principal is "" where JS has null.
// Callbacks run on event-loop threads (or the publisher's thread for publish results of
// the server-side API): keep them quick and never block.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sf::delivery {

struct ClientConnectedEvent {
    std::string ns, clientId;
    std::string transport;      // "websocket" or "polling" when the client joined
    std::string principal;      // from the connect token; "" without auth
    std::string remoteAddress;  // ours: "ip:port" of the peer
};
struct ClientDisconnectedEvent {
    std::string ns, clientId;
    std::string reason;  // ours: socket.io's disconnect reason ("client namespace disconnect", "transport close", ...)
};
struct SubscribedEvent {
    std::string ns, clientId, topic;
};
struct UnsubscribedEvent {
    std::string ns, clientId, topic;
};
// A client `publish` event (clientId is the publishing socket).
struct PublishAcceptedEvent {
    std::string ns, clientId, topic;
};
struct PublishRejectedEvent {
    std::string ns, clientId, topic;
    std::string reasonCode;  // UNKNOWN_TOPIC, INVALID_PAYLOAD, AUTH_REJECTED, OVERLOADED, HANDLER_FAILED, ...
    std::string reason;
};
// A subscriber's lane did not take a message in memory (rejected, or spilled: reason says).
struct QueueOverflowEvent {
    std::string ns, clientId, topic, reason;
};
struct AuthRejectedEvent {
    std::string ns, clientId;   // the socket id the client would have had, or the subscriber's
    std::string remoteAddress;  // "ip:port" of the peer
    std::string reason;         // e.g. "Invalid token", "RATE_LIMITED"
};
struct RetryEvent {
    std::string ns, clientId, topic, messageId;
    int retryCount = 0;  // 1-based: 1 for the first re-send
};
struct RetryExhaustedEvent {
    std::string ns, clientId, topic, messageId;
    int retryCount = 0;  // re-sends made (maxRetries)
};

struct SessionDetachedEvent {
    std::string ns, clientId, reason;
};
struct SessionRecoveredEvent {
    std::string ns, clientId;
    std::string transport;      // of the new connection
    std::string remoteAddress;
    uint64_t replayed = 0;      // messages sent again from the replay history
};
struct SessionExpiredEvent {
    std::string ns, clientId;
    uint64_t queuedMessages = 0;  // dropped with the session (memory and spill)
};

class Listener {
public:
    virtual ~Listener() = default;
    virtual void onClientConnected(const ClientConnectedEvent&) {}
    virtual void onClientDisconnected(const ClientDisconnectedEvent&) {}
    virtual void onSubscribed(const SubscribedEvent&) {}
    virtual void onUnsubscribed(const UnsubscribedEvent&) {}
    virtual void onPublishAccepted(const PublishAcceptedEvent&) {}
    virtual void onPublishRejected(const PublishRejectedEvent&) {}
    virtual void onQueueOverflow(const QueueOverflowEvent&) {}
    virtual void onAuthRejected(const AuthRejectedEvent&) {}
    virtual void onRetry(const RetryEvent&) {}
    virtual void onRetryExhausted(const RetryExhaustedEvent&) {}
    // Connection-state recovery (docs/recovery.md). Detached: the client's connection ended
    // abnormally and its session is held for it (its lanes keep taking publishes); by
    // default a disconnect like any other, while a listener that tracks interest in topics
    // (the cluster node) keeps it until the session expires. Recovered: a reconnecting
    // client got its session back (same clientId). Expired: nobody claimed it in time; what
    // its lanes held is dropped.
    virtual void onSessionDetached(const SessionDetachedEvent& e) { onClientDisconnected(ClientDisconnectedEvent{e.ns, e.clientId, e.reason}); }
    virtual void onSessionRecovered(const SessionRecoveredEvent&) {}
    virtual void onSessionExpired(const SessionExpiredEvent&) {}
};

// A client's `publish` event as handed to onMessage handlers: the fields of streamfence-js's
// InboundMessageContext plus the payload.
struct ClientMessage {
    std::string ns, topic, clientId, principal;
    std::string payloadJson;  // compact JSON; a binary part stands as {"_placeholder":true,"num":i}
    std::vector<std::string> binary;  // binary part i (bytes), in placeholder order
    std::string messageId;    // the id the message is fanned out with ("msg-<n>")
    uint64_t receivedAtMs = 0;  // wall clock, ms since the epoch
};

// What an onMessage handler reports. A handler that throws counts as failed too. Under
// inboundAckPolicy ACK_AFTER_HANDLER_SUCCESS a failure refuses the publish with HANDLER_FAILED.
struct HandlerResult {
    bool ok = true;
    std::string message;
    HandlerResult() = default;
    HandlerResult(bool success) : ok(success) {}  // NOLINT: `return false;` reads naturally
    static HandlerResult failure(std::string why) {
        HandlerResult r(false);
        r.message = std::move(why);
        return r;
    }
};

using MessageHandler = std::function<HandlerResult(const ClientMessage&)>;

}  // namespace sf::delivery
