// TLS over a TcpConnection: OpenSSL with two memory BIOs, so the socket stays truly
// non-blocking and all socket I/O (queue, writev batching, EPOLLOUT) is the TCP code's.
#pragma once
#include <deque>
#include <memory>

#include "net/tcp_connection.hpp"

struct ssl_st;

namespace sf::net {

class TlsContext;

class TlsConnection : public TcpConnection {
public:
    // Server side. Keeps ctx alive for the connection's life.
    static std::shared_ptr<TlsConnection> create(EventLoop& loop, int fd, std::string remoteAddress,
                                                 std::shared_ptr<TlsContext> ctx);
    ~TlsConnection() override;

    bool isTls() const override { return true; }
    bool handshakeDone() const { return handshakeDone_; }

    static constexpr uint64_t kHandshakeTimeoutMs = 10000;

protected:
    TlsConnection(EventLoop& loop, int fd, std::string remoteAddress, std::shared_ptr<TlsContext> ctx);

    void onBytesIn(const char* data, size_t n) override;
    void queueApp(Buffer b, size_t offset, size_t len) override;
    void fillWire() override;
    size_t pendingAppBytes() const override { return plainBytes_; }
    void beforeShutdown() override;

private:
    struct Slice {
        Buffer buf;
        size_t off;
        size_t len;
    };
    void drainWbio();
    void fail(const char* what, int sslErr);

    std::shared_ptr<TlsContext> ctx_;
    ssl_st* ssl_ = nullptr;
    void* rbio_ = nullptr;  // BIO*, owned by ssl_
    void* wbio_ = nullptr;
    bool handshakeDone_ = false;
    bool failed_ = false;  // after a fatal TLS error SSL_shutdown must not be called
    std::deque<Slice> plain_;
    size_t plainBytes_ = 0;
    TimerId hsTimer_ = 0;
};

}  // namespace sf::net
