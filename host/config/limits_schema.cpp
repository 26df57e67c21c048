#include "config/limits_schema.hpp"

#include <limits>

namespace sf::config {
namespace {

const std::vector<std::string> kLimitsKeys = {
    "maxConnections", "maxConnectionsPerAddress", "maxConnectionsPerAddressPerSecond", "addressTableSize",
    "exemptLoopback", "maxNamespacesPerConnection", "maxSubscriptionsPerClient", "maxPendingPollsPerSession",
    "maxPendingPolls", "maxFramesPerMessage", "maxAttachmentsPerPacket", "maxSessionsPerConnection"};

}  // namespace

void readLimits(const MapView& server, ServerConfig& out) {
    MapView m(server.errors(), server.get("limits"), server.markOf("limits"), server.pathOf("limits"), kLimitsKeys);
    LimitsConfig& l = out.limits;
    constexpr int lo = std::numeric_limits<int>::min(), hi = std::numeric_limits<int>::max();
    readInt(m, "maxConnections", lo, hi, l.maxConnections);
    readInt(m, "maxConnectionsPerAddress", lo, hi, l.maxConnectionsPerAddress);
    readInt(m, "maxConnectionsPerAddressPerSecond", lo, hi, l.maxConnectionsPerAddressPerSecond);
    readInt(m, "addressTableSize", lo, hi, l.addressTableSize);
    readBool(m, "exemptLoopback", l.exemptLoopback);
    readInt(m, "maxNamespacesPerConnection", lo, hi, l.maxNamespacesPerConnection);
    readInt(m, "maxSubscriptionsPerClient", lo, hi, l.maxSubscriptionsPerClient);
    readInt(m, "maxPendingPollsPerSession", lo, hi, l.maxPendingPollsPerSession);
    readInt(m, "maxPendingPolls", lo, hi, l.maxPendingPolls);
    readInt(m, "maxFramesPerMessage", lo, hi, l.maxFramesPerMessage);
    readInt(m, "maxAttachmentsPerPacket", lo, hi, l.maxAttachmentsPerPacket);
    readInt(m, "maxSessionsPerConnection", lo, hi, l.maxSessionsPerConnection);
}

}  // namespace sf::config
