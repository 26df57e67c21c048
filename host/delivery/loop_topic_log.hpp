// One event loop's copy of a topic's log: the messages some lane of this loop has not sent
// yet. Lanes are positions into it (docs/message-path.md): a lane's pending messages are
// [its cursor, head()). Positions are this loop's own running count, so a lane's depth and
// bytes are two subtractions, and skipping a thousand messages is one assignment.
// Loop thread only.
#pragma once
#include <cstdint>
#include <deque>

#include "delivery/message.hpp"

namespace sf::delivery {

class LoopTopicLog {
public:
    struct Entry {
        MessagePtr msg;
        uint64_t offset;       // the topic's offset (TopicLog)
        uint64_t bytesBefore;  // bytes of every entry appended before this one
        uint64_t largeBefore;  // entries before this one that no lane can hold (over maxBytes)
    };

    explicit LoopTopicLog(uint64_t laneMaxBytes = UINT64_MAX) : laneMaxBytes_(laneMaxBytes) {}

    uint64_t base() const { return base_; }
    uint64_t head() const { return base_ + entries_.size(); }
    bool empty() const { return entries_.empty(); }

    void push(const MessagePtr& m, uint64_t offset) {
        entries_.push_back(Entry{m, offset, bytesTotal_, largeTotal_});
        bytesTotal_ += m->bytes;
        if (m->bytes > laneMaxBytes_) ++largeTotal_;
    }
    const Entry& at(uint64_t pos) const { return entries_[static_cast<size_t>(pos - base_)]; }

    // Bytes and over-limit entries in [from, head()).
    uint64_t bytesFrom(uint64_t from) const { return from >= head() ? 0 : bytesTotal_ - at(from).bytesBefore; }
    uint64_t largeFrom(uint64_t from) const { return from >= head() ? 0 : largeTotal_ - at(from).largeBefore; }

    // The first position p >= from such that bytesFrom(p) <= maxBytes (binary search).
    uint64_t firstWithin(uint64_t from, uint64_t maxBytes) const {
        uint64_t lo = from, hi = head();
        while (lo < hi) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (bytesFrom(mid) <= maxBytes) hi = mid;
            else lo = mid + 1;
        }
        return lo;
    }

    // Forget entries before pos (every lane of this loop is at or past it).
    void trimTo(uint64_t pos) {
        while (base_ < pos && !entries_.empty()) {
            entries_.pop_front();
            ++base_;
        }
    }
    // No lane left: drop everything, keep positions monotonic.
    void clear() { trimTo(head()); }

private:
    uint64_t laneMaxBytes_;
    std::deque<Entry> entries_;
    uint64_t base_ = 0;
    uint64_t bytesTotal_ = 0, largeTotal_ = 0;
};

}  // namespace sf::delivery
