#include "config/schema.hpp"

#include "common/json.hpp"
#include "config/cluster_schema.hpp"
#include "config/hints.hpp"
#include "config/limits_schema.hpp"
#include "config/validate.hpp"

#include <limits>

namespace sf::config {
namespace {

const std::vector<std::string> kRootKeys = {"servers", "pluginDir", "logLevel", "metrics", "plugins", "cluster"};
const std::vector<std::string> kServerKeys = {
    "host", "port", "transport", "engineIoTransport", "auth", "spillRootPath", "tls", "namespaces",
    "path", "pingIntervalMs", "pingTimeoutMs", "maxPayloadBytes", "ioThreads", "cors",
    "tokenValidator", "authRateLimit", "control", "shutdownDrainMs", "handshakeTimeoutMs",
    "maxClientErrorsPerMinute", "connectionStateRecovery", "authTimeoutMs", "limits"};
const std::vector<std::string> kTlsKeys = {"certChainPemPath", "privateKeyPemPath", "privateKeyPassword",
                                           "protocol", "watchIntervalMs"};
const std::vector<std::string> kNamespaceKeys = {
    "path", "topics", "deliveryMode", "overflowAction", "maxQueuedMessagesPerClient",
    "maxQueuedBytesPerClient", "ackTimeoutMs", "maxRetries", "coalesce", "allowPolling",
    "maxInFlight", "authRequired", "coalesceKey", "spillBackend", "maxBufferedMessagesPerTopic",
    "maxBufferedBytesPerTopic", "inboundAckPolicy", "durable"};
const std::vector<std::string> kCorsKeys = {"origins"};
const std::vector<std::string> kRateLimitKeys = {"windowMs", "maxFailures"};
const std::vector<std::string> kControlKeys = {"enabled", "host", "port", "token", "maxConnections", "maxRequestsPerSecond"};
const std::vector<std::string> kMetricsKeys = {"sinks"};
const std::vector<std::string> kRecoveryKeys = {"maxDisconnectionDurationMs"};

constexpr int kIntMin = std::numeric_limits<int>::min();
constexpr int kIntMax = std::numeric_limits<int>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

template <class E>
using EnumTable = std::vector<std::pair<std::string, E>>;

// Enum values are exact (as in streamfence-js); message wording follows JS:
// `Invalid transport "QUIC" (expected: WS, WSS)`, with an optional " for namespace /x".
template <class E>
bool readEnum(const MapView& m, const std::string& key, const EnumTable<E>& table, E& out,
              const std::string& context = "") {
    YAML::Node n = m.get(key);
    if (!n.IsDefined()) return true;
    if (!n.IsScalar() && !n.IsNull()) {
        m.errors().add(m.markOf(key), m.pathOf(key), "expected a string, got " + describeNode(n));
        return false;
    }
    const std::string v = n.IsNull() ? std::string() : n.Scalar();
    std::vector<std::string> names;
    for (const auto& [name, value] : table) {
        if (name == v) {
            out = value;
            return true;
        }
        names.push_back(name);
    }
    m.errors().add(m.markOf(key), m.pathOf(key),
                   "Invalid " + key + " \"" + v + "\"" + context + " (expected: " + joinNames(names) + ")" +
                       didYouMean(v, names));
    return false;
}

void missing(const MapView& m, const std::string& key) {
    m.errors().add(m.mark(), m.path(), "missing required key \"" + key + "\"");
    m.errors().markFailed(m.pathOf(key));  // no "must not be empty" follow-ups from validation
}

// ---- plugin options --------------------------------------------------------------------

// Flattens one options subtree into opts.flat ("a.b", "list.0") and emits it as JSON.
// Plain scalars keep their YAML meaning in JSON (true, 12, null); quoted ones are strings.
void flattenOptions(Errors& errors, const YAML::Node& n, const YAML::Mark& mark, const std::string& path,
                    const std::string& flatKey, PluginOptions& opts, std::string& json) {
    if (n.IsMap()) {
        MapView m(errors, n, mark, path);
        json.push_back('{');
        bool first = true;
        for (const auto& key : m.keys()) {
            if (!first) json.push_back(',');
            first = false;
            json::quoteTo(json, key);
            json.push_back(':');
            flattenOptions(errors, m.get(key), m.markOf(key), m.pathOf(key),
                           flatKey.empty() ? key : flatKey + "." + key, opts, json);
        }
        json.push_back('}');
        return;
    }
    if (n.IsSequence()) {
        json.push_back('[');
        size_t i = 0;
        for (auto it = n.begin(); it != n.end(); ++it, ++i) {
            if (i) json.push_back(',');
            YAML::Mark mk = it->IsNull() ? mark : it->Mark();
            flattenOptions(errors, *it, mk, indexPath(path, i), flatKey + "." + std::to_string(i), opts, json);
        }
        json.push_back(']');
        return;
    }
    std::string value;
    if (isNullScalar(n)) {
        json += "null";
    } else {
        value = n.Scalar();
        if (isQuoted(n)) json::quoteTo(json, value);
        else if (auto b = asBool(n)) json += *b ? "true" : "false";
        else if (json::isNumberText(value)) json += value;
        else json::quoteTo(json, value);
    }
    opts.flat.emplace_back(flatKey, value);
    opts.flatMarks.push_back(errors.mark(mark, path));
}

void readPlugins(const MapView& root, Config& config) {
    Errors& errors = root.errors();
    MapView plugins(errors, root.get("plugins"), root.markOf("plugins"), "plugins");
    for (const auto& name : plugins.keys()) {
        const YAML::Node n = plugins.get(name);
        const std::string path = plugins.pathOf(name);
        if (!n.IsMap() && !n.IsNull()) {
            errors.add(plugins.markOf(name), path, "expected a map of plugin options, got " + describeNode(n));
            continue;
        }
        PluginOptions opts;
        opts.mark = plugins.sourceMark(name);
        opts.json.clear();
        if (n.IsNull()) opts.json = "{}";
        else flattenOptions(errors, n, plugins.markOf(name), path, "", opts, opts.json);
        config.pluginOptions[name] = std::move(opts);
    }
}

// ---- namespaces ----------------------------------------------------------------------

const EnumTable<DeliveryMode> kDeliveryModes = {{"BEST_EFFORT", DeliveryMode::BEST_EFFORT},
                                                 {"AT_LEAST_ONCE", DeliveryMode::AT_LEAST_ONCE}};
const EnumTable<InboundAckPolicy> kInboundAckPolicies = {
    {"ACK_ON_RECEIPT", InboundAckPolicy::ACK_ON_RECEIPT},
    {"ACK_AFTER_HANDLER_SUCCESS", InboundAckPolicy::ACK_AFTER_HANDLER_SUCCESS}};

void readNamespace(const MapView& server, const YAML::Node& item, const YAML::Mark& itemMark, size_t index,
                   ServerConfig& out) {
    Errors& errors = server.errors();
    MapView m(errors, item, itemMark, indexPath(server.pathOf("namespaces"), index), kNamespaceKeys);
    if (!m.ok() && !item.IsMap()) return;
    NamespaceConfig ns;
    ns.mark = errors.mark(itemMark, m.path());

    if (!m.has("path")) missing(m, "path");
    else readString(m, "path", ns.path);
    // JS names the namespace in enum messages; an unusable path gets its index instead.
    const std::string nsName = (!ns.path.empty() && ns.path[0] == '/') ? ns.path : "#" + std::to_string(index);

    if (!m.has("topics")) missing(m, "topics");
    else readStringList(m, "topics", ns.topics);

    readEnum(m, "deliveryMode", kDeliveryModes, ns.deliveryMode, " for namespace " + nsName);
    readString(m, "overflowAction", ns.overflowAction);
    ns.overflowActionMark = m.sourceMark("overflowAction");
    readInt(m, "maxQueuedMessagesPerClient", kIntMin, kIntMax, ns.maxQueuedMessagesPerClient);
    readInt(m, "maxQueuedBytesPerClient", kI64Min, kI64Max, ns.maxQueuedBytesPerClient);
    readInt(m, "ackTimeoutMs", kIntMin, kIntMax, ns.ackTimeoutMs);
    readInt(m, "maxRetries", kIntMin, kIntMax, ns.maxRetries);
    readBool(m, "coalesce", ns.coalesce);
    readBool(m, "allowPolling", ns.allowPolling);
    readInt(m, "maxInFlight", kIntMin, kIntMax, ns.maxInFlight);
    if (ns.maxInFlight <= 0) ns.maxInFlight = 1;  // as streamfence-js
    readBool(m, "authRequired", ns.authRequired);
    readEnum(m, "inboundAckPolicy", kInboundAckPolicies, ns.inboundAckPolicy, " for namespace " + nsName);
    readString(m, "coalesceKey", ns.coalesceKey);
    readString(m, "spillBackend", ns.spillBackend);
    ns.spillBackendMark = m.sourceMark("spillBackend");
    readInt(m, "maxBufferedMessagesPerTopic", kIntMin, kIntMax, ns.maxBufferedMessagesPerTopic);
    readInt(m, "maxBufferedBytesPerTopic", kI64Min, kI64Max, ns.maxBufferedBytesPerTopic);
    readBool(m, "durable", ns.durable);
    out.namespaces.push_back(std::move(ns));
}

// ---- servers ---------------------------------------------------------------------------

const EnumTable<Transport> kTransports = {{"WS", Transport::WS}, {"WSS", Transport::WSS}};
const EnumTable<EngineIoTransport> kEngineIoTransports = {
    {"WEBSOCKET_ONLY", EngineIoTransport::WEBSOCKET_ONLY},
    {"WEBSOCKET_OR_POLLING", EngineIoTransport::WEBSOCKET_OR_POLLING}};
const EnumTable<AuthMode> kAuthModes = {{"NONE", AuthMode::NONE}, {"TOKEN", AuthMode::TOKEN}};

void readTls(const MapView& server, ServerConfig& out) {
    const YAML::Node node = server.get("tls");
    MapView m(server.errors(), node, server.markOf("tls"), server.pathOf("tls"), kTlsKeys);
    if (!node.IsMap() && !node.IsNull()) return;  // reported; validation skips the WSS rule
    TlsConfig tls;
    readString(m, "certChainPemPath", tls.certChainPemPath);
    readString(m, "privateKeyPemPath", tls.privateKeyPemPath);
    readString(m, "privateKeyPassword", tls.privateKeyPassword);
    std::string protocol;
    if (readString(m, "protocol", protocol) && !protocol.empty()) tls.protocol = protocol;  // blank: default
    readInt(m, "watchIntervalMs", kIntMin, kIntMax, tls.watchIntervalMs);
    out.tls = tls;
}

void readControl(const MapView& server, ServerConfig& out) {
    MapView m(server.errors(), server.get("control"), server.markOf("control"), server.pathOf("control"), kControlKeys);
    ControlConfig c;
    c.enabled = true;  // the section being there is what turns it on
    readBool(m, "enabled", c.enabled);
    readString(m, "host", c.host);
    readInt(m, "port", kIntMin, kIntMax, c.port);
    readString(m, "token", c.token);
    readInt(m, "maxConnections", kIntMin, kIntMax, c.maxConnections);
    readInt(m, "maxRequestsPerSecond", kIntMin, kIntMax, c.maxRequestsPerSecond);
    out.control = c;
}

ServerConfig readServer(const MapView& servers, const std::string& name) {
    Errors& errors = servers.errors();
    ServerConfig s;
    s.name = name;
    s.mark = servers.sourceMark(name);
    const YAML::Node node = servers.get(name);
    MapView m(errors, node, servers.markOf(name), servers.pathOf(name), kServerKeys);
    if (!node.IsMap()) {
        // Reported by MapView (or empty); no "missing namespaces" on top of it.
        if (node.IsNull()) missing(m, "namespaces");
        errors.markFailed(m.pathOf("namespaces"));
        return s;
    }

    readString(m, "host", s.host);
    readInt(m, "port", kIntMin, kIntMax, s.port);
    readEnum(m, "transport", kTransports, s.transport);
    readEnum(m, "engineIoTransport", kEngineIoTransports, s.engineIoTransport);
    readEnum(m, "auth", kAuthModes, s.auth);
    readString(m, "spillRootPath", s.spillRootPath);
    if (m.has("tls")) readTls(m, s);
    readString(m, "path", s.path);
    readInt(m, "pingIntervalMs", kIntMin, kIntMax, s.pingIntervalMs);
    readInt(m, "pingTimeoutMs", kIntMin, kIntMax, s.pingTimeoutMs);
    readInt(m, "shutdownDrainMs", kIntMin, kIntMax, s.shutdownDrainMs);
    readInt(m, "handshakeTimeoutMs", kIntMin, kIntMax, s.handshakeTimeoutMs);
    readInt(m, "authTimeoutMs", kIntMin, kIntMax, s.authTimeoutMs);
    readInt(m, "maxClientErrorsPerMinute", kIntMin, kIntMax, s.maxClientErrorsPerMinute);
    readInt(m, "maxPayloadBytes", kI64Min, kI64Max, s.maxPayloadBytes);
    readInt(m, "ioThreads", kIntMin, kIntMax, s.ioThreads);
    if (m.has("cors")) {
        MapView cors(errors, m.get("cors"), m.markOf("cors"), m.pathOf("cors"), kCorsKeys);
        readStringList(cors, "origins", s.corsOrigins);
    }
    readString(m, "tokenValidator", s.tokenValidator);
    s.tokenValidatorMark = m.sourceMark("tokenValidator");
    if (m.has("authRateLimit")) {
        MapView rl(errors, m.get("authRateLimit"), m.markOf("authRateLimit"), m.pathOf("authRateLimit"), kRateLimitKeys);
        readInt(rl, "windowMs", kIntMin, kIntMax, s.authRateLimit.windowMs);
        readInt(rl, "maxFailures", kIntMin, kIntMax, s.authRateLimit.maxFailures);
    }
    if (m.has("control")) readControl(m, s);
    if (m.has("limits")) readLimits(m, s);
    const YAML::Node csr = m.get("connectionStateRecovery");
    if (csr.IsDefined() && csr.IsScalar() && (csr.Scalar() == "true" || csr.Scalar() == "false")) {
        s.recovery.enabled = csr.Scalar() == "true";  // socket.io's `connectionStateRecovery: true`
    } else if (m.has("connectionStateRecovery")) {
        // The block being there turns recovery on (socket.io: a truthy option).
        MapView rc(errors, m.get("connectionStateRecovery"), m.markOf("connectionStateRecovery"),
                   m.pathOf("connectionStateRecovery"), kRecoveryKeys);
        s.recovery.enabled = true;
        readInt(rc, "maxDisconnectionDurationMs", kI64Min, kI64Max, s.recovery.maxDisconnectionDurationMs);
    }

    if (!m.has("namespaces")) {
        missing(m, "namespaces");
        return s;
    }
    const YAML::Node list = m.get("namespaces");
    if (!list.IsSequence()) {
        errors.add(m.markOf("namespaces"), m.pathOf("namespaces"), "expected a list, got " + describeNode(list));
        return s;
    }
    size_t i = 0;
    for (auto it = list.begin(); it != list.end(); ++it, ++i) {
        const YAML::Node item = *it;
        const YAML::Mark mk = item.IsNull() ? m.markOf("namespaces") : item.Mark();
        readNamespace(m, item, mk, i, s);
    }
    // An unreadable entry was reported; "requires at least one namespace" would only add noise.
    if (s.namespaces.size() != list.size()) errors.markFailed(m.pathOf("namespaces"));
    return s;
}
}  // namespace

Config buildConfig(const YAML::Node& root, Errors& errors) {
    Config config;
    config.file = errors.file();
    const YAML::Mark top;  // line 0, column 0 -> "1:1"
    if (!root.IsDefined() || root.IsNull()) {
        errors.add(top, "", "the config is empty (expected a map with a \"servers\" key)");
        return config;
    }
    MapView m(errors, root, top, "", kRootKeys);
    if (!root.IsMap()) return config;

    readString(m, "pluginDir", config.pluginDir);
    readString(m, "logLevel", config.logLevel);
    if (m.has("metrics")) {
        MapView metrics(errors, m.get("metrics"), m.markOf("metrics"), "metrics", kMetricsKeys);
        std::vector<YAML::Mark> marks;
        if (metrics.has("sinks") && readStringList(metrics, "sinks", config.metricsSinks, &marks))
            for (size_t i = 0; i < marks.size(); ++i)
                config.metricsSinkMarks.push_back(errors.mark(marks[i], indexPath("metrics.sinks", i)));
    }
    // Defaulted sinks still get a mark, so a missing default plugin can be reported.
    if (config.metricsSinkMarks.size() != config.metricsSinks.size()) {
        config.metricsSinkMarks.clear();
        for (size_t i = 0; i < config.metricsSinks.size(); ++i)
            config.metricsSinkMarks.push_back(errors.mark(m.markOf("metrics"), indexPath("metrics.sinks", i)));
    }
    if (m.has("plugins")) readPlugins(m, config);
    if (m.has("cluster")) readCluster(m, config);

    if (!m.has("servers")) {
        missing(m, "servers");
    } else {
        MapView servers(errors, m.get("servers"), m.markOf("servers"), "servers");
        if (!servers.ok() && !m.get("servers").IsMap()) errors.markFailed("servers");
        for (const auto& name : servers.keys()) config.servers.push_back(readServer(servers, name));
    }
    // Second pass: the rules on plain values, shared with configs built in code.
    errors.addAll(validateConfig(config, &errors.marks(), &errors.failed()));
    return config;
}

}  // namespace sf::config
