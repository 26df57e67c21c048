// Durable journal segments (host/delivery/durable_record.*): the input is a segment's bytes
// as a crash may leave them. The scan must stop at the first bad record without reading past
// the input, every record it accepts must re-encode to exactly the bytes it was read from,
// and the good prefix it reports must scan clean to the same records (what the journal
// truncates a damaged segment to; docs/recovery.md). A DoneRanges record has ordered
// ranges and never comes out of a version 1 segment.
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
    if (res.goodEnd >= kSegmentHeaderSize) {
        ScanResult prefix = scanSegment(seg.substr(0, res.goodEnd), nullptr);
        FUZZ_CHECK(prefix.end == ScanEnd::Clean);
        FUZZ_CHECK(prefix.records == n);
    }
    return 0;
}
