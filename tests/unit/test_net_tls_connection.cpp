// TlsConnection: handshake and echo, large writes, sends held until the handshake, a
// client that speaks garbage.
#include <cppunit/extensions/HelperMacros.h>

#include "net_harness.hpp"

using namespace sf::net;
using namespace sf::nettest;

class TlsConnectionTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(TlsConnectionTest);
    CPPUNIT_TEST(tlsHandshakeAndEcho);
    CPPUNIT_TEST(tlsLargeWrite);
    CPPUNIT_TEST(tlsSendBeforeHandshakeIsHeld);
    CPPUNIT_TEST(tlsGarbageClientIsClosed);
    CPPUNIT_TEST_SUITE_END();

public:
    void tlsHandshakeAndEcho() {
        const Certs& c = certs();
        auto tls = std::make_shared<TlsContext>(c.c1, c.k1);
        CPPUNIT_ASSERT_EQUAL(std::string("one"), tls->currentSubjectCN());
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe), tls);
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
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>&) {
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
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>& conn) {
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

    void tlsGarbageClientIsClosed() {
        const Certs& c = certs();
        auto tls = std::make_shared<TlsContext>(c.c1, c.k1);
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe), tls);
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
};

CPPUNIT_TEST_SUITE_REGISTRATION(TlsConnectionTest);
