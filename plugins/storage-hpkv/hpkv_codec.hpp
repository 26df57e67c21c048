// Small, allocation-light encoders for the HPKV plugin: JSON string escaping, UTF-8
// validation, base64, key-component escaping and the fixed-width sequence suffix.
// Hand-written because they sit on the per-append hot path (Poco::JSON is kept for parsing).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace sfhpkv {

// Appends s as a JSON string literal (with quotes). Control characters become \u00XX; bytes
// >= 0x80 are copied as-is, so the caller must only pass valid UTF-8.
inline void appendJsonString(std::string& out, std::string_view s) {
    static const char* hex = "0123456789abcdef";
    out.push_back('"');
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out.push_back(hex[c >> 4]);
                    out.push_back(hex[c & 15]);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
    }
    out.push_back('"');
}

// Strict UTF-8 check (no overlongs, no surrogates, max U+10FFFF): HPKV frames are text frames,
// so anything else must travel base64-encoded.
inline bool isValidUtf8(std::string_view s) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data());
    size_t n = s.size(), i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) { ++i; continue; }
        size_t len;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
        else return false;
        if (i + len > n) return false;
        for (size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

inline std::string base64Encode(std::string_view in) {
    static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    const unsigned char* p = reinterpret_cast<const unsigned char*>(in.data());
    for (; i + 2 < in.size(); i += 3) {
        uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
        out.push_back(tbl[v >> 18]);
        out.push_back(tbl[(v >> 12) & 63]);
        out.push_back(tbl[(v >> 6) & 63]);
        out.push_back(tbl[v & 63]);
    }
    if (i < in.size()) {
        uint32_t v = p[i] << 16;
        if (i + 1 < in.size()) v |= p[i + 1] << 8;
        out.push_back(tbl[v >> 18]);
        out.push_back(tbl[(v >> 12) & 63]);
        out.push_back(i + 1 < in.size() ? tbl[(v >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

// Returns false on malformed input (a corrupt stored value must not become garbage bytes).
inline bool base64Decode(std::string_view in, std::string& out) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    out.clear();
    if (in.size() % 4 != 0) return false;
    out.reserve(in.size() / 4 * 3);
    for (size_t i = 0; i < in.size(); i += 4) {
        int a = val(in[i]), b = val(in[i + 1]);
        if (a < 0 || b < 0) return false;
        bool last = i + 4 == in.size();
        int c = in[i + 2] == '=' && last ? -2 : val(in[i + 2]);
        int d = in[i + 3] == '=' && last ? -2 : val(in[i + 3]);
        if (c == -1 || d == -1 || (c == -2 && d != -2)) return false;
        uint32_t v = (a << 18) | (b << 12) | ((c < 0 ? 0 : c) << 6) | (d < 0 ? 0 : d);
        out.push_back(static_cast<char>(v >> 16));
        if (c >= 0) out.push_back(static_cast<char>((v >> 8) & 0xFF));
        if (d >= 0) out.push_back(static_cast<char>(v & 0xFF));
    }
    return true;
}

// One lane-key component: '/' separates components and '%' escapes, so both are
// percent-encoded, as are bytes outside printable ASCII (keys must be UTF-8 text and must not
// let one lane's range reach into another's).
inline void appendKeyComponent(std::string& out, std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    for (unsigned char c : s) {
        if (c <= 0x20 || c >= 0x7F || c == '/' || c == '%') {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
}

// Percent-encoding for a URL query value (RFC 3986 unreserved characters pass through).
inline std::string urlEncode(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

constexpr int kSeqDigits = 16;
constexpr uint64_t kMaxSeq = 9999999999999999ULL;  // 16 digits: byte order == numeric order

inline std::string seqSuffix(uint64_t seq) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llu", static_cast<unsigned long long>(seq));
    return std::string(buf, kSeqDigits);
}

// Parses the 16-digit suffix of a record key; false if the key is not a record key.
inline bool parseSeqSuffix(std::string_view key, size_t prefixLen, uint64_t& seq) {
    if (key.size() != prefixLen + kSeqDigits) return false;
    uint64_t v = 0;
    for (size_t i = prefixLen; i < key.size(); ++i) {
        char c = key[i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    seq = v;
    return true;
}

inline uint64_t fnv1a64(std::string_view s) {
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

}  // namespace sfhpkv
