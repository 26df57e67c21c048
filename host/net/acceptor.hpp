// A listening TCP socket. Accepts on one loop and hands each accepted fd round-robin to
// the I/O loops; the target loop creates the Connection (TCP or TLS) on its own thread,
// so a connection is touched only by the loop that owns it.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/address_limiter.hpp"
#include "net/connection.hpp"

namespace sf::net {

class EventLoop;
class TlsContext;

class Acceptor {
public:
    // Runs on the connection's loop thread (so it must be safe to call from every I/O
    // loop at once). Returning nullptr refuses the connection (it is aborted).
    using HandlerFactory = std::function<std::shared_ptr<ConnectionHandler>(const std::shared_ptr<Connection>&)>;

    // Binds and listens at once (SO_REUSEADDR; port 0 = ephemeral), so port() is valid
    // on return and "address in use" is reported here: throws std::runtime_error.
    // host "" or "0.0.0.0" = all IPv4 interfaces; an IPv6 literal ("::1") binds IPv6.
    // acceptLoop may also be one of ioLoops. tls != nullptr => every connection is TLS.
    // The loops must outlive the Acceptor. backlog 4096 (the kernel's somaxconn cap on
    // Debian 12): a reconnect storm of 10,000 clients overflowed 1024 and waited for TCP's
    // 1 s, 3 s, 7 s SYN retries (bench/results/storm.md).
    Acceptor(EventLoop& acceptLoop, std::vector<EventLoop*> ioLoops, const std::string& host, int port,
             HandlerFactory factory, std::shared_ptr<TlsContext> tls = nullptr, int backlog = 4096);
    ~Acceptor();  // stop()
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;

    // Before start(): every accepted connection is first admitted by `limiter` (global and
    // per-address caps, connection rate); a refused one is closed at once, before any TLS or
    // HTTP work (plain TCP gets a best-effort 503 first), counted there and logged
    // (event=connection_refused, throttled). An admitted one is released when it closes.
    void setLimiter(std::shared_ptr<AddressLimiter> limiter);

    // Thread-safe. start() begins accepting (on the accept loop); stop() stops accepting
    // and closes the listening socket there. Open connections are not affected.
    void start();
    void stop();

    int port() const;                      // the bound port
    const std::string& host() const;
    bool isTls() const;
    uint64_t acceptedCount() const;       // connections accepted so far

    struct State;

private:
    std::shared_ptr<State> st_;
};

}  // namespace sf::net
