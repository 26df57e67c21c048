// What a durable namespace's journal says is still needed (docs/recovery.md): the messages
// per topic (where their records are, and their payloads while replaying), the sessions and
// for each of their lanes which topic offsets are done. Built by replaying records at start
// and kept current by the journal's writer thread as it appends, so compaction knows what
// to copy. No I/O; one thread at a time.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "delivery/durable_record.hpp"

namespace sf::delivery::durable {

struct StoredMessage {
    uint64_t number = 0;         // n of "msg-<n>"
    uint32_t segment = 0;        // where its framed record is
    uint64_t position = 0;
    uint32_t size = 0;
    uint64_t payloadBytes = 0;
    // Only in the state a journal's open() returns: views into the mapped segments, valid
    // while that state (or a copy of it) lives.
    std::string_view key, payload;
};

// One lane of a session: it takes topic offsets >= start; every offset below floor is done,
// and so is each offset in the ranges of above (first -> last, inclusive, disjoint, not
// adjacent, all above floor: acks out of order cost one entry per gap, not per offset).
struct StoredLane {
    uint64_t floor = 0;
    std::map<uint64_t, uint64_t> above;
    void done(uint64_t offset) { done(offset, offset); }
    void done(uint64_t first, uint64_t last);  // every offset of [first, last]
    bool isDone(uint64_t offset) const;
};

struct StoredSession {
    std::string id, principal, token;
    std::map<std::string, StoredLane> lanes;  // by topic name
};

class DurableState {
public:
    // Keeps where each record is, not the message text (the journal's open() adds views).
    void apply(const Record& r, uint32_t segment, uint64_t position, uint32_t size);
    void clear();

    // The lowest offset of topic some lane still needs (lastOffset + 1 when none does).
    uint64_t neededFrom(const std::string& topic) const;
    // Forget the messages no lane needs; returns the payload bytes still held. keepFrom
    // (topic -> offset) keeps offsets from there on whatever the lanes say: a lane whose
    // Subscribe record is still on its way may need them.
    uint64_t prune(const std::map<std::string, uint64_t>* keepFrom = nullptr);
    void dropPayloads();  // and the mappings they point into
    // Keeps what the payload views point into alive as long as this state (or a copy).
    void pin(std::shared_ptr<const void> p) { pin_ = std::move(p); }
    const std::shared_ptr<const void>& pinned() const { return pin_; }

    const std::unordered_map<std::string, StoredSession>& sessions() const { return sessions_; }
    std::map<std::string, std::map<uint64_t, StoredMessage>>& messages() { return messages_; }
    const std::map<std::string, uint64_t>& lastOffsets() const { return lastOffset_; }
    uint64_t lastOffset(const std::string& topic) const;
    uint64_t maxMessageNumber() const { return maxNumber_; }
    size_t messageCount() const;

private:
    std::unordered_map<std::string, StoredSession> sessions_;           // by pid
    std::map<std::string, std::map<uint64_t, StoredMessage>> messages_;  // topic -> offset -> message
    std::map<std::string, uint64_t> lastOffset_;
    uint64_t maxNumber_ = 0;
    std::shared_ptr<const void> pin_;
};

}  // namespace sf::delivery::durable
