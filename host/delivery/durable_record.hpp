// The durable journal's record format (docs/recovery.md, "Durable AT_LEAST_ONCE"): what one
// namespace's journal segment holds, encoded and decoded without any I/O so the parser that
// reads files after a crash can be fuzzed (tests/fuzz/fuzz_durable_record.cpp).
//
// A segment is the 8-byte file header "SFJ1\0\0\0\2" followed by records (version 1,
// "SFJ1\0\0\0\1", is the same without DoneRanges records and is still read):
//   u32 body length (little-endian) | u32 crc32c of the body | body
// The body's first byte is its type; strings are u32 length + bytes, integers u64 LE.
// A crash can leave the last record torn: scanning stops at the first record whose length
// runs past the end or whose crc does not match, and reports where the good part ends.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace sf::delivery::durable {

constexpr char kSegmentMagic[8] = {'S', 'F', 'J', '1', 0, 0, 0, 2};
constexpr char kSegmentMagicV1[8] = {'S', 'F', 'J', '1', 0, 0, 0, 1};
constexpr size_t kSegmentHeaderSize = sizeof kSegmentMagic;
constexpr size_t kRecordHeaderSize = 8;
constexpr uint32_t kMaxBodyBytes = 256u << 20;  // a larger length is garbage, not a record

enum class RecordType : uint8_t {
    Message = 1,   // topic, offset, messageNumber, key, payload: once per topic
    Open = 2,      // pid, id, principal, token: a session of the namespace
    Subscribe = 3, // pid, topic, start: its lane takes topic offsets >= start
    Unsubscribe = 4,  // pid, topic
    Done = 5,      // pid, topic, offset: acked (or retried out): never sent again
    End = 6,       // pid: the session ended for good
    Counters = 7,  // messageNumber, [topic, lastOffset]...: the highest ever given out
    Snapshot = 8,  // first record of a compacted segment: older segments are superseded
    DoneRanges = 9,  // pid, topic, [first, last]...: every offset of each range is Done (version 2)
};

struct Record {
    RecordType type = RecordType::Message;
    std::string pid, topic;
    uint64_t offset = 0;          // Message: topic offset; Subscribe: start; Done: offset
    uint64_t messageNumber = 0;   // Message: n of "msg-<n>"; Counters: the highest n
    std::string key, payload;     // Message
    std::string id, principal, token;  // Open
    std::vector<std::pair<std::string, uint64_t>> lastOffsets;  // Counters
    std::vector<std::pair<uint64_t, uint64_t>> ranges;          // DoneRanges: first <= last, inclusive
};

// A Message record's fields as views into the bytes it was read from: what a replay keeps
// (where the record is), without copying or allocating anything per message.
struct MessageView {
    std::string_view topic, key, payload;
    uint64_t offset = 0, number = 0;
};

// Appends the framed record (header + body) to out.
void encode(std::string& out, const Record& r);

// Decodes one body (no header). False when it is malformed (unknown type, short fields,
// trailing bytes): a record whose crc matched but that we cannot read.
bool decodeBody(std::string_view body, Record& out);

// Decodes a Message body (no header) into views of body; false when it is not a well-formed
// Message (the same checks as decodeBody, which copies through this).
bool decodeMessage(std::string_view body, MessageView& out);

enum class ScanEnd { Clean, Torn, Corrupt };
struct ScanResult {
    size_t goodEnd = 0;  // bytes up to the end of the last good record (header included)
    ScanEnd end = ScanEnd::Clean;
    size_t records = 0;
};

// Walks a whole segment (its file header first). Calls onRecord(record, position, size) for
// every good record in order (position/size: where its framed bytes are in data); stops at
// the first bad one: a short header or body is Torn, a crc mismatch, bad length or
// undecodable body is Corrupt. A missing or wrong file header is Corrupt at 0.
// A version 1 segment has no DoneRanges records: one there is Corrupt.
ScanResult scanSegment(std::string_view data, const std::function<void(const Record&, size_t, size_t)>& onRecord);
// What a scan hands over, each good record in order with where its framed bytes are
// (position in the segment, size). With onMessage set, Message records go there as views
// and are never decoded into a Record (docs/recovery.md, Restart); every other record, and
// every record when onMessage is empty, goes to onRecord.
struct RecordVisitor {
    std::function<void(const MessageView&, size_t, size_t)> onMessage;
    std::function<void(const Record&, size_t, size_t)> onRecord;
};

// One piece of a segment read in pieces: bytes are the segment's bytes from position on
// (past the file header, on a record boundary). Scans the whole records in it; a record cut
// by the end of bytes is Torn when last is set (bytes run to the end of the file), otherwise
// the scan stops before it and asks for need bytes from there. Stops at the first bad record
// like scanSegment.
struct ScanStep {
    size_t consumed = 0;  // bytes of whole good records scanned
    ScanEnd end = ScanEnd::Clean;
    size_t need = 0;      // not last: the bytes the next record needs from consumed on (0: none cut)
    size_t records = 0;
};
ScanStep scanRecords(std::string_view bytes, size_t position, int version, bool last, const RecordVisitor& visit);
// scanSegment with a visitor: Message records as views when visit.onMessage is set.
ScanResult scanSegment(std::string_view data, const RecordVisitor& visit);

// The segment's format version from its file header: 1, 2, or 0 when it is neither.
int segmentVersion(std::string_view data);

uint32_t crc(std::string_view bytes);

}  // namespace sf::delivery::durable
