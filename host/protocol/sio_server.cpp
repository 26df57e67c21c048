#include "protocol/sio_server.hpp"

#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "common/log.hpp"
#include "common/log_throttle.hpp"
#include "net/address_limiter.hpp"
#include "net/event_loop.hpp"
#include "net/acceptor.hpp"
#include "net/tls.hpp"
#include "protocol/engine_io_codec.hpp"
#include "protocol/engine_io_server.hpp"
#include "protocol/socket_io_codec.hpp"

namespace sf::sio {

namespace {
class Client;
}

struct SioServer::Impl {
    config::ServerConfig cfg;
    std::map<std::string, std::shared_ptr<NamespaceHandler>> nsps;
    uint64_t connectTimeoutMs = 45000;
    CodecLimits limits;
    std::vector<std::unique_ptr<net::EventLoop>> loops;
    std::unique_ptr<eio::EngineServer> engine;
    std::unique_ptr<net::Acceptor> acceptor;
    // Made with the server (metrics may read them before start()): accept-time limits and
    // the counts of what the limits refused (conf/README.md "limits").
    std::shared_ptr<net::AddressLimiter> addresses;
    std::shared_ptr<eio::LimitCounters> counters = std::make_shared<eio::LimitCounters>();
    std::shared_ptr<net::TlsContext> tls;
    bool started = false;
    bool stopped = false;
};

namespace {

class SocketImpl;

// One engine.io session speaking Socket.IO: the namespace sockets multiplexed on it and
// the binary packet being reassembled. Lives on the session's loop.
class Client final : public eio::EngineSessionHandler, public std::enable_shared_from_this<Client> {
public:
    Client(std::shared_ptr<SioServer::Impl> srv, eio::EngineSessionPtr s) : srv_(std::move(srv)), session_(std::move(s)) {}

    void start();
    void onMessage(eio::EngineSession& s, std::string&& data, bool binary) override;
    void onClose(eio::EngineSession& s, const std::string& reason) override;
    void onDrain(eio::EngineSession& s) override;
    void onUpgraded(eio::EngineSession& s) override;

    // Used by sockets.
    void sendPacket(const Packet& p);
    void socketLeft(const std::string& nsp);
    const eio::EngineSessionPtr& session() const { return session_; }
    bool open() const { return !closed_; }
    void fail(const std::string& why);

private:
    void dispatch(Packet& p);
    bool needsWebsocket(const std::string& nsp) const;
    void holdForUpgrade(Packet&& p);
    void refusedConnect(const std::string& nsp, bool overLimit);
    void attachmentLimit();

    // How long a CONNECT to an allowPolling:false namespace, sent while still on polling,
    // waits for the session's websocket upgrade (socket.io-client's default starts on polling
    // and upgrades within a round trip or two) before it is refused with TRANSPORT_REJECTED.
    static constexpr uint64_t kUpgradeWaitMs = 3000;

    std::shared_ptr<SioServer::Impl> srv_;
    eio::EngineSessionPtr session_;
    // Usually one namespace: a std::map node, not a hash table's bucket array as well.
    std::map<std::string, std::shared_ptr<SocketImpl>> sockets_;
    bool closed_ = false;
    bool everConnected_ = false;
    net::TimerId connectTimer_ = 0;
    std::vector<Packet> heldConnects_;  // CONNECTs waiting for the upgrade (see kUpgradeWaitMs)
    net::TimerId holdTimer_ = 0;
    // Binary packet under reassembly.
    std::unique_ptr<Packet> pending_;  // rare: not inline in every client
    std::vector<std::string> buffers_;
    size_t bufferBytes_ = 0;
    uint32_t refusedConnects_ = 0;  // CONNECTs that joined nothing (limits.maxNamespacesPerConnection)
};

class SocketImpl final : public Socket, public std::enable_shared_from_this<SocketImpl> {
public:
    SocketImpl(const std::shared_ptr<Client>& c, std::string nsp, json::Value auth, std::shared_ptr<NamespaceHandler> h)
        : client_(c), session_(c->session()), id_(eio::randomId()), nsp_(std::move(nsp)), auth_(std::move(auth)),
          handler_(std::move(h)) {}

    enum class St { Pending, Connected, Closed };

    const std::string& id() const override { return id_; }
    const std::string& nsp() const override { return nsp_; }
    const std::string& sessionId() const override { return session_->id(); }
    const std::string& remoteAddress() const override { return session_->remoteAddress(); }
    bool isWebsocket() const override { return session_->isWebsocket(); }
    bool connected() const override { return st_ == St::Connected; }
    const json::Value& auth() const override { return auth_; }
    std::string header(std::string_view lowerName) const override {
        const std::string* h = session_->header(lowerName);
        return h ? *h : std::string();
    }
    std::string query(std::string_view name) const override {
        const std::string* q = session_->queryParam(name);
        return q ? *q : std::string();
    }

    void emit(const std::string& event, Args args) override { emitImpl(event, std::move(args), std::nullopt); }
    void emitWithAck(const std::string& event, Args args, uint64_t timeoutMs,
                     std::function<void(bool, Args)> cb) override {
        if (st_ != St::Connected) {
            if (cb) cb(true, {});
            return;
        }
        uint64_t id = nextAck_++;
        std::weak_ptr<SocketImpl> wk = shared_from_this();
        net::TimerId t = session_->loop().addTimer(timeoutMs, [wk, id] {
            auto s = wk.lock();
            if (!s) return;
            auto it = s->acks_.find(id);
            if (it == s->acks_.end()) return;
            auto fn = std::move(it->second.cb);
            s->acks_.erase(it);
            if (fn) fn(true, {});
        });
        acks_[id] = PendingAck{std::move(cb), t};
        emitImpl(event, std::move(args), id);
    }
    void sendFrame(const FramePtr& f) override {
        if (st_ != St::Connected || !f) return;
        session_->sendPrepared(f->eioPacket, f->wsFrame);
        for (const FramePtr& a : f->attachments) session_->sendPrepared(a->eioPacket, a->wsFrame);
    }
    size_t bufferedBytes() const override { return session_->bufferedBytes(); }
    bool backpressured() const override { return session_->backpressured(); }
    void disconnect() override {
        if (st_ != St::Connected) return;
        Packet p;
        p.type = PacketType::Disconnect;
        p.nsp = nsp_;
        if (auto c = client_.lock()) c->sendPacket(p);
        left("server namespace disconnect");
    }
    net::EventLoop& loop() override { return session_->loop(); }
    uint64_t messagesSent() const override { return session_->messagesSent(); }
    uint64_t messagesConfirmed() const override { return session_->messagesConfirmed(); }
    void adoptId(const std::string& id) override {
        if (st_ == St::Pending && !id.empty()) id_ = id;
    }

    // Client side of things.
    void connect(const std::shared_ptr<Client>& c) {
        std::weak_ptr<SocketImpl> wk = shared_from_this();
        handler_->onConnect(shared_from_this(), [wk](bool ok, json::Value err) {
            auto s = wk.lock();
            if (!s || s->st_ != St::Pending) return;
            auto cl = s->client_.lock();
            if (!cl || !cl->open()) return;
            Packet p;
            p.nsp = s->nsp_;
            p.hasData = true;
            if (ok) {
                s->st_ = St::Connected;
                p.type = PacketType::Connect;
                p.data = json::Value::object();
                p.data.set("sid", s->id_);
                if (err.isObject())
                    for (auto& kv : err.asObject())
                        if (kv.first != "sid") p.data.set(kv.first, std::move(kv.second));
                cl->sendPacket(p);
            } else {
                p.type = PacketType::ConnectError;
                p.data = err.isObject() || err.isString() ? std::move(err) : json::Value("Not authorized");
                if (p.data.isObject() && !p.data.find("message")) p.data.set("message", "Not authorized");
                cl->sendPacket(p);
                s->st_ = St::Closed;
                cl->socketLeft(s->nsp_);
            }
        });
        (void)c;
    }
    void onEvent(Packet& p) {
        if (st_ != St::Connected) return;  // async CONNECT not answered yet: dropped
        auto& arr = p.data.asArray();
        std::string event = arr[0].isString() ? arr[0].asString() : arr[0].asString();  // number: its text
        Args args(std::make_move_iterator(arr.begin() + 1), std::make_move_iterator(arr.end()));
        AckFn ack;
        if (p.ackId) {
            std::weak_ptr<SocketImpl> wk = shared_from_this();
            uint64_t id = *p.ackId;
            auto once = std::make_shared<bool>(false);
            ack = [wk, id, once](Args reply) {
                auto s = wk.lock();
                if (!s || *once || s->st_ != St::Connected) return;
                *once = true;
                Packet a;
                a.type = PacketType::Ack;
                a.nsp = s->nsp_;
                a.ackId = id;
                a.hasData = true;
                a.data = json::Value(std::move(reply));
                if (auto c = s->client_.lock()) c->sendPacket(a);
            };
        }
        auto self = shared_from_this();
        handler_->onEvent(self, event, args, std::move(ack));
    }
    void onAck(Packet& p) {
        auto it = acks_.find(*p.ackId);
        if (it == acks_.end()) return;  // late or unknown: ignored, like Node
        auto fn = std::move(it->second.cb);
        session_->loop().cancelTimer(it->second.timer);
        acks_.erase(it);
        if (fn) fn(false, std::move(p.data.asArray()));
    }
    // Leaves the namespace (any reason); the handler hears it once.
    void left(const std::string& reason) {
        bool wasConnected = st_ == St::Connected;
        if (st_ == St::Closed) return;
        st_ = St::Closed;
        auto self = shared_from_this();
        for (auto& kv : acks_) session_->loop().cancelTimer(kv.second.timer);
        auto acks = std::move(acks_);
        acks_.clear();
        if (wasConnected) handler_->onDisconnect(self, reason);
        for (auto& kv : acks)
            if (kv.second.cb) kv.second.cb(true, {});
        if (auto c = client_.lock()) c->socketLeft(nsp_);
    }
    void drain() {
        if (st_ == St::Connected) handler_->onDrain(shared_from_this());
    }
    St state() const { return st_; }

private:
    struct PendingAck {
        std::function<void(bool, Args)> cb;
        net::TimerId timer = 0;
    };
    void emitImpl(const std::string& event, Args args, std::optional<uint64_t> ackId) {
        if (st_ != St::Connected) return;
        Packet p;
        p.type = PacketType::Event;
        p.nsp = nsp_;
        p.ackId = ackId;
        p.hasData = true;
        Args all;
        all.reserve(args.size() + 1);
        all.emplace_back(event);
        for (auto& a : args) all.push_back(std::move(a));
        p.data = json::Value(std::move(all));
        if (auto c = client_.lock()) c->sendPacket(p);
    }

    std::weak_ptr<Client> client_;
    eio::EngineSessionPtr session_;
    std::string id_;
    std::string nsp_;
    json::Value auth_;
    std::shared_ptr<NamespaceHandler> handler_;
    St st_ = St::Pending;
    uint64_t nextAck_ = 0;
    std::unordered_map<uint64_t, PendingAck> acks_;
};

void Client::start() {
    std::weak_ptr<Client> wk = shared_from_this();
    connectTimer_ = session_->loop().addTimer(srv_->connectTimeoutMs, [wk] {
        auto c = wk.lock();
        if (!c) return;
        c->connectTimer_ = 0;
        if (!c->everConnected_ && !c->closed_) {
            log::debug("sio_connect_timeout", {{"sid", c->session_->id()}});
            c->session_->close("connect timeout");
        }
    });
}

void Client::fail(const std::string& why) {
    if (closed_) return;
    log::info("sio_protocol_error", {{"sid", session_->id()}, {"remote", session_->remoteAddress()}, {"reason", why}});
    session_->close("parse error");
}

void Client::sendPacket(const Packet& p) {
    if (closed_) return;
    std::vector<std::string> bufs;
    std::string text = encodePacket(p, bufs);
    session_->sendText(text);
    for (auto& b : bufs) session_->sendBinary(b);
}

void Client::socketLeft(const std::string& nsp) { sockets_.erase(nsp); }

void Client::onMessage(eio::EngineSession&, std::string&& data, bool binary) {
    if (closed_) return;
    auto keep = shared_from_this();
    if (binary) {
        if (!pending_) return fail("unexpected binary attachment");
        bufferBytes_ += data.size();
        if (bufferBytes_ > srv_->limits.maxAttachmentBytes) return fail("attachments too large");
        buffers_.push_back(std::move(data));
        if (buffers_.size() < pending_->attachments) return;
        Packet p = std::move(*pending_);
        pending_.reset();
        std::string err;
        bool ok = reconstruct(p, buffers_, err);
        buffers_.clear();
        bufferBytes_ = 0;
        if (!ok) return fail(err);
        dispatch(p);
        return;
    }
    if (pending_) return fail("text packet while reassembling a binary packet");
    Packet p;
    std::string err;
    if (!decodePacket(data, p, err, srv_->limits)) {
        if (err == "too many attachments") attachmentLimit();
        return fail(err);
    }
    if ((p.type == PacketType::BinaryEvent || p.type == PacketType::BinaryAck) && p.attachments > 0) {
        pending_ = std::make_unique<Packet>(std::move(p));
        return;
    }
    dispatch(p);
}

void Client::dispatch(Packet& p) {
    auto it = sockets_.find(p.nsp);
    switch (p.type) {
        case PacketType::Connect: {
            if (it != sockets_.end()) return fail("duplicate connect to " + p.nsp);
            auto h = srv_->nsps.find(p.nsp);
            if (h == srv_->nsps.end()) {
                Packet e;
                e.type = PacketType::ConnectError;
                e.nsp = p.nsp;
                e.hasData = true;
                e.data = json::Value::object();
                e.data.set("message", "Invalid namespace");
                sendPacket(e);
                return refusedConnect(p.nsp, false);
            }
            if (sockets_.size() >= static_cast<size_t>(srv_->cfg.limits.maxNamespacesPerConnection)) {
                Packet e;
                e.type = PacketType::ConnectError;
                e.nsp = p.nsp;
                e.hasData = true;
                const std::string reason = "Too many namespaces on one connection (at most " +
                                           std::to_string(srv_->cfg.limits.maxNamespacesPerConnection) + ")";
                e.data = json::Value::object();
                e.data.set("message", "NAMESPACE_LIMIT: " + reason);
                json::Value d = json::Value::object();
                d.set("code", "NAMESPACE_LIMIT");
                d.set("message", reason);
                e.data.set("data", std::move(d));
                sendPacket(e);
                return refusedConnect(p.nsp, true);
            }
            if (!session_->isWebsocket() && needsWebsocket(p.nsp)) return holdForUpgrade(std::move(p));
            everConnected_ = true;  // Node clears connectTimeout on the first CONNECT
            if (connectTimer_) {
                session_->loop().cancelTimer(connectTimer_);
                connectTimer_ = 0;
            }
            auto s = std::make_shared<SocketImpl>(shared_from_this(), p.nsp,
                                                  p.hasData ? std::move(p.data) : json::Value::object(), h->second);
            sockets_[p.nsp] = s;
            s->connect(shared_from_this());
            return;
        }
        case PacketType::Disconnect:
            if (it != sockets_.end()) it->second->left("client namespace disconnect");
            for (auto h = heldConnects_.begin(); h != heldConnects_.end(); ++h)
                if (h->nsp == p.nsp) {
                    heldConnects_.erase(h);
                    break;
                }
            return;
        case PacketType::Event:
        case PacketType::BinaryEvent:
            if (it == sockets_.end()) return fail("event for a namespace not joined: " + p.nsp);
            it->second->onEvent(p);
            return;
        case PacketType::Ack:
        case PacketType::BinaryAck:
            if (it == sockets_.end()) return fail("ack for a namespace not joined: " + p.nsp);
            if (!p.ackId) return fail("ack without id");
            it->second->onAck(p);
            return;
        case PacketType::ConnectError: return fail("CONNECT_ERROR from a client");
    }
}

log::Throttle gNamespaceLimitLog, gAttachmentLimitLog;

// A CONNECT that joined nothing (unknown namespace, or past the cap): each one is answered,
// so a client sending them without end is closed once it has had as many refusals as it
// may join namespaces.
void Client::refusedConnect(const std::string& nsp, bool overLimit) {
    const int cap = srv_->cfg.limits.maxNamespacesPerConnection;
    const uint32_t refused = ++refusedConnects_;
    if (refused > static_cast<uint32_t>(cap) + 1) return;  // already closing
    const bool closing = refused > static_cast<uint32_t>(cap);
    if (!overLimit && !closing) return;
    uint64_t n = (*srv_->counters).namespaces.fetch_add(1, std::memory_order_relaxed) + 1;
    uint64_t suppressed = 0;
    if (gNamespaceLimitLog.allow(suppressed))
        log::warn("namespace_limit", {{"sid", session_->id()}, {"remote", session_->remoteAddress()}, {"namespace", nsp},
                                      {"joined", std::to_string(sockets_.size())}, {"refused", std::to_string(refusedConnects_)},
                                      {"limit", std::to_string(cap)}, {"action", closing ? "close" : "connect_error"},
                                      {"count", std::to_string(n)}, {"suppressed", std::to_string(suppressed)}});
    if (closing) session_->close("too many refused namespace connects");
}

void Client::attachmentLimit() {
    uint64_t n = (*srv_->counters).attachments.fetch_add(1, std::memory_order_relaxed) + 1;
    uint64_t suppressed = 0;
    if (gAttachmentLimitLog.allow(suppressed))
        log::warn("attachment_limit", {{"sid", session_->id()}, {"remote", session_->remoteAddress()},
                                       {"limit", std::to_string(srv_->limits.maxAttachments)},
                                       {"count", std::to_string(n)}, {"suppressed", std::to_string(suppressed)}});
}

bool Client::needsWebsocket(const std::string& nsp) const {
    for (const auto& ns : srv_->cfg.namespaces)
        if (ns.path == nsp) return !ns.allowPolling;
    return false;
}

// allowPolling:false is decided at CONNECT (README, client protocol): a client that upgrades
// joins once on websocket, so everything it does in the namespace is on websocket; one that
// stays on polling gets CONNECT_ERROR TRANSPORT_REJECTED.
void Client::holdForUpgrade(Packet&& p) {
    for (const auto& h : heldConnects_)
        if (h.nsp == p.nsp) return fail("duplicate connect to " + p.nsp);
    heldConnects_.push_back(std::move(p));
    if (holdTimer_) return;
    std::weak_ptr<Client> wk = shared_from_this();
    holdTimer_ = session_->loop().addTimer(kUpgradeWaitMs, [wk] {
        auto c = wk.lock();
        if (!c) return;
        c->holdTimer_ = 0;
        auto held = std::move(c->heldConnects_);
        c->heldConnects_.clear();
        for (const auto& h : held) {
            if (c->closed_) return;
            const std::string reason = "Namespace requires websocket-capable transport";
            Packet e;
            e.type = PacketType::ConnectError;
            e.nsp = h.nsp;
            e.hasData = true;
            e.data = json::Value::object();
            e.data.set("message", "TRANSPORT_REJECTED: " + reason);
            json::Value d = json::Value::object();
            d.set("code", "TRANSPORT_REJECTED");
            d.set("message", reason);
            e.data.set("data", std::move(d));
            c->sendPacket(e);
        }
    });
}

void Client::onUpgraded(eio::EngineSession&) {
    if (closed_ || heldConnects_.empty()) return;
    auto keep = shared_from_this();
    if (holdTimer_) session_->loop().cancelTimer(holdTimer_);
    holdTimer_ = 0;
    auto held = std::move(heldConnects_);
    heldConnects_.clear();
    for (auto& p : held) {
        if (closed_) return;
        dispatch(p);
    }
}

void Client::onClose(eio::EngineSession&, const std::string& reason) {
    if (closed_) return;
    closed_ = true;
    auto keep = shared_from_this();
    if (connectTimer_) session_->loop().cancelTimer(connectTimer_);
    connectTimer_ = 0;
    if (holdTimer_) session_->loop().cancelTimer(holdTimer_);
    holdTimer_ = 0;
    heldConnects_.clear();
    pending_.reset();
    buffers_.clear();
    auto all = std::move(sockets_);
    sockets_.clear();
    for (auto& kv : all) kv.second->left(reason);
}

void Client::onDrain(eio::EngineSession&) {
    auto keep = shared_from_this();
    std::vector<std::shared_ptr<SocketImpl>> v;
    for (auto& kv : sockets_) v.push_back(kv.second);
    for (auto& s : v) s->drain();
}

}  // namespace

SioServer::SioServer(config::ServerConfig cfg) : impl_(std::make_shared<Impl>()) {
    impl_->cfg = std::move(cfg);
    const config::LimitsConfig& l = impl_->cfg.limits;
    net::AddressLimiter::Limits al;
    al.maxConnections = static_cast<uint64_t>(std::max(0, l.maxConnections));
    al.maxPerAddress = static_cast<uint64_t>(std::max(0, l.maxConnectionsPerAddress));
    al.ratePerSecond = std::max(0, l.maxConnectionsPerAddressPerSecond);
    al.burst = 2.0 * al.ratePerSecond;  // two seconds' worth at once
    al.maxIdleEntries = static_cast<size_t>(std::max(16, l.addressTableSize));
    al.exemptLoopback = l.exemptLoopback;
    impl_->addresses = std::make_shared<net::AddressLimiter>(al);
}

SioServer::~SioServer() { stop(); }

void SioServer::addNamespace(const std::string& path, std::shared_ptr<NamespaceHandler> h) {
    if (impl_->started) throw std::logic_error("addNamespace after start");
    impl_->nsps[path] = std::move(h);
}

void SioServer::setConnectTimeoutMs(uint64_t ms) { impl_->connectTimeoutMs = ms; }

void SioServer::start() {
    Impl& m = *impl_;
    if (m.started) return;
    const auto& c = m.cfg;
    eio::Options o;
    o.path = c.path.empty() ? "/socket.io/" : c.path;
    if (o.path.back() != '/') o.path.push_back('/');
    o.pingIntervalMs = static_cast<uint64_t>(c.pingIntervalMs);
    o.pingTimeoutMs = static_cast<uint64_t>(c.pingTimeoutMs);
    o.maxPayload = static_cast<size_t>(c.maxPayloadBytes);
    o.handshakeTimeoutMs = static_cast<uint64_t>(c.handshakeTimeoutMs);
    o.maxFramesPerMessage = static_cast<size_t>(c.limits.maxFramesPerMessage);
    o.maxPendingPollsPerSession = c.limits.maxPendingPollsPerSession;
    o.maxPendingPolls = c.limits.maxPendingPolls;
    o.maxSessionsPerConnection = c.limits.maxSessionsPerConnection;
    m.limits.maxAttachments = static_cast<size_t>(c.limits.maxAttachmentsPerPacket);
    o.allowPolling = c.engineIoTransport == config::EngineIoTransport::WEBSOCKET_OR_POLLING;
    o.corsOrigins = c.corsOrigins;
    m.limits.maxAttachmentBytes = std::max<size_t>(o.maxPayload * 16, 1 << 20);

    if (c.transport == config::Transport::WSS) {
        if (!c.tls) throw std::runtime_error("server " + c.name + ": transport WSS needs a tls section");
        m.tls = std::make_shared<net::TlsContext>(c.tls->certChainPemPath, c.tls->privateKeyPemPath,
                                                  c.tls->privateKeyPassword, c.tls->protocol);
    }
    loops();  // created before start() when delivery asked for them first

    std::weak_ptr<Impl> wk = impl_;
    m.engine = std::make_unique<eio::EngineServer>(o, [wk](const eio::EngineSessionPtr& s) {
        auto srv = wk.lock();
        if (!srv) return;
        auto cl = std::make_shared<Client>(srv, s);
        s->setHandler(cl);
        cl->start();
    }, m.counters);
    for (auto& l : m.loops) l->start();
    std::vector<net::EventLoop*> io;
    for (auto& l : m.loops) io.push_back(l.get());
    eio::EngineServer* eng = m.engine.get();
    try {
        m.acceptor = std::make_unique<net::Acceptor>(
            *io[0], io, c.host, c.port,
            [eng](const std::shared_ptr<net::Connection>& conn) { return eng->makeHandler(conn); }, m.tls);
        m.acceptor->setLimiter(m.addresses);
    } catch (...) {
        for (auto& l : m.loops) l->stop();
        for (auto& l : m.loops) l->join();
        m.loops.clear();
        throw;
    }
    m.acceptor->start();
    if (m.tls && c.tls && c.tls->watchIntervalMs > 0)
        m.tls->watchFiles(static_cast<uint64_t>(c.tls->watchIntervalMs));
    m.started = true;
    log::info("listening", {{"server", c.name},
                            {"host", c.host},
                            {"port", std::to_string(m.acceptor->port())},
                            {"transport", m.tls ? "wss" : "ws"}});
}

int SioServer::port() const { return impl_->acceptor ? impl_->acceptor->port() : 0; }

// The loops exist from the first call (before start()), so the layer above can bind its
// per-loop state to them before the first connection arrives; start() runs them.
std::vector<net::EventLoop*> SioServer::loops() {
    if (impl_->loops.empty() && !impl_->started) {
        const auto& c = impl_->cfg;
        int n = c.ioThreads > 0 ? c.ioThreads : static_cast<int>(std::thread::hardware_concurrency());
        if (n <= 0) n = 1;
        for (int i = 0; i < n; ++i)
            impl_->loops.push_back(std::make_unique<net::EventLoop>(c.name + "-io" + std::to_string(i)));
    }
    std::vector<net::EventLoop*> v;
    for (auto& l : impl_->loops) v.push_back(l.get());
    return v;
}

bool SioServer::reloadTls(std::string& err) {
    if (!impl_->tls) {
        err = "server " + impl_->cfg.name + " is not a TLS server";
        return false;
    }
    return impl_->tls->reload(err);
}

void SioServer::stop() {
    Impl& m = *impl_;
    if (!m.started || m.stopped) return;
    m.stopped = true;
    if (m.tls) m.tls->stopWatching();
    m.acceptor->stop();
    m.acceptor.reset();
    m.engine->closeAll("server shutting down");
    // Give the loops a moment to flush the close frames / answers, bounded.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (m.engine->sessionCount() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    // Abort what is still open on every loop, then drop the callbacks that hold sessions and
    // connections (and through them this Impl): docs/threads-and-ownership.md, Lifetimes.
    for (auto& l : m.loops) l->shutdown();
    for (auto& l : m.loops) l->join();
    for (auto& l : m.loops) l->clear();
    m.engine->forgetSessions();
}

void SioServer::appendLimitMetrics(MetricSnapshot& out) const {
    eio::appendLimitMetrics(*impl_->counters, impl_->addresses.get(), out);
}

size_t SioServer::sessionCount() const { return impl_->engine ? impl_->engine->sessionCount() : 0; }

const config::ServerConfig& SioServer::config() const { return impl_->cfg; }

}  // namespace sf::sio
