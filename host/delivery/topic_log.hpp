// The bounded log of one namespace x topic that every publish appends to once, whatever the
// number of subscribers (docs/message-path.md). Publishers (any thread) append; each event
// loop that has subscribers of the topic drains what it has not read yet into its own
// LoopTopicLog, where lanes are positions. The log only holds what some loop has not read.
//
// Bounded two ways, chosen per topic at start:
// - lossless (AT_LEAST_ONCE, REJECT_NEW, spill, policies without a batch form): a full log
//   refuses the append, and the publisher is told (429 / OVERLOADED / PublishStatus).
// - lossy (BEST_EFFORT whose policy drops the oldest or keeps the newest): a full log drops
//   its oldest entry; a loop that had not read it counts it as dropped for each of its lanes,
//   which is what the policy would have done (the log holds at least one lane's worth).
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "delivery/message.hpp"

namespace sf::delivery {

struct TopicLogLimits {
    uint32_t maxMessages = 4096;
    uint64_t maxBytes = 32u << 20;
    bool lossless = true;
};

class TopicLog {
public:
    struct Entry {
        uint64_t offset;  // 1, 2, 3, ... per topic: what recovery and storage will name a message by
        MessagePtr msg;
    };

    // sizeGauge (may be null) follows the number of entries held.
    TopicLog(TopicLogLimits limits, size_t loops, std::atomic<uint64_t>* sizeGauge = nullptr);

    // Any thread. False when the log is full and lossless (nothing appended). On success
    // *offset is the message's offset and wake lists the loops to post a drain to (those
    // with subscribers and no drain pending).
    bool append(const MessagePtr& m, uint64_t* offset, std::vector<size_t>& wake);

    // Loop `loop`: move what it has not read into out (oldest first) and clear its pending
    // drain. Returns how many entries it missed because a lossy log dropped them first.
    uint64_t drain(size_t loop, std::vector<Entry>& out);

    // Loop `loop` gained its first subscriber (reads from now on) or lost its last one (its
    // position no longer holds entries back).
    void activate(size_t loop);
    void deactivate(size_t loop);
    // The offset loop `loop` reads next (recovery moving a lane between loops).
    uint64_t readerNext(size_t loop) const;

    // Durable namespaces (docs/recovery.md). Before the first append: offsets continue from
    // next (past what the journal holds). fits: would an append of `bytes` succeed after
    // `pending` more (of pendingBytes) had been appended? Trims only add room, so a yes
    // stays true for the journal, the topic's only appender.
    void resumeAt(uint64_t next);
    bool fits(uint64_t pending, uint64_t pendingBytes, uint64_t bytes) const;

    const TopicLogLimits& limits() const { return limits_; }
    size_t size() const;
    uint64_t bytes() const;

private:
    struct Reader {
        uint64_t next = 1;   // next offset this loop reads
        bool active = false;
        bool drainPending = false;
    };
    void trimLocked();  // drop entries every active reader has read

    void gaugeLocked() {
        if (gauge_) gauge_->store(entries_.size(), std::memory_order_relaxed);
    }

    TopicLogLimits limits_;
    std::atomic<uint64_t>* gauge_;
    mutable std::mutex mu_;
    std::deque<Entry> entries_;  // offsets entries_.front().offset .. nextOffset_-1, contiguous
    uint64_t nextOffset_ = 1;
    uint64_t bytes_ = 0;
    std::vector<Reader> readers_;
};

}  // namespace sf::delivery
