// One client connection (TCP or TLS) speaking Engine.IO: HTTP requests (handshake,
// long-polling, CORS preflight) until an upgrade request turns it into a websocket for
// good. It lives on its own loop; the session it serves may live on another
// (docs/threads-and-ownership.md), so everything it tells a session is posted there.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/buffer.hpp"
#include "net/connection.hpp"
#include "net/event_loop.hpp"
#include "protocol/engine_io_codec.hpp"
#include "protocol/http_request.hpp"
#include "protocol/websocket.hpp"


namespace sf::eio {

struct EngineContext;
class EngineServerSession;

class EngineConnection final : public net::ConnectionHandler, public std::enable_shared_from_this<EngineConnection> {
public:
    EngineConnection(std::shared_ptr<EngineContext> ctx, const std::shared_ptr<net::Connection>& c);

    // Arms the idle timer, and the request deadline from accept (a silent client or a slow
    // TLS handshake gets no more time than a slow request).
    void init() {
        armIdle();
        armRequestDeadline();
    }

    void onData(net::Connection&, std::string_view data) override;
    void onDrain(net::Connection&) override;
    void onClose(net::Connection&, const std::string& reason) override;

    // Own loop only.
    void finishAsync(uint64_t seq, std::string bytes, bool keepAlive);
    void wsSend(const net::Buffer& b) {
        if (!conn_ || mode_ != Mode::Ws || wsClosing_) return;
        conn_->send(b);
        mirror.store(conn_->bufferedBytes(), std::memory_order_relaxed);
    }
    void wsClose(uint16_t code, const std::string& why) {
        if (!conn_ || mode_ != Mode::Ws || wsClosing_) return;
        wsClosing_ = true;
        conn_->send(ws::encodeClose(code));
        conn_->close(why);
    }
    // Tell the session (onWsDrain) once the queue is at or below the low watermark.
    void watchDrain();
    size_t queued() const { return conn_ ? conn_->bufferedBytes() : 0; }
    net::EventLoop& loop() { return loop_; }
    std::atomic<size_t> mirror{0};  // bufferedBytes as last seen, for a session on another loop

private:
    enum class Mode { Http, Ws, Dead };
    struct WsHandler : ws::FrameDecoder::Handler {
        EngineConnection* self;
        void onWsMessage(std::string&& data, bool binary) override { self->wsMessage(std::move(data), binary); }
        void onWsPing(std::string_view p) override {
            if (self->conn_ && !self->wsClosing_) self->conn_->send(ws::encodeFrame(ws::Pong, p));
        }
        void onWsClose(uint16_t code, std::string_view) override;
    };

    void process();
    void handleRequest(http::Request& req);
    void reply(int status, std::string_view ctype, std::string_view body, bool keepAlive, const std::string& extra = {});
    void replyError(ErrorCode c, bool keepAlive, const std::string& cors) {
        reply(c == ErrorCode::Forbidden ? 403 : 400, http::kJson, errorBody(c), keepAlive, cors);
    }
    std::string corsHeaders(const http::Request& r, bool preflight) const;
    void startWebsocket(const http::Request& req, const std::shared_ptr<EngineServerSession>& s, bool probe, bool isNew);
    void wsMessage(std::string&& data, bool binary);
    void dispatchInbox();
    void armIdle();
    void armRequestDeadline();
    void clearRequestDeadline();
    bool admitPoll(const std::shared_ptr<EngineServerSession>& s, bool ka, const std::string& cors);
    bool admitSession(const std::string& cors);
    void releasePoll();

    std::shared_ptr<EngineContext> ctx_;
    std::shared_ptr<net::Connection> conn_;
    net::EventLoop& loop_;
    Mode mode_ = Mode::Http;
    std::unique_ptr<http::RequestParser> parser_;  // HTTP mode only: freed once upgraded to websocket
    std::string stash_;
    bool inProcess_ = false;
    bool sent100_ = false;
    bool busy_ = false;
    uint64_t seq_ = 0;
    std::shared_ptr<EngineServerSession> pollSession_;  // session of the outstanding GET/POST
    bool pollIsGet_ = false;
    bool pollCounted_ = false;  // pollSession_'s request counts in the pending-poll limits
    bool gotBytes_ = false;     // any byte received (for the timeout's log line)
    int64_t sessionsOpened_ = 0;  // handshakes answered on this connection (limits.maxSessionsPerConnection)
    net::TimerId idleTimer_ = 0;
    uint64_t lastActivity_ = 0;
    net::TimerId requestTimer_ = 0;  // deadline of the request being received (handshakeTimeoutMs)
    // websocket mode
    std::unique_ptr<ws::FrameDecoder> dec_;
    WsHandler wsh_;
    std::shared_ptr<EngineServerSession> wsSession_;
    bool wsProbe_ = false;
    bool wsClosing_ = false;
    bool peerClosed_ = false;
    bool wsError_ = false;
    std::vector<RawPacket> inbox_;
};

}  // namespace sf::eio
