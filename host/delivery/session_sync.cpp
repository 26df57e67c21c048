// Cluster mode with connectionStateRecovery: each loop writes the records other nodes
// recover its sessions from when this node is gone (docs/cluster.md "Recovery across
// nodes"): a session's topics and, for AT_LEAST_ONCE, where in each topic's stream its
// client has acked up to. Written when they change, and often enough that a record
// outlives its node by maxDisconnectionDurationMs.
#include <algorithm>

#include "delivery/cluster_bus.hpp"
#include "delivery/loop_shard.hpp"
#include "delivery/session.hpp"

namespace sf::delivery {

void LoopShard::syncSessions() {
    ClusterBus* bus = core_.bus.get();
    if (!bus || !core_.cfg.recovery.enabled) return;
    const uint64_t now = net::monotonicMs();
    const uint64_t hold = static_cast<uint64_t>(std::max<int64_t>(1, core_.cfg.recovery.maxDisconnectionDurationMs));
    const uint64_t refresh = std::clamp<uint64_t>(hold / 2, 1000, 30000);
    const uint64_t ttl = hold + refresh + 2 * bus->sessionSyncMs();
    std::vector<RemoteSessionRecord> out;
    for (Session* s : sessions()) {
        if (s->closed || s->pid.empty()) continue;
        RemoteSessionRecord r;
        r.pid = s->pid;
        r.ns = s->ns.path();
        r.id = s->id;
        r.principal = s->principal;
        std::string sig = "p" + s->principal;  // never empty: "" means never written
        for (size_t t = 0; t < s->subs.size(); ++t) {
            if (!s->subs[t]) continue;
            r.topics.emplace_back(s->ns.topic(t), s->ns.ackRequired ? s->subs[t]->replayFloor() : std::string());
            sig += '\n' + r.topics.back().first + '\n' + r.topics.back().second;
        }
        if (sig == s->syncedRecord && now - s->syncedAtMs < refresh) continue;
        s->syncedRecord = std::move(sig);
        s->syncedAtMs = now;
        out.push_back(std::move(r));
    }
    if (!out.empty()) bus->storeSessions(std::move(out), ttl);
}

void LoopShard::sessionsChanged() {
    if (syncPosted_ || !core_.bus || !core_.cfg.recovery.enabled) return;
    syncPosted_ = true;
    std::weak_ptr<Core> weak = core_.weak_from_this();
    loop_.post([this, weak] {
        if (!weak.lock()) return;  // the server is gone, and this shard with it
        syncPosted_ = false;
        syncSessions();
    });
}

}  // namespace sf::delivery
