// What crosses Redis (host/cluster): our framed records and key names, and the
// @socket.io/redis-emitter msgpack decoder, on bytes the real emitter publishes
// (docs/cluster.md "Socket.IO emitter").
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "cluster/cluster_wire.hpp"
#include "cluster/emitter_decode.hpp"

using namespace sf::cluster;

namespace {

std::string hex(const std::string& h) {
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) {
        while (h[i] == ' ') ++i;
        out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
    }
    return out;
}

// emitter.of('/feed').to('prices').emit('prices', {p: 1}), as published by the emitter.
const std::string kPrices = hex(
    "93a7656d6974746572"
    "83a47479706502a46461746192a6707269636573" "81a17001" "a36e7370a52f66656564"
    "83a5726f6f6d7391a6707269636573a5666c61677380a66578636570749" "0");

}  // namespace

class ClusterCodecTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ClusterCodecTest);
    CPPUNIT_TEST(recordsRoundTrip);
    CPPUNIT_TEST(recordsRejectMalformed);
    CPPUNIT_TEST(keysEscapeTheSeparator);
    CPPUNIT_TEST(emitterMessage);
    CPPUNIT_TEST(emitterArguments);
    CPPUNIT_TEST(emitterRejects);
    CPPUNIT_TEST_SUITE_END();

public:
    void recordsRoundTrip() {
        std::vector<std::string> f = {"node-a", "", std::string("a\0b:c", 5), "{\"p\":1}"};
        auto r = decodeRecord(encodeRecord(f));
        CPPUNIT_ASSERT(r);
        CPPUNIT_ASSERT(*r == f);
        CPPUNIT_ASSERT_EQUAL(std::string("1:a0:"), encodeRecord({"a", ""}));
        CPPUNIT_ASSERT(decodeRecord("") && decodeRecord("")->empty());
    }

    void recordsRejectMalformed() {
        for (const char* bad : {"3:ab", "x:a", ":a", "1a", "99999999999:a", "2:ab3", "01:a", "00:"}) CPPUNIT_ASSERT_MESSAGE(bad, !decodeRecord(bad));
    }

    void keysEscapeTheSeparator() {
        ClusterKeys k{"sf", "main"};
        CPPUNIT_ASSERT_EQUAL(std::string("sf:ch:main:/feed:prices"), k.topicChannel("/feed", "prices"));
        CPPUNIT_ASSERT_EQUAL(std::string("sf:st:main:/feed:a%3Ab%25"), k.topicStream("/feed", "a:b%"));
        CPPUNIT_ASSERT(k.topicChannel("/a:b", "c") != k.topicChannel("/a", "b:c"));
        CPPUNIT_ASSERT_EQUAL(std::string("sf:node:main:node-a"), k.nodeChannel("node-a"));
        CPPUNIT_ASSERT_EQUAL(std::string("sf:clients:main:node-a"), k.clientsKey("node-a"));
    }

    void emitterMessage() {
        EmitterMessage m;
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(err, decodeEmitterMessage(kPrices.data(), kPrices.size(), m, err));
        CPPUNIT_ASSERT_EQUAL(std::string("emitter"), m.uid);
        CPPUNIT_ASSERT_EQUAL(std::string("/feed"), m.nsp);
        CPPUNIT_ASSERT_EQUAL(std::string("prices"), m.event);
        CPPUNIT_ASSERT_EQUAL(std::string("{\"p\":1}"), m.payloadJson);
        CPPUNIT_ASSERT(m.rooms == std::vector<std::string>{"prices"});
        CPPUNIT_ASSERT(m.except.empty());
    }

    void emitterArguments() {
        EmitterMessage m;
        std::string err;
        // [uid, {data: ["e"]}] : no nsp (means "/"), no args (null), no opts.
        std::string none = hex("92a175 81a46461746191a165");
        none = hex("92a17582a47479706502a46461746191a165");
        CPPUNIT_ASSERT_MESSAGE(err, decodeEmitterMessage(none.data(), none.size(), m, err));
        CPPUNIT_ASSERT_EQUAL(std::string("/"), m.nsp);
        CPPUNIT_ASSERT_EQUAL(std::string("null"), m.payloadJson);
        // two arguments -> an array; -1, 1.5, true, nil; integer rooms (opts keys in the adapter's order)
        std::string two = hex("93a175 82a47479706502a46461746193a165 ff 94cb3ff8000000000000c3c0a178"
                              "83a5726f6f6d7392cd0400a172a6657863657074 91a178 a5666c616773 80");
        CPPUNIT_ASSERT_MESSAGE(err, decodeEmitterMessage(two.data(), two.size(), m, err));
        CPPUNIT_ASSERT_EQUAL(std::string("[-1,[1.5,true,null,\"x\"]]"), m.payloadJson);
        CPPUNIT_ASSERT((m.rooms == std::vector<std::string>{"1024", "r"}));
        CPPUNIT_ASSERT(m.except == std::vector<std::string>{"x"});
    }

    void emitterRejects() {
        struct Case {
            std::string bytes;
            std::string why;
        };
        const Case cases[] = {
            {"", "not msgpack"},
            {hex("c1"), "not msgpack"},
            {kPrices + "x", "trailing bytes after the message"},
            {hex("91a175"), "expected an array [uid, packet, opts]"},
            {hex("92a17581a47479706503"), "packet.type must be 2 (EVENT)"},
            {hex("92a17582a47479706502a46461746190"), "packet.data must be a non-empty array [event, ...args]"},
            // emitter.emit('bin', Buffer[1,2,3])
            {hex("92a17582a47479706502a46461746192a362696ec403010203"), "binary arguments are not supported"},
            {hex("92a17582a47479706502a46461746192a165 81 01 02"), "an object key must be a string"},
            {hex("92a17582a47479706502a46461746192a165 d6ff00000001"), "msgpack extension types (dates) are not supported"},
        };
        for (const Case& c : cases) {
            EmitterMessage m;
            std::string err;
            CPPUNIT_ASSERT(!decodeEmitterMessage(c.bytes.data(), c.bytes.size(), m, err));
            CPPUNIT_ASSERT_MESSAGE(err + " / " + c.why, err.compare(0, c.why.size(), c.why) == 0);
        }
        // Nesting deeper than the limit is refused, not recursed into.
        std::string deep = hex("92a17582a47479706502a46461746192a165");
        std::string nest(100, '\x91');
        nest += '\xc0';
        deep += nest;
        EmitterMessage m;
        std::string err;
        CPPUNIT_ASSERT(!decodeEmitterMessage(deep.data(), deep.size(), m, err));
        EmitterLimits small;
        small.maxBytes = 10;
        CPPUNIT_ASSERT(!decodeEmitterMessage(kPrices.data(), kPrices.size(), m, err, small));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ClusterCodecTest);
