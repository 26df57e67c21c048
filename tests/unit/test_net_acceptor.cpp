// Acceptor on real 127.0.0.1 sockets: round robin over loops, bind errors, a refusing
// factory, a throwing handler.
#include <cppunit/extensions/HelperMacros.h>

#include "net_harness.hpp"

using namespace sf::net;
using namespace sf::nettest;

class AcceptorTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(AcceptorTest);
    CPPUNIT_TEST(roundRobinOverTwoLoops);
    CPPUNIT_TEST(acceptorBindErrorsAreClear);
    CPPUNIT_TEST(factoryRefusalClosesConnection);
    CPPUNIT_TEST(throwingHandlerCostsOnlyItsConnection);
    CPPUNIT_TEST_SUITE_END();

public:
    void roundRobinOverTwoLoops() {
        EventLoop acceptor("acc"), l1("io1"), l2("io2");
        acceptor.start();
        l1.start();
        l2.start();
        auto probe = std::make_shared<Probe>();
        Acceptor l(acceptor, {&l1, &l2}, "127.0.0.1", 0, echoFactory(probe));
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

    void acceptorBindErrorsAreClear() {
        EventLoop loop("io");
        auto probe = std::make_shared<Probe>();
        Acceptor a(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe));
        try {
            Acceptor b(loop, {&loop}, "127.0.0.1", a.port(), echoFactory(probe));
            CPPUNIT_FAIL("second bind to the same port must throw");
        } catch (const std::runtime_error& e) {
            std::string m = e.what();
            CPPUNIT_ASSERT(m.find(std::to_string(a.port())) != std::string::npos);
            CPPUNIT_ASSERT(m.find("in use") != std::string::npos);
        }
        CPPUNIT_ASSERT_THROW(Acceptor(loop, {&loop}, "no.such.host.invalid", 0, echoFactory(probe)), std::runtime_error);
        CPPUNIT_ASSERT_THROW(Acceptor(loop, {&loop}, "127.0.0.1", 70000, echoFactory(probe)), std::invalid_argument);
    }

    void factoryRefusalClosesConnection() {
        EventLoop loop("io");
        loop.start();
        Acceptor l(loop, {&loop}, "127.0.0.1", 0,
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
        Acceptor l(loop, {&loop}, "127.0.0.1", 0,
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
};

CPPUNIT_TEST_SUITE_REGISTRATION(AcceptorTest);
