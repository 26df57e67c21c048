// What one event loop owns: its sessions and, per namespace x topic, the list of its
// subscribers. A published message reaches a shard as ONE posted task; the shard walks
// only its own subscribers, without locks (loop thread only, except the atomic counts
// publish() reads to skip loops with no subscriber of the topic).
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "delivery/core.hpp"

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

    // Loop thread only.
    void fanOut(size_t ns, size_t topic, const MessagePtr& m);
    void deliverTo(size_t ns, const std::string& clientId, size_t topic, const MessagePtr& m);
    void add(size_t ns, Subscription* s);
    void remove(size_t ns, Subscription* s);
    void addSession(Session* s);
    void removeSession(Session* s);
    Session* findSession(size_t ns, const std::string& id) const;
    std::vector<Session*> sessions() const;
    void refreshGauges();
    void startGauges(std::weak_ptr<Core> core);
    void stopGauges();

private:
    struct TopicSubs {
        std::vector<Subscription*> list;
        int iterating = 0;   // removals during a walk leave holes, compacted afterwards
        bool holes = false;
        uint64_t lastDepth = UINT64_MAX, lastBytes = UINT64_MAX;
    };
    TopicSubs& subs(size_t ns, size_t topic) { return subs_[ns][topic]; }
    void compact(TopicSubs& t);

    Core& core_;
    net::EventLoop& loop_;
    size_t index_;
    std::vector<std::vector<TopicSubs>> subs_;                      // [ns][topic]
    std::vector<std::unique_ptr<std::atomic<uint32_t>[]>> counts_;  // [ns][topic]
    std::vector<std::unordered_map<std::string, Session*>> sessions_;  // [ns] id -> session
    net::TimerId gaugeTimer_ = 0;
};

}  // namespace sf::delivery
