// Internal state shared by everything in delivery/ for one server: the namespaces with their
// plugins and metric handles, the per-loop shards, the client directory, the auth gate.
// Not part of the public API (delivery.hpp is). Kept alive by shared_ptr from Delivery,
// the namespace handlers and every Session, so late loop callbacks never dangle.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "delivery/cluster_bus.hpp"
#include "delivery/held_sessions.hpp"
#include "delivery/lane.hpp"
#include "delivery/listener.hpp"
#include "delivery/metrics.hpp"
#include "delivery/overflow_policy.hpp"
#include "delivery/publish_status.hpp"
#include "delivery/rate_limiter.hpp"
#include "delivery/spill_storage.hpp"
#include "delivery/token_validator.hpp"
#include "delivery/topic_log.hpp"
#include "delivery/validator_calls.hpp"
#include "net/event_loop.hpp"
#include "protocol/sio_api.hpp"

namespace sf::delivery {

class LoopShard;
namespace durable {
class DurableJournal;
}

struct NamespaceRuntime {
    size_t index = 0;
    config::NamespaceConfig cfg;
    bool ackRequired = false;  // AT_LEAST_ONCE
    bool authRequired = false; // auth: TOKEN and the namespace's authRequired
    LaneLimits limits;
    uint32_t maxInFlight = 1;
    uint64_t ackTimeoutMs = 1000;
    uint32_t maxRetries = 0;
    std::unordered_map<std::string, size_t> topicIndex;
    std::unique_ptr<OverflowPolicy> policy;
    std::shared_ptr<SpillStorage> storage;  // null: the lane cannot spill
    Metrics::NamespaceCounters* nsMetrics = nullptr;
    std::vector<Metrics::TopicCounters*> topicMetrics;  // by topic index
    std::vector<std::unique_ptr<TopicLog>> logs;         // by topic index: what publishes append to
    // durable: true (docs/recovery.md): publishes go through the journal, which appends to
    // logs once they are on disk. Null otherwise.
    std::shared_ptr<durable::DurableJournal> journal;

    // onMessage handlers by topic index: copy-on-write, read without a lock held.
    mutable std::mutex handlersMu;
    std::vector<std::shared_ptr<const std::vector<MessageHandler>>> handlers;

    const std::string& path() const { return cfg.path; }
    const std::string& topic(size_t i) const { return cfg.topics[i]; }
    long findTopic(const std::string& t) const {
        auto it = topicIndex.find(t);
        return it == topicIndex.end() ? -1 : static_cast<long>(it->second);
    }
};

struct DeliveryOptions {
    size_t authWorkers = 2;                    // threads for validators flagged MAY_BLOCK
    size_t authMaxWorkers = 16;                // ... grown to while calls hang (validator_calls.hpp)
    uint32_t maxDirectPerLoop = 16384;         // publishTo hand-offs waiting for one loop
    uint64_t gaugeRefreshMs = 250;             // lane depth/bytes gauges refresh period
};

class Core : public std::enable_shared_from_this<Core> {
public:
    Core(const config::ServerConfig& cfg, Metrics& metrics, DeliveryOptions opts);

    config::ServerConfig cfg;
    Metrics& metrics;
    DeliveryOptions opts;
    std::vector<std::unique_ptr<NamespaceRuntime>> namespaces;
    std::unordered_map<std::string, size_t> nsIndex;
    std::vector<std::unique_ptr<LoopShard>> shards;
    std::unordered_map<const net::EventLoop*, LoopShard*> shardByLoop;  // read-only after construction
    std::atomic<uint64_t> messageCounter{0};
    std::string messageIdPrefix = "msg-";  // cluster mode: "msg-<node tag>-" (set before traffic)
    AuthRateLimiter limiter;
    std::unique_ptr<TokenValidator> validator;
    std::unique_ptr<ValidatorCalls> validatorCalls;  // when the validator may block
    HeldSessions held;  // connection-state recovery: sessions by pid (docs/recovery.md)

    LoopShard* shardFor(const net::EventLoop& loop) const;
    NamespaceRuntime* findNamespace(const std::string& path) const;
    std::string nextMessageId();

    // Validate on the calling loop, or on worker threads with a deadline (cfg.authTimeoutMs)
    // when the validator may block; cb runs on `loop` either way (synchronously in the first case).
    void validate(net::EventLoop& loop, std::string token, const NamespaceRuntime& ns, std::string topic,
                  const char* action, std::string remote, std::function<void(TokenCheck)> cb);

    // Publish a parsed payload to every subscriber: compact JSON, coalesce key, next
    // messageId, one append to the topic's log, published metrics, a drain task for each
    // loop that needs one (any thread). Overloaded when the log is full and lossless.
    // messageId: the id to use ("" = the next one).
    PublishStatus publishParsed(NamespaceRuntime& ns, size_t topic, const json::Value& payload, std::string messageId = {});
    // The same with payload already split by wirePayload into body and attachments.
    PublishStatus publishParsed(NamespaceRuntime& ns, size_t topic, const json::Value& payload, std::string messageId,
                                std::string body, std::vector<std::string> attachments, std::string streamId = {});
    // Cluster mode (docs/cluster.md, delivery/cluster_publish.cpp): null when alone.
    std::shared_ptr<ClusterBus> bus;
    // publishParsed on this node, then the same message to the other nodes. Refused
    // (ClusterUnavailable) up front while the bus link is down. AT_LEAST_ONCE: `done` waits
    // for the stream append and runs on replyOn (nullptr: on the bus's thread); otherwise it
    // runs before this returns.
    void publishAcross(NamespaceRuntime& ns, size_t topic, const json::Value& payload, net::EventLoop* replyOn,
                       std::function<void(PublishStatus)> done);
    // The same for synchronous callers (control API, embed); never waits on a loop thread.
    PublishStatus publishAcrossSync(NamespaceRuntime& ns, size_t topic, const json::Value& payload);
    // publishTo a client held by another node (synchronous, bounded by the bus timeout).
    PublishStatus sendToSync(NamespaceRuntime& ns, size_t topic, const std::string& clientId, const json::Value& payload);
    bool onLoopThread() const;
    // Count and log a refused publish (rate-limited log: one line per topic per second).
    void refused(NamespaceRuntime& ns, size_t topic, PublishStatus why);
    std::atomic<bool> stopping{false};  // shutdown began: publishes are refused (Stopping)
    // Build the shared message (payload already compact JSON, placeholders for its
    // attachments: wirePayload) with a given messageId.
    MessagePtr buildMessageWithId(const NamespaceRuntime& ns, size_t topic, std::string payloadJson, std::string key,
                                  std::string messageId, std::vector<std::string> attachments = {}) const;

    // Listeners: copy-on-write list, snapshot read per notification.
    void addListener(std::shared_ptr<Listener> l);
    template <class F>
    void notify(F&& f) const {
        auto ls = std::atomic_load(&listeners_);
        if (!ls) return;
        for (auto& l : *ls) {
            try {
                f(*l);
            } catch (...) {
                // A listener must not break delivery.
            }
        }
    }

    // Client directory (clientId -> owning loop, subscribed topics) for publishTo.
    void registerClient(size_t ns, const std::string& id, LoopShard* shard);
    // Only if the entry still points at shard (a session moved by recovery registered its
    // new loop first; docs/recovery.md).
    void unregisterClient(size_t ns, const std::string& id, const LoopShard* shard);
    void markSubscribed(size_t ns, const std::string& id, size_t topic, bool on);
    // nullptr when unknown; *subscribed tells whether it subscribed to topic.
    LoopShard* lookupClient(size_t ns, const std::string& id, size_t topic, bool* subscribed) const;
    size_t clientCount() const;
    // Topics the client is subscribed to, by index (recovery moving a session).
    std::vector<size_t> subscribedTopics(size_t ns, const std::string& id) const;

private:
    std::shared_ptr<const std::vector<std::shared_ptr<Listener>>> listeners_;
    std::mutex listenersMu_;
    struct ClientEntry {
        LoopShard* shard = nullptr;
        std::vector<char> topics;
    };
    mutable std::mutex clientsMu_;
    std::vector<std::unordered_map<std::string, ClientEntry>> clients_;  // by namespace index
};

}  // namespace sf::delivery
