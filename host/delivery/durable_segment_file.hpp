// Reading one durable journal segment file at start (docs/recovery.md, Restart): in pieces
// through a small reused buffer, not through a mapping of the whole file. Every byte must be
// read once for its crc either way, but a fresh mapping costs a page fault (and on a
// virtual machine a trap to the hypervisor) for every 4 KiB page, about ten times the
// crc itself; a read copies from the page cache into a buffer that stays in the CPU cache.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "delivery/durable_record.hpp"

namespace sf::delivery::durable {

// Scans the first size bytes of the segment open at fd, reading pieces of chunk bytes into
// buf (grown when one record is larger); the same result and the same records, in order, as
// scanSegment over the whole file. The views a visitor gets are valid during its call only.
// Throws std::runtime_error when the file cannot be read.
ScanResult scanSegmentFile(int fd, uint64_t size, const RecordVisitor& visit, std::string& buf, size_t chunk = 1u << 20);

}  // namespace sf::delivery::durable
