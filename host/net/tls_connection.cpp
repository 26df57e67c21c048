#include "net/tls_connection.hpp"

#include <algorithm>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/log.hpp"
#include "net/tls.hpp"

namespace sf::net {

namespace {
constexpr size_t kRecord = 16 * 1024;        // max TLS plaintext record
constexpr size_t kBigChunk = 64 * 1024;      // large slices go to SSL_write uncopied, this much at a time
constexpr size_t kWireBudget = 256 * 1024;   // ciphertext encrypted ahead of the socket

std::string sslErrorText(int sslErr) {
    std::string out = takeOpenSslErrors();
    if (out.empty()) out = sslErr == SSL_ERROR_SYSCALL ? "unexpected EOF" : "SSL error " + std::to_string(sslErr);
    return out;
}
}  // namespace

std::shared_ptr<TlsConnection> TlsConnection::create(EventLoop& loop, int fd, std::string remoteAddress,
                                                     std::shared_ptr<TlsContext> ctx) {
    std::shared_ptr<TlsConnection> c(new TlsConnection(loop, fd, std::move(remoteAddress), std::move(ctx)));
    // A client that connects and never finishes the handshake must not hold the socket forever.
    std::weak_ptr<TlsConnection> weak = c;
    c->hsTimer_ = loop.addTimer(kHandshakeTimeoutMs, [weak] {
        auto self = weak.lock();
        if (!self) return;
        self->hsTimer_ = 0;
        if (!self->handshakeDone_ && !self->finished()) {
            sf::log::warn("tls_handshake_failed", {{"conn", std::to_string(self->id())},
                                                   {"remote", self->remoteAddress()},
                                                   {"error", "handshake timed out"}});
            self->failed_ = true;
            self->abort("tls handshake timed out");
        }
    });
    return c;
}

TlsConnection::TlsConnection(EventLoop& loop, int fd, std::string remoteAddress, std::shared_ptr<TlsContext> ctx)
    : TcpConnection(loop, fd, std::move(remoteAddress)), ctx_(std::move(ctx)) {
    if (!ctx_) throw std::invalid_argument("TlsConnection: no TlsContext");
    ssl_ = SSL_new(ctx_->sslCtx());
    if (!ssl_) throw std::runtime_error("SSL_new failed: " + sslErrorText(0));
    BIO* r = BIO_new(BIO_s_mem());
    BIO* w = BIO_new(BIO_s_mem());
    if (!r || !w) {
        BIO_free(r);
        BIO_free(w);
        SSL_free(ssl_);
        ssl_ = nullptr;
        throw std::runtime_error("BIO_new failed");
    }
    // An empty memory BIO must read as "retry later", not as EOF.
    BIO_set_mem_eof_return(r, -1);
    BIO_set_mem_eof_return(w, -1);
    SSL_set_bio(ssl_, r, w);  // ssl_ owns both now
    rbio_ = r;
    wbio_ = w;
    SSL_set_accept_state(ssl_);
}

TlsConnection::~TlsConnection() {
    if (ssl_) SSL_free(ssl_);
}

void TlsConnection::drainWbio() {
    BIO* w = static_cast<BIO*>(wbio_);
    size_t pending = BIO_ctrl_pending(w);
    if (pending == 0) return;
    std::string out(pending, '\0');
    int n = BIO_read(w, out.data(), static_cast<int>(pending));
    if (n <= 0) return;
    out.resize(static_cast<size_t>(n));
    size_t len = out.size();
    queueWire(makeBuffer(std::move(out)), 0, len);
}

void TlsConnection::fail(const char* what, int sslErr) {
    std::string err = sslErrorText(sslErr);
    bool inHandshake = !handshakeDone_;
    failed_ = true;
    sf::log::warn(inHandshake ? "tls_handshake_failed" : "tls_error",
                  {{"conn", std::to_string(id())}, {"remote", remoteAddress()}, {"op", what}, {"error", err}});
    if (hsTimer_) {
        loop().cancelTimer(hsTimer_);
        hsTimer_ = 0;
    }
    plain_.clear();
    plainBytes_ = 0;
    drainWbio();  // the alert OpenSSL generated, sent by the graceful close below
    std::string reason = std::string(inHandshake ? "tls handshake failed: " : "tls error: ") + err;
    if (closing()) return;  // already closing: the flush under way finishes the job
    close(reason);
}

void TlsConnection::onBytesIn(const char* data, size_t n) {
    if (failed_ || finished()) return;
    BIO_write(static_cast<BIO*>(rbio_), data, static_cast<int>(n));
    if (!handshakeDone_) {
        ERR_clear_error();
        int r = SSL_do_handshake(ssl_);
        if (r != 1) {
            int e = SSL_get_error(ssl_, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                drainWbio();
                if (wireBytes()) scheduleFlush();
                return;
            }
            fail("handshake", e);
            return;
        }
        handshakeDone_ = true;
        if (hsTimer_) {
            loop().cancelTimer(hsTimer_);
            hsTimer_ = 0;
        }
        sf::log::debug("tls_handshake_done", {{"conn", std::to_string(id())},
                                              {"version", SSL_get_version(ssl_)},
                                              {"cipher", SSL_get_cipher_name(ssl_)}});
    }
    // Read until OpenSSL wants more input: this drains SSL_pending too, which epoll can't see.
    char buf[kRecord];
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(ssl_, buf, sizeof buf);
        if (r > 0) {
            deliver(buf, static_cast<size_t>(r));
            if (finished() || failed_) return;
            continue;
        }
        int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            // Peer sent close_notify: answer with ours (beforeShutdown) after what is queued.
            drainWbio();
            close("peer closed");
            return;
        }
        fail("read", e);
        return;
    }
    drainWbio();  // TLS 1.3 session tickets, key updates
    if (wireBytes() || plainBytes_) scheduleFlush();
}

void TlsConnection::queueApp(Buffer b, size_t offset, size_t len) {
    if (failed_) return;
    plainBytes_ += len;
    plain_.push_back({std::move(b), offset, len});
}

void TlsConnection::fillWire() {
    if (!handshakeDone_ || failed_) {
        drainWbio();
        return;
    }
    std::string stage;
    // Bounded: an 8 MB send is encrypted 256 KB ahead of the socket, not all at once.
    while (plainBytes_ > 0 && wireBytes() < kWireBudget) {
        const char* p;
        size_t n;
        Slice& s = plain_.front();
        if (s.len >= kRecord) {
            p = s.buf->data() + s.off;
            n = std::min(s.len, kBigChunk);
        } else {
            // Coalesce small frames into one record: fewer records, fewer MACs, fewer bytes.
            stage.clear();
            for (auto it = plain_.begin(); it != plain_.end() && stage.size() + it->len <= kRecord; ++it)
                stage.append(it->buf->data() + it->off, it->len);
            p = stage.data();
            n = stage.size();
        }
        ERR_clear_error();
        int w = SSL_write(ssl_, p, static_cast<int>(n));
        if (w <= 0) {
            fail("write", SSL_get_error(ssl_, w));
            return;
        }
        // Without SSL_MODE_ENABLE_PARTIAL_WRITE a memory BIO takes all n bytes.
        size_t left = static_cast<size_t>(w);
        plainBytes_ -= left;
        while (left > 0) {
            Slice& f = plain_.front();
            if (left >= f.len) {
                left -= f.len;
                plain_.pop_front();
            } else {
                f.off += left;
                f.len -= left;
                left = 0;
            }
        }
        drainWbio();
    }
    drainWbio();
}

void TlsConnection::beforeShutdown() {
    if (!handshakeDone_ || failed_) return;
    ERR_clear_error();
    SSL_shutdown(ssl_);  // queues close_notify in the write BIO; we don't wait for the peer's
    ERR_clear_error();
    drainWbio();
}

}  // namespace sf::net
