// Bounds how often one kind of log line is written: a flood of refusals (a connection spray,
// a client sending thousands of bad frames) must not become a flood of log lines. A token
// bucket per event kind: `burst` lines at once, then `perSecond`; the next line written says
// how many were skipped (`suppressed=`), and each carries the running count of the event.
// Thread-safe.
#pragma once
#include <cstdint>
#include <mutex>

namespace sf::log {

class Throttle {
public:
    explicit Throttle(uint32_t burst = 10, uint32_t perSecond = 1) : burst_(burst), perSecond_(perSecond), tokens_(burst) {}

    // True when this occurrence may be logged; then `suppressed` is the number of occurrences
    // not logged since the last one that was.
    bool allow(uint64_t& suppressed);

private:
    std::mutex mu_;
    const uint32_t burst_, perSecond_;
    double tokens_;
    uint64_t lastMs_ = 0;
    uint64_t skipped_ = 0;
};

}  // namespace sf::log
