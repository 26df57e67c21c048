// @socket.io/redis-emitter decoder (host/cluster/emitter_decode): any bytes a Redis client
// can publish on an emitter channel. An accepted message has a string uid, event and
// namespace, and a payload that is valid JSON; a refused one always says why.
#include <string>

#include "cluster/emitter_decode.hpp"
#include "common/json.hpp"
#include "fuzz_check.hpp"

using namespace sf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    cluster::EmitterMessage m;
    std::string err;
    cluster::EmitterLimits lim;
    lim.maxBytes = 1 << 16;
    lim.maxItems = 4096;
    const bool ok = cluster::decodeEmitterMessage(reinterpret_cast<const char*>(data), size, m, err, lim);
    if (!ok) {
        FUZZ_CHECK(!err.empty());
        return 0;
    }
    json::Value v;
    json::ParseLimits pl;
    pl.maxDepth = 64;
    pl.maxLength = 1 << 22;
    FUZZ_CHECK(json::tryParse(m.payloadJson, v, err, pl));
    FUZZ_CHECK(v.dump() == m.payloadJson);
    FUZZ_CHECK(!m.nsp.empty());
    return 0;
}
