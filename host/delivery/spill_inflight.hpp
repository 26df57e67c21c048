// Storage-plugin operations (SpillStorage) whose completion has not been handed to its
// loop yet, counted across the process. Delivery::shutdown waits until there are none
// before the loops may stop and go: a plugin thread that completes an operation later
// would post to a freed loop (docs/threads-and-ownership.md; make test-sanitize found it
// in e2e.spill, a clear still in flight to an HPKV server that had just restarted).
#pragma once
#include <cstdint>

namespace sf::delivery::spill_inflight {

void begin();
void end();
// True once none is in flight; false if some still are after `ms`.
bool waitIdle(uint64_t ms);

}  // namespace sf::delivery::spill_inflight
