#include "delivery/delivery.hpp"

#include <future>

#include "common/log.hpp"
#include "delivery/loop_shard.hpp"
#include "delivery/message.hpp"
#include "delivery/namespace_handler.hpp"
#include "delivery/session.hpp"

namespace sf::delivery {

const char* toString(PublishStatus s) {
    switch (s) {
        case PublishStatus::Ok: return "OK";
        case PublishStatus::UnknownNamespace: return "UNKNOWN_NAMESPACE";
        case PublishStatus::UnknownTopic: return "UNKNOWN_TOPIC";
        case PublishStatus::UnknownClient: return "UNKNOWN_CLIENT";
        case PublishStatus::NotSubscribed: return "NOT_SUBSCRIBED";
        case PublishStatus::InvalidPayload: return "INVALID_PAYLOAD";
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
    return "msg-" + std::to_string(messageCounter.fetch_add(1, std::memory_order_relaxed) + 1);
}

void Core::validate(net::EventLoop& loop, std::string token, const NamespaceRuntime& ns, std::string topic,
                    const char* action, std::string remote, std::function<void(TokenCheck)> cb) {
    if (!validator) {
        cb(TokenCheck{false, 0, "", "Token auth is disabled"});
        return;
    }
    if (!validator->mayBlock() || !pool) {
        cb(validator->validate(token, ns.path(), topic, action, remote));
        return;
    }
    // Never block a loop: validate on a worker, post the verdict back. The task holds no
    // reference to Core (the pool is joined in Core's destructor).
    const TokenValidator* v = validator.get();
    std::string nsPath = ns.path();
    std::string act = action;
    pool->submit([v, &loop, token = std::move(token), nsPath, topic = std::move(topic), act, remote = std::move(remote),
                  cb = std::move(cb)]() mutable {
        TokenCheck r = v->validate(token, nsPath, topic, act, remote);
        loop.post([cb = std::move(cb), r = std::move(r)]() mutable { cb(std::move(r)); });
    });
}

MessagePtr Core::buildMessageWithId(const NamespaceRuntime& ns, size_t topic, std::string payloadJson, std::string key,
                                    std::string messageId) const {
    return makeMessage(ns.path(), ns.topic(topic), std::move(payloadJson), std::move(key), std::move(messageId), ns.ackRequired);
}

void Core::publishParsed(NamespaceRuntime& ns, size_t topic, const json::Value& payload) {
    std::string body = payload.dump();  // compact: bytes match JSON.stringify (reference §3)
    std::string key = coalesceKeyOf(payload, ns.cfg.coalesceKey, ns.topic(topic));
    MessagePtr m = buildMessageWithId(ns, topic, std::move(body), std::move(key), nextMessageId());
    Metrics::TopicCounters& tm = *ns.topicMetrics[topic];
    tm.published.fetch_add(1, std::memory_order_relaxed);
    tm.publishedBytes.fetch_add(m->bytes, std::memory_order_relaxed);
    fanOut(ns, topic, m);
}

void Core::fanOut(NamespaceRuntime& ns, size_t topic, const MessagePtr& m) {
    std::weak_ptr<Core> weak = weak_from_this();
    const size_t nsIdx = ns.index;
    for (auto& sh : shards) {
        if (sh->subscriberCount(nsIdx, topic) == 0) continue;  // no wake-up for loops with nobody to serve
        LoopShard* shard = sh.get();
        shard->loop().post([weak, shard, nsIdx, topic, m] {
            if (auto c = weak.lock()) shard->fanOut(nsIdx, topic, m);
        });
    }
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

void Core::unregisterClient(size_t ns, const std::string& id) {
    std::lock_guard<std::mutex> lk(clientsMu_);
    clients_[ns].erase(id);
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
    if (c.validator && c.validator->mayBlock()) c.pool = std::make_unique<WorkerPool>(options.authWorkers);
    if (cfg.auth == config::AuthMode::TOKEN && !c.validator)
        log::warn("token_validator_missing", {{"server", cfg.name}, {"effect", "authRequired namespaces reject every client"}});

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
    for (auto& ns : c.namespaces) handlers_.push_back(std::make_shared<DeliveryNamespaceHandler>(core_, *ns));
}

Delivery::~Delivery() = default;

std::shared_ptr<sio::NamespaceHandler> Delivery::handlerFor(const std::string& path) const {
    auto it = core_->nsIndex.find(path);
    return it == core_->nsIndex.end() ? nullptr : handlers_[it->second];
}

namespace {

// Parse and validate the payload once per publish (not per subscriber).
bool parsePayload(const std::string& text, json::Value& out) {
    std::string err;
    return json::tryParse(text, out, err);
}

// The checks publish and publishTo share: the namespace and topic exist and the payload
// parses. Ok fills n, t and v.
PublishStatus resolvePublish(Core& core, const std::string& ns, const std::string& topic, const std::string& payloadJson,
                             NamespaceRuntime*& n, long& t, json::Value& v) {
    n = core.findNamespace(ns);
    if (!n) return PublishStatus::UnknownNamespace;
    t = n->findTopic(topic);
    if (t < 0) return PublishStatus::UnknownTopic;
    if (!parsePayload(payloadJson, v)) return PublishStatus::InvalidPayload;
    return PublishStatus::Ok;
}

}  // namespace

PublishStatus Delivery::publish(const std::string& ns, const std::string& topic, const std::string& payloadJson) {
    NamespaceRuntime* n = nullptr;
    long t = -1;
    json::Value v;
    if (PublishStatus st = resolvePublish(*core_, ns, topic, payloadJson, n, t, v); st != PublishStatus::Ok) return st;
    core_->publishParsed(*n, static_cast<size_t>(t), v);
    return PublishStatus::Ok;
}

PublishStatus Delivery::publishTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                                  const std::string& payloadJson) {
    NamespaceRuntime* n = nullptr;
    long t = -1;
    json::Value v;
    if (PublishStatus st = resolvePublish(*core_, ns, topic, payloadJson, n, t, v); st != PublishStatus::Ok) return st;
    bool subscribed = false;
    LoopShard* shard = core_->lookupClient(n->index, clientId, static_cast<size_t>(t), &subscribed);
    if (!shard) return PublishStatus::UnknownClient;
    if (!subscribed) return PublishStatus::NotSubscribed;
    const size_t ti = static_cast<size_t>(t);
    MessagePtr m = core_->buildMessageWithId(*n, ti, v.dump(), coalesceKeyOf(v, n->cfg.coalesceKey, topic), core_->nextMessageId());
    n->topicMetrics[ti]->published.fetch_add(1, std::memory_order_relaxed);
    n->topicMetrics[ti]->publishedBytes.fetch_add(m->bytes, std::memory_order_relaxed);
    std::weak_ptr<Core> weak = core_;
    const size_t nsIdx = n->index;
    shard->loop().post([weak, shard, nsIdx, clientId, ti, m] {
        if (auto c = weak.lock()) shard->deliverTo(nsIdx, clientId, ti, m);
    });
    return PublishStatus::Ok;
}

PublishStatus Delivery::onMessage(const std::string& ns, const std::string& topic, std::function<void(const ClientMessage&)> handler) {
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

void Delivery::shutdown(uint64_t timeoutMs) {
    std::vector<std::future<void>> waits;
    for (auto& sh : core_->shards) {
        auto done = std::make_shared<std::promise<void>>();
        waits.push_back(done->get_future());
        LoopShard* shard = sh.get();
        std::shared_ptr<Core> keep = core_;
        shard->loop().post([keep, shard, done] {
            shard->stopGauges();
            for (Session* s : shard->sessions()) {
                // Keep the session object (the socket still points at it); drop its lanes.
                for (size_t t = 0; t < s->subs.size(); ++t) s->unsubscribe(t);
            }
            done->set_value();
        });
    }
    for (auto& w : waits) {
        if (w.wait_for(std::chrono::milliseconds(timeoutMs)) != std::future_status::ready)
            log::warn("delivery_shutdown_timeout", {{"server", core_->cfg.name}});
    }
}

size_t Delivery::connectedClients() const { return core_->clientCount(); }
Metrics& Delivery::metrics() { return core_->metrics; }
const config::ServerConfig& Delivery::config() const { return core_->cfg; }

}  // namespace sf::delivery
