// What streamfenced nodes write to Redis for each other (docs/cluster.md "On the wire"):
// key and channel names, and the framed records in pub/sub messages. Only our own nodes
// read these; the Socket.IO emitter format is emitter_decode.hpp.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace sf::cluster {

// Names under one key prefix and one logical server (servers of the same name on different
// nodes are one server). Every component is escaped, so ':' in a topic cannot collide.
struct ClusterKeys {
    std::string prefix, server;

    std::string topicChannel(const std::string& ns, const std::string& topic) const;  // BEST_EFFORT pub/sub
    std::string topicStream(const std::string& ns, const std::string& topic) const;   // AT_LEAST_ONCE stream
    std::string nodeChannel(const std::string& nodeId) const;   // publishTo requests and answers for one node
    std::string nodesKey() const;                                // zset: nodeId -> expiry (ms since epoch)
    std::string clientsKey(const std::string& nodeId) const;    // hash: clientField -> "1", expires with the node
    std::string sessionKey(const std::string& pid) const;       // string: a recoverable session's record (session_wire.hpp)
    static std::string clientField(const std::string& ns, const std::string& clientId);
};

// '%' and ':' as %25 and %3A: a name component never contains the separator.
std::string escapeComponent(const std::string& s);

// A record = a list of byte strings, each written as <decimal length>':'<bytes>. Binary-safe,
// and a truncated or malformed record is rejected rather than half-read.
std::string encodeRecord(const std::vector<std::string>& fields);
// maxFields: more is refused (pub/sub records have a handful; a session's hand-over many).
std::optional<std::vector<std::string>> decodeRecord(const std::string& data, size_t maxFields = 64);

// A topic message on pub/sub: [origin nodeId, payload JSON, messageId] (older nodes: no messageId).
// A stream entry: fields n (origin), p (payload), i (messageId), h ("1": the origin delivered it itself).
// A session claim on the previous owner's node channel: ["take", origin, requestId, pid, ns];
// its answer: ["give", origin(answering node), requestId, hand-over (session_wire.hpp)].
// A publishTo request on a node channel: ["to", origin, requestId, ns, clientId, topic, payload].
// Its answer on the origin's node channel: ["re", origin(answering node), requestId, status].

}  // namespace sf::cluster
