#include "delivery/loop_shard.hpp"

#include <algorithm>

#include "delivery/session.hpp"

namespace sf::delivery {

LoopShard::LoopShard(Core& core, net::EventLoop& loop, size_t index) : core_(core), loop_(loop), index_(index) {
    const size_t n = core.cfg.namespaces.size();
    subs_.resize(n);
    counts_.resize(n);
    sessions_.resize(n);
    for (size_t i = 0; i < n; ++i) {
        size_t topics = core.cfg.namespaces[i].topics.size();
        subs_[i].resize(topics);
        counts_[i].reset(new std::atomic<uint32_t>[topics]);
        for (size_t t = 0; t < topics; ++t) counts_[i][t].store(0, std::memory_order_relaxed);
    }
}

uint32_t LoopShard::subscriberCount(size_t ns, size_t topic) const {
    return counts_[ns][topic].load(std::memory_order_relaxed);
}

void LoopShard::fanOut(size_t ns, size_t topic, const MessagePtr& m) {
    TopicSubs& t = subs(ns, topic);
    const size_t n = t.list.size();  // subscribers added during the walk wait for the next message
    ++t.iterating;
    for (size_t i = 0; i < n; ++i) {
        if (Subscription* s = t.list[i]) s->deliver(m);
    }
    if (--t.iterating == 0 && t.holes) compact(t);
}

void LoopShard::deliverTo(size_t ns, const std::string& clientId, size_t topic, const MessagePtr& m) {
    Session* s = findSession(ns, clientId);
    if (!s || s->closed) return;
    if (Subscription* sub = s->subscription(topic)) sub->deliver(m);
}

void LoopShard::add(size_t ns, Subscription* s) {
    TopicSubs& t = subs(ns, s->topic());
    s->listIndex = t.list.size();
    t.list.push_back(s);
    counts_[ns][s->topic()].fetch_add(1, std::memory_order_relaxed);
}

void LoopShard::remove(size_t ns, Subscription* s) {
    TopicSubs& t = subs(ns, s->topic());
    size_t i = s->listIndex;
    if (i >= t.list.size() || t.list[i] != s) return;
    counts_[ns][s->topic()].fetch_sub(1, std::memory_order_relaxed);
    if (t.iterating) {
        t.list[i] = nullptr;  // a walk is under way: leave a hole
        t.holes = true;
        return;
    }
    t.list[i] = t.list.back();
    t.list[i]->listIndex = i;
    t.list.pop_back();
}

void LoopShard::compact(TopicSubs& t) {
    t.list.erase(std::remove(t.list.begin(), t.list.end(), nullptr), t.list.end());
    for (size_t i = 0; i < t.list.size(); ++i) t.list[i]->listIndex = i;
    t.holes = false;
}

void LoopShard::addSession(Session* s) { sessions_[s->ns.index][s->id] = s; }

void LoopShard::removeSession(Session* s) {
    auto& m = sessions_[s->ns.index];
    auto it = m.find(s->id);
    if (it != m.end() && it->second == s) m.erase(it);
}

Session* LoopShard::findSession(size_t ns, const std::string& id) const {
    auto it = sessions_[ns].find(id);
    return it == sessions_[ns].end() ? nullptr : it->second;
}

std::vector<Session*> LoopShard::sessions() const {
    std::vector<Session*> out;
    for (auto& m : sessions_)
        for (auto& kv : m) out.push_back(kv.second);
    return out;
}

// Max depth/bytes over this loop's lanes per topic; published only when changed so an idle
// server takes no locks.
void LoopShard::refreshGauges() {
    for (size_t ns = 0; ns < subs_.size(); ++ns) {
        for (size_t topic = 0; topic < subs_[ns].size(); ++topic) {
            TopicSubs& t = subs_[ns][topic];
            uint64_t depth = 0, bytes = 0;
            for (Subscription* s : t.list) {
                if (!s) continue;
                depth = std::max<uint64_t>(depth, s->lane().size());
                bytes = std::max<uint64_t>(bytes, s->lane().bytes());
            }
            if (depth == t.lastDepth && bytes == t.lastBytes) continue;
            t.lastDepth = depth;
            t.lastBytes = bytes;
            core_.namespaces[ns]->topicMetrics[topic]->reportLaneMax(this, depth, bytes);
        }
    }
}

void LoopShard::startGauges(std::weak_ptr<Core> core) {
    if (gaugeTimer_) return;
    gaugeTimer_ = loop_.addTimer(core_.opts.gaugeRefreshMs, [this, core] {
        auto c = core.lock();
        if (!c) return;  // the server is gone (and this shard with it): touch nothing
        gaugeTimer_ = 0;
        refreshGauges();
        startGauges(core);
    });
}

void LoopShard::stopGauges() {
    if (gaugeTimer_) loop_.cancelTimer(gaugeTimer_);
    gaugeTimer_ = 0;
}

}  // namespace sf::delivery
