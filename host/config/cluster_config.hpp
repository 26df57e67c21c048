// ours: the top-level `cluster` block (docs/cluster.md, conf/README.md "cluster"). Absent:
// the node is alone and nothing connects to Redis.
#pragma once
#include <string>

#include "config/redis_url.hpp"

namespace sf::config {

struct ClusterConfig {
    std::string url;                     // cluster.redis.url, as written (required)
    RedisUrl redis;                      // parsed from url by the schema
    std::string keyPrefix = "sf";        // every key and channel we use starts with it
    int connectTimeoutMs = 2000;         // resolve + connect + AUTH/SELECT, per attempt
    int commandTimeoutMs = 2000;         // a reply later than this drops the link (and refuses what waits on it)
    std::string nodeId;                  // empty = hostname-pid
    std::string socketioEmitterKey = "socket.io";  // @socket.io/redis-emitter key; empty (null) = off
    int streamMaxLen = 10000;            // cluster.streams.maxLen: XADD MAXLEN ~ for AT_LEAST_ONCE topics
    int streamMaxAgeMs = 0;              // cluster.streams.maxAgeMs: entries older are trimmed (XTRIM MINID); 0 = by length only
    int heartbeatMs = 1000;              // node announce + Redis round-trip probe period
    int nodeTtlMs = 5000;                // a node not heard of for this long is gone (and its clients with it)
};

}  // namespace sf::config
