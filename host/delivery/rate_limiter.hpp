// Brute-force limiter for authentication, per remote IP (port ignored): a fixed window that
// starts at the first failure; once maxFailures failures fall in the window the address is
// limited until the window ends (Java semantics, authRateLimit.windowMs / maxFailures).
// Shared by every loop of a server, hence the mutex (auth is off the hot path).
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sf::delivery {

class AuthRateLimiter {
public:
    AuthRateLimiter(uint64_t windowMs, uint32_t maxFailures);  // maxFailures 0 = never limit

    bool isLimited(const std::string& ip, uint64_t nowMs);
    void recordFailure(const std::string& ip, uint64_t nowMs);
    size_t tracked() const;

    // Addresses limited at nowMs (for the dashboard): at most `max` of them, with how long
    // each stays limited; *total gets how many are limited in all.
    struct Limited {
        std::string ip;
        uint32_t failures = 0;
        uint64_t remainingMs = 0;
    };
    std::vector<Limited> limited(uint64_t nowMs, size_t max, size_t* total) const;

    // "1.2.3.4:5678" -> "1.2.3.4", "[::1]:80" -> "::1", anything else unchanged.
    static std::string ipOf(std::string_view remote);

private:
    struct Window {
        uint64_t start = 0;
        uint32_t failures = 0;
    };
    void reap(uint64_t nowMs);

    uint64_t windowMs_;
    uint32_t maxFailures_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, Window> byIp_;
    uint64_t lastReap_ = 0;
};

}  // namespace sf::delivery
