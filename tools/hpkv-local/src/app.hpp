// Everything a request handler needs, created once in main().
#pragma once
#include "config.hpp"
#include "protocol.hpp"
#include "ratelimit.hpp"
#include "store.hpp"
#include "subscriptions.hpp"
#include "tokens.hpp"

#include <atomic>
#include <memory>

namespace hpkv {

struct App {
    Options options;
    Limits limits;
    std::unique_ptr<Store> store;
    SubscriptionHub hub;
    std::unique_ptr<ApiKeys> apiKeys;
    std::unique_ptr<TokenService> tokens;
    std::unique_ptr<RateLimiter> limiter;
    std::atomic<bool> stopping{false};
    std::atomic<int> activeSessions{0};
    std::atomic<std::uint64_t> nextConnId{1};
};

}  // namespace hpkv
