// EngineServer in-process: a websocket handshake the server refuses (no Sec-WebSocket-Key)
// gets its 400 and opens no session; the layer above never hears of it. (It once did: the
// refused session started and got a handler that held it for good, a leak per request.)
#include <cppunit/extensions/HelperMacros.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "net/acceptor.hpp"
#include "net/event_loop.hpp"
#include "protocol/engine_io_server.hpp"

using namespace sf;

namespace {

std::string exchange(int port, const std::string& req) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect");
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) throw std::runtime_error("write");
    std::string out;
    char buf[4096];
    ssize_t n;
    // Up to the end of the answer's head: a 101 leaves the connection open.
    while (out.find("\r\n\r\n") == std::string::npos && (n = ::read(fd, buf, sizeof buf)) > 0)
        out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
}

}  // namespace

class EngineHandshakeTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(EngineHandshakeTest);
    CPPUNIT_TEST(refusedUpgradeOpensNoSession);
    CPPUNIT_TEST_SUITE_END();

public:
    void refusedUpgradeOpensNoSession() {
        std::atomic<int> sessions{0};
        eio::Options o;
        eio::EngineServer engine(o, [&sessions](const eio::EngineSessionPtr&) { ++sessions; });
        net::EventLoop loop("handshake");
        loop.start();
        {
            net::Acceptor acceptor(loop, {&loop}, "127.0.0.1", 0,
                                   [&engine](const std::shared_ptr<net::Connection>& c) { return engine.makeHandler(c); });
            acceptor.start();
            const std::string head = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n"
                                     "Upgrade: websocket\r\nConnection: Upgrade\r\n";
            std::string refused = exchange(acceptor.port(), head + "Sec-WebSocket-Version: 13\r\n\r\n");
            CPPUNIT_ASSERT_MESSAGE(refused, refused.rfind("HTTP/1.1 400", 0) == 0);
            // The same request with a key opens one: the count above can move.
            std::string ok = exchange(acceptor.port(), head + "Sec-WebSocket-Version: 13\r\n"
                                                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
            CPPUNIT_ASSERT_MESSAGE(ok, ok.rfind("HTTP/1.1 101", 0) == 0);
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            CPPUNIT_ASSERT_EQUAL(1, sessions.load());
            acceptor.stop();
            engine.closeAll("test over");
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        loop.shutdown();
        loop.join();
        loop.clear();
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(EngineHandshakeTest);
