#include "delivery/durable_segment_file.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sf::delivery::durable {

namespace {

// Reads want bytes at position at into `into`; false on a read error or a file shorter
// than its size said.
bool readAt(int fd, char* into, size_t want, uint64_t at) {
    size_t got = 0;
    while (got < want) {
        ssize_t n = ::pread(fd, into + got, want - got, static_cast<off_t>(at + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        got += static_cast<size_t>(n);
    }
    return true;
}

}  // namespace

ScanResult scanSegmentFile(int fd, uint64_t size, const RecordVisitor& visit, std::string& buf, size_t chunk) {
    chunk = std::max(chunk, kSegmentHeaderSize + kRecordHeaderSize);
    if (buf.size() < chunk) buf.resize(chunk);
    const size_t head = static_cast<size_t>(std::min<uint64_t>(size, kSegmentHeaderSize));
    if (!readAt(fd, &buf[0], head, 0)) throw std::runtime_error(std::string("read failed: ") + std::strerror(errno));
    ScanResult res;
    if (head < kSegmentHeaderSize) return scanSegment(std::string_view(buf.data(), head), visit);
    const int version = segmentVersion(std::string_view(buf.data(), head));
    if (version == 0) {
        res.end = ScanEnd::Corrupt;
        return res;
    }
    // buf[0, have) holds the file's bytes from pos on, pos always on a record boundary.
    uint64_t pos = kSegmentHeaderSize;
    size_t have = 0;
    res.goodEnd = pos;
    for (;;) {
        const uint64_t left = size - pos - have;
        const size_t room = buf.size() - have;
        const size_t want = static_cast<size_t>(std::min<uint64_t>(left, room));
        if (want > 0 && !readAt(fd, &buf[have], want, pos + have))
            throw std::runtime_error(std::string("read failed: ") + std::strerror(errno));
        have += want;
        const bool last = pos + have == size;
        ScanStep st = scanRecords(std::string_view(buf.data(), have), static_cast<size_t>(pos), version, last, visit);
        res.records += st.records;
        pos += st.consumed;
        res.goodEnd = pos;
        if (st.end != ScanEnd::Clean || (last && st.consumed == have)) {
            res.end = st.end;
            return res;
        }
        // A record runs past what is buffered: keep its start, make room for all of it.
        have -= st.consumed;
        std::memmove(&buf[0], buf.data() + st.consumed, have);
        if (st.need > buf.size()) buf.resize(st.need);
    }
}

}  // namespace sf::delivery::durable
