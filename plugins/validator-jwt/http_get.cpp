#include "http_get.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/x509v3.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>

namespace jwthttp {

namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string sslError(const char* what) {
    unsigned long e = ERR_get_error();
    std::string s = what;
    if (e) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        s += ": ";
        s += buf;
    }
    ERR_clear_error();
    return s;
}

// One connection: a non-blocking socket, optionally wrapped in TLS, every wait bounded by
// the deadline and interrupted by the cancel fd.
class Conn {
public:
    Conn(Clock::time_point deadline, int cancelFd) : deadline_(deadline), cancelFd_(cancelFd) {}
    ~Conn() {
        if (ssl_) SSL_free(ssl_);
        if (ctx_) SSL_CTX_free(ctx_);
        if (fd_ >= 0) ::close(fd_);
    }

    bool connect(const Url& u, std::string& err) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        int rc = getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &res);
        if (rc != 0) {
            err = "cannot resolve " + u.host + ": " + gai_strerror(rc);
            return false;
        }
        std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, freeaddrinfo);
        err = "cannot connect to " + u.host + ":" + u.port;
        for (addrinfo* a = res; a; a = a->ai_next) {
            int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
            if (fd < 0) continue;
            if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
                fd_ = fd;
                if (!wait(POLLOUT, err)) return false;
                int soerr = 0;
                socklen_t len = sizeof soerr;
                getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soerr, &len);
                if (soerr == 0) break;
                err = "cannot connect to " + u.host + ":" + u.port + ": " + std::strerror(soerr);
                ::close(fd_);
                fd_ = -1;
                continue;
            }
            ::close(fd);
        }
        if (fd_ < 0) return false;
        if (!u.tls) return true;

        ctx_ = SSL_CTX_new(TLS_client_method());
        if (!ctx_) return (err = sslError("TLS context")), false;
        SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
        if (u.caFile.empty()) SSL_CTX_set_default_verify_paths(ctx_);
        else if (SSL_CTX_load_verify_locations(ctx_, u.caFile.c_str(), nullptr) != 1)
            return (err = sslError(("cannot load CA file " + u.caFile).c_str())), false;
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
        ssl_ = SSL_new(ctx_);
        if (!ssl_) return (err = sslError("TLS session")), false;
        SSL_set_fd(ssl_, fd_);
        // The certificate must name the URL's host (an IP address: as an IP SAN).
        in6_addr ip6;
        in_addr ip4;
        bool isIp = inet_pton(AF_INET, u.host.c_str(), &ip4) == 1 || inet_pton(AF_INET6, u.host.c_str(), &ip6) == 1;
        if (isIp) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), u.host.c_str());
        else {
            SSL_set_tlsext_host_name(ssl_, u.host.c_str());
            SSL_set1_host(ssl_, u.host.c_str());
        }
        for (;;) {
            int r = SSL_connect(ssl_);
            if (r == 1) return true;
            int e = SSL_get_error(ssl_, r);
            if (e == SSL_ERROR_WANT_READ && wait(POLLIN, err)) continue;
            if (e == SSL_ERROR_WANT_WRITE && wait(POLLOUT, err)) continue;
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return false;  // err set by wait
            long v = SSL_get_verify_result(ssl_);
            err = v != X509_V_OK ? std::string("TLS certificate of ") + u.host + ": " + X509_verify_cert_error_string(v)
                                 : sslError("TLS handshake");
            return false;
        }
    }

    bool writeAll(const std::string& data, std::string& err) {
        size_t off = 0;
        while (off < data.size()) {
            ssize_t n;
            if (ssl_) {
                int r = SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off));
                if (r <= 0) {
                    int e = SSL_get_error(ssl_, r);
                    if ((e == SSL_ERROR_WANT_READ && wait(POLLIN, err)) || (e == SSL_ERROR_WANT_WRITE && wait(POLLOUT, err))) continue;
                    if (err.empty()) err = sslError("TLS write");
                    return false;
                }
                n = r;
            } else {
                n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
                if (n < 0) {
                    if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait(POLLOUT, err)) continue;
                    if (err.empty()) err = std::string("send: ") + std::strerror(errno);
                    return false;
                }
            }
            off += static_cast<size_t>(n);
        }
        return true;
    }

    // Appends to out; 0 at end of stream, -1 on error (err set).
    long readSome(std::string& out, std::string& err) {
        char buf[16384];
        for (;;) {
            if (ssl_) {
                int r = SSL_read(ssl_, buf, sizeof buf);
                if (r > 0) return out.append(buf, static_cast<size_t>(r)), r;
                int e = SSL_get_error(ssl_, r);
                if (e == SSL_ERROR_ZERO_RETURN) return 0;
                if ((e == SSL_ERROR_WANT_READ && wait(POLLIN, err)) || (e == SSL_ERROR_WANT_WRITE && wait(POLLOUT, err))) continue;
                if (!err.empty()) return -1;
                // A server that closes without close_notify: treat as end of stream; the
                // framing check (Content-Length / chunked) catches a truncated body.
                if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL) { ERR_clear_error(); return 0; }
                err = sslError("TLS read");
                return -1;
            }
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) return out.append(buf, static_cast<size_t>(n)), n;
            if (n == 0) return 0;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait(POLLIN, err)) continue;
            if (err.empty()) err = std::string("recv: ") + std::strerror(errno);
            return -1;
        }
    }

private:
    bool wait(short events, std::string& err) {
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
            if (left <= 0) return (err = "timed out"), false;
            pollfd p[2] = {{fd_, events, 0}, {cancelFd_, POLLIN, 0}};
            int n = ::poll(p, cancelFd_ >= 0 ? 2 : 1, static_cast<int>(left));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return (err = std::string("poll: ") + std::strerror(errno)), false;
            if (cancelFd_ >= 0 && (p[1].revents & POLLIN)) return (err = "cancelled"), false;
            if (p[0].revents) return true;
        }
    }

    Clock::time_point deadline_;
    int cancelFd_;
    int fd_ = -1;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
};

// Decodes a chunked body; false if it is not complete or malformed.
bool dechunk(const std::string& in, std::string& out) {
    size_t p = 0;
    for (;;) {
        size_t eol = in.find("\r\n", p);
        if (eol == std::string::npos) return false;
        char* end = nullptr;
        unsigned long long n = std::strtoull(in.c_str() + p, &end, 16);
        if (end == in.c_str() + p) return false;
        p = eol + 2;
        if (n == 0) return true;
        if (n > in.size() - p) return false;
        out.append(in, p, n);
        p += n;
        if (in.compare(p, 2, "\r\n") != 0) return false;
        p += 2;
    }
}

}  // namespace

bool parseUrl(const std::string& text, Url& out, std::string& err) {
    std::string rest;
    if (lower(text.substr(0, 8)) == "https://") out.tls = true, rest = text.substr(8);
    else if (lower(text.substr(0, 7)) == "http://") out.tls = false, rest = text.substr(7);
    else return (err = "expected an http:// or https:// URL, got \"" + text + "\""), false;
    size_t slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    out.path = slash == std::string::npos ? "/" : rest.substr(slash);
    if (size_t hash = out.path.find('#'); hash != std::string::npos) out.path.resize(hash);
    if (authority.find('@') != std::string::npos) return (err = "credentials in the URL are not supported"), false;
    out.port = out.tls ? "443" : "80";
    if (!authority.empty() && authority[0] == '[') {  // [v6]:port
        size_t close = authority.find(']');
        if (close == std::string::npos) return (err = "bad IPv6 address in \"" + text + "\""), false;
        out.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return (err = "bad host in \"" + text + "\""), false;
            out.port = authority.substr(close + 2);
        }
    } else {
        size_t colon = authority.find(':');
        out.host = authority.substr(0, colon);
        if (colon != std::string::npos) out.port = authority.substr(colon + 1);
    }
    if (out.host.empty()) return (err = "no host in \"" + text + "\""), false;
    if (out.port.empty() || out.port.size() > 5 || out.port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(out.port) < 1 || std::stoi(out.port) > 65535)
        return (err = "bad port in \"" + text + "\""), false;
    return true;
}

bool get(const Url& url, int timeoutMs, int cancelFd, size_t maxBytes, Response& out, std::string& err) {
    err.clear();
    Conn c(Clock::now() + std::chrono::milliseconds(timeoutMs), cancelFd);
    if (!c.connect(url, err)) return false;
    bool defaultPort = url.port == (url.tls ? "443" : "80");
    std::string hostHeader = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    if (!defaultPort) hostHeader += ":" + url.port;
    std::string req = "GET " + url.path + " HTTP/1.1\r\nHost: " + hostHeader +
                      "\r\nAccept: application/json\r\nUser-Agent: streamfenced-jwt\r\nConnection: close\r\n\r\n";
    if (!c.writeAll(req, err)) return false;

    std::string raw;
    for (;;) {
        long n = c.readSome(raw, err);
        if (n < 0) return false;
        if (n == 0) break;
        if (raw.size() > maxBytes + 65536) return (err = "response larger than " + std::to_string(maxBytes) + " bytes"), false;
    }
    size_t hdrEnd = raw.find("\r\n\r\n");
    if (hdrEnd == std::string::npos || raw.compare(0, 7, "HTTP/1.") != 0 || raw.size() < 12)
        return (err = "not an HTTP response"), false;
    out.status = std::atoi(raw.c_str() + 9);
    std::string headers = lower(raw.substr(0, hdrEnd + 2));
    std::string body = raw.substr(hdrEnd + 4);
    if (headers.find("\r\ntransfer-encoding: chunked\r\n") != std::string::npos) {
        std::string decoded;
        if (!dechunk(body, decoded)) return (err = "truncated or malformed chunked body"), false;
        body.swap(decoded);
    } else if (size_t cl = headers.find("\r\ncontent-length:"); cl != std::string::npos) {
        unsigned long long len = std::strtoull(headers.c_str() + cl + 17, nullptr, 10);
        if (body.size() < len) return (err = "truncated body"), false;
        body.resize(len);
    }
    if (body.size() > maxBytes) return (err = "response larger than " + std::to_string(maxBytes) + " bytes"), false;
    out.body = std::move(body);
    return true;
}

}  // namespace jwthttp
