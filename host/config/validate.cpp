#include "config/validate.hpp"

#include "config/hints.hpp"
#include "config/loader.hpp"

#include <algorithm>

namespace sf::config {
namespace {

bool isBlank(const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

// Plugin names end up in file names and log lines, so keep them to a safe alphabet.
bool isIdentifier(const std::string& s) {
    if (s.empty()) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

std::string parentPath(const std::string& p) {
    size_t cut = p.find_last_of(".[");
    return cut == std::string::npos ? std::string() : p.substr(0, cut);
}

class Reporter {
public:
    Reporter(const std::string& file, const std::map<std::string, SourceMark>* marks, const std::set<std::string>* skip)
        : file_(file), marks_(marks), skip_(skip) {}

    // Reports at the nearest written ancestor of keyPath (a defaulted value is "at" its section).
    void add(const std::string& keyPath, const std::string& message) {
        if (skip_ && skip_->count(keyPath)) return;
        SourceMark m;
        m.file = file_;
        if (marks_) {
            for (std::string p = keyPath;; p = parentPath(p)) {
                auto it = marks_->find(p);
                if (it != marks_->end()) {
                    m = it->second;
                    break;
                }
                if (p.empty()) break;
            }
        }
        m.keyPath = keyPath;
        std::string prefix = m.str();
        out_.push_back(prefix.empty() ? message : prefix + ": " + message);
    }
    bool written(const std::string& keyPath) const { return marks_ && marks_->count(keyPath); }
    bool skipped(const std::string& keyPath) const { return skip_ && skip_->count(keyPath); }
    std::vector<std::string> take() { return std::move(out_); }

private:
    std::string file_;
    const std::map<std::string, SourceMark>* marks_;
    const std::set<std::string>* skip_;
    std::vector<std::string> out_;
};

void positive(Reporter& r, const std::string& base, const char* key, int64_t v) {
    if (v <= 0) r.add(base + "." + key, std::string(key) + " must be positive");
}

void range(Reporter& r, const std::string& keyPath, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
        r.add(keyPath, "out of range: " + std::to_string(v) + " (expected " + std::to_string(lo) + ".." + std::to_string(hi) + ")");
}

void notBlank(Reporter& r, const std::string& base, const char* key, const std::string& v) {
    if (isBlank(v)) r.add(base + "." + key, std::string(key) + " must not be blank");
}

void pluginName(Reporter& r, const std::string& keyPath, const char* kind, const std::string& v) {
    if (!isIdentifier(v))
        r.add(keyPath, std::string("invalid ") + kind + " plugin name \"" + v + "\" (expected letters, digits, '_' or '-')");
}

void validateNamespace(Reporter& r, const ServerConfig& s, const std::string& sp, size_t index,
                       std::set<std::string>& seenPaths) {
    const NamespaceConfig& ns = s.namespaces[index];
    // A loaded namespace knows its key path; it differs from the index if an entry was unreadable.
    const std::string base = ns.mark.keyPath.empty() ? sp + ".namespaces[" + std::to_string(index) + "]" : ns.mark.keyPath;
    const bool pathOk = !ns.path.empty() && ns.path[0] == '/';
    if (!pathOk) r.add(base + ".path", "namespace path must start with '/'");
    else if (!seenPaths.insert(ns.path).second)
        r.add(base + ".path", "Duplicate namespace path \"" + ns.path + "\" in server \"" + s.name + "\"");
    const std::string nsName = pathOk ? ns.path : "#" + std::to_string(index);

    if (ns.topics.empty()) r.add(base + ".topics", "namespace must define at least one topic");
    std::set<std::string> seenTopics;
    for (size_t i = 0; i < ns.topics.size(); ++i) {
        const std::string tp = base + ".topics[" + std::to_string(i) + "]";
        if (isBlank(ns.topics[i])) r.add(tp, "topic names must not be blank in namespace " + nsName);
        else if (!seenTopics.insert(ns.topics[i]).second)
            r.add(tp, "duplicate topic in namespace " + nsName + ": " + ns.topics[i]);
    }

    const bool actionOk = isIdentifier(ns.overflowAction);
    if (!actionOk)
        r.add(base + ".overflowAction", "Invalid overflowAction \"" + ns.overflowAction + "\" for namespace " + nsName +
                                            " (expected: " + joinNames(builtinOverflowActions()) +
                                            " or an overflow-policy plugin name)");
    positive(r, base, "maxQueuedMessagesPerClient", ns.maxQueuedMessagesPerClient);
    positive(r, base, "maxQueuedBytesPerClient", ns.maxQueuedBytesPerClient);
    positive(r, base, "ackTimeoutMs", ns.ackTimeoutMs);
    // 0 = automatic (docs/message-path.md).
    if (ns.maxBufferedMessagesPerTopic < 0)
        r.add(base + ".maxBufferedMessagesPerTopic", "maxBufferedMessagesPerTopic must be 0 (automatic) or positive");
    if (ns.maxBufferedBytesPerTopic < 0)
        r.add(base + ".maxBufferedBytesPerTopic", "maxBufferedBytesPerTopic must be 0 (automatic) or positive");
    if (ns.maxRetries < 0) r.add(base + ".maxRetries", "maxRetries must be zero or positive");
    pluginName(r, base + ".spillBackend", "storage-backend", ns.spillBackend);

    if (ns.deliveryMode == DeliveryMode::AT_LEAST_ONCE) {
        if (actionOk && ns.overflowAction != "REJECT_NEW" && ns.overflowAction != "SPILL_TO_DISK")
            r.add(base + ".overflowAction", "AT_LEAST_ONCE namespaces must use REJECT_NEW or SPILL_TO_DISK overflowAction");
        if (ns.coalesce) r.add(base + ".coalesce", "AT_LEAST_ONCE namespaces cannot enable coalescing");
        if (ns.maxRetries == 0)
            r.add(base + ".maxRetries", std::string("AT_LEAST_ONCE namespaces must allow at least one retry") +
                                            (r.written(base + ".maxRetries") ? "" : " (maxRetries defaults to 0)"));
        // maxInFlight <= 0 means 1 (streamfence-js normalises it before this rule).
        const int inFlight = ns.maxInFlight <= 0 ? 1 : ns.maxInFlight;
        if (ns.maxQueuedMessagesPerClient > 0 && inFlight > ns.maxQueuedMessagesPerClient &&
            !r.skipped(base + ".maxQueuedMessagesPerClient"))
            r.add(base + ".maxInFlight", "maxInFlight must not exceed maxQueuedMessagesPerClient");
    }
    if (ns.durable) {
        // docs/recovery.md: the journal is an AT_LEAST_ONCE log of what clients must ack, and
        // only recovery gives a restarted client its session back.
        if (ns.deliveryMode != DeliveryMode::AT_LEAST_ONCE)
            r.add(base + ".durable", "durable requires deliveryMode AT_LEAST_ONCE in namespace " + nsName);
        else if (ns.overflowAction == "SPILL_TO_DISK")
            r.add(base + ".durable", "durable namespaces keep every message in their journal: use overflowAction REJECT_NEW, not SPILL_TO_DISK, in namespace " + nsName);
        if (!s.recovery.enabled)
            r.add(base + ".durable", "durable requires connectionStateRecovery on server \"" + s.name + "\" (a restarted client gets its session back only through recovery)");
    }
    if (ns.authRequired && s.auth == AuthMode::NONE && !r.skipped(sp + ".auth"))
        r.add(base + ".authRequired", "Auth cannot be required when auth is NONE (set auth: TOKEN and a tokenValidator on server \"" +
                                          s.name + "\", or remove authRequired)");
}

bool isLoopbackHost(const std::string& h) {
    return h == "localhost" || h == "::1" || h == "[::1]" || h.compare(0, 4, "127.") == 0;
}

// The `limits` block (conf/README.md "limits"); 0 = no cap where the README says so.
void validateLimits(Reporter& r, const std::string& lp, const LimitsConfig& l) {
    range(r, lp + ".maxConnections", l.maxConnections, 0, 10000000);
    range(r, lp + ".maxConnectionsPerAddress", l.maxConnectionsPerAddress, 0, 10000000);
    range(r, lp + ".maxConnectionsPerAddressPerSecond", l.maxConnectionsPerAddressPerSecond, 0, 1000000);
    range(r, lp + ".addressTableSize", l.addressTableSize, 16, 10000000);
    range(r, lp + ".maxNamespacesPerConnection", l.maxNamespacesPerConnection, 1, 10000);
    range(r, lp + ".maxSubscriptionsPerClient", l.maxSubscriptionsPerClient, 1, 10000000);
    range(r, lp + ".maxPendingPollsPerSession", l.maxPendingPollsPerSession, 1, 1000);
    range(r, lp + ".maxPendingPolls", l.maxPendingPolls, 0, 10000000);
    range(r, lp + ".maxFramesPerMessage", l.maxFramesPerMessage, 1, 1000000);
    range(r, lp + ".maxAttachmentsPerPacket", l.maxAttachmentsPerPacket, 0, 100000);
    range(r, lp + ".maxSessionsPerConnection", l.maxSessionsPerConnection, 0, 1000000);
}

void validateServer(Reporter& r, const ServerConfig& s) {
    const std::string sp = "servers." + s.name;
    if (isBlank(s.name)) r.add(sp, "server name must not be blank");
    notBlank(r, sp, "host", s.host);
    range(r, sp + ".port", s.port, 0, 65535);
    notBlank(r, sp, "spillRootPath", s.spillRootPath);

    if (s.tls) {
        const std::string tp = sp + ".tls";
        if (isBlank(s.tls->certChainPemPath)) r.add(tp + ".certChainPemPath", "certChainPemPath is required");
        if (isBlank(s.tls->privateKeyPemPath)) r.add(tp + ".privateKeyPemPath", "privateKeyPemPath is required");
        if (s.tls->protocol != "TLSv1.2" && s.tls->protocol != "TLSv1.3")
            r.add(tp + ".protocol", "Invalid protocol \"" + s.tls->protocol + "\" (expected: TLSv1.2, TLSv1.3)" +
                                        didYouMean(s.tls->protocol, {"TLSv1.2", "TLSv1.3"}));
        positive(r, tp, "watchIntervalMs", s.tls->watchIntervalMs);
    } else if (s.transport == Transport::WSS && !r.skipped(sp + ".tls")) {
        r.add(sp + ".transport", "transport WSS requires a tls section (certChainPemPath, privateKeyPemPath)");
    }

    if (s.path.empty() || s.path.front() != '/' || s.path.back() != '/')
        r.add(sp + ".path", "path must start and end with '/' (e.g. /socket.io/)");
    positive(r, sp, "pingIntervalMs", s.pingIntervalMs);
    positive(r, sp, "pingTimeoutMs", s.pingTimeoutMs);
    range(r, sp + ".shutdownDrainMs", s.shutdownDrainMs, 0, 60000);
    positive(r, sp, "maxPayloadBytes", s.maxPayloadBytes);
    range(r, sp + ".handshakeTimeoutMs", s.handshakeTimeoutMs, 1, 600000);
    range(r, sp + ".authTimeoutMs", s.authTimeoutMs, 1, 600000);
    range(r, sp + ".maxClientErrorsPerMinute", s.maxClientErrorsPerMinute, 0, 100000000);
    range(r, sp + ".ioThreads", s.ioThreads, 0, 256);
    validateLimits(r, sp + ".limits", s.limits);
    if (s.recovery.enabled)
        range(r, sp + ".connectionStateRecovery.maxDisconnectionDurationMs", s.recovery.maxDisconnectionDurationMs,
              int64_t{1}, int64_t{7} * 24 * 3600 * 1000);
    for (size_t i = 0; i < s.corsOrigins.size(); ++i)
        if (isBlank(s.corsOrigins[i])) r.add(sp + ".cors.origins[" + std::to_string(i) + "]", "origin must not be blank");

    if (!s.tokenValidator.empty()) pluginName(r, sp + ".tokenValidator", "token-validator", s.tokenValidator);
    else if (s.auth == AuthMode::TOKEN && !r.skipped(sp + ".tokenValidator"))
        r.add(sp + ".auth", "auth TOKEN requires tokenValidator (the name of a token-validator plugin, e.g. static or jwt)");
    positive(r, sp + ".authRateLimit", "windowMs", s.authRateLimit.windowMs);
    positive(r, sp + ".authRateLimit", "maxFailures", s.authRateLimit.maxFailures);
    if (s.control.enabled) {
        notBlank(r, sp + ".control", "host", s.control.host);
        range(r, sp + ".control.port", s.control.port, 0, 65535);
        range(r, sp + ".control.maxConnections", s.control.maxConnections, 1, 4096);
        range(r, sp + ".control.maxRequestsPerSecond", s.control.maxRequestsPerSecond, 0, 1000000);
        // The control API publishes to every client: off loopback it must ask for a token.
        if (!isLoopbackHost(s.control.host) && s.control.token.empty() && !isBlank(s.control.host))
            r.add(sp + ".control.host", "control listener on non-loopback host \"" + s.control.host +
                                            "\" requires a token (set control.token, or bind it to 127.0.0.1)");
    }

    if (s.namespaces.empty() && !r.skipped(sp + ".namespaces"))
        r.add(sp + ".namespaces", "StreamFenceServer requires at least one namespace");
    std::set<std::string> seenPaths;
    for (size_t i = 0; i < s.namespaces.size(); ++i) validateNamespace(r, s, sp, i, seenPaths);
}

// Two listeners on the same port would only fail later at bind(); say so now.
void checkPortClashes(Reporter& r, const Config& config) {
    struct BoundPort { std::string host; int port; std::string keyPath; };
    std::vector<BoundPort> all;
    for (const auto& s : config.servers) {
        if (s.port != 0) all.push_back({s.host, s.port, "servers." + s.name + ".port"});
        if (s.control.enabled && s.control.port != 0)
            all.push_back({s.control.host, s.control.port, "servers." + s.name + ".control.port"});
    }
    auto wildcard = [](const std::string& h) { return h == "0.0.0.0" || h == "::" || h == "*"; };
    for (size_t i = 0; i < all.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (all[i].port == all[j].port && (all[i].host == all[j].host || wildcard(all[i].host) || wildcard(all[j].host))) {
                r.add(all[i].keyPath, "port " + std::to_string(all[i].port) + " is already used by " + all[j].keyPath);
                break;
            }
}

const std::vector<std::string> kLogLevels = {"debug", "info", "warn", "error"};

}  // namespace

std::vector<std::string> validateConfig(const Config& config, const std::map<std::string, SourceMark>* marks,
                                        const std::set<std::string>* skip) {
    Reporter r(config.file, marks, skip);
    if (std::find(kLogLevels.begin(), kLogLevels.end(), config.logLevel) == kLogLevels.end())
        r.add("logLevel", "Invalid logLevel \"" + config.logLevel + "\" (expected: " + joinNames(kLogLevels) + ")" +
                              didYouMean(config.logLevel, kLogLevels));
    std::set<std::string> sinks;
    for (size_t i = 0; i < config.metricsSinks.size(); ++i) {
        const std::string p = "metrics.sinks[" + std::to_string(i) + "]";
        if (!isIdentifier(config.metricsSinks[i])) pluginName(r, p, "metrics-sink", config.metricsSinks[i]);
        else if (!sinks.insert(config.metricsSinks[i]).second)
            r.add(p, "duplicate metrics sink \"" + config.metricsSinks[i] + "\"");
    }
    for (const auto& [name, opts] : config.pluginOptions)
        if (!isIdentifier(name))
            r.add("plugins." + name, "invalid plugin name \"" + name + "\" (expected letters, digits, '_' or '-')");
    if (config.servers.empty() && !r.skipped("servers")) r.add("servers", "at least one server must be defined");
    std::set<std::string> names;
    for (const auto& s : config.servers) {
        if (!names.insert(s.name).second) r.add("servers." + s.name, "duplicate server name \"" + s.name + "\"");
        validateServer(r, s);
    }
    checkPortClashes(r, config);
    return r.take();
}

std::vector<std::string> validate(const Config& config) {
    // Marks the structs carry (set when loaded from a file) still locate messages.
    std::map<std::string, SourceMark> marks;
    auto keep = [&](const SourceMark& m) {
        if (m.line > 0 && !m.keyPath.empty()) marks.emplace(m.keyPath, m);
    };
    for (const auto& m : config.metricsSinkMarks) keep(m);
    for (const auto& [name, o] : config.pluginOptions) keep(o.mark);
    for (const auto& s : config.servers) {
        keep(s.mark);
        keep(s.tokenValidatorMark);
        for (const auto& ns : s.namespaces) {
            keep(ns.mark);
            keep(ns.overflowActionMark);
            keep(ns.spillBackendMark);
        }
    }
    return validateConfig(config, &marks, nullptr);
}

}  // namespace sf::config
