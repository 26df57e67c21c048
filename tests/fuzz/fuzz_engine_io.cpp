// Engine.IO polling payloads (host/protocol/engine_io_codec): a POST
// body split at \x1e into packets, "b<base64>" binary. A decoded payload re-encodes and
// decodes to the same packets.
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/engine_io_codec.hpp"

using namespace sf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    std::vector<eio::RawPacket> pk;
    if (eio::decodePayload(body, pk, 64)) {
        FUZZ_CHECK(!pk.empty() && pk.size() <= 64);
        std::string again;
        for (const auto& p : pk) {
            FUZZ_CHECK(p.type >= '0' && p.type <= '6');
            if (p.binary) FUZZ_CHECK(p.type == '4');
            eio::appendPayloadPacket(again, p.type, p.data, p.binary);
        }
        std::vector<eio::RawPacket> pk2;
        FUZZ_CHECK(eio::decodePayload(again, pk2, 64));
        FUZZ_CHECK(pk2.size() == pk.size());
        for (size_t i = 0; i < pk.size(); ++i)
            FUZZ_CHECK(pk2[i].type == pk[i].type && pk2[i].binary == pk[i].binary && pk2[i].data == pk[i].data);
    }
    std::string bin;
    if (eio::base64Decode(body, bin)) {
        std::string back;
        FUZZ_CHECK(eio::base64Decode(eio::base64Encode(bin), back) && back == bin);
    }
    return 0;
}
