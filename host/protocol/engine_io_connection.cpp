#include "protocol/engine_io_connection.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "common/log_throttle.hpp"
#include "protocol/engine_io_context.hpp"
#include "protocol/engine_io_server_session.hpp"

namespace sf::eio {

namespace {

template <class F>
void runOn(net::EventLoop& loop, F&& f) {
    if (loop.inLoopThread()) f();
    else loop.post(std::forward<F>(f));
}

}  // namespace

EngineConnection::EngineConnection(std::shared_ptr<EngineContext> ctx, const std::shared_ptr<net::Connection>& c)
    : ctx_(std::move(ctx)), conn_(c), loop_(c->loop()),
      parser_(std::make_unique<http::RequestParser>(http::RequestParser::Limits{16 * 1024, ctx_->opts.maxPayload})) {}

void EngineConnection::WsHandler::onWsClose(uint16_t code, std::string_view) {
    // Echo the close (RFC 6455 5.5.1), then end the TCP connection.
    self->peerClosed_ = true;
    if (self->conn_ && !self->wsClosing_) {
        self->wsClosing_ = true;
        self->conn_->send(code == 1005 ? ws::encodeFrame(ws::Close, {}) : ws::encodeClose(code));
        self->conn_->close("websocket close");
    }
}

void EngineConnection::watchDrain() {
    if (!conn_ || mode_ != Mode::Ws) return;
    mirror.store(conn_->bufferedBytes(), std::memory_order_relaxed);
    conn_->watchDrain();  // onDrain below, then the session's onWsDrain
}

void EngineConnection::armIdle() {
    lastActivity_ = loop_.nowMs();
    if (idleTimer_) return;
    std::weak_ptr<EngineConnection> wk = weak_from_this();
    uint64_t t = ctx_->opts.httpIdleTimeoutMs;
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

namespace {
// One throttle per kind of line: a flood of offenders must not flood the log.
log::Throttle gTimeoutLog, gPollLimitLog, gFrameLimitLog, gSessionLimitLog;
}  // namespace

void EngineConnection::armRequestDeadline() {
    if (requestTimer_ || ctx_->opts.handshakeTimeoutMs == 0) return;
    std::weak_ptr<EngineConnection> wk = weak_from_this();
    requestTimer_ = loop_.addTimer(ctx_->opts.handshakeTimeoutMs, [wk] {
        auto self = wk.lock();
        if (!self) return;
        self->requestTimer_ = 0;
        if (!self->conn_ || self->mode_ != Mode::Http) return;
        uint64_t n = self->ctx_->limits->handshakeTimeouts.fetch_add(1, std::memory_order_relaxed) + 1;
        uint64_t suppressed = 0;
        if (gTimeoutLog.allow(suppressed))
            log::info("http_request_timeout", {{"remote", self->conn_->remoteAddress()},
                                               {"timeoutMs", std::to_string(self->ctx_->opts.handshakeTimeoutMs)},
                                               {"phase", self->gotBytes_ ? "request" : "silent"},
                                               {"count", std::to_string(n)},
                                               {"suppressed", std::to_string(suppressed)}});
        self->mode_ = Mode::Dead;
        self->conn_->abort("http request timeout");
    });
}

void EngineConnection::clearRequestDeadline() {
    if (!requestTimer_) return;
    loop_.cancelTimer(requestTimer_);
    requestTimer_ = 0;
}

// Long-poll requests in flight count per session and overall (limits.maxPendingPolls*): past
// either cap the request is answered at once (429 for the session, 503 for the server) and
// never reaches the session.
bool EngineConnection::admitPoll(const std::shared_ptr<EngineServerSession>& s, bool ka, const std::string& cors) {
    const Options& o = ctx_->opts;
    LimitCounters& lc = *ctx_->limits;
    const int64_t mine = s->pendingPolls.fetch_add(1, std::memory_order_relaxed) + 1;
    const int64_t all = lc.pendingPolls.fetch_add(1, std::memory_order_relaxed) + 1;
    const bool sessionFull = mine > o.maxPendingPollsPerSession;
    const bool serverFull = !sessionFull && o.maxPendingPolls > 0 && all > o.maxPendingPolls;
    if (!sessionFull && !serverFull) return true;
    s->pendingPolls.fetch_sub(1, std::memory_order_relaxed);
    lc.pendingPolls.fetch_sub(1, std::memory_order_relaxed);
    uint64_t n = (sessionFull ? lc.pollsPerSession : lc.polls).fetch_add(1, std::memory_order_relaxed) + 1;
    uint64_t suppressed = 0;
    if (gPollLimitLog.allow(suppressed))
        log::warn("poll_limit", {{"remote", conn_->remoteAddress()}, {"sid", s->id()},
                                 {"limit", sessionFull ? "pending_polls_per_session" : "pending_polls"},
                                 {"max", std::to_string(sessionFull ? o.maxPendingPollsPerSession : o.maxPendingPolls)},
                                 {"count", std::to_string(n)}, {"suppressed", std::to_string(suppressed)}});
    const std::string body = sessionFull ? "{\"code\":3,\"message\":\"Too many pending polls for this session\"}"
                                         : "{\"code\":3,\"message\":\"Too many pending polls, retry later\"}";
    reply(sessionFull ? 429 : 503, http::kJson, body, ka, cors + "Retry-After: 1\r\n");
    return false;
}

// Handshakes on one connection (limits.maxSessionsPerConnection): a client opening session
// after session over one keep-alive connection would otherwise never meet the per-address
// accept limits. Past the cap the handshake is answered 429 and the connection closed, so
// the next one costs a new connection; the stock client opens one session per connection.
bool EngineConnection::admitSession(const std::string& cors) {
    const Options& o = ctx_->opts;
    if (o.maxSessionsPerConnection <= 0 || ++sessionsOpened_ <= o.maxSessionsPerConnection) return true;
    uint64_t n = ctx_->limits->sessionsPerConnection.fetch_add(1, std::memory_order_relaxed) + 1;
    uint64_t suppressed = 0;
    if (gSessionLimitLog.allow(suppressed))
        log::warn("session_limit", {{"remote", conn_->remoteAddress()}, {"limit", "sessions_per_connection"},
                                    {"max", std::to_string(o.maxSessionsPerConnection)},
                                    {"count", std::to_string(n)}, {"suppressed", std::to_string(suppressed)}});
    reply(429, http::kJson, "{\"code\":3,\"message\":\"Too many sessions on this connection\"}", false,
          cors + "Retry-After: 1\r\n");
    return false;
}

void EngineConnection::releasePoll() {
    if (!pollCounted_) return;
    pollCounted_ = false;
    if (pollSession_) pollSession_->pendingPolls.fetch_sub(1, std::memory_order_relaxed);
    ctx_->limits->pendingPolls.fetch_sub(1, std::memory_order_relaxed);
}

void EngineConnection::onData(net::Connection&, std::string_view data) {
    if (mode_ == Mode::Ws) {
        if (!dec_->feed(data, wsh_)) {
            if (!wsError_ && dec_->frameLimitHit()) {
                uint64_t n = ctx_->limits->wsFrames.fetch_add(1, std::memory_order_relaxed) + 1;
                uint64_t suppressed = 0;
                if (gFrameLimitLog.allow(suppressed))
                    log::warn("ws_frame_limit", {{"remote", conn_ ? conn_->remoteAddress() : ""},
                                                 {"limit", std::to_string(ctx_->opts.maxFramesPerMessage)},
                                                 {"count", std::to_string(n)}, {"suppressed", std::to_string(suppressed)}});
            }
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
    gotBytes_ = true;
    stash_.append(data);
    // While an answer is pending we keep at most one more full request.
    if (stash_.size() > 16 * 1024 + ctx_->opts.maxPayload + 4096) {
        mode_ = Mode::Dead;
        conn_->abort("http input overflow");
        return;
    }
    process();
}

void EngineConnection::process() {
    if (inProcess_) return;
    inProcess_ = true;
    auto keep = shared_from_this();
    while (mode_ == Mode::Http && !busy_ && conn_ && !stash_.empty()) {
        size_t used = 0;
        auto st = parser_->feed(stash_, used);
        stash_.erase(0, used);
        if (st == http::RequestParser::Status::NeedMore) {
            // A request has begun and is not complete: it has handshakeTimeoutMs from here.
            armRequestDeadline();
            // curl and some proxies wait for this before sending a body.
            if (parser_->headComplete() && !sent100_ && parser_->request().headerHasToken("expect", "100-continue")) {
                sent100_ = true;
                conn_->send(std::string("HTTP/1.1 100 Continue\r\n\r\n"));
            }
            break;
        }
        sent100_ = false;
        clearRequestDeadline();
        if (st == http::RequestParser::Status::Error) {
            log::debug("http_bad_request", {{"remote", conn_->remoteAddress()}, {"reason", parser_->errorReason()}});
            reply(parser_->errorStatus(), http::kTextPlain, parser_->errorReason(), false);
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

void EngineConnection::reply(int status, std::string_view ctype, std::string_view body, bool keepAlive, const std::string& extra) {
    if (!conn_) return;
    conn_->send(http::response(status, ctype, body, keepAlive, extra));
    if (!keepAlive) {
        mode_ = Mode::Dead;
        conn_->close("http response");
    }
}

void EngineConnection::finishAsync(uint64_t seq, std::string bytes, bool keepAlive) {
    if (!busy_ || seq != seq_ || !conn_ || mode_ != Mode::Http) return;
    busy_ = false;
    releasePoll();
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

std::string EngineConnection::corsHeaders(const http::Request& r, bool preflight) const {
    const auto& origins = ctx_->opts.corsOrigins;
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

void EngineConnection::handleRequest(http::Request& req) {
    const Options& o = ctx_->opts;
    bool ka = req.keepAlive();
    bool upgrade = ws::isUpgradeRequest(req);
    std::string_view base = o.path;
    if (!base.empty() && base.back() == '/') base.remove_suffix(1);
    bool ours = req.path.compare(0, base.size(), base) == 0 &&
                (req.path.size() == base.size() ? false : req.path[base.size()] == '/');
    if (!ours) {
        reply(404, http::kTextPlain, "Not Found", ka && !upgrade);
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
        auto s = ctx_->find(*sid);
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
        if (!admitPoll(s, ka, cors)) return;
        busy_ = true;
        ++seq_;
        pollSession_ = s;
        pollCounted_ = true;
        pollIsGet_ = req.method == "GET";
        PollWaiter w{weak_from_this(), &loop_, seq_, ka, std::move(cors), this};
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
    if (ctx_->closed.load()) {
        reply(503, http::kTextPlain, "Server shutting down", false, cors);
        return;
    }
    if (!admitSession(cors)) return;
    std::string id = randomId();
    auto s = std::make_shared<EngineServerSession>(ctx_, loop_, id, req, conn_->remoteAddress(), upgrade);
    ctx_->add(id, s);
    log::debug("eio_session_open", {{"sid", id}, {"transport", upgrade ? "websocket" : "polling"},
                                    {"remote", conn_->remoteAddress()}});
    if (upgrade) {
        startWebsocket(req, s, false, true);
        // A refused handshake (no Sec-WebSocket-Key, wrong version) got its 400 and its
        // session is gone: it must not start, nor reach the layer above, whose handler and
        // the session would hold each other for good.
        if (s->finished.load()) return;
    } else {
        reply(200, http::kTextPlain, ctx_->openPacket(id, false), ka, cors);
    }
    s->start();
    if (ctx_->onSession) ctx_->onSession(s);
}

void EngineConnection::startWebsocket(const http::Request& req, const std::shared_ptr<EngineServerSession>& s, bool probe, bool isNew) {
    std::string resp = ws::handshakeResponse(req);
    if (resp.empty()) {
        if (probe) s->upgradeClaimed.store(false);
        if (isNew) {
            ctx_->remove(s->id());
            s->finished.store(true);
        }
        reply(400, http::kJson, errorBody(ErrorCode::BadRequest), false);
        return;
    }
    conn_->send(std::move(resp));
    conn_->setWatermarks(ctx_->opts.highWaterBytes, ctx_->opts.lowWaterBytes);
    mode_ = Mode::Ws;
    parser_.reset();  // process() stops using it once mode_ is Ws
    loop_.cancelTimer(idleTimer_);
    idleTimer_ = 0;
    clearRequestDeadline();
    dec_ = std::make_unique<ws::FrameDecoder>(ctx_->opts.maxPayload, ctx_->opts.maxFramesPerMessage);
    wsh_.self = this;
    wsSession_ = s;
    wsProbe_ = probe;
    auto self = shared_from_this();
    runOn(s->loop(), [s, self, probe] { s->attachWs(self, probe); });
}

void EngineConnection::wsMessage(std::string&& data, bool binary) {
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

void EngineConnection::dispatchInbox() {
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

void EngineConnection::onDrain(net::Connection&) {
    if (mode_ != Mode::Ws || !wsSession_ || !conn_) return;
    mirror.store(conn_->bufferedBytes(), std::memory_order_relaxed);
    auto s = wsSession_;
    auto self = shared_from_this();
    runOn(s->loop(), [s, self] { s->onWsDrain(self.get()); });
}

void EngineConnection::onClose(net::Connection&, const std::string& reason) {
    auto self = shared_from_this();
    loop_.cancelTimer(idleTimer_);
    idleTimer_ = 0;
    clearRequestDeadline();
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
    releasePoll();
    wsSession_.reset();
    pollSession_.reset();
    conn_.reset();  // breaks the connection <-> handler cycle
    dec_.reset();
    inbox_.clear();
    stash_.clear();
}

}  // namespace sf::eio
