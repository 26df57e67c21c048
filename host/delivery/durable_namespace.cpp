#include "delivery/durable_namespace.hpp"

#include <time.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "common/log.hpp"
#include "delivery/durable_journal.hpp"
#include "delivery/loop_shard.hpp"
#include "delivery/recovery.hpp"
#include "delivery/session.hpp"

namespace sf::delivery::durable {

namespace {

uint64_t cpuMs() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// After the batch is on disk: what publishParsed does after building a message (append
// once, count, wake the loops with subscribers; docs/message-path.md).
void commitTo(Core& core, NamespaceRuntime& ns, std::vector<Committed>& batch) {
    std::vector<size_t> wake;
    std::weak_ptr<Core> weak = core.weak_from_this();
    for (Committed& c : batch) {
        MessagePtr m = core.buildMessageWithId(ns, c.topic, std::move(c.payload), std::move(c.key), "msg-" + std::to_string(c.number));
        uint64_t offset = 0;
        wake.clear();
        if (!ns.logs[c.topic]->append(m, &offset, wake) || offset != c.offset) {
            // admit() checked the room and only the writer appends to a durable topic: this
            // would be a bug, said loudly, not a silent renumbering.
            log::error("durable_commit_mismatch", {{"namespace", ns.path()}, {"topic", ns.topic(c.topic)},
                                                   {"journal_offset", std::to_string(c.offset)}, {"log_offset", std::to_string(offset)}});
        }
        Metrics::TopicCounters& tm = *ns.topicMetrics[c.topic];
        tm.published.fetch_add(1, std::memory_order_relaxed);
        tm.publishedBytes.fetch_add(m->bytes, std::memory_order_relaxed);
        const size_t nsIdx = ns.index, topic = c.topic;
        for (size_t i : wake) {
            LoopShard* shard = core.shards[i].get();
            shard->loop().post([weak, shard, nsIdx, topic] {
                if (auto cc = weak.lock()) shard->processTopic(nsIdx, topic);
            });
        }
    }
}

// What restored lanes build their messages from, on demand (docs/recovery.md): the topic's
// replayed messages (where each record is) and the mapped journal, kept while some lane
// still needs them. With several lanes on the topic a message is built once (a weak cache:
// lanes on several loops share it).
struct HeldTopic {
    std::shared_ptr<const TopicMessages> messages;
    std::shared_ptr<const SegmentBytes> bytes;
    Core* core = nullptr;
    NamespaceRuntime* ns = nullptr;
    size_t topic = 0;
    bool shared = false;
    std::mutex mu;
    std::unordered_map<uint64_t, std::weak_ptr<const OutMessage>> built;
};

MessagePtr buildHeld(HeldTopic& h, uint64_t offset, const StoredMessage& e) {
    auto make = [&] {
        MessagePtr m = h.core->buildMessageWithId(*h.ns, h.topic, std::string(payloadOf(*h.bytes, e)), std::string(keyOf(*h.bytes, e)),
                                                  "msg-" + std::to_string(e.number));
        m->logOffset = offset;
        return m;
    };
    if (!h.shared) return make();
    std::lock_guard<std::mutex> lk(h.mu);
    std::weak_ptr<const OutMessage>& w = h.built[offset];
    MessagePtr m = w.lock();
    if (!m) w = m = make();
    return m;
}

// The journal's sessions come back held (docs/recovery.md): detached, each lane owing its
// unacked messages (offset order), found in the topic's replayed messages and built from
// the mapped journal only when the lane sends them, so that the server serves again
// without building, or even listing, every held message first. They expire
// maxDisconnectionDurationMs after this start.
void restoreSessions(const std::shared_ptr<Core>& core, NamespaceRuntime& ns, DurableState& st) {
    std::vector<std::shared_ptr<HeldTopic>> topics(ns.cfg.topics.size());
    std::vector<size_t> lanesOn(ns.cfg.topics.size(), 0);
    for (auto& [pid, stored] : st.sessions())
        for (auto& [topic, lane] : stored.lanes)
            if (long t = ns.findTopic(topic); t >= 0) ++lanesOn[static_cast<size_t>(t)];
    size_t i = 0;
    uint64_t restoredMessages = 0;
    for (auto& [pid, stored] : st.sessions()) {
        LoopShard& shard = *core->shards[i++ % core->shards.size()];
        auto s = std::make_shared<Session>(core, ns, shard, stored.id);
        s->pid = pid;
        s->principal = stored.principal;
        s->connectToken = stored.token;
        shard.addSession(s.get());
        core->registerClient(ns.index, s->id, &shard);
        for (auto& [topic, lane] : stored.lanes) {
            const long t = ns.findTopic(topic);
            if (t < 0) {
                log::warn("durable_topic_gone", {{"namespace", ns.path()}, {"topic", topic}, {"client", s->id}});
                continue;
            }
            const size_t ti = static_cast<size_t>(t);
            std::shared_ptr<HeldTopic>& h = topics[ti];
            if (!h) {
                h = std::make_shared<HeldTopic>();
                // Shares the replayed array (and the journal writer's), no copy.
                auto mit = st.messages().find(topic);
                h->messages = std::make_shared<const TopicMessages>(mit == st.messages().end() ? TopicMessages() : mit->second);
                h->bytes = st.bytes();
                h->core = core.get();  // every session holds Core
                h->ns = &ns;
                h->topic = ti;
                h->shared = lanesOn[ti] > 1;
            }
            Subscription& sub = s->subscribe(ti);
            const size_t pending = pendingCount(*h->messages, lane);
            restoredMessages += pending;
            if (pending == 0) continue;
            const size_t from = static_cast<size_t>(h->messages->lower_bound(lane.floor) - h->messages->begin());
            sub.restoreLater([h, lane = lane, next = from](std::vector<MessagePtr>& out, size_t max) mutable {
                const TopicMessages& msgs = *h->messages;
                for (size_t added = 0; next < msgs.size() && added < max; ++next) {
                    auto& [offset, m] = *(msgs.begin() + static_cast<long>(next));
                    if (lane.isDone(offset)) continue;
                    out.push_back(buildHeld(*h, offset, m));
                    ++added;
                }
                return next < msgs.size();
            });
        }
        core->held.add(pid, s, &shard, ns.index, s->id, s->principal, s->connectToken);
        recovery::hold(*core, s, 0);
    }
    if (!st.sessions().empty())
        log::info("durable_sessions_restored", {{"namespace", ns.path()}, {"sessions", std::to_string(st.sessions().size())},
                                                {"messages", std::to_string(restoredMessages)}});
}

DurableJournal* journalOf(const Session& s) {
    return s.pid.empty() ? nullptr : s.ns.journal.get();
}

Record sessionRecord(RecordType type, const Session& s) {
    Record r;
    r.type = type;
    r.pid = s.pid;
    return r;
}

}  // namespace

std::string journalDir(const config::ServerConfig& server, const config::NamespaceConfig& ns) {
    // Names become one path component each: anything but [A-Za-z0-9._-] is %XX.
    auto component = [](const std::string& in) {
        static const char* hex = "0123456789ABCDEF";
        std::string out;
        for (unsigned char c : in) {
            if (std::isalnum(c) || c == '-' || c == '_' || (c == '.' && !out.empty())) out.push_back(static_cast<char>(c));
            else out += {'%', hex[c >> 4], hex[c & 15]};
        }
        return out;
    };
    return server.spillRootPath + "/" + component(server.name) + "/durable/" + component(ns.path);
}

void openNamespace(const std::shared_ptr<Core>& core, NamespaceRuntime& ns) {
    JournalOptions o;
    o.dir = journalDir(core->cfg, ns.cfg);
    o.topics = ns.cfg.topics;
    o.messageCounter = &core->messageCounter;
    // What the topic logs could take at once: more waiting for the writer is refused.
    for (const auto& log : ns.logs) {
        o.maxQueuedPublishes += log->limits().maxMessages;
        o.maxQueuedBytes += log->limits().maxBytes;
    }
    JournalHooks h;
    NamespaceRuntime* nsp = &ns;
    Core* c = core.get();  // the journal is sealed before Core goes (Delivery's destructor)
    h.admit = [nsp](size_t t, uint64_t pending, uint64_t pendingBytes, uint64_t bytes) {
        return nsp->logs[t]->fits(pending, pendingBytes, bytes);
    };
    h.commit = [c, nsp](std::vector<Committed>& batch) { commitTo(*c, *nsp, batch); };
    auto journal = std::make_shared<DurableJournal>(std::move(o), std::move(h));
    const uint64_t wall0 = net::monotonicMs(), cpu0 = cpuMs();
    DurableState st = journal->open();
    const uint64_t wall1 = net::monotonicMs(), cpu1 = cpuMs();
    for (size_t t = 0; t < ns.logs.size(); ++t) ns.logs[t]->resumeAt(journal->nextOffset(t));
    ns.journal = journal;
    restoreSessions(core, ns, st);
    // What a restart costs before the server serves again (bench/durable_restart.js).
    log::info("durable_namespace_ready", {{"namespace", ns.path()}, {"replay_ms", std::to_string(wall1 - wall0)},
                                          {"replay_cpu_ms", std::to_string(cpu1 - cpu0)},
                                          {"restore_ms", std::to_string(net::monotonicMs() - wall1)},
                                          {"restore_cpu_ms", std::to_string(cpuMs() - cpu1)}});
    journal->start();
}

void recordOpen(const Session& s) {
    DurableJournal* j = journalOf(s);
    if (!j) return;
    Record r = sessionRecord(RecordType::Open, s);
    r.id = s.id;
    r.principal = s.principal;
    r.token = s.connectToken;
    j->append(std::move(r));
}

void recordSubscribe(const Session& s, size_t topic) {
    DurableJournal* j = journalOf(s);
    if (!j) return;
    Record r = sessionRecord(RecordType::Subscribe, s);
    r.topic = s.ns.topic(topic);
    // The lane takes what its loop reads from now on (LoopShard::add).
    r.offset = s.ns.logs[topic]->readerNext(s.shard.index());
    j->append(std::move(r));
}

void recordUnsubscribe(const Session& s, size_t topic) {
    DurableJournal* j = journalOf(s);
    if (!j) return;
    Record r = sessionRecord(RecordType::Unsubscribe, s);
    r.topic = s.ns.topic(topic);
    j->append(std::move(r));
}

void recordDone(const Session& s, size_t topic, uint64_t first, uint64_t last) {
    if (DurableJournal* j = journalOf(s)) j->appendDone(s.pid, topic, first, last);
}

void recordEnd(const Session& s) {
    if (DurableJournal* j = journalOf(s)) j->append(sessionRecord(RecordType::End, s));
}

}  // namespace sf::delivery::durable
