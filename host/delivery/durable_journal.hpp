// One durable namespace's journal on disk (docs/recovery.md, "Durable AT_LEAST_ONCE"):
// segment files seg-<n>.sfj under its directory, written by one writer thread that batches
// whatever publishers and loops queued meanwhile into one write and one fdatasync (group
// commit). A publish is admitted (room in its topic's log), numbered (messageId and topic
// offset, in journal order), written, synced, and only then committed to the topic's log
// and answered, so nothing is delivered or acknowledged before it is on disk. Session
// records (open, subscribe, done, end) ride along in the next write; they are synced by the
// next publish's fdatasync or at seal(). When the segments grow well past what is still
// needed, the writer compacts them into one snapshot segment.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "delivery/durable_state.hpp"
#include "delivery/publish_status.hpp"

namespace sf::delivery::durable {

struct Committed {
    size_t topic;
    uint64_t offset, number;
    std::string key, payload;
};

struct JournalHooks {
    // Writer thread, before writing a publish: can the topic's log take one more message of
    // `bytes` after the `pending` messages (`pendingBytes`) already admitted in this batch?
    std::function<bool(size_t topic, uint64_t pending, uint64_t pendingBytes, uint64_t bytes)> admit;
    // Writer thread, after the batch is on disk: append these (journal order) to the logs.
    std::function<void(std::vector<Committed>&)> commit;
};

struct JournalOptions {
    std::string dir;
    std::vector<std::string> topics;                 // by topic index
    std::atomic<uint64_t>* messageCounter = nullptr; // server-wide n of "msg-<n>"
    uint64_t segmentBytes = 256ull << 20;            // a new segment past this size
    uint64_t compactCheckBytes = 64ull << 20;        // look at compaction after this much written
    uint64_t compactSlackBytes = 64ull << 20;        // compact when total > 2 x live + this
    // Publishes waiting for the writer (0: no bound). Past either bound publishAsync refuses
    // at once with Overloaded: an open-loop publisher cannot grow the queue without limit
    // (docs/recovery.md, "Accepted means on disk").
    uint64_t maxQueuedPublishes = 0;
    uint64_t maxQueuedBytes = 0;
};

struct JournalStats {
    uint64_t batches = 0, syncs = 0, records = 0, bytes = 0, compactions = 0;
};

class DurableJournal {
public:
    DurableJournal(JournalOptions opts, JournalHooks hooks);
    ~DurableJournal();  // seal()
    DurableJournal(const DurableJournal&) = delete;
    DurableJournal& operator=(const DurableJournal&) = delete;

    // Replays the segments (a torn or corrupt tail is cut off at the last good record) and
    // returns the state with payloads, for the caller to rebuild held sessions from. Throws
    // std::runtime_error when the directory cannot be used. Call once, before start().
    DurableState open();
    // Topic offsets given out next, one past what the journal holds (after open()).
    uint64_t nextOffset(size_t topic) const { return nextOffset_[topic]; }
    void start();

    // Blocks until the message is on disk and committed (or refused: Overloaded when the
    // topic's log is full or the disk write failed, Stopping once sealed).
    PublishStatus publishWait(size_t topic, std::string payload, std::string key);
    // Never blocks: done runs on the writer thread once the batch is settled.
    void publishAsync(size_t topic, std::string payload, std::string key, std::function<void(PublishStatus)> done);
    // Session records; dropped once sealed.
    void append(Record r);
    // The lane (pid, topic index) is done with offsets [first, last]: acked, retried out or
    // refused by its overflow policy. Gathered per lane and batch into one DoneRanges record.
    void appendDone(const std::string& pid, size_t topic, uint64_t first, uint64_t last);
    // Writes and syncs what is queued, stops the writer; later publishes get Stopping.
    void seal();

    JournalStats stats() const;
    std::string segmentPath(uint32_t n) const;

private:
    // Small on purpose (a deque node holds several): a publish or a done range carries its
    // few fields, any other session record its own Record.
    struct Item {
        enum class Kind : uint8_t { Publish, Done, Session } kind = Kind::Session;
        size_t topic = 0;               // Publish, Done: topic index
        uint64_t first = 0, last = 0;   // Done: offsets, inclusive
        std::string a, b;               // Publish: payload, key; Done: pid
        std::function<void(PublishStatus)> done;  // Publish
        std::unique_ptr<Record> rec;    // Session
    };
    void run();
    void writeBatch(std::deque<Item>& batch);
    bool writeAll(const std::string& buf);
    void openSegment(uint32_t n, bool fresh);
    void maybeCompact();
    void compact();

    JournalOptions opts_;
    JournalHooks hooks_;
    DurableState state_;  // writer thread (open() before it starts)
    std::vector<uint64_t> nextOffset_;
    // Offsets the last batch started from: kept by pruning, since a Subscribe record queued
    // while that batch was being written may start there.
    std::map<std::string, uint64_t> lastBatchFrom_;
    int fd_ = -1;
    uint32_t segment_ = 0;
    uint64_t segmentSize_ = 0, totalBytes_ = 0, sinceCheck_ = 0;
    std::vector<uint32_t> segments_;  // live segment numbers, oldest first

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Item> queue_;
    uint64_t queuedPublishes_ = 0, queuedBytes_ = 0;  // publishes in queue_
    bool sealed_ = false, stop_ = false;
    JournalStats stats_;
    std::thread writer_;
};

}  // namespace sf::delivery::durable
