// Recovery across nodes on the wire (docs/cluster.md "Recovery across nodes"): a session's
// record as stored under ClusterKeys::sessionKey, and the hand-over a previous owner sends
// the node that claimed the session. Both are framed records (cluster_wire.hpp); decoding
// refuses anything malformed rather than half-reading it. Pure functions, no I/O; fuzzed
// by tests/fuzz/fuzz_session_wire.cpp.
#pragma once
#include <optional>
#include <string>

#include "delivery/cluster_bus.hpp"

namespace sf::cluster {

// [node, ns, id, principal, topic, floor, topic, floor, ...]
std::string encodeSessionRecord(const delivery::RemoteSessionRecord& r);
std::optional<delivery::RemoteSessionRecord> decodeSessionRecord(const std::string& data);
// The record's first field as encoded: what a compare-and-delete by its owner matches.
std::string sessionRecordOwnerPrefix(const std::string& node);

// [held, spillLost, nPending, nHistory, message...] with each message a record
// [topic, messageId, streamId, payload, retries, attachment...]. Replay entries are not
// carried (the claimant reads the stream itself).
std::string encodeHandOver(const delivery::HandOver& h);
std::optional<delivery::HandOver> decodeHandOver(const std::string& data);

}  // namespace sf::cluster
