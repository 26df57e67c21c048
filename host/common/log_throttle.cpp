#include "common/log_throttle.hpp"

#include <algorithm>
#include <chrono>

namespace sf::log {

bool Throttle::allow(uint64_t& suppressed) {
    const uint64_t now = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
    std::lock_guard<std::mutex> lk(mu_);
    if (lastMs_ != 0) tokens_ = std::min<double>(burst_, tokens_ + static_cast<double>(now - lastMs_) * perSecond_ / 1000.0);
    lastMs_ = now;
    if (tokens_ < 1.0) {
        ++skipped_;
        return false;
    }
    tokens_ -= 1.0;
    suppressed = skipped_;
    skipped_ = 0;
    return true;
}

}  // namespace sf::log
