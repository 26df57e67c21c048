// What one event loop owns: its sessions and, per namespace x topic, the list of its
// subscribers and its LoopTopicLog. Publishes reach a shard as at most one pending drain
// task per topic (TopicLog wakes it); the task copies what the shard has not read into its
// log and writes each lane once for the whole run (docs/message-path.md). Loop thread only,
// except the atomic counters other threads read.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "delivery/core.hpp"
#include "delivery/loop_topic_log.hpp"
#include "delivery/topic_log.hpp"

namespace sf::delivery {

class Session;
class Subscription;

class LoopShard {
public:
    LoopShard(Core& core, net::EventLoop& loop, size_t index);

    net::EventLoop& loop() { return loop_; }
    size_t index() const { return index_; }

    // Thread-safe read: subscribers of ns/topic on this loop (may lag by one task).
    uint32_t subscriberCount(size_t ns, size_t topic) const;

    // publishTo hand-offs posted to this loop and not yet run: bounded, so a publisher
    // aiming at one client cannot queue without end (Delivery::publishTo refuses beyond it).
    std::atomic<uint32_t> directPending{0};

    // Loop thread only.
    // Drain ns/topic's TopicLog into this loop's log and write every lane of it once.
    void processTopic(size_t ns, size_t topic);
    void deliverTo(size_t ns, const std::string& clientId, size_t topic, const MessagePtr& m);
    LoopTopicLog& topicLog(size_t ns, size_t topic) { return subs_[ns][topic].log; }
    // Frames this loop handed to sockets for ns/topic: a plain counter, read by the stats
    // task on this loop (docs/dashboard.md), so the hot path pays no atomic.
    uint64_t& deliveredCounter(size_t ns, size_t topic) { return subs_[ns][topic].delivered; }
    uint64_t deliveredCount(size_t ns, size_t topic) const { return subs_[ns][topic].delivered; }
    void add(size_t ns, Subscription* s);
    void remove(size_t ns, Subscription* s);
    void addSession(Session* s);
    void removeSession(Session* s);
    Session* findSession(size_t ns, const std::string& id) const;
    std::vector<Session*> sessions() const;
    void refreshGauges();
    // Cluster mode with recovery: write the records other nodes recover this loop's
    // sessions from, those that changed (session_sync.cpp).
    void syncSessions();
    // A session started, subscribed or unsubscribed: write its record soon (one task for
    // every change until it runs), not at the next period: a client may be cut any time.
    void sessionsChanged();
    void startGauges(std::weak_ptr<Core> core);
    void stopGauges();

private:
    struct TopicSubs {
        std::vector<Subscription*> list;
        int iterating = 0;   // removals during a walk leave holes, compacted afterwards
        bool holes = false;
        uint64_t lastDepth = UINT64_MAX, lastBytes = UINT64_MAX;
        uint64_t delivered = 0;
        LoopTopicLog log;
    };
    void trim(TopicSubs& t);  // forget log entries every lane has passed
    TopicSubs& subs(size_t ns, size_t topic) { return subs_[ns][topic]; }
    void compact(TopicSubs& t);

    Core& core_;
    net::EventLoop& loop_;
    size_t index_;
    std::vector<std::vector<TopicSubs>> subs_;                      // [ns][topic]
    std::vector<std::unique_ptr<std::atomic<uint32_t>[]>> counts_;  // [ns][topic]
    std::vector<std::unordered_map<std::string, Session*>> sessions_;  // [ns] id -> session
    net::TimerId gaugeTimer_ = 0;
    uint64_t lastSessionSyncMs_ = 0;
    bool syncPosted_ = false;
    std::vector<char> detachedReported_;  // [ns] last report had detached sessions: report the zero too
    std::vector<TopicLog::Entry> scratch_;  // reused by processTopic
};

}  // namespace sf::delivery
