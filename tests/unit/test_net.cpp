// Network core: event loop (posts, timers, fd watchers), TCP connections through a
// Listener on real 127.0.0.1 sockets, writev batching, backpressure, close semantics,
// and TLS (handshake, echo, hot reload, bad pairs, encrypted keys, file watching).
#include "net/event_loop.hpp"
#include "net/file_watch.hpp"
#include "net/listener.hpp"
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

using namespace sf::net;

namespace {

template <class F>
bool waitFor(F cond, int timeoutMs = 5000) {
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
int connectTo(int port) {
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

void writeAll(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t w = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (w <= 0) throw std::runtime_error("client write failed");
        off += static_cast<size_t>(w);
    }
}

std::string readExactly(int fd, size_t n) {
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
std::string readToEof(int fd, bool& eof) {
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

Listener::HandlerFactory echoFactory(std::shared_ptr<Probe> probe) {
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

const Certs& certs() {
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

void copyFile(const std::string& from, const std::string& to) {
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

}  // namespace

class NetTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(NetTest);
    CPPUNIT_TEST(postOrderFromOtherThreads);
    CPPUNIT_TEST(timersFireInOrderAndCancel);
    CPPUNIT_TEST(manyCancelledTimersDoNotSlowTheLoop);
    CPPUNIT_TEST(zeroDelayTimerFromTimerRunsNextTurn);
    CPPUNIT_TEST(unwatchDuringDispatchSkipsStaleEvent);
    CPPUNIT_TEST(endOfTurnRunsAfterIo);
    CPPUNIT_TEST(echoServer);
    CPPUNIT_TEST(roundRobinOverTwoLoops);
    CPPUNIT_TEST(largeWriteArrivesIntactWithDrain);
    CPPUNIT_TEST(smallSendsInOneTurnUseFewWritev);
    CPPUNIT_TEST(peerCloseFiresOnCloseOnce);
    CPPUNIT_TEST(closeFlushesThenEof);
    CPPUNIT_TEST(abortDropsQueue);
    CPPUNIT_TEST(listenerBindErrorsAreClear);
    CPPUNIT_TEST(factoryRefusalClosesConnection);
    CPPUNIT_TEST(throwingHandlerCostsOnlyItsConnection);
    CPPUNIT_TEST(tlsHandshakeAndEcho);
    CPPUNIT_TEST(tlsLargeWrite);
    CPPUNIT_TEST(tlsSendBeforeHandshakeIsHeld);
    CPPUNIT_TEST(tlsReloadSwapsCertForNewHandshakes);
    CPPUNIT_TEST(tlsReloadMismatchedKeyKeepsOld);
    CPPUNIT_TEST(tlsEncryptedKey);
    CPPUNIT_TEST(tlsBadFilesThrowNamingFile);
    CPPUNIT_TEST(tlsGarbageClientIsClosed);
    CPPUNIT_TEST(tlsWatchFilesReloadsOnChange);
    CPPUNIT_TEST(tlsWatchFilesUsesInotify);
    CPPUNIT_TEST(fileWatchFallsBackToPolling);
    CPPUNIT_TEST_SUITE_END();

public:
    void postOrderFromOtherThreads() {
        EventLoop loop("t");
        loop.start();
        std::vector<std::pair<int, int>> seen;  // loop thread only
        std::atomic<bool> wrongThread{false};
        auto producer = [&](int who) {
            for (int i = 0; i < 5000; ++i)
                loop.post([&, who, i] {
                    if (!loop.inLoopThread()) wrongThread = true;
                    seen.emplace_back(who, i);
                });
        };
        std::thread a(producer, 0), b(producer, 1);
        a.join();
        b.join();
        size_t n = onLoop(loop, [&] { return seen.size(); });
        CPPUNIT_ASSERT_EQUAL(size_t(10000), n);
        CPPUNIT_ASSERT(!wrongThread);
        CPPUNIT_ASSERT(!loop.inLoopThread());
        int last[2] = {-1, -1};
        for (auto& [who, i] : seen) {
            CPPUNIT_ASSERT_EQUAL(last[who] + 1, i);  // each producer's order kept
            last[who] = i;
        }
        loop.stop();
        loop.join();
    }

    void timersFireInOrderAndCancel() {
        EventLoop loop("t");
        loop.start();
        std::vector<int> fired;
        std::atomic<bool> done{false};
        uint64_t start = 0, at30 = 0;
        onLoop(loop, [&] {
            start = loop.nowMs();
            loop.addTimer(30, [&] {
                fired.push_back(30);
                at30 = loop.nowMs();
                done = true;
            });
            loop.addTimer(10, [&] { fired.push_back(10); });
            TimerId c = loop.addTimer(15, [&] { fired.push_back(15); });
            loop.addTimer(20, [&] { fired.push_back(20); });
            loop.addTimer(5, [&, c] { loop.cancelTimer(c); });  // cancel from inside a timer
            loop.cancelTimer(0);  // no-op
        });
        CPPUNIT_ASSERT(waitFor([&] { return done.load(); }));
        auto got = onLoop(loop, [&] { return fired; });
        CPPUNIT_ASSERT((got == std::vector<int>{10, 20, 30}));
        CPPUNIT_ASSERT(at30 - start >= 30);
        loop.stop();
        loop.join();
    }

    void manyCancelledTimersDoNotSlowTheLoop() {
        EventLoop loop("t");
        loop.start();
        std::atomic<bool> fired{false};
        auto t0 = std::chrono::steady_clock::now();
        onLoop(loop, [&] {
            std::vector<TimerId> ids;
            for (int i = 0; i < 200000; ++i) ids.push_back(loop.addTimer(60000 + i, [] {}));
            for (TimerId id : ids) loop.cancelTimer(id);
            loop.addTimer(5, [&] { fired = true; });
        });
        CPPUNIT_ASSERT(waitFor([&] { return fired.load(); }));
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        CPPUNIT_ASSERT(ms < 3000);
        loop.stop();
        loop.join();
    }

    void zeroDelayTimerFromTimerRunsNextTurn() {
        EventLoop loop("t");
        loop.start();
        std::atomic<int> count{0};
        std::function<void()> again;
        again = [&] {
            if (++count < 100) loop.addTimer(0, again);  // must not spin inside one turn
        };
        std::atomic<bool> postRan{false};
        onLoop(loop, [&] { loop.addTimer(0, again); });
        loop.post([&] { postRan = true; });
        CPPUNIT_ASSERT(waitFor([&] { return count.load() == 100 && postRan.load(); }));
        loop.stop();
        loop.join();
    }

    void unwatchDuringDispatchSkipsStaleEvent() {
        EventLoop loop("t");
        int p1[2], p2[2];
        CPPUNIT_ASSERT_EQUAL(0, ::pipe(p1));
        CPPUNIT_ASSERT_EQUAL(0, ::pipe(p2));
        CPPUNIT_ASSERT_EQUAL(ssize_t(1), ::write(p1[1], "x", 1));
        CPPUNIT_ASSERT_EQUAL(ssize_t(1), ::write(p2[1], "x", 1));
        int calls = 0;
        // Whichever fires first removes both (and closes the other's fd): the second event
        // of the same epoll batch must be dropped, not dispatched to a dead watcher.
        auto cb = [&](uint32_t) {
            ++calls;
            loop.unwatch(p1[0]);
            loop.unwatch(p2[0]);
            loop.stop();
        };
        loop.watch(p1[0], EPOLLIN, cb);
        loop.watch(p2[0], EPOLLIN, cb);
        loop.run();
        CPPUNIT_ASSERT_EQUAL(1, calls);
        for (int fd : {p1[0], p1[1], p2[0], p2[1]}) ::close(fd);
    }

    void endOfTurnRunsAfterIo() {
        EventLoop loop("t");
        std::vector<std::string> order;
        loop.post([&] {
            loop.deferToEndOfTurn([&] {
                order.push_back("end1");
                loop.deferToEndOfTurn([&] { order.push_back("end2"); });  // same turn
            });
            order.push_back("post");
            uint64_t a = loop.nowMs();
            std::this_thread::sleep_for(std::chrono::milliseconds(3));
            if (loop.nowMs() == a) order.push_back("cached");  // now is per turn
            loop.post([&] {
                order.push_back("next-turn");
                loop.stop();
            });
        });
        loop.run();
        CPPUNIT_ASSERT((order == std::vector<std::string>{"post", "cached", "end1", "end2", "next-turn"}));
    }

    void echoServer() {
        EventLoop loop("io0");
        loop.start();
        auto probe = std::make_shared<Probe>();
        Listener l(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe));
        CPPUNIT_ASSERT(l.port() > 0);
        CPPUNIT_ASSERT(!l.isTls());
        l.start();
        int fd = connectTo(l.port());
        writeAll(fd, "hello");
        CPPUNIT_ASSERT_EQUAL(std::string("hello"), readExactly(fd, 5));
        writeAll(fd, std::string(100000, 'z'));
        CPPUNIT_ASSERT_EQUAL(std::string(100000, 'z'), readExactly(fd, 100000));
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), l.acceptedCount());
        std::string remote = onLoop(loop, [&] { return probe->conns.at(0)->remoteAddress(); });
        CPPUNIT_ASSERT(remote.rfind("127.0.0.1:", 0) == 0);
        ::close(fd);
        CPPUNIT_ASSERT(waitFor([&] { return probe->closes.load() == 1; }));
        loop.stop();
        loop.join();
    }

    void roundRobinOverTwoLoops() {
        EventLoop acceptor("acc"), l1("io1"), l2("io2");
        acceptor.start();
        l1.start();
        l2.start();
        auto probe = std::make_shared<Probe>();
        Listener l(acceptor, {&l1, &l2}, "127.0.0.1", 0, echoFactory(probe));
        l.start();
        std::vector<int> fds;
        for (int i = 0; i < 4; ++i) {
            fds.push_back(connectTo(l.port()));
            writeAll(fds.back(), "x");
            CPPUNIT_ASSERT_EQUAL(std::string("x"), readExactly(fds.back(), 1));
        }
        std::map<std::string, int> perLoop;
        {
            std::lock_guard<std::mutex> g(probe->mu);
            for (auto& n : probe->loopNames) perLoop[n]++;
        }
        CPPUNIT_ASSERT_EQUAL(2, perLoop["io1"]);
        CPPUNIT_ASSERT_EQUAL(2, perLoop["io2"]);
        for (int fd : fds) ::close(fd);
        CPPUNIT_ASSERT(waitFor([&] { return probe->closes.load() == 4; }));
        l.stop();
        // After stop() the port refuses connections.
        CPPUNIT_ASSERT(waitFor([&] {
            try {
                int fd = connectTo(l.port());
                ::close(fd);
                return false;
            } catch (const std::exception&) {
                return true;
            }
        }));
    }

    void largeWriteArrivesIntactWithDrain() {
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        std::string big(8 << 20, '\0');
        for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131 + i / 4093) & 0xff);
        Buffer shared = makeBuffer(big);
        std::atomic<size_t> bufferedAfterSend{0};
        Listener l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>& c) -> std::shared_ptr<ConnectionHandler> {
            c->setWatermarks(1 << 20, 256 << 10);
            // Three slices of one shared buffer: offsets must be honoured.
            c->sendSlice(shared, 0, 1000);
            c->sendSlice(shared, 1000, 3 << 20);
            c->send(makeBuffer(big.substr(1000 + (3 << 20))));
            bufferedAfterSend = c->bufferedBytes();
            probe->conns.push_back(c);
            return std::make_shared<EchoHandler>(probe);
        });
        l.start();
        int fd = connectTo(l.port());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the server hit a full socket
        size_t midBuffered = onLoop(loop, [&] { return probe->conns.at(0)->bufferedBytes(); });
        CPPUNIT_ASSERT_EQUAL(big.size(), bufferedAfterSend.load());
        CPPUNIT_ASSERT(midBuffered > 0 && midBuffered < big.size());
        CPPUNIT_ASSERT_EQUAL(0, probe->drains.load());  // still above the low watermark
        std::string got = readExactly(fd, big.size());
        CPPUNIT_ASSERT_EQUAL(big.size(), got.size());
        CPPUNIT_ASSERT(got == big);
        CPPUNIT_ASSERT(waitFor([&] { return probe->drains.load() == 1; }));
        CPPUNIT_ASSERT(probe->bufferedAtDrain.load() <= (256u << 10));
        CPPUNIT_ASSERT(waitFor([&] { return onLoop(loop, [&] { return probe->conns[0]->bufferedBytes(); }) == 0; }));
        ::close(fd);
        CPPUNIT_ASSERT(waitFor([&] { return probe->closes.load() == 1; }));
        loop.stop();
        loop.join();
    }

    void smallSendsInOneTurnUseFewWritev() {
        EventLoop loop("io");
        loop.start();
        std::atomic<uint64_t> before{0};
        std::shared_ptr<TcpConnection> conn;
        struct Burst : ConnectionHandler {
            std::atomic<uint64_t>* before;
            void onData(Connection& c, std::string_view) override {
                *before = dynamic_cast<TcpConnection&>(c).writevCalls();
                for (int i = 0; i < 1000; ++i) c.send(std::string("0123456789"));
            }
            void onClose(Connection&, const std::string&) override {}
        };
        Listener l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>& c) {
            conn = std::dynamic_pointer_cast<TcpConnection>(c);
            auto h = std::make_shared<Burst>();
            h->before = &before;
            return h;
        });
        l.start();
        int fd = connectTo(l.port());
        writeAll(fd, "go");
        std::string got = readExactly(fd, 10000);
        CPPUNIT_ASSERT_EQUAL(size_t(10000), got.size());
        uint64_t after = onLoop(loop, [&] { return conn->writevCalls(); });
        // 1000 slices, IOV_MAX 1024: one sendmsg (allow one more for a partial write).
        CPPUNIT_ASSERT(after - before.load() <= 2);
        CPPUNIT_ASSERT(after - before.load() >= 1);
        CPPUNIT_ASSERT_EQUAL(uint64_t(10000), onLoop(loop, [&] { return conn->bytesWritten(); }));
        ::close(fd);
        loop.stop();
        loop.join();
    }

    void peerCloseFiresOnCloseOnce() {
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        Listener l(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe));
        l.start();
        int fd = connectTo(l.port());
        writeAll(fd, "ab");
        CPPUNIT_ASSERT_EQUAL(std::string("ab"), readExactly(fd, 2));
        ::close(fd);
        CPPUNIT_ASSERT(waitFor([&] { return probe->closes.load() >= 1; }));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CPPUNIT_ASSERT_EQUAL(1, probe->closes.load());
        {
            std::lock_guard<std::mutex> g(probe->mu);
            CPPUNIT_ASSERT_EQUAL(std::string("peer closed"), probe->closeReasons.at(0));
        }
        // close()/abort()/send() after the fact are harmless and do not fire again.
        onLoop(loop, [&] {
            auto c = probe->conns.at(0);
            CPPUNIT_ASSERT(!c->isOpen());
            c->send(std::string("late"));
            c->close("again");
            c->abort("again");
        });
        CPPUNIT_ASSERT_EQUAL(1, probe->closes.load());
        loop.stop();
        loop.join();
    }

    void closeFlushesThenEof() {
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        struct SendAndClose : ConnectionHandler {
            std::shared_ptr<Probe> probe;
            void onData(Connection& c, std::string_view) override {
                c.send(std::string(300000, 'q'));
                c.close("bye");
                c.send(std::string("dropped"));  // after close(): not sent
            }
            void onClose(Connection&, const std::string& reason) override {
                std::lock_guard<std::mutex> g(probe->mu);
                probe->closeReasons.push_back(reason);
                probe->closes++;
            }
        };
        Listener l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>&) {
            auto h = std::make_shared<SendAndClose>();
            h->probe = probe;
            return h;
        });
        l.start();
        int fd = connectTo(l.port());
        writeAll(fd, "x");
        bool eof = false;
        std::string got = readToEof(fd, eof);
        CPPUNIT_ASSERT(eof);
        CPPUNIT_ASSERT_EQUAL(size_t(300000), got.size());
        CPPUNIT_ASSERT(got == std::string(300000, 'q'));
        ::close(fd);
        CPPUNIT_ASSERT(waitFor([&] { return probe->closes.load() == 1; }));
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        CPPUNIT_ASSERT_EQUAL(1, probe->closes.load());
        std::lock_guard<std::mutex> g(probe->mu);
        CPPUNIT_ASSERT_EQUAL(std::string("bye"), probe->closeReasons.at(0));
        loop.stop();
        loop.join();
    }

    void abortDropsQueue() {
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        struct Aborter : ConnectionHandler {
            std::shared_ptr<Probe> probe;
            void onData(Connection& c, std::string_view) override {
                c.send(std::string(1 << 20, 'a'));
                c.abort("kicked");
                CPPUNIT_ASSERT_EQUAL(size_t(0), c.bufferedBytes());
            }
            void onClose(Connection& c, const std::string& reason) override {
                CPPUNIT_ASSERT(!c.isOpen());
                std::lock_guard<std::mutex> g(probe->mu);
                probe->closeReasons.push_back(reason);
                probe->closes++;
            }
        };
        Listener l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>&) {
            auto h = std::make_shared<Aborter>();
            h->probe = probe;
            return h;
        });
        l.start();
        int fd = connectTo(l.port());
        writeAll(fd, "x");
        bool eof = false;
        std::string got = readToEof(fd, eof);  // RST: read fails or EOF, nothing delivered
        CPPUNIT_ASSERT(got.empty());
        CPPUNIT_ASSERT(waitFor([&] { return probe->closes.load() == 1; }));
        std::lock_guard<std::mutex> g(probe->mu);
        CPPUNIT_ASSERT_EQUAL(std::string("kicked"), probe->closeReasons.at(0));
        ::close(fd);
        loop.stop();
        loop.join();
    }

    void listenerBindErrorsAreClear() {
        EventLoop loop("io");
        auto probe = std::make_shared<Probe>();
        Listener a(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe));
        try {
            Listener b(loop, {&loop}, "127.0.0.1", a.port(), echoFactory(probe));
            CPPUNIT_FAIL("second bind to the same port must throw");
        } catch (const std::runtime_error& e) {
            std::string m = e.what();
            CPPUNIT_ASSERT(m.find(std::to_string(a.port())) != std::string::npos);
            CPPUNIT_ASSERT(m.find("in use") != std::string::npos);
        }
        CPPUNIT_ASSERT_THROW(Listener(loop, {&loop}, "no.such.host.invalid", 0, echoFactory(probe)), std::runtime_error);
        CPPUNIT_ASSERT_THROW(Listener(loop, {&loop}, "127.0.0.1", 70000, echoFactory(probe)), std::invalid_argument);
    }

    void factoryRefusalClosesConnection() {
        EventLoop loop("io");
        loop.start();
        Listener l(loop, {&loop}, "127.0.0.1", 0,
                   [](const std::shared_ptr<Connection>&) -> std::shared_ptr<ConnectionHandler> { return nullptr; });
        l.start();
        int fd = connectTo(l.port());
        bool eof = false;
        std::string got = readToEof(fd, eof);
        CPPUNIT_ASSERT(got.empty());
        ::close(fd);
        loop.stop();
        loop.join();
    }

    void throwingHandlerCostsOnlyItsConnection() {
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        struct Thrower : EchoHandler {
            using EchoHandler::EchoHandler;
            void onData(Connection& c, std::string_view d) override {
                if (d.find("boom") != std::string_view::npos) throw std::runtime_error("bad input");
                EchoHandler::onData(c, d);
            }
        };
        Listener l(loop, {&loop}, "127.0.0.1", 0,
                   [&](const std::shared_ptr<Connection>&) { return std::make_shared<Thrower>(probe); });
        l.start();
        int good = connectTo(l.port());
        int bad = connectTo(l.port());
        writeAll(bad, "boom");
        bool eof = false;
        CPPUNIT_ASSERT(readToEof(bad, eof).empty());
        CPPUNIT_ASSERT(waitFor([&] { return probe->closes.load() == 1; }));
        {
            std::lock_guard<std::mutex> g(probe->mu);
            CPPUNIT_ASSERT(probe->closeReasons.at(0).find("handler error: bad input") == 0);
        }
        loop.post([] { throw std::runtime_error("posted function failed"); });
        writeAll(good, "still");
        CPPUNIT_ASSERT_EQUAL(std::string("still"), readExactly(good, 5));
        ::close(good);
        ::close(bad);
        loop.stop();
        loop.join();
    }

    void tlsHandshakeAndEcho() {
        const Certs& c = certs();
        auto tls = std::make_shared<TlsContext>(c.c1, c.k1);
        CPPUNIT_ASSERT_EQUAL(std::string("one"), tls->currentSubjectCN());
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        Listener l(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe), tls);
        CPPUNIT_ASSERT(l.isTls());
        l.start();
        {
            TlsClient cl(l.port());
            CPPUNIT_ASSERT(cl.ok());
            CPPUNIT_ASSERT_EQUAL(std::string("one"), cl.peerCN());
            CPPUNIT_ASSERT_EQUAL(std::string("ping"), cl.echo("ping"));
            std::string big(200000, 'k');
            CPPUNIT_ASSERT(cl.echo(big) == big);
            CPPUNIT_ASSERT(onLoop(loop, [&] { return probe->conns.at(0)->isTls(); }));
            cl.shutdown();  // close_notify -> server answers and closes
        }
        CPPUNIT_ASSERT(waitFor([&] { return probe->closes.load() == 1; }));
        loop.stop();
        loop.join();
    }

    void tlsLargeWrite() {
        const Certs& c = certs();
        auto tls = std::make_shared<TlsContext>(c.c1, c.k1, "", "TLSv1.3");
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        std::string big(8 << 20, '\0');
        for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7 + i / 1000) & 0xff);
        struct Sender : ConnectionHandler {
            std::shared_ptr<Probe> probe;
            const std::string* big;
            void onData(Connection& c, std::string_view) override {
                for (size_t off = 0; off < big->size(); off += 1 << 20) c.send(big->substr(off, 1 << 20));
                for (int i = 0; i < 100; ++i) c.send(std::string("small"));
            }
            void onDrain(Connection&) override { probe->drains++; }
            void onClose(Connection&, const std::string&) override { probe->closes++; }
        };
        Listener l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>&) {
            auto h = std::make_shared<Sender>();
            h->probe = probe;
            h->big = &big;
            return h;
        }, tls);
        l.start();
        TlsClient cl(l.port());
        CPPUNIT_ASSERT(cl.ok());
        std::string expect = big;
        for (int i = 0; i < 100; ++i) expect += "small";
        CPPUNIT_ASSERT(cl.write("g"));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the server block on a full socket
        std::string all = cl.read(expect.size());
        CPPUNIT_ASSERT_EQUAL(expect.size(), all.size());
        CPPUNIT_ASSERT(all == expect);
        CPPUNIT_ASSERT(waitFor([&] { return probe->drains.load() == 1; }));
        loop.stop();
        loop.join();
    }

    void tlsSendBeforeHandshakeIsHeld() {
        const Certs& c = certs();
        auto tls = std::make_shared<TlsContext>(c.c1, c.k1);
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        std::atomic<size_t> queued{0};
        Listener l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>& conn) {
            conn->send(std::string("hello before handshake"));  // must wait, encrypted, for the handshake
            queued = conn->bufferedBytes();
            return std::make_shared<EchoHandler>(probe);
        }, tls);
        l.start();
        TlsClient cl(l.port());
        CPPUNIT_ASSERT(cl.ok());
        CPPUNIT_ASSERT_EQUAL(size_t(22), queued.load());
        CPPUNIT_ASSERT_EQUAL(std::string("hello before handshake"), cl.read(22));
        CPPUNIT_ASSERT_EQUAL(std::string("after"), cl.echo("after"));
        loop.stop();
        loop.join();
    }

    void tlsReloadSwapsCertForNewHandshakes() {
        const Certs& c = certs();
        auto tls = std::make_shared<TlsContext>(c.c1, c.k1);
        EventLoop l1("io1"), l2("io2");
        l1.start();
        l2.start();
        auto probe = std::make_shared<Probe>();
        Listener l(l1, {&l1, &l2}, "127.0.0.1", 0, echoFactory(probe), tls);
        l.start();
        TlsClient first(l.port());
        CPPUNIT_ASSERT(first.ok());
        CPPUNIT_ASSERT_EQUAL(std::string("one"), first.peerCN());
        std::string err;
        CPPUNIT_ASSERT(tls->reload(c.c2, c.k2, "", err));
        CPPUNIT_ASSERT(err.empty());
        CPPUNIT_ASSERT_EQUAL(std::string("two"), tls->currentSubjectCN());
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), tls->reloadCount());
        TlsClient second(l.port());
        CPPUNIT_ASSERT(second.ok());
        CPPUNIT_ASSERT_EQUAL(std::string("two"), second.peerCN());
        CPPUNIT_ASSERT_EQUAL(std::string("still here"), first.echo("still here"));
        CPPUNIT_ASSERT_EQUAL(std::string("new"), second.echo("new"));
        l.stop();
    }

    void tlsReloadMismatchedKeyKeepsOld() {
        const Certs& c = certs();
        auto tls = std::make_shared<TlsContext>(c.c1, c.k1);
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        Listener l(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe), tls);
        l.start();
        std::string err;
        CPPUNIT_ASSERT(!tls->reload(c.c2, c.k1, "", err));
        CPPUNIT_ASSERT(err.find("does not match") != std::string::npos);
        CPPUNIT_ASSERT(err.find(c.k1) != std::string::npos);
        CPPUNIT_ASSERT(!tls->reload(c.dir + "/missing.crt", c.k1, "", err));
        CPPUNIT_ASSERT(err.find("missing.crt") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(std::string("one"), tls->currentSubjectCN());
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), tls->reloadCount());
        TlsClient cl(l.port());
        CPPUNIT_ASSERT(cl.ok());
        CPPUNIT_ASSERT_EQUAL(std::string("one"), cl.peerCN());
        CPPUNIT_ASSERT_EQUAL(std::string("ok"), cl.echo("ok"));
        // the configured paths were not replaced by the failed attempt
        CPPUNIT_ASSERT(tls->reload(err));
        CPPUNIT_ASSERT_EQUAL(std::string("one"), tls->currentSubjectCN());
        loop.stop();
        loop.join();
    }

    void tlsEncryptedKey() {
        const Certs& c = certs();
        auto tls = std::make_shared<TlsContext>(c.c3, c.k3, "s3cret");
        CPPUNIT_ASSERT_EQUAL(std::string("enc"), tls->currentSubjectCN());
        try {
            TlsContext bad(c.c3, c.k3, "wrong");
            CPPUNIT_FAIL("wrong password must throw");
        } catch (const std::runtime_error& e) {
            std::string m = e.what();
            CPPUNIT_ASSERT(m.find(c.k3) != std::string::npos);
            CPPUNIT_ASSERT(m.find("wrong password") != std::string::npos);
        }
        try {
            TlsContext bad(c.c3, c.k3);
            CPPUNIT_FAIL("missing password must throw");
        } catch (const std::runtime_error& e) {
            CPPUNIT_ASSERT(std::string(e.what()).find("no password") != std::string::npos);
        }
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        Listener l(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe), tls);
        l.start();
        TlsClient cl(l.port());
        CPPUNIT_ASSERT(cl.ok());
        CPPUNIT_ASSERT_EQUAL(std::string("enc"), cl.peerCN());
        CPPUNIT_ASSERT_EQUAL(std::string("secret"), cl.echo("secret"));
        // reload() re-reads the encrypted key with the stored password
        std::string err;
        CPPUNIT_ASSERT(tls->reload(err));
        loop.stop();
        loop.join();
    }

    void tlsBadFilesThrowNamingFile() {
        const Certs& c = certs();
        auto expectThrow = [](auto fn, const std::string& needle) {
            try {
                fn();
                CPPUNIT_FAIL("expected std::runtime_error mentioning " + needle);
            } catch (const std::runtime_error& e) {
                CPPUNIT_ASSERT_MESSAGE(e.what(), std::string(e.what()).find(needle) != std::string::npos);
            }
        };
        expectThrow([&] { TlsContext t(c.dir + "/nope.crt", c.k1); }, "nope.crt");
        expectThrow([&] { TlsContext t(c.c1, c.dir + "/nope.key"); }, "nope.key");
        expectThrow([&] { TlsContext t(c.k1, c.k1); }, "no PEM certificate");  // key file given as cert
        expectThrow([&] { TlsContext t(c.c1, c.c1); }, "no PEM private key");
        expectThrow([&] { TlsContext t(c.c1, c.k2); }, "does not match");
        expectThrow([&] { TlsContext t(c.c1, c.k1, "", "TLSv1.0"); }, "TLSv1.0");
        // A chain file: leaf + another cert loads (leaf is the first).
        std::string chain = c.dir + "/chain.crt";
        {
            std::ofstream out(chain);
            std::ifstream a(c.c1), b(c.c2);
            out << a.rdbuf() << b.rdbuf();
        }
        TlsContext t(chain, c.k1);
        CPPUNIT_ASSERT_EQUAL(std::string("one"), t.currentSubjectCN());
        // Garbage after the leaf is reported, not ignored.
        std::string bad = c.dir + "/badchain.crt";
        {
            std::ofstream out(bad);
            std::ifstream a(c.c1);
            out << a.rdbuf() << "-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n";
        }
        expectThrow([&] { TlsContext x(bad, c.k1); }, "certificate #2");
    }

    void tlsGarbageClientIsClosed() {
        const Certs& c = certs();
        auto tls = std::make_shared<TlsContext>(c.c1, c.k1);
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        Listener l(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe), tls);
        l.start();
        int fd = connectTo(l.port());
        writeAll(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        bool eof = false;
        readToEof(fd, eof);  // an alert maybe, then EOF
        CPPUNIT_ASSERT(eof);
        ::close(fd);
        CPPUNIT_ASSERT(waitFor([&] { return probe->closes.load() == 1; }));
        {
            std::lock_guard<std::mutex> g(probe->mu);
            CPPUNIT_ASSERT(probe->closeReasons.at(0).find("tls handshake failed") == 0);
        }
        // The server is fine afterwards.
        TlsClient cl(l.port());
        CPPUNIT_ASSERT(cl.ok());
        CPPUNIT_ASSERT_EQUAL(std::string("fine"), cl.echo("fine"));
        loop.stop();
        loop.join();
    }

    void tlsWatchFilesReloadsOnChange() {
        const Certs& c = certs();
        std::string cert = c.dir + "/live.crt", key = c.dir + "/live.key";
        copyFile(c.c1, cert);
        copyFile(c.k1, key);
        auto tls = std::make_shared<TlsContext>(cert, key);
        tls->watchFiles(30);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), tls->reloadCount());  // unchanged files: no reload
        copyFile(c.c2, cert);
        copyFile(c.k2, key);
        CPPUNIT_ASSERT(waitFor([&] { return tls->currentSubjectCN() == "two"; }, 3000));
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), tls->reloadCount());
        // A mismatched pair on disk is refused once; the served cert stays.
        copyFile(c.c1, cert);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        CPPUNIT_ASSERT_EQUAL(std::string("two"), tls->currentSubjectCN());
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), tls->reloadCount());
        // Completing the pair fixes it.
        copyFile(c.k1, key);
        CPPUNIT_ASSERT(waitFor([&] { return tls->currentSubjectCN() == "one"; }, 3000));
        tls->stopWatching();
    }

    // With an interval far beyond the test's patience only inotify can bring the change in,
    // on a machine however loaded: files replaced by rename, then written in place.
    void tlsWatchFilesUsesInotify() {
        const Certs& c = certs();
        std::string dir = c.dir + "/inotify";
        std::filesystem::create_directories(dir);
        std::string cert = dir + "/live.crt", key = dir + "/live.key";
        copyFile(c.c1, cert);
        copyFile(c.k1, key);
        auto tls = std::make_shared<TlsContext>(cert, key);
        tls->watchFiles(600000);
        copyFile(c.c2, cert);
        copyFile(c.k2, key);
        CPPUNIT_ASSERT(waitFor([&] { return tls->currentSubjectCN() == "two"; }, 3000));
        {
            std::ofstream(cert, std::ios::binary | std::ios::trunc) << std::ifstream(c.c1, std::ios::binary).rdbuf();
            std::ofstream(key, std::ios::binary | std::ios::trunc) << std::ifstream(c.k1, std::ios::binary).rdbuf();
        }
        CPPUNIT_ASSERT(waitFor([&] { return tls->currentSubjectCN() == "one"; }, 3000));
        auto t0 = std::chrono::steady_clock::now();
        tls->stopWatching();  // wakes the watch thread, does not wait for the interval
        CPPUNIT_ASSERT(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
    }

    void fileWatchFallsBackToPolling() {
        // A directory inotify cannot watch (it does not exist): the interval tick still runs.
        std::atomic<int> ticks{0}, events{0};
        {
            FileWatch w({"/nonexistent-sf-dir/x.pem"}, 20, 10, [&](bool ev) { (ev ? events : ticks)++; });
            CPPUNIT_ASSERT(!w.usesInotify());
            CPPUNIT_ASSERT(waitFor([&] { return ticks.load() >= 3; }, 3000));
        }
        CPPUNIT_ASSERT_EQUAL(0, events.load());
        int after = ticks.load();
        std::this_thread::sleep_for(std::chrono::milliseconds(60));
        CPPUNIT_ASSERT_EQUAL(after, ticks.load());  // destroyed means stopped
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(NetTest);
