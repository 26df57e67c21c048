// HPKV request handling: one JSON text frame in, one JSON response out.
// Pure with respect to the transport, so the WebSocket session stays small.
#pragma once
#include <cstddef>
#include <regex>
#include <optional>
#include <string>
#include <string_view>

namespace hpkv {

class Store;
class RateLimiter;

struct Limits {
    std::size_t maxKeyBytes = 512;
    std::size_t maxValueBytes = 102400;
    std::size_t defaultRangeLimit = 100;
    std::size_t maxRangeLimit = 1000;
    std::size_t maxRangeBytes = 8u << 20;  // keeps RANGE replies well under client frame limits
};

struct SessionContext {
    Store& store;
    RateLimiter& limiter;
    const Limits& limits;
    std::string keyId;                  // API key id (token connections: the issuing key)
    std::optional<std::regex> access;   // token accessPattern; nullopt = every key
};

// Operation codes as sent by @hpkv/websocket-client.
enum Op { kGet = 1, kSet = 2, kPatch = 3, kDelete = 4, kRange = 5, kAtomic = 6 };

// Returns the response frame (always a JSON object with `code`).
std::string handleRequest(SessionContext& ctx, std::string_view frame);

// Search semantics (like JS RegExp.test): the official tests rely on a
// pattern such as 'sub-test-*' allowing 'sub-test-access-2-...'.
bool accessAllowed(const SessionContext& ctx, const std::string& key);

}  // namespace hpkv
