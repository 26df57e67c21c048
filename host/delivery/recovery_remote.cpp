#include "delivery/recovery_remote.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "common/log.hpp"
#include "delivery/cluster_bus.hpp"
#include "delivery/delivery.hpp"
#include "delivery/loop_shard.hpp"
#include "delivery/session.hpp"
#include "delivery/stream_id.hpp"

namespace sf::delivery {

namespace {

HandedMessage handed(const NamespaceRuntime& ns, const OutMessage& m, uint32_t retries) {
    HandedMessage h;
    h.topic = ns.topic(m.topicIndex);
    h.messageId = m.messageId;
    h.streamId = m.streamId;
    h.payloadJson = m.payload;
    h.attachments = m.attachments;
    h.retries = retries;
    return h;
}

}  // namespace

// The previous owner's side: another node claimed this session (docs/cluster.md). Its
// lanes and replay history leave with the answer; the stale connection, if any, gets
// DISCONNECT; the spill stays here and is dropped (the other node cannot read it), counted
// in the answer.
void Delivery::handOver(const std::string& pid, const std::string& nsPath, std::function<void(HandOver)> done) {
    NamespaceRuntime* n = core_->findNamespace(nsPath);
    HeldSessions::Claim c;
    if (!n || !core_->held.claim(pid, n->index, c) || !c.session || !c.shard) {
        HandOver h;
        h.ownerAnswered = true;
        done(std::move(h));
        return;
    }
    std::weak_ptr<Core> wc = core_;
    c.shard->loop().post([wc, old = c.session, done = std::move(done)] {
        HandOver h;
        h.ownerAnswered = true;
        auto core = wc.lock();
        if (!core || old->closed) return done(std::move(h));
        h.ownerHeld = true;
        NamespaceRuntime& ns = old->ns;
        recovery::takeOver(*old);
        if (old->holdTimer) {
            old->shard.loop().cancelTimer(old->holdTimer);
            old->holdTimer = 0;
        }
        for (size_t t = 0; t < old->subs.size(); ++t) {
            if (!old->subs[t]) continue;
            old->shard.processTopic(ns.index, t);  // everything published so far is in its lanes
            h.spillLost += old->subs[t]->spilledPending();
            for (auto& e : old->subs[t]->handOut()) h.pending.push_back(handed(ns, *e.msg, e.retries));
        }
        for (auto& e : old->history.entries()) h.history.push_back(handed(ns, *e.msg, 0));
        const std::string id = old->id;
        log::info("session_handed_over", {{"namespace", ns.path()}, {"client", id},
                                          {"pending", std::to_string(h.pending.size())},
                                          {"history", std::to_string(h.history.size())},
                                          {"spill_dropped", std::to_string(h.spillLost)}});
        old->close("handed over");
        core->notify([&](Listener& l) { l.onClientDisconnected(ClientDisconnectedEvent{ns.path(), id, "moved to another node"}); });
        done(std::move(h));
    });
}

namespace recovery {

namespace {

// A message as this node holds it, rebuilt from what crossed nodes (same messageId).
MessagePtr rebuild(Core& core, NamespaceRuntime& ns, size_t topic, const HandedMessage& h) {
    json::Value v;
    std::string err;
    if (!json::tryParse(h.payloadJson, v, err)) return nullptr;
    MessagePtr m = core.buildMessageWithId(ns, topic, h.payloadJson, coalesceKeyOf(v, ns.cfg.coalesceKey, ns.topic(topic)),
                                           h.messageId, h.attachments);
    std::const_pointer_cast<OutMessage>(m)->streamId = h.streamId;  // not shared yet
    return m;
}

// On the new session's loop, its lanes open: what was gathered goes ahead of what the
// lanes took meanwhile, each message once.
void merge(Core& core, Session& session, HandOver& h) {
    NamespaceRuntime& ns = session.ns;
    std::unordered_map<size_t, Subscription::Moved> moved;
    std::unordered_set<std::string> seen;
    std::vector<std::string> historyIds;
    const uint64_t k = std::max<size_t>(1, session.topicCount);
    for (auto& hm : h.history) {
        long t = ns.findTopic(hm.topic);
        if (t < 0 || !session.subs[static_cast<size_t>(t)] || !seen.insert(hm.messageId).second) continue;
        if (MessagePtr m = rebuild(core, ns, static_cast<size_t>(t), hm)) {
            session.history.record(m, 0, uint64_t(ns.limits.maxMessages) * k, ns.limits.maxBytes * k);
            historyIds.push_back(hm.messageId);
        }
    }
    auto take = [&](const HandedMessage& hm) {
        long t = ns.findTopic(hm.topic);
        if (t < 0 || !session.subs[static_cast<size_t>(t)] || !seen.insert(hm.messageId).second) return;
        MessagePtr m = rebuild(core, ns, static_cast<size_t>(t), hm);
        if (!m) return;
        LaneEntry e;
        e.msg = std::move(m);
        e.retries = hm.retries;
        moved[static_cast<size_t>(t)].entries.push_back(std::move(e));
    };
    for (auto& hm : h.pending) take(hm);
    for (auto& hm : h.replay) take(hm);
    for (auto& [t, mv] : moved) {
        // AT_LEAST_ONCE: the previous node's lane and the stream entries after the floor,
        // in stream order (entries that never were in a stream, publishTo, first).
        if (ns.ackRequired)
            std::stable_sort(mv.entries.begin(), mv.entries.end(), [](const LaneEntry& a, const LaneEntry& b) {
                return streamIdLess(a.msg->streamId, b.msg->streamId);
            });
    }
    for (size_t t = 0; t < session.subs.size(); ++t) {
        if (!session.subs[t]) continue;
        Subscription::Moved mv;
        if (auto it = moved.find(t); it != moved.end()) mv = std::move(it->second);
        mv.alsoHave = historyIds;
        session.subs[t]->moveIn(std::move(mv));
    }
}

}  // namespace

bool restoreRemote(const std::shared_ptr<Core>& core, NamespaceRuntime& ns, const sio::SocketPtr& s,
                   const std::string& token, const Done& done, std::function<void()> fresh) {
    if (!core->bus || !core->cfg.recovery.enabled) return false;
    std::string pid, offset;
    if (!recoveryAuth(*s, pid, offset)) return false;
    std::weak_ptr<Core> wc = core;
    NamespaceRuntime* nsp = &ns;
    net::EventLoop* loop = &s->loop();
    core->bus->claimSession(pid, ns.path(), [wc, nsp, loop, s, pid, offset, token, done, fresh](bool found, RemoteSessionRecord rec) {
        loop->post([wc, nsp, loop, s, pid, offset, token, done, fresh, found, rec = std::move(rec)]() mutable {
            auto core = wc.lock();
            if (!core) return;
            LoopShard* here = core->shardFor(*loop);
            if (!found || !here || !core->bus) return fresh();
            // The session lives here from now on: same id and pid, lanes open at once so
            // nothing published from now on is missed, then the rest is gathered.
            s->adoptId(rec.id);
            auto session = std::make_shared<Session>(core, *nsp, *here, *s);
            session->pid = pid;
            session->principal = rec.principal;
            session->connectToken = token;
            session->socket = nullptr;  // nothing goes out before the older messages are in
            here->addSession(session.get());
            core->registerClient(nsp->index, session->id, here);
            core->held.add(pid, session, here, nsp->index, session->id, session->principal, token);
            RemoteSessionRecord want = rec;
            want.topics.clear();
            for (auto& [topic, floor] : rec.topics) {
                long t = nsp->findTopic(topic);
                if (t < 0) continue;  // a topic this node is not configured with
                session->subscribe(static_cast<size_t>(t));
                want.topics.emplace_back(topic, floor);
                // Named in an init-capture: clang before C++20 cannot capture a structured binding.
                core->notify([&, &name = topic](Listener& l) { l.onSubscribed(SubscribedEvent{nsp->path(), session->id, name}); });
            }
            log::debug("session_claimed_remote", {{"namespace", nsp->path()}, {"client", session->id}, {"from", rec.node},
                                                  {"topics", std::to_string(want.topics.size())}});
            core->bus->gatherMissed(want, [wc, loop, session, s, offset, done, from = rec.node](HandOver h) {
                loop->post([wc, session, s, offset, done, from, h = std::move(h)]() mutable {
                    auto core = wc.lock();
                    if (!core || session->closed) return;
                    NamespaceRuntime& ns = session->ns;
                    merge(*core, *session, h);
                    // BEST_EFFORT messages reach a node only while it has subscribers: what
                    // the previous node sent while it was dying, or held when it died, is
                    // gone with it. Counted like any replay gap.
                    const bool beLost = !h.ownerHeld && !ns.ackRequired && session->topicCount > 0;
                    if (beLost || h.spillLost) {
                        ns.nsMetrics->recoveryGaps.fetch_add(1, std::memory_order_relaxed);
                        log::warn("recovery_gap", {{"namespace", ns.path()}, {"client", session->id}, {"from_node", from},
                                                   {"reason", h.spillLost ? "spill stays on the previous node"
                                                                          : "previous node gone: its BEST_EFFORT lanes with it"},
                                                   {"spill_dropped", std::to_string(h.spillLost)}});
                    }
                    log::info("session_moved_in", {{"namespace", ns.path()}, {"client", session->id}, {"from_node", from},
                                                   {"previous_node_answered", h.ownerHeld ? "true" : "false"},
                                                   {"handed", std::to_string(h.pending.size())},
                                                   {"history", std::to_string(h.history.size())},
                                                   {"stream_replay", std::to_string(h.replay.size())}});
                    attach(core, session, s, offset, done);
                });
            });
        });
    });
    return true;
}

}  // namespace recovery
}  // namespace sf::delivery
