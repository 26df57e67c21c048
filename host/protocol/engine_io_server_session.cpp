#include "protocol/engine_io_server_session.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "protocol/engine_io_connection.hpp"
#include "protocol/engine_io_context.hpp"
#include "protocol/engine_io_outbox.hpp"
#include "protocol/http_request.hpp"
#include "protocol/websocket.hpp"

namespace sf::eio {

using http::kJson;
using http::kTextPlain;

EngineServerSession::EngineServerSession(std::shared_ptr<EngineContext> ctx, net::EventLoop& loop, std::string id,
                             const http::Request& hs, std::string remote, bool websocket)
    : ctx_(std::move(ctx)), loop_(loop), id_(std::move(id)), hsHeaders_(hs.headers), hsQuery_(hs.query),
      remote_(std::move(remote)), ws_(websocket) {
    upgradeClaimed.store(websocket);
    upgraded.store(websocket);
}

const std::string* EngineServerSession::header(std::string_view lowerName) const {
    for (auto& h : hsHeaders_)
        if (h.first == lowerName) return &h.second;
    return nullptr;
}

const std::string* EngineServerSession::queryParam(std::string_view name) const {
    for (auto& q : hsQuery_)
        if (q.first == name) return &q.second;
    return nullptr;
}

const Options& EngineServerSession::options() const { return ctx_->opts; }

void EngineServerSession::sendPacket(char type, std::string_view data, bool binary) {
    if (st_ != St::Open || !transport_) return;
    if (type == '4') ++sent_;
    transport_->sendPacket(type, data, binary);
}

void EngineServerSession::sendPrepared(const std::string& eioPacket, const net::Buffer& wsFrame) {
    if (st_ != St::Open || eioPacket.empty() || !transport_) return;
    ++sent_;
    transport_->sendPrepared(eioPacket, wsFrame);
}

// The drain guarantee (EngineSessionHandler::onDrain): whoever is told "high" arms a
// watch on the current transport; an upgrade carries the debt over to the websocket.
size_t EngineServerSession::bufferedBytes() const {
    if (!transport_) return 0;
    size_t n = transport_->bufferedBytes();
    // Loop thread only (the watch is armed from here); see EngineSession::bufferedBytes.
    if (n >= ctx_->opts.highWaterBytes && !drainWanted_ && st_ == St::Open && loop_.inLoopThread()) {
        drainWanted_ = true;
        transport_->watchDrain();
    }
    return n;
}

void EngineServerSession::start() {
    if (!ws_) transport_ = std::make_shared<PollingTransport>(loop_, std::weak_ptr<TransportOwner>(self()));
    schedulePing();
}

void EngineServerSession::onTransportDrain() {
    if (!drainWanted_ || st_ != St::Open || !handler_) return;
    drainWanted_ = false;  // before the call: the handler may fill up and arm again
    handler_->onDrain(*this);
}

void EngineServerSession::onWsDrain(EngineConnection* from) {
    if (auto* w = websocket(); w && w->is(from)) onTransportDrain();
}

void EngineServerSession::closeWs(const std::shared_ptr<EngineConnection>& c, uint16_t code, const std::string& why) {
    if (!c) return;
    if (&c->loop() == &loop_) c->wsClose(code, why);
    else outbox::queueClose(loop_, c, code, why);
}

void EngineServerSession::schedulePing() {
    loop_.cancelTimer(pingTimer_);
    std::weak_ptr<EngineServerSession> wk = self();
    // The deadline counts from now, not from when the ping timer happens to run, so a
    // late timer never stretches interval + timeout.
    pingDeadline_ = net::monotonicMs() + ctx_->opts.pingIntervalMs + ctx_->opts.pingTimeoutMs;
    pingTimer_ = loop_.addTimer(ctx_->opts.pingIntervalMs, [wk] {
        auto s = wk.lock();
        if (!s || s->st_ != St::Open) return;
        s->pingTimer_ = 0;
        s->pingMark_ = s->sent_;  // everything before the ping is confirmed by its pong
        if (auto* w = s->websocket()) w->sendFrame(s->ctx_->pingFrame);  // shared, pre-encoded
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

void EngineServerSession::checkPingDeadline() {
    if (st_ == St::Open && pingTimeoutTimer_ && net::monotonicMs() >= pingDeadline_) finish("ping timeout", false);
}

void EngineServerSession::onPollGet(PollWaiter w) {
    checkPingDeadline();
    if (st_ == St::Closed && lingering.exchange(false)) {
        // The client closed while this GET was on its way: end it like the pending one.
        loop_.cancelTimer(closeTimer_);
        closeTimer_ = 0;
        ctx_->remove(id_);
        return respondToPoll(w, 200, kTextPlain, "6");
    }
    if (st_ == St::Closed) return respondToPoll(w, 400, kJson, errorBody(ErrorCode::UnknownSid));
    PollingTransport* p = polling();
    if (!p) return respondToPoll(w, 400, kJson, errorBody(ErrorCode::BadRequest));
    if (st_ == St::Closing) {
        // Graceful server close: hand over what is left (it ends with the close packet).
        std::string body = p->takePending();
        if (body.empty()) body = "1";
        respondToPoll(w, 200, kTextPlain, body);
        finish("server close", false);
        return;
    }
    if (p->hasGet()) {
        // Two GETs at once: the client is broken. Node answers with an error and closes.
        respondToPoll(w, 400, kJson, errorBody(ErrorCode::BadRequest));
        finish("transport error", false);
        return;
    }
    if (upgradeClaimed.load() && !heldGet_) {
        // A websocket is taking this session over. Its frames may still be on their way
        // from another loop, so hold this poll: if the upgrade completes first the poll came
        // after it (400), else it ends with a noop. Node checks every 100 ms; that window
        // starts once the probe is seen, because on a busy machine the probe itself can take
        // longer than 100 ms to cross loops (until then a 1 s fallback applies).
        heldGet_ = std::make_unique<PollWaiter>(std::move(w));
        armHeldGetTimer(upgrading_ ? 100 : 1000);
        return;
    }
    if (upgrading_) return respondToPoll(w, 200, kTextPlain, "6");
    p->setGet(std::move(w));
}

// (Re)arm the deadline of the held poll: then it ends as the session stands.
void EngineServerSession::armHeldGetTimer(uint64_t ms) {
    loop_.cancelTimer(heldTimer_);
    std::weak_ptr<EngineServerSession> wk = self();
    heldTimer_ = loop_.addTimer(ms, [wk] {
        auto s = wk.lock();
        if (!s || !s->heldGet_) return;
        s->heldTimer_ = 0;
        PollWaiter h = std::move(*s->heldGet_);
        s->heldGet_.reset();
        if (s->st_ != St::Open) return respondToPoll(h, 400, kJson, errorBody(ErrorCode::UnknownSid));
        PollingTransport* p = s->polling();
        if (!p) return respondToPoll(h, 400, kJson, errorBody(ErrorCode::BadRequest));
        if (s->upgrading_ || p->hasGet()) return respondToPoll(h, 200, kTextPlain, "6");
        p->setGet(std::move(h));  // the probe went away: plain polling again
    });
}

void EngineServerSession::onPollPost(PollWaiter w, std::string body) {
    checkPingDeadline();
    if (st_ == St::Closed) return respondToPoll(w, 400, kJson, errorBody(ErrorCode::UnknownSid));
    if (ws_) return respondToPoll(w, 400, kJson, errorBody(ErrorCode::BadRequest));
    std::vector<RawPacket> pk;
    if (!decodePayload(body, pk)) {
        respondToPoll(w, 400, kJson, errorBody(ErrorCode::BadRequest));
        log::info("eio_close", {{"sid", id_}, {"reason", "parse error"}, {"detail", "bad polling payload"}});
        finish("parse error", false);
        return;
    }
    respondToPoll(w, 200, "text/html", "ok");
    auto keep = shared_from_this();
    for (auto& p : pk) {
        if (st_ != St::Open) break;
        handlePacket(p, Src::Poll);
    }
}

void EngineServerSession::attachWs(const std::shared_ptr<EngineConnection>& c, bool probe) {
    if (st_ != St::Open) {
        closeWs(c, ws::GoingAway, "session closed");
        return;
    }
    if (!probe) {
        auto t = std::make_shared<WebSocketTransport>(loop_, c);
        transport_ = t;
        t->sendFrame(net::makeBuffer(ws::encodeFrame(ws::Text, ctx_->openPacket(id_, true))));
        return;
    }
    if (probe_ || ws_) {  // cannot happen with upgradeClaimed, but never keep two probes
        closeWs(c, ws::PolicyViolation, "duplicate upgrade");
        return;
    }
    probe_ = std::make_shared<WebSocketTransport>(loop_, c);
    std::weak_ptr<EngineServerSession> wk = self();
    upgradeTimer_ = loop_.addTimer(ctx_->opts.upgradeTimeoutMs, [wk] {
        auto s = wk.lock();
        if (!s || !s->probe_) return;
        s->upgradeTimer_ = 0;
        s->probe_->close(ws::PolicyViolation, "upgrade timeout");
    });
}

void EngineServerSession::onWsPackets(EngineConnection* from, std::vector<RawPacket>& pk) {
    Src src;
    if (auto* w = websocket(); w && w->is(from)) src = Src::Ws;
    else if (probe_ && probe_->is(from)) src = Src::Probe;
    else return;  // a transport we already let go
    auto keep = shared_from_this();
    for (auto& p : pk) {
        if (st_ == St::Closed) break;
        if (src == Src::Probe && !probe_) break;
        handlePacket(p, src);
        if (src == Src::Probe && ws_) src = Src::Ws;  // the "5" promoted it
    }
}

void EngineServerSession::onWsClosed(EngineConnection* from, const std::string& reason) {
    if (probe_ && probe_->is(from)) {
        // Failed upgrade: stay on polling; another attempt is allowed, like Node.
        probe_.reset();
        upgrading_ = false;
        loop_.cancelTimer(upgradeTimer_);
        upgradeTimer_ = 0;
        upgradeClaimed.store(false);
        return;
    }
    if (auto* w = websocket(); w && w->is(from)) {
        transport_.reset();
        finish(reason, false);
    }
}

void EngineServerSession::onPollConnClosed(uint64_t seq, const EngineConnection* from) {
    if (heldGet_ && heldGet_->owner == from && heldGet_->seq == seq) {
        loop_.cancelTimer(heldTimer_);
        heldTimer_ = 0;
        heldGet_.reset();
        return;  // the upgrade is under way; that poll was going to end anyway
    }
    PollingTransport* p = polling();
    if (!p || !p->holdsGet(seq, from)) return;
    p->dropGet();
    // Node closes the session when a pending poll's connection goes away.
    finish("transport error", false);
}

void EngineServerSession::handlePacket(RawPacket& p, Src src) {
    if (src == Src::Probe) {
        if (p.type == '2' && p.data == "probe" && !p.binary) {
            probe_->sendFrame(net::makeBuffer(ws::encodeFrame(ws::Text, "3probe")));
            upgrading_ = true;
            if (heldGet_) armHeldGetTimer(100);  // the Node-like window starts with the probe
            // End the pending long-poll so the client can pause polling and finish the upgrade.
            if (PollingTransport* pt = polling()) pt->endGet("6");
        } else if (p.type == '5' && !p.binary) {
            completeUpgrade();
        } else {
            log::debug("eio_upgrade_failed", {{"sid", id_}, {"reason", "unexpected packet during upgrade"}});
            probe_->close(ws::PolicyViolation, "bad upgrade");
        }
        return;
    }
    if (st_ != St::Open) return;
    switch (p.type) {
        case '1': finish("transport close", true); return;
        case '3':
            confirmed_ = std::max(confirmed_, pingMark_);
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

void EngineServerSession::completeUpgrade() {
    loop_.cancelTimer(upgradeTimer_);
    upgradeTimer_ = 0;
    std::string pending;
    if (PollingTransport* p = polling()) {
        p->endGet("6");
        pending = p->takePending();
    }
    transport_ = std::move(probe_);
    probe_.reset();
    ws_ = true;
    upgrading_ = false;
    upgraded.store(true);
    if (heldGet_) {
        loop_.cancelTimer(heldTimer_);
        heldTimer_ = 0;
        PollWaiter w = std::move(*heldGet_);
        heldGet_.reset();
        respondToPoll(w, 400, kJson, errorBody(ErrorCode::BadRequest));
    }
    // Whatever was waiting for the next poll goes over the websocket now, in order.
    if (!pending.empty()) {
        std::vector<RawPacket> pk;
        if (decodePayload(pending, pk))
            for (auto& p : pk) transport_->sendPacket(p.type, p.data, p.binary);
    }
    // A sender still waiting for a drain of the polling queue now waits on the websocket.
    if (drainWanted_) transport_->watchDrain();
    if (handler_) handler_->onUpgraded(*this);
}

void EngineServerSession::close(const std::string& reason) {
    if (st_ != St::Open) return;
    loop_.cancelTimer(pingTimer_);
    loop_.cancelTimer(pingTimeoutTimer_);
    pingTimer_ = pingTimeoutTimer_ = 0;
    PollingTransport* p = polling();
    if (!p || p->hasGet()) {
        if (p) {
            p->append('1', {}, false);
            p->endGet(p->takePending());
        }
        finish(reason, false);
        return;
    }
    // Polling with no GET waiting: keep the session until the next poll collects the
    // queued packets and the close packet (bounded by a timer, like Node's closeTimeout).
    st_ = St::Closing;
    p->append('1', {}, false);
    notifyClose(reason);
    std::weak_ptr<EngineServerSession> wk = self();
    closeTimer_ = loop_.addTimer(ctx_->opts.pingIntervalMs + ctx_->opts.pingTimeoutMs, [wk, reason] {
        if (auto s = wk.lock()) s->finish(reason, false);
    });
}

void EngineServerSession::finish(const std::string& reason, bool clientClose) {
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
        PollWaiter w = std::move(*heldGet_);
        heldGet_.reset();
        respondToPoll(w, 200, kTextPlain, clientClose ? "6" : "1");
    }
    if (PollingTransport* p = polling()) {
        if (!p->endGet(clientClose ? "6" : "1") && clientClose) {
            // A GET sent together with the close may still be on its way (another loop):
            // keep the sid for a moment so it gets the noop rather than an error.
            linger = true;
        }
        p->clearPending();
    }
    if (auto* w = websocket()) {
        w->close(ws::Normal, reason);
        transport_.reset();
    }
    if (probe_) {
        probe_->close(ws::GoingAway, reason);
        probe_.reset();
    }
    if (linger) {
        lingering.store(true);
        std::weak_ptr<EngineServerSession> wk = self();
        closeTimer_ = loop_.addTimer(1000, [wk] {
            auto s = wk.lock();
            if (!s) return;
            s->closeTimer_ = 0;
            s->lingering.store(false);
            s->ctx_->remove(s->id_);
        });
    } else {
        ctx_->remove(id_);
    }
    log::debug("eio_session_closed", {{"sid", id_}, {"reason", reason}});
    notifyClose(reason);
}

void EngineServerSession::notifyClose(const std::string& reason) {
    if (notified_) return;
    notified_ = true;
    auto h = std::move(handler_);
    if (h) h->onClose(*this, reason);
}

}  // namespace sf::eio
