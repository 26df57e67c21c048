#include "delivery/metrics.hpp"

#include <algorithm>
#include <tuple>

namespace sf::delivery {

namespace {

struct Def {
    const char* name;
    const char* help;
    MetricSample::Type type;
};

// StreamFence's 14 counters in their usual order, then ours and the gauges (docs/client-protocol.md).
const Def kConnections{"streamfence_connections_total", "Client connections accepted into a namespace.", MetricSample::Type::Counter};
const Def kDisconnections{"streamfence_disconnections_total", "Client sockets that left a namespace.", MetricSample::Type::Counter};
const Def kPublished{"streamfence_messages_published_total", "Messages published to a topic (once per publish call, whatever the subscriber count).", MetricSample::Type::Counter};
const Def kPublishedBytes{"streamfence_messages_published_bytes_total", "Bytes of the payloads published to a topic: UTF-8 JSON plus binary attachments.", MetricSample::Type::Counter};
const Def kReceived{"streamfence_messages_received_total", "Messages clients published to a topic and the server accepted.", MetricSample::Type::Counter};
const Def kReceivedBytes{"streamfence_messages_received_bytes_total", "Bytes of the payloads clients published and the server accepted: UTF-8 JSON plus binary attachments.", MetricSample::Type::Counter};
const Def kOverflow{"streamfence_queue_overflow_total", "Messages a subscriber's lane could not take in memory (rejected or spilled), by reason.", MetricSample::Type::Counter};
const Def kRetries{"streamfence_retries_total", "AT_LEAST_ONCE re-sends after an ack timeout.", MetricSample::Type::Counter};
const Def kRetriesExhausted{"streamfence_retries_exhausted_total", "AT_LEAST_ONCE messages dropped after the last retry went unacknowledged.", MetricSample::Type::Counter};
const Def kDropped{"streamfence_messages_dropped_total", "Enqueues that made the overflow policy drop older queued messages.", MetricSample::Type::Counter};
const Def kCoalesced{"streamfence_messages_coalesced_total", "Messages that replaced a pending message with the same coalesce key.", MetricSample::Type::Counter};
const Def kSpilled{"streamfence_messages_spilled_total", "Messages written to the lane's storage backend instead of memory.", MetricSample::Type::Counter};
const Def kAuthRejected{"streamfence_auth_rejected_total", "Token checks that failed (connect, subscribe or publish).", MetricSample::Type::Counter};
const Def kAuthRateLimited{"streamfence_auth_rate_limited_total", "Attempts refused because the remote address failed authentication too often.", MetricSample::Type::Counter};
const Def kErrorLimited{"streamfence_client_error_limit_disconnects_total", "Clients disconnected for earning more error answers in a minute than maxClientErrorsPerMinute allows.", MetricSample::Type::Counter};
const Def kSubscriptionLimited{"streamfence_subscription_limit_refused_total", "Subscribes refused with SUBSCRIPTION_LIMIT: the client already held limits.maxSubscriptionsPerClient topics.", MetricSample::Type::Counter};
const Def kRefused{"streamfence_publish_refused_total", "Publishes refused with OVERLOADED (the topic's bounded log was full) or while stopping; the publisher was told.", MetricSample::Type::Counter};
const Def kLogMessages{"streamfence_topic_log_messages", "Messages held by the topic's shared log (published, not yet read by every loop).", MetricSample::Type::Gauge};
const Def kRecovered{"streamfence_sessions_recovered_total", "Sessions a reconnecting client recovered (connection-state recovery).", MetricSample::Type::Counter};
const Def kExpired{"streamfence_sessions_expired_total", "Detached sessions dropped because their client did not come back within maxDisconnectionDurationMs.", MetricSample::Type::Counter};
const Def kRecoveryGaps{"streamfence_recovery_gaps_total", "Recoveries whose replay may have missed messages: the replay history's bound evicted some the client had not confirmed.", MetricSample::Type::Counter};
const Def kDetached{"streamfence_sessions_detached", "Sessions held for a client that left abnormally, waiting for it to recover.", MetricSample::Type::Gauge};
const Def kDetachedMessages{"streamfence_sessions_detached_queued_messages", "Messages queued in memory in the lanes of detached sessions.", MetricSample::Type::Gauge};
const Def kDetachedBytes{"streamfence_sessions_detached_queued_bytes", "Payload bytes queued in memory in the lanes of detached sessions.", MetricSample::Type::Gauge};
const Def kActive{"streamfence_connections_active", "Client sockets currently connected to a namespace.", MetricSample::Type::Gauge};
const Def kDepthMax{"streamfence_lane_depth_max", "Largest number of messages held in memory by one lane of the topic.", MetricSample::Type::Gauge};
const Def kBytesMax{"streamfence_lane_bytes_max", "Largest number of payload bytes held in memory by one lane of the topic.", MetricSample::Type::Gauge};
const Def kInflight{"streamfence_inflight", "AT_LEAST_ONCE messages sent and awaiting an ack, summed over the topic's lanes.", MetricSample::Type::Gauge};

MetricSample sample(const Def& d, std::vector<std::pair<std::string, std::string>> labels, double v) {
    return makeMetricSample(d.name, d.help, d.type, std::move(labels), v);
}

double load(const std::atomic<uint64_t>& a) { return static_cast<double>(a.load(std::memory_order_relaxed)); }

}  // namespace

void Metrics::NamespaceCounters::reportDetached(const void* reporter, uint64_t messages, uint64_t bytes) {
    std::lock_guard<std::mutex> lk(mu_);
    detachedQueued_[reporter] = {messages, bytes};
}

std::pair<uint64_t, uint64_t> Metrics::NamespaceCounters::detachedQueued() const {
    std::lock_guard<std::mutex> lk(mu_);
    std::pair<uint64_t, uint64_t> sum{0, 0};
    for (auto& kv : detachedQueued_) {
        sum.first += kv.second.first;
        sum.second += kv.second.second;
    }
    return sum;
}

void Metrics::TopicCounters::overflow(std::string_view reason, uint64_t count) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = overflow_.find(reason);
    if (it == overflow_.end()) it = overflow_.emplace(std::string(reason), 0).first;
    it->second += count;
}

uint64_t Metrics::TopicCounters::overflowCount(std::string_view reason) const {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = overflow_.find(reason);
    return it == overflow_.end() ? 0 : it->second;
}

void Metrics::TopicCounters::reportLaneMax(const void* reporter, uint64_t depth, uint64_t bytes) {
    std::lock_guard<std::mutex> lk(mu_);
    laneMax_[reporter] = {depth, bytes};
}

std::pair<uint64_t, uint64_t> Metrics::TopicCounters::laneMax() const {
    std::lock_guard<std::mutex> lk(mu_);
    std::pair<uint64_t, uint64_t> m{0, 0};
    for (auto& kv : laneMax_) {
        m.first = std::max(m.first, kv.second.first);
        m.second = std::max(m.second, kv.second.second);
    }
    return m;
}

Metrics::NamespaceCounters& Metrics::ns(const std::string& ns) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = nsIndex_.find(ns);
    if (it != nsIndex_.end()) return *it->second;
    namespaces_.emplace_back();
    namespaces_.back().ns = ns;
    nsIndex_[ns] = &namespaces_.back();
    return namespaces_.back();
}

Metrics::TopicCounters& Metrics::topic(const std::string& ns, const std::string& topic) {
    std::lock_guard<std::mutex> lk(mu_);
    auto key = std::make_pair(ns, topic);
    auto it = topicIndex_.find(key);
    if (it != topicIndex_.end()) return *it->second;
    topics_.emplace_back();
    topics_.back().ns = ns;
    topics_.back().topic = topic;
    topicIndex_[key] = &topics_.back();
    return topics_.back();
}

const std::vector<std::string>& Metrics::counterNames() {
    static const std::vector<std::string> v = {
        kConnections.name, kDisconnections.name, kPublished.name, kPublishedBytes.name, kReceived.name,
        kReceivedBytes.name, kOverflow.name, kRetries.name, kRetriesExhausted.name, kDropped.name,
        kCoalesced.name, kSpilled.name, kAuthRejected.name, kAuthRateLimited.name};
    return v;
}

MetricSnapshot Metrics::snapshot() const {
    MetricSnapshot out;
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& kv : nsIndex_) {
        const NamespaceCounters& n = *kv.second;
        auto l = [&] { return std::vector<std::pair<std::string, std::string>>{{"namespace", n.ns}}; };
        out.push_back(sample(kConnections, l(), load(n.connections)));
        out.push_back(sample(kDisconnections, l(), load(n.disconnections)));
        out.push_back(sample(kAuthRejected, l(), load(n.authRejected)));
        out.push_back(sample(kAuthRateLimited, l(), load(n.authRateLimited)));
        out.push_back(sample(kErrorLimited, l(), load(n.errorLimited)));
        out.push_back(sample(kSubscriptionLimited, l(), load(n.subscriptionLimited)));
        out.push_back(sample(kActive, l(), static_cast<double>(n.active.load(std::memory_order_relaxed))));
        out.push_back(sample(kRecovered, l(), load(n.sessionsRecovered)));
        out.push_back(sample(kExpired, l(), load(n.sessionsExpired)));
        out.push_back(sample(kRecoveryGaps, l(), load(n.recoveryGaps)));
        out.push_back(sample(kDetached, l(), static_cast<double>(n.detached.load(std::memory_order_relaxed))));
        auto [dm, db] = n.detachedQueued();
        out.push_back(sample(kDetachedMessages, l(), static_cast<double>(dm)));
        out.push_back(sample(kDetachedBytes, l(), static_cast<double>(db)));
    }
    for (auto& kv : topicIndex_) {
        const TopicCounters& t = *kv.second;
        auto l = [&] { return std::vector<std::pair<std::string, std::string>>{{"namespace", t.ns}, {"topic", t.topic}}; };
        out.push_back(sample(kPublished, l(), load(t.published)));
        out.push_back(sample(kPublishedBytes, l(), load(t.publishedBytes)));
        out.push_back(sample(kReceived, l(), load(t.received)));
        out.push_back(sample(kReceivedBytes, l(), load(t.receivedBytes)));
        out.push_back(sample(kRetries, l(), load(t.retries)));
        out.push_back(sample(kRetriesExhausted, l(), load(t.retriesExhausted)));
        out.push_back(sample(kDropped, l(), load(t.dropped)));
        out.push_back(sample(kCoalesced, l(), load(t.coalesced)));
        out.push_back(sample(kSpilled, l(), load(t.spilled)));
        out.push_back(sample(kRefused, l(), load(t.publishRefused)));
        out.push_back(sample(kLogMessages, l(), load(t.logMessages)));
        {
            std::lock_guard<std::mutex> tl(t.mu_);
            // Reasons come from the policy plugin and are only known once one fires; until then
            // the topic shows one zero sample without `reason`, so a fresh server lists the
            // counter and dashboards read 0 rather than "no data" (README, control listener).
            if (t.overflow_.empty()) out.push_back(sample(kOverflow, l(), 0.0));
            for (auto& o : t.overflow_) {
                auto labels = l();
                labels.emplace_back("reason", o.first);
                out.push_back(sample(kOverflow, std::move(labels), static_cast<double>(o.second)));
            }
        }
        auto lm = t.laneMax();
        out.push_back(sample(kDepthMax, l(), static_cast<double>(lm.first)));
        out.push_back(sample(kBytesMax, l(), static_cast<double>(lm.second)));
        out.push_back(sample(kInflight, l(), static_cast<double>(std::max<int64_t>(0, t.inflight.load(std::memory_order_relaxed)))));
    }
    // Group by metric name so text sinks can write HELP/TYPE once per family.
    std::stable_sort(out.begin(), out.end(), [](const MetricSample& a, const MetricSample& b) {
        return std::tie(a.name, a.labels) < std::tie(b.name, b.labels);
    });
    return out;
}

}  // namespace sf::delivery
