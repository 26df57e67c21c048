#include "delivery/topic_log.hpp"

#include <algorithm>

namespace sf::delivery {

TopicLog::TopicLog(TopicLogLimits limits, size_t loops, std::atomic<uint64_t>* sizeGauge)
    : limits_(limits), gauge_(sizeGauge), readers_(loops) {
    if (limits_.maxMessages == 0) limits_.maxMessages = 1;
}

void TopicLog::trimLocked() {
    uint64_t minNext = nextOffset_;
    for (const Reader& r : readers_)
        if (r.active) minNext = std::min(minNext, r.next);
    while (!entries_.empty() && entries_.front().offset < minNext) {
        bytes_ -= entries_.front().msg->bytes;
        entries_.pop_front();
    }
    gaugeLocked();
}

bool TopicLog::append(const MessagePtr& m, uint64_t* offset, std::vector<size_t>& wake) {
    std::lock_guard<std::mutex> lk(mu_);
    // A message bigger than the whole byte bound still gets through an empty log: refusing
    // it forever would be a stuck publisher, and the lanes apply their own per-message limit.
    auto full = [&] {
        return !entries_.empty() && (entries_.size() >= limits_.maxMessages || bytes_ + m->bytes > limits_.maxBytes);
    };
    if (full()) {
        if (limits_.lossless) return false;
        while (full()) {
            bytes_ -= entries_.front().msg->bytes;
            entries_.pop_front();
        }
    }
    *offset = nextOffset_++;
    m->logOffset = *offset;
    entries_.push_back(Entry{*offset, m});
    bytes_ += m->bytes;
    bool anyActive = false;
    for (size_t i = 0; i < readers_.size(); ++i) {
        Reader& r = readers_[i];
        if (!r.active) continue;
        anyActive = true;
        if (!r.drainPending) {
            r.drainPending = true;
            wake.push_back(i);
        }
    }
    if (!anyActive) {  // nobody to read it: keep nothing
        entries_.clear();
        bytes_ = 0;
    }
    gaugeLocked();
    return true;
}

uint64_t TopicLog::drain(size_t loop, std::vector<Entry>& out) {
    std::lock_guard<std::mutex> lk(mu_);
    Reader& r = readers_[loop];
    r.drainPending = false;
    if (!r.active) return 0;
    uint64_t missed = 0;
    uint64_t first = entries_.empty() ? nextOffset_ : entries_.front().offset;
    if (r.next < first) {
        missed = first - r.next;
        r.next = first;
    }
    for (size_t i = static_cast<size_t>(r.next - first); i < entries_.size(); ++i) out.push_back(entries_[i]);
    r.next = nextOffset_;
    trimLocked();
    return missed;
}

void TopicLog::activate(size_t loop) {
    std::lock_guard<std::mutex> lk(mu_);
    Reader& r = readers_[loop];
    r.active = true;
    r.next = nextOffset_;  // what was published before the first subscriber is not for it
}

void TopicLog::deactivate(size_t loop) {
    std::lock_guard<std::mutex> lk(mu_);
    readers_[loop].active = false;
    trimLocked();
}

size_t TopicLog::size() const {
    std::lock_guard<std::mutex> lk(mu_);
    return entries_.size();
}

uint64_t TopicLog::bytes() const {
    std::lock_guard<std::mutex> lk(mu_);
    return bytes_;
}

void TopicLog::resumeAt(uint64_t next) {
    std::lock_guard<std::mutex> lk(mu_);
    nextOffset_ = std::max(nextOffset_, next);
    for (Reader& r : readers_) r.next = std::max(r.next, nextOffset_);
}

bool TopicLog::fits(uint64_t pending, uint64_t pendingBytes, uint64_t bytes) const {
    std::lock_guard<std::mutex> lk(mu_);
    const uint64_t n = entries_.size() + pending;
    if (n == 0 || !limits_.lossless) return true;
    return n < limits_.maxMessages && bytes_ + pendingBytes + bytes <= limits_.maxBytes;
}

uint64_t TopicLog::readerNext(size_t loop) const {
    std::lock_guard<std::mutex> lk(mu_);
    return readers_[loop].next;
}

}  // namespace sf::delivery
