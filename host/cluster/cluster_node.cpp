#include "cluster/cluster_node.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include <hiredis/hiredis.h>

#include "cluster/cluster_wire.hpp"
#include "cluster/emitter_decode.hpp"
#include "cluster/redis_conn.hpp"
#include "cluster/session_wire.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "delivery/delivery.hpp"
#include "net/event_loop.hpp"

namespace sf::cluster {

using delivery::ClusterSend;
using delivery::PublishStatus;

namespace {

uint64_t wallMs() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::string defaultNodeId() {
    char host[256] = {0};
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0]) std::snprintf(host, sizeof(host), "node");
    std::string h;
    for (const char* p = host; *p; ++p) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
        h.push_back(ok ? c : '_');
    }
    return h + "-" + std::to_string(::getpid());
}

bool isNumericAddress(const std::string& host) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string replyText(const redisReply* r) {
    if (!r) return "no reply";
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
        return std::string(r->str, r->len);
    return "";
}

const char* statusWord(PublishStatus s) {
    switch (s) {
        case PublishStatus::Ok: return "OK";
        case PublishStatus::UnknownClient: return "UNKNOWN_CLIENT";
        case PublishStatus::NotSubscribed: return "NOT_SUBSCRIBED";
        case PublishStatus::UnknownNamespace:
        case PublishStatus::UnknownTopic: return "UNKNOWN_CLIENT";  // a differently configured node: not here
        default: return "REFUSED";
    }
}

ClusterSend fromStatusWord(const std::string& w) {
    if (w == "OK") return ClusterSend::Ok;
    if (w == "UNKNOWN_CLIENT") return ClusterSend::UnknownClient;
    if (w == "NOT_SUBSCRIBED") return ClusterSend::NotSubscribed;
    return ClusterSend::Refused;
}

// One log line per event name per 5 s at most: due() says whether to write it now and how
// many occurrences it stands for.
class RateLimitedLog {
public:
    uint64_t due(const std::string& event) {
        std::lock_guard<std::mutex> lk(mu_);
        auto& [last, count] = state_[event];
        ++count;
        const uint64_t now = net::monotonicMs();
        if (last && now - last < 5000) return 0;
        last = now;
        uint64_t n = count;
        count = 0;
        return n;
    }

private:
    std::mutex mu_;
    std::map<std::string, std::pair<uint64_t, uint64_t>> state_;
};

}  // namespace

struct ClusterNode::Impl : std::enable_shared_from_this<ClusterNode::Impl> {
    enum class Link { Down, Connecting, Up };
    enum class RouteKind { Topic, Node, EmitterRoom, EmitterNs };
    struct Route {
        RouteKind kind;
        std::string ns, topic;
    };
    struct Stream {
        std::string ns, topic;
        std::string lastId;  // XREAD from here (kept across reconnects: resumption without loss)
    };
    struct Request {
        std::function<void(ClusterSend)> done;
        uint64_t deadline;
    };

    config::ClusterConfig cfg;
    std::string serverName;
    std::string nodeId;
    std::string tag;  // messageIdTag(): random per run
    ClusterKeys keys;
    delivery::Delivery& delivery;
    std::set<std::string> ackNamespaces;  // AT_LEAST_ONCE: streams; the others: pub/sub

    net::EventLoop loop{"redis"};
    RedisConn cmd{loop, "cmd"}, sub{loop, "sub"}, xread{loop, "xread"};

    // ---- state of the redis thread only
    Link link = Link::Down;
    uint64_t gen = 0;             // connect attempt; stale callbacks compare it
    int attempt = 0;              // failed attempts in a row (backoff)
    bool everUp = false;
    bool cmdReady = false, subReady = false, xreadReady = false;
    std::string xreadClientId;
    int64_t redisClockOffsetMs = 0;  // Redis TIME - our wall clock
    bool xreadInFlight = false;
    std::map<std::pair<std::string, std::string>, int> topicSubs;          // (ns, topic) -> local subscribers
    std::map<std::string, int> nsSubs;                                    // ns -> local subscriptions
    std::map<std::pair<std::string, std::string>, std::set<std::string>> clientTopics;  // (ns, id) -> topics
    std::map<std::string, Route> routes;                                 // channel -> what it carries
    std::map<std::string, Stream> streams;                               // stream key -> read state
    std::unordered_map<uint64_t, Request> requests;                      // publishTo waiting for an answer
    uint64_t nextRequest = 1;
    // Recovery across nodes (docs/cluster.md): a claimed session's missed messages being
    // gathered, the channel subscriptions Redis confirmed, and what waits for them.
    struct Gather {
        std::function<void(delivery::HandOver)> done;
        delivery::HandOver h;
        int waiting = 0;
        uint64_t deadline = 0;
        bool finished = false;
    };
    std::unordered_map<uint64_t, std::shared_ptr<Gather>> gathers;  // by take requestId
    std::vector<std::shared_ptr<Gather>> gathering;                 // every unfinished one (deadlines)
    std::set<std::string> confirmed;
    struct ConfirmWait {
        std::vector<std::string> channels;
        uint64_t deadline;
        std::function<void()> then;
    };
    std::vector<ConfirmWait> confirmWaits;
    // Session records written while the link was down: sent when it is back.
    std::map<std::string, std::pair<std::string, uint64_t>> unsentRecords;  // key -> (record, ttl)
    std::set<std::string> unsentDrops;                                      // keys
    uint64_t lastHeartbeat = 0;
    net::TimerId tickTimer = 0;

    // ---- shared with other threads
    std::atomic<bool> up{false};
    std::atomic<bool> stopped{false};
    std::atomic<int64_t> subscriptions{0};  // confirmed by Redis, our node channel excluded
    std::atomic<int64_t> streamsRead{0};    // AT_LEAST_ONCE streams this node reads
    mutable std::mutex infoMu;
    std::vector<std::string> nodesSeen;
    std::string lastError;
    std::string linkWord = "DOWN";
    std::atomic<uint64_t> outPubsub{0}, outStream{0}, outDirect{0};
    std::atomic<uint64_t> inPubsub{0}, inStream{0}, inDirect{0}, inEmitter{0};
    std::atomic<uint64_t> reconnects{0}, refusedCount{0}, sendFailed{0}, dropped{0}, emitterRejected{0};
    std::atomic<uint64_t> sessionsClaimed{0}, sessionsHandedOver{0}, sessionOwnerGone{0};
    std::atomic<int64_t> rttUs{-1};
    RateLimitedLog rl;

    // ---- resolver thread (getaddrinfo blocks: never on the redis loop)
    std::thread resolver;
    std::mutex resMu;
    std::condition_variable resCv;
    bool resWanted = false, resQuit = false;
    uint64_t resGen = 0;

    Impl(const config::ClusterConfig& c, const config::ServerConfig& server, delivery::Delivery& d)
        : cfg(c), serverName(server.name), delivery(d) {
        nodeId = cfg.nodeId.empty() ? defaultNodeId() : cfg.nodeId;
        {
            static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            std::random_device rd;
            for (int i = 0; i < 8; ++i) tag.push_back(kAlphabet[rd() % 62]);
        }
        keys.prefix = cfg.keyPrefix;
        keys.server = server.name;
        for (auto& ns : server.namespaces)
            if (ns.deliveryMode == config::DeliveryMode::AT_LEAST_ONCE) ackNamespaces.insert(ns.path);
        sub.setPushHandler([this](redisReply* r) { onPush(r); });
    }

    bool onRedisThread() const { return loop.inLoopThread(); }
    uint64_t blockMs() const { return 2000; }

    void setLinkWord(const char* w, const std::string& err = "") {
        std::lock_guard<std::mutex> lk(infoMu);
        linkWord = w;
        if (!err.empty()) lastError = err;
    }

    // ------------------------------------------------------------------ lifecycle

    void start() {
        resolver = std::thread([this] { resolverMain(); });
        loop.start();
        auto self = shared_from_this();
        loop.post([self] {
            self->routes[self->keys.nodeChannel(self->nodeId)] = Route{RouteKind::Node, "", ""};
            self->beginConnect();
            self->scheduleTick();
        });
    }

    void stop() {
        if (stopped.exchange(true)) return;
        // Leave the cluster now rather than after nodeTtlMs: others stop routing publishTo here.
        auto bye = std::make_shared<std::promise<void>>();
        auto f = bye->get_future();
        auto self = shared_from_this();
        loop.post([self, bye] {
            if (self->link == Link::Up) {
                self->cmd.command({"ZREM", self->keys.nodesKey(), self->nodeId}, nullptr);
                self->cmd.command({"DEL", self->keys.clientsKey(self->nodeId)}, [bye](redisReply*) { bye->set_value(); });
            } else {
                bye->set_value();
            }
        });
        f.wait_for(std::chrono::milliseconds(500));
        std::promise<void> closed;
        auto cf = closed.get_future();
        loop.post([self, &closed] {
            self->teardown("stopping");
            closed.set_value();
        });
        cf.wait_for(std::chrono::milliseconds(2000));
        loop.stop();
        loop.join();
        loop.clear();  // its timers and watchers hold this Impl, which holds the loop
        // Answered by teardown() unless it did not run in time; the loop thread is gone now.
        confirmWaits.clear();
        gathering.clear();
        gathers.clear();
        requests.clear();
        {
            std::lock_guard<std::mutex> lk(resMu);
            resQuit = true;
        }
        resCv.notify_all();
        if (resolver.joinable()) resolver.join();
    }

    void resolverMain() {
        std::unique_lock<std::mutex> lk(resMu);
        for (;;) {
            resCv.wait(lk, [this] { return resWanted || resQuit; });
            if (resQuit) return;
            resWanted = false;
            const uint64_t g = resGen;
            lk.unlock();
            addrinfo hints{};
            hints.ai_family = AF_UNSPEC;
            hints.ai_socktype = SOCK_STREAM;
            addrinfo* res = nullptr;
            std::string ip, err;
            int rc = getaddrinfo(cfg.redis.host.c_str(), nullptr, &hints, &res);
            if (rc != 0 || !res) {
                err = std::string("cannot resolve ") + cfg.redis.host + ": " + gai_strerror(rc);
            } else {
                char buf[INET6_ADDRSTRLEN] = {0};
                void* a = res->ai_family == AF_INET6 ? static_cast<void*>(&reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr)
                                                     : static_cast<void*>(&reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr);
                if (inet_ntop(res->ai_family, a, buf, sizeof(buf))) ip = buf;
                else err = "cannot print the address of " + cfg.redis.host;
            }
            if (res) freeaddrinfo(res);
            std::weak_ptr<Impl> weak = shared_from_this();
            loop.post([weak, g, ip, err] {
                auto self = weak.lock();
                if (!self || g != self->gen || self->link != Link::Connecting) return;
                if (!err.empty()) self->fail(err);
                else self->connectAll(ip);
            });
            lk.lock();
        }
    }

    // ------------------------------------------------------------------ the link

    void beginConnect() {
        if (stopped) return;
        ++gen;
        link = Link::Connecting;
        setLinkWord("CONNECTING");
        cmdReady = subReady = xreadReady = false;
        const uint64_t g = gen;
        auto self = shared_from_this();
        std::weak_ptr<Impl> weak = self;
        loop.addTimer(static_cast<uint64_t>(cfg.connectTimeoutMs), [weak, g] {
            auto self = weak.lock();
            if (self && g == self->gen && self->link == Link::Connecting)
                self->fail("connect timeout after " + std::to_string(self->cfg.connectTimeoutMs) + " ms");
        });
        if (isNumericAddress(cfg.redis.host)) {
            connectAll(cfg.redis.host);
            return;
        }
        {
            std::lock_guard<std::mutex> lk(resMu);
            resWanted = true;
            resGen = g;
        }
        resCv.notify_all();
    }

    // AUTH and SELECT first on every connection, then its own start-up.
    void handshake(RedisConn& c, std::function<void()> then) {
        const uint64_t g = gen;
        auto self = shared_from_this();
        auto check = [self, g](redisReply* r) {
            if (g != self->gen) return false;
            if (!r || r->type == REDIS_REPLY_ERROR) {
                self->fail(r ? "redis refused the connection set-up: " + replyText(r) : "connection lost during set-up");
                return false;
            }
            return true;
        };
        if (!cfg.redis.password.empty()) {
            std::vector<std::string> auth = {"AUTH"};
            if (!cfg.redis.user.empty()) auth.push_back(cfg.redis.user);
            auth.push_back(cfg.redis.password);
            c.command(auth, [check](redisReply* r) { check(r); });
        }
        if (cfg.redis.db != 0) c.command({"SELECT", std::to_string(cfg.redis.db)}, [check](redisReply* r) { check(r); });
        // PING after them: its answer means every set-up command was answered.
        c.command({"PING"}, [check, then](redisReply* r) {
            if (check(r)) then();
        });
    }

    void connectAll(const std::string& ip) {
        const uint64_t g = gen;
        auto self = shared_from_this();
        auto down = [self, g](const std::string& why) {
            if (g == self->gen) self->fail(why);
        };
        cmd.connect(ip, cfg.redis.port, [self, g] {
            if (g != self->gen) return;
            self->handshake(self->cmd, [self] {
                self->cmdReady = true;
                self->maybeUp();
            });
        }, down);
        sub.connect(ip, cfg.redis.port, [self, g] {
            if (g != self->gen) return;
            self->handshake(self->sub, [self] {
                // Our node channel first: the subscription count never drops to zero, so this
                // connection never leaves subscribed mode (hiredis 0.14 mishandles that).
                self->subscriptions = 0;
                for (auto& [ch, route] : self->routes) self->sub.subscribe(ch);
                self->subReady = true;
                self->maybeUp();
            });
        }, down);
        xread.connect(ip, cfg.redis.port, [self, g] {
            if (g != self->gen) return;
            self->handshake(self->xread, [self, g] {
                self->xread.command({"CLIENT", "ID"}, [self, g](redisReply* r) {
                    if (g != self->gen) return;
                    if (!r || r->type != REDIS_REPLY_INTEGER) return self->fail("CLIENT ID failed: " + replyText(r));
                    self->xreadClientId = std::to_string(r->integer);
                    self->xread.command({"TIME"}, [self, g](redisReply* t) {
                        if (g != self->gen) return;
                        if (!t || t->type != REDIS_REPLY_ARRAY || t->elements != 2) return self->fail("TIME failed");
                        const int64_t ms = std::stoll(replyText(t->element[0])) * 1000 + std::stoll(replyText(t->element[1])) / 1000;
                        self->redisClockOffsetMs = ms - static_cast<int64_t>(wallMs());
                        self->xreadReady = true;
                        self->maybeUp();
                    });
                });
            });
        }, down);
    }

    void maybeUp() {
        if (!cmdReady || !subReady || !xreadReady || link != Link::Connecting) return;
        link = Link::Up;
        attempt = 0;
        up = true;
        setLinkWord("UP");
        log::info("cluster_link_up", {{"server", serverName}, {"node", nodeId},
                                      {"redis", cfg.redis.host + ":" + std::to_string(cfg.redis.port)},
                                      {"resumed", everUp ? "true" : "false"}});
        everUp = true;
        // The client registry is rebuilt from what this node holds now (Redis may have lost it).
        const std::string ck = keys.clientsKey(nodeId);
        cmd.command({"DEL", ck}, nullptr);
        std::vector<std::string> hset = {"HSET", ck};
        for (auto& [key, topics] : clientTopics) {
            hset.push_back(ClusterKeys::clientField(key.first, key.second));
            hset.push_back("1");
            if (hset.size() >= 2 + 2 * 512) {
                cmd.command(hset, nullptr);
                hset.resize(2);
            }
        }
        if (hset.size() > 2) cmd.command(hset, nullptr);
        for (auto& key : unsentDrops) dropRecord(key);
        unsentDrops.clear();
        for (auto& [key, rec] : unsentRecords) cmd.command({"SET", key, rec.first, "PX", std::to_string(rec.second)}, nullptr);
        unsentRecords.clear();
        heartbeat();
        issueXread();
    }

    void teardown(const std::string& why) {
        ++gen;
        up = false;
        cmd.close();
        sub.close();
        xread.close();
        xreadInFlight = false;
        subscriptions = 0;
        confirmed.clear();
        cmdReady = subReady = xreadReady = false;
        // Everything that waited on the link is answered now, not at its deadline.
        auto pending = std::move(requests);
        requests.clear();
        for (auto& [id, r] : pending) r.done(ClusterSend::Unavailable);
        link = Link::Down;
        setLinkWord("DOWN", why);
        // Gathers for claimed sessions cannot progress either (their replies carry the old
        // gen): they finish with what they have. Left waiting at stop they would hold the
        // sessions, whose Core holds this node (a cycle).
        auto waits = std::move(confirmWaits);
        confirmWaits.clear();
        for (auto& w : waits) w.then();  // link is Down: each finishes its gather
        auto unfinished = std::move(gathering);
        gathering.clear();
        gathers.clear();
        for (auto& g : unfinished) finishGather(g);
    }

    void fail(const std::string& why) {
        if (stopped || link == Link::Down) return;
        const bool wasUp = link == Link::Up;
        teardown(why);
        const uint64_t backoff = std::min<uint64_t>(5000, 100ull << std::min(attempt, 6));
        static thread_local std::mt19937 rng{std::random_device{}()};
        const uint64_t delay = backoff / 2 + rng() % (backoff / 2 + 1);
        ++attempt;
        if (wasUp)
            log::warn("cluster_link_down", {{"server", serverName}, {"node", nodeId}, {"reason", why},
                                            {"retry_in_ms", std::to_string(delay)}});
        else
            if (uint64_t n_ = rl.due("cluster_connect_failed")) log::warn("cluster_connect_failed", {{"count", std::to_string(n_)}, {"server", serverName}, {"node", nodeId}, {"reason", why},
                                               {"retry_in_ms", std::to_string(delay)}});
        auto self = shared_from_this();
        const uint64_t g = gen;
        std::weak_ptr<Impl> weak = self;
        loop.addTimer(delay, [weak, g] {
            auto self = weak.lock();
            if (!self || g != self->gen || self->link != Link::Down || self->stopped) return;
            self->reconnects.fetch_add(1, std::memory_order_relaxed);
            self->beginConnect();
        });
    }

    void scheduleTick() {
        std::weak_ptr<Impl> weak = shared_from_this();
        tickTimer = loop.addTimer(100, [weak] {
            auto self = weak.lock();
            if (!self) return;
            self->tick();
            if (!self->stopped) self->scheduleTick();
        });
    }

    void tick() {
        const uint64_t now = net::monotonicMs();
        // hiredis 0.14 has no command timeouts: a reply this late means the link is dead.
        if (link == Link::Up) {
            const uint64_t limit = static_cast<uint64_t>(cfg.commandTimeoutMs);
            if (uint64_t t = cmd.oldestPendingMs(); t && now - t > limit)
                return fail("redis did not answer within " + std::to_string(limit) + " ms");
            if (uint64_t t = xread.oldestPendingMs(); t && now - t > limit + blockMs())
                return fail("redis did not answer XREAD within " + std::to_string(limit + blockMs()) + " ms");
            if (now - lastHeartbeat >= static_cast<uint64_t>(cfg.heartbeatMs)) heartbeat();
        }
        runConfirmWaits(now);
        for (size_t i = 0; i < gathering.size();) {
            auto g = gathering[i];
            if (g->finished) {
                gathering.erase(gathering.begin() + static_cast<long>(i));
            } else if (g->deadline <= now) {
                gathering.erase(gathering.begin() + static_cast<long>(i));
                finishGather(g);
            } else {
                ++i;
            }
        }
        for (auto it = gathers.begin(); it != gathers.end();) it = it->second->finished ? gathers.erase(it) : std::next(it);
        for (auto it = requests.begin(); it != requests.end();) {
            if (it->second.deadline <= now) {
                auto done = std::move(it->second.done);
                it = requests.erase(it);
                done(ClusterSend::Unavailable);
            } else {
                ++it;
            }
        }
    }

    // Announce this node, measure the round trip, learn who else is alive.
    void heartbeat() {
        lastHeartbeat = net::monotonicMs();
        const uint64_t now = wallMs();
        const std::string nk = keys.nodesKey();
        const auto sent = std::chrono::steady_clock::now();
        auto self = shared_from_this();
        cmd.command({"PING"}, [self, sent](redisReply* r) {
            if (r)
                self->rttUs = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - sent).count();
        });
        cmd.command({"ZADD", nk, std::to_string(now + static_cast<uint64_t>(cfg.nodeTtlMs)), nodeId}, nullptr);
        cmd.command({"ZREMRANGEBYSCORE", nk, "-inf", "(" + std::to_string(now)}, nullptr);
        cmd.command({"PEXPIRE", keys.clientsKey(nodeId), std::to_string(cfg.nodeTtlMs)}, nullptr);
        if (cfg.streamMaxAgeMs > 0) {
            // Age trimming of the streams this node reads (MAXLEN on every XADD bounds the length).
            const int64_t cut = static_cast<int64_t>(now) + redisClockOffsetMs - cfg.streamMaxAgeMs;
            if (cut > 0)
                for (auto& [key, s] : streams) cmd.command({"XTRIM", key, "MINID", std::to_string(cut) + "-0"}, nullptr);
        }
        cmd.command({"ZRANGEBYSCORE", nk, std::to_string(now), "+inf"}, [self](redisReply* r) {
            if (!r || r->type != REDIS_REPLY_ARRAY) return;
            std::vector<std::string> nodes;
            for (size_t i = 0; i < r->elements; ++i) nodes.push_back(replyText(r->element[i]));
            std::lock_guard<std::mutex> lk(self->infoMu);
            self->nodesSeen = std::move(nodes);
        });
    }

    // ------------------------------------------------------------------ interest

    void addRoute(const std::string& ch, Route r) {
        if (routes.emplace(ch, std::move(r)).second && link == Link::Up) sub.subscribe(ch);
    }
    void dropRoute(const std::string& ch) {
        if (routes.erase(ch) && link == Link::Up) sub.unsubscribe(ch);
    }
    std::string emitterRoom(const std::string& ns, const std::string& topic) const {
        return cfg.socketioEmitterKey + "#" + ns + "#" + topic + "#";
    }
    std::string emitterNs(const std::string& ns) const { return cfg.socketioEmitterKey + "#" + ns + "#"; }

    // A stream read from "now": messages appended after the first local subscriber came.
    std::string streamStartId() const {
        const int64_t ms = static_cast<int64_t>(wallMs()) + redisClockOffsetMs - 2;
        return std::to_string(ms > 0 ? ms : 0) + "-0";
    }

    void addInterest(const std::string& ns, const std::string& topic) {
        if (ackNamespaces.count(ns)) {
            streams[keys.topicStream(ns, topic)] = Stream{ns, topic, streamStartId()};
            streamsRead = static_cast<int64_t>(streams.size());
            kickXread();
        } else {
            addRoute(keys.topicChannel(ns, topic), Route{RouteKind::Topic, ns, topic});
        }
        if (!cfg.socketioEmitterKey.empty()) {
            addRoute(emitterRoom(ns, topic), Route{RouteKind::EmitterRoom, ns, topic});
            if (nsSubs[ns]++ == 0) addRoute(emitterNs(ns), Route{RouteKind::EmitterNs, ns, ""});
        }
    }

    void removeInterest(const std::string& ns, const std::string& topic) {
        if (ackNamespaces.count(ns)) {
            streams.erase(keys.topicStream(ns, topic));
            streamsRead = static_cast<int64_t>(streams.size());
            kickXread();
        } else {
            dropRoute(keys.topicChannel(ns, topic));
        }
        if (!cfg.socketioEmitterKey.empty()) {
            dropRoute(emitterRoom(ns, topic));
            if (--nsSubs[ns] <= 0) {
                nsSubs.erase(ns);
                dropRoute(emitterNs(ns));
            }
        }
    }

    void subscribed(const std::string& ns, const std::string& id, const std::string& topic) {
        if (!clientTopics[{ns, id}].insert(topic).second) return;
        if (topicSubs[{ns, topic}]++ == 0) addInterest(ns, topic);
    }

    void unsubscribed(const std::string& ns, const std::string& id, const std::string& topic) {
        auto it = clientTopics.find({ns, id});
        if (it == clientTopics.end() || !it->second.erase(topic)) return;
        auto t = topicSubs.find({ns, topic});
        if (t != topicSubs.end() && --t->second <= 0) {
            topicSubs.erase(t);
            removeInterest(ns, topic);
        }
    }

    // ------------------------------------------------------------------ streams (AT_LEAST_ONCE)

    void kickXread() {
        if (link != Link::Up) return;
        // A blocked XREAD cannot be cancelled through hiredis; Redis can end it for us, and
        // the reply handler re-issues it with the new set of streams.
        if (xreadInFlight) cmd.command({"CLIENT", "UNBLOCK", xreadClientId}, nullptr);
        else issueXread();
    }

    void issueXread() {
        if (link != Link::Up || xreadInFlight || streams.empty()) return;
        std::vector<std::string> argv = {"XREAD", "COUNT", "512", "BLOCK", std::to_string(blockMs()), "STREAMS"};
        for (auto& [key, s] : streams) argv.push_back(key);
        for (auto& [key, s] : streams) argv.push_back(s.lastId);
        xreadInFlight = true;
        const uint64_t g = gen;
        auto self = shared_from_this();
        xread.command(argv, [self, g](redisReply* r) {
            if (g != self->gen) return;
            self->xreadInFlight = false;
            if (!r) return;  // the link is going down; fail() follows
            if (r->type == REDIS_REPLY_ERROR) return self->fail("XREAD failed: " + replyText(r));
            if (r->type == REDIS_REPLY_ARRAY) self->onXread(r);
            self->issueXread();
        });
    }

    void onXread(redisReply* r) {
        for (size_t i = 0; i < r->elements; ++i) {
            redisReply* s = r->element[i];
            if (s->type != REDIS_REPLY_ARRAY || s->elements != 2) continue;
            auto it = streams.find(replyText(s->element[0]));
            if (it == streams.end()) continue;  // interest dropped meanwhile
            redisReply* entries = s->element[1];
            if (entries->type != REDIS_REPLY_ARRAY) continue;
            for (size_t e = 0; e < entries->elements; ++e) {
                redisReply* entry = entries->element[e];
                if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
                it->second.lastId = replyText(entry->element[0]);
                redisReply* f = entry->element[1];
                if (f->type != REDIS_REPLY_ARRAY) continue;
                std::string origin, payload, messageId;
                bool deliveredByOrigin = false;
                for (size_t k = 0; k + 1 < f->elements; k += 2) {
                    const std::string name = replyText(f->element[k]);
                    if (name == "n") origin = replyText(f->element[k + 1]);
                    else if (name == "p") payload = replyText(f->element[k + 1]);
                    else if (name == "i") messageId = replyText(f->element[k + 1]);
                    else if (name == "h") deliveredByOrigin = true;
                }
                // Ours and delivered here when it was published (a durable namespace's
                // journal did); older nodes wrote no messageId and delivered their own too.
                if (origin == nodeId && (deliveredByOrigin || messageId.empty())) continue;
                if (origin != nodeId) inStream.fetch_add(1, std::memory_order_relaxed);
                deliverLocal(it->second.ns, it->second.topic, payload, "stream", messageId, it->second.lastId);
            }
        }
    }

    void deliverLocal(const std::string& ns, const std::string& topic, const std::string& payload, const char* via,
                      const std::string& messageId = {}, const std::string& streamId = {}) {
        PublishStatus st = delivery.publishLocal(ns, topic, payload, messageId, streamId);
        if (st == PublishStatus::Ok) return;
        dropped.fetch_add(1, std::memory_order_relaxed);
        if (uint64_t n_ = rl.due("cluster_message_dropped")) log::warn("cluster_message_dropped", {{"count", std::to_string(n_)}, {"server", serverName}, {"namespace", ns}, {"topic", topic}, {"via", via},
                                            {"status", delivery::toString(st)}});
    }

    // ------------------------------------------------------------------ pub/sub

    void onPush(redisReply* r) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
        const std::string kind = replyText(r->element[0]);
        if (kind == "subscribe" || kind == "unsubscribe") {
            if (r->element[2]->type == REDIS_REPLY_INTEGER) subscriptions = std::max<int64_t>(0, r->element[2]->integer - 1);
            if (kind == "subscribe") {
                confirmed.insert(replyText(r->element[1]));
                runConfirmWaits(net::monotonicMs());  // a subscribe ack waits for this, not for the tick
            } else {
                confirmed.erase(replyText(r->element[1]));
            }
            return;
        }
        if (kind != "message") return;
        const std::string ch = replyText(r->element[1]);
        auto it = routes.find(ch);
        if (it == routes.end()) return;
        const redisReply* body = r->element[2];
        if (body->type != REDIS_REPLY_STRING) return;
        const Route& route = it->second;
        switch (route.kind) {
            case RouteKind::Topic: {
                auto rec = decodeRecord(std::string(body->str, body->len));
                if (!rec || rec->size() < 2 || rec->size() > 3) return;
                if ((*rec)[0] == nodeId) return;  // ours: delivered here directly
                inPubsub.fetch_add(1, std::memory_order_relaxed);
                deliverLocal(route.ns, route.topic, (*rec)[1], "pubsub", rec->size() == 3 ? (*rec)[2] : std::string());
                return;
            }
            case RouteKind::Node: return onNodeMessage(std::string(body->str, body->len));
            case RouteKind::EmitterRoom:
            case RouteKind::EmitterNs: return onEmitter(route, body->str, body->len);
        }
    }

    void onEmitter(const Route& route, const char* data, size_t len) {
        EmitterMessage m;
        std::string why;
        if (!decodeEmitterMessage(data, len, m, why)) {
            emitterRejected.fetch_add(1, std::memory_order_relaxed);
            if (uint64_t n_ = rl.due("cluster_emitter_rejected")) log::warn("cluster_emitter_rejected", {{"count", std::to_string(n_)}, {"server", serverName}, {"namespace", route.ns}, {"reason", why}});
            return;
        }
        if (m.nsp != route.ns) return;  // another namespace's broadcast (the Socket.IO adapter drops it too)
        if (route.kind == RouteKind::EmitterRoom) {
            inEmitter.fetch_add(1, std::memory_order_relaxed);
            deliverLocal(route.ns, route.topic, m.payloadJson, "emitter");
            return;
        }
        // The namespace channel: every room named that has local subscribers (the room is the
        // topic). A broadcast without rooms names no topic and is not delivered.
        if (m.rooms.empty()) {
            emitterRejected.fetch_add(1, std::memory_order_relaxed);
            if (uint64_t n_ = rl.due("cluster_emitter_rejected")) log::warn("cluster_emitter_rejected", {{"count", std::to_string(n_)}, {"server", serverName}, {"namespace", route.ns},
                                                 {"reason", "no room: the room names the topic (use emitter.to(topic))"}});
            return;
        }
        std::set<std::string> seen;
        for (auto& room : m.rooms) {
            if (!seen.insert(room).second || !topicSubs.count({route.ns, room})) continue;
            inEmitter.fetch_add(1, std::memory_order_relaxed);
            deliverLocal(route.ns, room, m.payloadJson, "emitter");
        }
    }

    // ------------------------------------------------------------------ publishTo across nodes

    void onNodeMessage(const std::string& data) {
        auto rec = decodeRecord(data);
        if (!rec || rec->empty()) return;
        const auto& f = *rec;
        if (f[0] == "to" && f.size() == 7) {
            // [to, origin, requestId, ns, clientId, topic, payload]
            inDirect.fetch_add(1, std::memory_order_relaxed);
            PublishStatus st = delivery.publishToLocal(f[3], f[4], f[5], f[6]);
            cmd.command({"PUBLISH", keys.nodeChannel(f[1]), encodeRecord({"re", nodeId, f[2], statusWord(st)})}, nullptr);
        } else if (f[0] == "take" && f.size() == 5) {
            // [take, origin, requestId, pid, ns]: a node claimed a session this one holds.
            std::weak_ptr<Impl> weak = shared_from_this();
            const std::string origin = f[1], reqId = f[2];
            delivery.handOver(f[3], f[4], [weak, origin, reqId](delivery::HandOver h) {
                auto self = weak.lock();
                if (!self) return;
                if (h.ownerHeld) self->sessionsHandedOver.fetch_add(1, std::memory_order_relaxed);
                self->loop.post([self, origin, reqId, h = std::move(h)] {
                    if (self->link != Link::Up) return;  // the claimant gives up at its deadline
                    self->cmd.command({"PUBLISH", self->keys.nodeChannel(origin),
                                       encodeRecord({"give", self->nodeId, reqId, encodeHandOver(h)})},
                                      nullptr);
                });
            });
        } else if (f[0] == "give" && f.size() == 4) {
            uint64_t id = 0;
            try {
                id = std::stoull(f[2]);
            } catch (...) {
                return;
            }
            auto it = gathers.find(id);
            if (it == gathers.end()) return;  // too late: the claimant went on without it
            auto g = it->second;
            gathers.erase(it);
            if (g->finished) return;
            if (auto h = decodeHandOver(f[3])) {
                h->replay = std::move(g->h.replay);
                g->h = std::move(*h);
            } else if (uint64_t n_ = rl.due("cluster_handover_malformed")) {
                log::warn("cluster_handover_malformed", {{"count", std::to_string(n_)}, {"from_node", f[1]}});
            }
            gatherStep(g);
        } else if (f[0] == "re" && f.size() == 4) {
            uint64_t id = 0;
            try {
                id = std::stoull(f[2]);
            } catch (...) {
                return;
            }
            finish(id, fromStatusWord(f[3]));
        }
    }

    void finish(uint64_t id, ClusterSend r) {
        auto it = requests.find(id);
        if (it == requests.end()) return;
        auto done = std::move(it->second.done);
        requests.erase(it);
        done(r);
    }

    void startSendTo(const std::string& ns, const std::string& clientId, const std::string& topic, const std::string& payload,
                     std::function<void(ClusterSend)> done) {
        if (link != Link::Up) return done(ClusterSend::Unavailable);
        const uint64_t id = nextRequest++;
        requests[id] = Request{std::move(done), net::monotonicMs() + static_cast<uint64_t>(cfg.commandTimeoutMs)};
        const uint64_t g = gen;
        auto self = shared_from_this();
        const std::string field = ClusterKeys::clientField(ns, clientId);
        // Which live node holds the client? Then one request on that node's channel.
        cmd.command({"ZRANGEBYSCORE", keys.nodesKey(), std::to_string(wallMs()), "+inf"},
                    [self, g, id, field, ns, clientId, topic, payload](redisReply* r) {
            if (g != self->gen) return;
            if (!r || r->type != REDIS_REPLY_ARRAY) return self->finish(id, ClusterSend::Unavailable);
            std::vector<std::string> nodes;
            for (size_t i = 0; i < r->elements; ++i)
                if (replyText(r->element[i]) != self->nodeId) nodes.push_back(replyText(r->element[i]));
            if (nodes.empty()) return self->finish(id, ClusterSend::UnknownClient);
            auto left = std::make_shared<size_t>(nodes.size());
            auto holder = std::make_shared<std::string>();
            for (auto& n : nodes) {
                self->cmd.command({"HEXISTS", self->keys.clientsKey(n), field},
                                  [self, g, id, n, left, holder, ns, clientId, topic, payload](redisReply* h) {
                    if (g != self->gen) return;
                    if (h && h->type == REDIS_REPLY_INTEGER && h->integer == 1 && holder->empty()) *holder = n;
                    if (--*left) return;
                    if (holder->empty()) return self->finish(id, ClusterSend::UnknownClient);
                    self->outDirect.fetch_add(1, std::memory_order_relaxed);
                    self->cmd.command({"PUBLISH", self->keys.nodeChannel(*holder),
                                       encodeRecord({"to", self->nodeId, std::to_string(id), ns, clientId, topic, payload})},
                                      [self, g, id](redisReply* p) {
                        if (g != self->gen) return;
                        // Nobody listening on its channel: the node died since its last heartbeat.
                        if (!p || p->type != REDIS_REPLY_INTEGER) return self->finish(id, ClusterSend::Unavailable);
                        if (p->integer == 0) self->finish(id, ClusterSend::UnknownClient);
                    });
                });
            }
        });
    }

    // ------------------------------------------------------------------ recovery across nodes

    bool allConfirmed(const std::vector<std::string>& channels) const {
        for (auto& c : channels)
            if (!confirmed.count(c)) return false;
        return true;
    }

    void runConfirmWaits(uint64_t now) {
        for (size_t i = 0; i < confirmWaits.size();) {
            if (confirmWaits[i].deadline <= now || allConfirmed(confirmWaits[i].channels)) {
                auto then = std::move(confirmWaits[i].then);
                confirmWaits.erase(confirmWaits.begin() + static_cast<long>(i));
                then();
            } else {
                ++i;
            }
        }
    }

    // then() once Redis confirmed every channel (this node receives what is published on
    // them from now on), or at the deadline.
    void whenConfirmed(std::vector<std::string> channels, uint64_t deadline, std::function<void()> then) {
        if (allConfirmed(channels)) return then();
        confirmWaits.push_back(ConfirmWait{std::move(channels), deadline, std::move(then)});
    }

    void finishGather(const std::shared_ptr<Gather>& g) {
        if (g->finished) return;
        g->finished = true;
        auto done = std::move(g->done);
        done(std::move(g->h));
    }

    void gatherStep(const std::shared_ptr<Gather>& g) {
        if (--g->waiting <= 0) finishGather(g);
    }

    void dropRecord(const std::string& key) {
        static const char* kScript =
            "local v = redis.call('GET', KEYS[1]) "
            "if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
            "return 0";
        cmd.command({"EVAL", kScript, "1", key, sessionRecordOwnerPrefix(nodeId)}, nullptr);
    }

    // "(<id>", "<id>" or "t<wall ms>" (RemoteSessionRecord) as an XRANGE start.
    std::string rangeStart(const std::string& floor) const {
        if (!floor.empty() && floor[0] == 't') {
            int64_t ms = 0;
            try {
                ms = std::stoll(floor.substr(1));
            } catch (...) {
                return "-";
            }
            // Redis's clock, with a margin for the offset measured at connect.
            ms += redisClockOffsetMs - 50;
            return ms > 0 ? std::to_string(ms) + "-0" : "-";
        }
        return floor;
    }

    void startGather(const delivery::RemoteSessionRecord& rec, std::function<void(delivery::HandOver)> done) {
        auto g = std::make_shared<Gather>();
        g->done = std::move(done);
        g->deadline = net::monotonicMs() + static_cast<uint64_t>(cfg.commandTimeoutMs);
        gathering.push_back(g);
        if (link != Link::Up) return finishGather(g);
        const bool ack = ackNamespaces.count(rec.ns) > 0;
        std::vector<std::string> channels;
        if (!ack)
            for (auto& [topic, floor] : rec.topics) channels.push_back(keys.topicChannel(rec.ns, topic));
        auto self = shared_from_this();
        whenConfirmed(std::move(channels), g->deadline, [self, g, rec, ack] {
            if (g->finished) return;
            if (self->link != Link::Up) return self->finishGather(g);
            g->waiting = 1;  // this step
            const uint64_t gn = self->gen;
            if (ack) {
                for (auto& [topic, floor] : rec.topics) {
                    if (floor.empty()) continue;
                    ++g->waiting;
                    const std::string t = topic;
                    self->cmd.command({"XRANGE", self->keys.topicStream(rec.ns, topic), self->rangeStart(floor), "+", "COUNT", "100000"},
                                      [self, g, gn, t](redisReply* r) {
                        if (gn != self->gen || g->finished) return;
                        if (r && r->type == REDIS_REPLY_ARRAY) self->readRange(r, t, g->h.replay);
                        self->gatherStep(g);
                    });
                }
            }
            if (!rec.node.empty() && rec.node != self->nodeId) {
                ++g->waiting;
                const uint64_t id = self->nextRequest++;
                self->gathers[id] = g;
                self->cmd.command({"PUBLISH", self->keys.nodeChannel(rec.node),
                                   encodeRecord({"take", self->nodeId, std::to_string(id), rec.pid, rec.ns})},
                                  [self, g, gn, id](redisReply* r) {
                    if (gn != self->gen || g->finished) return;
                    // Nobody on its channel: that node is gone, and its lanes with it.
                    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer == 0) {
                        self->sessionOwnerGone.fetch_add(1, std::memory_order_relaxed);
                        self->gathers.erase(id);
                        self->gatherStep(g);
                    }
                });
            }
            self->gatherStep(g);
        });
    }

    // XRANGE entries as messages to replay (the stream's own order).
    void readRange(redisReply* r, const std::string& topic, std::vector<delivery::HandedMessage>& out) {
        for (size_t e = 0; e < r->elements; ++e) {
            redisReply* entry = r->element[e];
            if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 || entry->element[1]->type != REDIS_REPLY_ARRAY) continue;
            delivery::HandedMessage m;
            m.topic = topic;
            m.streamId = replyText(entry->element[0]);
            redisReply* f = entry->element[1];
            for (size_t k = 0; k + 1 < f->elements; k += 2) {
                const std::string name = replyText(f->element[k]);
                if (name == "p") m.payloadJson = replyText(f->element[k + 1]);
                else if (name == "i") m.messageId = replyText(f->element[k + 1]);
            }
            if (m.messageId.empty()) m.messageId = "st-" + m.streamId;  // written by an older node
            out.push_back(std::move(m));
        }
    }

    // ------------------------------------------------------------------ sends

    void startSend(const std::string& ns, const std::string& topic, const std::string& payload, const std::string& messageId,
                   bool durable, bool deliveredHere, std::function<void(ClusterSend)> done) {
        if (link != Link::Up) {
            // Accepted here a moment ago, but the link dropped before it left: counted.
            sendFailed.fetch_add(1, std::memory_order_relaxed);
            if (done) done(ClusterSend::Unavailable);
            return;
        }
        if (!durable) {
            outPubsub.fetch_add(1, std::memory_order_relaxed);
            cmd.command({"PUBLISH", keys.topicChannel(ns, topic), encodeRecord({nodeId, payload, messageId})}, nullptr);
            if (done) done(ClusterSend::Ok);
            return;
        }
        auto self = shared_from_this();
        std::vector<std::string> xadd = {"XADD", keys.topicStream(ns, topic), "MAXLEN", "~", std::to_string(cfg.streamMaxLen),
                                         "*", "n", nodeId, "p", payload, "i", messageId};
        if (deliveredHere) {
            xadd.push_back("h");
            xadd.push_back("1");
        }
        cmd.command(xadd,
                    [self, ns, topic, done = std::move(done)](redisReply* r) {
            if (r && r->type == REDIS_REPLY_STRING) {
                self->outStream.fetch_add(1, std::memory_order_relaxed);
                if (done) done(ClusterSend::Ok);
                return;
            }
            self->sendFailed.fetch_add(1, std::memory_order_relaxed);
            if (r && r->type == REDIS_REPLY_ERROR)
                if (uint64_t n_ = self->rl.due("cluster_append_failed")) log::warn("cluster_append_failed", {{"count", std::to_string(n_)}, {"server", self->serverName}, {"namespace", ns}, {"topic", topic},
                                                        {"error", replyText(r)}});
            if (done) done(ClusterSend::Unavailable);
        });
    }
};

// ---------------------------------------------------------------------- ClusterNode

ClusterNode::ClusterNode(const config::ClusterConfig& cfg, const config::ServerConfig& server, delivery::Delivery& delivery)
    : impl_(std::make_shared<Impl>(cfg, server, delivery)) {}

ClusterNode::~ClusterNode() { stop(); }

void ClusterNode::start() { impl_->start(); }
void ClusterNode::stop() { impl_->stop(); }
const std::string& ClusterNode::nodeId() const { return impl_->nodeId; }
bool ClusterNode::linkUp() const { return impl_->up.load(std::memory_order_relaxed) && !impl_->stopped.load(); }
uint64_t ClusterNode::sendTimeoutMs() const { return static_cast<uint64_t>(impl_->cfg.commandTimeoutMs); }

void ClusterNode::send(const std::string& ns, const std::string& topic, const std::string& payloadJson,
                       const std::string& messageId, bool durable, bool deliveredHere, std::function<void(ClusterSend)> done) {
    if (impl_->stopped) {
        if (done) done(ClusterSend::Unavailable);
        return;
    }
    std::weak_ptr<Impl> w = impl_;
    impl_->loop.post([w, ns, topic, payloadJson, messageId, durable, deliveredHere, done = std::move(done)]() mutable {
        if (auto m = w.lock()) m->startSend(ns, topic, payloadJson, messageId, durable, deliveredHere, std::move(done));
    });
}

void ClusterNode::sendTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                         const std::string& payloadJson, std::function<void(ClusterSend)> done) {
    if (impl_->stopped) {
        done(ClusterSend::Unavailable);
        return;
    }
    std::weak_ptr<Impl> w = impl_;
    impl_->loop.post([w, ns, clientId, topic, payloadJson, done = std::move(done)]() mutable {
        if (auto m = w.lock()) m->startSendTo(ns, clientId, topic, payloadJson, std::move(done));
    });
}

std::string ClusterNode::messageIdTag() const { return impl_->tag; }
uint64_t ClusterNode::sessionSyncMs() const { return static_cast<uint64_t>(impl_->cfg.heartbeatMs); }

void ClusterNode::storeSessions(std::vector<delivery::RemoteSessionRecord> records, uint64_t ttlMs) {
    std::weak_ptr<Impl> w = impl_;
    impl_->loop.post([w, records = std::move(records), ttlMs]() mutable {
        auto m = w.lock();
        if (!m) return;
        for (auto& r : records) {
            r.node = m->nodeId;
            const std::string key = m->keys.sessionKey(r.pid);
            std::string value = encodeSessionRecord(r);
            m->unsentDrops.erase(key);
            if (m->link == Impl::Link::Up)
                m->cmd.command({"SET", key, value, "PX", std::to_string(ttlMs)}, nullptr);
            else
                m->unsentRecords[key] = {std::move(value), ttlMs};
        }
    });
}

void ClusterNode::dropSession(const std::string& pid) {
    std::weak_ptr<Impl> w = impl_;
    impl_->loop.post([w, pid] {
        auto m = w.lock();
        if (!m) return;
        const std::string key = m->keys.sessionKey(pid);
        m->unsentRecords.erase(key);
        if (m->link == Impl::Link::Up) m->dropRecord(key);
        else m->unsentDrops.insert(key);
    });
}

void ClusterNode::claimSession(const std::string& pid, const std::string& ns,
                               std::function<void(bool, delivery::RemoteSessionRecord)> done) {
    std::weak_ptr<Impl> w = impl_;
    impl_->loop.post([w, pid, ns, done = std::move(done)] {
        auto m = w.lock();
        if (!m || m->link != Impl::Link::Up) return done(false, {});
        const uint64_t g = m->gen;
        // GETDEL: of two nodes claiming at once, one gets the record.
        m->cmd.command({"GETDEL", m->keys.sessionKey(pid)}, [m, g, pid, ns, done](redisReply* r) {
            if (g != m->gen || !r || r->type != REDIS_REPLY_STRING) return done(false, {});
            auto rec = decodeSessionRecord(std::string(r->str, r->len));
            if (!rec || rec->ns != ns) return done(false, {});
            m->sessionsClaimed.fetch_add(1, std::memory_order_relaxed);
            rec->pid = pid;
            done(true, std::move(*rec));
        });
    });
}

void ClusterNode::gatherMissed(const delivery::RemoteSessionRecord& record, std::function<void(delivery::HandOver)> done) {
    std::weak_ptr<Impl> w = impl_;
    impl_->loop.post([w, record, done = std::move(done)]() mutable {
        if (auto m = w.lock()) m->startGather(record, std::move(done));
        else done(delivery::HandOver{});
    });
}

void ClusterNode::whenReceiving(const std::string& ns, const std::string& topic, std::function<void()> ready) {
    std::weak_ptr<Impl> w = impl_;
    // Posted after onSubscribed's post, so the channel is wanted by the time this runs.
    impl_->loop.post([w, ns, topic, ready = std::move(ready)]() mutable {
        auto m = w.lock();
        if (!m || m->link != Impl::Link::Up || m->ackNamespaces.count(ns)) return ready();
        std::vector<std::string> channels{m->keys.topicChannel(ns, topic)};
        if (!m->cfg.socketioEmitterKey.empty()) channels.push_back(m->emitterRoom(ns, topic));
        m->whenConfirmed(std::move(channels), net::monotonicMs() + static_cast<uint64_t>(m->cfg.commandTimeoutMs),
                         std::move(ready));
    });
}

void ClusterNode::refused(const std::string& ns, const std::string& topic, const std::string& why) {
    impl_->refusedCount.fetch_add(1, std::memory_order_relaxed);
    std::string err;
    {
        std::lock_guard<std::mutex> lk(impl_->infoMu);
        err = impl_->lastError;
    }
    if (uint64_t n_ = impl_->rl.due("cluster_publish_refused")) log::warn("cluster_publish_refused", {{"count", std::to_string(n_)}, {"server", impl_->serverName}, {"namespace", ns}, {"topic", topic},
                                               {"reason", why}, {"link_error", err}});
}

void ClusterNode::onClientConnected(const delivery::ClientConnectedEvent& e) {
    const std::string& ns = e.ns;
    const std::string& clientId = e.clientId;
    std::weak_ptr<Impl> w = impl_;
    impl_->loop.post([w, ns, clientId] {
        auto m = w.lock();
        if (!m) return;
        m->clientTopics[{ns, clientId}];
        if (m->link == Impl::Link::Up)
            m->cmd.command({"HSET", m->keys.clientsKey(m->nodeId), ClusterKeys::clientField(ns, clientId), "1"}, nullptr);
    });
}

void ClusterNode::onClientDisconnected(const delivery::ClientDisconnectedEvent& e) {
    const std::string& ns = e.ns;
    const std::string& clientId = e.clientId;
    std::weak_ptr<Impl> w = impl_;
    impl_->loop.post([w, ns, clientId] {
        auto m = w.lock();
        if (!m) return;
        auto it = m->clientTopics.find({ns, clientId});
        if (it != m->clientTopics.end()) {
            std::set<std::string> topics = it->second;
            for (auto& t : topics) m->unsubscribed(ns, clientId, t);
            m->clientTopics.erase({ns, clientId});
        }
        if (m->link == Impl::Link::Up)
            m->cmd.command({"HDEL", m->keys.clientsKey(m->nodeId), ClusterKeys::clientField(ns, clientId)}, nullptr);
    });
}

void ClusterNode::onSubscribed(const delivery::SubscribedEvent& e) {
    const std::string& ns = e.ns;
    const std::string& clientId = e.clientId;
    const std::string& topic = e.topic;
    std::weak_ptr<Impl> w = impl_;
    impl_->loop.post([w, ns, clientId, topic] {
        if (auto m = w.lock()) m->subscribed(ns, clientId, topic);
    });
}

void ClusterNode::onUnsubscribed(const delivery::UnsubscribedEvent& e) {
    const std::string& ns = e.ns;
    const std::string& clientId = e.clientId;
    const std::string& topic = e.topic;
    std::weak_ptr<Impl> w = impl_;
    impl_->loop.post([w, ns, clientId, topic] {
        if (auto m = w.lock()) m->unsubscribed(ns, clientId, topic);
    });
}

std::string ClusterNode::linkState(std::vector<std::string>* nodesSeen) const {
    Impl& m = *impl_;
    std::lock_guard<std::mutex> lk(m.infoMu);
    if (nodesSeen) *nodesSeen = m.nodesSeen;
    return m.linkWord;
}

std::string ClusterNode::healthJson() const {
    Impl& m = *impl_;
    std::lock_guard<std::mutex> lk(m.infoMu);
    std::string out = "{\"nodeId\":" + json::quote(m.nodeId) + ",\"link\":" + json::quote(m.linkWord);
    out += ",\"redis\":" + json::quote(m.cfg.redis.host + ":" + std::to_string(m.cfg.redis.port));
    if (!m.lastError.empty()) out += ",\"lastError\":" + json::quote(m.lastError);
    out += ",\"nodes\":[";
    for (size_t i = 0; i < m.nodesSeen.size(); ++i) out += (i ? "," : "") + json::quote(m.nodesSeen[i]);
    out += "],\"subscriptions\":" + std::to_string(m.subscriptions.load());
    out += ",\"streams\":" + std::to_string(m.streamsRead.load());
    out += ",\"reconnects\":" + std::to_string(m.reconnects.load());
    out += ",\"refusedPublishes\":" + std::to_string(m.refusedCount.load()) + "}";
    return out;
}

void ClusterNode::appendMetrics(MetricSnapshot& out) const {
    const Impl& m = *impl_;
    using T = MetricSample::Type;
    auto add = [&](const char* name, const char* help, T type, double v, std::vector<std::pair<std::string, std::string>> labels = {}) {
        out.push_back(makeMetricSample(name, help, type, std::move(labels), v));
    };
    const char* outHelp = "Messages this node sent to the other nodes, by path (pubsub, stream, direct = publishTo).";
    add("streamfence_cluster_messages_out_total", outHelp, T::Counter, double(m.outPubsub.load()), {{"via", "pubsub"}});
    add("streamfence_cluster_messages_out_total", outHelp, T::Counter, double(m.outStream.load()), {{"via", "stream"}});
    add("streamfence_cluster_messages_out_total", outHelp, T::Counter, double(m.outDirect.load()), {{"via", "direct"}});
    const char* inHelp = "Messages this node received from other nodes or the Socket.IO emitter, by path.";
    add("streamfence_cluster_messages_in_total", inHelp, T::Counter, double(m.inPubsub.load()), {{"via", "pubsub"}});
    add("streamfence_cluster_messages_in_total", inHelp, T::Counter, double(m.inStream.load()), {{"via", "stream"}});
    add("streamfence_cluster_messages_in_total", inHelp, T::Counter, double(m.inDirect.load()), {{"via", "direct"}});
    add("streamfence_cluster_messages_in_total", inHelp, T::Counter, double(m.inEmitter.load()), {{"via", "emitter"}});
    add("streamfence_cluster_publish_refused_total", "Publishes refused because the other nodes could not be reached.",
        T::Counter, double(m.refusedCount.load()));
    add("streamfence_cluster_send_failed_total",
        "Messages accepted on this node whose hand-off to Redis failed (link lost in between, append error).", T::Counter,
        double(m.sendFailed.load()));
    add("streamfence_cluster_received_dropped_total",
        "Messages from other nodes this node could not deliver (topic log full, stopping, unknown topic).", T::Counter,
        double(m.dropped.load()));
    add("streamfence_cluster_emitter_rejected_total", "Socket.IO emitter messages that could not be decoded or named no topic.",
        T::Counter, double(m.emitterRejected.load()));
    add("streamfence_cluster_sessions_claimed_total",
        "Reconnects to this node that took over a session another node held (recovery across nodes).", T::Counter,
        double(m.sessionsClaimed.load()));
    add("streamfence_cluster_sessions_handed_over_total", "Sessions this node handed to the node their client reconnected to.",
        T::Counter, double(m.sessionsHandedOver.load()));
    add("streamfence_cluster_session_owner_gone_total",
        "Sessions claimed here whose previous node was gone: recovered from the streams alone.", T::Counter,
        double(m.sessionOwnerGone.load()));
    add("streamfence_cluster_reconnects_total", "Reconnect attempts to Redis after the link was lost or could not be made.",
        T::Counter, double(m.reconnects.load()));
    const int64_t rtt = m.rttUs.load();
    add("streamfence_cluster_redis_rtt_seconds", "Round-trip time of the last heartbeat PING to Redis (-1: none yet).",
        T::Gauge, rtt < 0 ? -1.0 : double(rtt) / 1e6);
    add("streamfence_cluster_link_up", "1 while this node's link to Redis is up.", T::Gauge, m.up.load() ? 1.0 : 0.0);
    size_t nodes;
    {
        std::lock_guard<std::mutex> lk(m.infoMu);
        nodes = m.nodesSeen.size();
    }
    add("streamfence_cluster_nodes", "Nodes of this server seen alive at the last heartbeat (this one included).", T::Gauge,
        double(nodes));
}

}  // namespace sf::cluster
