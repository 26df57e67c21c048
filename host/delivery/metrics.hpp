// The streamfence_* counters and gauges of one server (names and labels: docs/client-protocol.md),
// recorded on the hot path with relaxed atomics and merged into a MetricSnapshot for sinks.
// Per-topic handles are created once (at Delivery construction) and cached, so recording
// never takes a lock; only queue_overflow_total{reason} and the lane gauges use a small
// per-topic mutex (overflow is off the fast path; gauges are refreshed a few times a second).
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/metric_sample.hpp"

namespace sf::delivery {

class Metrics {
public:
    struct NamespaceCounters {
        std::string ns;
        std::atomic<uint64_t> connections{0}, disconnections{0}, authRejected{0}, authRateLimited{0};
        // Clients disconnected for earning more than maxClientErrorsPerMinute error answers.
        std::atomic<uint64_t> errorLimited{0};
        // Subscribes refused past limits.maxSubscriptionsPerClient (SUBSCRIPTION_LIMIT).
        std::atomic<uint64_t> subscriptionLimited{0};
        std::atomic<int64_t> active{0};
        // Connection-state recovery (docs/recovery.md): sessions recovered, expired unclaimed,
        // and replays that may have a gap (the history bound evicted unconfirmed messages).
        std::atomic<uint64_t> sessionsRecovered{0}, sessionsExpired{0}, recoveryGaps{0};
        // Detached sessions now, and what their lanes hold (refreshed with the lane gauges).
        std::atomic<int64_t> detached{0};
        // Each event loop reports what its detached sessions' lanes hold; the snapshot sums.
        void reportDetached(const void* reporter, uint64_t messages, uint64_t bytes);
        std::pair<uint64_t, uint64_t> detachedQueued() const;

    private:
        mutable std::mutex mu_;
        std::map<const void*, std::pair<uint64_t, uint64_t>> detachedQueued_;
    };

    struct TopicCounters {
        std::string ns, topic;
        std::atomic<uint64_t> published{0}, publishedBytes{0}, received{0}, receivedBytes{0};
        std::atomic<uint64_t> retries{0}, retriesExhausted{0}, dropped{0}, coalesced{0}, spilled{0};
        std::atomic<int64_t> inflight{0};
        // Publishes refused because the topic's bounded log (or a loop's publishTo hand-off)
        // was full, or the server was stopping (docs/message-path.md).
        std::atomic<uint64_t> publishRefused{0};
        std::atomic<uint64_t> logMessages{0}, logBytes{0};  // TopicLog gauges, set by publishes

        void overflow(std::string_view reason, uint64_t count = 1);
        uint64_t overflowCount(std::string_view reason) const;
        // Lane gauges: each reporter (one per event loop) publishes the max over its lanes;
        // the snapshot shows the max over reporters.
        void reportLaneMax(const void* reporter, uint64_t depth, uint64_t bytes);
        std::pair<uint64_t, uint64_t> laneMax() const;

    private:
        friend class Metrics;
        mutable std::mutex mu_;
        std::map<std::string, uint64_t, std::less<>> overflow_;
        std::map<const void*, std::pair<uint64_t, uint64_t>> laneMax_;
    };

    Metrics() = default;
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // Stable references, created on first use (thread-safe). Cache them.
    NamespaceCounters& ns(const std::string& ns);
    TopicCounters& topic(const std::string& ns, const std::string& topic);

    // Every metric, every known label set (zeros included, so a scrape shows the full
    // schema); overflow per reason seen, or one zero sample without `reason` for a topic that
    // has not overflowed yet. Sorted by name, then labels.
    MetricSnapshot snapshot() const;

    // The 14 counter names, in reference order (for tests and docs).
    static const std::vector<std::string>& counterNames();

private:
    mutable std::mutex mu_;
    std::deque<NamespaceCounters> namespaces_;  // deque: references stay valid
    std::deque<TopicCounters> topics_;
    std::map<std::string, NamespaceCounters*> nsIndex_;
    std::map<std::pair<std::string, std::string>, TopicCounters*> topicIndex_;
};

}  // namespace sf::delivery
