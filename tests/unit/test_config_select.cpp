// selectServers / findServer: which servers of a config to run.
#include <cppunit/extensions/HelperMacros.h>

#include "config_harness.hpp"

using namespace sf::config;
using namespace sf::configtest;

class SelectServersTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SelectServersTest);
    CPPUNIT_TEST(selectAndFind);
    CPPUNIT_TEST_SUITE_END();

public:
    void selectAndFind() {
        Config c = yaml("servers:\n  a: {namespaces: [{path: /a, topics: [t]}]}\n  b: {namespaces: [{path: /a, topics: [t]}]}\n");
        CPPUNIT_ASSERT(findServer(c, "b") == &c.servers[1]);
        CPPUNIT_ASSERT(findServer(c, "c") == nullptr);
        auto all = selectServers(c, "");
        CPPUNIT_ASSERT_EQUAL(size_t(2), all.size());
        CPPUNIT_ASSERT(all[0] == &c.servers[0] && all[1] == &c.servers[1]);
        auto one = selectServers(c, "b");
        CPPUNIT_ASSERT_EQUAL(size_t(1), one.size());
        CPPUNIT_ASSERT_EQUAL(std::string("b"), one[0]->name);
        try {
            selectServers(c, "x");
            CPPUNIT_FAIL("expected ConfigError");
        } catch (const ConfigError& e) {
            CPPUNIT_ASSERT_EQUAL(std::string("No server named \"x\" found in config (available: a, b)"), std::string(e.what()));
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SelectServersTest);
