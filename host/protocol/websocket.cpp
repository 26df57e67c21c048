#include "protocol/websocket.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>

namespace sf::ws {

std::string acceptKey(std::string_view clientKey) {
    std::string s(clientKey);
    s += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
    unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

bool isUpgradeRequest(const http::Request& r) {
    return r.method == "GET" && r.headerHasToken("upgrade", "websocket") && r.headerHasToken("connection", "upgrade");
}

std::string handshakeResponse(const http::Request& r) {
    const std::string* key = r.header("sec-websocket-key");
    const std::string* ver = r.header("sec-websocket-version");
    if (!isUpgradeRequest(r) || !key || key->size() != 24 || !ver || *ver != "13") return {};
    std::string out =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: ";
    out += acceptKey(*key);
    out += "\r\n\r\n";
    return out;
}

void appendFrameHeader(std::string& out, Opcode op, size_t len) {
    out.push_back(static_cast<char>(0x80 | op));
    if (len < 126) {
        out.push_back(static_cast<char>(len));
    } else if (len <= 0xFFFF) {
        out.push_back(126);
        out.push_back(static_cast<char>(len >> 8));
        out.push_back(static_cast<char>(len & 0xFF));
    } else {
        out.push_back(127);
        for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((static_cast<uint64_t>(len) >> (8 * i)) & 0xFF));
    }
}

std::string encodeFrame(Opcode op, std::string_view payload) {
    std::string out;
    out.reserve(payload.size() + 10);
    appendFrameHeader(out, op, payload.size());
    out.append(payload);
    return out;
}

std::string encodeClose(uint16_t code, std::string_view reason) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    p.append(reason.substr(0, 123));
    return encodeFrame(Close, p);
}

bool validUtf8(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    size_t n = s.size(), i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
        else return false;
        if (i + len > n) return false;
        for (size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        // Overlong forms, surrogates and out-of-range code points are invalid.
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

bool FrameDecoder::fail(uint16_t code, std::string why) {
    closeCode_ = code;
    error_ = std::move(why);
    in_.clear();
    msg_.clear();
    return false;
}

bool FrameDecoder::feed(std::string_view data, Handler& h) {
    if (closeCode_) return false;
    if (closed_) return true;  // nothing after a close frame counts
    // Parse straight from `data` when nothing is buffered (the common case: no copy).
    std::string_view buf;
    if (in_.empty()) {
        buf = data;
    } else {
        in_.append(data);
        buf = in_;
    }
    size_t pos = 0;
    while (!closed_) {
        std::string_view rest = buf.substr(pos);
        if (rest.size() < 2) break;
        auto b0 = static_cast<uint8_t>(rest[0]), b1 = static_cast<uint8_t>(rest[1]);
        bool fin = b0 & 0x80;
        if (b0 & 0x70) return fail(ProtocolError, "reserved bits set");
        auto op = static_cast<Opcode>(b0 & 0x0F);
        if (!(b1 & 0x80)) return fail(ProtocolError, "client frame not masked");
        uint64_t len = b1 & 0x7F;
        size_t hdr = 2;
        if (len == 126) {
            if (rest.size() < 4) break;
            len = (static_cast<uint64_t>(static_cast<uint8_t>(rest[2])) << 8) | static_cast<uint8_t>(rest[3]);
            hdr = 4;
            if (len < 126) return fail(ProtocolError, "non-minimal length");
        } else if (len == 127) {
            if (rest.size() < 10) break;
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<uint8_t>(rest[2 + i]);
            hdr = 10;
            if (len >> 63) return fail(ProtocolError, "length high bit set");
            if (len <= 0xFFFF) return fail(ProtocolError, "non-minimal length");
        }
        bool control = op & 0x8;
        if (control) {
            if (!fin) return fail(ProtocolError, "fragmented control frame");
            if (len > 125) return fail(ProtocolError, "control frame too long");
            if (op != Close && op != Ping && op != Pong) return fail(ProtocolError, "unknown opcode");
        } else {
            if (op != Continuation && op != Text && op != Binary) return fail(ProtocolError, "unknown opcode");
            if (op == Continuation && !inMessage_) return fail(ProtocolError, "continuation without a message");
            if (op != Continuation && inMessage_) return fail(ProtocolError, "new message inside a fragmented one");
            // Check the size before waiting for the bytes: an attacker must not make us buffer.
            if (len > maxMessage_ || msg_.size() + len > maxMessage_) return fail(TooBig, "message too big");
            frames_ = op == Continuation ? frames_ + 1 : 1;
            if (frames_ > maxFrames_) {
                frameLimitHit_ = true;
                return fail(PolicyViolation, "too many frames in one message");
            }
        }
        if (rest.size() < hdr + 4 + len) break;
        const auto* mask = reinterpret_cast<const uint8_t*>(rest.data() + hdr);
        std::string payload(rest.substr(hdr + 4, len));
        for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(payload[i] ^ mask[i & 3]);
        pos += hdr + 4 + len;

        if (control) {
            if (op == Ping) {
                h.onWsPing(payload);
            } else if (op == Pong) {
                h.onWsPong(payload);
            } else {
                closed_ = true;
                if (payload.size() == 1) return fail(ProtocolError, "close payload of one byte");
                uint16_t code = 1005;
                std::string_view reason;
                if (payload.size() >= 2) {
                    code = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) | static_cast<uint8_t>(payload[1]));
                    reason = std::string_view(payload).substr(2);
                    bool validCode = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                                     (code >= 3000 && code <= 4999);
                    if (!validCode) return fail(ProtocolError, "invalid close code");
                    if (!validUtf8(reason)) return fail(InvalidPayload, "close reason not utf-8");
                }
                h.onWsClose(code, reason);
            }
            continue;
        }
        if (op != Continuation) {
            inMessage_ = true;
            msgBinary_ = op == Binary;
        }
        if (fin && msg_.empty()) {
            inMessage_ = false;
            if (!msgBinary_ && !validUtf8(payload)) return fail(InvalidPayload, "text message not utf-8");
            h.onWsMessage(std::move(payload), msgBinary_);
        } else {
            msg_.append(payload);
            if (fin) {
                inMessage_ = false;
                std::string m;
                m.swap(msg_);
                if (!msgBinary_ && !validUtf8(m)) return fail(InvalidPayload, "text message not utf-8");
                h.onWsMessage(std::move(m), msgBinary_);
            }
        }
        if (closeCode_) return false;  // a handler may not reset us, but be safe
    }
    if (closed_) {
        in_.clear();
        return true;
    }
    // Keep only the unconsumed tail (bounded by one frame header + one frame <= maxMessage).
    if (in_.empty()) {
        in_.assign(buf.substr(pos));
    } else {
        in_.erase(0, pos);
    }
    return true;
}

}  // namespace sf::ws
