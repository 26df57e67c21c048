// SourceMark: how a config position prints.
#include <cppunit/extensions/HelperMacros.h>

#include "config_harness.hpp"

using namespace sf::config;
using namespace sf::configtest;

class SourceMarkTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(SourceMarkTest);
    CPPUNIT_TEST(sourceMarkStr);
    CPPUNIT_TEST_SUITE_END();

public:
    void sourceMarkStr() {
        SourceMark m;
        CPPUNIT_ASSERT_EQUAL(std::string(""), m.str());
        m.keyPath = "servers.a.port";
        CPPUNIT_ASSERT_EQUAL(std::string("servers.a.port"), m.str());
        m.file = "f.yaml";
        CPPUNIT_ASSERT_EQUAL(std::string("f.yaml: servers.a.port"), m.str());
        m.line = 14;
        m.column = 9;
        CPPUNIT_ASSERT_EQUAL(std::string("f.yaml:14:9: servers.a.port"), m.str());
        m.keyPath.clear();
        CPPUNIT_ASSERT_EQUAL(std::string("f.yaml:14:9"), m.str());
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(SourceMarkTest);
