// The client protocol of one namespace (docs/client-protocol.md): connect-time auth,
// subscribe / unsubscribe / ack / publish events, confirmations and errors.
//
// Replies: success always emits `subscribed` / `unsubscribed` {topic} (never the token)
// and, when the client passed a Socket.IO ack callback, answers it with {ok:true} first.
// Failure answers the ack callback with {ok:false, code, message} when there is one, else
// emits `error` {code, message} (not both: one failure, one answer). Publish and ack
// success have no confirmation event (ack callback only).
// Codes: UNKNOWN_TOPIC, AUTH_REJECTED, AUTH_EXPIRED, TRANSPORT_REJECTED, INVALID_PAYLOAD,
// RATE_LIMITED, OVERLOADED, HANDLER_FAILED (inboundAckPolicy ACK_AFTER_HANDLER_SUCCESS).
#pragma once
#include <memory>

#include "delivery/core.hpp"

namespace sf::delivery {

class Session;

class DeliveryNamespaceHandler : public sio::NamespaceHandler,
                                 public std::enable_shared_from_this<DeliveryNamespaceHandler> {
public:
    DeliveryNamespaceHandler(std::shared_ptr<Core> core, NamespaceRuntime& ns);

    void onConnect(const sio::SocketPtr& s, std::function<void(bool ok, json::Value error)> done) override;
    void onEvent(const sio::SocketPtr& s, const std::string& event, sio::Args& args, sio::AckFn ack) override;
    void onDisconnect(const sio::SocketPtr& s, const std::string& reason) override;
    void onDrain(const sio::SocketPtr& s) override;

private:
    void accept(const sio::SocketPtr& s, const std::string& token, const TokenCheck& check,
                const std::function<void(bool, json::Value)>& done);
    // A new session (no recovery, or nothing to recover).
    void acceptFresh(const sio::SocketPtr& s, const std::string& token, const TokenCheck& check,
                     const std::function<void(bool, json::Value)>& done);
    void handle(const std::shared_ptr<Session>& session, const std::string& event, const json::Value& payload,
                const sio::AckFn& ack);
    void onSubscribe(const std::shared_ptr<Session>& session, const json::Value& p, const sio::AckFn& ack);
    void onUnsubscribe(const std::shared_ptr<Session>& session, const json::Value& p, const sio::AckFn& ack);
    void onAck(const std::shared_ptr<Session>& session, const json::Value& p, const sio::AckFn& ack);
    void onPublish(const std::shared_ptr<Session>& session, const json::Value& p, const sio::AckFn& ack);
    // Run the topic's onMessage handlers; false (error = the first failure) when one failed.
    bool runHandlers(size_t topic, const ClientMessage& msg, std::string& error);
    // Token check for subscribe/publish when the namespace requires auth; then(ok, check,
    // fromPayload) runs on the loop, in event order (the session is busy meanwhile).
    void authorize(const std::shared_ptr<Session>& session, const json::Value& p, const std::string& topic,
                   const char* action, const sio::AckFn& ack,
                   std::function<void(const TokenCheck&, bool fromPayload)> then);
    void armSubscriptionExpiry(Session& session, size_t topic, int64_t expiresAtMs);

    std::shared_ptr<Core> core_;
    NamespaceRuntime& ns_;
};

}  // namespace sf::delivery
