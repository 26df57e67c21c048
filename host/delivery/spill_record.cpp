#include "delivery/spill_record.hpp"

#include <cstdint>
#include <string_view>

namespace sf::delivery {
namespace {

constexpr std::string_view kMagic("\0SFB1", 5);

void putU32(std::string& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

bool getU32(std::string_view& in, uint32_t& v) {
    if (in.size() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(4);
    return true;
}

}  // namespace

std::string encodeSpillData(const OutMessage& m) {
    if (m.attachments.empty()) return m.payload;
    std::string out;
    out.reserve(kMagic.size() + 4 + m.bytes + 4 * m.attachments.size());
    out.append(kMagic);
    putU32(out, static_cast<uint32_t>(m.attachments.size()));
    for (const std::string& a : m.attachments) {
        putU32(out, static_cast<uint32_t>(a.size()));
        out.append(a);
    }
    out.append(m.payload);
    return out;
}

bool decodeSpillData(std::string data, std::string& payloadJson, std::vector<std::string>& attachments) {
    attachments.clear();
    if (data.compare(0, kMagic.size(), kMagic) != 0) {
        payloadJson = std::move(data);  // plain JSON: no attachments (and every older record)
        return true;
    }
    std::string_view in(data);
    in.remove_prefix(kMagic.size());
    uint32_t count = 0;
    if (!getU32(in, count) || count > in.size() / 4) return false;
    attachments.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
        uint32_t len = 0;
        if (!getU32(in, len) || len > in.size()) return false;
        attachments.emplace_back(in.substr(0, len));
        in.remove_prefix(len);
    }
    payloadJson.assign(in);
    return true;
}

}  // namespace sf::delivery
