// sf::json: strict parsing, limits, and output identical to JSON.stringify.
#include <cppunit/extensions/HelperMacros.h>

#include "common/json.hpp"

using sf::json::Value;

class JsonTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(JsonTest);
    CPPUNIT_TEST(roundTripKeepsOrderAndNumbers);
    CPPUNIT_TEST(escapesLikeJsonStringify);
    CPPUNIT_TEST(unicodeEscapesDecode);
    CPPUNIT_TEST(rejectsMalformed);
    CPPUNIT_TEST(depthAndLengthLimits);
    CPPUNIT_TEST(errorsSayWhereAndWhat);
    CPPUNIT_TEST(objectAccess);
    CPPUNIT_TEST(doublesPrintShortest);
    CPPUNIT_TEST_SUITE_END();

public:
    void roundTripKeepsOrderAndNumbers() {
        const std::string src = R"({"z":1,"a":[1.50,-0,2e10,true,false,null],"m":{"k":"v"}})";
        CPPUNIT_ASSERT_EQUAL(src, sf::json::parse(src).dump());
        CPPUNIT_ASSERT_EQUAL(std::string("[1,2]"), sf::json::parse(" [ 1 , 2 ] \n").dump());
    }
    void escapesLikeJsonStringify() {
        Value v(std::string("a\"b\\c\n\t\x01/é"));
        CPPUNIT_ASSERT_EQUAL(std::string("\"a\\\"b\\\\c\\n\\t\\u0001/é\""), v.dump());
    }
    void unicodeEscapesDecode() {
        CPPUNIT_ASSERT_EQUAL(std::string("é😀"), sf::json::parse(R"("\u00e9\ud83d\ude00")").asString());
    }
    void rejectsMalformed() {
        const char* bad[] = {"", "{", "[1,]", "{\"a\":}", "01", "1.", "tru", "\"abc", "{\"a\" 1}", "[1] x", "'x'",
                             "\"\x01\"", "{a:1}", "NaN", "[\"\\q\"]"};
        for (const char* b : bad) {
            Value out;
            std::string err;
            CPPUNIT_ASSERT_MESSAGE(b, !sf::json::tryParse(b, out, err));
            CPPUNIT_ASSERT(!err.empty());
        }
    }
    void depthAndLengthLimits() {
        std::string deep(100, '[');
        deep += std::string(100, ']');
        Value out;
        std::string err;
        CPPUNIT_ASSERT(!sf::json::tryParse(deep, out, err));
        CPPUNIT_ASSERT(err.find("deep") != std::string::npos);
        sf::json::ParseLimits lim;
        lim.maxLength = 4;
        CPPUNIT_ASSERT(!sf::json::tryParse("[1,2,3]", out, err, lim));
    }
    // Offsets, 1-based line/column and a reason that names the slip (config errors use them).
    void errorsSayWhereAndWhat() {
        auto fails = [](const std::string& text) -> sf::json::ParseError {
            try {
                sf::json::parse(text);
            } catch (const sf::json::ParseError& e) {
                return e;
            }
            CPPUNIT_FAIL("parsed: " + text);
            throw;  // not reached
        };
        auto e = fails("{\n  \"a\": [1,\n   2,]}");
        CPPUNIT_ASSERT_EQUAL(size_t(18), e.offset);
        CPPUNIT_ASSERT_EQUAL(3, e.line);
        CPPUNIT_ASSERT_EQUAL(6, e.column);
        CPPUNIT_ASSERT_EQUAL(std::string("unexpected ']', expected a value"), e.reason);
        CPPUNIT_ASSERT_EQUAL(std::string("unexpected ']', expected a value at offset 18"), std::string(e.what()));
        CPPUNIT_ASSERT_EQUAL(std::string("unexpected '#' (comments are not allowed in JSON), expected a key in double quotes"),
                             fails("{ # no\n}").reason);
        CPPUNIT_ASSERT_EQUAL(std::string("unexpected \"'\" (JSON strings use double quotes), expected a value"),
                             fails("['x']").reason);
        CPPUNIT_ASSERT_EQUAL(std::string("unexpected 'x' after the JSON document"), fails("{} x").reason);
        CPPUNIT_ASSERT_EQUAL(std::string("empty JSON document"), fails(" \n").reason);
        CPPUNIT_ASSERT_EQUAL(std::string("invalid escape '\\q'"), fails("\"\\q\"").reason);
        CPPUNIT_ASSERT_EQUAL(std::string("unexpected end of input, expected ',' or '}'"), fails("{\"a\":1").reason);
        CPPUNIT_ASSERT_EQUAL(std::string("invalid number"), fails("[1.]").reason);
        CPPUNIT_ASSERT_EQUAL(size_t(3), fails("[1.]").offset);
        // The same number grammar, for callers that only ask "is this a JSON number?".
        for (const char* yes : {"0", "-0", "12", "1.5", "-1e10", "2E+3", "0.25e-2"}) CPPUNIT_ASSERT_MESSAGE(yes, sf::json::isNumberText(yes));
        for (const char* no : {"", "-", "01", "+1", "1.", ".5", "1e", "1e+", "0x10", "1 ", "NaN", "true"})
            CPPUNIT_ASSERT_MESSAGE(no, !sf::json::isNumberText(no));
    }
    void objectAccess() {
        Value v = sf::json::parse(R"({"topic":"t","n":3})");
        CPPUNIT_ASSERT(v.find("topic") && v.find("topic")->isString());
        CPPUNIT_ASSERT(v.find("missing") == nullptr);
        CPPUNIT_ASSERT(v.find("n")->isInteger());
        v.set("topic", Value("u"));
        v.set("x", Value(true));
        CPPUNIT_ASSERT_EQUAL(std::string(R"({"topic":"u","n":3,"x":true})"), v.dump());
    }
    void doublesPrintShortest() {
        CPPUNIT_ASSERT_EQUAL(std::string("0.1"), Value(0.1).dump());
        CPPUNIT_ASSERT_EQUAL(std::string("42"), Value(42.0).dump());
        CPPUNIT_ASSERT_EQUAL(std::string("null"), Value(0.0 / 0.0).dump());
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(JsonTest);
