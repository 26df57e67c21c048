// Per-API-key token bucket for --rate-limit N (requests/s, burst N). Token
// connections count against the key that generated the token.
#pragma once
#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace hpkv {

class RateLimiter {
public:
    explicit RateLimiter(double perSecond) : rate_(perSecond) {}
    bool enabled() const { return rate_ > 0; }
    // True if the request may proceed; false means answer 429.
    bool allow(const std::string& keyId);

private:
    struct Bucket {
        double tokens;
        std::chrono::steady_clock::time_point last;
    };
    double rate_;
    std::mutex mu_;
    std::map<std::string, Bucket> buckets_;
};

}  // namespace hpkv
