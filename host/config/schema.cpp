#include "config/schema.hpp"

#include "config/hints.hpp"

#include <algorithm>
#include <limits>
#include <set>
#include <type_traits>

namespace sf::config {
namespace {

const std::vector<std::string> kRootKeys = {"servers", "pluginDir", "logLevel", "metrics", "plugins"};
const std::vector<std::string> kServerKeys = {
    "host", "port", "transport", "engineIoTransport", "auth", "spillRootPath", "tls", "namespaces",
    "path", "pingIntervalMs", "pingTimeoutMs", "maxPayloadBytes", "ioThreads", "cors",
    "tokenValidator", "authRateLimit", "control"};
const std::vector<std::string> kTlsKeys = {"certChainPemPath", "privateKeyPemPath", "privateKeyPassword",
                                           "protocol", "watchIntervalMs"};
const std::vector<std::string> kNamespaceKeys = {
    "path", "topics", "deliveryMode", "overflowAction", "maxQueuedMessagesPerClient",
    "maxQueuedBytesPerClient", "ackTimeoutMs", "maxRetries", "coalesce", "allowPolling",
    "maxInFlight", "authRequired", "coalesceKey", "spillBackend"};
const std::vector<std::string> kCorsKeys = {"origins"};
const std::vector<std::string> kRateLimitKeys = {"windowMs", "maxFailures"};
const std::vector<std::string> kControlKeys = {"enabled", "host", "port", "token"};
const std::vector<std::string> kMetricsKeys = {"sinks"};

constexpr int kIntMin = std::numeric_limits<int>::min();
constexpr int kIntMax = std::numeric_limits<int>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

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

// Reads a positive integer with the JS wording "<key> must be positive".
template <class T>
bool readPositive(const MapView& m, const std::string& key, T& out) {
    int64_t v = out;
    const int64_t lo = std::is_same_v<T, int> ? kIntMin : kI64Min;
    const int64_t hi = std::is_same_v<T, int> ? kIntMax : kI64Max;
    if (!readInt(m, key, lo, hi, v)) return false;
    if (v <= 0) {
        m.errors().add(m.markOf(key), m.pathOf(key), key + " must be positive");
        return false;
    }
    out = static_cast<T>(v);
    return true;
}

// A string that must not be blank when given.
bool readNonBlank(const MapView& m, const std::string& key, std::string& out) {
    std::string v = out;
    if (!readString(m, key, v)) return false;
    if (m.has(key) && isBlank(v)) {
        m.errors().add(m.markOf(key), m.pathOf(key), key + " must not be blank");
        return false;
    }
    out = v;
    return true;
}

bool readPluginName(const MapView& m, const std::string& key, const char* kind, std::string& out) {
    std::string v = out;
    if (!readString(m, key, v)) return false;
    if (m.has(key) && !isIdentifier(v)) {
        m.errors().add(m.markOf(key), m.pathOf(key),
                       std::string("invalid ") + kind + " plugin name \"" + v + "\" (expected letters, digits, '_' or '-')");
        return false;
    }
    out = v;
    return true;
}

void missing(const MapView& m, const std::string& key) {
    m.errors().add(m.mark(), m.path(), "missing required key \"" + key + "\"");
}

// ---- plugin options --------------------------------------------------------------------

void appendJsonString(std::string& out, const std::string& s) {
    static const char* hex = "0123456789abcdef";
    out.push_back('"');
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out.push_back(hex[c >> 4]);
                    out.push_back(hex[c & 15]);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
    }
    out.push_back('"');
}

bool isJsonNumber(const std::string& s) {
    size_t i = 0, n = s.size();
    auto digit = [&](size_t k) { return k < n && s[k] >= '0' && s[k] <= '9'; };
    if (i < n && s[i] == '-') ++i;
    if (!digit(i)) return false;
    if (s[i] == '0') ++i;
    else while (digit(i)) ++i;
    if (i < n && s[i] == '.') {
        ++i;
        if (!digit(i)) return false;
        while (digit(i)) ++i;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
        if (!digit(i)) return false;
        while (digit(i)) ++i;
    }
    return i == n;
}

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
            appendJsonString(json, key);
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
        if (isQuoted(n)) appendJsonString(json, value);
        else if (auto b = asBool(n)) json += *b ? "true" : "false";
        else if (isJsonNumber(value)) json += value;
        else appendJsonString(json, value);
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
        if (!isIdentifier(name)) {
            errors.add(plugins.markOf(name), path, "invalid plugin name \"" + name + "\" (expected letters, digits, '_' or '-')");
            continue;
        }
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

bool isBuiltinOverflow(const std::string& s) {
    const auto& b = builtinOverflowActions();
    return std::find(b.begin(), b.end(), s) != b.end();
}

// serverAuth is nullptr when the server's auth value was itself invalid (no cascade).
void readNamespace(const MapView& server, const YAML::Node& item, const YAML::Mark& itemMark, size_t index,
                   const std::string& serverName, const AuthMode* serverAuth, ServerConfig& out,
                   std::map<std::string, std::string>& seenPaths) {
    Errors& errors = server.errors();
    MapView m(errors, item, itemMark, indexPath(server.pathOf("namespaces"), index), kNamespaceKeys);
    if (!m.ok() && !item.IsMap()) return;
    NamespaceConfig ns;
    ns.mark = errors.mark(itemMark, m.path());

    bool pathOk = false;
    if (!m.has("path")) {
        missing(m, "path");
    } else if (readString(m, "path", ns.path)) {
        if (ns.path.empty() || ns.path[0] != '/') {
            errors.add(m.markOf("path"), m.pathOf("path"), "namespace path must start with '/'");
        } else {
            pathOk = true;
            auto [it, fresh] = seenPaths.emplace(ns.path, m.path());
            if (!fresh)
                errors.add(m.markOf("path"), m.pathOf("path"),
                           "Duplicate namespace path \"" + ns.path + "\" in server \"" + serverName + "\"");
        }
    }
    const std::string nsName = pathOk ? ns.path : "#" + std::to_string(index);

    std::vector<YAML::Mark> topicMarks;
    if (!m.has("topics")) {
        missing(m, "topics");
    } else if (readStringList(m, "topics", ns.topics, &topicMarks)) {
        if (ns.topics.empty())
            errors.add(m.markOf("topics"), m.pathOf("topics"), "namespace must define at least one topic");
        std::set<std::string> seen;
        for (size_t i = 0; i < ns.topics.size(); ++i) {
            const std::string itemPath = indexPath(m.pathOf("topics"), i);
            if (isBlank(ns.topics[i]))
                errors.add(topicMarks[i], itemPath, "topic names must not be blank in namespace " + nsName);
            else if (!seen.insert(ns.topics[i]).second)
                errors.add(topicMarks[i], itemPath, "duplicate topic in namespace " + nsName + ": " + ns.topics[i]);
        }
    }

    const bool modeOk = readEnum(m, "deliveryMode", kDeliveryModes, ns.deliveryMode, " for namespace " + nsName);

    bool actionOk = true;
    if (m.has("overflowAction")) {
        std::string action;
        actionOk = readString(m, "overflowAction", action);
        if (actionOk && !isBuiltinOverflow(action) && !isIdentifier(action)) {
            errors.add(m.markOf("overflowAction"), m.pathOf("overflowAction"),
                       "Invalid overflowAction \"" + action + "\" for namespace " + nsName + " (expected: " +
                           joinNames(builtinOverflowActions()) + " or an overflow-policy plugin name)");
            actionOk = false;
        }
        if (actionOk) ns.overflowAction = action;
    }
    ns.overflowActionMark = m.sourceMark("overflowAction");

    const bool maxQueuedOk = readPositive(m, "maxQueuedMessagesPerClient", ns.maxQueuedMessagesPerClient);
    readPositive(m, "maxQueuedBytesPerClient", ns.maxQueuedBytesPerClient);
    readPositive(m, "ackTimeoutMs", ns.ackTimeoutMs);
    bool retriesOk = readInt(m, "maxRetries", kIntMin, kIntMax, ns.maxRetries);
    if (retriesOk && ns.maxRetries < 0) {
        errors.add(m.markOf("maxRetries"), m.pathOf("maxRetries"), "maxRetries must be zero or positive");
        retriesOk = false;
    }
    const bool coalesceOk = readBool(m, "coalesce", ns.coalesce);
    readBool(m, "allowPolling", ns.allowPolling);
    const bool inFlightOk = readInt(m, "maxInFlight", kIntMin, kIntMax, ns.maxInFlight);
    if (ns.maxInFlight <= 0) ns.maxInFlight = 1;  // as streamfence-js
    const bool authReqOk = readBool(m, "authRequired", ns.authRequired);
    readString(m, "coalesceKey", ns.coalesceKey);
    readPluginName(m, "spillBackend", "storage-backend", ns.spillBackend);
    ns.spillBackendMark = m.sourceMark("spillBackend");

    if (modeOk && ns.deliveryMode == DeliveryMode::AT_LEAST_ONCE) {
        if (actionOk && ns.overflowAction != "REJECT_NEW" && ns.overflowAction != "SPILL_TO_DISK")
            errors.add(m.markOf("overflowAction"), m.pathOf("overflowAction"),
                       "AT_LEAST_ONCE namespaces must use REJECT_NEW or SPILL_TO_DISK overflowAction");
        if (coalesceOk && ns.coalesce)
            errors.add(m.markOf("coalesce"), m.pathOf("coalesce"), "AT_LEAST_ONCE namespaces cannot enable coalescing");
        if (retriesOk && ns.maxRetries < 1)
            errors.add(m.markOf("maxRetries"), m.pathOf("maxRetries"),
                       std::string("AT_LEAST_ONCE namespaces must allow at least one retry") +
                           (m.has("maxRetries") ? "" : " (maxRetries defaults to 0)"));
        if (inFlightOk && maxQueuedOk && ns.maxInFlight > ns.maxQueuedMessagesPerClient)
            errors.add(m.markOf("maxInFlight"), m.pathOf("maxInFlight"),
                       "maxInFlight must not exceed maxQueuedMessagesPerClient");
    }
    if (authReqOk && ns.authRequired && serverAuth && *serverAuth == AuthMode::NONE)
        errors.add(m.markOf("authRequired"), m.pathOf("authRequired"),
                   "Auth cannot be required when auth is NONE (set auth: TOKEN and a tokenValidator on server \"" +
                       serverName + "\", or remove authRequired)");
    out.namespaces.push_back(std::move(ns));
}

// ---- servers ---------------------------------------------------------------------------

const EnumTable<Transport> kTransports = {{"WS", Transport::WS}, {"WSS", Transport::WSS}};
const EnumTable<EngineIoTransport> kEngineIoTransports = {
    {"WEBSOCKET_ONLY", EngineIoTransport::WEBSOCKET_ONLY},
    {"WEBSOCKET_OR_POLLING", EngineIoTransport::WEBSOCKET_OR_POLLING}};
const EnumTable<AuthMode> kAuthModes = {{"NONE", AuthMode::NONE}, {"TOKEN", AuthMode::TOKEN}};

void readTls(const MapView& server, ServerConfig& out) {
    Errors& errors = server.errors();
    MapView m(errors, server.get("tls"), server.markOf("tls"), server.pathOf("tls"), kTlsKeys);
    if (!m.ok() && !server.get("tls").IsMap() && !server.get("tls").IsNull()) return;
    TlsConfig tls;
    bool ok = m.ok();
    for (const char* key : {"certChainPemPath", "privateKeyPemPath"}) {
        std::string v;
        if (!readString(m, key, v)) { ok = false; continue; }
        if (isBlank(v)) {
            errors.add(m.markOf(key), m.pathOf(key), std::string(key) + " is required");
            ok = false;
        }
        (std::string(key) == "certChainPemPath" ? tls.certChainPemPath : tls.privateKeyPemPath) = v;
    }
    ok &= readString(m, "privateKeyPassword", tls.privateKeyPassword);
    std::string protocol;
    if (readString(m, "protocol", protocol)) {
        if (isBlank(protocol)) {
            protocol = "TLSv1.3";  // JS: blank means the default
        } else if (protocol != "TLSv1.2" && protocol != "TLSv1.3") {
            errors.add(m.markOf("protocol"), m.pathOf("protocol"),
                       "Invalid protocol \"" + protocol + "\" (expected: TLSv1.2, TLSv1.3)" +
                           didYouMean(protocol, {"TLSv1.2", "TLSv1.3"}));
            ok = false;
        }
        tls.protocol = protocol;
    } else {
        ok = false;
    }
    ok &= readPositive(m, "watchIntervalMs", tls.watchIntervalMs);
    if (ok) out.tls = tls;
}

void readControl(const MapView& server, ServerConfig& out) {
    Errors& errors = server.errors();
    MapView m(errors, server.get("control"), server.markOf("control"), server.pathOf("control"), kControlKeys);
    ControlConfig c;
    c.enabled = true;  // the section being there is what turns it on
    readBool(m, "enabled", c.enabled);
    readNonBlank(m, "host", c.host);
    readInt(m, "port", 0, 65535, c.port);
    readString(m, "token", c.token);
    out.control = c;
}

ServerConfig readServer(const MapView& servers, const std::string& name) {
    Errors& errors = servers.errors();
    ServerConfig s;
    s.name = name;
    s.mark = servers.sourceMark(name);
    MapView m(errors, servers.get(name), servers.markOf(name), servers.pathOf(name), kServerKeys);
    if (isBlank(name)) errors.add(servers.markOf(name), servers.pathOf(name), "server name must not be blank");
    if (!m.ok() && !servers.get(name).IsMap()) return s;

    readNonBlank(m, "host", s.host);
    readInt(m, "port", 0, 65535, s.port);
    const bool transportOk = readEnum(m, "transport", kTransports, s.transport);
    readEnum(m, "engineIoTransport", kEngineIoTransports, s.engineIoTransport);
    const bool authOk = readEnum(m, "auth", kAuthModes, s.auth);
    readNonBlank(m, "spillRootPath", s.spillRootPath);
    if (m.has("tls")) readTls(m, s);
    if (transportOk && s.transport == Transport::WSS && !m.has("tls"))
        errors.add(m.markOf("transport"), m.pathOf("transport"),
                   "transport WSS requires a tls section (certChainPemPath, privateKeyPemPath)");

    if (readString(m, "path", s.path) && m.has("path") &&
        (s.path.empty() || s.path.front() != '/' || s.path.back() != '/'))
        errors.add(m.markOf("path"), m.pathOf("path"), "path must start and end with '/' (e.g. /socket.io/)");
    readPositive(m, "pingIntervalMs", s.pingIntervalMs);
    readPositive(m, "pingTimeoutMs", s.pingTimeoutMs);
    readPositive(m, "maxPayloadBytes", s.maxPayloadBytes);
    readInt(m, "ioThreads", 0, 256, s.ioThreads);

    if (m.has("cors")) {
        MapView cors(errors, m.get("cors"), m.markOf("cors"), m.pathOf("cors"), kCorsKeys);
        std::vector<YAML::Mark> marks;
        if (readStringList(cors, "origins", s.corsOrigins, &marks))
            for (size_t i = 0; i < s.corsOrigins.size(); ++i)
                if (isBlank(s.corsOrigins[i]))
                    errors.add(marks[i], indexPath(cors.pathOf("origins"), i), "origin must not be blank");
    }

    const bool validatorOk = readPluginName(m, "tokenValidator", "token-validator", s.tokenValidator);
    s.tokenValidatorMark = m.sourceMark("tokenValidator");
    if (authOk && validatorOk && s.auth == AuthMode::TOKEN && s.tokenValidator.empty())
        errors.add(m.markOf("auth"), m.pathOf("auth"),
                   "auth TOKEN requires tokenValidator (the name of a token-validator plugin, e.g. static or jwt)");

    if (m.has("authRateLimit")) {
        MapView rl(errors, m.get("authRateLimit"), m.markOf("authRateLimit"), m.pathOf("authRateLimit"), kRateLimitKeys);
        readPositive(rl, "windowMs", s.authRateLimit.windowMs);
        readPositive(rl, "maxFailures", s.authRateLimit.maxFailures);
    }
    if (m.has("control")) readControl(m, s);

    if (!m.has("namespaces")) {
        missing(m, "namespaces");
        return s;
    }
    const YAML::Node list = m.get("namespaces");
    if (!list.IsSequence()) {
        errors.add(m.markOf("namespaces"), m.pathOf("namespaces"), "expected a list, got " + describeNode(list));
        return s;
    }
    if (list.size() == 0)
        errors.add(m.markOf("namespaces"), m.pathOf("namespaces"), "StreamFenceServer requires at least one namespace");
    std::map<std::string, std::string> seenPaths;
    size_t i = 0;
    for (auto it = list.begin(); it != list.end(); ++it, ++i) {
        const YAML::Mark mk = it->IsNull() ? m.markOf("namespaces") : it->Mark();
        readNamespace(m, *it, mk, i, name, authOk ? &s.auth : nullptr, s, seenPaths);
    }
    return s;
}

// Two listeners on the same port would only fail later at bind(); say so now, with marks.
void checkPortClashes(Errors& errors, const Config& config) {
    struct Listener { std::string host; int port; SourceMark mark; };
    std::vector<Listener> all;
    for (const auto& s : config.servers) {
        if (s.port != 0) {
            SourceMark mk = s.mark;
            mk.keyPath += ".port";
            all.push_back({s.host, s.port, mk});
        }
        if (s.control.enabled && s.control.port != 0) {
            SourceMark mk = s.mark;
            mk.keyPath += ".control.port";
            all.push_back({s.control.host, s.control.port, mk});
        }
    }
    auto wildcard = [](const std::string& h) { return h == "0.0.0.0" || h == "::" || h == "*"; };
    for (size_t i = 0; i < all.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (all[i].port == all[j].port &&
                (all[i].host == all[j].host || wildcard(all[i].host) || wildcard(all[j].host))) {
                errors.add(all[i].mark, "port " + std::to_string(all[i].port) + " is already used by " + all[j].mark.keyPath);
                break;
            }
}

const std::vector<std::string> kLogLevels = {"debug", "info", "warn", "error"};

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
    if (m.has("logLevel")) {
        std::string level;
        if (readString(m, "logLevel", level)) {
            if (std::find(kLogLevels.begin(), kLogLevels.end(), level) == kLogLevels.end())
                errors.add(m.markOf("logLevel"), "logLevel",
                           "Invalid logLevel \"" + level + "\" (expected: " + joinNames(kLogLevels) + ")" +
                               didYouMean(level, kLogLevels));
            else
                config.logLevel = level;
        }
    }

    if (m.has("metrics")) {
        MapView metrics(errors, m.get("metrics"), m.markOf("metrics"), "metrics", kMetricsKeys);
        std::vector<YAML::Mark> marks;
        std::vector<std::string> sinks;
        if (metrics.has("sinks") && readStringList(metrics, "sinks", sinks, &marks)) {
            std::set<std::string> seen;
            config.metricsSinks.clear();
            for (size_t i = 0; i < sinks.size(); ++i) {
                const std::string path = indexPath("metrics.sinks", i);
                if (!isIdentifier(sinks[i]))
                    errors.add(marks[i], path, "invalid metrics-sink plugin name \"" + sinks[i] + "\" (expected letters, digits, '_' or '-')");
                else if (!seen.insert(sinks[i]).second)
                    errors.add(marks[i], path, "duplicate metrics sink \"" + sinks[i] + "\"");
                else {
                    config.metricsSinks.push_back(sinks[i]);
                    config.metricsSinkMarks.push_back(errors.mark(marks[i], path));
                }
            }
        }
    }
    // Defaulted sinks still get a mark, so a missing default plugin can be reported.
    if (config.metricsSinkMarks.size() != config.metricsSinks.size()) {
        config.metricsSinkMarks.clear();
        for (size_t i = 0; i < config.metricsSinks.size(); ++i)
            config.metricsSinkMarks.push_back(errors.mark(m.markOf("metrics"), indexPath("metrics.sinks", i)));
    }

    if (m.has("plugins")) readPlugins(m, config);

    if (!m.has("servers")) {
        if (m.ok()) missing(m, "servers");
        else errors.add(top, "", "missing required key \"servers\"");
        return config;
    }
    MapView servers(errors, m.get("servers"), m.markOf("servers"), "servers");
    if (servers.ok() && servers.keys().empty())
        errors.add(m.markOf("servers"), "servers", "at least one server must be defined");
    for (const auto& name : servers.keys()) config.servers.push_back(readServer(servers, name));
    checkPortClashes(errors, config);
    return config;
}

}  // namespace sf::config
