// One published message as the lanes hold it: immutable and shared by every lane it is
// queued in, with its Socket.IO frame encoded once (fan-out never copies per subscriber).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/sio_api.hpp"

namespace sf::delivery {

struct OutMessage {
    std::string payload;    // compact JSON text of the payload (placeholders where binary parts were)
    uint64_t bytes = 0;     // UTF-8 length of payload + attachment bytes: what counts toward limits (docs/client-protocol.md)
    std::vector<std::string> attachments;  // the binary parts, in placeholder order (usually none)
    std::string key;        // coalesce key (coalesceKeyOf); empty = matches no other message
    std::string messageId;  // "msg-<n>"; on the wire only for AT_LEAST_ONCE
    sio::FramePtr frame;    // the event frame: [topic, payload] or [topic, payload, metadata],
                            // with the recovery offset (= messageId) last when recovery is on
    // The topic offset (TopicLog), set once by TopicLog::append under its lock before any
    // loop can read the message; 0 for messages that never went through a topic log
    // (publishTo, refills from spill). Recovery across loops dedups by it (docs/recovery.md).
    mutable uint64_t logOffset = 0;
    // Cluster mode, AT_LEAST_ONCE: the entry id in the topic's Redis stream ("" otherwise);
    // set once before the message is shared. A session's replay floor is kept in these
    // (docs/cluster.md "Recovery across nodes").
    std::string streamId;
    size_t topicIndex = 0;  // its topic in the namespace (set by Core::buildMessageWithId)
    uint64_t createdMs = 0; // net::monotonicMs() when built: the dashboard's "age of oldest"
};
using MessagePtr = std::shared_ptr<const OutMessage>;

// Build the shared message. ackRequired selects the AT_LEAST_ONCE shape with metadata
// {"namespace","topic","messageId","ackRequired":true} in that key order.
// attachments: the payload's binary parts, payloadJson holding their placeholders
// (wirePayload); with any, the frame is a BINARY_EVENT (sio::encodeBinaryEvent).
// withOffset (the server has connectionStateRecovery on) appends the messageId as a last
// string argument: the offset a stock socket.io-client hands back when it reconnects
// (docs/recovery.md).
MessagePtr makeMessage(std::string_view ns, std::string_view topic, std::string payloadJson, std::string key,
                       std::string messageId, bool ackRequired, std::vector<std::string> attachments = {},
                       bool withOffset = false);

// A parsed payload as a message carries it: its compact JSON (JSON.stringify's bytes), with
// a placeholder wherever a Binary value was; the bytes go to `attachments` in that order.
std::string wirePayload(const json::Value& payload, std::vector<std::string>& attachments);

// The coalesce key of a payload. With no coalesceKey configured: the topic. Otherwise the
// canonical text of the payload's top-level field of that name, so values compare by type and
// value (`1`, `"1"`, `true` are three keys; `1.0` equals `1`; object members in any order);
// empty when the payload lacks the field (or is not an object): such a message is its own
// entry and replaces nothing.
std::string coalesceKeyOf(const json::Value& payload, const std::string& coalesceKey, std::string_view topic);

}  // namespace sf::delivery
