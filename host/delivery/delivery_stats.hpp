// What the event loops hold right now, aggregated: the delivery half of the dashboard's
// snapshot (docs/dashboard.md). Collected by posting one task to each loop, which walks its
// own sessions and lanes (docs/threads-and-ownership.md); never per message.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sf::delivery {

struct NamespaceLoad {
    std::string path;
    uint64_t websocket = 0;   // namespace sockets whose engine.io session is on websocket now
    uint64_t polling = 0;     // ... on long-polling
};

struct TopicLoad {
    std::string ns, topic;
    uint64_t subscribers = 0;
    uint64_t delivered = 0;   // frames handed to sockets since start (re-sends of retries excluded)
    uint64_t pendingMessages = 0, pendingBytes = 0;  // summed over the topic's lanes
};

struct LaneView {
    std::string clientId, ns, topic;
    uint64_t messages = 0, bytes = 0, inFlight = 0, spilled = 0;
    uint64_t oldestAgeMs = 0;  // since the oldest pending message was built (0 when empty)
};

struct SpillLoad {
    uint64_t lanes = 0;       // lanes with records in the backend
    uint64_t records = 0;     // records in the backend or on their way there
};

struct LimitedAddress {
    std::string ip;
    uint64_t failures = 0, remainingMs = 0;
};

struct DeliveryStats {
    // Lane depth histogram: lanes with 0, 1-10, 11-100, 101-1000, 1001-10000, >10000 messages.
    static constexpr size_t kBuckets = 6;
    static const std::array<const char*, kBuckets>& bucketLabels();
    static size_t bucketOf(uint64_t depth);

    std::vector<NamespaceLoad> namespaces;  // config order
    std::vector<TopicLoad> topics;          // config order
    std::array<uint64_t, kBuckets> depthHistogram{};
    std::vector<LaneView> deepest;          // at most kDeepest, deepest first
    std::map<std::string, SpillLoad> spill; // by storage backend name
    uint64_t lanes = 0;
    std::vector<LimitedAddress> limitedAddresses;  // auth rate limit, at most kLimitedShown
    uint64_t limitedAddressesTotal = 0;
    static constexpr size_t kLimitedShown = 20;
    size_t loops = 0, loopsAnswered = 0;    // a loop that did not answer in time is left out
    uint64_t loopBusyUs = 0;                // time the loops spent in the stats tasks (their whole cost)
    static constexpr size_t kDeepest = 10;
};

}  // namespace sf::delivery
