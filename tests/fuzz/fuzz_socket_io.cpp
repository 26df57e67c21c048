// Socket.IO packet decoder with binary placeholders (host/protocol/socket_io_codec): the input is
// the text packet, then NUL-separated attachments. Mirrors the server: a binary packet is
// reconstructed once all its attachments are in. A decoded packet re-encodes and decodes to
// the same namespace, ack id and data (attachments included).
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "protocol/socket_io_codec.hpp"

using namespace sf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::string_view text = sffuzz::splitAt(in, '\0');
    std::vector<std::string> bufs;
    while (!in.empty() && bufs.size() < 80) bufs.emplace_back(sffuzz::splitAt(in, '\0'));

    sio::CodecLimits lim;
    lim.maxDepth = 32;
    lim.maxAttachments = 8;
    sio::Packet p;
    std::string err;
    if (!sio::decodePacket(text, p, err, lim)) {
        FUZZ_CHECK(!err.empty());
        return 0;
    }
    FUZZ_CHECK(p.attachments <= lim.maxAttachments);
    FUZZ_CHECK(!p.nsp.empty());
    bool binaryType = p.type == sio::PacketType::BinaryEvent || p.type == sio::PacketType::BinaryAck;
    if (binaryType && p.attachments > 0) {
        if (bufs.size() < p.attachments) return 0;  // the server waits for the rest
        bufs.resize(p.attachments);
        if (!sio::reconstruct(p, bufs, err)) return 0;
    }

    std::vector<std::string> bufs2;
    std::string text2 = sio::encodePacket(p, bufs2);
    sio::Packet q;
    std::string err2;
    sio::CodecLimits lim2 = lim;
    lim2.maxAttachments = 1000;  // a placeholder used twice goes out as two attachments
    FUZZ_CHECK(sio::decodePacket(text2, q, err2, lim2));
    FUZZ_CHECK(q.attachments == bufs2.size());
    if (q.attachments > 0) FUZZ_CHECK(sio::reconstruct(q, bufs2, err2));
    FUZZ_CHECK(q.nsp == p.nsp);
    FUZZ_CHECK(q.ackId == p.ackId);
    FUZZ_CHECK(q.hasData == p.hasData);
    FUZZ_CHECK(q.data == p.data);
    return 0;
}
