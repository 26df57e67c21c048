// Socket.IO v5 packet codec: `<type>[<n>-][<nsp>,][<ackId>][<json>]` plus binary
// attachments (placeholders in the JSON, the buffers as separate engine.io messages).
// The decoder is strict like socket.io-parser 4.x and bounded (depth, size, attachments).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.hpp"

namespace sf::sio {

enum class PacketType : int { Connect = 0, Disconnect = 1, Event = 2, Ack = 3, ConnectError = 4, BinaryEvent = 5, BinaryAck = 6 };

struct Packet {
    PacketType type = PacketType::Event;
    std::string nsp = "/";
    std::optional<uint64_t> ackId;
    bool hasData = false;
    json::Value data;          // payload (placeholders replaced once attachments are in)
    size_t attachments = 0;    // binary packets only
};

struct CodecLimits {
    size_t maxDepth = 128;  // JSON nesting; deeper is refused, never recursed into
    size_t maxAttachments = 64;
    size_t maxAttachmentBytes = 16u * 1000000;  // all attachments of one packet together
};

// Decode the text part. False with `error` set on any violation (the caller closes the client).
bool decodePacket(std::string_view text, Packet& out, std::string& error, const CodecLimits& lim);
inline bool decodePacket(std::string_view text, Packet& out, std::string& error) {
    return decodePacket(text, out, error, CodecLimits{});
}

// Replace placeholders in p.data by the attachments. False on a bad placeholder.
bool reconstruct(Packet& p, std::vector<std::string>& buffers, std::string& error);

bool hasBinary(const json::Value& v);
// A copy of v with every Binary replaced by its placeholder {"_placeholder":true,"num":i};
// the bytes are appended to `buffers` in placeholder order (depth first, as socket.io does).
json::Value deconstructBinary(const json::Value& v, std::vector<std::string>& buffers);

// Encode; binary values inside data go out as attachments (type switched to Binary*).
// Returns the text packet; attachments are appended to `buffers` in placeholder order.
std::string encodePacket(const Packet& p, std::vector<std::string>& buffers);
// The common fast case: EVENT/ACK header in front of already serialised JSON.
void appendHeader(std::string& out, PacketType t, std::string_view nsp, std::optional<uint64_t> ackId, size_t attachments = 0);

}  // namespace sf::sio
