// TcpConnection: echo, writev batching, backpressure and drains, close semantics.
#include <cppunit/extensions/HelperMacros.h>

#include "net_harness.hpp"

using namespace sf::net;
using namespace sf::nettest;

class TcpConnectionTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(TcpConnectionTest);
    CPPUNIT_TEST(echoServer);
    CPPUNIT_TEST(largeWriteArrivesIntactWithDrain);
    CPPUNIT_TEST(watchDrainWithoutHighMark);
    CPPUNIT_TEST(smallSendsInOneTurnUseFewWritev);
    CPPUNIT_TEST(peerCloseFiresOnCloseOnce);
    CPPUNIT_TEST(closeFlushesThenEof);
    CPPUNIT_TEST(abortDropsQueue);
    CPPUNIT_TEST_SUITE_END();

public:
    void echoServer() {
        EventLoop loop("io0");
        loop.start();
        auto probe = std::make_shared<Probe>();
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe));
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

    void largeWriteArrivesIntactWithDrain() {
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        std::string big(8 << 20, '\0');
        for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131 + i / 4093) & 0xff);
        Buffer shared = makeBuffer(big);
        std::atomic<size_t> bufferedAfterSend{0};
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>& c) -> std::shared_ptr<ConnectionHandler> {
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

    // A sender that judged "full" by its own count asks for the drain: it comes even though
    // the queue never reached the connection's high mark, and at once on an empty queue.
    void watchDrainWithoutHighMark() {
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        std::string part(100 << 10, 'w');
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>& c) -> std::shared_ptr<ConnectionHandler> {
            c->setWatermarks(1 << 20, 256 << 10);
            c->send(std::string(part));
            c->watchDrain();
            probe->conns.push_back(c);
            return std::make_shared<EchoHandler>(probe);
        });
        l.start();
        int fd = connectTo(l.port());
        CPPUNIT_ASSERT_EQUAL(part.size(), readExactly(fd, part.size()).size());
        CPPUNIT_ASSERT(waitFor([&] { return probe->drains.load() == 1; }));
        onLoop(loop, [&] {
            probe->conns.at(0)->watchDrain();  // nothing queued: reported at the end of the turn
            return 0;
        });
        CPPUNIT_ASSERT(waitFor([&] { return probe->drains.load() == 2; }));
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
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>& c) {
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
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe));
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
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>&) {
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
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, [&](const std::shared_ptr<Connection>&) {
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
};

CPPUNIT_TEST_SUITE_REGISTRATION(TcpConnectionTest);
