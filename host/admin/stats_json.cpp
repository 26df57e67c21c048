// StatsSnapshot -> JSON (GET /v1/stats, dashboard events). Field names: docs/dashboard.md.
#include <cstdio>
#include <map>

#include "admin/stats_snapshot.hpp"
#include "common/json.hpp"

namespace sf::admin {
namespace {

// A small writer: key/value pairs with commas in the right places.
class Out {
public:
    std::string s;
    void open(char c) { sep(); s.push_back(c); }
    void close(char c) { s.push_back(c); }
    void key(const char* k) { sep(); json::quoteTo(s, k); s.push_back(':'); }
    void null() { sep(); s += "null"; }
    template <class T>
    void kv(const char* k, const T& v) { key(k); put(v); }

private:
    void put(const std::string& v) { sep(); json::quoteTo(s, v); }
    void put(const char* v) { sep(); json::quoteTo(s, v); }
    void put(uint64_t v) { sep(); s += std::to_string(v); }
    void put(int64_t v) { sep(); s += std::to_string(v); }
    void put(uint32_t v) { put(static_cast<uint64_t>(v)); }
    void put(bool v) { sep(); s += v ? "true" : "false"; }
    void put(double v) {
        sep();
        char b[32];
        std::snprintf(b, sizeof b, "%.1f", v > 0 ? v : 0.0);  // rates: never negative
        s += b;
    }
    // A value follows a comma unless it opens a container or follows a key.
    void sep() {
        if (!s.empty() && s.back() != '{' && s.back() != '[' && s.back() != ':') s.push_back(',');
    }
};

}  // namespace

std::string toJson(const StatsSnapshot& s, const std::vector<TopicRates>& rates) {
    const delivery::DeliveryStats& d = s.delivery;
    Out o;
    o.open('{');
    o.kv("server", s.server);
    o.kv("version", s.version);
    o.kv("takenAt", s.takenAtMs);
    o.kv("uptimeMs", s.uptimeMs);
    o.kv("collectMs", s.collectMs);
    o.key("loops");
    o.open('{');
    o.kv("total", static_cast<uint64_t>(d.loops));
    o.kv("answered", static_cast<uint64_t>(d.loopsAnswered));
    o.kv("busyUs", d.loopBusyUs);
    o.close('}');

    uint64_t rejected = 0, rateLimited = 0;
    o.key("namespaces");
    o.open('[');
    for (size_t i = 0; i < s.namespaces.size(); ++i) {
        const NamespaceCounters& n = s.namespaces[i];
        rejected += n.authRejected;
        rateLimited += n.authRateLimited;
        o.open('{');
        o.kv("namespace", n.ns);
        o.key("connections");
        o.open('{');
        uint64_t ws = 0, polling = 0;
        for (auto& l : d.namespaces)
            if (l.path == n.ns) ws = l.websocket, polling = l.polling;
        o.kv("websocket", ws);
        o.kv("polling", polling);
        o.close('}');
        o.kv("active", n.active);
        o.kv("connectionsTotal", n.connections);
        o.kv("disconnections", n.disconnections);
        o.kv("authRejected", n.authRejected);
        o.kv("authRateLimited", n.authRateLimited);
        o.kv("errorLimited", n.errorLimited);
        o.close('}');
    }
    o.close(']');

    uint64_t retries = 0, exhausted = 0;
    std::map<std::string, uint64_t> spilledByBackend;
    o.key("topics");
    o.open('[');
    for (size_t i = 0; i < s.topics.size(); ++i) {
        const TopicCounters& t = s.topics[i];
        const delivery::TopicLoad* load = i < d.topics.size() ? &d.topics[i] : nullptr;
        retries += t.retries;
        exhausted += t.retriesExhausted;
        if (!t.spillBackend.empty()) spilledByBackend[t.spillBackend] += t.spilled;
        o.open('{');
        o.kv("namespace", t.ns);
        o.kv("topic", t.topic);
        o.kv("deliveryMode", t.deliveryMode);
        o.kv("overflowAction", t.overflowAction);
        o.kv("subscribers", load ? load->subscribers : 0);
        o.kv("published", t.published);
        o.kv("publishedBytes", t.publishedBytes);
        o.kv("received", t.received);
        o.kv("delivered", load ? load->delivered : 0);
        o.kv("publishRate", i < rates.size() ? rates[i].publish : 0.0);
        o.kv("deliveryRate", i < rates.size() ? rates[i].deliver : 0.0);
        o.kv("pendingMessages", load ? load->pendingMessages : 0);
        o.kv("pendingBytes", load ? load->pendingBytes : 0);
        o.kv("inFlight", t.inFlight);
        o.kv("retries", t.retries);
        o.kv("retriesExhausted", t.retriesExhausted);
        o.kv("dropped", t.dropped);
        o.kv("coalesced", t.coalesced);
        o.kv("spilled", t.spilled);
        o.kv("publishRefused", t.publishRefused);
        o.key("overflow");
        o.open('{');
        for (auto& [reason, n] : t.overflowByReason) o.kv(reason.c_str(), n);
        o.close('}');
        o.close('}');
    }
    o.close(']');

    o.key("lanes");
    o.open('{');
    o.kv("total", d.lanes);
    o.key("depthHistogram");
    o.open('[');
    for (size_t b = 0; b < delivery::DeliveryStats::kBuckets; ++b) {
        o.open('{');
        o.kv("bucket", delivery::DeliveryStats::bucketLabels()[b]);
        o.kv("lanes", d.depthHistogram[b]);
        o.close('}');
    }
    o.close(']');
    o.key("deepest");
    o.open('[');
    for (auto& l : d.deepest) {
        o.open('{');
        o.kv("clientId", l.clientId);
        o.kv("namespace", l.ns);
        o.kv("topic", l.topic);
        o.kv("messages", l.messages);
        o.kv("bytes", l.bytes);
        o.kv("inFlight", l.inFlight);
        o.kv("spilled", l.spilled);
        o.kv("oldestAgeMs", l.oldestAgeMs);
        o.close('}');
    }
    o.close(']');
    o.close('}');

    // Overflow flattened: one row per namespace/topic/reason with the policy that gave it.
    o.key("overflow");
    o.open('[');
    for (auto& t : s.topics)
        for (auto& [reason, n] : t.overflowByReason) {
            o.open('{');
            o.kv("namespace", t.ns);
            o.kv("topic", t.topic);
            o.kv("policy", t.overflowAction);
            o.kv("reason", reason);
            o.kv("count", n);
            o.close('}');
        }
    o.close(']');

    o.key("retries");
    o.open('{');
    o.kv("retries", retries);
    o.kv("exhausted", exhausted);
    o.close('}');

    o.key("spill");
    o.open('[');
    std::map<std::string, delivery::SpillLoad> backends = d.spill;
    for (auto& [name, n] : spilledByBackend) backends[name];
    for (auto& [name, sp] : backends) {
        o.open('{');
        o.kv("backend", name);
        o.kv("lanes", sp.lanes);
        o.kv("records", sp.records);
        o.kv("spilledTotal", spilledByBackend.count(name) ? spilledByBackend[name] : 0);
        o.close('}');
    }
    o.close(']');

    o.key("auth");
    o.open('{');
    o.kv("rejected", rejected);
    o.kv("rateLimited", rateLimited);
    o.kv("limitedAddressesTotal", d.limitedAddressesTotal);
    o.key("limitedAddresses");
    o.open('[');
    for (auto& a : d.limitedAddresses) {
        o.open('{');
        o.kv("ip", a.ip);
        o.kv("failures", a.failures);
        o.kv("remainingMs", a.remainingMs);
        o.close('}');
    }
    o.close(']');
    o.close('}');

    o.key("plugins");
    o.open('{');
    o.key("loaded");
    o.open('[');
    for (auto& p : s.plugins) {
        o.open('{');
        o.kv("name", p.name);
        o.kv("kind", p.kind);
        o.kv("version", p.version);
        o.kv("abiVersion", p.abiVersion);
        o.kv("abi", std::to_string(p.abiVersion) + "." + std::to_string(p.abiMinor));
        o.kv("file", p.file);
        o.close('}');
    }
    o.close(']');
    o.key("refused");
    o.open('[');
    for (auto& r : s.refusedPlugins) {
        o.open('{');
        o.kv("file", r.file);
        o.kv("reason", r.reason);
        o.close('}');
    }
    o.close(']');
    o.close('}');

    o.key("tls");
    o.open('{');
    o.kv("enabled", s.tls.enabled);
    if (s.tls.enabled) {
        o.kv("certFile", s.tls.certFile);
        o.kv("subject", s.tls.subject);
        o.kv("issuer", s.tls.issuer);
        o.kv("notAfter", s.tls.notAfter);
        o.kv("secondsLeft", s.tls.secondsLeft);
        if (!s.tls.error.empty()) o.kv("error", s.tls.error);
    }
    o.close('}');

    o.key("detachedSessions");
    if (s.detached) {
        o.open('{');
        o.kv("sessions", s.detached->sessions);
        o.kv("messages", s.detached->messages);
        o.kv("bytes", s.detached->bytes);
        o.kv("oldestAgeMs", s.detached->oldestAgeMs);
        o.kv("resumed", s.detached->resumed);
        o.kv("expired", s.detached->expired);
        o.close('}');
    } else {
        o.null();
    }
    o.key("cluster");
    if (s.cluster) {
        o.open('{');
        o.kv("nodeId", s.cluster->nodeId);
        o.key("nodes");
        o.open('[');
        for (auto& n : s.cluster->nodes) {
            o.open('{');
            o.kv("id", n.id);
            o.kv("address", n.address);
            o.kv("state", n.state);
            o.kv("lastSeenMs", n.lastSeenMs);
            o.kv("self", n.self);
            o.close('}');
        }
        o.close(']');
        o.close('}');
    } else {
        o.null();
    }
    o.close('}');
    return o.s;
}

}  // namespace sf::admin
