// The per-address table (net/address_limiter): caps, the connection-rate bucket, release,
// and the bound on remembered addresses under a spray of sources.
#include <cppunit/extensions/HelperMacros.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "net/address_limiter.hpp"

using sf::net::AddressLimiter;
using V = AddressLimiter::Verdict;

namespace {
AddressLimiter::Key v4(const std::string& ip) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    return AddressLimiter::keyOf(&a);
}
AddressLimiter::Key v6(const std::string& ip) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    ::inet_pton(AF_INET6, ip.c_str(), &a.sin6_addr);
    return AddressLimiter::keyOf(&a);
}
}  // namespace

class AddressLimiterTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(AddressLimiterTest);
    CPPUNIT_TEST(capsAndRelease);
    CPPUNIT_TEST(rateBucket);
    CPPUNIT_TEST(sprayStaysBounded);
    CPPUNIT_TEST(keys);
    CPPUNIT_TEST_SUITE_END();

public:
    void capsAndRelease() {
        AddressLimiter::Limits l;
        l.maxConnections = 3;
        l.maxPerAddress = 2;
        AddressLimiter t(l);
        auto a = v4("10.0.0.1"), b = v4("10.0.0.2");
        CPPUNIT_ASSERT(t.admit(a, 0) == V::Admitted);
        CPPUNIT_ASSERT(t.admit(a, 0) == V::Admitted);
        CPPUNIT_ASSERT(t.admit(a, 0) == V::TooManyFromAddress);
        CPPUNIT_ASSERT(t.admit(b, 0) == V::Admitted);
        CPPUNIT_ASSERT(t.admit(b, 0) == V::TooMany);
        CPPUNIT_ASSERT_EQUAL(uint64_t(3), t.open());
        t.release(a);
        CPPUNIT_ASSERT(t.admit(a, 0) == V::Admitted);
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), t.refused(V::TooManyFromAddress));
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), t.refused(V::TooMany));
        // Loopback exempt from the per-address cap, not from the global one.
        AddressLimiter::Limits e = l;
        e.maxConnections = 0;
        e.exemptLoopback = true;
        AddressLimiter x(e);
        for (int i = 0; i < 5; ++i) CPPUNIT_ASSERT(x.admit(v4("127.0.0.1"), 0) == V::Admitted);
        for (int i = 0; i < 5; ++i) x.release(v4("127.0.0.1"));
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), x.open());
        CPPUNIT_ASSERT_EQUAL(size_t(0), x.entries());
    }

    void rateBucket() {
        AddressLimiter::Limits l;
        l.ratePerSecond = 5;
        l.burst = 10;
        AddressLimiter t(l);
        auto a = v4("10.0.0.1");
        int admitted = 0;
        for (int i = 0; i < 30; ++i)
            if (t.admit(a, 1000) == V::Admitted) ++admitted;
        CPPUNIT_ASSERT_EQUAL(10, admitted);
        CPPUNIT_ASSERT(t.admit(v4("10.0.0.2"), 1000) == V::Admitted);  // another address
        CPPUNIT_ASSERT(t.admit(a, 1100) == V::TooFast);                // half a token
        CPPUNIT_ASSERT(t.admit(a, 1200) == V::Admitted);               // one token after 200 ms
        uint64_t retry = 0;
        AddressLimiter r(l);
        for (int i = 0; i < 10; ++i) CPPUNIT_ASSERT(r.takeToken(a, 0, retry));
        CPPUNIT_ASSERT(!r.takeToken(a, 0, retry));
        CPPUNIT_ASSERT_EQUAL(uint64_t(200), retry);
    }

    void sprayStaysBounded() {
        AddressLimiter::Limits l;
        l.maxPerAddress = 10;
        l.ratePerSecond = 100;
        l.burst = 200;
        l.maxIdleEntries = 50;
        AddressLimiter t(l);
        // 10,000 sources, each connecting and leaving: only the last 50 are remembered.
        for (int i = 0; i < 10000; ++i) {
            auto k = v4("10." + std::to_string(i / 65536) + "." + std::to_string((i / 256) % 256) + "." + std::to_string(i % 256));
            CPPUNIT_ASSERT(t.admit(k, 0) == V::Admitted);
            t.release(k);
            CPPUNIT_ASSERT(t.entries() <= 50);
        }
        // Addresses with open connections are never forgotten (their release must find them).
        for (int i = 0; i < 100; ++i) CPPUNIT_ASSERT(t.admit(v4("11.0.0." + std::to_string(i)), 0) == V::Admitted);
        CPPUNIT_ASSERT(t.entries() <= 150);
        for (int i = 0; i < 100; ++i) t.release(v4("11.0.0." + std::to_string(i)));
        CPPUNIT_ASSERT_EQUAL(size_t(50), t.entries());
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), t.open());
        // Control-style token takes are bounded the same way.
        for (int i = 0; i < 1000; ++i) {
            uint64_t retry = 0;
            t.takeToken(v4("12.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)), 0, retry);
        }
        CPPUNIT_ASSERT_EQUAL(size_t(50), t.entries());
    }

    void keys() {
        CPPUNIT_ASSERT(v4("127.1.2.3").loopback);
        CPPUNIT_ASSERT(!v4("10.0.0.1").loopback);
        CPPUNIT_ASSERT(v6("::1").loopback);
        CPPUNIT_ASSERT(v6("::ffff:127.0.0.1").loopback);
        CPPUNIT_ASSERT(v6("::ffff:10.0.0.1").bytes == v4("10.0.0.1").bytes);
        // One /64 is one address.
        CPPUNIT_ASSERT(v6("2001:db8:1:2::1").bytes == v6("2001:db8:1:2:ffff::9").bytes);
        CPPUNIT_ASSERT(v6("2001:db8:1:2::1").bytes != v6("2001:db8:1:3::1").bytes);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(AddressLimiterTest);
