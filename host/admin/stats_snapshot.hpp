// One snapshot of a server for the dashboard and GET /v1/stats (docs/dashboard.md): counters
// from the metrics, what the loops hold (delivery::DeliveryStats), plugins, TLS, auth limits.
// Plain data, filled by the embed layer once a second at most and shared by every viewer.
//
// `detached` and `cluster` are empty until those features exist: whoever builds them fills
// the struct (StreamFenceServer::addStatsContributor) and the page renders the fields present.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "delivery/delivery_stats.hpp"

namespace sf::admin {

struct TopicCounters {
    std::string ns, topic, deliveryMode, overflowAction;
    std::string spillBackend;  // empty unless the namespace spills (SPILL_TO_DISK)
    uint64_t published = 0, publishedBytes = 0, received = 0;
    uint64_t retries = 0, retriesExhausted = 0, dropped = 0, coalesced = 0, spilled = 0, publishRefused = 0;
    int64_t inFlight = 0;
    std::map<std::string, uint64_t> overflowByReason;
};

struct NamespaceCounters {
    std::string ns;
    int64_t active = 0;
    uint64_t connections = 0, disconnections = 0, authRejected = 0, authRateLimited = 0, errorLimited = 0;
};

struct PluginRow {
    std::string name, kind, version, file;
    uint32_t abiVersion = 0, abiMinor = 0;
};

struct RefusedPlugin {
    std::string file, reason;
};

struct TlsInfo {
    bool enabled = false;
    std::string certFile, subject, issuer, notAfter;  // notAfter: ISO 8601 UTC
    int64_t secondsLeft = 0;
    std::string error;  // the certificate could not be read
};

// Sessions kept after their transport went, for connection-state recovery (filled by the
// session layer once it exists).
struct DetachedSessions {
    uint64_t sessions = 0, messages = 0, bytes = 0;
    uint64_t oldestAgeMs = 0;
    uint64_t resumed = 0, expired = 0;  // since start
};

// Cluster membership as this node sees it (filled by the cluster layer once it exists).
struct ClusterNode {
    std::string id, address, state;  // state: e.g. "up", "suspect", "down"
    uint64_t lastSeenMs = 0;         // ms since last heard of
    bool self = false;
};
struct ClusterInfo {
    std::string nodeId;
    std::vector<ClusterNode> nodes;
};

struct StatsSnapshot {
    std::string server, version;
    uint64_t takenAtMs = 0;     // wall clock (ms since the epoch)
    uint64_t uptimeMs = 0;
    uint64_t collectMs = 0;     // how long the loops took to answer
    std::vector<NamespaceCounters> namespaces;
    std::vector<TopicCounters> topics;      // same order as delivery.topics
    delivery::DeliveryStats delivery;
    std::vector<PluginRow> plugins;
    std::vector<RefusedPlugin> refusedPlugins;
    TlsInfo tls;
    std::optional<DetachedSessions> detached;
    std::optional<ClusterInfo> cluster;
};

// Rates between two snapshots (per second), by topic index.
struct TopicRates {
    double publish = 0, deliver = 0;
};

// The JSON of GET /v1/stats and of each dashboard event (field list: docs/dashboard.md).
std::string toJson(const StatsSnapshot& s, const std::vector<TopicRates>& rates);

}  // namespace sf::admin
