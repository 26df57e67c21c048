#include "delivery/delivery.hpp"

#include <chrono>
#include <future>
#include <map>
#include <thread>

#include "common/log.hpp"
#include "delivery/durable_journal.hpp"
#include "delivery/durable_namespace.hpp"
#include "delivery/loop_shard.hpp"
#include "delivery/message.hpp"
#include "delivery/namespace_handler.hpp"
#include "delivery/session.hpp"
#include "delivery/spill_inflight.hpp"

namespace sf::delivery {

const char* toString(PublishStatus s) {
    switch (s) {
        case PublishStatus::Ok: return "OK";
        case PublishStatus::UnknownNamespace: return "UNKNOWN_NAMESPACE";
        case PublishStatus::UnknownTopic: return "UNKNOWN_TOPIC";
        case PublishStatus::UnknownClient: return "UNKNOWN_CLIENT";
        case PublishStatus::NotSubscribed: return "NOT_SUBSCRIBED";
        case PublishStatus::InvalidPayload: return "INVALID_PAYLOAD";
        case PublishStatus::Overloaded: return "OVERLOADED";
        case PublishStatus::Stopping: return "STOPPING";
        case PublishStatus::ClusterUnavailable: return "CLUSTER_UNAVAILABLE";
    }
    return "?";
}

// ------------------------------------------------------------------ Core

Core::Core(const config::ServerConfig& c, Metrics& m, DeliveryOptions o)
    : cfg(c),
      metrics(m),
      opts(o),
      limiter(static_cast<uint64_t>(std::max(1, c.authRateLimit.windowMs)),
              static_cast<uint32_t>(std::max(0, c.authRateLimit.maxFailures))),
      listeners_(std::make_shared<const std::vector<std::shared_ptr<Listener>>>()) {
    clients_.resize(c.namespaces.size());
}

LoopShard* Core::shardFor(const net::EventLoop& loop) const {
    auto it = shardByLoop.find(&loop);
    return it == shardByLoop.end() ? nullptr : it->second;
}

NamespaceRuntime* Core::findNamespace(const std::string& path) const {
    auto it = nsIndex.find(path);
    return it == nsIndex.end() ? nullptr : namespaces[it->second].get();
}

std::string Core::nextMessageId() {
    return messageIdPrefix + std::to_string(messageCounter.fetch_add(1, std::memory_order_relaxed) + 1);
}

void Core::validate(net::EventLoop& loop, std::string token, const NamespaceRuntime& ns, std::string topic,
                    const char* action, std::string remote, std::function<void(TokenCheck)> cb) {
    if (!validator) {
        cb(TokenCheck{false, 0, "", "Token auth is disabled"});
        return;
    }
    if (!validatorCalls) {
        cb(validator->validate(token, ns.path(), topic, action, remote));
        return;
    }
    // Never block a loop: validate on a worker, with a deadline (delivery/validator_calls.hpp).
    validatorCalls->validate(loop, std::move(token), ns.path(), std::move(topic), action, std::move(remote), std::move(cb));
}

MessagePtr Core::buildMessageWithId(const NamespaceRuntime& ns, size_t topic, std::string payloadJson, std::string key,
                                    std::string messageId, std::vector<std::string> attachments) const {
    MessagePtr m = makeMessage(ns.path(), ns.topic(topic), std::move(payloadJson), std::move(key), std::move(messageId),
                               ns.ackRequired, std::move(attachments), cfg.recovery.enabled);
    std::const_pointer_cast<OutMessage>(m)->topicIndex = topic;  // made non-const by makeMessage, not shared yet
    return m;
}

PublishStatus Core::publishParsed(NamespaceRuntime& ns, size_t topic, const json::Value& payload, std::string messageId) {
    std::vector<std::string> attachments;
    std::string body = wirePayload(payload, attachments);  // compact: bytes match JSON.stringify (docs/client-protocol.md)
    return publishParsed(ns, topic, payload, std::move(messageId), std::move(body), std::move(attachments));
}

PublishStatus Core::publishParsed(NamespaceRuntime& ns, size_t topic, const json::Value& payload, std::string messageId,
                                  std::string body, std::vector<std::string> attachments, std::string streamId) {
    if (stopping.load(std::memory_order_relaxed)) {
        refused(ns, topic, PublishStatus::Stopping);
        return PublishStatus::Stopping;
    }
    std::string key = coalesceKeyOf(payload, ns.cfg.coalesceKey, ns.topic(topic));
    if (ns.journal) {  // on disk first, then appended by the journal (docs/recovery.md)
        // The journal keeps JSON payloads only: binary parts are refused, not dropped.
        if (!attachments.empty()) return PublishStatus::InvalidPayload;
        PublishStatus st = ns.journal->publishWait(topic, std::move(body), std::move(key));
        if (st != PublishStatus::Ok) refused(ns, topic, st);
        return st;
    }
    if (messageId.empty()) messageId = nextMessageId();
    MessagePtr m = buildMessageWithId(ns, topic, std::move(body), std::move(key), std::move(messageId), std::move(attachments));
    if (!streamId.empty()) std::const_pointer_cast<OutMessage>(m)->streamId = std::move(streamId);  // not shared yet
    uint64_t offset = 0;
    thread_local std::vector<size_t> wake;
    wake.clear();
    if (!ns.logs[topic]->append(m, &offset, wake)) {
        refused(ns, topic, PublishStatus::Overloaded);
        return PublishStatus::Overloaded;
    }
    Metrics::TopicCounters& tm = *ns.topicMetrics[topic];
    tm.published.fetch_add(1, std::memory_order_relaxed);
    tm.publishedBytes.fetch_add(m->bytes, std::memory_order_relaxed);
    std::weak_ptr<Core> weak = weak_from_this();
    const size_t nsIdx = ns.index;
    for (size_t i : wake) {
        LoopShard* shard = shards[i].get();
        shard->loop().post([weak, shard, nsIdx, topic] {
            if (auto c = weak.lock()) shard->processTopic(nsIdx, topic);
        });
    }
    return PublishStatus::Ok;
}

void Core::refused(NamespaceRuntime& ns, size_t topic, PublishStatus why) {
    Metrics::TopicCounters& tm = *ns.topicMetrics[topic];
    tm.publishRefused.fetch_add(1, std::memory_order_relaxed);
    // A flood refuses thousands a second: one line per topic per second, with the count.
    static std::mutex mu;
    static std::unordered_map<const Metrics::TopicCounters*, std::pair<uint64_t, uint64_t>> last;  // -> (ms, count at last line)
    const uint64_t now = net::monotonicMs();
    std::lock_guard<std::mutex> lk(mu);
    auto& [ms, seen] = last[&tm];
    if (ms && now - ms < 1000) return;
    const uint64_t total = tm.publishRefused.load(std::memory_order_relaxed);
    log::warn("publish_refused", {{"server", cfg.name}, {"namespace", ns.path()}, {"topic", ns.topic(topic)},
                                  {"status", toString(why)}, {"refused_since_last", std::to_string(total - seen)},
                                  {"log_messages", std::to_string(ns.logs[topic]->size())}});
    ms = now;
    seen = total;
}

void Core::addListener(std::shared_ptr<Listener> l) {
    std::lock_guard<std::mutex> lk(listenersMu_);
    auto next = std::make_shared<std::vector<std::shared_ptr<Listener>>>(*std::atomic_load(&listeners_));
    next->push_back(std::move(l));
    std::atomic_store(&listeners_, std::shared_ptr<const std::vector<std::shared_ptr<Listener>>>(std::move(next)));
}

void Core::registerClient(size_t ns, const std::string& id, LoopShard* shard) {
    std::lock_guard<std::mutex> lk(clientsMu_);
    ClientEntry& e = clients_[ns][id];
    e.shard = shard;
    e.topics.assign(cfg.namespaces[ns].topics.size(), 0);
}

void Core::unregisterClient(size_t ns, const std::string& id, const LoopShard* shard) {
    std::lock_guard<std::mutex> lk(clientsMu_);
    auto it = clients_[ns].find(id);
    if (it != clients_[ns].end() && it->second.shard == shard) clients_[ns].erase(it);
}

void Core::markSubscribed(size_t ns, const std::string& id, size_t topic, bool on) {
    std::lock_guard<std::mutex> lk(clientsMu_);
    auto it = clients_[ns].find(id);
    if (it != clients_[ns].end() && topic < it->second.topics.size()) it->second.topics[topic] = on ? 1 : 0;
}

LoopShard* Core::lookupClient(size_t ns, const std::string& id, size_t topic, bool* subscribed) const {
    std::lock_guard<std::mutex> lk(clientsMu_);
    auto it = clients_[ns].find(id);
    if (it == clients_[ns].end()) return nullptr;
    if (subscribed) *subscribed = topic < it->second.topics.size() && it->second.topics[topic];
    return it->second.shard;
}

std::vector<size_t> Core::subscribedTopics(size_t ns, const std::string& id) const {
    std::lock_guard<std::mutex> lk(clientsMu_);
    std::vector<size_t> out;
    auto it = clients_[ns].find(id);
    if (it == clients_[ns].end()) return out;
    for (size_t t = 0; t < it->second.topics.size(); ++t)
        if (it->second.topics[t]) out.push_back(t);
    return out;
}

size_t Core::clientCount() const {
    std::lock_guard<std::mutex> lk(clientsMu_);
    size_t n = 0;
    for (auto& m : clients_) n += m.size();
    return n;
}

// ------------------------------------------------------------------ Delivery

Delivery::Delivery(const config::ServerConfig& cfg, const PluginResolver& resolver, Metrics& metrics,
                   std::vector<net::EventLoop*> loops, DeliveryOptions options)
    : core_(std::make_shared<Core>(cfg, metrics, options)) {
    Core& c = *core_;
    for (size_t i = 0; i < cfg.namespaces.size(); ++i) {
        const config::NamespaceConfig& nc = cfg.namespaces[i];
        auto ns = std::make_unique<NamespaceRuntime>();
        ns->index = i;
        ns->cfg = nc;
        ns->ackRequired = nc.deliveryMode == config::DeliveryMode::AT_LEAST_ONCE;
        ns->authRequired = cfg.auth == config::AuthMode::TOKEN && nc.authRequired;
        ns->limits.maxMessages = static_cast<uint32_t>(std::max(1, nc.maxQueuedMessagesPerClient));
        ns->limits.maxBytes = static_cast<uint64_t>(std::max<int64_t>(1, nc.maxQueuedBytesPerClient));
        ns->maxInFlight = static_cast<uint32_t>(std::max(1, nc.maxInFlight));  // <= 0 normalised to 1
        ns->ackTimeoutMs = static_cast<uint64_t>(std::max(1, nc.ackTimeoutMs));
        ns->maxRetries = static_cast<uint32_t>(std::max(0, nc.maxRetries));
        for (size_t t = 0; t < nc.topics.size(); ++t) {
            ns->topicIndex[nc.topics[t]] = t;
            ns->topicMetrics.push_back(&metrics.topic(nc.path, nc.topics[t]));
        }
        ns->handlers.resize(nc.topics.size());
        ns->nsMetrics = &metrics.ns(nc.path);
        if (resolver.makePolicy) ns->policy = resolver.makePolicy(nc);
        else if (resolver.overflowPolicy) ns->policy = std::make_unique<OverflowPolicy>(resolver.overflowPolicy(nc));
        if (!ns->policy) throw plugins::PluginError("delivery: no overflow policy for namespace " + nc.path);
        if (resolver.makeStorage) {
            ns->storage = resolver.makeStorage(nc);
        } else if (resolver.storageBackend) {
            if (auto inst = resolver.storageBackend(nc)) ns->storage = std::make_shared<SpillStorage>(inst);
        }
        if (nc.overflowAction == "SPILL_TO_DISK" && !ns->storage)
            log::warn("spill_backend_missing", {{"server", cfg.name}, {"namespace", nc.path}, {"backend", nc.spillBackend}});
        c.nsIndex[nc.path] = i;
        c.namespaces.push_back(std::move(ns));
    }
    if (cfg.auth == config::AuthMode::TOKEN && resolver.makeValidator) {
        c.validator = resolver.makeValidator();
    } else if (cfg.auth == config::AuthMode::TOKEN && resolver.tokenValidator) {
        if (auto inst = resolver.tokenValidator()) c.validator = std::make_unique<TokenValidator>(inst);
    }
    if (c.validator && c.validator->mayBlock())
        c.validatorCalls = std::make_unique<ValidatorCalls>(*c.validator, static_cast<uint64_t>(cfg.authTimeoutMs),
                                                            options.authWorkers, options.authMaxWorkers);
    if (cfg.auth == config::AuthMode::TOKEN && !c.validator)
        log::warn("token_validator_missing", {{"server", cfg.name}, {"effect", "authRequired namespaces reject every client"}});

    // One bounded log per topic (docs/message-path.md). Lossy only where every lane would
    // drop what a lagging loop skips: BEST_EFFORT under a policy that drops the oldest or
    // keeps the newest, with nothing that must see each message (spill, coalesce: true).
    for (auto& ns : c.namespaces) {
        const config::NamespaceConfig& nc = ns->cfg;
        const uint32_t form = ns->policy->batchForm();
        TopicLogLimits ll;
        ll.lossless = ns->ackRequired || nc.coalesce || ns->storage ||
                      !(form == SF_POLICY_BATCH_DROP_OLDEST || form == SF_POLICY_BATCH_KEEP_NEWEST);
        ll.maxMessages = static_cast<uint32_t>(nc.maxBufferedMessagesPerTopic > 0
                                                   ? nc.maxBufferedMessagesPerTopic
                                                   : std::max<int64_t>(4096, 2 * int64_t(ns->limits.maxMessages)));
        ll.maxBytes = nc.maxBufferedBytesPerTopic > 0 ? static_cast<uint64_t>(nc.maxBufferedBytesPerTopic)
                                                      : std::max<uint64_t>(32u << 20, 2 * ns->limits.maxBytes);
        if (!ll.lossless) {
            // A lossy log must hold at least one lane's worth: what a lagging loop skips is
            // then exactly what its lanes would have dropped.
            ll.maxMessages = std::max(ll.maxMessages, ns->limits.maxMessages);
            ll.maxBytes = std::max(ll.maxBytes, ns->limits.maxBytes);
        }
        for (size_t t = 0; t < nc.topics.size(); ++t)
            ns->logs.push_back(std::make_unique<TopicLog>(ll, loops.size(), &ns->topicMetrics[t]->logMessages));
    }
    for (size_t i = 0; i < loops.size(); ++i) {
        c.shards.push_back(std::make_unique<LoopShard>(c, *loops[i], i));
        c.shardByLoop[loops[i]] = c.shards.back().get();
    }
    std::weak_ptr<Core> weak = core_;
    for (auto& sh : c.shards) {
        LoopShard* shard = sh.get();
        shard->loop().post([weak, shard] {
            if (auto cc = weak.lock()) shard->startGauges(weak);
        });
    }
    // Durable namespaces replay their journal now, before any loop runs (docs/recovery.md).
    for (auto& ns : c.namespaces)
        if (ns->cfg.durable) durable::openNamespace(core_, *ns);
    for (auto& ns : c.namespaces) handlers_.push_back(std::make_shared<DeliveryNamespaceHandler>(core_, *ns));
}

Delivery::~Delivery() {
    for (auto& ns : core_->namespaces)
        if (ns->journal) ns->journal->seal();  // its writer thread calls into Core: stop it first
    // Without shutdown(): held sessions would keep Core alive through their shared_ptr.
    for (auto& s : core_->held.takeAllHeld()) s->closed = true;
}

std::shared_ptr<sio::NamespaceHandler> Delivery::handlerFor(const std::string& path) const {
    auto it = core_->nsIndex.find(path);
    return it == core_->nsIndex.end() ? nullptr : handlers_[it->second];
}

namespace {

// The checks publish and publishTo share: the namespace and topic exist. Ok fills n and t.
PublishStatus resolveTopic(Core& core, const std::string& ns, const std::string& topic, NamespaceRuntime*& n, long& t) {
    n = core.findNamespace(ns);
    if (!n) return PublishStatus::UnknownNamespace;
    t = n->findTopic(topic);
    if (t < 0) return PublishStatus::UnknownTopic;
    return PublishStatus::Ok;
}

}  // namespace

PublishStatus Delivery::publish(const std::string& ns, const std::string& topic, const std::string& payloadJson) {
    NamespaceRuntime* n = nullptr;
    long t = -1;
    if (PublishStatus st = resolveTopic(*core_, ns, topic, n, t); st != PublishStatus::Ok) return st;
    json::Value v;
    std::string err;
    if (!json::tryParse(payloadJson, v, err)) return PublishStatus::InvalidPayload;
    return core_->publishAcrossSync(*n, static_cast<size_t>(t), v);
}

PublishStatus Delivery::publishValue(const std::string& ns, const std::string& topic, const json::Value& payload) {
    NamespaceRuntime* n = nullptr;
    long t = -1;
    if (PublishStatus st = resolveTopic(*core_, ns, topic, n, t); st != PublishStatus::Ok) return st;
    return core_->publishAcrossSync(*n, static_cast<size_t>(t), payload);
}

void Delivery::publishValueAsync(const std::string& ns, const std::string& topic, const json::Value& payload,
                                 std::function<void(PublishStatus)> done) {
    NamespaceRuntime* n = nullptr;
    long t = -1;
    if (PublishStatus st = resolveTopic(*core_, ns, topic, n, t); st != PublishStatus::Ok) return done(st);
    const size_t ti = static_cast<size_t>(t);
    // Only a durable publish waits for something (its fsync): queue it to the journal with
    // the checks publishParsed makes, so many publishes share one sync (docs/recovery.md).
    if (!n->journal || core_->bus) return done(core_->publishAcrossSync(*n, ti, payload));
    if (core_->stopping.load(std::memory_order_relaxed)) {
        core_->refused(*n, ti, PublishStatus::Stopping);
        return done(PublishStatus::Stopping);
    }
    std::vector<std::string> attachments;
    std::string body = wirePayload(payload, attachments);
    if (!attachments.empty()) return done(PublishStatus::InvalidPayload);  // the journal keeps JSON only
    std::string key = coalesceKeyOf(payload, n->cfg.coalesceKey, n->topic(ti));
    Core* core = core_.get();  // the journal is sealed (its callbacks run) before Core goes
    n->journal->publishAsync(ti, std::move(body), std::move(key), [core, n, ti, done = std::move(done)](PublishStatus st) {
        if (st != PublishStatus::Ok) core->refused(*n, ti, st);
        done(st);
    });
}

namespace {

// publishTo once the namespace and topic are known and the payload is parsed. A client
// this node does not hold is looked for on the other nodes unless localOnly (a publishTo
// that came from another node).
PublishStatus publishToResolved(Core& core, NamespaceRuntime& n, size_t ti, const std::string& clientId,
                                const std::string& topic, const json::Value& v, bool localOnly = false) {
    bool subscribed = false;
    LoopShard* shard = core.lookupClient(n.index, clientId, ti, &subscribed);
    if (!shard) return core.bus && !localOnly ? core.sendToSync(n, ti, clientId, v) : PublishStatus::UnknownClient;
    if (!subscribed) return PublishStatus::NotSubscribed;
    if (core.stopping.load(std::memory_order_relaxed)) {
        core.refused(n, ti, PublishStatus::Stopping);
        return PublishStatus::Stopping;
    }
    // Bounded hand-off: each publishTo is one posted task until its loop runs it.
    if (shard->directPending.fetch_add(1, std::memory_order_relaxed) >= core.opts.maxDirectPerLoop) {
        shard->directPending.fetch_sub(1, std::memory_order_relaxed);
        core.refused(n, ti, PublishStatus::Overloaded);
        return PublishStatus::Overloaded;
    }
    std::vector<std::string> attachments;
    std::string body = wirePayload(v, attachments);
    MessagePtr m = core.buildMessageWithId(n, ti, std::move(body), coalesceKeyOf(v, n.cfg.coalesceKey, topic), core.nextMessageId(),
                                           std::move(attachments));
    n.topicMetrics[ti]->published.fetch_add(1, std::memory_order_relaxed);
    n.topicMetrics[ti]->publishedBytes.fetch_add(m->bytes, std::memory_order_relaxed);
    std::weak_ptr<Core> weak = core.weak_from_this();
    const size_t nsIdx = n.index;
    shard->loop().post([weak, shard, nsIdx, clientId, ti, m] {
        shard->directPending.fetch_sub(1, std::memory_order_relaxed);
        if (auto c = weak.lock()) shard->deliverTo(nsIdx, clientId, ti, m);
    });
    return PublishStatus::Ok;
}

}  // namespace

namespace {

// publishTo with a JSON text payload: resolved and parsed once; localOnly skips other nodes.
PublishStatus publishToText(Core& core, const std::string& ns, const std::string& clientId, const std::string& topic,
                            const std::string& payloadJson, bool localOnly) {
    NamespaceRuntime* n = nullptr;
    long t = -1;
    if (PublishStatus st = resolveTopic(core, ns, topic, n, t); st != PublishStatus::Ok) return st;
    json::Value v;
    std::string err;
    if (!json::tryParse(payloadJson, v, err)) return PublishStatus::InvalidPayload;
    return publishToResolved(core, *n, static_cast<size_t>(t), clientId, topic, v, localOnly);
}

}  // namespace

PublishStatus Delivery::publishTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                                  const std::string& payloadJson) {
    return publishToText(*core_, ns, clientId, topic, payloadJson, false);
}

PublishStatus Delivery::publishToLocal(const std::string& ns, const std::string& clientId, const std::string& topic,
                                       const std::string& payloadJson) {
    return publishToText(*core_, ns, clientId, topic, payloadJson, true);
}

PublishStatus Delivery::publishValueTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                                       const json::Value& v) {
    NamespaceRuntime* n = nullptr;
    long t = -1;
    if (PublishStatus st = resolveTopic(*core_, ns, topic, n, t); st != PublishStatus::Ok) return st;
    return publishToResolved(*core_, *n, static_cast<size_t>(t), clientId, topic, v);
}


PublishStatus Delivery::onMessage(const std::string& ns, const std::string& topic, MessageHandler handler) {
    NamespaceRuntime* n = core_->findNamespace(ns);
    if (!n) return PublishStatus::UnknownNamespace;
    long t = n->findTopic(topic);
    if (t < 0) return PublishStatus::UnknownTopic;
    std::lock_guard<std::mutex> lk(n->handlersMu);
    auto next = n->handlers[static_cast<size_t>(t)] ? std::make_shared<std::vector<MessageHandler>>(*n->handlers[static_cast<size_t>(t)])
                                                    : std::make_shared<std::vector<MessageHandler>>();
    next->push_back(std::move(handler));
    n->handlers[static_cast<size_t>(t)] = std::move(next);
    return PublishStatus::Ok;
}

void Delivery::addListener(std::shared_ptr<Listener> l) { core_->addListener(std::move(l)); }

namespace {

// Run fn on every shard's loop and wait for all, each at most timeoutMs. False on a timeout.
template <class F>
bool onEveryShard(Core& core, uint64_t timeoutMs, F fn) {
    std::vector<std::future<void>> waits;
    for (auto& sh : core.shards) {
        auto done = std::make_shared<std::promise<void>>();
        waits.push_back(done->get_future());
        LoopShard* shard = sh.get();
        // The task keeps Core (and so the shard) alive: after a timeout it may still run
        // once the Delivery is gone.
        shard->loop().post([keep = core.shared_from_this(), shard, done, fn] {
            fn(*shard);
            done->set_value();
        });
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    bool all = true;
    for (auto& w : waits)
        if (w.wait_until(deadline) != std::future_status::ready) all = false;
    return all;
}

}  // namespace

void Delivery::shutdown(uint64_t drainMs, uint64_t timeoutMs) {
    Core& c = *core_;
    c.stopping.store(true);  // publishes from now on are refused (Stopping), not queued
    // Let lanes drain to their clients for up to drainMs; a stopped client never drains,
    // so the wait is bounded whatever the backlog (docs/message-path.md).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(drainMs);
    auto pending = std::make_shared<std::atomic<uint64_t>>(0);
    for (;;) {
        pending->store(0);
        bool answered = onEveryShard(c, timeoutMs, [pending](LoopShard& shard) {
            for (Session* s : shard.sessions())
                for (auto& sub : s->subs)
                    if (sub && !s->detached)  // nobody to drain to
                        pending->fetch_add(sub->depth() + sub->spilledPending());
        });
        if (!answered || pending->load() == 0 || std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Durable namespaces keep what is left (docs/recovery.md): their journals take no more
    // records, so the teardown below ends no session on disk.
    for (auto& ns : c.namespaces)
        if (ns->journal) ns->journal->seal();
    // What is left is dropped: counted per namespace and logged.
    auto mu = std::make_shared<std::mutex>();
    auto left = std::make_shared<std::map<std::string, std::pair<uint64_t, uint64_t>>>();  // ns -> (messages, lanes)
    // Sessions held for recovery end with the server (docs/recovery.md): closed on their loops.
    auto held = std::make_shared<std::vector<std::shared_ptr<Session>>>(c.held.takeAllHeld());
    bool answered = onEveryShard(c, timeoutMs, [mu, left, held](LoopShard& shard) {
        shard.stopGauges();
        for (Session* s : shard.sessions()) {
            for (size_t t = 0; t < s->subs.size(); ++t) {
                if (!s->subs[t]) continue;
                uint64_t n = s->subs[t]->depth() + s->subs[t]->spilledPending();
                if (n) {
                    std::lock_guard<std::mutex> lk(*mu);
                    auto& e = (*left)[s->ns.path()];
                    e.first += n;
                    e.second += 1;
                }
                // Keep the session object (the socket still points at it); drop its lanes.
                s->unsubscribe(t);
            }
        }
        for (auto& h : *held)
            if (&h->shard == &shard) h->close("server shutting down");
    });
    if (!answered) log::warn("delivery_shutdown_timeout", {{"server", c.cfg.name}});
    // Spill operations still in flight complete onto the loops, which must outlive them.
    if (!spill_inflight::waitIdle(timeoutMs)) log::warn("spill_ops_pending_at_shutdown", {{"server", c.cfg.name}});
    std::lock_guard<std::mutex> lk(*mu);
    for (auto& [ns, e] : *left)
        log::warn("shutdown_dropped", {{"server", c.cfg.name}, {"namespace", ns}, {"messages", std::to_string(e.first)},
                                       {"lanes", std::to_string(e.second)}, {"drain_ms", std::to_string(drainMs)}});
}

size_t Delivery::connectedClients() const {
    const size_t all = core_->clientCount(), held = core_->held.heldCount();
    return all > held ? all - held : 0;
}
Metrics& Delivery::metrics() { return core_->metrics; }
const config::ServerConfig& Delivery::config() const { return core_->cfg; }

}  // namespace sf::delivery
