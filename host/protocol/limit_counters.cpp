#include "protocol/limit_counters.hpp"

#include "net/address_limiter.hpp"

namespace sf::eio {
namespace {

MetricSample sample(const char* name, const char* help, MetricSample::Type type,
                    std::vector<std::pair<std::string, std::string>> labels, double v) {
    return makeMetricSample(name, help, type, std::move(labels), v);
}

double load(const std::atomic<uint64_t>& a) { return static_cast<double>(a.load(std::memory_order_relaxed)); }

}  // namespace

void appendLimitMetrics(const LimitCounters& c, const net::AddressLimiter* addresses, MetricSnapshot& out) {
    using V = net::AddressLimiter::Verdict;
    constexpr auto kCounter = MetricSample::Type::Counter;
    // Every label value from the start, so a scrape shows the whole family at 0.
    for (V v : {V::TooMany, V::TooManyFromAddress, V::TooFast})
        out.push_back(sample("streamfence_connections_refused_total",
                             "Connections closed at accept, before any TLS or HTTP work, by the limit that refused them.",
                             kCounter, {{"reason", net::AddressLimiter::reason(v)}},
                             addresses ? static_cast<double>(addresses->refused(v)) : 0.0));
    out.push_back(sample("streamfence_address_table_entries",
                         "Remote addresses the per-address connection limits remember now (bounded by limits.addressTableSize plus addresses with open connections).",
                         MetricSample::Type::Gauge, {}, addresses ? static_cast<double>(addresses->entries()) : 0.0));
    out.push_back(sample("streamfence_handshake_timeouts_total",
                         "Connections closed because a request (or the first one, counted from accept, TLS handshake included) was not complete within handshakeTimeoutMs.",
                         kCounter, {}, load(c.handshakeTimeouts)));
    const std::pair<const char*, const std::atomic<uint64_t>*> limits[] = {
        {"namespaces_per_connection", &c.namespaces}, {"pending_polls_per_session", &c.pollsPerSession},
        {"pending_polls", &c.polls}, {"frames_per_message", &c.wsFrames}, {"attachments_per_packet", &c.attachments},
        {"sessions_per_connection", &c.sessionsPerConnection}};
    for (const auto& [label, counter] : limits)
        out.push_back(sample("streamfence_protocol_limit_refused_total",
                             "Requests, packets or messages refused because they went past a per-connection limit (limits.*), by limit.",
                             kCounter, {{"limit", label}}, load(*counter)));
}

}  // namespace sf::eio
