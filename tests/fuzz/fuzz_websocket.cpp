// WebSocket frame decoder (host/protocol/websocket): client bytes fed in chunks whose size the
// first input byte picks, checking what the decoder promises its owner: messages within the
// size limit, text messages valid UTF-8, control payloads <= 125 bytes, bounded buffering,
// nothing delivered after a close frame or a failure.
#include <string>

#include "fuzz_check.hpp"
#include "protocol/websocket.hpp"

using namespace sf;

namespace {

constexpr size_t kMaxMessage = 256;  // small, so the fuzzer reaches the limit

struct Checker : ws::FrameDecoder::Handler {
    bool over = false;  // a close frame or a failure was seen: nothing may follow
    void onWsMessage(std::string&& d, bool binary) override {
        FUZZ_CHECK(!over);
        FUZZ_CHECK(d.size() <= kMaxMessage);
        if (!binary) FUZZ_CHECK(ws::validUtf8(d));
    }
    void onWsPing(std::string_view p) override {
        FUZZ_CHECK(!over);
        FUZZ_CHECK(p.size() <= 125);
    }
    void onWsPong(std::string_view p) override {
        FUZZ_CHECK(!over);
        FUZZ_CHECK(p.size() <= 125);
    }
    void onWsClose(uint16_t code, std::string_view reason) override {
        FUZZ_CHECK(!over);
        FUZZ_CHECK(code >= 1000 && code < 5000);
        FUZZ_CHECK(reason.size() <= 123 && ws::validUtf8(reason));
        over = true;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    size_t chunk = 1 + data[0] % 32;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    ws::FrameDecoder d(kMaxMessage);
    Checker h;
    for (size_t pos = 0; pos < in.size(); pos += chunk) {
        bool ok = d.feed(in.substr(pos, chunk), h);
        // At most one partial frame (header <= 14 bytes + payload) and one message in assembly.
        FUZZ_CHECK(d.bufferedBytes() <= 14 + 125 + 2 * kMaxMessage);
        if (!ok) {
            FUZZ_CHECK(d.closeCode() >= 1000 && !d.error().empty());
            FUZZ_CHECK(!d.feed("\x81\x80\0\0\0\0", h));  // stays failed
            ws::encodeClose(d.closeCode(), d.error());
            break;
        }
        if (d.closed()) h.over = true;
    }
    return 0;
}
