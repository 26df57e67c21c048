#include "config/cluster_schema.hpp"

#include <algorithm>

namespace sf::config {
namespace {

const std::vector<std::string> kClusterKeys = {"redis", "nodeId", "socketioEmitterKey", "streams", "heartbeatMs", "nodeTtlMs"};
const std::vector<std::string> kRedisKeys = {"url", "keyPrefix", "connectTimeoutMs", "commandTimeoutMs"};
const std::vector<std::string> kStreamsKeys = {"maxLen", "maxAgeMs"};

// Node ids and key prefixes end up in Redis key and channel names and log lines.
bool safeName(const std::string& s) {
    return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
               c == '.';
    });
}

void positive(const MapView& m, const std::string& key, int min, int max, int& out) {
    if (!m.has(key)) return;
    int v = out;
    if (!readInt(m, key, std::numeric_limits<int>::min(), std::numeric_limits<int>::max(), v)) return;
    if (v < min || v > max) {
        m.errors().add(m.markOf(key), m.pathOf(key),
                       "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + std::to_string(v));
        return;
    }
    out = v;
}

}  // namespace

void readCluster(const MapView& root, Config& config) {
    Errors& errors = root.errors();
    const YAML::Node node = root.get("cluster");
    MapView m(errors, node, root.markOf("cluster"), "cluster", kClusterKeys);
    if (!node.IsMap()) {
        if (node.IsNull()) errors.add(root.markOf("cluster"), "cluster", "expected a map with a \"redis\" key, got nothing");
        return;  // anything else: reported by MapView
    }
    ClusterConfig c;
    if (!m.has("redis")) {
        errors.add(m.mark(), m.path(), "missing required key \"redis\"");
    } else {
        const YAML::Node rn = m.get("redis");
        MapView r(errors, rn, m.markOf("redis"), m.pathOf("redis"), kRedisKeys);
        if (rn.IsMap()) {
            if (!r.has("url")) {
                errors.add(r.mark(), r.path(), "missing required key \"url\"");
            } else if (readString(r, "url", c.url)) {
                std::string why;
                if (!parseRedisUrl(c.url, c.redis, why))
                    errors.add(r.markOf("url"), r.pathOf("url"), "invalid Redis URL \"" + c.url + "\": " + why);
            }
            if (readString(r, "keyPrefix", c.keyPrefix) && r.has("keyPrefix") && !safeName(c.keyPrefix))
                errors.add(r.markOf("keyPrefix"), r.pathOf("keyPrefix"),
                           "must be 1-128 characters of A-Z a-z 0-9 _ - . (got \"" + c.keyPrefix + "\")");
            positive(r, "connectTimeoutMs", 1, 600000, c.connectTimeoutMs);
            positive(r, "commandTimeoutMs", 1, 600000, c.commandTimeoutMs);
        } else if (rn.IsNull()) {
            errors.add(m.markOf("redis"), m.pathOf("redis"), "missing required key \"url\"");
        }
    }
    if (readString(m, "nodeId", c.nodeId) && m.has("nodeId") && !safeName(c.nodeId))
        errors.add(m.markOf("nodeId"), m.pathOf("nodeId"),
                   "must be 1-128 characters of A-Z a-z 0-9 _ - . (got \"" + c.nodeId + "\")");
    // null (or "") turns the emitter bridge off.
    if (readString(m, "socketioEmitterKey", c.socketioEmitterKey) && c.socketioEmitterKey.find_first_of("#*?[]\\") != std::string::npos)
        errors.add(m.markOf("socketioEmitterKey"), m.pathOf("socketioEmitterKey"),
                   "must not contain # * ? [ ] \\ (got \"" + c.socketioEmitterKey + "\")");
    if (m.has("streams")) {
        MapView s(errors, m.get("streams"), m.markOf("streams"), m.pathOf("streams"), kStreamsKeys);
        positive(s, "maxLen", 1, 1000000000, c.streamMaxLen);
        positive(s, "maxAgeMs", 0, 1000000000, c.streamMaxAgeMs);
    }
    positive(m, "heartbeatMs", 50, 60000, c.heartbeatMs);
    positive(m, "nodeTtlMs", 100, 600000, c.nodeTtlMs);
    if (c.nodeTtlMs <= c.heartbeatMs)
        errors.add(m.has("nodeTtlMs") ? m.markOf("nodeTtlMs") : m.mark(), m.pathOf("nodeTtlMs"),
                   "must be greater than heartbeatMs (" + std::to_string(c.heartbeatMs) + ")");
    config.cluster = c;
}

}  // namespace sf::config
