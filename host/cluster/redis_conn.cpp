#include "cluster/redis_conn.hpp"

#include <sys/epoll.h>

#include <memory>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "net/event_loop.hpp"

namespace sf::cluster {

struct RedisConn::Pending {
    RedisConn* conn;
    redisAsyncContext* ac;
    ReplyFn fn;
};

RedisConn::RedisConn(net::EventLoop& loop, std::string name) : loop_(loop), name_(std::move(name)) {}

RedisConn::~RedisConn() {
    onDown_ = nullptr;
    close();
}

void RedisConn::connect(const std::string& ip, int port, std::function<void()> onUp,
                        std::function<void(const std::string&)> onDown) {
    close();
    onUp_ = std::move(onUp);
    onDown_ = std::move(onDown);
    redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), port);
    if (!ac || ac->err) {
        std::string why = ac ? ac->errstr : "out of memory";
        if (ac) redisAsyncFree(ac);
        // Reported from the loop, never from inside connect(): the caller's state is settled.
        loop_.post([this, why] { gone(why); });
        return;
    }
    ctx_ = ac;
    fd_ = ac->c.fd;
    ac->data = this;
    ac->ev.data = this;
    ac->ev.addRead = &RedisConn::evAddRead;
    ac->ev.delRead = &RedisConn::evDelRead;
    ac->ev.addWrite = &RedisConn::evAddWrite;
    ac->ev.delWrite = &RedisConn::evDelWrite;
    ac->ev.cleanup = &RedisConn::evCleanup;
    redisAsyncSetConnectCallback(ac, &RedisConn::onConnect);  // arms the write hook
    redisAsyncSetDisconnectCallback(ac, &RedisConn::onDisconnect);
}

void RedisConn::close() {
    // The callbacks capture their owner (the cluster node): kept past close they would keep
    // it alive for ever (a cycle LeakSanitizer reports at exit).
    onUp_ = nullptr;
    onDown_ = nullptr;
    if (!ctx_) return;
    redisAsyncContext* ac = ctx_;
    ctx_ = nullptr;  // callbacks of this context from now on are teardown only
    connected_ = false;
    sentAt_.clear();
    redisAsyncFree(ac);  // pending callbacks get nullptr; deferred when inside a callback
}

void RedisConn::gone(const std::string& why) {
    connected_ = false;
    sentAt_.clear();
    auto down = std::move(onDown_);
    onDown_ = nullptr;
    if (down) down(why);
}

void RedisConn::command(const std::vector<std::string>& argv, ReplyFn fn) {
    if (!ctx_) {
        if (fn) loop_.post([fn = std::move(fn)] { fn(nullptr); });
        return;
    }
    std::vector<const char*> a;
    std::vector<size_t> l;
    a.reserve(argv.size());
    l.reserve(argv.size());
    for (auto& s : argv) {
        a.push_back(s.data());
        l.push_back(s.size());
    }
    auto* p = new Pending{this, ctx_, std::move(fn)};
    if (redisAsyncCommandArgv(ctx_, &RedisConn::onReply, p, static_cast<int>(a.size()), a.data(), l.data()) != REDIS_OK) {
        ReplyFn f = std::move(p->fn);
        delete p;
        if (f) loop_.post([f = std::move(f)] { f(nullptr); });
        return;
    }
    sentAt_.push_back(net::monotonicMs());
}

void RedisConn::subscribe(const std::string& channel) {
    if (!ctx_) return;
    const char* a[2] = {"SUBSCRIBE", channel.data()};
    size_t l[2] = {9, channel.size()};
    redisAsyncCommandArgv(ctx_, &RedisConn::onPush, this, 2, a, l);
}

void RedisConn::unsubscribe(const std::string& channel) {
    if (!ctx_) return;
    const char* a[2] = {"UNSUBSCRIBE", channel.data()};
    size_t l[2] = {11, channel.size()};
    redisAsyncCommandArgv(ctx_, &RedisConn::onPush, this, 2, a, l);
}

void RedisConn::onReply(redisAsyncContext* ac, void* reply, void* priv) {
    std::unique_ptr<Pending> p(static_cast<Pending*>(priv));
    RedisConn* c = p->conn;
    const bool live = c->ctx_ == ac && p->ac == ac;
    if (live && !c->sentAt_.empty()) c->sentAt_.pop_front();
    if (p->fn) p->fn(live ? static_cast<redisReply*>(reply) : nullptr);
}

void RedisConn::onPush(redisAsyncContext* ac, void* reply, void* priv) {
    auto* c = static_cast<RedisConn*>(priv);
    if (!reply || c->ctx_ != ac || !c->push_) return;  // teardown
    c->push_(static_cast<redisReply*>(reply));
}

void RedisConn::onConnect(const redisAsyncContext* ac, int status) {
    auto* c = static_cast<RedisConn*>(ac->data);
    if (c->ctx_ != ac) return;
    if (status != REDIS_OK) {
        std::string why = ac->errstr[0] ? ac->errstr : "connect failed";
        c->ctx_ = nullptr;  // hiredis frees it after this callback
        c->gone(why);
        return;
    }
    c->connected_ = true;
    redisEnableKeepAlive(&const_cast<redisAsyncContext*>(ac)->c);
    // Called once, and from a local: it may close this connection (and clear onUp_) itself.
    auto up = std::move(c->onUp_);
    c->onUp_ = nullptr;
    if (up) up();
}

void RedisConn::onDisconnect(const redisAsyncContext* ac, int /*status*/) {
    auto* c = static_cast<RedisConn*>(ac->data);
    if (c->ctx_ != ac) return;  // we closed it ourselves
    std::string why = ac->err ? std::string(ac->errstr) : std::string("connection closed");
    c->ctx_ = nullptr;
    c->gone(why);
}

// hiredis reads at most 16 KiB per event: level-triggered epoll (no EPOLLET) keeps the rest coming.
void RedisConn::updateEvents() {
    uint32_t ev = (wantRead_ ? EPOLLIN : 0u) | (wantWrite_ ? EPOLLOUT : 0u);
    if (!watching_) {
        if (fd_ < 0) return;
        redisAsyncContext* ac = ctx_;
        loop_.watch(fd_, ev, [this, ac](uint32_t got) {
            if (ctx_ != ac) return;
            if (got & (EPOLLIN | EPOLLHUP | EPOLLERR)) redisAsyncHandleRead(ac);
            if (ctx_ != ac) return;  // freed while reading
            if (got & EPOLLOUT) redisAsyncHandleWrite(ac);
        });
        watching_ = true;
    } else {
        loop_.modify(fd_, ev);
    }
}

void RedisConn::evAddRead(void* d) {
    auto* c = static_cast<RedisConn*>(d);
    c->wantRead_ = true;
    c->updateEvents();
}
void RedisConn::evDelRead(void* d) {
    auto* c = static_cast<RedisConn*>(d);
    c->wantRead_ = false;
    c->updateEvents();
}
void RedisConn::evAddWrite(void* d) {
    auto* c = static_cast<RedisConn*>(d);
    c->wantWrite_ = true;
    c->updateEvents();
}
void RedisConn::evDelWrite(void* d) {
    auto* c = static_cast<RedisConn*>(d);
    c->wantWrite_ = false;
    c->updateEvents();
}
void RedisConn::evCleanup(void* d) {
    auto* c = static_cast<RedisConn*>(d);
    if (c->watching_) c->loop_.unwatch(c->fd_);
    c->watching_ = c->wantRead_ = c->wantWrite_ = false;
    c->fd_ = -1;
}

}  // namespace sf::cluster
