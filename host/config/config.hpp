// The parsed, validated configuration. Plain data: the loader (loader.cpp) fills it,
// everything else only reads it. Field names follow the streamfence-js schema
// (every key in conf/README.md); our own keys are marked "ours".
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/cluster_config.hpp"
#include "config/limits_config.hpp"

namespace sf::config {

// Where a value came from, so later checks (plugin resolution) can still say file:line:col.
struct SourceMark {
    std::string file;
    int line = 0;    // 1-based; 0 = not from a file (builder API)
    int column = 0;  // 1-based
    std::string keyPath;  // e.g. "servers.feed.namespaces[1].overflowAction"
    std::string str() const;  // "file:line:col: keyPath" (or just keyPath)
};

enum class Transport { WS, WSS };
enum class EngineIoTransport { WEBSOCKET_OR_POLLING, WEBSOCKET_ONLY };
enum class AuthMode { NONE, TOKEN };
enum class DeliveryMode { BEST_EFFORT, AT_LEAST_ONCE };
// When a client's `publish` is acked: at once, or once the onMessage handlers ran (conf/README.md).
enum class InboundAckPolicy { ACK_ON_RECEIPT, ACK_AFTER_HANDLER_SUCCESS };

// A plugin's options as given in the config: a tree of scalars flattened to dotted keys
// ("tokens.alice" -> "s3cret", "list.0" -> "a"), plus the same subtree as JSON text.
struct PluginOptions {
    std::vector<std::pair<std::string, std::string>> flat;
    std::vector<SourceMark> flatMarks;  // added: flatMarks[i] is where flat[i] was written
    std::string json = "{}";
    SourceMark mark;
};

struct TlsConfig {
    std::string certChainPemPath;
    std::string privateKeyPemPath;
    std::string privateKeyPassword;     // empty = none
    std::string protocol = "TLSv1.3";   // TLSv1.2 | TLSv1.3 (minimum version offered)
    int watchIntervalMs = 2000;         // ours: how often cert/key files are checked for change
};

struct NamespaceConfig {
    std::string path;                   // starts with '/'
    std::vector<std::string> topics;
    DeliveryMode deliveryMode = DeliveryMode::BEST_EFFORT;
    std::string overflowAction = "REJECT_NEW";  // built-in name or an overflow-policy plugin name
    SourceMark overflowActionMark;
    int maxQueuedMessagesPerClient = 64;
    int64_t maxQueuedBytesPerClient = 524288;
    int ackTimeoutMs = 1000;
    int maxRetries = 0;
    bool coalesce = false;
    std::string coalesceKey;            // ours: top-level payload field; empty = topic is the key
    bool allowPolling = true;
    int maxInFlight = 1;                // <= 0 normalised to 1
    bool authRequired = false;
    InboundAckPolicy inboundAckPolicy = InboundAckPolicy::ACK_ON_RECEIPT;
    std::string spillBackend = "disk";  // ours: storage-backend plugin for SPILL_TO_DISK
    // ours: bound of each topic's shared log (docs/message-path.md); 0 = automatic:
    // max(4096, 2 x maxQueuedMessagesPerClient) messages, max(32 MiB, 2 x maxQueuedBytesPerClient) bytes.
    int maxBufferedMessagesPerTopic = 0;
    int64_t maxBufferedBytesPerTopic = 0;
    // ours: AT_LEAST_ONCE messages and held sessions survive kill -9 in a journal under
    // spillRootPath (docs/recovery.md); needs connectionStateRecovery.
    bool durable = false;
    SourceMark spillBackendMark;
    SourceMark mark;                    // the namespace entry itself
};

struct ControlConfig {                  // ours: publish API, /health, /metrics
    bool enabled = false;
    std::string host = "127.0.0.1";
    int port = 0;                       // 0 = ephemeral (logged at start)
    std::string token;                  // empty = no bearer token required
    int maxConnections = 256;           // connections served at once (one thread each); more wait or are refused
    int maxRequestsPerSecond = 10000;   // per remote address (token bucket of 1 s); past it 429 + Retry-After; 0 = no cap
};

// Socket.IO connection-state recovery (docs/recovery.md). Absent = off, as in socket.io.
struct RecoveryConfig {
    bool enabled = false;
    int64_t maxDisconnectionDurationMs = 120000;  // socket.io's default
};

struct AuthRateLimitConfig {            // ours, Java defaults
    int windowMs = 60000;
    int maxFailures = 20;
};

struct ServerConfig {
    std::string name;
    std::string host = "0.0.0.0";
    int port = 0;                       // 0 = ephemeral (logged at start)
    Transport transport = Transport::WS;
    EngineIoTransport engineIoTransport = EngineIoTransport::WEBSOCKET_OR_POLLING;
    AuthMode auth = AuthMode::NONE;
    std::string spillRootPath = ".streamfence-spill";
    std::optional<TlsConfig> tls;
    std::vector<NamespaceConfig> namespaces;

    // ours
    std::string path = "/socket.io/";
    int pingIntervalMs = 25000;
    int pingTimeoutMs = 20000;
    int shutdownDrainMs = 2000;         // ours: how long a stop lets lanes drain before dropping (counted)
    int64_t maxPayloadBytes = 1000000;
    int authTimeoutMs = 5000;           // ours: a validator flagged MAY_BLOCK must answer within this (validator_calls.hpp)
    int handshakeTimeoutMs = 10000;     // ours: an HTTP request must be complete this long after its first byte
    int maxClientErrorsPerMinute = 1000; // ours: error answers a client may earn per minute before it is disconnected; 0 = no cap
    int ioThreads = 0;                  // 0 = number of cores
    std::vector<std::string> corsOrigins;   // empty = no CORS headers; "*" = any origin
    std::string tokenValidator;         // plugin name; required when auth: TOKEN
    SourceMark tokenValidatorMark;
    AuthRateLimitConfig authRateLimit;
    ControlConfig control;
    LimitsConfig limits;                // ours: connection, namespace, subscription, poll, frame caps
    RecoveryConfig recovery;            // connectionStateRecovery: {maxDisconnectionDurationMs}
    SourceMark mark;
};

struct Config {
    std::string file;                   // the file it was loaded from ("" for builder)
    std::string pluginDir;              // ours; empty = built-in default (see plugins/loader)
    std::string logLevel = "info";      // ours: debug | info | warn | error
    std::vector<std::string> metricsSinks = {"prometheus"};  // ours: metrics-sink plugin names
    std::vector<SourceMark> metricsSinkMarks;
    std::map<std::string, PluginOptions> pluginOptions;      // ours: plugins: {<name>: {...}}
    std::vector<ServerConfig> servers;  // in file order
    std::optional<ClusterConfig> cluster;  // ours: multi-node over Redis (docs/cluster.md)
};

// Names the built-in overflow policies go by (each is still a plugin .so).
inline const std::vector<std::string>& builtinOverflowActions() {
    static const std::vector<std::string> v = {"DROP_OLDEST", "REJECT_NEW", "COALESCE", "SNAPSHOT_ONLY", "SPILL_TO_DISK"};
    return v;
}

}  // namespace sf::config
