// Engine.IO v4 server: handshake, sessions, HTTP long-polling, websocket, the polling ->
// websocket upgrade, heartbeat and maxPayload, with the Node server's error answers.
//
// Threads: a session lives on the loop of the connection that opened it, for its whole
// life; the layer above is called only there. Polling requests and upgrade probes may
// arrive on other loops' connections: those are handed to the session's loop with post()
// and the answers posted back, so no session state is ever touched from two threads.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/buffer.hpp"
#include "net/connection.hpp"
#include "protocol/http_request.hpp"

namespace sf::net {
class EventLoop;
}

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
    // Backpressure: SessionHandler::onDrain fires once bufferedBytes() falls below
    // lowWaterBytes after having reached highWaterBytes.
    size_t highWaterBytes = 64 * 1024;
    size_t lowWaterBytes = 16 * 1024;
};

class Session;

// What the layer above implements for each session (called on the session's loop).
class SessionHandler {
public:
    virtual ~SessionHandler() = default;
    virtual void onMessage(Session& s, std::string&& data, bool binary) = 0;
    virtual void onClose(Session& s, const std::string& reason) = 0;
    virtual void onUpgraded(Session& s) { (void)s; }
    virtual void onDrain(Session& s) { (void)s; }
};

class Session : public std::enable_shared_from_this<Session> {
public:
    virtual ~Session() = default;
    virtual const std::string& id() const = 0;
    virtual net::EventLoop& loop() = 0;
    virtual bool isWebsocket() const = 0;
    virtual bool isOpen() const = 0;
    virtual const std::string& remoteAddress() const = 0;
    // The opening request's headers (names lower-case) and query parameters; null if absent.
    // Only these are kept per session, not the whole request.
    virtual const std::string* header(std::string_view lowerName) const = 0;
    virtual const std::string* queryParam(std::string_view name) const = 0;
    virtual void setHandler(std::shared_ptr<SessionHandler> h) = 0;

    // Loop thread only. Engine.IO MESSAGE packets.
    virtual void sendText(std::string_view data) = 0;
    virtual void sendBinary(std::string_view data) = 0;
    // A pre-encoded MESSAGE: eioPacket is the engine.io text ("4..."), wsFrame the same as a
    // complete websocket frame, queued as is (shared, zero-copy) on a websocket transport.
    virtual void sendPrepared(const std::string& eioPacket, const net::Buffer& wsFrame) = 0;
    virtual size_t bufferedBytes() const = 0;
    // Server-side close: what is queued is still delivered, then the transport closes.
    virtual void close(const std::string& reason) = 0;
};
using SessionPtr = std::shared_ptr<Session>;

// The engine.io error answers of the Node server.
enum class ErrorCode { UnknownTransport = 0, UnknownSid = 1, BadHandshakeMethod = 2, BadRequest = 3, Forbidden = 4, UnsupportedProtocolVersion = 5 };
std::string errorBody(ErrorCode c);

// Engine.IO packet payloads for polling.
struct RawPacket {
    char type;  // '0'..'6'; binary packets are always MESSAGE ('4')
    std::string data;
    bool binary = false;
};
// Split a POST body at \x1e; "b<base64>" is binary. False on any malformed packet.
bool decodePayload(std::string_view body, std::vector<RawPacket>& out, size_t maxPackets = 100000);
void appendPayloadPacket(std::string& out, char type, std::string_view data, bool binary);

std::string base64Encode(std::string_view in);
bool base64Decode(std::string_view in, std::string& out);
std::string randomId();  // 20 url-safe characters from 15 random bytes, like Node's base64id

class EngineServer {
public:
    using SessionCallback = std::function<void(const SessionPtr&)>;  // on the session's loop
    EngineServer(Options opts, SessionCallback onSession);
    ~EngineServer();

    // For Listener's factory: the handler speaking HTTP/websocket on a new connection.
    std::shared_ptr<net::ConnectionHandler> makeHandler(const std::shared_ptr<net::Connection>& c);
    // Thread-safe: close every session (posted to their loops); refuse new ones.
    void closeAll(const std::string& reason);
    size_t sessionCount() const;
    const Options& options() const;

    struct Core;

private:
    std::shared_ptr<Core> core_;
};

}  // namespace sf::eio
