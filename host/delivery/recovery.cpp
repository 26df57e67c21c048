#include "delivery/recovery.hpp"

#include <openssl/rand.h>

#include <stdexcept>
#include <utility>

#include "common/log.hpp"
#include "delivery/loop_shard.hpp"
#include "delivery/session.hpp"

namespace sf::delivery::recovery {

namespace {

using json::Value;

uint64_t queuedOf(const Session& s) {
    uint64_t n = 0;
    for (auto& sub : s.subs)
        if (sub) n += sub->depth() + sub->spilledPending();
    return n;
}

// The session is gone for good: nobody claimed it in time.
void expire(Core& core, const std::shared_ptr<Session>& s) {
    NamespaceRuntime& ns = s->ns;
    const uint64_t queued = queuedOf(*s);
    ns.nsMetrics->sessionsExpired.fetch_add(1, std::memory_order_relaxed);
    log::info("session_expired", {{"server", core.cfg.name}, {"namespace", ns.path()}, {"client", s->id},
                                  {"queued_dropped", std::to_string(queued)},
                                  {"away_ms", std::to_string(net::monotonicMs() - s->detachedAtMs)}});
    const std::string id = s->id;
    s->close("recovery expired");
    core.notify([&](Listener& l) { l.onSessionExpired(SessionExpiredEvent{ns.path(), id, queued}); });
}

}  // namespace

// The client's previous connection is still open on this loop (it noticed the drop before
// the server did): that connection loses the session and is told so.
void takeOver(Session& old) {
    sio::Socket* prev = old.socket;
    if (!prev) return;
    old.detach(prev->messagesConfirmed());
    prev->userData.reset();  // its SessionHolder lets go without closing (detached)
    prev->disconnect();      // DISCONNECT to the stale client; the handler finds no session
    old.ns.nsMetrics->disconnections.fetch_add(1, std::memory_order_relaxed);
    old.ns.nsMetrics->active.fetch_sub(1, std::memory_order_relaxed);
}

// On s's loop, with the session's lanes on this loop: the client has it back.
void attach(const std::shared_ptr<Core>& core, const std::shared_ptr<Session>& session, const sio::SocketPtr& s,
            const std::string& offset, const Done& done) {
    NamespaceRuntime& ns = session->ns;
    if (session->holdTimer) {
        session->shard.loop().cancelTimer(session->holdTimer);
        session->holdTimer = 0;
    }
    session->uncountHeld();
    session->detached = false;
    session->socket = s.get();
    session->remote = s->remoteAddress();
    s->userData = std::make_shared<SessionHolder>(session);
    core->held.add(session->pid, session, &session->shard, ns.index, session->id, session->principal,
                   session->connectToken);
    done(true, Value(Value::Object{{"pid", Value(session->pid)}}));
    if (!s->connected()) {
        // Gone again before the answer went out: held once more, from now.
        session->detached = true;
        s->userData.reset();
        hold(*core, session, 0);
        return;
    }
    ns.nsMetrics->connections.fetch_add(1, std::memory_order_relaxed);
    ns.nsMetrics->active.fetch_add(1, std::memory_order_relaxed);
    ns.nsMetrics->sessionsRecovered.fetch_add(1, std::memory_order_relaxed);
    // What was sent before the drop and not proven received, after the client's offset, in
    // the order it was sent (docs/recovery.md); then the lanes resume.
    uint64_t gap = 0;
    std::vector<MessagePtr> missed = session->history.after(offset, &gap);
    session->history.clear();
    for (auto& m : missed) {
        s->sendFrame(m->frame);
        session->recordSent(m);
    }
    if (gap) {
        ns.nsMetrics->recoveryGaps.fetch_add(1, std::memory_order_relaxed);
        log::warn("recovery_gap", {{"namespace", ns.path()}, {"client", session->id},
                                   {"evicted_unconfirmed", std::to_string(gap)}});
    }
    log::info("session_recovered", {{"server", core->cfg.name}, {"namespace", ns.path()}, {"client", session->id},
                                    {"remote", session->remote}, {"replayed", std::to_string(missed.size())},
                                    {"queued", std::to_string(queuedOf(*session))}});
    const std::string id = session->id, remote = session->remote, transport = s->isWebsocket() ? "websocket" : "polling";
    const uint64_t replayed = missed.size();
    core->notify([&](Listener& l) {
        l.onClientConnected(ClientConnectedEvent{ns.path(), id, transport, session->principal, remote});
        l.onSessionRecovered(SessionRecoveredEvent{ns.path(), id, transport, remote, replayed});
    });
    session->pumpAll();
}

namespace {

struct MovedTopic {
    size_t topic;
    Subscription::Moved lane;
};

}  // namespace

bool isAbnormal(const std::string& reason) {
    return reason != "client namespace disconnect" && reason != "server namespace disconnect" &&
           reason != "server shutting down";
}

std::string newPid() {
    static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char b[20];
    if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
    std::string out;
    out.reserve(sizeof b);
    for (unsigned char c : b) out.push_back(kAlphabet[c & 63]);
    return out;
}

void hold(Core& core, const std::shared_ptr<Session>& s, uint64_t confirmedMark) {
    if (!s->detached) s->detach(confirmedMark);
    if (!s->heldCounted) {
        s->heldCounted = true;
        s->ns.nsMetrics->detached.fetch_add(1, std::memory_order_relaxed);
    }
    core.held.hold(s->pid, s);
    std::weak_ptr<Session> weak = s;
    std::weak_ptr<Core> wc = core.weak_from_this();
    const auto ms = static_cast<uint64_t>(std::max<int64_t>(1, core.cfg.recovery.maxDisconnectionDurationMs));
    if (s->holdTimer) s->shard.loop().cancelTimer(s->holdTimer);
    s->holdTimer = s->shard.loop().addTimer(ms, [weak, wc] {
        auto ss = weak.lock();
        auto c = wc.lock();
        if (!ss || !c) return;
        ss->holdTimer = 0;
        if (c->held.expire(ss->pid, ss.get())) expire(*c, ss);
    });
}

bool recoveryAuth(const sio::Socket& s, std::string& pid, std::string& offset) {
    const Value& auth = s.auth();
    if (!auth.isObject()) return false;
    const Value* p = auth.find("pid");
    if (!p || !p->isString() || p->asString().empty()) return false;
    pid = p->asString();
    offset.clear();
    if (const Value* o = auth.find("offset"); o && o->isString()) offset = o->asString();
    return true;
}

bool restore(const std::shared_ptr<Core>& core, NamespaceRuntime& ns, const sio::SocketPtr& s, const Done& done) {
    std::string pid, offset;
    if (!recoveryAuth(*s, pid, offset)) return false;
    HeldSessions::Claim c;
    if (!core->held.claim(pid, ns.index, c)) return false;
    LoopShard* here = core->shardFor(s->loop());
    if (!here || !c.session) return false;
    log::debug("session_claimed", {{"namespace", ns.path()}, {"client", c.id}, {"detached", c.wasDetached ? "true" : "false"},
                                   {"same_loop", c.shard == here ? "true" : "false"}});
    s->adoptId(c.id);

    if (c.shard == here) {
        if (c.session->closed) return false;
        takeOver(*c.session);
        attach(core, c.session, s, offset, done);
        return true;
    }

    // Held by another loop. Lanes are positions in their loop's log, so they move: new lanes
    // open here first (from now on this loop keeps what is published), then the old loop
    // hands over everything older, and the client directory points here from the start so
    // publishTo lands in the new lanes (docs/recovery.md).
    auto fresh = std::make_shared<Session>(core, ns, *here, *s);
    fresh->pid = c.session->pid;
    fresh->principal = c.principal;
    fresh->connectToken = c.connectToken;
    fresh->socket = nullptr;  // nothing goes out before the older messages arrive
    here->addSession(fresh.get());
    const std::vector<size_t> topics = core->subscribedTopics(ns.index, c.id);
    core->registerClient(ns.index, c.id, here);
    std::vector<std::pair<size_t, uint64_t>> starts;  // topic -> first offset the new lane has
    for (size_t t : topics) {
        fresh->subscribe(t);
        starts.emplace_back(t, ns.logs[t]->readerNext(here->index()));
    }
    LoopShard* there = c.shard;
    std::weak_ptr<Core> wc = core;
    there->loop().post([wc, old = c.session, fresh, starts, s, offset, done, there, here] {
        auto core = wc.lock();
        if (!core) return;
        auto moved = std::make_shared<std::vector<MovedTopic>>();
        auto history = std::make_shared<ReplayHistory>();
        if (!old->closed) {
            takeOver(*old);
            if (old->holdTimer) {
                there->loop().cancelTimer(old->holdTimer);
                old->holdTimer = 0;
            }
            NamespaceRuntime& ns = old->ns;
            for (size_t t = 0; t < old->subs.size(); ++t) {
                if (!old->subs[t]) continue;
                there->processTopic(ns.index, t);  // everything published so far is in its lanes
                uint64_t upTo = UINT64_MAX;
                for (auto& [topic, off] : starts)
                    if (topic == t) upTo = off;
                moved->push_back(MovedTopic{t, old->subs[t]->moveOut(upTo)});
            }
            *history = std::move(old->history);
            old->closeMoved();
        }
        here->loop().post([wc, fresh, moved, history, s, offset, done] {
            auto core = wc.lock();
            if (!core || fresh->closed) return;
            std::vector<char> keep(fresh->subs.size(), 0);
            for (auto& mt : *moved) {
                fresh->subscribe(mt.topic).moveIn(std::move(mt.lane));
                keep[mt.topic] = 1;
            }
            for (size_t t = 0; t < fresh->subs.size(); ++t)
                if (fresh->subs[t] && !keep[t]) fresh->unsubscribe(t);
            fresh->history = std::move(*history);
            attach(core, fresh, s, offset, done);
        });
    });
    return true;
}

}  // namespace sf::delivery::recovery
