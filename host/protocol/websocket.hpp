// RFC 6455 for a server: the opening handshake, an incremental frame decoder for client
// frames (which must be masked) and an encoder for server frames (never masked).
// No extensions are negotiated (permessage-deflate offers are ignored, which is allowed).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "net/buffer.hpp"
#include "protocol/http_request.hpp"

namespace sf::ws {

enum Opcode : uint8_t { Continuation = 0x0, Text = 0x1, Binary = 0x2, Close = 0x8, Ping = 0x9, Pong = 0xA };

enum CloseCode : uint16_t {
    Normal = 1000,
    GoingAway = 1001,
    ProtocolError = 1002,
    InvalidPayload = 1007,
    PolicyViolation = 1008,
    TooBig = 1009,
    InternalError = 1011,
};

// base64(SHA1(key + GUID)).
std::string acceptKey(std::string_view clientKey);
// A GET with Upgrade: websocket, Connection: upgrade, version 13 and a key.
bool isUpgradeRequest(const http::Request& r);
// The 101 answer (empty string if the request is not a valid upgrade).
std::string handshakeResponse(const http::Request& r);

// Server frames, unmasked, FIN set.
void appendFrameHeader(std::string& out, Opcode op, size_t payloadLen);
std::string encodeFrame(Opcode op, std::string_view payload);
inline net::Buffer frameBuffer(Opcode op, std::string_view payload) { return net::makeBuffer(encodeFrame(op, payload)); }
// A close frame with code and (truncated) reason.
std::string encodeClose(uint16_t code, std::string_view reason = {});

bool validUtf8(std::string_view s);

// Feeds client bytes, reassembles fragmented messages, answers nothing itself: the owner
// gets callbacks and decides (pong on ping, echo on close). On a protocol violation feed()
// returns false with closeCode()/error() set; the owner sends that close and stops reading.
class FrameDecoder {
public:
    struct Handler {
        virtual ~Handler() = default;
        virtual void onWsMessage(std::string&& data, bool binary) = 0;
        virtual void onWsPing(std::string_view payload) = 0;
        virtual void onWsPong(std::string_view payload) { (void)payload; }
        virtual void onWsClose(uint16_t code, std::string_view reason) = 0;  // code 1005 if none
    };

    // maxFrames: data frames (the first plus continuations) one message may take; past it
    // the message is refused with 1008 (an endless run of empty continuations would otherwise
    // cost a parse each without ever reaching maxMessageBytes).
    explicit FrameDecoder(size_t maxMessageBytes, size_t maxFrames = 1024) : maxMessage_(maxMessageBytes), maxFrames_(maxFrames) {}
    bool feed(std::string_view data, Handler& h);
    uint16_t closeCode() const { return closeCode_; }
    const std::string& error() const { return error_; }
    bool closed() const { return closed_; }  // a close frame was received
    bool frameLimitHit() const { return frameLimitHit_; }  // the failure was maxFrames
    size_t bufferedBytes() const { return in_.size() + msg_.size(); }

private:
    bool fail(uint16_t code, std::string why);

    size_t maxMessage_;
    size_t maxFrames_;
    size_t frames_ = 0;  // data frames of the message being assembled
    bool frameLimitHit_ = false;
    std::string in_;     // unconsumed bytes (at most one partial frame)
    std::string msg_;    // fragments of the message being assembled
    bool inMessage_ = false;
    bool msgBinary_ = false;
    bool closed_ = false;
    uint16_t closeCode_ = 0;
    std::string error_;
};

}  // namespace sf::ws
