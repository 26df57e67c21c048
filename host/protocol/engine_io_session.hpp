// An Engine.IO session as the layer above sees it, and what that layer implements for it.
//
// Threads (docs/threads-and-ownership.md): a session lives on the loop of the connection
// that opened it, for its whole life; the layer above is called only there. Polling
// requests and upgrade probes may arrive on other loops' connections: those are handed
// to the session's loop with post() and the answers posted back.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "net/buffer.hpp"
#include "protocol/engine_io_options.hpp"

namespace sf::net {
class EventLoop;
}

namespace sf::eio {

class EngineSession;

// What the layer above implements for each session (called on the session's loop).
class EngineSessionHandler {
public:
    virtual ~EngineSessionHandler() = default;
    virtual void onMessage(EngineSession& s, std::string&& data, bool binary) = 0;
    virtual void onClose(EngineSession& s, const std::string& reason) = 0;
    virtual void onUpgraded(EngineSession& s) { (void)s; }
    // Once after every time bufferedBytes() reported at least Options::highWaterBytes,
    // when the queue is at or below Options::lowWaterBytes (not if the session closes
    // first). Same-loop and cross-loop websockets and polling alike.
    virtual void onDrain(EngineSession& s) { (void)s; }
};

class EngineSession : public std::enable_shared_from_this<EngineSession> {
public:
    virtual ~EngineSession() = default;
    virtual const std::string& id() const = 0;
    virtual net::EventLoop& loop() = 0;
    virtual bool isWebsocket() const = 0;
    virtual bool isOpen() const = 0;
    virtual const std::string& remoteAddress() const = 0;
    // The opening request's headers (names lower-case) and query parameters; null if absent.
    // Only these are kept per session, not the whole request.
    virtual const std::string* header(std::string_view lowerName) const = 0;
    virtual const std::string* queryParam(std::string_view name) const = 0;
    virtual void setHandler(std::shared_ptr<EngineSessionHandler> h) = 0;
    virtual const Options& options() const = 0;

    // Loop thread only. Engine.IO MESSAGE packets.
    virtual void sendText(std::string_view data) = 0;
    virtual void sendBinary(std::string_view data) = 0;
    // A pre-encoded MESSAGE: eioPacket is the engine.io text ("4..."), wsFrame the same as a
    // complete websocket frame, queued as is (shared, zero-copy) on a websocket transport.
    virtual void sendPrepared(const std::string& eioPacket, const net::Buffer& wsFrame) = 0;
    // Bytes waiting to go to the client (on a websocket owned by another loop: those in
    // transit plus the connection's queue as last seen). Reporting highWaterBytes or more
    // arms the onDrain guarantee above.
    virtual size_t bufferedBytes() const = 0;
    // bufferedBytes() >= options().highWaterBytes: stop sending and wait for onDrain.
    bool backpressured() const { return bufferedBytes() >= options().highWaterBytes; }
    // Server-side close: what is queued is still delivered, then the transport closes.
    virtual void close(const std::string& reason) = 0;
    // MESSAGE packets handed to the transport so far, and how many of them the client has
    // certainly received: a pong answers the ping queued after them on the same ordered
    // transport. Connection-state recovery trims its replay history with these
    // (docs/recovery.md).
    virtual uint64_t messagesSent() const { return 0; }
    virtual uint64_t messagesConfirmed() const { return 0; }
};
using EngineSessionPtr = std::shared_ptr<EngineSession>;

}  // namespace sf::eio
