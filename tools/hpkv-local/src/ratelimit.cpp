#include "ratelimit.hpp"

#include <algorithm>

namespace hpkv {

bool RateLimiter::allow(const std::string& keyId) {
    if (rate_ <= 0) return true;
    const double capacity = std::max(1.0, rate_);
    auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lk(mu_);
    auto it = buckets_.find(keyId);
    if (it == buckets_.end()) it = buckets_.emplace(keyId, Bucket{capacity, now}).first;
    Bucket& b = it->second;
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(capacity, b.tokens + elapsed * rate_);
    b.last = now;
    if (b.tokens < 1.0) return false;
    b.tokens -= 1.0;
    return true;
}

}  // namespace hpkv
