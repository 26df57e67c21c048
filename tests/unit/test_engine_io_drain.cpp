// EngineServer in-process: the drain guarantee of EngineSessionHandler::onDrain. A sender
// that saw bufferedBytes() at the high watermark gets one onDrain once the queue is down,
// also when the connection's own queue never reached the high mark (a websocket on another
// loop whose bytes were counted while in transit).
#include <cppunit/extensions/HelperMacros.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "net/acceptor.hpp"
#include "net/event_loop.hpp"
#include "protocol/engine_io_server.hpp"
#include "raw_ws.hpp"

using namespace sf;

namespace {

constexpr size_t kHigh = 64 * 1024;
constexpr size_t kLow = 16 * 1024;

// What the session side saw, for the test thread.
struct Log {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> lines;
    void add(std::string s) {
        std::lock_guard<std::mutex> g(mu);
        lines.push_back(std::move(s));
        cv.notify_all();
    }
    bool waitFor(const std::string& prefix, int ms = 3000) {
        std::unique_lock<std::mutex> g(mu);
        return cv.wait_for(g, std::chrono::milliseconds(ms), [&] {
            for (auto& l : lines)
                if (l.rfind(prefix, 0) == 0) return true;
            return false;
        });
    }
};

// On "go": one 40 KiB message, then (once it has reached its connection) 30 KiB messages
// until backpressured(). The second one is enough: 30 KiB in transit + 40 KiB as last
// seen on the connection, while the connection itself never holds 64 KiB.
class Flooder final : public eio::EngineSessionHandler, public std::enable_shared_from_this<Flooder> {
public:
    explicit Flooder(Log& log) : log_(log) {}
    void onMessage(eio::EngineSession& s, std::string&& data, bool) override {
        if (data != "go") return;
        s.sendText(std::string(40000, 'a'));
        auto sp = std::static_pointer_cast<eio::EngineSession>(s.shared_from_this());
        Log* log = &log_;
        s.loop().addTimer(200, [sp, log] {
            int n = 0;
            while (!sp->backpressured() && n < 100) {
                sp->sendText(std::string(30000, 'b'));
                ++n;
            }
            log->add("full " + std::to_string(n));
        });
    }
    void onClose(eio::EngineSession&, const std::string&) override {}
    void onDrain(eio::EngineSession&) override { log_.add("drain"); }

private:
    Log& log_;
};

// One request on its own connection (Connection: close), the whole answer back.
std::string httpRequest(int port, const std::string& method, const std::string& target, const std::string& body = {}) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect");
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    if (!body.empty()) req += "Content-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) throw std::runtime_error("write");
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
}

std::string sidOf(const std::string& openAnswer) {
    size_t at = openAnswer.find("0{\"sid\":\"");
    return at == std::string::npos ? std::string() : openAnswer.substr(at + 9, 20);
}

class EngineDrainTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(EngineDrainTest);
    CPPUNIT_TEST(drainAfterHighAcrossLoops);
    CPPUNIT_TEST(drainAfterHighSameLoop);
    CPPUNIT_TEST(drainAfterHighOnPolling);
    CPPUNIT_TEST_SUITE_END();

    // A polling handshake, then a websocket upgrade on a second connection: with two
    // loops the acceptor hands the two connections to different loops.
    void run(int loopsN) {
        Log log;
        eio::Options o;
        o.highWaterBytes = kHigh;
        o.lowWaterBytes = kLow;
        o.pingIntervalMs = 30000;
        eio::EngineServer engine(o, [&log](const eio::EngineSessionPtr& s) { s->setHandler(std::make_shared<Flooder>(log)); });
        std::vector<std::unique_ptr<net::EventLoop>> loops;
        std::vector<net::EventLoop*> io;
        for (int i = 0; i < loopsN; ++i) {
            loops.push_back(std::make_unique<net::EventLoop>("drain-io" + std::to_string(i)));
            io.push_back(loops.back().get());
        }
        for (auto& l : loops) l->start();
        {
            net::Acceptor acceptor(*io[0], io, "127.0.0.1", 0,
                                   [&engine](const std::shared_ptr<net::Connection>& c) { return engine.makeHandler(c); });
            acceptor.start();
            std::string open = httpRequest(acceptor.port(), "GET", "/socket.io/?EIO=4&transport=polling");
            std::string sid = sidOf(open);
            CPPUNIT_ASSERT_MESSAGE(open, !sid.empty());
            test::RawWs ws(acceptor.port(), "EIO=4&transport=websocket&sid=" + sid);
            CPPUNIT_ASSERT(ws.status().find("101") != std::string::npos);
            ws.send("2probe");
            CPPUNIT_ASSERT_EQUAL(std::string("3probe"), ws.next());
            ws.send("5");
            ws.send("4go");
            CPPUNIT_ASSERT_EQUAL(size_t(40001), ws.next().size());
            CPPUNIT_ASSERT(log.waitFor("full "));
            int n = 0;
            {
                std::lock_guard<std::mutex> g(log.mu);
                for (auto& l : log.lines)
                    if (l.rfind("full ", 0) == 0) n = std::stoi(l.substr(5));
            }
            CPPUNIT_ASSERT(n >= 1);
            for (int i = 0; i < n; ++i) CPPUNIT_ASSERT_EQUAL(size_t(30001), ws.next().size());
            CPPUNIT_ASSERT_MESSAGE("no onDrain after the sender saw the high mark", log.waitFor("drain", 3000));
            acceptor.stop();
            engine.closeAll("test over");
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        for (auto& l : loops) l->stop();
        for (auto& l : loops) l->join();
    }

public:
    void drainAfterHighAcrossLoops() { run(2); }
    void drainAfterHighSameLoop() { run(1); }

    // Polling: the queue is the payload waiting for the next GET; that GET drains it.
    void drainAfterHighOnPolling() {
        Log log;
        eio::Options o;
        o.highWaterBytes = kHigh;
        o.lowWaterBytes = kLow;
        o.pingIntervalMs = 30000;
        eio::EngineServer engine(o, [&log](const eio::EngineSessionPtr& s) { s->setHandler(std::make_shared<Flooder>(log)); });
        net::EventLoop loop("drain-poll");
        loop.start();
        {
            net::Acceptor acceptor(loop, {&loop}, "127.0.0.1", 0,
                                   [&engine](const std::shared_ptr<net::Connection>& c) { return engine.makeHandler(c); });
            acceptor.start();
            std::string q = "/socket.io/?EIO=4&transport=polling";
            std::string sid = sidOf(httpRequest(acceptor.port(), "GET", q));
            CPPUNIT_ASSERT(!sid.empty());
            std::string posted = httpRequest(acceptor.port(), "POST", q + "&sid=" + sid, "4go");
            CPPUNIT_ASSERT_MESSAGE(posted, posted.find("200 OK") != std::string::npos);
            CPPUNIT_ASSERT(log.waitFor("full "));
            CPPUNIT_ASSERT(!log.waitFor("drain", 300));  // nobody has collected the payload yet
            std::string got = httpRequest(acceptor.port(), "GET", q + "&sid=" + sid);
            CPPUNIT_ASSERT_MESSAGE(got.substr(0, 200), got.find(std::string(40000, 'a')) != std::string::npos);
            CPPUNIT_ASSERT_MESSAGE("no onDrain after the polling payload went out", log.waitFor("drain", 3000));
            acceptor.stop();
            engine.closeAll("test over");
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        loop.stop();
        loop.join();
    }
};

}  // namespace

CPPUNIT_TEST_SUITE_REGISTRATION(EngineDrainTest);
