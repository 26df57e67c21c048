// Redis stream entry ids ("<ms>-<seq>") as the delivery layer compares them: the replay
// floor of a session recovering on another node (docs/cluster.md "Recovery across nodes").
// Pure functions, no I/O.
#pragma once
#include <cstdint>
#include <string_view>

namespace sf::delivery {

struct StreamPos {
    uint64_t ms = 0, seq = 0;
    bool operator<(const StreamPos& o) const { return ms != o.ms ? ms < o.ms : seq < o.seq; }
};

// False for anything but two decimal numbers joined by '-' (each fitting 64 bits).
inline bool parseStreamId(std::string_view id, StreamPos& out) {
    uint64_t* part = &out.ms;
    out = StreamPos{};
    bool digits = false;
    for (char c : id) {
        if (c == '-' && part == &out.ms && digits) {
            part = &out.seq;
            digits = false;
            continue;
        }
        if (c < '0' || c > '9') return false;
        const uint64_t d = static_cast<uint64_t>(c - '0');
        if (*part > (UINT64_MAX - d) / 10) return false;
        *part = *part * 10 + d;
        digits = true;
    }
    return part == &out.seq && digits;
}

// a < b; ids that do not parse sort first (they never come from a stream).
inline bool streamIdLess(std::string_view a, std::string_view b) {
    StreamPos pa, pb;
    const bool oka = parseStreamId(a, pa), okb = parseStreamId(b, pb);
    if (oka != okb) return !oka;
    return oka && pa < pb;
}

}  // namespace sf::delivery
