// Pure protocol codecs: HTTP request parser, websocket frames, engine.io payloads,
// socket.io packets. No sockets involved.
#include <cppunit/extensions/HelperMacros.h>

#include <algorithm>
#include <random>

#include "protocol/engine_io_codec.hpp"
#include "protocol/http_request.hpp"
#include "protocol/sio_api.hpp"
#include "protocol/socket_io_codec.hpp"
#include "protocol/websocket.hpp"

using namespace sf;

namespace {

std::string maskedFrame(uint8_t b0, std::string_view payload, bool mask = true, uint32_t key = 0x37fa213d) {
    std::string f;
    f.push_back(static_cast<char>(b0));
    size_t n = payload.size();
    uint8_t m = mask ? 0x80 : 0;
    if (n < 126) {
        f.push_back(static_cast<char>(m | n));
    } else if (n <= 0xFFFF) {
        f.push_back(static_cast<char>(m | 126));
        f.push_back(static_cast<char>(n >> 8));
        f.push_back(static_cast<char>(n & 0xFF));
    } else {
        f.push_back(static_cast<char>(m | 127));
        for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((static_cast<uint64_t>(n) >> (8 * i)) & 0xFF));
    }
    uint8_t k[4] = {static_cast<uint8_t>(key >> 24), static_cast<uint8_t>(key >> 16), static_cast<uint8_t>(key >> 8),
                    static_cast<uint8_t>(key)};
    if (mask) f.append(reinterpret_cast<char*>(k), 4);
    for (size_t i = 0; i < n; ++i) f.push_back(mask ? static_cast<char>(payload[i] ^ k[i & 3]) : payload[i]);
    return f;
}

struct Rec : ws::FrameDecoder::Handler {
    std::vector<std::pair<std::string, bool>> msgs;
    std::vector<std::string> pings;
    int closeCode = 0;
    void onWsMessage(std::string&& d, bool b) override { msgs.emplace_back(std::move(d), b); }
    void onWsPing(std::string_view p) override { pings.emplace_back(p); }
    void onWsClose(uint16_t c, std::string_view) override { closeCode = c; }
};

}  // namespace

class ProtocolCodecsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ProtocolCodecsTest);
    CPPUNIT_TEST(httpSimpleAndPipelined);
    CPPUNIT_TEST(httpByteByByte);
    CPPUNIT_TEST(httpLimits);
    CPPUNIT_TEST(httpQueryDecoding);
    CPPUNIT_TEST(wsAcceptKey);
    CPPUNIT_TEST(wsDecodeFragmentsAndControl);
    CPPUNIT_TEST(wsProtocolErrors);
    CPPUNIT_TEST(wsTooBigBeforeBuffering);
    CPPUNIT_TEST(wsEncodeLengths);
    CPPUNIT_TEST(wsRandomGarbageNeverCrashes);
    CPPUNIT_TEST(eioPayloads);
    CPPUNIT_TEST(eioRandomId);
    CPPUNIT_TEST(sioDecode);
    CPPUNIT_TEST(sioDecodeRejects);
    CPPUNIT_TEST(sioBinaryRoundTrip);
    CPPUNIT_TEST(sioEncodeEventFrame);
    CPPUNIT_TEST_SUITE_END();

public:
    void httpSimpleAndPipelined() {
        http::RequestParser p;
        std::string in =
            "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\n\r\n"
            "POST /socket.io/?sid=abc HTTP/1.1\r\nContent-Length: 6\r\n\r\n4helloGET";
        size_t used = 0;
        CPPUNIT_ASSERT(p.feed(in, used) == http::RequestParser::Status::Done);
        auto& r = p.request();
        CPPUNIT_ASSERT_EQUAL(std::string("GET"), r.method);
        CPPUNIT_ASSERT_EQUAL(std::string("/socket.io/"), r.path);
        CPPUNIT_ASSERT_EQUAL(std::string("polling"), *r.queryParam("transport"));
        CPPUNIT_ASSERT_EQUAL(std::string("http://a"), *r.header("origin"));
        CPPUNIT_ASSERT(r.keepAlive());
        std::string rest = in.substr(used);
        p.reset();
        CPPUNIT_ASSERT(p.feed(rest, used) == http::RequestParser::Status::Done);
        CPPUNIT_ASSERT_EQUAL(std::string("4hello"), p.request().body);
        CPPUNIT_ASSERT_EQUAL(std::string("GET"), rest.substr(used));
    }
    void httpByteByByte() {
        http::RequestParser p;
        std::string in = "POST /x HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc";
        http::RequestParser::Status st = http::RequestParser::Status::NeedMore;
        for (size_t i = 0; i < in.size(); ++i) {
            size_t used = 0;
            st = p.feed(std::string_view(in).substr(i, 1), used);
            CPPUNIT_ASSERT_EQUAL(size_t(1), used);
            if (i + 1 < in.size()) CPPUNIT_ASSERT(st == http::RequestParser::Status::NeedMore);
        }
        CPPUNIT_ASSERT(st == http::RequestParser::Status::Done);
        CPPUNIT_ASSERT_EQUAL(std::string("abc"), p.request().body);
        CPPUNIT_ASSERT(p.request().keepAlive());
    }
    void httpLimits() {
        size_t used;
        {
            http::RequestParser p(http::RequestParser::Limits{1024, 100});
            std::string big = "GET / HTTP/1.1\r\nX: " + std::string(2000, 'a');
            CPPUNIT_ASSERT(p.feed(big, used) == http::RequestParser::Status::Error);
            CPPUNIT_ASSERT_EQUAL(431, p.errorStatus());
        }
        {
            http::RequestParser p(http::RequestParser::Limits{1024, 100});
            CPPUNIT_ASSERT(p.feed("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", used) ==
                           http::RequestParser::Status::Error);
            CPPUNIT_ASSERT_EQUAL(413, p.errorStatus());
        }
        {
            http::RequestParser p;
            CPPUNIT_ASSERT(p.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", used) ==
                           http::RequestParser::Status::Error);
            CPPUNIT_ASSERT_EQUAL(411, p.errorStatus());
        }
        const char* bad[] = {"GARBAGE\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n",
                             "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                             "G(T / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"};
        for (auto* b : bad) {
            http::RequestParser p;
            CPPUNIT_ASSERT_MESSAGE(b, p.feed(b, used) == http::RequestParser::Status::Error);
            CPPUNIT_ASSERT(p.errorStatus() >= 400);
        }
    }
    void httpQueryDecoding() {
        auto q = http::parseQuery("a=1&b=h%C3%A9llo+w&c&d=%zz&&e=");
        CPPUNIT_ASSERT_EQUAL(size_t(5), q.size());
        CPPUNIT_ASSERT_EQUAL(std::string("h\xC3\xA9llo w"), q[1].second);
        CPPUNIT_ASSERT_EQUAL(std::string("c"), q[2].first);
        CPPUNIT_ASSERT_EQUAL(std::string("%zz"), q[3].second);
    }
    void wsAcceptKey() {
        // RFC 6455 section 1.3 example.
        CPPUNIT_ASSERT_EQUAL(std::string("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), ws::acceptKey("dGhlIHNhbXBsZSBub25jZQ=="));
    }
    void wsDecodeFragmentsAndControl() {
        ws::FrameDecoder d(1000);
        Rec r;
        std::string in = maskedFrame(0x01, "he") + maskedFrame(0x89, "pi") + maskedFrame(0x00, "ll") +
                         maskedFrame(0x80, "o") + maskedFrame(0x82, std::string("\x00\x01", 2));
        // Fed in odd-sized chunks so headers and masks are split.
        for (size_t i = 0; i < in.size(); i += 3) CPPUNIT_ASSERT(d.feed(std::string_view(in).substr(i, 3), r));
        CPPUNIT_ASSERT_EQUAL(size_t(2), r.msgs.size());
        CPPUNIT_ASSERT_EQUAL(std::string("hello"), r.msgs[0].first);
        CPPUNIT_ASSERT(!r.msgs[0].second);
        CPPUNIT_ASSERT(r.msgs[1].second);
        CPPUNIT_ASSERT_EQUAL(size_t(1), r.pings.size());
        CPPUNIT_ASSERT(d.feed(maskedFrame(0x88, std::string("\x03\xe8", 2) + "bye"), r));
        CPPUNIT_ASSERT_EQUAL(1000, r.closeCode);
        std::string big(70000, 'x');
        ws::FrameDecoder d2(100000);
        Rec r2;
        CPPUNIT_ASSERT(d2.feed(maskedFrame(0x81, big), r2));
        CPPUNIT_ASSERT_EQUAL(big, r2.msgs.at(0).first);
    }
    void wsProtocolErrors() {
        struct Case {
            std::string in;
            uint16_t code;
        };
        std::vector<Case> cases = {
            {maskedFrame(0x81, "x", false), ws::ProtocolError},               // unmasked
            {maskedFrame(0xC1, "x"), ws::ProtocolError},                      // RSV1
            {maskedFrame(0x83, "x"), ws::ProtocolError},                      // reserved opcode
            {maskedFrame(0x80, "x"), ws::ProtocolError},                      // continuation first
            {maskedFrame(0x09, "x"), ws::ProtocolError},                      // fragmented ping
            {maskedFrame(0x89, std::string(126, 'p')), ws::ProtocolError},    // long control
            {maskedFrame(0x01, "a") + maskedFrame(0x81, "b"), ws::ProtocolError},  // new msg mid-fragment
            {maskedFrame(0x81, "\xff\xfe"), ws::InvalidPayload},              // bad UTF-8
            {maskedFrame(0x88, std::string("\x03\xed", 2)), ws::ProtocolError},  // close 1005 on the wire
            {maskedFrame(0x88, "x"), ws::ProtocolError},                      // 1-byte close
        };
        for (auto& c : cases) {
            ws::FrameDecoder d(1000);
            Rec r;
            CPPUNIT_ASSERT(!d.feed(c.in, r));
            CPPUNIT_ASSERT_EQUAL(c.code, d.closeCode());
            CPPUNIT_ASSERT(!d.feed("more", r));  // stays failed
        }
    }
    void wsTooBigBeforeBuffering() {
        ws::FrameDecoder d(100);
        Rec r;
        std::string f = maskedFrame(0x82, std::string(1000, 'a'));
        // Only the header has arrived: the decoder already refuses.
        CPPUNIT_ASSERT(!d.feed(f.substr(0, 8), r));
        CPPUNIT_ASSERT_EQUAL(uint16_t(ws::TooBig), d.closeCode());
        ws::FrameDecoder d2(100);
        CPPUNIT_ASSERT(d2.feed(maskedFrame(0x02, std::string(60, 'a')), r));
        CPPUNIT_ASSERT(!d2.feed(maskedFrame(0x80, std::string(60, 'a')), r));  // fragments add up
        CPPUNIT_ASSERT_EQUAL(uint16_t(ws::TooBig), d2.closeCode());
    }
    void wsEncodeLengths() {
        CPPUNIT_ASSERT_EQUAL(size_t(2 + 5), ws::encodeFrame(ws::Text, "hello").size());
        CPPUNIT_ASSERT_EQUAL(size_t(4 + 200), ws::encodeFrame(ws::Text, std::string(200, 'a')).size());
        CPPUNIT_ASSERT_EQUAL(size_t(10 + 70000), ws::encodeFrame(ws::Binary, std::string(70000, 'a')).size());
        std::string c = ws::encodeClose(1009);
        CPPUNIT_ASSERT_EQUAL(std::string("\x88\x02\x03\xf1", 4), c);
    }
    void wsRandomGarbageNeverCrashes() {
        // Mostly well-formed masked frames with random opcodes, FIN bits and lengths (some far
        // past the limit), fed in random chunks: the decoder must refuse before it buffers an
        // oversized frame, so it never holds more than one partial frame (header + at most
        // max(limit, 125) payload bytes) plus one message in assembly. The inputs are far
        // larger than that bound, so it is what holds them back, not their size.
        constexpr size_t kLimit = 64;
        constexpr size_t kBound = 14 + 125 + 2 * kLimit;
        std::mt19937 rng(42);
        size_t fedMost = 0;
        for (int round = 0; round < 2000; ++round) {
            ws::FrameDecoder d(kLimit);
            Rec r;
            std::string in;
            bool inMessage = false;
            while (in.size() < 4096) {
                uint32_t key = static_cast<uint32_t>(rng());
                uint32_t dice = rng() % 40;
                if (dice == 0) {  // a frame far over the limit: must be refused from its header
                    in += maskedFrame(0x82, std::string(kLimit + 1 + rng() % 2000, 'a'), true, key);
                } else if (dice == 1) {  // a stray byte: anything may follow
                    in.push_back(static_cast<char>(rng()));
                } else if (dice < 12) {  // ping / pong, up to the 125 bytes allowed
                    in += maskedFrame(rng() % 2 ? 0x89 : 0x8A, std::string(rng() % 126, 'p'), true, key);
                } else {  // data: a whole message or a fragment of one, within the limit
                    bool fin = rng() % 3 == 0;
                    uint8_t op = inMessage ? 0x0 : (rng() % 2 ? 0x1 : 0x2);
                    in += maskedFrame(static_cast<uint8_t>(op | (fin ? 0x80 : 0)), std::string(rng() % (kLimit / 4), 'a'),
                                      true, key);
                    inMessage = !fin;
                }
            }
            size_t pos = 0;
            while (pos < in.size()) {
                size_t n = 1 + rng() % 700;
                bool ok = d.feed(std::string_view(in).substr(pos, n), r);
                pos += n;
                CPPUNIT_ASSERT(d.bufferedBytes() <= kBound);
                if (!ok || d.closed()) break;
            }
            fedMost = std::max(fedMost, pos);
        }
        CPPUNIT_ASSERT(fedMost > 4 * kBound);  // the bound was put to the test
    }
    void eioPayloads() {
        std::vector<eio::RawPacket> pk;
        CPPUNIT_ASSERT(eio::decodePayload("4hello\x1e" "bAQIDBA==\x1e" "3", pk));
        CPPUNIT_ASSERT_EQUAL(size_t(3), pk.size());
        CPPUNIT_ASSERT_EQUAL(std::string("\x01\x02\x03\x04"), pk[1].data);
        CPPUNIT_ASSERT(pk[1].binary);
        CPPUNIT_ASSERT_EQUAL('3', pk[2].type);
        CPPUNIT_ASSERT(!eio::decodePayload("abc", pk));
        CPPUNIT_ASSERT(!eio::decodePayload("4a\x1e\x1e" "4b", pk));
        CPPUNIT_ASSERT(!eio::decodePayload("b!!!", pk));
        CPPUNIT_ASSERT(!eio::decodePayload("", pk));
        std::string out;
        eio::appendPayloadPacket(out, '4', "hello", false);
        eio::appendPayloadPacket(out, '4', std::string("\x01\x02\x03\x04"), true);
        CPPUNIT_ASSERT_EQUAL(std::string("4hello\x1e" "bAQIDBA=="), out);
        CPPUNIT_ASSERT_EQUAL(std::string("{\"code\":0,\"message\":\"Transport unknown\"}"),
                             eio::errorBody(eio::ErrorCode::UnknownTransport));
    }
    void eioRandomId() {
        std::string a = eio::randomId(), b = eio::randomId();
        CPPUNIT_ASSERT_EQUAL(size_t(20), a.size());
        CPPUNIT_ASSERT(a != b);
        CPPUNIT_ASSERT(a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
                       std::string::npos);
    }
    void sioDecode() {
        sio::Packet p;
        std::string err;
        CPPUNIT_ASSERT(sio::decodePacket("0", p, err));
        CPPUNIT_ASSERT(p.type == sio::PacketType::Connect && p.nsp == "/" && !p.hasData);
        CPPUNIT_ASSERT(sio::decodePacket("0/custom,{\"token\":\"abc\"}", p, err));
        CPPUNIT_ASSERT_EQUAL(std::string("/custom"), p.nsp);
        CPPUNIT_ASSERT_EQUAL(std::string("abc"), p.data.find("token")->asString());
        CPPUNIT_ASSERT(sio::decodePacket("0/random", p, err));
        CPPUNIT_ASSERT_EQUAL(std::string("/random"), p.nsp);
        CPPUNIT_ASSERT(sio::decodePacket("2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", p, err));
        CPPUNIT_ASSERT(p.ackId && *p.ackId == 456);
        CPPUNIT_ASSERT(sio::decodePacket("1/custom,", p, err));
        CPPUNIT_ASSERT(p.type == sio::PacketType::Disconnect);
        CPPUNIT_ASSERT(sio::decodePacket("52-789[\"m\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", p, err));
        CPPUNIT_ASSERT_EQUAL(size_t(2), p.attachments);
        std::vector<std::string> bufs = {"\x01\x02\x03", "\x04\x05\x06"};
        CPPUNIT_ASSERT(sio::reconstruct(p, bufs, err));
        CPPUNIT_ASSERT(p.data.asArray()[2].isBinary());
        CPPUNIT_ASSERT_EQUAL(std::string("\x04\x05\x06"), p.data.asArray()[2].asBinary());
        CPPUNIT_ASSERT(sio::decodePacket("2[42,\"x\"]", p, err));  // numeric event name
    }
    void sioDecodeRejects() {
        const char* bad[] = {"", "7", "abc", "2{}", "2abc[\"x\"]", "2[]", "2[\"connect\"]", "3", "3{}", "1{}",
                             "0[1]", "5[\"x\"]", "5x-[\"x\"]", "4", "2[\"x\"", "21234567890123456[\"x\"]",
                             "5999999-[\"x\"]"};
        for (auto* b : bad) {
            sio::Packet p;
            std::string err;
            CPPUNIT_ASSERT_MESSAGE(b, !sio::decodePacket(b, p, err));
            CPPUNIT_ASSERT(!err.empty());
        }
        sio::Packet p;
        std::string err;
        // Nesting beyond the limit is refused (a valid shape otherwise).
        std::string deep = "2[\"x\"," + std::string(200, '[') + std::string(200, ']') + "]";
        CPPUNIT_ASSERT(!sio::decodePacket(deep, p, err));
        std::string ok = "2[\"x\"," + std::string(100, '[') + std::string(100, ']') + "]";
        CPPUNIT_ASSERT_MESSAGE(err, sio::decodePacket(ok, p, err));
        CPPUNIT_ASSERT(sio::decodePacket("51-[\"m\",{\"_placeholder\":true,\"num\":5}]", p, err));
        std::vector<std::string> bufs = {"x"};
        CPPUNIT_ASSERT(!sio::reconstruct(p, bufs, err));
    }
    void sioBinaryRoundTrip() {
        sio::Packet p;
        p.type = sio::PacketType::Ack;
        p.ackId = 789;
        p.hasData = true;
        json::Value::Array a;
        a.push_back(json::Value::binary("\x01\x02\x03"));
        a.push_back(json::Value::binary("\x04\x05\x06"));
        p.data = json::Value(std::move(a));
        std::vector<std::string> bufs;
        std::string text = sio::encodePacket(p, bufs);
        CPPUNIT_ASSERT_EQUAL(std::string("62-789[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"), text);
        CPPUNIT_ASSERT_EQUAL(size_t(2), bufs.size());
        sio::Packet e;
        e.type = sio::PacketType::Event;
        e.nsp = "/custom";
        e.hasData = true;
        e.data = json::parse("[\"auth\",{}]");
        CPPUNIT_ASSERT_EQUAL(std::string("2/custom,[\"auth\",{}]"), sio::encodePacket(e, bufs));
        sio::Packet ce;
        ce.type = sio::PacketType::ConnectError;
        ce.nsp = "/random";
        ce.hasData = true;
        ce.data = json::parse("{\"message\":\"Invalid namespace\"}");
        CPPUNIT_ASSERT_EQUAL(std::string("4/random,{\"message\":\"Invalid namespace\"}"), sio::encodePacket(ce, bufs));
    }
    void sioEncodeEventFrame() {
        auto f = sio::encodeEvent("/feed", "prices", {"{\"p\":1}", "2"});
        CPPUNIT_ASSERT_EQUAL(std::string("42/feed,[\"prices\",{\"p\":1},2]"), f->eioPacket);
        CPPUNIT_ASSERT_EQUAL(ws::encodeFrame(ws::Text, f->eioPacket), *f->wsFrame);
        auto g = sio::encodeEvent("/", "a\"b", {});
        CPPUNIT_ASSERT_EQUAL(std::string("42[\"a\\\"b\"]"), g->eioPacket);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ProtocolCodecsTest);
