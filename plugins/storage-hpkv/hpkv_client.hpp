// A C++ client of the HPKV WebSocket API (the subset in plugins/storage-hpkv/README.md).
//
// One WebSocket, owned by one I/O thread that sends, receives and enforces deadlines; the TCP/TLS
// connect runs on a short-lived helper thread so deadlines keep firing while a connect hangs.
// Requests are matched to responses by messageId. Every request gets its callback exactly once,
// on the I/O thread, at the latest at its deadline:
//  - 429 answers are retried after an exponential back-off (a retry hint in the answer wins if
//    longer) and the send rate is halved, then recovers after a quiet period;
//  - requests in flight when the connection drops are re-sent after the reconnect when they are
//    idempotent (GET, SET, DELETE, RANGE); PATCH and ATOMIC are reported as kConnectionLost,
//    since they may have applied;
//  - the reconnect delay grows exponentially with jitter;
//  - an optional client-side rate limit (token bucket) spaces requests.
#pragma once

#include <Poco/JSON/Object.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace Poco { namespace Net { class WebSocket; } }

namespace sfhpkv {

enum class Op : int { Get = 1, Set = 2, Patch = 3, Delete = 4, Range = 5, Atomic = 6 };

// Pseudo status codes for outcomes that have no server answer.
constexpr int kTimeout = -1;         // no answer before the deadline
constexpr int kConnectionLost = -2;  // a non-idempotent request was in flight when the socket dropped
constexpr int kShutdown = -3;        // client stopped

struct Result {
    int code = 0;       // 200, 4xx, 5xx from the server, or one of the pseudo codes above
    std::string error;  // text for anything but 200
    Poco::JSON::Object::Ptr body;
    bool ok() const { return code == 200; }
};
using Callback = std::function<void(Result&)>;

struct ClientOptions {
    std::string baseUrl;  // http(s):// or ws(s)://host[:port][/ws]
    std::string apiKey;
    double rateLimitPerSecond = 0;  // 0 = no client-side limit
    int connectTimeoutMs = 3000;
    int reconnectMinMs = 100;
    int reconnectMaxMs = 5000;
    int backoffBaseMs = 250;  // first 429 back-off, doubled per consecutive 429 episode
    int backoffMaxMs = 30000;
    size_t maxInFlight = 512;  // window of unanswered requests on the socket
    int maxFrameBytes = 64 << 20;
    bool tlsVerify = true;
    // level: 0 debug, 1 info, 2 warn, 3 error (the SDK's SF_LOG_*). Called on client threads.
    std::function<void(int level, const char* event, const std::string& msg)> log;
};

class Client {
public:
    struct Stats {
        uint64_t sent = 0, answered = 0, rateLimited = 0, timeouts = 0, connects = 0, disconnects = 0,
                 connectFailures = 0;
        bool connected = false;
        std::string lastError;
    };

    explicit Client(ClientOptions opts);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Thread-safe; never blocks on I/O. timeoutMs <= 0 means the default of 5000 ms.
    void get(const std::string& key, int timeoutMs, Callback cb);
    void set(const std::string& key, const std::string& value, int timeoutMs, Callback cb);
    void patch(const std::string& key, const std::string& value, int timeoutMs, Callback cb);
    void del(const std::string& key, int timeoutMs, Callback cb);
    void range(const std::string& key, const std::string& endKey, int limit, int timeoutMs, Callback cb);
    void atomic(const std::string& key, int64_t delta, int timeoutMs, Callback cb);

    // Fails everything still pending with kShutdown and joins the threads. Idempotent.
    void stop();
    Stats stats() const;
    // The normalised WebSocket URL without credentials (for logs).
    const std::string& wsUrl() const { return wsUrl_; }

private:
    using Clock = std::chrono::steady_clock;
    struct Pending {
        uint64_t order = 0;        // submission order, keeps retries in their original order
        std::string body;          // JSON object text without the closing brace and messageId
        bool resendable = true;    // false for ATOMIC once it may have reached the server
        bool sentOnce = false;
        Clock::time_point deadline;
        int timeoutMs = 0;
        std::string lastError;
        Callback cb;
    };
    using PendingPtr = std::shared_ptr<Pending>;
    struct ConnectResult;

    void submit(std::string body, bool resendable, int timeoutMs, Callback cb);
    void run();
    void startConnect();
    void finish(const PendingPtr& p, Result r);
    void requeue(const PendingPtr& p);
    void dropConnection(const std::string& why);
    bool sendSome(Clock::time_point now);
    void readFrames();
    void handleMessage(const char* data, size_t len);
    void expire(Clock::time_point now);
    void on429(const Poco::JSON::Object::Ptr& body, Clock::time_point now);
    void wake();
    void log(int level, const char* event, const std::string& msg) const {
        if (opts_.log) opts_.log(level, event, msg);
    }

    ClientOptions opts_;
    std::string wsUrl_, host_, path_;
    uint16_t port_ = 0;
    bool tls_ = false;

    mutable std::mutex mu_;  // guards incoming_, stopping_, stats_, connect hand-over
    std::deque<PendingPtr> incoming_;
    bool stopping_ = false;
    Stats stats_;
    std::unique_ptr<ConnectResult> connectResult_;  // set by the connect helper
    int wakeFds_[2] = {-1, -1};
    std::atomic<bool> wakePending_{false};

    // I/O thread only:
    std::unique_ptr<Poco::Net::WebSocket> ws_;
    std::deque<PendingPtr> queue_;               // waiting to be sent, by order
    std::map<int64_t, PendingPtr> inflight_;     // by messageId
    int64_t nextMessageId_ = 1;
    uint64_t nextOrder_ = 1;
    bool connecting_ = false;
    std::thread connectThread_;
    Clock::time_point nextConnectAt_{};
    int reconnectAttempt_ = 0;
    bool everConnected_ = false;
    bool reportedDown_ = false;
    // Rate control: a token bucket at min(configured rate, adaptive cap).
    double tokens_ = 0;
    Clock::time_point tokensAt_{};
    double adaptiveRate_ = 0;  // 0 = uncapped
    Clock::time_point backoffUntil_{};
    int backoffExp_ = 0;
    std::chrono::milliseconds lastBackoff_{0};
    Clock::time_point last429_{};
    Clock::time_point lastRecover_{};
    std::deque<Clock::time_point> recentSends_;  // sends in the last second (to size the cap)
    Clock::time_point lastExpireScan_{};

    std::thread io_;
};

// ws(s)://host:port/ws from an http(s)/ws(s) base URL, as the official client builds it (minus
// its trailing-slash quirk). Throws std::invalid_argument on a malformed URL.
struct WsEndpoint {
    bool tls = false;
    std::string host, path;
    uint16_t port = 0;
    std::string url;  // without query
};
WsEndpoint normaliseBaseUrl(const std::string& baseUrl);

}  // namespace sfhpkv
