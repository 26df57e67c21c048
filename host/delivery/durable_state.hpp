// What a durable namespace's journal says is still needed (docs/recovery.md): the messages
// per topic (where their records are; read through the mapped segments after a replay), the sessions and
// for each of their lanes which topic offsets are done. Built by replaying records at start
// and kept current by the journal's writer thread as it appends, so compaction knows what
// to copy. No I/O; one thread at a time.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "delivery/durable_record.hpp"

namespace sf::delivery::durable {

struct StoredMessage {
    uint64_t number = 0;         // n of "msg-<n>"
    uint64_t position = 0;       // where its framed record is
    uint32_t segment = 0;
    uint32_t size = 0;
    uint32_t keyBytes = 0;       // the key and payload are the record's last fields
    uint32_t payloadBytes = 0;
};

// A topic's messages by offset, ascending: a flat array, since the journal gives a topic's
// offsets in order and a replay only appends (docs/recovery.md, Restart). An offset out of
// order (a journal we did not write) is put in its place; an offset already there is
// replaced, as the later record wins. A copy shares the array until one of them changes it
// (the replayed state handed to the restore and the writer's own start out the same; the
// array is not copied while the server waits to listen). A shared array is never changed,
// so copies may live on other threads.
class TopicMessages {
public:
    using Entry = std::pair<uint64_t, StoredMessage>;
    using iterator = std::vector<Entry>::iterator;
    using const_iterator = std::vector<Entry>::const_iterator;

    TopicMessages() = default;
    // No moves: a moved-from array would be null; a copy shares it, as cheap.
    TopicMessages(const TopicMessages&) = default;
    TopicMessages& operator=(const TopicMessages&) = default;

    void put(uint64_t offset, const StoredMessage& m);
    const StoredMessage& at(uint64_t offset) const;  // std::out_of_range when absent
    size_t count(uint64_t offset) const;
    const_iterator lower_bound(uint64_t offset) const;
    // Offsets of [first, last] held.
    size_t countIn(uint64_t first, uint64_t last) const;
    template <class Pred>
    void eraseIf(Pred p) {
        std::vector<Entry>& v = own();
        v.erase(std::remove_if(v.begin(), v.end(), p), v.end());
    }
    size_t size() const { return entries_->size(); }
    bool empty() const { return entries_->empty(); }
    iterator begin() { return own().begin(); }
    iterator end() { return own().end(); }
    const_iterator begin() const { return entries_->begin(); }
    const_iterator end() const { return entries_->end(); }
    bool sharesWith(const TopicMessages& o) const { return entries_ == o.entries_; }

private:
    std::vector<Entry>& own();  // the array to change: copied first while shared
    std::shared_ptr<std::vector<Entry>> entries_ = std::make_shared<std::vector<Entry>>();
};

// Where the replayed segments can be read (the journal's open() maps them): the bytes of
// a record, empty when that is not a place of the map.
class SegmentBytes {
public:
    virtual ~SegmentBytes() = default;
    virtual std::string_view bytes(uint32_t segment, uint64_t position, uint64_t size) const = 0;
};

// A message's key and payload read through bytes (empty when its record is not there).
std::string_view keyOf(const SegmentBytes& bytes, const StoredMessage& m);
std::string_view payloadOf(const SegmentBytes& bytes, const StoredMessage& m);

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

// How many of a topic's messages the lane has not done (from its floor on, less its done
// ranges), without visiting them.
size_t pendingCount(const TopicMessages& msgs, const StoredLane& lane);

struct StoredSession {
    std::string id, principal, token;
    std::map<std::string, StoredLane> lanes;  // by topic name
};

class DurableState {
public:
    // Keeps where each record is, not the message text.
    void apply(const Record& r, uint32_t segment, uint64_t position, uint32_t size);
    // A Message record, from its fields (what a replay and the writer know without a Record).
    void addMessage(std::string_view topic, uint64_t offset, uint64_t number, uint32_t keyBytes, uint32_t payloadBytes,
                    uint32_t segment, uint64_t position, uint32_t size);
    void clear();

    // The lowest offset of topic some lane still needs (lastOffset + 1 when none does).
    uint64_t neededFrom(const std::string& topic) const;
    // Forget the messages no lane needs; returns the payload bytes still held. keepFrom
    // (topic -> offset) keeps offsets from there on whatever the lanes say: a lane whose
    // Subscribe record is still on its way may need them.
    uint64_t prune(const std::map<std::string, uint64_t>* keepFrom = nullptr);
    // Where the records can be read (only in the state a journal's open() returns); a copy
    // of this state shares it.
    void setBytes(std::shared_ptr<const SegmentBytes> b) { bytes_ = std::move(b); }
    const std::shared_ptr<const SegmentBytes>& bytes() const { return bytes_; }
    // A message's key and payload read through bytes() (empty without).
    std::string_view keyOf(const StoredMessage& m) const { return bytes_ ? durable::keyOf(*bytes_, m) : std::string_view(); }
    std::string_view payloadOf(const StoredMessage& m) const { return bytes_ ? durable::payloadOf(*bytes_, m) : std::string_view(); }

    const std::unordered_map<std::string, StoredSession>& sessions() const { return sessions_; }
    std::map<std::string, TopicMessages, std::less<>>& messages() { return messages_; }
    const std::map<std::string, uint64_t>& lastOffsets() const { return lastOffset_; }
    uint64_t lastOffset(const std::string& topic) const;
    uint64_t maxMessageNumber() const { return maxNumber_; }
    size_t messageCount() const;

private:
    std::unordered_map<std::string, StoredSession> sessions_;           // by pid
    std::map<std::string, TopicMessages, std::less<>> messages_;  // by topic
    std::map<std::string, uint64_t> lastOffset_;
    uint64_t maxNumber_ = 0;
    std::shared_ptr<const SegmentBytes> bytes_;
    // The topic of the last addMessage (a journal holds long runs of one topic): its entries
    // in messages_ and lastOffset_, whose nodes stay put until clear(). A copy of the state
    // starts without it (the pointers are the original's).
    struct TopicCache {
        std::string topic;
        TopicMessages* messages = nullptr;
        uint64_t* lastOffset = nullptr;
        TopicCache() = default;
        TopicCache(const TopicCache&) {}
        TopicCache& operator=(const TopicCache&) {
            messages = nullptr;
            lastOffset = nullptr;
            return *this;
        }
    } cache_;
};

}  // namespace sf::delivery::durable
