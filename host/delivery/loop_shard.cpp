#include "delivery/loop_shard.hpp"

#include <algorithm>

#include "delivery/session.hpp"

namespace sf::delivery {

LoopShard::LoopShard(Core& core, net::EventLoop& loop, size_t index) : core_(core), loop_(loop), index_(index) {
    const size_t n = core.cfg.namespaces.size();
    subs_.resize(n);
    counts_.resize(n);
    sessions_.resize(n);
    detachedReported_.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
        size_t topics = core.cfg.namespaces[i].topics.size();
        subs_[i].reserve(topics);
        const uint64_t laneMaxBytes = std::max<int64_t>(1, core.cfg.namespaces[i].maxQueuedBytesPerClient);
        for (size_t t = 0; t < topics; ++t) {
            subs_[i].emplace_back();
            subs_[i].back().log = LoopTopicLog(laneMaxBytes);
        }
        counts_[i].reset(new std::atomic<uint32_t>[topics]);
        for (size_t t = 0; t < topics; ++t) counts_[i][t].store(0, std::memory_order_relaxed);
    }
}

uint32_t LoopShard::subscriberCount(size_t ns, size_t topic) const {
    return counts_[ns][topic].load(std::memory_order_relaxed);
}

void LoopShard::processTopic(size_t ns, size_t topic) {
    NamespaceRuntime& nsr = *core_.namespaces[ns];
    TopicSubs& t = subs(ns, topic);
    scratch_.clear();
    const uint64_t missed = nsr.logs[topic]->drain(index_, scratch_);
    const uint32_t lanes = counts_[ns][topic].load(std::memory_order_relaxed);
    if (lanes == 0) {  // the last subscriber left after the publish: nothing to keep
        scratch_.clear();
        if (!t.iterating) t.log.clear();
        return;
    }
    const uint64_t from = t.log.head();
    for (auto& e : scratch_) t.log.push(e.msg, e.offset);
    scratch_.clear();
    // A lossy TopicLog dropped these before this loop read them: for each lane it is what
    // DROP_OLDEST / keep-newest would have done (docs/message-path.md).
    if (missed) nsr.topicMetrics[topic]->dropped.fetch_add(missed * lanes, std::memory_order_relaxed);
    const size_t n = t.list.size();  // subscribers added during the walk start after this run
    ++t.iterating;
    for (size_t i = 0; i < n; ++i) {
        if (Subscription* s = t.list[i]) s->write(from);
    }
    if (--t.iterating == 0 && t.holes) compact(t);
    trim(t);
}

void LoopShard::trim(TopicSubs& t) {
    if (t.iterating) return;
    uint64_t min = t.log.head();
    for (Subscription* s : t.list)
        if (s) min = std::min(min, s->cursor());
    t.log.trimTo(min);
}

void LoopShard::deliverTo(size_t ns, const std::string& clientId, size_t topic, const MessagePtr& m) {
    Session* s = findSession(ns, clientId);
    if (!s || s->closed) return;
    if (Subscription* sub = s->subscription(topic)) sub->deliverDirect(m);
}

void LoopShard::add(size_t ns, Subscription* s) {
    TopicSubs& t = subs(ns, s->topic());
    if (counts_[ns][s->topic()].fetch_add(1, std::memory_order_relaxed) == 0) {
        // First lane of the topic on this loop: read the TopicLog from now on.
        if (!t.iterating) t.log.clear();
        core_.namespaces[ns]->logs[s->topic()]->activate(index_);
    }
    s->listIndex = t.list.size();
    t.list.push_back(s);
    s->startAt(t.log.head());
}

void LoopShard::remove(size_t ns, Subscription* s) {
    TopicSubs& t = subs(ns, s->topic());
    size_t i = s->listIndex;
    if (i >= t.list.size() || t.list[i] != s) return;
    if (counts_[ns][s->topic()].fetch_sub(1, std::memory_order_relaxed) == 1)
        core_.namespaces[ns]->logs[s->topic()]->deactivate(index_);
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
    for (size_t ns = 0; ns < sessions_.size(); ++ns) {
        // What detached sessions hold (docs/recovery.md): walked only while there are some.
        Metrics::NamespaceCounters& nm = *core_.namespaces[ns]->nsMetrics;
        if (nm.detached.load(std::memory_order_relaxed) <= 0 && !detachedReported_[ns]) continue;
        uint64_t msgs = 0, bytes = 0;
        bool any = false;
        for (auto& kv : sessions_[ns]) {
            if (!kv.second->detached) continue;
            any = true;
            for (auto& sub : kv.second->subs) {
                if (!sub) continue;
                msgs += sub->depth();
                bytes += sub->queuedBytes();
            }
        }
        nm.reportDetached(this, msgs, bytes);
        detachedReported_[ns] = any;
    }
    for (size_t ns = 0; ns < subs_.size(); ++ns) {
        for (size_t topic = 0; topic < subs_[ns].size(); ++topic) {
            TopicSubs& t = subs_[ns][topic];
            uint64_t depth = 0, bytes = 0;
            for (Subscription* s : t.list) {
                if (!s) continue;
                depth = std::max<uint64_t>(depth, s->depth());
                bytes = std::max<uint64_t>(bytes, s->queuedBytes());
            }
            trim(t);  // lanes that sent since the last publish free their part of the log
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
        if (c->bus && c->cfg.recovery.enabled && net::monotonicMs() - lastSessionSyncMs_ >= c->bus->sessionSyncMs()) {
            lastSessionSyncMs_ = net::monotonicMs();
            syncSessions();
        }
        startGauges(core);
    });
}

void LoopShard::stopGauges() {
    if (gaugeTimer_) loop_.cancelTimer(gaugeTimer_);
    gaugeTimer_ = 0;
}

}  // namespace sf::delivery
