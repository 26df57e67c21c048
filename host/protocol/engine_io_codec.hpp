// Engine.IO v4 packet codec: the polling payload (packets joined by \x1e, "b<base64>" for
// binary), the open packet, the error answers of the Node server, and the session ids.
// No I/O: the transports and the server use it, the tests drive it directly.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sf::eio {

// The engine.io error answers of the Node server.
enum class ErrorCode { UnknownTransport = 0, UnknownSid = 1, BadHandshakeMethod = 2, BadRequest = 3, Forbidden = 4, UnsupportedProtocolVersion = 5 };
std::string errorBody(ErrorCode c);

// One Engine.IO packet.
struct RawPacket {
    char type;  // '0'..'6'; binary packets are always MESSAGE ('4')
    std::string data;
    bool binary = false;
};
// Split a POST body at \x1e; "b<base64>" is binary. False on any malformed packet.
bool decodePayload(std::string_view body, std::vector<RawPacket>& out, size_t maxPackets = 100000);
void appendPayloadPacket(std::string& out, char type, std::string_view data, bool binary);

// The OPEN packet ("0{...}"); offerUpgrade lists "websocket" in its upgrades.
std::string openPacket(std::string_view sid, bool offerUpgrade, uint64_t pingIntervalMs, uint64_t pingTimeoutMs,
                       size_t maxPayload);

std::string base64Encode(std::string_view in);
bool base64Decode(std::string_view in, std::string& out);
std::string randomId();  // 20 url-safe characters from 15 random bytes, like Node's base64id

}  // namespace sf::eio
