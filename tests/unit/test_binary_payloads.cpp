// Binary payloads below the client (docs/client-protocol.md, Binary): the BINARY_EVENT frame
// and its attachments encoded once, a message's weight with attachments, the spill record
// envelope (and plain JSON records as before), the control API's {"$binary"} markers, and
// inboundAckPolicy in the config schema.
#include <cppunit/extensions/HelperMacros.h>

#include "admin/binary_markers.hpp"
#include "config/loader.hpp"
#include "delivery/message.hpp"
#include "delivery/spill_record.hpp"
#include "protocol/engine_io_codec.hpp"
#include "protocol/sio_api.hpp"
#include "protocol/socket_io_codec.hpp"
#include "protocol/websocket.hpp"

using namespace sf;

class BinaryPayloadsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(BinaryPayloadsTest);
    CPPUNIT_TEST(binaryEventFrameAndAttachments);
    CPPUNIT_TEST(noAttachmentsIsAPlainEvent);
    CPPUNIT_TEST(messageWeighsItsAttachments);
    CPPUNIT_TEST(ackRequiredShapeKeepsPlaceholders);
    CPPUNIT_TEST(spillRecordRoundTrip);
    CPPUNIT_TEST(spillRecordOldJsonAndCorrupt);
    CPPUNIT_TEST(binaryMarkers);
    CPPUNIT_TEST(coalesceKeyBesideBinary);
    CPPUNIT_TEST(inboundAckPolicyConfig);
    CPPUNIT_TEST_SUITE_END();

    static json::Value payloadWithParts() {
        json::Value p = json::Value::object();
        p.set("sym", "ACME");
        p.set("px", json::Value::binary(std::string("\x00\x01\xff", 3)));
        json::Value list = json::Value::array();
        list.push(json::Value::binary("abc"));
        list.push(1);
        p.set("list", std::move(list));
        return p;
    }

public:
    void binaryEventFrameAndAttachments() {
        std::vector<std::string> parts;
        std::string body = delivery::wirePayload(payloadWithParts(), parts);
        CPPUNIT_ASSERT_EQUAL(std::string(R"({"sym":"ACME","px":{"_placeholder":true,"num":0},"list":[{"_placeholder":true,"num":1},1]})"), body);
        CPPUNIT_ASSERT_EQUAL(size_t(2), parts.size());
        CPPUNIT_ASSERT_EQUAL(std::string("\x00\x01\xff", 3), parts[0]);
        auto f = sio::encodeBinaryEvent("/feed", "prices", {body}, parts);
        CPPUNIT_ASSERT_EQUAL("452-/feed,[\"prices\"," + body + "]", f->eioPacket);
        CPPUNIT_ASSERT_EQUAL(ws::encodeFrame(ws::Text, f->eioPacket), *f->wsFrame);
        CPPUNIT_ASSERT_EQUAL(size_t(2), f->attachments.size());
        // polling: "b<base64>" (the transport writes the first byte as the packet type)
        CPPUNIT_ASSERT_EQUAL(std::string("bAAH/"), f->attachments[0]->eioPacket);
        CPPUNIT_ASSERT_EQUAL(std::string("bYWJj"), f->attachments[1]->eioPacket);
        CPPUNIT_ASSERT_EQUAL(ws::encodeFrame(ws::Binary, parts[0]), *f->attachments[0]->wsFrame);
        CPPUNIT_ASSERT_EQUAL(f->eioPacket.size() + 3 + 3, f->payloadBytes);
        // The client-side decoder reads it back to the same value.
        sio::Packet p;
        std::string err;
        CPPUNIT_ASSERT(sio::decodePacket(std::string_view(f->eioPacket).substr(1), p, err));
        CPPUNIT_ASSERT_EQUAL(size_t(2), p.attachments);
        std::vector<std::string> bufs = parts;
        CPPUNIT_ASSERT(sio::reconstruct(p, bufs, err));
        CPPUNIT_ASSERT(p.data.asArray()[1] == payloadWithParts());
    }

    void noAttachmentsIsAPlainEvent() {
        auto f = sio::encodeBinaryEvent("/feed", "prices", {"{\"p\":1}"}, {});
        CPPUNIT_ASSERT_EQUAL(std::string("42/feed,[\"prices\",{\"p\":1}]"), f->eioPacket);
        CPPUNIT_ASSERT(f->attachments.empty());
        std::vector<std::string> parts;
        CPPUNIT_ASSERT_EQUAL(std::string("{\"p\":1}"), delivery::wirePayload(json::parse("{\"p\":1}"), parts));
        CPPUNIT_ASSERT(parts.empty());
    }

    void messageWeighsItsAttachments() {
        std::vector<std::string> parts{std::string(1000, 'x'), "yz"};
        std::string body = R"([{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}])";
        auto m = delivery::makeMessage("/feed", "t", body, "", "msg-1", false, parts);
        CPPUNIT_ASSERT_EQUAL(uint64_t(body.size() + 1002), m->bytes);
        CPPUNIT_ASSERT_EQUAL(size_t(2), m->frame->attachments.size());
        CPPUNIT_ASSERT_EQUAL(std::string("452-/feed,[\"t\","), m->frame->eioPacket.substr(0, 15));
    }

    void ackRequiredShapeKeepsPlaceholders() {
        auto m = delivery::makeMessage("/rel", "t", R"({"b":{"_placeholder":true,"num":0}})", "", "msg-7", true, {"\x01"});
        CPPUNIT_ASSERT_EQUAL(
            std::string(R"(451-/rel,["t",{"b":{"_placeholder":true,"num":0}},{"namespace":"/rel","topic":"t","messageId":"msg-7","ackRequired":true}])"),
            m->frame->eioPacket);
    }

    void spillRecordRoundTrip() {
        std::vector<std::string> parts{std::string("\x00SFB1\x00", 6), std::string(), std::string(70000, '\xfe')};
        auto m = delivery::makeMessage("/s", "t", R"({"a":{"_placeholder":true,"num":0}})", "", "msg-1", false, parts);
        std::string data = delivery::encodeSpillData(*m);
        CPPUNIT_ASSERT_EQUAL('\0', data[0]);
        std::string json;
        std::vector<std::string> back;
        CPPUNIT_ASSERT(delivery::decodeSpillData(data, json, back));
        CPPUNIT_ASSERT_EQUAL(m->payload, json);
        CPPUNIT_ASSERT(back == parts);
    }

    void spillRecordOldJsonAndCorrupt() {
        // A message without binary is stored exactly as before: its JSON.
        auto m = delivery::makeMessage("/s", "t", R"({"i":1})", "", "msg-1", false);
        CPPUNIT_ASSERT_EQUAL(std::string(R"({"i":1})"), delivery::encodeSpillData(*m));
        std::string json;
        std::vector<std::string> back{"stale"};
        CPPUNIT_ASSERT(delivery::decodeSpillData(R"({"i":1})", json, back));
        CPPUNIT_ASSERT_EQUAL(std::string(R"({"i":1})"), json);
        CPPUNIT_ASSERT(back.empty());
        // Truncated envelopes are refused, never read past their end.
        auto b = delivery::makeMessage("/s", "t", "[]", "", "msg-2", false, {"abcdef"});
        std::string data = delivery::encodeSpillData(*b);
        for (size_t cut = 5; cut < data.size() - 2; ++cut)
            CPPUNIT_ASSERT_MESSAGE("cut " + std::to_string(cut), !delivery::decodeSpillData(data.substr(0, cut), json, back) ||
                                                                     json.size() < 2);
        std::string huge = std::string("\0SFB1", 5) + std::string("\xff\xff\xff\xff", 4);
        CPPUNIT_ASSERT(!delivery::decodeSpillData(huge, json, back));
    }

    void binaryMarkers() {
        json::Value v = json::parse(R"({"a":{"$binary":"AAH/"},"b":[{"$binary":""}],"c":{"$binary":1},"d":{"$binary":"AA==","x":1}})");
        CPPUNIT_ASSERT(admin::hasBinaryMarker(v));
        std::string err;
        CPPUNIT_ASSERT(admin::resolveBinaryMarkers(v, err));
        CPPUNIT_ASSERT(v.find("a")->isBinary());
        CPPUNIT_ASSERT_EQUAL(std::string("\x00\x01\xff", 3), v.find("a")->asBinary());
        CPPUNIT_ASSERT(v.find("b")->asArray()[0].isBinary());
        CPPUNIT_ASSERT(v.find("c")->isObject());  // not a string: plain JSON
        CPPUNIT_ASSERT(v.find("d")->isObject());  // another member: plain JSON
        json::Value bad = json::parse(R"([{"$binary":"no!"}])");
        CPPUNIT_ASSERT(!admin::resolveBinaryMarkers(bad, err));
        CPPUNIT_ASSERT(!admin::hasBinaryMarker(json::parse(R"({"x":[1,{"y":"$binary"}]})")));
    }

    void coalesceKeyBesideBinary() {
        json::Value a = payloadWithParts(), b = payloadWithParts();
        b.set("px", json::Value::binary("other"));
        CPPUNIT_ASSERT_EQUAL(delivery::coalesceKeyOf(a, "sym", "t"), delivery::coalesceKeyOf(b, "sym", "t"));
        CPPUNIT_ASSERT(delivery::coalesceKeyOf(a, "px", "t") != delivery::coalesceKeyOf(b, "px", "t"));
    }

    void inboundAckPolicyConfig() {
        auto load = [](const std::string& policy) {
            return config::loadString("servers:\n  s:\n    port: 0\n    namespaces:\n      - path: /a\n        topics: [t]\n" +
                                          (policy.empty() ? std::string() : "        inboundAckPolicy: " + policy + "\n"),
                                      "test.yaml", config::Format::Yaml);
        };
        CPPUNIT_ASSERT(load("").servers[0].namespaces[0].inboundAckPolicy == config::InboundAckPolicy::ACK_ON_RECEIPT);
        CPPUNIT_ASSERT(load("ACK_AFTER_HANDLER_SUCCESS").servers[0].namespaces[0].inboundAckPolicy ==
                       config::InboundAckPolicy::ACK_AFTER_HANDLER_SUCCESS);
        try {
            load("ACK_LATER");
            CPPUNIT_FAIL("ACK_LATER accepted");
        } catch (const config::ConfigError& e) {
            CPPUNIT_ASSERT_MESSAGE(e.what(), std::string(e.what()).find("inboundAckPolicy") != std::string::npos);
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(BinaryPayloadsTest);
