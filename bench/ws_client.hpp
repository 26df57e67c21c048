// The client side of a websocket as the bench tools (loadgen, storm) speak it to an Engine.IO v4
// server: the upgrade request, the server's answer to it, and frames. No I/O: the callers own
// their sockets and buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace bench {

// GET /socket.io/?EIO=4&transport=websocket with a fixed key: the tools do not check the accept value.
inline std::string wsUpgradeRequest(const std::string& host, int port) {
    char req[512];
    std::snprintf(req, sizeof req,
                  "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                  "Host: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                  host.c_str(), port);
    return req;
}

enum class WsUpgrade { Incomplete, Refused, Accepted };

// The server's HTTP answer to the upgrade at the front of [p, p+len). Accepted ("101"): p and len
// now point past it. answerLen: its length up to and with the blank line (to quote a refusal).
inline WsUpgrade wsTakeUpgradeAnswer(const char*& p, size_t& len, size_t& answerLen) {
    const void* e = memmem(p, len, "\r\n\r\n", 4);
    if (!e) return WsUpgrade::Incomplete;
    answerLen = size_t(static_cast<const char*>(e) - p) + 4;
    if (len < 12 || std::memcmp(p + 9, "101", 3) != 0) return WsUpgrade::Refused;
    p += answerLen;
    len -= answerLen;
    return WsUpgrade::Accepted;
}

// Client frames are masked; a zero mask keeps the payload bytes as they are (valid per RFC 6455).
inline void wsAppendClientFrame(std::string& out, std::string_view payload, uint8_t opcode = 0x1) {
    out.push_back(char(0x80 | opcode));
    size_t n = payload.size();
    if (n < 126) {
        out.push_back(char(0x80 | n));
    } else if (n < 65536) {
        out.push_back(char(0x80 | 126));
        out.push_back(char(n >> 8));
        out.push_back(char(n & 0xff));
    } else {
        out.push_back(char(0x80 | 127));
        for (int i = 7; i >= 0; --i) out.push_back(char((uint64_t(n) >> (8 * i)) & 0xff));
    }
    out.append(4, '\0');
    out.append(payload.data(), payload.size());
}

// Walks the complete frames in [p, p+len) and calls onFrame(opcode, body, bodyLen) for each (a
// masked frame, which a server should not send, is unmasked in place). Returns the bytes consumed;
// once onFrame returns false (the connection is gone) it stops and returns len.
template <class OnFrame>
size_t wsForEachFrame(const char* p, size_t len, OnFrame&& onFrame) {
    size_t off = 0;
    while (len - off >= 2) {
        const uint8_t* h = reinterpret_cast<const uint8_t*>(p + off);
        uint8_t opcode = h[0] & 0x0f;
        bool masked = h[1] & 0x80;
        uint64_t plen = h[1] & 0x7f;
        size_t hl = 2;
        if (plen == 126) {
            if (len - off < 4) break;
            plen = (uint64_t(h[2]) << 8) | h[3];
            hl = 4;
        } else if (plen == 127) {
            if (len - off < 10) break;
            plen = 0;
            for (int k = 0; k < 8; ++k) plen = (plen << 8) | h[2 + k];
            hl = 10;
        }
        if (masked) hl += 4;
        if (len - off < hl + plen) break;
        char* body = const_cast<char*>(p + off + hl);
        if (masked) {
            const uint8_t* m = h + hl - 4;
            for (uint64_t k = 0; k < plen; ++k) body[k] = char(uint8_t(body[k]) ^ m[k & 3]);
        }
        if (!onFrame(opcode, static_cast<const char*>(body), size_t(plen))) return len;
        off += hl + size_t(plen);
    }
    return off;
}

// What a client connection has read, [p, p+len), the bytes kept in `carry` last time first. While
// `upgrading`, the server's HTTP answer comes first: incomplete, all is kept in carry; a 101 calls
// onUpgraded(). Then the frames go to onFrame (as in wsForEachFrame) and an incomplete one is kept
// in carry. Returns false if the server refused the upgrade (answerLen: its answer's length).
template <class OnUpgraded, class OnFrame>
bool wsTakeInput(const char* p, size_t len, bool upgrading, std::string& carry, size_t& answerLen,
                 OnUpgraded&& onUpgraded, OnFrame&& onFrame) {
    if (upgrading) {
        WsUpgrade u = wsTakeUpgradeAnswer(p, len, answerLen);
        if (u == WsUpgrade::Refused) return false;
        if (u == WsUpgrade::Incomplete) {
            carry.assign(p, len);
            return true;
        }
        onUpgraded();
    }
    size_t used = wsForEachFrame(p, len, onFrame);
    if (used < len) carry.assign(p + used, len - used);
    else carry.clear();
    return true;
}

}  // namespace bench
