// The control listener of one server: POST /v1/publish, GET /health, GET /metrics, and the
// dashboard: GET /dashboard, GET /v1/stats, GET /v1/stats/stream (docs/dashboard.md).
// Low rate, so Poco's threaded HTTPServer is fine here; the hot path never touches it.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "admin/stats_snapshot.hpp"
#include "common/json.hpp"

#include "config/config.hpp"

namespace sf::admin {

// What a publish attempt came to; `status` is the HTTP status for that message.
struct PublishOutcome {
    int status = 200;     // 200 published, 400 malformed, 404 unknown namespace/topic/client,
                          // 429 overloaded, 503 stopping
    std::string error;    // empty when status == 200
    int retryAfterSeconds = 0;  // > 0: answer with Retry-After (429, 503)
};

struct ControlHooks {
    // clientId empty = publish to every subscriber; else publishTo that client.
    // The payload as parsed from the request body: parsed once, never re-serialised here.
    std::function<PublishOutcome(const std::string& ns, const std::string& topic, const json::Value& payload,
                                 const std::string& clientId)>
        publish;
    // Optional: the same without waiting, done called exactly once (maybe on another
    // thread); the payload is not kept. A batch goes out through it all at once, so that
    // its durable publishes share one fsync (docs/recovery.md).
    std::function<void(const std::string& ns, const std::string& topic, const json::Value& payload,
                       const std::string& clientId, std::function<void(PublishOutcome)> done)>
        publishAsync;
    std::function<std::string()> healthJson;                                 // body of GET /health
    std::function<bool(std::string& body, std::string& contentType)> metrics;  // GET /metrics
    // One snapshot for /v1/stats and the dashboard (called at most once a second, on a
    // control-listener thread); empty = those paths answer 404.
    std::function<StatsSnapshot()> stats;
    // A request was answered 429 (control.maxRequestsPerSecond); returns the running count.
    std::function<uint64_t()> rateLimited;
};

class ControlServer {
public:
    ControlServer(const config::ControlConfig& cfg, std::string serverName, ControlHooks hooks);
    ~ControlServer();
    void start();  // logs event=control_listening server=<name> host=<h> port=<p>
    void stop();
    int port() const;

    // Largest request body accepted (a batch of messages); larger → 413.
    static constexpr size_t kMaxBodyBytes = 16u << 20;
    static constexpr int kKeepAliveIdleMs = 2000;   // an idle keep-alive connection is closed after this
    static constexpr int kFirstRequestMs = 5000;    // a new connection must send its request within this
    static constexpr int kMaxQueued = 64;           // connections waiting for a thread; more are refused
    // Dashboard streams each hold a thread: at most this many, and never more than a quarter
    // of maxConnections, so viewers cannot take the threads publishes need.
    static constexpr int kMaxStatsStreams = 8;
    static int maxStatsStreams(int maxConnections);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sf::admin
