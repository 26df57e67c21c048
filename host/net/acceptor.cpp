#include "net/acceptor.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.hpp"
#include "common/log_throttle.hpp"
#include "net/event_loop.hpp"
#include "net/tcp_connection.hpp"
#include "net/tls.hpp"
#include "net/tls_connection.hpp"

namespace sf::net {

namespace {
constexpr int kMaxAcceptsPerTurn = 64;   // let the accept loop's own connections breathe
constexpr uint64_t kFdExhaustedPauseMs = 100;

// Owns an accepted fd until the target loop adopts it; closes it if the post never runs.
struct OwnedFd {
    int fd;
    explicit OwnedFd(int f) : fd(f) {}
    ~OwnedFd() {
        if (fd >= 0) ::close(fd);
    }
    int release() {
        int f = fd;
        fd = -1;
        return f;
    }
};
// Wraps the protocol's handler of an admitted connection: gives its place in the limiter
// back when the connection closes (or the handler goes without a close).
class AdmittedHandler final : public ConnectionHandler {
public:
    AdmittedHandler(std::shared_ptr<AddressLimiter> lim, AddressLimiter::Key key) : lim_(std::move(lim)), key_(std::move(key)) {}
    ~AdmittedHandler() override { release(); }
    void setInner(std::shared_ptr<ConnectionHandler> inner) { inner_ = std::move(inner); }
    void onData(Connection& c, std::string_view data) override { inner_->onData(c, data); }
    void onDrain(Connection& c) override { inner_->onDrain(c); }
    void onClose(Connection& c, const std::string& reason) override {
        release();
        inner_->onClose(c, reason);
    }

private:
    void release() {
        if (lim_) lim_->release(key_);
        lim_.reset();
    }
    std::shared_ptr<ConnectionHandler> inner_;
    std::shared_ptr<AddressLimiter> lim_;
    AddressLimiter::Key key_;
};

// Refused at accept: a plain HTTP client is told why (best effort, never blocking), then
// the socket is closed. Whatever the client already sent is read first, so the close is not
// a reset that would throw our answer away.
void refuseFd(int fd, bool plain) {
    if (plain) {
        char sink[4096];
        while (::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
        }
        static const char kBusy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 29\r\n"
            "Retry-After: 1\r\nConnection: close\r\n\r\nToo many connections, retry.\n";
        (void)!::send(fd, kBusy, sizeof kBusy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        ::shutdown(fd, SHUT_WR);
    }
    ::close(fd);
}

log::Throttle gRefusedLog;
}  // namespace

struct Acceptor::State : std::enable_shared_from_this<Acceptor::State> {
    EventLoop* acceptLoop = nullptr;
    std::vector<EventLoop*> loops;
    std::string host;
    int port = 0;
    HandlerFactory factory;
    std::shared_ptr<TlsContext> tls;
    std::shared_ptr<AddressLimiter> limiter;  // set before start(); null = no caps
    int fd = -1;
    bool watching = false;      // accept loop only
    size_t next = 0;            // round-robin cursor, accept loop only
    TimerId pauseTimer = 0;     // accept loop only
    std::atomic<bool> started{false};
    std::atomic<bool> stopped{false};
    std::atomic<uint64_t> accepted{0};

    ~State() {
        if (fd >= 0) ::close(fd);
    }

    void startOnLoop() {
        if (stopped || watching || fd < 0) return;
        std::weak_ptr<State> weak = shared_from_this();
        acceptLoop->watch(fd, EPOLLIN, [weak](uint32_t) {
            if (auto s = weak.lock()) s->onAcceptable();
        });
        watching = true;
        sf::log::debug("listener_bound", {{"host", host}, {"port", std::to_string(port)}, {"tls", tls ? "true" : "false"}});
    }

    void stopOnLoop() {
        if (pauseTimer) {
            acceptLoop->cancelTimer(pauseTimer);
            pauseTimer = 0;
        }
        if (watching) {
            acceptLoop->unwatch(fd);
            watching = false;
        }
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
    }

    void onAcceptable() {
        for (int i = 0; i < kMaxAcceptsPerTurn && fd >= 0; ++i) {
            sockaddr_storage ss{};
            socklen_t len = sizeof ss;
            int c = ::accept4(fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) return;
                if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    // The pending connection stays readable: without a pause we would spin.
                    sf::log::warn("accept_paused", {{"port", std::to_string(port)}, {"error", std::strerror(errno)}});
                    pause();
                    return;
                }
                sf::log::error("accept_failed", {{"port", std::to_string(port)}, {"error", std::strerror(errno)}});
                return;
            }
            AddressLimiter::Key key;
            if (limiter) {
                key = AddressLimiter::keyOf(&ss);
                auto v = limiter->admit(key, acceptLoop->nowMs());
                if (v != AddressLimiter::Verdict::Admitted) {
                    refused(v, c, formatSockaddr(&ss));
                    continue;
                }
            }
            accepted.fetch_add(1, std::memory_order_relaxed);
            handOff(c, formatSockaddr(&ss), std::move(key));
        }
    }

    void pause() {
        if (!watching || pauseTimer) return;
        acceptLoop->modify(fd, 0);
        std::weak_ptr<State> weak = shared_from_this();
        pauseTimer = acceptLoop->addTimer(kFdExhaustedPauseMs, [weak] {
            auto s = weak.lock();
            if (!s) return;
            s->pauseTimer = 0;
            if (s->watching) s->acceptLoop->modify(s->fd, EPOLLIN);
        });
    }

    void refused(AddressLimiter::Verdict v, int cfd, const std::string& remote) {
        refuseFd(cfd, !tls);
        uint64_t suppressed = 0;
        if (!gRefusedLog.allow(suppressed)) return;
        const auto& l = limiter->limits();
        log::warn("connection_refused",
                  {{"port", std::to_string(port)}, {"remote", remote}, {"reason", AddressLimiter::reason(v)},
                   {"open", std::to_string(limiter->open())},
                   {"limit", std::to_string(v == AddressLimiter::Verdict::TooMany              ? l.maxConnections
                                            : v == AddressLimiter::Verdict::TooManyFromAddress ? l.maxPerAddress
                                                                                                : static_cast<uint64_t>(l.ratePerSecond))},
                   {"count", std::to_string(limiter->refused(v))},
                   {"suppressed", std::to_string(suppressed)}});
    }

    void handOff(int cfd, std::string remote, AddressLimiter::Key key) {
        EventLoop* target = loops[next++ % loops.size()];
        auto owned = std::make_shared<OwnedFd>(cfd);
        auto self = shared_from_this();
        // Gives the place back if the post never runs (the loop stopped first).
        std::shared_ptr<AdmittedHandler> ticket;
        if (limiter) ticket = std::make_shared<AdmittedHandler>(limiter, std::move(key));
        // Created on the target loop: the connection's whole life is on that thread.
        target->post([self, target, owned, ticket, remote = std::move(remote)]() mutable {
            self->adopt(*target, owned->release(), std::move(remote), std::move(ticket));
        });
    }

    void adopt(EventLoop& loop, int cfd, std::string remote, std::shared_ptr<AdmittedHandler> ticket) {
        std::shared_ptr<TcpConnection> conn;
        try {
            if (tls) conn = TlsConnection::create(loop, cfd, std::move(remote), tls);
            else conn = TcpConnection::create(loop, cfd, std::move(remote));
        } catch (const std::exception& e) {
            // The TcpConnection base already owned (and on unwinding closed) the fd.
            sf::log::error("connection_setup_failed", {{"port", std::to_string(port)}, {"error", e.what()}});
            return;
        }
        std::shared_ptr<ConnectionHandler> h;
        try {
            h = factory(conn);
        } catch (const std::exception& e) {
            sf::log::error("connection_handler_failed", {{"port", std::to_string(port)}, {"error", e.what()}});
        }
        if (!h) {
            conn->abort("refused by handler factory");
            return;
        }
        if (ticket) {
            ticket->setInner(std::move(h));
            h = std::move(ticket);
        }
        conn->setHandler(std::move(h));
        try {
            conn->start();
        } catch (const std::exception& e) {
            sf::log::error("connection_setup_failed", {{"port", std::to_string(port)}, {"error", e.what()}});
            conn->abort(std::string("setup failed: ") + e.what());
        }
    }
};

Acceptor::Acceptor(EventLoop& acceptLoop, std::vector<EventLoop*> ioLoops, const std::string& host, int port,
                   HandlerFactory factory, std::shared_ptr<TlsContext> tls, int backlog)
    : st_(std::make_shared<State>()) {
    if (ioLoops.empty()) ioLoops.push_back(&acceptLoop);
    for (EventLoop* l : ioLoops)
        if (!l) throw std::invalid_argument("Acceptor: null EventLoop");
    if (!factory) throw std::invalid_argument("Acceptor: no handler factory");
    if (port < 0 || port > 65535) throw std::invalid_argument("Acceptor: port out of range: " + std::to_string(port));
    st_->acceptLoop = &acceptLoop;
    st_->loops = std::move(ioLoops);
    st_->host = host;
    st_->factory = std::move(factory);
    st_->tls = std::move(tls);

    std::string where = (host.empty() ? "0.0.0.0" : host) + ":" + std::to_string(port);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string portStr = std::to_string(port);
    int gai = ::getaddrinfo(host.empty() ? "0.0.0.0" : host.c_str(), portStr.c_str(), &hints, &res);
    if (gai != 0) throw std::runtime_error("listen on " + where + ": cannot resolve host: " + gai_strerror(gai));
    std::string lastErr = "no address";
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            lastErr = std::strerror(errno);
            continue;
        }
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || ::listen(fd, backlog) < 0) {
            lastErr = std::strerror(errno);
            ::close(fd);
            continue;
        }
        st_->fd = fd;
        break;
    }
    ::freeaddrinfo(res);
    if (st_->fd < 0) throw std::runtime_error("listen on " + where + ": " + lastErr);

    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(st_->fd, reinterpret_cast<sockaddr*>(&ss), &len);
    if (ss.ss_family == AF_INET) st_->port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    else if (ss.ss_family == AF_INET6) st_->port = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

Acceptor::~Acceptor() { stop(); }

void Acceptor::start() {
    if (st_->started.exchange(true)) return;
    auto st = st_;
    if (st->acceptLoop->inLoopThread()) st->startOnLoop();
    else st->acceptLoop->post([st] { st->startOnLoop(); });
}

void Acceptor::stop() {
    if (st_->stopped.exchange(true)) return;
    auto st = st_;
    if (st->acceptLoop->inLoopThread()) st->stopOnLoop();
    else st->acceptLoop->post([st] { st->stopOnLoop(); });
}

int Acceptor::port() const { return st_->port; }
const std::string& Acceptor::host() const { return st_->host; }
bool Acceptor::isTls() const { return st_->tls != nullptr; }
void Acceptor::setLimiter(std::shared_ptr<AddressLimiter> limiter) {
    if (st_->started) throw std::logic_error("Acceptor::setLimiter after start");
    st_->limiter = std::move(limiter);
}

uint64_t Acceptor::acceptedCount() const { return st_->accepted.load(std::memory_order_relaxed); }

}  // namespace sf::net
