#include "protocol/engine_io.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "common/log.hpp"
#include "net/event_loop.hpp"
#include "protocol/sio_api.hpp"
#include "protocol/websocket.hpp"

namespace sf::eio {

// ---------------------------------------------------------------------------------------
// Codecs

std::string errorBody(ErrorCode c) {
    static const char* msgs[] = {"Transport unknown", "Session ID unknown", "Bad handshake method",
                                 "Bad request", "Forbidden", "Unsupported protocol version"};
    int i = static_cast<int>(c);
    return "{\"code\":" + std::to_string(i) + ",\"message\":\"" + msgs[i] + "\"}";
}

std::string base64Encode(std::string_view in) {
    static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    auto u = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(in[k])); };
    for (; i + 2 < in.size(); i += 3) {
        uint32_t v = (u(i) << 16) | (u(i + 1) << 8) | u(i + 2);
        out.push_back(tbl[v >> 18]);
        out.push_back(tbl[(v >> 12) & 63]);
        out.push_back(tbl[(v >> 6) & 63]);
        out.push_back(tbl[v & 63]);
    }
    if (i + 1 == in.size()) {
        uint32_t v = u(i) << 16;
        out.push_back(tbl[v >> 18]);
        out.push_back(tbl[(v >> 12) & 63]);
        out += "==";
    } else if (i + 2 == in.size()) {
        uint32_t v = (u(i) << 16) | (u(i + 1) << 8);
        out.push_back(tbl[v >> 18]);
        out.push_back(tbl[(v >> 12) & 63]);
        out.push_back(tbl[(v >> 6) & 63]);
        out.push_back('=');
    }
    return out;
}

bool base64Decode(std::string_view in, std::string& out) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+' || c == '-') return 62;
        if (c == '/' || c == '_') return 63;
        return -1;
    };
    out.clear();
    out.reserve(in.size() / 4 * 3);
    while (!in.empty() && in.back() == '=') in.remove_suffix(1);
    if (in.size() % 4 == 1) return false;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = val(c);
        if (v < 0) return false;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return true;
}

std::string randomId() {
    unsigned char b[15];
    if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
    std::string s = base64Encode(std::string_view(reinterpret_cast<char*>(b), sizeof b));
    for (auto& c : s) {
        if (c == '+') c = '-';
        else if (c == '/') c = '_';
    }
    return s;
}

bool decodePayload(std::string_view body, std::vector<RawPacket>& out, size_t maxPackets) {
    out.clear();
    if (body.empty()) return false;
    while (true) {
        size_t sep = body.find('\x1e');
        std::string_view p = body.substr(0, sep);
        if (out.size() >= maxPackets || p.empty()) return false;
        RawPacket rp;
        if (p[0] == 'b') {
            rp.type = '4';
            rp.binary = true;
            if (!base64Decode(p.substr(1), rp.data)) return false;
        } else {
            if (p[0] < '0' || p[0] > '6') return false;
            rp.type = p[0];
            rp.data.assign(p.substr(1));
        }
        out.push_back(std::move(rp));
        if (sep == std::string_view::npos) break;
        body.remove_prefix(sep + 1);
    }
    return true;
}

void appendPayloadPacket(std::string& out, char type, std::string_view data, bool binary) {
    if (!out.empty()) out.push_back('\x1e');
    if (binary) {
        out.push_back('b');
        out += base64Encode(data);
    } else {
        out.push_back(type);
        out.append(data);
    }
}

// ---------------------------------------------------------------------------------------
// Server internals

class HttpConn;
class SessionImpl;

struct EngineServer::Core {
    Options opts;
    SessionCallback onSession;
    mutable std::mutex mu;
    std::unordered_map<std::string, std::shared_ptr<SessionImpl>> sessions;
    std::atomic<bool> closed{false};
    net::Buffer pingFrame = ws::frameBuffer(ws::Text, "2");
    net::Buffer noopFrame = ws::frameBuffer(ws::Text, "6");

    std::shared_ptr<SessionImpl> find(const std::string& sid) {
        std::lock_guard<std::mutex> g(mu);
        auto it = sessions.find(sid);
        return it == sessions.end() ? nullptr : it->second;
    }
    void remove(const std::string& sid) {
        std::lock_guard<std::mutex> g(mu);
        sessions.erase(sid);
    }
    std::string openPacket(const std::string& sid, bool websocket) const {
        std::string s = "0{\"sid\":\"" + sid + "\",\"upgrades\":" +
                        (websocket || !opts.allowPolling ? "[]" : "[\"websocket\"]") +
                        ",\"pingInterval\":" + std::to_string(opts.pingIntervalMs) +
                        ",\"pingTimeout\":" + std::to_string(opts.pingTimeoutMs) +
                        ",\"maxPayload\":" + std::to_string(opts.maxPayload) + "}";
        return s;
    }
};

namespace {

template <class F>
void runOn(net::EventLoop& loop, F&& f) {
    if (loop.inLoopThread()) f();
    else loop.post(std::forward<F>(f));
}

const char* kTextPlain = "text/plain; charset=UTF-8";
const char* kJson = "application/json";

}  // namespace

// A polling request waiting for the session's answer; the answer goes back to its loop.
struct Waiter {
    std::weak_ptr<HttpConn> conn;
    net::EventLoop* loop = nullptr;
    uint64_t seq = 0;
    bool keepAlive = true;
    std::string cors;
    const HttpConn* owner = nullptr;  // identity only, never dereferenced off its loop
};

class HttpConn final : public net::ConnectionHandler, public std::enable_shared_from_this<HttpConn> {
public:
    HttpConn(std::shared_ptr<EngineServer::Core> core, const std::shared_ptr<net::Connection>& c)
        : core_(std::move(core)), conn_(c), loop_(c->loop()),
          parser_(std::make_unique<http::RequestParser>(http::RequestParser::Limits{16 * 1024, core_->opts.maxPayload})) {}

    void init() { armIdle(); }

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
    void wsSendString(std::string frame) {
        if (!conn_ || mode_ != Mode::Ws || wsClosing_) return;
        conn_->send(std::move(frame));
        mirror.store(conn_->bufferedBytes(), std::memory_order_relaxed);
    }
    void wsClose(uint16_t code, const std::string& why) {
        if (!conn_ || mode_ != Mode::Ws || wsClosing_) return;
        wsClosing_ = true;
        conn_->send(ws::encodeClose(code));
        conn_->close(why);
    }
    size_t queued() const { return conn_ ? conn_->bufferedBytes() : 0; }
    net::EventLoop& loop() { return loop_; }
    std::atomic<size_t> mirror{0};  // bufferedBytes as last seen, for a session on another loop

private:
    enum class Mode { Http, Ws, Dead };
    struct WsHandler : ws::FrameDecoder::Handler {
        HttpConn* self;
        void onWsMessage(std::string&& data, bool binary) override { self->wsMessage(std::move(data), binary); }
        void onWsPing(std::string_view p) override {
            if (self->conn_ && !self->wsClosing_) self->conn_->send(ws::encodeFrame(ws::Pong, p));
        }
        void onWsClose(uint16_t code, std::string_view) override {
            // Echo the close (RFC 6455 5.5.1), then end the TCP connection.
            self->peerClosed_ = true;
            if (self->conn_ && !self->wsClosing_) {
                self->wsClosing_ = true;
                self->conn_->send(code == 1005 ? ws::encodeFrame(ws::Close, {}) : ws::encodeClose(code));
                self->conn_->close("websocket close");
            }
        }
    };

    void process();
    void handleRequest(http::Request& req);
    void reply(int status, std::string_view ctype, std::string_view body, bool keepAlive, const std::string& extra = {});
    void replyError(ErrorCode c, bool keepAlive, const std::string& cors) {
        reply(c == ErrorCode::Forbidden ? 403 : 400, kJson, errorBody(c), keepAlive, cors);
    }
    std::string corsHeaders(const http::Request& r, bool preflight) const;
    void startWebsocket(const http::Request& req, const std::shared_ptr<SessionImpl>& s, bool probe, bool isNew);
    void wsMessage(std::string&& data, bool binary);
    void dispatchInbox();
    void armIdle();

    std::shared_ptr<EngineServer::Core> core_;
    std::shared_ptr<net::Connection> conn_;
    net::EventLoop& loop_;
    Mode mode_ = Mode::Http;
    std::unique_ptr<http::RequestParser> parser_;  // HTTP mode only: freed once upgraded to websocket
    std::string stash_;
    bool inProcess_ = false;
    bool sent100_ = false;
    bool busy_ = false;
    uint64_t seq_ = 0;
    std::shared_ptr<SessionImpl> pollSession_;  // session of the outstanding GET/POST
    bool pollIsGet_ = false;
    net::TimerId idleTimer_ = 0;
    uint64_t lastActivity_ = 0;
    // websocket mode
    std::unique_ptr<ws::FrameDecoder> dec_;
    WsHandler wsh_;
    std::shared_ptr<SessionImpl> wsSession_;
    bool wsProbe_ = false;
    bool wsClosing_ = false;
    bool peerClosed_ = false;
    bool wsError_ = false;
    std::vector<RawPacket> inbox_;
};

class SessionImpl final : public Session {
public:
    SessionImpl(std::shared_ptr<EngineServer::Core> core, net::EventLoop& loop, std::string id, const http::Request& hs,
                std::string remote, bool websocket)
        : core_(std::move(core)), loop_(loop), id_(std::move(id)), hsHeaders_(hs.headers), hsQuery_(hs.query),
          remote_(std::move(remote)), ws_(websocket) {
        upgradeClaimed.store(websocket);
        upgraded.store(websocket);
    }

    // Session
    const std::string& id() const override { return id_; }
    net::EventLoop& loop() override { return loop_; }
    bool isWebsocket() const override { return ws_; }
    bool isOpen() const override { return st_ == St::Open; }
    const std::string& remoteAddress() const override { return remote_; }
    const std::string* header(std::string_view lowerName) const override {
        for (auto& h : hsHeaders_)
            if (h.first == lowerName) return &h.second;
        return nullptr;
    }
    const std::string* queryParam(std::string_view name) const override {
        for (auto& q : hsQuery_)
            if (q.first == name) return &q.second;
        return nullptr;
    }
    void setHandler(std::shared_ptr<SessionHandler> h) override { handler_ = std::move(h); }
    void sendText(std::string_view data) override { sendPacket('4', data, false); }
    void sendBinary(std::string_view data) override { sendPacket('4', data, true); }
    void sendPrepared(const std::string& eioPacket, const net::Buffer& wsFrame) override {
        if (st_ != St::Open || eioPacket.empty()) return;
        if (ws_) {
            wsSend(wsFrame);
        } else {
            appendPayloadPacket(pollOut_, eioPacket[0], std::string_view(eioPacket).substr(1), false);
            schedulePollFlush();
        }
    }
    size_t bufferedBytes() const override {
        if (!ws_) return pollOut_.size();
        if (!wsConn_) return 0;
        if (wsLoop_ == &loop_) return wsConn_->queued();
        size_t n = crossBytes_.load(std::memory_order_relaxed) + wsConn_->mirror.load(std::memory_order_relaxed);
        // The connection may never cross its own high mark (bytes still in transit count
        // here), so remember that the sender saw "full" and report the drain ourselves.
        if (n >= core_->opts.highWaterBytes) drainWanted_.store(true, std::memory_order_relaxed);
        return n;
    }
    void close(const std::string& reason) override;

    // Engine internals, session loop only.
    void start() { schedulePing(); }
    // A request handled in the same turn as an expired ping timeout must not see the
    // session alive (timers and posted work may run in either order within a turn).
    void checkPingDeadline() {
        if (st_ == St::Open && pingTimeoutTimer_ && net::monotonicMs() >= pingDeadline_) finish("ping timeout", false);
    }
    std::atomic<bool> lingering{false};
    // On the websocket's loop, after a cross-loop frame was handed to the connection.
    void crossDone(size_t n, HttpConn& c);
    void onPollGet(Waiter w);
    void onPollPost(Waiter w, std::string body);
    void attachWs(const std::shared_ptr<HttpConn>& c, bool probe);
    void onWsPackets(HttpConn* from, std::vector<RawPacket>& pk);
    void onWsClosed(HttpConn* from, const std::string& reason);
    void onPollConnClosed(uint64_t seq, const HttpConn* from);
    void onWsDrain(HttpConn* from) {
        if (from == wsConn_.get() && st_ == St::Open && handler_) handler_->onDrain(*this);
    }

    std::atomic<bool> upgradeClaimed{false};  // a websocket took this sid (probe or done)
    std::atomic<bool> upgraded{false};        // transport is websocket for good
    std::atomic<bool> finished{false};

private:
    enum class St { Open, Closing, Closed };
    enum class Src { Poll, Ws, Probe };

    void sendPacket(char type, std::string_view data, bool binary);
    std::string wsFrameOf(char type, std::string_view data, bool binary) {
        std::string f;
        size_t n = binary ? data.size() : data.size() + 1;
        f.reserve(n + 10);
        ws::appendFrameHeader(f, binary ? ws::Binary : ws::Text, n);
        if (!binary) f.push_back(type);
        f.append(data);
        return f;
    }
    void wsSend(net::Buffer b);
    void wsSendTo(const std::shared_ptr<HttpConn>& c, net::Buffer b);
    void crossQueue(const std::shared_ptr<HttpConn>& c, net::Buffer b, uint16_t code, const std::string& why);
    void wsCloseConn(const std::shared_ptr<HttpConn>& c, uint16_t code, const std::string& why);
    void schedulePollFlush();
    void flushPoll();
    void respond(const Waiter& w, int status, std::string_view ctype, std::string_view body);
    void handlePacket(RawPacket& p, Src src);
    void completeUpgrade();
    void schedulePing();
    void finish(const std::string& reason, bool clientClose);
    void notifyClose(const std::string& reason) {
        if (notified_) return;
        notified_ = true;
        auto h = std::move(handler_);
        if (h) h->onClose(*this, reason);
    }

    std::shared_ptr<EngineServer::Core> core_;
    net::EventLoop& loop_;
    std::string id_;
    // What the layer above may read of the handshake: not the whole http::Request (its
    // target, path and body strings are dead weight on every idle session).
    std::vector<std::pair<std::string, std::string>> hsHeaders_, hsQuery_;
    std::string remote_;
    std::shared_ptr<SessionHandler> handler_;
    St st_ = St::Open;
    bool notified_ = false;
    bool ws_;
    // polling
    // Polling waiters behind pointers: a websocket session never has one, and two inline
    // optionals cost every idle websocket ~160 bytes.
    std::unique_ptr<Waiter> get_;
    std::string pollOut_;  // encoded payload waiting for the next GET
    bool flushScheduled_ = false;
    bool upgrading_ = false;
    // websocket
    std::shared_ptr<HttpConn> wsConn_, probe_;
    net::EventLoop* wsLoop_ = nullptr;
    std::atomic<size_t> crossBytes_{0};
    mutable std::atomic<bool> drainWanted_{false};
    // timers
    net::TimerId pingTimer_ = 0, pingTimeoutTimer_ = 0, upgradeTimer_ = 0, closeTimer_ = 0;
    uint64_t pingDeadline_ = 0;
    std::unique_ptr<Waiter> heldGet_;  // a poll that arrived while an upgrade was under way
    void armHeldGetTimer(uint64_t ms);
    net::TimerId heldTimer_ = 0;
};

// ---------------------------------------------------------------------------------------
// SessionImpl

void SessionImpl::sendPacket(char type, std::string_view data, bool binary) {
    if (st_ != St::Open) return;
    if (ws_) {
        wsSend(net::makeBuffer(wsFrameOf(type, data, binary)));
    } else {
        appendPayloadPacket(pollOut_, type, data, binary);
        schedulePollFlush();
    }
}

// Frames for websockets owned by another loop. One outbox per loop thread collects them
// for the whole turn and posts one batch per target loop at its end, so fan-out to many
// cross-loop sessions costs one post per loop pair, not one per session; closes travel in
// the same batch, so they never overtake the frames queued before them.
namespace {
struct CrossItem {
    std::shared_ptr<HttpConn> conn;
    net::Buffer buf;                      // null: close the websocket
    std::shared_ptr<SessionImpl> sess;    // for crossBytes_ accounting (may be null)
    uint16_t closeCode = 0;
    std::string why;
};
struct CrossOutbox {
    std::vector<std::pair<net::EventLoop*, std::vector<CrossItem>>> byTarget;  // a few loops: linear
    bool scheduled = false;
};
thread_local CrossOutbox tlsOutbox;

void flushOutbox() {
    CrossOutbox& ob = tlsOutbox;
    ob.scheduled = false;
    for (auto& [target, items] : ob.byTarget) {
        if (items.empty()) continue;
        auto batch = std::make_shared<std::vector<CrossItem>>(std::move(items));
        items.clear();
        target->post([batch] {
            for (auto& it : *batch) {
                if (it.buf) {
                    it.conn->wsSend(it.buf);
                    if (it.sess) it.sess->crossDone(it.buf->size(), *it.conn);
                } else {
                    it.conn->wsClose(it.closeCode, it.why);
                }
            }
        });
    }
}
}  // namespace

void SessionImpl::crossQueue(const std::shared_ptr<HttpConn>& c, net::Buffer b, uint16_t code, const std::string& why) {
    CrossOutbox& ob = tlsOutbox;
    net::EventLoop* target = &c->loop();
    std::vector<CrossItem>* items = nullptr;
    for (auto& e : ob.byTarget)
        if (e.first == target) items = &e.second;
    if (!items) {
        ob.byTarget.emplace_back(target, std::vector<CrossItem>{});
        items = &ob.byTarget.back().second;
    }
    std::shared_ptr<SessionImpl> self;
    if (b) {
        self = std::static_pointer_cast<SessionImpl>(shared_from_this());
        crossBytes_.fetch_add(b->size(), std::memory_order_relaxed);
    }
    items->push_back(CrossItem{c, std::move(b), std::move(self), code, why});
    if (!ob.scheduled) {
        ob.scheduled = true;
        loop_.deferToEndOfTurn(flushOutbox);
    }
}

void SessionImpl::crossDone(size_t n, HttpConn& c) {
    size_t left = crossBytes_.fetch_sub(n, std::memory_order_relaxed) - n;
    if (!drainWanted_.load(std::memory_order_relaxed) || left + c.queued() > core_->opts.lowWaterBytes) return;
    drainWanted_.store(false, std::memory_order_relaxed);
    auto self = std::static_pointer_cast<SessionImpl>(shared_from_this());
    loop_.post([self] {
        if (self->st_ == St::Open && self->handler_) self->handler_->onDrain(*self);
    });
}

void SessionImpl::wsSendTo(const std::shared_ptr<HttpConn>& c, net::Buffer b) {
    if (!c) return;
    if (&c->loop() == &loop_) c->wsSend(b);
    else crossQueue(c, std::move(b), 0, {});
}

void SessionImpl::wsSend(net::Buffer b) {
    if (!wsConn_) return;
    if (wsLoop_ == &loop_) wsConn_->wsSend(b);
    else crossQueue(wsConn_, std::move(b), 0, {});
}

void SessionImpl::wsCloseConn(const std::shared_ptr<HttpConn>& c, uint16_t code, const std::string& why) {
    if (!c) return;
    if (&c->loop() == &loop_) c->wsClose(code, why);
    else crossQueue(c, nullptr, code, why);
}

void SessionImpl::schedulePollFlush() {
    if (!get_ || flushScheduled_) return;
    flushScheduled_ = true;
    // At the end of the turn, so everything emitted in this turn leaves in one response.
    auto self = std::static_pointer_cast<SessionImpl>(shared_from_this());
    loop_.deferToEndOfTurn([self] {
        self->flushScheduled_ = false;
        self->flushPoll();
    });
}

void SessionImpl::flushPoll() {
    if (!get_ || pollOut_.empty() || ws_) return;
    Waiter w = std::move(*get_);
    get_.reset();
    bool wasHigh = pollOut_.size() >= core_->opts.highWaterBytes;
    std::string body;
    body.swap(pollOut_);
    respond(w, 200, kTextPlain, body);
    if (wasHigh && st_ == St::Open && handler_) handler_->onDrain(*this);
}

void SessionImpl::respond(const Waiter& w, int status, std::string_view ctype, std::string_view body) {
    std::string bytes = http::response(status, ctype, body, w.keepAlive, w.cors);
    auto c = w.conn;
    uint64_t seq = w.seq;
    bool ka = w.keepAlive;
    if (w.loop->inLoopThread()) {
        if (auto p = c.lock()) p->finishAsync(seq, std::move(bytes), ka);
    } else {
        w.loop->post([c, seq, ka, bytes = std::move(bytes)]() mutable {
            if (auto p = c.lock()) p->finishAsync(seq, std::move(bytes), ka);
        });
    }
}

void SessionImpl::schedulePing() {
    loop_.cancelTimer(pingTimer_);
    std::weak_ptr<SessionImpl> wk = std::static_pointer_cast<SessionImpl>(shared_from_this());
    // The deadline counts from now, not from when the ping timer happens to run, so a
    // late timer never stretches interval + timeout.
    pingDeadline_ = net::monotonicMs() + core_->opts.pingIntervalMs + core_->opts.pingTimeoutMs;
    pingTimer_ = loop_.addTimer(core_->opts.pingIntervalMs, [wk] {
        auto s = wk.lock();
        if (!s || s->st_ != St::Open) return;
        s->pingTimer_ = 0;
        if (s->ws_) s->wsSend(s->core_->pingFrame);  // shared, pre-encoded
        else s->sendPacket('2', {}, false);
        uint64_t now = net::monotonicMs();
        uint64_t left = s->pingDeadline_ > now ? s->pingDeadline_ - now : 0;
        s->pingTimeoutTimer_ = s->loop_.addTimer(left, [wk] {
            auto s2 = wk.lock();
            if (!s2 || s2->st_ == St::Closed) return;
            s2->pingTimeoutTimer_ = 0;
            s2->finish("ping timeout", false);
        });
    });
}

void SessionImpl::onPollGet(Waiter w) {
    checkPingDeadline();
    if (st_ == St::Closed && lingering.exchange(false)) {
        // The client closed while this GET was on its way: end it like the pending one.
        loop_.cancelTimer(closeTimer_);
        closeTimer_ = 0;
        core_->remove(id_);
        return respond(w, 200, kTextPlain, "6");
    }
    if (st_ == St::Closed) return respond(w, 400, kJson, errorBody(ErrorCode::UnknownSid));
    if (ws_) return respond(w, 400, kJson, errorBody(ErrorCode::BadRequest));
    if (st_ == St::Closing) {
        // Graceful server close: hand over what is left (it ends with the close packet).
        std::string body;
        body.swap(pollOut_);
        if (body.empty()) body = "1";
        respond(w, 200, kTextPlain, body);
        finish("server close", false);
        return;
    }
    if (get_) {
        // Two GETs at once: the client is broken. Node answers with an error and closes.
        respond(w, 400, kJson, errorBody(ErrorCode::BadRequest));
        finish("transport error", false);
        return;
    }
    if (upgradeClaimed.load() && !heldGet_) {
        // A websocket is taking this session over. Its frames may still be on their way
        // from another loop, so hold this poll: if the upgrade completes first the poll came
        // after it (400), else it ends with a noop. Node checks every 100 ms; that window
        // starts once the probe is seen, because on a busy machine the probe itself can take
        // longer than 100 ms to cross loops (until then a 1 s fallback applies).
        heldGet_ = std::make_unique<Waiter>(std::move(w));
        armHeldGetTimer(upgrading_ ? 100 : 1000);
        return;
    }
    if (upgrading_) return respond(w, 200, kTextPlain, "6");
    get_ = std::make_unique<Waiter>(std::move(w));
    if (!pollOut_.empty()) schedulePollFlush();
}

// (Re)arm the deadline of the held poll: then it ends as the session stands.
void SessionImpl::armHeldGetTimer(uint64_t ms) {
    loop_.cancelTimer(heldTimer_);
    std::weak_ptr<SessionImpl> wk = std::static_pointer_cast<SessionImpl>(shared_from_this());
    heldTimer_ = loop_.addTimer(ms, [wk] {
        auto s = wk.lock();
        if (!s || !s->heldGet_) return;
        s->heldTimer_ = 0;
        Waiter h = std::move(*s->heldGet_);
        s->heldGet_.reset();
        if (s->st_ != St::Open) return s->respond(h, 400, kJson, errorBody(ErrorCode::UnknownSid));
        if (s->ws_) return s->respond(h, 400, kJson, errorBody(ErrorCode::BadRequest));
        if (s->upgrading_ || s->get_) return s->respond(h, 200, kTextPlain, "6");
        s->get_ = std::make_unique<Waiter>(std::move(h));  // the probe went away: plain polling again
        if (!s->pollOut_.empty()) s->schedulePollFlush();
    });
}

void SessionImpl::onPollPost(Waiter w, std::string body) {
    checkPingDeadline();
    if (st_ == St::Closed) return respond(w, 400, kJson, errorBody(ErrorCode::UnknownSid));
    if (ws_) return respond(w, 400, kJson, errorBody(ErrorCode::BadRequest));
    std::vector<RawPacket> pk;
    if (!decodePayload(body, pk)) {
        respond(w, 400, kJson, errorBody(ErrorCode::BadRequest));
        log::info("eio_close", {{"sid", id_}, {"reason", "parse error"}, {"detail", "bad polling payload"}});
        finish("parse error", false);
        return;
    }
    respond(w, 200, "text/html", "ok");
    auto keep = shared_from_this();
    for (auto& p : pk) {
        if (st_ != St::Open) break;
        handlePacket(p, Src::Poll);
    }
}

void SessionImpl::attachWs(const std::shared_ptr<HttpConn>& c, bool probe) {
    if (st_ != St::Open) {
        wsCloseConn(c, ws::GoingAway, "session closed");
        return;
    }
    if (!probe) {
        wsConn_ = c;
        wsLoop_ = &c->loop();
        wsSend(net::makeBuffer(ws::encodeFrame(ws::Text, core_->openPacket(id_, true))));
        return;
    }
    if (probe_ || ws_) {  // cannot happen with upgradeClaimed, but never keep two probes
        wsCloseConn(c, ws::PolicyViolation, "duplicate upgrade");
        return;
    }
    probe_ = c;
    std::weak_ptr<SessionImpl> wk = std::static_pointer_cast<SessionImpl>(shared_from_this());
    upgradeTimer_ = loop_.addTimer(core_->opts.upgradeTimeoutMs, [wk] {
        auto s = wk.lock();
        if (!s || !s->probe_) return;
        s->upgradeTimer_ = 0;
        s->wsCloseConn(s->probe_, ws::PolicyViolation, "upgrade timeout");
    });
}

void SessionImpl::onWsPackets(HttpConn* from, std::vector<RawPacket>& pk) {
    Src src;
    if (wsConn_ && from == wsConn_.get()) src = Src::Ws;
    else if (probe_ && from == probe_.get()) src = Src::Probe;
    else return;  // a transport we already let go
    auto keep = shared_from_this();
    for (auto& p : pk) {
        if (st_ == St::Closed) break;
        if (src == Src::Probe && !probe_) break;
        handlePacket(p, src);
        if (src == Src::Probe && ws_) src = Src::Ws;  // the "5" promoted it
    }
}

void SessionImpl::onWsClosed(HttpConn* from, const std::string& reason) {
    if (probe_ && from == probe_.get()) {
        // Failed upgrade: stay on polling; another attempt is allowed, like Node.
        probe_.reset();
        upgrading_ = false;
        loop_.cancelTimer(upgradeTimer_);
        upgradeTimer_ = 0;
        upgradeClaimed.store(false);
        return;
    }
    if (wsConn_ && from == wsConn_.get()) {
        wsConn_.reset();
        finish(reason, false);
    }
}

void SessionImpl::onPollConnClosed(uint64_t seq, const HttpConn* from) {
    if (heldGet_ && heldGet_->owner == from && heldGet_->seq == seq) {
        loop_.cancelTimer(heldTimer_);
        heldTimer_ = 0;
        heldGet_.reset();
        return;  // the upgrade is under way; that poll was going to end anyway
    }
    if (!get_ || get_->owner != from || get_->seq != seq) return;
    get_.reset();
    // Node closes the session when a pending poll's connection goes away.
    finish("transport error", false);
}

void SessionImpl::handlePacket(RawPacket& p, Src src) {
    if (src == Src::Probe) {
        if (p.type == '2' && p.data == "probe" && !p.binary) {
            wsSendTo(probe_, net::makeBuffer(ws::encodeFrame(ws::Text, "3probe")));
            upgrading_ = true;
            if (heldGet_) armHeldGetTimer(100);  // the Node-like window starts with the probe
            // End the pending long-poll so the client can pause polling and finish the upgrade.
            if (get_) {
                Waiter w = std::move(*get_);
                get_.reset();
                respond(w, 200, kTextPlain, "6");
            }
        } else if (p.type == '5' && !p.binary) {
            completeUpgrade();
        } else {
            log::debug("eio_upgrade_failed", {{"sid", id_}, {"reason", "unexpected packet during upgrade"}});
            wsCloseConn(probe_, ws::PolicyViolation, "bad upgrade");
        }
        return;
    }
    if (st_ != St::Open) return;
    switch (p.type) {
        case '1': finish("transport close", true); return;
        case '3':
            if (pingTimeoutTimer_) {
                loop_.cancelTimer(pingTimeoutTimer_);
                pingTimeoutTimer_ = 0;
                schedulePing();
            }
            return;
        case '4':
            if (handler_) handler_->onMessage(*this, std::move(p.data), p.binary);
            return;
        case '2':
            log::info("eio_close", {{"sid", id_}, {"reason", "invalid heartbeat direction"}});
            finish("parse error", false);
            return;
        case '0':
        case '5':
        case '6': return;  // ignored, like Node
        default:
            log::info("eio_close", {{"sid", id_}, {"reason", "parse error"}, {"detail", "unknown packet type"}});
            finish("parse error", false);
            return;
    }
}

void SessionImpl::completeUpgrade() {
    loop_.cancelTimer(upgradeTimer_);
    upgradeTimer_ = 0;
    wsConn_ = std::move(probe_);
    probe_.reset();
    wsLoop_ = &wsConn_->loop();
    ws_ = true;
    upgrading_ = false;
    upgraded.store(true);
    if (get_) {
        Waiter w = std::move(*get_);
        get_.reset();
        respond(w, 200, kTextPlain, "6");
    }
    if (heldGet_) {
        loop_.cancelTimer(heldTimer_);
        heldTimer_ = 0;
        Waiter w = std::move(*heldGet_);
        heldGet_.reset();
        respond(w, 400, kJson, errorBody(ErrorCode::BadRequest));
    }
    // Whatever was waiting for the next poll goes over the websocket now, in order.
    if (!pollOut_.empty()) {
        std::vector<RawPacket> pk;
        std::string buf;
        buf.swap(pollOut_);
        if (decodePayload(buf, pk))
            for (auto& p : pk) wsSend(net::makeBuffer(wsFrameOf(p.type, p.data, p.binary)));
    }
    if (handler_) handler_->onUpgraded(*this);
}

void SessionImpl::close(const std::string& reason) {
    if (st_ != St::Open) return;
    loop_.cancelTimer(pingTimer_);
    loop_.cancelTimer(pingTimeoutTimer_);
    pingTimer_ = pingTimeoutTimer_ = 0;
    if (ws_ || get_) {
        if (!ws_) {
            appendPayloadPacket(pollOut_, '1', {}, false);
            Waiter w = std::move(*get_);
            get_.reset();
            std::string body;
            body.swap(pollOut_);
            respond(w, 200, kTextPlain, body);
        }
        finish(reason, false);
        return;
    }
    // Polling with no GET waiting: keep the session until the next poll collects the
    // queued packets and the close packet (bounded by a timer, like Node's closeTimeout).
    st_ = St::Closing;
    appendPayloadPacket(pollOut_, '1', {}, false);
    notifyClose(reason);
    std::weak_ptr<SessionImpl> wk = std::static_pointer_cast<SessionImpl>(shared_from_this());
    closeTimer_ = loop_.addTimer(core_->opts.pingIntervalMs + core_->opts.pingTimeoutMs, [wk, reason] {
        if (auto s = wk.lock()) s->finish(reason, false);
    });
}

void SessionImpl::finish(const std::string& reason, bool clientClose) {
    if (st_ == St::Closed) return;
    auto keep = shared_from_this();
    st_ = St::Closed;
    finished.store(true);
    for (auto* t : {&pingTimer_, &pingTimeoutTimer_, &upgradeTimer_, &closeTimer_, &heldTimer_}) {
        loop_.cancelTimer(*t);
        *t = 0;
    }
    bool linger = false;
    if (heldGet_) {
        Waiter w = std::move(*heldGet_);
        heldGet_.reset();
        respond(w, 200, kTextPlain, clientClose ? "6" : "1");
    }
    if (get_) {
        Waiter w = std::move(*get_);
        get_.reset();
        respond(w, 200, kTextPlain, clientClose ? "6" : "1");
    } else if (clientClose && !ws_) {
        // A GET sent together with the close may still be on its way (another loop):
        // keep the sid for a moment so it gets the noop rather than an error.
        linger = true;
    }
    pollOut_.clear();
    pollOut_.shrink_to_fit();
    if (wsConn_) {
        wsCloseConn(wsConn_, ws::Normal, reason);
        wsConn_.reset();
    }
    if (probe_) {
        wsCloseConn(probe_, ws::GoingAway, reason);
        probe_.reset();
    }
    if (linger) {
        lingering.store(true);
        std::weak_ptr<SessionImpl> wk = std::static_pointer_cast<SessionImpl>(shared_from_this());
        closeTimer_ = loop_.addTimer(1000, [wk] {
            auto s = wk.lock();
            if (!s) return;
            s->closeTimer_ = 0;
            s->lingering.store(false);
            s->core_->remove(s->id_);
        });
    } else {
        core_->remove(id_);
    }
    log::debug("eio_session_closed", {{"sid", id_}, {"reason", reason}});
    notifyClose(reason);
}

// ---------------------------------------------------------------------------------------
// HttpConn

void HttpConn::armIdle() {
    lastActivity_ = loop_.nowMs();
    if (idleTimer_) return;
    std::weak_ptr<HttpConn> wk = weak_from_this();
    uint64_t t = core_->opts.httpIdleTimeoutMs;
    idleTimer_ = loop_.addTimer(t, [wk, t] {
        auto self = wk.lock();
        if (!self) return;
        self->idleTimer_ = 0;
        if (!self->conn_ || self->mode_ != Mode::Http) return;
        uint64_t idle = self->loop_.nowMs() - self->lastActivity_;
        if (idle >= t && !self->busy_) {
            self->conn_->close("http idle timeout");
            return;
        }
        self->lastActivity_ = self->busy_ ? self->loop_.nowMs() : self->lastActivity_;
        self->armIdle();
    });
}

void HttpConn::onData(net::Connection&, std::string_view data) {
    if (mode_ == Mode::Ws) {
        if (!dec_->feed(data, wsh_)) {
            if (!wsError_) {
                wsError_ = true;
                log::info("ws_protocol_error", {{"remote", conn_ ? conn_->remoteAddress() : ""},
                                                {"code", std::to_string(dec_->closeCode())}, {"reason", dec_->error()}});
                if (conn_ && !wsClosing_) {
                    wsClosing_ = true;
                    conn_->send(ws::encodeClose(dec_->closeCode()));
                    conn_->close("websocket protocol error");
                }
            }
        }
        dispatchInbox();
        return;
    }
    if (mode_ != Mode::Http || !conn_) return;
    lastActivity_ = loop_.nowMs();
    stash_.append(data);
    // While an answer is pending we keep at most one more full request.
    if (stash_.size() > 16 * 1024 + core_->opts.maxPayload + 4096) {
        mode_ = Mode::Dead;
        conn_->abort("http input overflow");
        return;
    }
    process();
}

void HttpConn::process() {
    if (inProcess_) return;
    inProcess_ = true;
    auto keep = shared_from_this();
    while (mode_ == Mode::Http && !busy_ && conn_ && !stash_.empty()) {
        size_t used = 0;
        auto st = parser_->feed(stash_, used);
        stash_.erase(0, used);
        if (st == http::RequestParser::Status::NeedMore) {
            // curl and some proxies wait for this before sending a body.
            if (parser_->headComplete() && !sent100_ && parser_->request().headerHasToken("expect", "100-continue")) {
                sent100_ = true;
                conn_->send(std::string("HTTP/1.1 100 Continue\r\n\r\n"));
            }
            break;
        }
        sent100_ = false;
        if (st == http::RequestParser::Status::Error) {
            log::debug("http_bad_request", {{"remote", conn_->remoteAddress()}, {"reason", parser_->errorReason()}});
            reply(parser_->errorStatus(), kTextPlain, parser_->errorReason(), false);
            break;
        }
        http::Request req = std::move(parser_->request());
        parser_->reset();
        handleRequest(req);
    }
    if (mode_ == Mode::Ws) {
        // The HTTP input buffer is done with: give its capacity back (idle websockets
        // would otherwise each keep the handshake's worth of it).
        std::string rest;
        rest.swap(stash_);
        if (rest.empty()) {
            inProcess_ = false;
            return;
        }
        inProcess_ = false;
        if (conn_) onData(*conn_, rest);
        return;
    }
    inProcess_ = false;
}

void HttpConn::reply(int status, std::string_view ctype, std::string_view body, bool keepAlive, const std::string& extra) {
    if (!conn_) return;
    conn_->send(http::response(status, ctype, body, keepAlive, extra));
    if (!keepAlive) {
        mode_ = Mode::Dead;
        conn_->close("http response");
    }
}

void HttpConn::finishAsync(uint64_t seq, std::string bytes, bool keepAlive) {
    if (!busy_ || seq != seq_ || !conn_ || mode_ != Mode::Http) return;
    busy_ = false;
    pollSession_.reset();
    conn_->send(std::move(bytes));
    lastActivity_ = loop_.nowMs();
    if (!keepAlive) {
        mode_ = Mode::Dead;
        conn_->close("http response");
        return;
    }
    process();
}

std::string HttpConn::corsHeaders(const http::Request& r, bool preflight) const {
    const auto& origins = core_->opts.corsOrigins;
    if (origins.empty()) return {};
    const std::string* origin = r.header("origin");
    std::string out;
    bool any = std::find(origins.begin(), origins.end(), "*") != origins.end();
    if (any && !origin) {
        out = "Access-Control-Allow-Origin: *\r\n";
    } else if (origin && (any || std::find(origins.begin(), origins.end(), *origin) != origins.end())) {
        // Echo the origin (credentials-safe) rather than '*', so withCredentials works too.
        out = "Access-Control-Allow-Origin: " + *origin + "\r\nVary: Origin\r\nAccess-Control-Allow-Credentials: true\r\n";
    } else {
        return {};
    }
    if (preflight) {
        out += "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n";
        if (const std::string* h = r.header("access-control-request-headers"))
            out += "Access-Control-Allow-Headers: " + *h + "\r\n";
    }
    return out;
}

void HttpConn::handleRequest(http::Request& req) {
    const Options& o = core_->opts;
    bool ka = req.keepAlive();
    bool upgrade = ws::isUpgradeRequest(req);
    std::string_view base = o.path;
    if (!base.empty() && base.back() == '/') base.remove_suffix(1);
    bool ours = req.path.compare(0, base.size(), base) == 0 &&
                (req.path.size() == base.size() ? false : req.path[base.size()] == '/');
    if (!ours) {
        reply(404, kTextPlain, "Not Found", ka && !upgrade);
        return;
    }
    std::string cors = corsHeaders(req, req.method == "OPTIONS");
    if (req.method == "OPTIONS") {
        reply(204, {}, {}, ka, cors);
        return;
    }
    if (upgrade) ka = false;  // a refused upgrade ends the connection, like Node's abortUpgrade

    const std::string* transport = req.queryParam("transport");
    if (!transport || !((*transport == "polling" && o.allowPolling) || *transport == "websocket")) {
        replyError(ErrorCode::UnknownTransport, ka, cors);
        return;
    }
    const std::string* sid = req.queryParam("sid");
    if (sid) {
        auto s = core_->find(*sid);
        if (!s || (s->finished.load() && !(s->lingering.load() && !upgrade && req.method == "GET"))) {
            replyError(ErrorCode::UnknownSid, ka, cors);
            return;
        }
        if (upgrade) {
            if (*transport != "websocket") {
                replyError(ErrorCode::BadRequest, false, cors);
                return;
            }
            bool expected = false;
            if (!s->upgradeClaimed.compare_exchange_strong(expected, true)) {
                // Already upgraded or upgrading: like Node, accept the websocket, then close it.
                std::string resp = ws::handshakeResponse(req);
                if (resp.empty()) {
                    replyError(ErrorCode::BadRequest, false, cors);
                    return;
                }
                conn_->send(std::move(resp));
                conn_->send(ws::encodeFrame(ws::Close, {}));
                mode_ = Mode::Dead;
                conn_->close("duplicate upgrade");
                return;
            }
            startWebsocket(req, s, true, false);
            return;
        }
        if (*transport != "polling" || s->upgraded.load()) {
            replyError(ErrorCode::BadRequest, ka, cors);
            return;
        }
        if (req.method != "GET" && req.method != "POST") {
            replyError(ErrorCode::BadRequest, ka, cors);
            return;
        }
        busy_ = true;
        ++seq_;
        pollSession_ = s;
        pollIsGet_ = req.method == "GET";
        Waiter w{weak_from_this(), &loop_, seq_, ka, std::move(cors), this};
        if (pollIsGet_) {
            runOn(s->loop(), [s, w = std::move(w)]() mutable { s->onPollGet(std::move(w)); });
        } else {
            runOn(s->loop(), [s, w = std::move(w), body = std::move(req.body)]() mutable {
                s->onPollPost(std::move(w), std::move(body));
            });
        }
        return;
    }
    // Handshake.
    if (req.method != "GET") {
        replyError(ErrorCode::BadHandshakeMethod, ka, cors);
        return;
    }
    const std::string* eio = req.queryParam("EIO");
    if (!eio || *eio != "4") {
        replyError(ErrorCode::UnsupportedProtocolVersion, ka, cors);
        return;
    }
    if ((*transport == "websocket") != upgrade) {
        replyError(ErrorCode::BadRequest, ka, cors);
        return;
    }
    if (core_->closed.load()) {
        reply(503, kTextPlain, "Server shutting down", false, cors);
        return;
    }
    std::string id = randomId();
    auto s = std::make_shared<SessionImpl>(core_, loop_, id, req, conn_->remoteAddress(), upgrade);
    {
        std::lock_guard<std::mutex> g(core_->mu);
        core_->sessions.emplace(id, s);
    }
    log::debug("eio_session_open", {{"sid", id}, {"transport", upgrade ? "websocket" : "polling"},
                                    {"remote", conn_->remoteAddress()}});
    if (upgrade) {
        startWebsocket(req, s, false, true);
    } else {
        reply(200, kTextPlain, core_->openPacket(id, false), ka, cors);
    }
    s->start();
    if (core_->onSession) core_->onSession(s);
}

void HttpConn::startWebsocket(const http::Request& req, const std::shared_ptr<SessionImpl>& s, bool probe, bool isNew) {
    std::string resp = ws::handshakeResponse(req);
    if (resp.empty()) {
        if (probe) s->upgradeClaimed.store(false);
        if (isNew) {
            core_->remove(s->id());
            s->finished.store(true);
        }
        reply(400, kJson, errorBody(ErrorCode::BadRequest), false);
        return;
    }
    conn_->send(std::move(resp));
    conn_->setWatermarks(core_->opts.highWaterBytes, core_->opts.lowWaterBytes);
    mode_ = Mode::Ws;
    parser_.reset();  // process() stops using it once mode_ is Ws
    loop_.cancelTimer(idleTimer_);
    idleTimer_ = 0;
    dec_ = std::make_unique<ws::FrameDecoder>(core_->opts.maxPayload);
    wsh_.self = this;
    wsSession_ = s;
    wsProbe_ = probe;
    auto self = shared_from_this();
    runOn(s->loop(), [s, self, probe] { s->attachWs(self, probe); });
}

void HttpConn::wsMessage(std::string&& data, bool binary) {
    RawPacket p;
    if (binary) {
        p.type = '4';
        p.binary = true;
        p.data = std::move(data);
    } else {
        if (data.empty()) {
            p.type = 'x';  // invalid: the session closes with "parse error"
        } else {
            p.type = data[0];
            data.erase(0, 1);
            p.data = std::move(data);
        }
    }
    inbox_.push_back(std::move(p));
}

void HttpConn::dispatchInbox() {
    if (inbox_.empty() || !wsSession_) return;
    auto s = wsSession_;
    if (&s->loop() == &loop_) {
        std::vector<RawPacket> pk;
        pk.swap(inbox_);
        s->onWsPackets(this, pk);
        return;
    }
    auto batch = std::make_shared<std::vector<RawPacket>>(std::move(inbox_));
    inbox_.clear();
    auto self = shared_from_this();
    s->loop().post([s, self, batch] { s->onWsPackets(self.get(), *batch); });
}

void HttpConn::onDrain(net::Connection&) {
    if (mode_ != Mode::Ws || !wsSession_ || !conn_) return;
    mirror.store(conn_->bufferedBytes(), std::memory_order_relaxed);
    auto s = wsSession_;
    auto self = shared_from_this();
    runOn(s->loop(), [s, self] { s->onWsDrain(self.get()); });
}

void HttpConn::onClose(net::Connection&, const std::string& reason) {
    auto self = shared_from_this();
    loop_.cancelTimer(idleTimer_);
    idleTimer_ = 0;
    if (mode_ == Mode::Ws && wsSession_) {
        auto s = wsSession_;
        std::string why = wsError_ ? "transport error" : "transport close";
        (void)reason;
        runOn(s->loop(), [s, self, why] { s->onWsClosed(self.get(), why); });
    } else if (busy_ && pollSession_ && pollIsGet_) {
        auto s = pollSession_;
        uint64_t seq = seq_;
        runOn(s->loop(), [s, self, seq] { s->onPollConnClosed(seq, self.get()); });
    }
    mode_ = Mode::Dead;
    wsSession_.reset();
    pollSession_.reset();
    conn_.reset();  // breaks the connection <-> handler cycle
    dec_.reset();
    inbox_.clear();
    stash_.clear();
}

// ---------------------------------------------------------------------------------------
// EngineServer

EngineServer::EngineServer(Options opts, SessionCallback onSession) : core_(std::make_shared<Core>()) {
    core_->opts = std::move(opts);
    core_->onSession = std::move(onSession);
}

EngineServer::~EngineServer() { core_->closed.store(true); }

std::shared_ptr<net::ConnectionHandler> EngineServer::makeHandler(const std::shared_ptr<net::Connection>& c) {
    if (core_->closed.load()) return nullptr;
    // The layer above stops pushing at sio::kSocketHighWaterBytes buffered; onDrain must then
    // come once the queue is mostly gone, so the connection's marks match that threshold.
    c->setWatermarks(sio::kSocketHighWaterBytes, sio::kSocketLowWaterBytes);
    auto h = std::make_shared<HttpConn>(core_, c);
    h->init();
    return h;
}

void EngineServer::closeAll(const std::string& reason) {
    core_->closed.store(true);
    std::vector<std::shared_ptr<SessionImpl>> all;
    {
        std::lock_guard<std::mutex> g(core_->mu);
        for (auto& kv : core_->sessions) all.push_back(kv.second);
    }
    for (auto& s : all) runOn(s->loop(), [s, reason] { s->close(reason); });
}

size_t EngineServer::sessionCount() const {
    std::lock_guard<std::mutex> g(core_->mu);
    return core_->sessions.size();
}

const Options& EngineServer::options() const { return core_->opts; }

}  // namespace sf::eio
