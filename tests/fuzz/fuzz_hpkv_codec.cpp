// HPKV plugin codec (plugins/storage-hpkv/hpkv_codec.hpp): base64 of stored values, UTF-8
// validation, JSON string escaping, key-component and URL escaping, the sequence suffix.
// Round trips, plus differential checks against the host's own UTF-8 check, JSON parser and
// percent-decoder (independent implementations of the same rules).
#include <string>

#include "common/json.hpp"
#include "fuzz_check.hpp"
#include "hpkv_codec.hpp"
#include "protocol/http_request.hpp"
#include "protocol/websocket.hpp"

using namespace sfhpkv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);

    // A stored value: decoding never yields garbage, and what decodes survives a round trip.
    std::string bytes;
    if (base64Decode(in, bytes)) {
        FUZZ_CHECK(bytes.size() <= in.size() / 4 * 3);
        std::string back;
        FUZZ_CHECK(base64Decode(base64Encode(bytes), back) && back == bytes);
    }
    std::string enc = base64Encode(in);
    FUZZ_CHECK(enc.size() % 4 == 0);
    FUZZ_CHECK(base64Decode(enc, bytes) && bytes == in);

    bool utf8 = isValidUtf8(in);
    FUZZ_CHECK(utf8 == sf::ws::validUtf8(in));
    if (utf8) {
        std::string lit;
        appendJsonString(lit, in);
        sf::json::Value v;
        std::string err;
        FUZZ_CHECK(sf::json::tryParse(lit, v, err) && v.isString() && v.asString() == in);
    }

    std::string key;
    appendKeyComponent(key, in);
    for (unsigned char c : key) FUZZ_CHECK(c > 0x20 && c < 0x7F && c != '/');
    std::string un;
    FUZZ_CHECK(sf::http::percentDecode(key, un));
    // percentDecode turns '+' into a space (query rules); a key component keeps '+' as is.
    std::string plain(in);
    for (auto& c : plain)
        if (c == '+') c = ' ';
    FUZZ_CHECK(un == plain);
    FUZZ_CHECK(sf::http::percentDecode(urlEncode(in), un) && un == in);

    if (size >= 8) {
        uint64_t n = 0;
        for (int i = 0; i < 8; ++i) n = (n << 8) | data[i];
        n %= kMaxSeq + 1;
        std::string k = "lane/" + seqSuffix(n);
        uint64_t back = 0;
        FUZZ_CHECK(parseSeqSuffix(k, 5, back) && back == n);
    }
    uint64_t seq;
    if (parseSeqSuffix(in, 0, seq)) FUZZ_CHECK(seqSuffix(seq) == in);
    return 0;
}
