#include "protocol/engine_io_codec.hpp"

#include <openssl/rand.h>

#include <stdexcept>

namespace sf::eio {

std::string errorBody(ErrorCode c) {
    static const char* msgs[] = {"Transport unknown", "Session ID unknown", "Bad handshake method",
                                 "Bad request", "Forbidden", "Unsupported protocol version"};
    int i = static_cast<int>(c);
    return "{\"code\":" + std::to_string(i) + ",\"message\":\"" + msgs[i] + "\"}";
}

std::string base64Encode(std::string_view in) {
    static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    auto u = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(in[k])); };
    for (; i + 2 < in.size(); i += 3) {
        uint32_t v = (u(i) << 16) | (u(i + 1) << 8) | u(i + 2);
        out.push_back(tbl[v >> 18]);
        out.push_back(tbl[(v >> 12) & 63]);
        out.push_back(tbl[(v >> 6) & 63]);
        out.push_back(tbl[v & 63]);
    }
    if (i + 1 == in.size()) {
        uint32_t v = u(i) << 16;
        out.push_back(tbl[v >> 18]);
        out.push_back(tbl[(v >> 12) & 63]);
        out += "==";
    } else if (i + 2 == in.size()) {
        uint32_t v = (u(i) << 16) | (u(i + 1) << 8);
        out.push_back(tbl[v >> 18]);
        out.push_back(tbl[(v >> 12) & 63]);
        out.push_back(tbl[(v >> 6) & 63]);
        out.push_back('=');
    }
    return out;
}

bool base64Decode(std::string_view in, std::string& out) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+' || c == '-') return 62;
        if (c == '/' || c == '_') return 63;
        return -1;
    };
    out.clear();
    out.reserve(in.size() / 4 * 3);
    while (!in.empty() && in.back() == '=') in.remove_suffix(1);
    if (in.size() % 4 == 1) return false;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = val(c);
        if (v < 0) return false;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return true;
}

std::string randomId() {
    unsigned char b[15];
    if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
    std::string s = base64Encode(std::string_view(reinterpret_cast<char*>(b), sizeof b));
    for (auto& c : s) {
        if (c == '+') c = '-';
        else if (c == '/') c = '_';
    }
    return s;
}

bool decodePayload(std::string_view body, std::vector<RawPacket>& out, size_t maxPackets) {
    out.clear();
    if (body.empty()) return false;
    while (true) {
        size_t sep = body.find('\x1e');
        std::string_view p = body.substr(0, sep);
        if (out.size() >= maxPackets || p.empty()) return false;
        RawPacket rp;
        if (p[0] == 'b') {
            rp.type = '4';
            rp.binary = true;
            if (!base64Decode(p.substr(1), rp.data)) return false;
        } else {
            if (p[0] < '0' || p[0] > '6') return false;
            rp.type = p[0];
            rp.data.assign(p.substr(1));
        }
        out.push_back(std::move(rp));
        if (sep == std::string_view::npos) break;
        body.remove_prefix(sep + 1);
    }
    return true;
}

void appendPayloadPacket(std::string& out, char type, std::string_view data, bool binary) {
    if (!out.empty()) out.push_back('\x1e');
    if (binary) {
        out.push_back('b');
        out += base64Encode(data);
    } else {
        out.push_back(type);
        out.append(data);
    }
}

std::string openPacket(std::string_view sid, bool offerUpgrade, uint64_t pingIntervalMs, uint64_t pingTimeoutMs,
                       size_t maxPayload) {
    std::string s = "0{\"sid\":\"";
    s.append(sid);
    s += "\",\"upgrades\":";
    s += offerUpgrade ? "[\"websocket\"]" : "[]";
    s += ",\"pingInterval\":" + std::to_string(pingIntervalMs) + ",\"pingTimeout\":" + std::to_string(pingTimeoutMs) +
         ",\"maxPayload\":" + std::to_string(maxPayload) + "}";
    return s;
}

}  // namespace sf::eio
