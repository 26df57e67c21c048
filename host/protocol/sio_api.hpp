// The boundary between the Socket.IO layer (host/protocol) and delivery control
// (host/delivery). The protocol layer owns connections and namespace sockets; delivery
// implements NamespaceHandler for each configured namespace and reacts to client events.
// Everything here runs on the loop thread that owns the socket, unless said otherwise.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.hpp"
#include "net/buffer.hpp"

namespace sf::net {
class EventLoop;
}

namespace sf::sio {

// A pre-encoded Socket.IO packet, shared by every socket it goes to. Build it once per
// published message (encodeEvent below) and hand the same pointer to each subscriber.
struct Frame {
    std::string eioPacket;     // engine.io packet text, e.g. 42/feed,["prices",{"p":1}]
    net::Buffer wsFrame;       // the same packet as a complete server->client WebSocket text frame
    size_t payloadBytes = 0;   // what it weighs for backpressure accounting
    // A BINARY_EVENT's attachments, each encoded once both ways (eioPacket "b<base64>" for
    // polling, wsFrame a binary WebSocket frame) and sent right behind the packet.
    std::vector<std::shared_ptr<const Frame>> attachments;
};
using FramePtr = std::shared_ptr<const Frame>;

// Encode an EVENT (no ack id, no binary) for namespace nsp: `42<nsp>,[event,args...]` where
// argsJson are already-serialised JSON values (e.g. the payload JSON text).
FramePtr encodeEvent(std::string_view nsp, std::string_view event, const std::vector<std::string_view>& argsJson);
// The same as a BINARY_EVENT `451-<nsp>,[event,args...]`: argsJson hold placeholders
// {"_placeholder":true,"num":i} for attachments[i] (docs/client-protocol.md, Binary).
// Without attachments it is encodeEvent.
FramePtr encodeBinaryEvent(std::string_view nsp, std::string_view event, const std::vector<std::string_view>& argsJson,
                           const std::vector<std::string>& attachments);


using Args = json::Value::Array;
// Answer to a client's ack request; empty std::function when the client asked for none.
using AckFn = std::function<void(Args)>;

class Socket {
public:
    virtual ~Socket() = default;
    virtual const std::string& id() const = 0;         // per-namespace socket id (socket.id in the client)
    virtual const std::string& nsp() const = 0;        // namespace path, e.g. "/feed"
    virtual const std::string& sessionId() const = 0;  // engine.io sid
    virtual const std::string& remoteAddress() const = 0;  // "ip:port" of the peer
    virtual bool isWebsocket() const = 0;              // current transport (true after an upgrade)
    virtual bool connected() const = 0;
    // Handshake data: CONNECT auth payload ({} if none), HTTP headers (name lower-case),
    // query parameters of the engine.io handshake request.
    virtual const json::Value& auth() const = 0;
    virtual std::string header(std::string_view lowerName) const = 0;  // "" if absent
    virtual std::string query(std::string_view name) const = 0;        // "" if absent

    // Emit an event; Binary values inside args go out as attachments (BINARY_EVENT).
    virtual void emit(const std::string& event, Args args) = 0;
    // Emit with an ack callback; cb(timedOut=true, {}) if no answer within timeoutMs.
    virtual void emitWithAck(const std::string& event, Args args, uint64_t timeoutMs,
                             std::function<void(bool timedOut, Args reply)> cb) = 0;
    // Queue a shared, pre-encoded frame (must have been encoded for this socket's nsp).
    virtual void sendFrame(const FramePtr& f) = 0;
    // Bytes waiting to go to this client (connection output queue, or polling buffer).
    virtual size_t bufferedBytes() const = 0;
    // Backpressure (docs/threads-and-ownership.md): true once bufferedBytes() has reached the
    // engine's high watermark. Stop sending: NamespaceHandler::onDrain is then guaranteed
    // once the queue is at or below the low watermark (unless the socket goes first).
    // A bufferedBytes() at or above the high mark arms the same guarantee.
    virtual bool backpressured() const = 0;
    // Server-side disconnect of this namespace socket (sends DISCONNECT).
    virtual void disconnect() = 0;
    virtual net::EventLoop& loop() = 0;
    // Connection-state recovery (docs/recovery.md). Engine.IO messages queued to this
    // client's connection so far, and how many of them it has certainly received.
    virtual uint64_t messagesSent() const { return 0; }
    virtual uint64_t messagesConfirmed() const { return 0; }
    // Before NamespaceHandler::onConnect's done(true): answer CONNECT with this id (the id
    // of the session being recovered) instead of the fresh one.
    virtual void adoptId(const std::string& id) { (void)id; }

    // Free slot for the layer above (delivery keeps its per-socket session here).
    std::shared_ptr<void> userData;
};
using SocketPtr = std::shared_ptr<Socket>;

class NamespaceHandler {
public:
    virtual ~NamespaceHandler() = default;
    // A client asked to join this namespace. Call done(true, {}) to accept or
    // done(false, {"message": ...}) to answer CONNECT_ERROR. On acceptance, members of an
    // object passed to done(true, ...) join `sid` in the CONNECT answer (e.g. `pid`). May be called later (async
    // auth), but on the socket's loop. Before done(true) the socket receives nothing.
    virtual void onConnect(const SocketPtr& s, std::function<void(bool ok, json::Value error)> done) = 0;
    // A client EVENT (binary attachments already put back in place as Binary values).
    virtual void onEvent(const SocketPtr& s, const std::string& event, Args& args, AckFn ack) = 0;
    // The socket left (client DISCONNECT, transport close, ping timeout, server disconnect).
    virtual void onDisconnect(const SocketPtr& s, const std::string& reason) = 0;
    // The socket's queue drained to its low watermark after backpressured() (or a
    // bufferedBytes() at the high mark): send more if pending. Guaranteed, no polling needed.
    virtual void onDrain(const SocketPtr& s) { (void)s; }
};

}  // namespace sf::sio
