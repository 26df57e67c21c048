// The coalesce key of a payload (delivery/message.hpp): JSON values compare by type and
// value, and a payload without the key field gets the empty key (its own entry).
#include <cppunit/extensions/HelperMacros.h>

#include <set>

#include "common/json.hpp"
#include "delivery/message.hpp"

using namespace sf::delivery;
namespace json = sf::json;

namespace {
std::string keyOf(const std::string& payloadJson, const std::string& field = "k") {
    return coalesceKeyOf(json::parse(payloadJson), field, "t");
}
}  // namespace

class DeliveryMessageTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DeliveryMessageTest);
    CPPUNIT_TEST(typesAreDistinctKeys);
    CPPUNIT_TEST(equalValuesAreOneKey);
    CPPUNIT_TEST(missingFieldIsNoKey);
    CPPUNIT_TEST(noCoalesceKeyMeansTopic);
    CPPUNIT_TEST_SUITE_END();

public:
    void typesAreDistinctKeys() {
        std::set<std::string> keys;
        for (auto p : {R"({"k":1})", R"({"k":"1"})", R"({"k":true})", R"({"k":false})", R"({"k":"true"})",
                       R"({"k":null})", R"({"k":"null"})", R"({"k":[1]})", R"({"k":"[1]"})", R"({"k":{"a":1}})",
                       R"({"k":"t"})", R"({"k":""})"}) {
            std::string k = keyOf(p);
            CPPUNIT_ASSERT_MESSAGE(p, !k.empty());
            CPPUNIT_ASSERT_MESSAGE(p, keys.insert(k).second);
        }
        // Binary cannot pose as any JSON value.
        json::Value bin = json::Value::object();
        bin.set("k", json::Value::binary("1"));
        std::string bk = coalesceKeyOf(bin, "k", "t");
        CPPUNIT_ASSERT(!bk.empty() && !keys.count(bk));
        CPPUNIT_ASSERT(bk != keyOf(R"({"k":"\u0001"})"));
    }

    void equalValuesAreOneKey() {
        CPPUNIT_ASSERT_EQUAL(keyOf(R"({"k":1,"v":1})"), keyOf(R"({"v":2,"k":1})"));
        CPPUNIT_ASSERT_EQUAL(keyOf(R"({"k":1})"), keyOf(R"({"k":1.0})"));
        CPPUNIT_ASSERT_EQUAL(keyOf(R"({"k":100})"), keyOf(R"({"k":1e2})"));
        CPPUNIT_ASSERT_EQUAL(keyOf(R"({"k":0.5})"), keyOf(R"({"k":5e-1})"));
        CPPUNIT_ASSERT(keyOf(R"({"k":0.1})") != keyOf(R"({"k":0.10000000000000002})"));
        CPPUNIT_ASSERT_EQUAL(keyOf(R"({"k":"ACME"})"), keyOf(R"({"k":"ACME","p":3})"));
        CPPUNIT_ASSERT_EQUAL(keyOf(R"({"k":{"a":1,"b":[true,null]}})"), keyOf(R"({"k":{"b":[true,null],"a":1.0}})"));
        CPPUNIT_ASSERT(keyOf(R"({"k":[1,2]})") != keyOf(R"({"k":[2,1]})"));
        CPPUNIT_ASSERT_EQUAL(std::string("\"ACME\""), keyOf(R"({"k":"ACME"})"));
    }

    void missingFieldIsNoKey() {
        CPPUNIT_ASSERT_EQUAL(std::string(), keyOf(R"({"v":1})"));
        CPPUNIT_ASSERT_EQUAL(std::string(), keyOf(R"({"K":1})"));
        CPPUNIT_ASSERT_EQUAL(std::string(), keyOf(R"([1,2])"));
        CPPUNIT_ASSERT_EQUAL(std::string(), keyOf(R"("k")"));
        CPPUNIT_ASSERT_EQUAL(std::string(), keyOf(R"(7)"));
        CPPUNIT_ASSERT_EQUAL(std::string(), keyOf(R"({"v":{"k":1}})"));  // top level only
    }

    void noCoalesceKeyMeansTopic() {
        CPPUNIT_ASSERT_EQUAL(std::string("t"), coalesceKeyOf(json::parse(R"({"k":1})"), "", "t"));
        CPPUNIT_ASSERT_EQUAL(std::string("t"), coalesceKeyOf(json::parse(R"(3)"), "", "t"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DeliveryMessageTest);
