// base64url decoding for the jwt plugin: strict for JWT segments (RFC 7515 §2: no padding,
// canonical trailing bits, so no two token strings carry the same signature), lenient for JWK
// members, where published key sets are seen with padding or the standard alphabet.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace jwtb64 {

enum class Mode { Strict, Lenient };

inline bool decode(std::string_view in, std::string& out, Mode mode = Mode::Strict) {
    const bool lenient = mode == Mode::Lenient;
    out.clear();
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '-' || (lenient && c == '+')) v = 62;
        else if (c == '_' || (lenient && c == '/')) v = 63;
        else if (lenient && c == '=') break;
        else return false;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    // A single leftover sextet is not base64; strict also wants the leftover bits zero.
    return bits < 6 && (lenient || (acc & ((1u << bits) - 1)) == 0);
}

}  // namespace jwtb64
