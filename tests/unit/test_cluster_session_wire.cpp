// Recovery across nodes on the wire (host/cluster/session_wire, host/delivery/stream_id):
// session records and hand-overs round trip byte for byte, anything malformed is refused,
// stream ids order as Redis orders them (docs/cluster.md "Recovery across nodes").
#include <cppunit/extensions/HelperMacros.h>

#include <string>

#include "cluster/cluster_wire.hpp"
#include "cluster/session_wire.hpp"
#include "delivery/stream_id.hpp"

using namespace sf;
using namespace sf::cluster;

class ClusterSessionWireTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ClusterSessionWireTest);
    CPPUNIT_TEST(recordRoundTrip);
    CPPUNIT_TEST(recordRefusesMalformed);
    CPPUNIT_TEST(ownerPrefixMatchesOnlyItsOwner);
    CPPUNIT_TEST(handOverRoundTrip);
    CPPUNIT_TEST(handOverRefusesMalformed);
    CPPUNIT_TEST(streamIdsOrderLikeRedis);
    CPPUNIT_TEST_SUITE_END();

    static delivery::HandedMessage msg(std::string topic, std::string id, std::string stream, std::string payload,
                                       uint32_t retries = 0, std::vector<std::string> att = {}) {
        delivery::HandedMessage m;
        m.topic = std::move(topic);
        m.messageId = std::move(id);
        m.streamId = std::move(stream);
        m.payloadJson = std::move(payload);
        m.retries = retries;
        m.attachments = std::move(att);
        return m;
    }

public:
    void recordRoundTrip() {
        delivery::RemoteSessionRecord r;
        r.node = "node-a";
        r.ns = "/feed";
        r.id = "abc";
        r.principal = "alice:with\ncolon";
        // more topics than a pub/sub record's field cap: a session may subscribe to many
        for (int i = 0; i < 100; ++i) r.topics.emplace_back("t" + std::to_string(i), i % 2 ? "(1-" + std::to_string(i) : "");
        auto back = decodeSessionRecord(encodeSessionRecord(r));
        CPPUNIT_ASSERT(back);
        CPPUNIT_ASSERT_EQUAL(r.node, back->node);
        CPPUNIT_ASSERT_EQUAL(r.ns, back->ns);
        CPPUNIT_ASSERT_EQUAL(r.id, back->id);
        CPPUNIT_ASSERT_EQUAL(r.principal, back->principal);
        CPPUNIT_ASSERT(r.topics == back->topics);
        CPPUNIT_ASSERT_EQUAL(encodeSessionRecord(r), encodeSessionRecord(*back));
    }

    void recordRefusesMalformed() {
        CPPUNIT_ASSERT(!decodeSessionRecord(""));
        CPPUNIT_ASSERT(!decodeSessionRecord(encodeRecord({"node", "/ns", "id"})));              // no principal
        CPPUNIT_ASSERT(!decodeSessionRecord(encodeRecord({"node", "/ns", "id", "", "topic"})));  // topic without floor
        CPPUNIT_ASSERT(!decodeSessionRecord(encodeRecord({"", "/ns", "id", ""})));              // no owner
        CPPUNIT_ASSERT(!decodeSessionRecord(encodeRecord({"n", "/ns", "id", "", "", "1-1"})));  // empty topic
        std::string good = encodeSessionRecord(delivery::RemoteSessionRecord{"", "n", "/ns", "id", "", {{"t", ""}}});
        CPPUNIT_ASSERT(decodeSessionRecord(good));
        CPPUNIT_ASSERT(!decodeSessionRecord(good.substr(0, good.size() - 1)));  // truncated
    }

    void ownerPrefixMatchesOnlyItsOwner() {
        delivery::RemoteSessionRecord r{"", "node-a", "/ns", "id", "", {}};
        const std::string v = encodeSessionRecord(r);
        CPPUNIT_ASSERT(v.compare(0, sessionRecordOwnerPrefix("node-a").size(), sessionRecordOwnerPrefix("node-a")) == 0);
        // "node-ab" is another node, not a longer match of "node-a"
        const std::string p = sessionRecordOwnerPrefix("node-ab");
        CPPUNIT_ASSERT(v.compare(0, p.size(), p) != 0);
    }

    void handOverRoundTrip() {
        delivery::HandOver h;
        h.ownerHeld = true;
        h.spillLost = 7;
        for (int i = 0; i < 300; ++i) h.pending.push_back(msg("t", "msg-x-" + std::to_string(i), "", "{\"i\":" + std::to_string(i) + "}", i % 3));
        h.pending.push_back(msg("b", "msg-x-b", "1700-3", "{\"_placeholder\":true,\"num\":0}", 2, {std::string("\0\xff\x01", 3)}));
        h.history.push_back(msg("t", "msg-y-1", "", "[1,2]"));
        auto back = decodeHandOver(encodeHandOver(h));
        CPPUNIT_ASSERT(back);
        CPPUNIT_ASSERT(back->ownerAnswered && back->ownerHeld);
        CPPUNIT_ASSERT_EQUAL(uint64_t(7), back->spillLost);
        CPPUNIT_ASSERT_EQUAL(h.pending.size(), back->pending.size());
        CPPUNIT_ASSERT_EQUAL(size_t(1), back->history.size());
        for (size_t i = 0; i < h.pending.size(); ++i) {
            CPPUNIT_ASSERT_EQUAL(h.pending[i].messageId, back->pending[i].messageId);
            CPPUNIT_ASSERT_EQUAL(h.pending[i].payloadJson, back->pending[i].payloadJson);
            CPPUNIT_ASSERT_EQUAL(h.pending[i].retries, back->pending[i].retries);
            CPPUNIT_ASSERT(h.pending[i].attachments == back->pending[i].attachments);
        }
        CPPUNIT_ASSERT_EQUAL(std::string("1700-3"), back->pending.back().streamId);
        CPPUNIT_ASSERT_EQUAL(encodeHandOver(h), encodeHandOver(*back));
    }

    void handOverRefusesMalformed() {
        CPPUNIT_ASSERT(!decodeHandOver(""));
        CPPUNIT_ASSERT(!decodeHandOver(encodeRecord({"2", "0", "0", "0"})));  // held is 0 or 1
        CPPUNIT_ASSERT(!decodeHandOver(encodeRecord({"1", "0", "1", "0"})));  // one pending announced, none there
        CPPUNIT_ASSERT(!decodeHandOver(encodeRecord({"1", "0", "18446744073709551615", "1"})));  // counts overflow
        CPPUNIT_ASSERT(!decodeHandOver(encodeRecord({"1", "x", "0", "0"})));
        CPPUNIT_ASSERT(!decodeHandOver(encodeRecord({"0", "09", "0", "0"})));  // one spelling per count (fuzz_session_wire)
        CPPUNIT_ASSERT(!decodeHandOver(encodeRecord({"1", "0", "1", "0", encodeRecord({"t", "", "", "{}", "0"})})));  // no id
        CPPUNIT_ASSERT(!decodeHandOver(encodeRecord({"1", "0", "1", "0", encodeRecord({"t", "i", "", "{}", "-1"})})));
        CPPUNIT_ASSERT(decodeHandOver(encodeRecord({"1", "0", "1", "0", encodeRecord({"t", "i", "", "{}", "0"})})));
    }

    void streamIdsOrderLikeRedis() {
        using delivery::streamIdLess;
        CPPUNIT_ASSERT(streamIdLess("1-0", "1-1"));
        CPPUNIT_ASSERT(streamIdLess("9-5", "10-0"));  // numbers, not text
        CPPUNIT_ASSERT(!streamIdLess("10-0", "9-5"));
        CPPUNIT_ASSERT(!streamIdLess("5-5", "5-5"));
        CPPUNIT_ASSERT(streamIdLess("", "0-0"));        // not from a stream: first
        CPPUNIT_ASSERT(streamIdLess("msg-1", "0-0"));
        delivery::StreamPos p;
        CPPUNIT_ASSERT(!delivery::parseStreamId("1-", p));
        CPPUNIT_ASSERT(!delivery::parseStreamId("-1", p));
        CPPUNIT_ASSERT(!delivery::parseStreamId("1-2-3", p));
        CPPUNIT_ASSERT(!delivery::parseStreamId("99999999999999999999-0", p));
        CPPUNIT_ASSERT(delivery::parseStreamId("18446744073709551615-18446744073709551615", p));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ClusterSessionWireTest);
