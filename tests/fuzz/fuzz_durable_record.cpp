// Durable journal segments (host/delivery/durable_record.*): the input is a segment's bytes
// as a crash may leave them. The scan must stop at the first bad record without reading past
// the input, every record it accepts must re-encode to exactly the bytes it was read from,
// and the good prefix it reports must scan clean to the same records (what the journal
// truncates a damaged segment to; docs/recovery.md). A DoneRanges record has ordered
// ranges and never comes out of a version 1 segment. The start scan's forms (message views,
// records fed in pieces) must agree with it.
#include <cstring>
#include <string>

#include "delivery/durable_record.hpp"
#include "fuzz_check.hpp"

using namespace sf::delivery::durable;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view seg(reinterpret_cast<const char*>(data), size);
    size_t n = 0;
    ScanResult res = scanSegment(seg, [&](const Record& r, size_t pos, size_t len) {
        FUZZ_CHECK(pos + len <= seg.size());
        if (r.type == RecordType::DoneRanges) {
            FUZZ_CHECK(segmentVersion(seg) == 2);
            FUZZ_CHECK(!r.ranges.empty());
            for (auto& [first, last] : r.ranges) FUZZ_CHECK(first <= last);
        }
        std::string again;
        encode(again, r);
        FUZZ_CHECK(again.size() == len);
        FUZZ_CHECK(std::memcmp(again.data(), seg.data() + pos, len) == 0);
        ++n;
    });
    FUZZ_CHECK(res.goodEnd <= size);
    FUZZ_CHECK(res.records == n);
    // The start scan's form (docs/recovery.md, Restart): messages as views, and the records
    // fed in two pieces, agree with the decoding scan record for record.
    RecordVisitor views;
    size_t viewed = 0;
    views.onMessage = [&](const MessageView& m, size_t pos, size_t len) {
        Record r;
        FUZZ_CHECK(decodeBody(seg.substr(pos + kRecordHeaderSize, len - kRecordHeaderSize), r));
        FUZZ_CHECK(r.topic == m.topic && r.key == m.key && r.payload == m.payload && r.offset == m.offset && r.messageNumber == m.number);
        ++viewed;
    };
    views.onRecord = [&](const Record&, size_t, size_t) { ++viewed; };
    ScanResult v = scanSegment(seg, views);
    FUZZ_CHECK(v.goodEnd == res.goodEnd && v.end == res.end && v.records == n && viewed == n);
    const int version = segmentVersion(seg);
    if (version != 0) {
        // Cut where the input's last byte says: the first piece asks for what its cut record
        // needs, the second goes on from where the first stopped.
        std::string_view body = seg.substr(kSegmentHeaderSize);
        const size_t cut = size ? data[size - 1] % (body.size() + 1) : 0;
        ScanStep first = scanRecords(body.substr(0, cut), kSegmentHeaderSize, version, false, views);
        FUZZ_CHECK(first.consumed <= cut);
        size_t end = first.consumed, records = first.records;
        ScanEnd how = first.end;
        if (how == ScanEnd::Clean) {
            FUZZ_CHECK(first.need == 0 || first.consumed + first.need > cut);
            ScanStep second = scanRecords(body.substr(first.consumed), kSegmentHeaderSize + first.consumed, version, true, views);
            end += second.consumed;
            records += second.records;
            how = second.end;
        }
        FUZZ_CHECK(kSegmentHeaderSize + end == res.goodEnd && how == res.end && records == n);
    }
    if (res.goodEnd >= kSegmentHeaderSize) {
        ScanResult prefix = scanSegment(seg.substr(0, res.goodEnd), nullptr);
        FUZZ_CHECK(prefix.end == ScanEnd::Clean);
        FUZZ_CHECK(prefix.records == n);
    }
    return 0;
}
