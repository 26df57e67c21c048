// Disk spill record decoding (plugins/storage-disk/format.hpp): the input is a segment's
// bytes, scanned the way the reader scans one (check the header, then the body; on a bad
// record resume at the next magic). Every record that decodes re-encodes to exactly the
// bytes it was read from.
#include <cstring>
#include <string>

#include "format.hpp"
#include "fuzz_check.hpp"

using namespace sfdisk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const char* seg = reinterpret_cast<const char*>(data);
    static const char magic[4] = {'\xF5', '\x5F', '\xD1', '\x5C'};
    size_t off = 0;
    while (off < size) {
        auto next = [&] {
            const void* hit = off + 1 < size ? ::memmem(seg + off + 1, size - off - 1, magic, 4) : nullptr;
            off = hit ? static_cast<size_t>(static_cast<const char*>(hit) - seg) : size;
        };
        if (size - off < kHeaderSize) break;  // torn header at the end
        RecordHeader hd = readHeader(seg + off);
        RecordCheck c = checkHeader(hd, size - off - kHeaderSize);
        RecordFields f;
        if (c == RecordCheck::Ok) c = checkBody(seg + off, hd, f);
        FUZZ_CHECK(std::strcmp(checkReason(c), "?") != 0);
        if (c != RecordCheck::Ok) {
            next();
            continue;
        }
        FUZZ_CHECK(encodedSize(f) == kHeaderSize + hd.length);
        std::string again;
        encodeRecord(again, hd.seq, f);
        FUZZ_CHECK(again.size() == kHeaderSize + hd.length);
        FUZZ_CHECK(std::memcmp(again.data(), seg + off, again.size()) == 0);
        off += kHeaderSize + hd.length;
    }
    return 0;
}
