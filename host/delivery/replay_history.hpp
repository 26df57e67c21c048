// What a BEST_EFFORT session sent and its client may not have received yet: the messages a
// recovering client gets again after the offset it reports (docs/recovery.md).
//
// Each entry remembers the Engine.IO message count of its connection right after it was
// queued (its mark). A pong proves the client read everything queued before the ping it
// answers, so entries at or below the confirmed count are forgotten; the rest is bounded
// (messages and bytes, a lane's worth per subscribed topic), oldest first. Pure logic on the
// session's loop: no I/O, no timers.
#pragma once
#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>

#include "delivery/message.hpp"

namespace sf::delivery {

class ReplayHistory {
public:
    struct Entry {
        MessagePtr msg;
        uint64_t mark;  // connection's messagesSent() after this one was queued
    };

    // A message was handed to the connection. Beyond the bounds the oldest entries go;
    // they count as unconfirmed losses (the client may or may not have them).
    void record(const MessagePtr& m, uint64_t mark, uint64_t maxMessages, uint64_t maxBytes) {
        entries_.push_back(Entry{m, mark});
        bytes_ += m->bytes;
        while (!entries_.empty() && (entries_.size() > maxMessages || bytes_ > maxBytes)) {
            bytes_ -= entries_.front().msg->bytes;
            evictedMark_ = entries_.front().mark;
            entries_.pop_front();
            ++evicted_;
        }
    }

    // The client certainly has everything up to this connection mark.
    void confirm(uint64_t mark) {
        while (!entries_.empty() && entries_.front().mark <= mark) {
            bytes_ -= entries_.front().msg->bytes;
            entries_.pop_front();
        }
        if (evictedMark_ <= mark) evicted_ = 0;  // the evicted ones were received after all
    }

    // The entries the client missed, oldest first, given the last offset it saw (the
    // messageId of a message; empty when it saw none). Found: those after it. Not found: all
    // of them, since entries leave in order (confirmed or evicted, the offset's entry left
    // with everything before it). *gap = entries evicted unconfirmed since the last
    // confirmation when the offset was not found: the client may have missed them.
    std::vector<MessagePtr> after(std::string_view offset, uint64_t* gap) const {
        size_t from = 0;
        *gap = 0;
        bool found = false;
        if (!offset.empty()) {
            for (size_t i = entries_.size(); i-- > 0;) {
                if (entries_[i].msg->messageId == offset) {
                    from = i + 1;
                    found = true;
                    break;
                }
            }
        }
        if (!found) *gap = evicted_;
        std::vector<MessagePtr> out;
        out.reserve(entries_.size() - from);
        for (size_t i = from; i < entries_.size(); ++i) out.push_back(entries_[i].msg);
        return out;
    }

    // A new connection: marks of the old one mean nothing there.
    void clear() {
        entries_.clear();
        bytes_ = 0;
        evicted_ = 0;
        evictedMark_ = 0;
    }
    size_t size() const { return entries_.size(); }
    // Oldest first (a session handed to another node carries them; docs/cluster.md).
    const std::deque<Entry>& entries() const { return entries_; }
    uint64_t bytes() const { return bytes_; }
    uint64_t evicted() const { return evicted_; }

private:
    std::deque<Entry> entries_;
    uint64_t bytes_ = 0;
    uint64_t evicted_ = 0;      // evicted since the last confirmation that covered them
    uint64_t evictedMark_ = 0;  // mark of the newest evicted entry
};

}  // namespace sf::delivery
