#include "delivery/rate_limiter.hpp"

namespace sf::delivery {

AuthRateLimiter::AuthRateLimiter(uint64_t windowMs, uint32_t maxFailures)
    : windowMs_(windowMs ? windowMs : 1), maxFailures_(maxFailures) {}

bool AuthRateLimiter::isLimited(const std::string& ip, uint64_t nowMs) {
    if (maxFailures_ == 0) return false;
    std::lock_guard<std::mutex> lk(mu_);
    auto it = byIp_.find(ip);
    if (it == byIp_.end()) return false;
    if (nowMs - it->second.start >= windowMs_) {
        byIp_.erase(it);
        return false;
    }
    return it->second.failures >= maxFailures_;
}

void AuthRateLimiter::recordFailure(const std::string& ip, uint64_t nowMs) {
    if (maxFailures_ == 0) return;
    std::lock_guard<std::mutex> lk(mu_);
    reap(nowMs);
    Window& w = byIp_[ip];
    if (w.failures == 0 || nowMs - w.start >= windowMs_) w = Window{nowMs, 0};
    ++w.failures;
}

size_t AuthRateLimiter::tracked() const {
    std::lock_guard<std::mutex> lk(mu_);
    return byIp_.size();
}

std::vector<AuthRateLimiter::Limited> AuthRateLimiter::limited(uint64_t nowMs, size_t max, size_t* total) const {
    std::vector<Limited> out;
    size_t n = 0;
    if (maxFailures_ == 0) {
        if (total) *total = 0;
        return out;
    }
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [ip, w] : byIp_) {
        if (w.failures < maxFailures_ || nowMs - w.start >= windowMs_) continue;
        ++n;
        if (out.size() < max) out.push_back({ip, w.failures, w.start + windowMs_ - nowMs});
    }
    if (total) *total = n;
    return out;
}

// Drop expired windows once per window length, so a scan of many addresses stays bounded.
void AuthRateLimiter::reap(uint64_t nowMs) {
    if (nowMs - lastReap_ < windowMs_) return;
    lastReap_ = nowMs;
    for (auto it = byIp_.begin(); it != byIp_.end();) {
        if (nowMs - it->second.start >= windowMs_) it = byIp_.erase(it);
        else ++it;
    }
}

std::string AuthRateLimiter::ipOf(std::string_view remote) {
    if (!remote.empty() && remote.front() == '[') {
        auto close = remote.find(']');
        if (close != std::string_view::npos) return std::string(remote.substr(1, close - 1));
        return std::string(remote);
    }
    auto colon = remote.rfind(':');
    if (colon != std::string_view::npos && remote.find(':') == colon) return std::string(remote.substr(0, colon));
    return std::string(remote);  // bare IPv6 or no port
}

}  // namespace sf::delivery
