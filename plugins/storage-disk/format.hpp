// On-disk layout of the disk spill (see README.md). Everything is little-endian.
//
// Segment file <lane dir>/%016llu.seg: a plain sequence of records, no file header, so a
// segment is valid at every record boundary and appending never rewrites anything.
//
//   record header (20 bytes)              record body (length bytes)
//   0  u32 magic   0x5CD15FF5             0  u32 retry_count
//   4  u32 length  of the body            4  u64 bytes (size counted toward lane limits)
//   8  u32 crc32c  of [seq ‖ body]        12 u32 data_len, 16 u32 event_len,
//   12 u64 seq     per-lane, +1 a record  20 u32 message_id_len, 24 u32 key_len
//                                         28 data, event, message_id, key
//
// The magic's first byte (0xF5) never occurs in UTF-8, so it is rare inside JSON payloads,
// which keeps "scan forward to the next magic" after a corrupt record cheap and accurate.
// The crc covers seq and the body, so a flipped length, seq or payload byte is caught.
//
// Head file <lane dir>/head (32 bytes): u32 magic 0x5CD1EAD0, u32 crc32c of bytes 8..31,
// u64 segment id, u64 offset, u64 seq: the first record not yet removed. Rewritten in place
// on every remove; if it is missing or damaged the lane restarts from its oldest segment
// (at-least-once: a few removed records may come back, nothing is lost).
#pragma once

#include "crc32c.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace sfdisk {

constexpr uint32_t kRecordMagic = 0x5CD15FF5u;
constexpr uint32_t kHeadMagic = 0x5CD1EAD0u;
constexpr size_t kHeaderSize = 20;
constexpr size_t kBodyFixed = 28;
constexpr size_t kHeadFileSize = 32;
// Sanity cap on one record's body: a bigger length field can only be corruption.
constexpr uint32_t kMaxBody = 1u << 30;

inline void put32(char* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline void put64(char* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline uint32_t get32(const char* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}
inline uint64_t get64(const char* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

struct RecordFields {
    std::string_view data, event, messageId, key;
    uint32_t retryCount = 0;
    uint64_t bytes = 0;
};

inline size_t encodedSize(const RecordFields& r) {
    return kHeaderSize + kBodyFixed + r.data.size() + r.event.size() + r.messageId.size() + r.key.size();
}

// Appends one complete record (header + body) to out.
inline void encodeRecord(std::string& out, uint64_t seq, const RecordFields& r) {
    size_t start = out.size();
    size_t body = encodedSize(r) - kHeaderSize;
    out.resize(start + kHeaderSize + body);
    char* h = &out[start];
    char* b = h + kHeaderSize;
    put32(b, r.retryCount);
    put64(b + 4, r.bytes);
    put32(b + 12, static_cast<uint32_t>(r.data.size()));
    put32(b + 16, static_cast<uint32_t>(r.event.size()));
    put32(b + 20, static_cast<uint32_t>(r.messageId.size()));
    put32(b + 24, static_cast<uint32_t>(r.key.size()));
    char* q = b + kBodyFixed;
    for (std::string_view s : {r.data, r.event, r.messageId, r.key}) {
        if (!s.empty()) std::memcpy(q, s.data(), s.size());
        q += s.size();
    }
    put32(h, kRecordMagic);
    put32(h + 4, static_cast<uint32_t>(body));
    put64(h + 12, seq);
    put32(h + 8, crc32c(crc32c(0, h + 12, 8), b, body));
}

// Decodes a body whose crc already matched. False if the lengths do not add up.
inline bool decodeBody(const char* b, size_t len, RecordFields& out) {
    if (len < kBodyFixed) return false;
    out.retryCount = get32(b);
    out.bytes = get64(b + 4);
    uint64_t l[4] = {get32(b + 12), get32(b + 16), get32(b + 20), get32(b + 24)};
    if (kBodyFixed + l[0] + l[1] + l[2] + l[3] != len) return false;
    const char* q = b + kBodyFixed;
    std::string_view* dst[4] = {&out.data, &out.event, &out.messageId, &out.key};
    for (int i = 0; i < 4; ++i) {
        *dst[i] = std::string_view(q, l[i]);
        q += l[i];
    }
    return true;
}

inline uint32_t recordCrc(const char* header, const char* body, size_t len) {
    return crc32c(crc32c(0, header + 12, 8), body, len);
}

// The reader's verdict on the bytes at a scan position, in the order it checks them. The
// checks need no file: the reader (and tests/fuzz) hand them bytes already in memory.
enum class RecordCheck { Ok, BadMagic, BadLength, Torn, BadChecksum, BadBody };

struct RecordHeader {
    uint32_t magic = 0, length = 0, crc = 0;
    uint64_t seq = 0;
};

inline RecordHeader readHeader(const char* h) {
    return RecordHeader{get32(h), get32(h + 4), get32(h + 8), get64(h + 12)};
}

// Header checks; `avail` is how many segment bytes follow the header (torn if the body
// would run past them).
inline RecordCheck checkHeader(const RecordHeader& hd, uint64_t avail) {
    if (hd.magic != kRecordMagic) return RecordCheck::BadMagic;
    if (hd.length > avail) return RecordCheck::Torn;
    if (hd.length < kBodyFixed || hd.length > kMaxBody) return RecordCheck::BadLength;
    return RecordCheck::Ok;
}

// Body checks once header and body (hd.length bytes at h + kHeaderSize) are in memory.
inline RecordCheck checkBody(const char* h, const RecordHeader& hd, RecordFields& out) {
    const char* body = h + kHeaderSize;
    if (recordCrc(h, body, hd.length) != hd.crc) return RecordCheck::BadChecksum;
    if (!decodeBody(body, hd.length, out)) return RecordCheck::BadBody;
    return RecordCheck::Ok;
}

inline const char* checkReason(RecordCheck c) {
    switch (c) {
        case RecordCheck::Ok: return "ok";
        case RecordCheck::BadMagic: return "bad magic";
        case RecordCheck::BadLength: return "bad record length";
        case RecordCheck::Torn: return "record length past end of segment (torn)";
        case RecordCheck::BadChecksum: return "checksum mismatch";
        case RecordCheck::BadBody: return "malformed record body";
    }
    return "?";
}

}  // namespace sfdisk
