// One hiredis 0.14 async connection driven by a net::EventLoop (docs/cluster.md "Threads").
// hiredis has no timeouts, no reconnect and no thread safety: this class is used on its
// loop's thread only, the owner enforces deadlines by closing, and a closed connection is
// replaced by a new connect(). Every command callback runs exactly once: with the reply, or
// with nullptr when the connection went away first.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

struct redisAsyncContext;
struct redisReply;

namespace sf::net {
class EventLoop;
}

namespace sf::cluster {

class RedisConn {
public:
    using ReplyFn = std::function<void(redisReply*)>;  // nullptr: no reply (connection gone)
    using PushFn = std::function<void(redisReply*)>;   // subscribe confirmations and messages

    RedisConn(net::EventLoop& loop, std::string name);
    ~RedisConn();
    RedisConn(const RedisConn&) = delete;
    RedisConn& operator=(const RedisConn&) = delete;

    // Non-blocking connect to a numeric address (no DNS here: hiredis would block on it).
    // onUp once connected; onDown once if the attempt fails or the connection later drops
    // (not after close()).
    void connect(const std::string& ip, int port, std::function<void()> onUp, std::function<void(const std::string&)> onDown);
    void close();
    bool connected() const { return connected_; }

    void command(const std::vector<std::string>& argv, ReplyFn fn);
    // (UN)SUBSCRIBE: replies go to the push handler (set it before the first subscribe).
    void subscribe(const std::string& channel);
    void unsubscribe(const std::string& channel);
    void setPushHandler(PushFn fn) { push_ = std::move(fn); }

    // Monotonic ms when the oldest unanswered command was sent; 0 when none waits.
    uint64_t oldestPendingMs() const { return sentAt_.empty() ? 0 : sentAt_.front(); }
    const std::string& name() const { return name_; }

private:
    struct Pending;
    static void onReply(redisAsyncContext* ac, void* reply, void* priv);
    static void onPush(redisAsyncContext* ac, void* reply, void* priv);
    static void onConnect(const redisAsyncContext* ac, int status);
    static void onDisconnect(const redisAsyncContext* ac, int status);
    static void evAddRead(void* d);
    static void evDelRead(void* d);
    static void evAddWrite(void* d);
    static void evDelWrite(void* d);
    static void evCleanup(void* d);
    void updateEvents();
    void gone(const std::string& why);

    net::EventLoop& loop_;
    std::string name_;
    redisAsyncContext* ctx_ = nullptr;
    int fd_ = -1;
    bool watching_ = false, wantRead_ = false, wantWrite_ = false, connected_ = false;
    std::function<void()> onUp_;
    std::function<void(const std::string&)> onDown_;
    PushFn push_;
    std::deque<uint64_t> sentAt_;
};

}  // namespace sf::cluster
