// Delivery::collectStats: one task per loop reads what that loop owns (its sessions, lanes
// and delivery counters), the caller merges. Each task keeps Core alive, so a loop that
// answers after the timeout touches nothing freed (as Delivery::shutdown's tasks do).
#include "delivery/delivery_stats.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <mutex>

#include "delivery/delivery.hpp"
#include "delivery/loop_shard.hpp"
#include "delivery/session.hpp"

namespace sf::delivery {

const std::array<const char*, DeliveryStats::kBuckets>& DeliveryStats::bucketLabels() {
    static const std::array<const char*, kBuckets> v = {"0", "1-10", "11-100", "101-1000", "1001-10000", ">10000"};
    return v;
}

size_t DeliveryStats::bucketOf(uint64_t depth) {
    size_t b = 0;
    for (uint64_t top = 0; b + 1 < kBuckets && depth > top; ++b) top = top ? top * 10 : 10;
    return b;
}

namespace {

bool deeper(const LaneView& a, const LaneView& b) {
    return a.messages != b.messages ? a.messages > b.messages : a.bytes > b.bytes;
}

// Keep the kDeepest deepest lanes in `top` (small: a sorted insert is enough).
void offer(std::vector<LaneView>& top, LaneView v) {
    if (top.size() == DeliveryStats::kDeepest && !deeper(v, top.back())) return;
    top.insert(std::upper_bound(top.begin(), top.end(), v, deeper), std::move(v));
    if (top.size() > DeliveryStats::kDeepest) top.pop_back();
}

// What one loop owns, read on that loop.
DeliveryStats readShard(Core& core, LoopShard& shard) {
    DeliveryStats out;
    const uint64_t now = net::monotonicMs();
    for (size_t n = 0; n < core.namespaces.size(); ++n) {
        const NamespaceRuntime& ns = *core.namespaces[n];
        out.namespaces.push_back({ns.path(), 0, 0});
        for (size_t t = 0; t < ns.cfg.topics.size(); ++t)
            out.topics.push_back({ns.path(), ns.topic(t), shard.subscriberCount(n, t), shard.deliveredCount(n, t), 0, 0});
    }
    std::vector<size_t> topicBase(core.namespaces.size(), 0);
    for (size_t n = 1; n < core.namespaces.size(); ++n) topicBase[n] = topicBase[n - 1] + core.namespaces[n - 1]->cfg.topics.size();
    for (Session* s : shard.sessions()) {
        if (s->closed) continue;
        const size_t n = s->ns.index;
        if (s->socket) (s->socket->isWebsocket() ? out.namespaces[n].websocket : out.namespaces[n].polling)++;
        for (size_t t = 0; t < s->subs.size(); ++t) {
            Subscription* sub = s->subs[t].get();
            if (!sub) continue;
            LaneView v;
            v.messages = sub->depth();
            v.bytes = sub->queuedBytes();
            v.inFlight = sub->lane().inFlight();
            v.spilled = sub->spilledPending();
            ++out.lanes;
            ++out.depthHistogram[DeliveryStats::bucketOf(v.messages)];
            TopicLoad& tl = out.topics[topicBase[n] + t];
            tl.pendingMessages += v.messages;
            tl.pendingBytes += v.bytes;
            if (v.spilled || sub->lane().canSpill()) {
                SpillLoad& sp = out.spill[s->ns.cfg.spillBackend];
                if (v.spilled) ++sp.lanes;
                sp.records += v.spilled;
            }
            if (v.messages == 0 && v.spilled == 0) continue;
            if (out.deepest.size() == DeliveryStats::kDeepest && v.messages < out.deepest.back().messages) continue;
            // Pending = the lane's own entries (older) then its accepted log range.
            const OutMessage* oldest = nullptr;
            if (!sub->lane().empty()) oldest = sub->lane().at(0).msg.get();
            else if (v.messages) oldest = shard.topicLog(n, t).at(sub->cursor()).msg.get();
            if (oldest && now > oldest->createdMs) v.oldestAgeMs = now - oldest->createdMs;
            v.clientId = s->id;
            v.ns = s->ns.path();
            v.topic = s->ns.topic(t);
            offer(out.deepest, std::move(v));
        }
    }
    return out;
}

void merge(DeliveryStats& into, DeliveryStats&& part) {
    if (into.namespaces.empty()) {
        std::swap(into.namespaces, part.namespaces);
        std::swap(into.topics, part.topics);
    } else {
        for (size_t i = 0; i < into.namespaces.size() && i < part.namespaces.size(); ++i) {
            into.namespaces[i].websocket += part.namespaces[i].websocket;
            into.namespaces[i].polling += part.namespaces[i].polling;
        }
        for (size_t i = 0; i < into.topics.size() && i < part.topics.size(); ++i) {
            TopicLoad& a = into.topics[i];
            const TopicLoad& b = part.topics[i];
            a.subscribers += b.subscribers;
            a.delivered += b.delivered;
            a.pendingMessages += b.pendingMessages;
            a.pendingBytes += b.pendingBytes;
        }
    }
    for (size_t b = 0; b < DeliveryStats::kBuckets; ++b) into.depthHistogram[b] += part.depthHistogram[b];
    for (auto& v : part.deepest) offer(into.deepest, std::move(v));
    for (auto& [name, sp] : part.spill) {
        into.spill[name].lanes += sp.lanes;
        into.spill[name].records += sp.records;
    }
    into.lanes += part.lanes;
    into.loopBusyUs += part.loopBusyUs;
}

}  // namespace

DeliveryStats Delivery::collectStats(uint64_t timeoutMs) const {
    Core& core = *core_;
    struct Shared {
        std::mutex mu;
        std::vector<DeliveryStats> parts;
    };
    auto shared = std::make_shared<Shared>();
    std::vector<std::future<void>> waits;
    for (auto& sh : core.shards) {
        auto done = std::make_shared<std::promise<void>>();
        waits.push_back(done->get_future());
        LoopShard* shard = sh.get();
        shard->loop().post([keep = core.shared_from_this(), shard, shared, done] {
            const auto t0 = std::chrono::steady_clock::now();
            DeliveryStats part = readShard(*keep, *shard);
            part.loopBusyUs = static_cast<uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
            {
                std::lock_guard<std::mutex> lk(shared->mu);
                shared->parts.push_back(std::move(part));
            }
            done->set_value();
        });
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    for (auto& w : waits) w.wait_until(deadline);
    DeliveryStats out;
    std::lock_guard<std::mutex> lk(shared->mu);
    out.loops = core.shards.size();
    out.loopsAnswered = shared->parts.size();
    for (auto& p : shared->parts) merge(out, std::move(p));
    shared->parts.clear();  // a late loop appends to an empty list nobody reads
    size_t limited = 0;
    for (auto& l : core.limiter.limited(net::monotonicMs(), DeliveryStats::kLimitedShown, &limited))
        out.limitedAddresses.push_back({l.ip, l.failures, l.remainingMs});
    out.limitedAddressesTotal = limited;
    if (out.namespaces.empty()) {  // no loop answered: still name what is configured
        for (auto& ns : core.namespaces) {
            out.namespaces.push_back({ns->path(), 0, 0});
            for (size_t t = 0; t < ns->cfg.topics.size(); ++t) out.topics.push_back({ns->path(), ns->topic(t), 0, 0, 0, 0});
        }
    }
    return out;
}

}  // namespace sf::delivery
