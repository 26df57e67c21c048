// What the net tests share: blocking client sockets, a probe handler that records what
// a connection saw, test certificates and a blocking TLS client.
#pragma once
#include "net/event_loop.hpp"
#include "net/acceptor.hpp"
#include "net/tcp_connection.hpp"
#include "net/tls.hpp"
#include "net/tls_connection.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sf::nettest {

using namespace sf::net;

template <class F>
inline bool waitFor(F cond, int timeoutMs = 5000) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (std::chrono::steady_clock::now() < end) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return cond();
}

// Runs fn on the loop thread and waits for its result.
template <class F>
auto onLoop(EventLoop& loop, F fn) -> decltype(fn()) {
    std::promise<decltype(fn())> p;
    auto f = p.get_future();
    loop.post([&] {
        if constexpr (std::is_void_v<decltype(fn())>) {
            fn();
            p.set_value();
        } else {
            p.set_value(fn());
        }
    });
    if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) throw std::runtime_error("loop did not answer");
    return f.get();
}

// Blocking client socket with a receive timeout so a broken server fails the test, not hangs it.
inline int connectTo(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        throw std::runtime_error("connect failed");
    }
    return fd;
}

inline void writeAll(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t w = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (w <= 0) throw std::runtime_error("client write failed");
        off += static_cast<size_t>(w);
    }
}

inline std::string readExactly(int fd, size_t n) {
    std::string out;
    out.resize(n);
    size_t got = 0;
    while (got < n) {
        ssize_t r = ::recv(fd, &out[got], n - got, 0);
        if (r <= 0) break;
        got += static_cast<size_t>(r);
    }
    out.resize(got);
    return out;
}

// Reads until EOF (or timeout); returns bytes, sets eof.
inline std::string readToEof(int fd, bool& eof) {
    std::string out;
    char buf[65536];
    eof = false;
    for (;;) {
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r == 0) {
            eof = true;
            break;
        }
        if (r < 0) break;
        out.append(buf, static_cast<size_t>(r));
    }
    return out;
}

// Shared observations of a test handler, read from the test thread.
struct Probe {
    std::mutex mu;
    std::vector<std::string> closeReasons;
    std::vector<std::string> loopNames;
    std::atomic<int> closes{0};
    std::atomic<int> drains{0};
    std::atomic<size_t> bufferedAtDrain{0};
    std::atomic<int> opened{0};
    std::vector<std::shared_ptr<Connection>> conns;
};

// Holds the probe weakly: the probe keeps the connections, which keep their handler.
class EchoHandler : public ConnectionHandler {
public:
    explicit EchoHandler(const std::shared_ptr<Probe>& p) : probe_(p) {}
    void onData(Connection& c, std::string_view data) override { c.send(std::string(data)); }
    void onDrain(Connection& c) override {
        if (auto p = probe_.lock()) {
            p->bufferedAtDrain = c.bufferedBytes();
            p->drains++;
        }
    }
    void onClose(Connection&, const std::string& reason) override {
        auto p = probe_.lock();
        if (!p) return;
        std::lock_guard<std::mutex> g(p->mu);
        p->closeReasons.push_back(reason);
        p->closes++;
    }

private:
    std::weak_ptr<Probe> probe_;
};

inline Acceptor::HandlerFactory echoFactory(std::shared_ptr<Probe> probe) {
    return [probe](const std::shared_ptr<Connection>& c) -> std::shared_ptr<ConnectionHandler> {
        {
            std::lock_guard<std::mutex> g(probe->mu);
            probe->loopNames.push_back(c->loop().name());
            probe->conns.push_back(c);
        }
        probe->opened++;
        return std::make_shared<EchoHandler>(probe);
    };
}

// ---- TLS fixtures ---------------------------------------------------------------------

struct Certs {
    std::string dir;
    std::string c1, k1, c2, k2, c3, k3;  // CN=one, CN=two, CN=enc (key encrypted, password "s3cret")
};

inline const Certs& certs() {
    static Certs c = [] {
        Certs r;
        char tmpl[] = "/tmp/sf_test_net_XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        r.dir = tmpl;
        // Removed at exit (static destruction), whatever the test outcome.
        static struct Cleanup {
            std::string dir;
            ~Cleanup() {
                std::error_code ec;
                if (!dir.empty()) std::filesystem::remove_all(dir, ec);
            }
        } cleanup;
        cleanup.dir = r.dir;
        auto gen = [&](const std::string& name, const std::string& cn, bool encrypted) {
            std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 " +
                              std::string(encrypted ? "-passout pass:s3cret " : "-nodes ") + "-keyout " + r.dir + "/" +
                              name + ".key -out " + r.dir + "/" + name + ".crt -days 2 -subj /CN=" + cn +
                              " >/dev/null 2>&1";
            if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl req failed: " + cmd);
        };
        gen("one", "one", false);
        gen("two", "two", false);
        gen("enc", "enc", true);
        r.c1 = r.dir + "/one.crt";
        r.k1 = r.dir + "/one.key";
        r.c2 = r.dir + "/two.crt";
        r.k2 = r.dir + "/two.key";
        r.c3 = r.dir + "/enc.crt";
        r.k3 = r.dir + "/enc.key";
        return r;
    }();
    return c;
}

inline void copyFile(const std::string& from, const std::string& to) {
    // Write aside then rename: the watcher must never see a half-written file as final.
    std::ifstream in(from, std::ios::binary);
    std::ofstream out(to + ".tmp", std::ios::binary);
    out << in.rdbuf();
    out.close();
    if (std::rename((to + ".tmp").c_str(), to.c_str()) != 0) throw std::runtime_error("rename failed");
}

// Blocking OpenSSL client (no verification: self-signed test certs).
class TlsClient {
public:
    explicit TlsClient(int port) {
        ctx_ = SSL_CTX_new(TLS_client_method());
        fd_ = connectTo(port);
        ssl_ = SSL_new(ctx_);
        SSL_set_fd(ssl_, fd_);
        ok_ = SSL_connect(ssl_) == 1;
        if (!ok_) ERR_clear_error();
    }
    ~TlsClient() {
        if (ssl_) SSL_free(ssl_);
        if (fd_ >= 0) ::close(fd_);
        SSL_CTX_free(ctx_);
    }
    bool ok() const { return ok_; }
    std::string peerCN() {
        X509* cert = SSL_get1_peer_certificate(ssl_);
        if (!cert) return "";
        char buf[256] = {0};
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
        X509_free(cert);
        return buf;
    }
    bool write(const std::string& msg) {
        return SSL_write(ssl_, msg.data(), static_cast<int>(msg.size())) == static_cast<int>(msg.size());
    }
    std::string read(size_t n) {
        std::string out;
        char buf[65536];
        while (out.size() < n) {
            int r = SSL_read(ssl_, buf, static_cast<int>(std::min(sizeof buf, n - out.size())));
            if (r <= 0) break;
            out.append(buf, static_cast<size_t>(r));
        }
        return out;
    }
    std::string echo(const std::string& msg) { return write(msg) ? read(msg.size()) : "<write failed>"; }
    void shutdown() { SSL_shutdown(ssl_); }
    int fd() const { return fd_; }

private:
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    int fd_ = -1;
    bool ok_ = false;
};

}  // namespace sf::nettest
