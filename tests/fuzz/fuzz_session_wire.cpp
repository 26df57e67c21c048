// Recovery across nodes (host/cluster/session_wire): a session record read back from Redis
// and a hand-over received on a node channel, from any bytes another process could write
// there. What decodes re-encodes to exactly its bytes; nothing else is half-read.
#include <string>

#include "cluster/session_wire.hpp"
#include "delivery/stream_id.hpp"
#include "fuzz_check.hpp"

using namespace sf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    if (auto r = cluster::decodeSessionRecord(in)) {
        FUZZ_CHECK(!r->node.empty() && !r->ns.empty() && !r->id.empty());
        FUZZ_CHECK(cluster::encodeSessionRecord(*r) == in);
    }
    if (auto h = cluster::decodeHandOver(in)) {
        FUZZ_CHECK(h->ownerAnswered);
        FUZZ_CHECK(h->pending.size() + h->history.size() <= size);
        FUZZ_CHECK(cluster::encodeHandOver(*h) == in);
        for (auto& m : h->pending) FUZZ_CHECK(!m.topic.empty() && !m.messageId.empty());
    }
    delivery::StreamPos p, q;
    if (delivery::parseStreamId(in, p)) {  // leading zeros allowed: the canonical text parses the same
        FUZZ_CHECK(delivery::parseStreamId(std::to_string(p.ms) + "-" + std::to_string(p.seq), q));
        FUZZ_CHECK(!(p < q) && !(q < p));
    }
    return 0;
}
