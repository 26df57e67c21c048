// The delivery engine end to end below the Socket.IO layer: a real EventLoop thread, fake
// sockets that record what would go on the wire, test policy/storage/validator vtables.
// Covers fan-out and isolation, AT_LEAST_ONCE retries/exhaustion on timers, acks,
// backpressure and drain, client protocol errors and replies, auth (sync, async, rate
// limit, expiry), spill FIFO through a storage backend, publishTo, client publish.
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "delivery/delivery.hpp"
#include "net/event_loop.hpp"
#include "delivery_fakes.hpp"

using namespace sf;
using namespace sf::delivery;
using namespace sf::testing;
using json::Value;
using Obj = json::Value::Object;

namespace {

// ------------------------------------------------------------------ test policies
bool laneFits(const sf_lane_view* l, uint64_t b) { return l->count(l->lane) < l->max_messages && l->bytes(l->lane) + b <= l->max_bytes; }
int rejectNew(void*, const sf_lane_view*, const sf_message_view*, int, sf_policy_result* r) {
    r->verdict = SF_VERDICT_REJECT;
    r->reason = "queue full with REJECT_NEW";
    return SF_OK;
}
int dropOldest(void*, const sf_lane_view* l, const sf_message_view* in, int, sf_policy_result* r) {
    uint32_t i = 0;
    while (!laneFits(l, in->bytes) && i < l->count(l->lane))
        if (l->remove(l->lane, i) != SF_OK) ++i;
    r->verdict = laneFits(l, in->bytes) ? SF_VERDICT_ACCEPT : SF_VERDICT_REJECT;
    r->reason = "queue full after drop-oldest attempts";
    return SF_OK;
}
int spillPolicy(void*, const sf_lane_view*, const sf_message_view*, int, sf_policy_result* r) {
    r->verdict = SF_VERDICT_SPILL;
    r->reason = "spilled to disk";
    return SF_OK;
}
sf_overflow_policy_vtable kReject{sizeof(sf_overflow_policy_vtable), SF_POLICY_ON_OVERFLOW, rejectNew, {}};
sf_overflow_policy_vtable kDrop{sizeof(sf_overflow_policy_vtable), SF_POLICY_ON_OVERFLOW, dropOldest, {}};
sf_overflow_policy_vtable kSpill{sizeof(sf_overflow_policy_vtable), SF_POLICY_ON_OVERFLOW, spillPolicy, {}};

// ------------------------------------------------------------------ in-memory storage
// Asynchronous like a real backend: one worker thread runs operations in issue order.
struct MemStorage {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> ops;
    std::map<std::string, std::deque<std::pair<std::string, std::string>>> lanes;  // key -> (messageId, data)
    bool stop = false;
    std::thread worker{[this] { run(); }};
    ~MemStorage() {
        {
            std::lock_guard<std::mutex> lk(mu);
            stop = true;
        }
        cv.notify_all();
        worker.join();
    }
    void run() {
        for (;;) {
            std::function<void()> op;
            {
                std::unique_lock<std::mutex> lk(mu);
                cv.wait(lk, [&] { return stop || !ops.empty(); });
                if (ops.empty()) return;
                op = std::move(ops.front());
                ops.pop_front();
            }
            op();
        }
    }
    void push(std::function<void()> f) {
        {
            std::lock_guard<std::mutex> lk(mu);
            ops.push_back(std::move(f));
        }
        cv.notify_one();
    }
    static std::string key(const sf_lane_key* k) {
        return std::string(k->ns.ptr, k->ns.len) + "|" + std::string(k->client.ptr, k->client.len) + "|" +
               std::string(k->topic.ptr, k->topic.len);
    }
    size_t size(const std::string& k) {
        std::lock_guard<std::mutex> lk(mu);
        auto it = lanes.find(k);
        return it == lanes.end() ? 0 : it->second.size();
    }
    static int append(void* inst, const sf_lane_key* lk, const sf_record* r, sf_storage_done done, void* cookie) {
        auto* s = static_cast<MemStorage*>(inst);
        std::string k = key(lk), id(r->message_id.ptr, r->message_id.len), data(r->data.ptr, r->data.len);
        s->push([s, k, id, data, done, cookie] {
            {
                std::lock_guard<std::mutex> g(s->mu);
                s->lanes[k].emplace_back(id, data);
            }
            done(cookie, SF_OK, nullptr, 0, nullptr);
        });
        return SF_OK;
    }
    static int readOldest(void* inst, const sf_lane_key* lk, uint32_t max, sf_storage_done done, void* cookie) {
        auto* s = static_cast<MemStorage*>(inst);
        std::string k = key(lk), topic(lk->topic.ptr, lk->topic.len);
        s->push([s, k, topic, max, done, cookie] {
            std::vector<std::pair<std::string, std::string>> copy;
            {
                std::lock_guard<std::mutex> g(s->mu);
                auto& d = s->lanes[k];
                for (size_t i = 0; i < d.size() && i < max; ++i) copy.push_back(d[i]);
            }
            // Records as a plugin built with a later minor hands them over: elements larger
            // than this host's sf_record, which the host must walk by struct_size (plugin.h).
            struct GrownRecord {
                sf_record r;
                uint64_t future[3];
            };
            std::vector<GrownRecord> recs(copy.size());
            for (size_t i = 0; i < copy.size(); ++i) {
                recs[i] = GrownRecord{};
                recs[i].r.struct_size = sizeof(GrownRecord);
                recs[i].r.data = sf_str{copy[i].second.data(), copy[i].second.size()};
                recs[i].r.message_id = sf_str{copy[i].first.data(), copy[i].first.size()};
                recs[i].r.event = sf_str{topic.data(), topic.size()};
                recs[i].r.bytes = copy[i].second.size();
                recs[i].future[0] = ~0ull;  // garbage where a host reading by sizeof would look
            }
            done(cookie, SF_OK, recs.empty() ? nullptr : &recs[0].r, recs.size(), nullptr);
        });
        return SF_OK;
    }
    static int removeOldest(void* inst, const sf_lane_key* lk, uint32_t n, sf_storage_done done, void* cookie) {
        auto* s = static_cast<MemStorage*>(inst);
        std::string k = key(lk);
        s->push([s, k, n, done, cookie] {
            {
                std::lock_guard<std::mutex> g(s->mu);
                auto& d = s->lanes[k];
                for (uint32_t i = 0; i < n && !d.empty(); ++i) d.pop_front();
            }
            done(cookie, SF_OK, nullptr, 0, nullptr);
        });
        return SF_OK;
    }
    static int clear(void* inst, const sf_lane_key* lk, sf_storage_done done, void* cookie) {
        auto* s = static_cast<MemStorage*>(inst);
        std::string k = key(lk);
        s->push([s, k, done, cookie] {
            {
                std::lock_guard<std::mutex> g(s->mu);
                s->lanes.erase(k);
            }
            done(cookie, SF_OK, nullptr, 0, nullptr);
        });
        return SF_OK;
    }
};
sf_storage_backend_vtable kMemVt{sizeof(sf_storage_backend_vtable), 0, MemStorage::append, MemStorage::readOldest,
                                 MemStorage::removeOldest, MemStorage::clear, nullptr, {}};

// ------------------------------------------------------------------ test validator
std::atomic<int> gValidations{0};
int validateToken(void*, const sf_token_request* rq, sf_token_result* res) {
    ++gValidations;
    std::string t(rq->token.ptr, rq->token.len);
    if (t == "good" || t == "expiring") {
        res->accepted = 1;
        res->principal->write(res->principal->ctx, "alice", 5);
        if (t == "expiring") res->expires_at_ms = static_cast<int64_t>(wallClockMs()) + 150;
    } else {
        res->accepted = 0;
        res->reason->write(res->reason->ctx, "Invalid token", 13);
    }
    return SF_OK;
}
int validateBlocking(void* i, const sf_token_request* rq, sf_token_result* res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return validateToken(i, rq, res);
}
sf_token_validator_vtable kValidator{sizeof(sf_token_validator_vtable), 0, validateToken, {}};
sf_token_validator_vtable kBlockingValidator{sizeof(sf_token_validator_vtable), SF_VALIDATOR_MAY_BLOCK, validateBlocking, {}};

struct Recorder : Listener {
    std::mutex mu;
    std::vector<std::string> log;
    void add(std::string s) {
        std::lock_guard<std::mutex> lk(mu);
        log.push_back(std::move(s));
    }
    bool has(const std::string& s) {
        std::lock_guard<std::mutex> lk(mu);
        for (auto& x : log)
            if (x == s) return true;
        return false;
    }
    void onClientConnected(const ClientConnectedEvent& e) override { add("connected " + e.ns + " " + e.clientId); }
    void onClientDisconnected(const ClientDisconnectedEvent& e) override { add("disconnected " + e.ns + " " + e.clientId); }
    void onSubscribed(const SubscribedEvent& e) override { add("subscribed " + e.ns + " " + e.clientId + " " + e.topic); }
    void onUnsubscribed(const UnsubscribedEvent& e) override { add("unsubscribed " + e.ns + " " + e.clientId + " " + e.topic); }
    void onPublishAccepted(const PublishAcceptedEvent& e) override { add("accepted " + e.ns + " " + e.topic + " " + e.clientId); }
    void onPublishRejected(const PublishRejectedEvent& e) override {
        add("rejected " + e.ns + " " + e.topic + " " + e.clientId + " " + e.reasonCode);
    }
    void onQueueOverflow(const QueueOverflowEvent& e) override {
        add("overflow " + e.ns + " " + e.clientId + " " + e.topic + " " + e.reason);
    }
    void onAuthRejected(const AuthRejectedEvent& e) override { add("auth " + e.ns + " " + e.reason); }
    void onRetry(const RetryEvent& e) override { add("retry " + e.messageId + " " + std::to_string(e.retryCount)); }
    void onRetryExhausted(const RetryExhaustedEvent& e) override {
        add("exhausted " + e.messageId + " " + std::to_string(e.retryCount));
    }
};

config::NamespaceConfig nsCfg(const std::string& path, std::vector<std::string> topics, const std::string& action = "REJECT_NEW") {
    config::NamespaceConfig n;
    n.path = path;
    n.topics = std::move(topics);
    n.overflowAction = action;
    return n;
}

}  // namespace

class DeliveryEngineTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DeliveryEngineTest);
    CPPUNIT_TEST(bestEffortFanOutAndIsolation);
    CPPUNIT_TEST(atLeastOnceRetriesAndExhaustion);
    CPPUNIT_TEST(ackOfUnsentIsIgnored);
    CPPUNIT_TEST(backpressureKeepsLaneBoundedThenDrains);
    CPPUNIT_TEST(subscribeErrorsAndReplies);
    CPPUNIT_TEST(connectAuthAndRateLimit);
    CPPUNIT_TEST(asyncValidatorAndExpiry);
    CPPUNIT_TEST(spillKeepsFifoAndClears);
    CPPUNIT_TEST(spillReadWalksRecordsByStructSize);
    CPPUNIT_TEST(publishToStatusesAndIsolation);
    CPPUNIT_TEST(clientPublishRunsHandlersAndFansOut);
    CPPUNIT_TEST(disconnectCountsAndCleans);
    CPPUNIT_TEST_SUITE_END();

public:
    void setUp() override {
        loop_ = std::make_unique<net::EventLoop>("test-io");
        loop_->start();
        storage_ = std::make_unique<MemStorage>();
        recorder_ = std::make_shared<Recorder>();
        metrics_ = std::make_unique<Metrics>();
        gValidations = 0;
    }
    void tearDown() override {
        if (delivery_) delivery_->shutdown();
        sockets_.clear();
        delivery_.reset();
        loop_->stop();
        loop_->join();
        loop_.reset();
        storage_.reset();
    }

private:
    std::unique_ptr<net::EventLoop> loop_;
    std::unique_ptr<MemStorage> storage_;
    std::shared_ptr<Recorder> recorder_;
    std::unique_ptr<Metrics> metrics_;
    std::unique_ptr<Delivery> delivery_;
    std::vector<FakePtr> sockets_;

    void onLoop(const std::function<void()>& f) {
        std::promise<void> p;
        loop_->post([&] {
            f();
            p.set_value();
        });
        p.get_future().wait();
    }

    void make(config::ServerConfig cfg, bool blockingValidator = false) {
        cfg.name = "test";
        PluginResolver r;
        r.makePolicy = [](const config::NamespaceConfig& n) {
            const sf_overflow_policy_vtable* vt = n.overflowAction == "DROP_OLDEST" ? &kDrop
                                                  : n.overflowAction == "SPILL_TO_DISK" ? &kSpill
                                                                                       : &kReject;
            return std::make_unique<OverflowPolicy>(vt, nullptr, n.overflowAction);
        };
        MemStorage* st = storage_.get();
        r.makeStorage = [st](const config::NamespaceConfig& n) -> std::shared_ptr<SpillStorage> {
            if (n.overflowAction != "SPILL_TO_DISK") return nullptr;
            return std::make_shared<SpillStorage>(&kMemVt, st, "mem");
        };
        r.makeValidator = [blockingValidator] {
            return std::make_unique<TokenValidator>(blockingValidator ? &kBlockingValidator : &kValidator, nullptr, "test");
        };
        delivery_ = std::make_unique<Delivery>(cfg, r, *metrics_, std::vector<net::EventLoop*>{loop_.get()});
        delivery_->addListener(recorder_);
    }

    FakePtr socket(const std::string& id, const std::string& ns, const std::string& remote = "127.0.0.1:40000") {
        auto s = std::make_shared<FakeSocket>(*loop_, id, ns, remote);
        s->self = s;
        s->handler = delivery_->handlerFor(ns).get();
        sockets_.push_back(s);
        return s;
    }

    // Connect and wait for the verdict (async validators answer later).
    std::pair<bool, std::string> connect(const FakePtr& s) {
        auto p = std::make_shared<std::promise<std::pair<bool, std::string>>>();
        auto f = p->get_future();
        auto h = delivery_->handlerFor(s->nsp());
        onLoop([&] { h->onConnect(s, [p](bool ok, Value err) { p->set_value({ok, err.dump()}); }); });
        if (f.wait_for(std::chrono::seconds(3)) != std::future_status::ready) return {false, "timeout"};
        return f.get();
    }

    // Send an event; returns the ack answer when withAck (after the loop handled it).
    std::string event(const FakePtr& s, const std::string& name, const std::string& payloadJson, bool withAck = false) {
        auto reply = std::make_shared<std::string>();
        auto h = delivery_->handlerFor(s->nsp());
        onLoop([&] {
            sio::Args args{json::parse(payloadJson)};
            sio::AckFn ack;
            if (withAck)
                ack = [reply](sio::Args a) {
                    for (auto& v : a) *reply += v.dump();
                };
            h->onEvent(s, name, args, ack);
        });
        return *reply;
    }

    double metric(const std::string& name, std::vector<std::pair<std::string, std::string>> labels) {
        for (auto& m : metrics_->snapshot())
            if (m.name == name && m.labels == labels) return m.value;
        return -1;
    }

public:
    void bestEffortFanOutAndIsolation() {
        config::ServerConfig cfg;
        cfg.namespaces.push_back(nsCfg("/feed", {"snapshot", "other"}));
        make(cfg);
        auto a = socket("A", "/feed"), b = socket("B", "/feed");
        CPPUNIT_ASSERT(connect(a).first);
        CPPUNIT_ASSERT(connect(b).first);
        event(a, "subscribe", R"({"topic":"snapshot","token":"secret-ish"})");
        CPPUNIT_ASSERT(a->hasEvent(R"(subscribed:{"topic":"snapshot"})"));  // no token echo
        CPPUNIT_ASSERT(recorder_->has("subscribed /feed A snapshot"));
        CPPUNIT_ASSERT(delivery_->publish("/feed", "snapshot", R"({ "value" : 42 })") == PublishStatus::Ok);
        CPPUNIT_ASSERT(delivery_->publish("/feed", "other", R"({"x":1})") == PublishStatus::Ok);  // nobody: still counted
        CPPUNIT_ASSERT(waitFor([&] { return a->framesCopy().size() == 1; }));
        CPPUNIT_ASSERT_EQUAL(std::string(R"(42/feed,["snapshot",{"value":42}])"), a->framesCopy()[0]);
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        CPPUNIT_ASSERT(b->framesCopy().empty());
        CPPUNIT_ASSERT_EQUAL(1.0, metric("streamfence_messages_published_total", {{"namespace", "/feed"}, {"topic", "snapshot"}}));
        CPPUNIT_ASSERT_EQUAL(12.0, metric("streamfence_messages_published_bytes_total", {{"namespace", "/feed"}, {"topic", "snapshot"}}));
        CPPUNIT_ASSERT_EQUAL(1.0, metric("streamfence_messages_published_total", {{"namespace", "/feed"}, {"topic", "other"}}));
        CPPUNIT_ASSERT(delivery_->publish("/nope", "snapshot", "{}") == PublishStatus::UnknownNamespace);
        CPPUNIT_ASSERT(delivery_->publish("/feed", "nope", "{}") == PublishStatus::UnknownTopic);
        CPPUNIT_ASSERT(delivery_->publish("/feed", "snapshot", "{oops") == PublishStatus::InvalidPayload);
        CPPUNIT_ASSERT(delivery_->handlerFor("/nope") == nullptr);
    }

    void atLeastOnceRetriesAndExhaustion() {
        config::ServerConfig cfg;
        auto n = nsCfg("/rel", {"order"});
        n.deliveryMode = config::DeliveryMode::AT_LEAST_ONCE;
        n.ackTimeoutMs = 60;
        n.maxRetries = 2;
        n.maxInFlight = 1;
        cfg.namespaces.push_back(n);
        make(cfg);
        auto a = socket("A", "/rel");
        CPPUNIT_ASSERT(connect(a).first);
        event(a, "subscribe", R"({"topic":"order"})");
        delivery_->publish("/rel", "order", R"({"i":1})");
        delivery_->publish("/rel", "order", R"({"i":2})");
        // msg-1: 1 send + 2 retries, then exhausted; only then msg-2 goes out (maxInFlight 1).
        CPPUNIT_ASSERT(waitFor([&] { return a->countFrames("\"msg-2\"") >= 1; }));
        event(a, "ack", R"({"topic":"order","messageId":"msg-2"})");
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        auto frames = a->framesCopy();
        CPPUNIT_ASSERT_EQUAL(size_t(3), a->countFrames("\"msg-1\""));
        CPPUNIT_ASSERT_EQUAL(size_t(1), a->countFrames("\"msg-2\""));
        CPPUNIT_ASSERT_EQUAL(
            std::string(R"(42/rel,["order",{"i":1},{"namespace":"/rel","topic":"order","messageId":"msg-1","ackRequired":true}])"),
            frames[0]);
        CPPUNIT_ASSERT_EQUAL(frames[0], frames[1]);  // the same frame is re-sent
        {
            std::lock_guard<std::mutex> lk(a->mu);
            for (int i = 1; i < 3; ++i) {
                uint64_t gap = a->frameTimes[i] - a->frameTimes[i - 1];
                CPPUNIT_ASSERT_MESSAGE("gap " + std::to_string(gap), gap >= 55 && gap < 200);
            }
        }
        std::vector<std::pair<std::string, std::string>> l{{"namespace", "/rel"}, {"topic", "order"}};
        CPPUNIT_ASSERT_EQUAL(2.0, metric("streamfence_retries_total", l));
        CPPUNIT_ASSERT_EQUAL(1.0, metric("streamfence_retries_exhausted_total", l));
        CPPUNIT_ASSERT(recorder_->has("retry msg-1 1"));
        CPPUNIT_ASSERT(recorder_->has("retry msg-1 2"));
        CPPUNIT_ASSERT(recorder_->has("exhausted msg-1 2"));
        CPPUNIT_ASSERT(waitFor([&] { return metric("streamfence_inflight", l) == 0.0; }));
    }

    void ackOfUnsentIsIgnored() {
        config::ServerConfig cfg;
        auto n = nsCfg("/rel", {"order"});
        n.deliveryMode = config::DeliveryMode::AT_LEAST_ONCE;
        n.ackTimeoutMs = 5000;
        n.maxRetries = 1;
        cfg.namespaces.push_back(n);
        make(cfg);
        auto a = socket("A", "/rel");
        connect(a);
        event(a, "subscribe", R"({"topic":"order"})");
        delivery_->publish("/rel", "order", R"({"i":1})");
        delivery_->publish("/rel", "order", R"({"i":2})");
        CPPUNIT_ASSERT(waitFor([&] { return a->countFrames("\"msg-1\"") == 1; }));
        CPPUNIT_ASSERT_EQUAL(std::string(R"({"ok":true})"), event(a, "ack", R"({"topic":"order","messageId":"msg-2"})", true));
        event(a, "ack", R"({"topic":"order","messageId":"nope"})");
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        CPPUNIT_ASSERT_EQUAL(size_t(0), a->countFrames("\"msg-2\""));  // still waiting behind msg-1
        event(a, "ack", R"({"topic":"order","messageId":"msg-1"})");
        CPPUNIT_ASSERT(waitFor([&] { return a->countFrames("\"msg-2\"") == 1; }));  // not skipped
        // A non-string messageId is a protocol error.
        event(a, "ack", R"({"topic":"order","messageId":7})");
        CPPUNIT_ASSERT(a->hasEvent(R"(error:{"code":"INVALID_PAYLOAD","message":"messageId must be a non-empty string"})"));
    }

    void backpressureKeepsLaneBoundedThenDrains() {
        config::ServerConfig cfg;
        auto n = nsCfg("/feed", {"t"}, "DROP_OLDEST");
        n.maxQueuedMessagesPerClient = 2;
        cfg.namespaces.push_back(n);
        make(cfg);
        auto slow = socket("S", "/feed"), fast = socket("F", "/feed");
        connect(slow);
        connect(fast);
        event(slow, "subscribe", R"({"topic":"t"})");
        event(fast, "subscribe", R"({"topic":"t"})");
        slow->buffered = 1 << 20;  // the client is not reading
        for (int i = 1; i <= 5; ++i) delivery_->publish("/feed", "t", "{\"i\":" + std::to_string(i) + "}");
        CPPUNIT_ASSERT(waitFor([&] { return fast->framesCopy().size() == 5; }));  // the fast one is not held back
        CPPUNIT_ASSERT(slow->framesCopy().empty());
        std::vector<std::pair<std::string, std::string>> l{{"namespace", "/feed"}, {"topic", "t"}};
        CPPUNIT_ASSERT_EQUAL(3.0, metric("streamfence_messages_dropped_total", l));
        CPPUNIT_ASSERT(waitFor([&] { return metric("streamfence_lane_depth_max", l) == 2.0; }));
        CPPUNIT_ASSERT_EQUAL(14.0, metric("streamfence_lane_bytes_max", l));
        slow->buffered = 0;
        auto h = delivery_->handlerFor("/feed");
        onLoop([&] { h->onDrain(slow); });
        auto f = slow->framesCopy();
        CPPUNIT_ASSERT_EQUAL(size_t(2), f.size());
        CPPUNIT_ASSERT_EQUAL(std::string(R"(42/feed,["t",{"i":4}])"), f[0]);
        CPPUNIT_ASSERT_EQUAL(std::string(R"(42/feed,["t",{"i":5}])"), f[1]);
        CPPUNIT_ASSERT(waitFor([&] { return metric("streamfence_lane_depth_max", l) == 0.0; }));
    }

    void subscribeErrorsAndReplies() {
        config::ServerConfig cfg;
        cfg.namespaces.push_back(nsCfg("/feed", {"t"}));
        auto ws = nsCfg("/ws", {"t"});
        ws.allowPolling = false;
        cfg.namespaces.push_back(ws);
        make(cfg);
        auto a = socket("A", "/feed");
        connect(a);
        event(a, "subscribe", R"({"topic":"nope"})");
        CPPUNIT_ASSERT(a->hasEvent(R"(error:{"code":"UNKNOWN_TOPIC","message":"Unknown topic: nope"})"));
        CPPUNIT_ASSERT_EQUAL(std::string(R"({"ok":false,"code":"UNKNOWN_TOPIC","message":"Unknown topic: nope"})"),
                             event(a, "subscribe", R"({"topic":"nope"})", true));
        size_t errors = a->eventsCopy().size();
        CPPUNIT_ASSERT_EQUAL(size_t(1), errors);  // the ack answered: no second error event
        event(a, "subscribe", R"("t")");
        CPPUNIT_ASSERT(a->hasEvent(R"(error:{"code":"INVALID_PAYLOAD","message":"subscribe payload must be an object"})"));
        event(a, "subscribe", R"({"topic":"  "})");
        CPPUNIT_ASSERT(a->hasEvent(R"(error:{"code":"INVALID_PAYLOAD","message":"topic must be a non-empty string"})"));
        CPPUNIT_ASSERT_EQUAL(std::string(R"({"ok":true})"), event(a, "subscribe", R"({"topic":"t"})", true));
        CPPUNIT_ASSERT(a->hasEvent(R"(subscribed:{"topic":"t"})"));  // confirmation event as well
        event(a, "unsubscribe", R"({"topic":"t"})");
        CPPUNIT_ASSERT(a->hasEvent(R"(unsubscribed:{"topic":"t"})"));
        CPPUNIT_ASSERT(recorder_->has("unsubscribed /feed A t"));

        auto p = socket("P", "/ws");
        p->websocket = false;  // still on polling
        connect(p);
        event(p, "subscribe", R"({"topic":"t"})");
        CPPUNIT_ASSERT(p->hasEvent(R"(error:{"code":"TRANSPORT_REJECTED","message":"Topic requires websocket-capable transport"})"));
        p->websocket = true;
        event(p, "subscribe", R"({"topic":"t"})");
        CPPUNIT_ASSERT(p->hasEvent(R"(subscribed:{"topic":"t"})"));
    }

    void connectAuthAndRateLimit() {
        config::ServerConfig cfg;
        cfg.auth = config::AuthMode::TOKEN;
        cfg.authRateLimit.maxFailures = 2;
        cfg.authRateLimit.windowMs = 60000;
        auto n = nsCfg("/secure", {"t"});
        n.authRequired = true;
        cfg.namespaces.push_back(n);
        cfg.namespaces.push_back(nsCfg("/open", {"t"}));
        make(cfg);
        auto none = socket("N", "/secure", "10.0.0.1:1");
        auto r = connect(none);
        CPPUNIT_ASSERT(!r.first);
        CPPUNIT_ASSERT(r.second.find("\"message\":\"AUTH_REJECTED: Missing token\"") != std::string::npos);
        auto bad = socket("B", "/secure", "10.0.0.1:2");
        bad->authPayload = Value(Obj{{"token", Value("wrong")}});
        r = connect(bad);
        CPPUNIT_ASSERT(r.second.find("AUTH_REJECTED: Invalid token") != std::string::npos);
        // Two failures from 10.0.0.1: limited now, even with a good token.
        auto good = socket("G", "/secure", "10.0.0.1:3");
        good->authPayload = Value(Obj{{"token", Value("good")}});
        r = connect(good);
        CPPUNIT_ASSERT(!r.first);
        CPPUNIT_ASSERT(r.second.find("RATE_LIMITED") != std::string::npos);
        // Another address, token from the Authorization header, then from the query.
        auto hdr = socket("H", "/secure", "10.0.0.2:1");
        hdr->headers["authorization"] = "Bearer good";
        CPPUNIT_ASSERT(connect(hdr).first);
        auto q = socket("Q", "/secure", "[::1]:7");
        q->queries["token"] = "good";
        CPPUNIT_ASSERT(connect(q).first);
        auto open = socket("O", "/open", "10.0.0.1:9");
        CPPUNIT_ASSERT(connect(open).first);  // authRequired false: no token needed
        std::vector<std::pair<std::string, std::string>> l{{"namespace", "/secure"}};
        CPPUNIT_ASSERT_EQUAL(2.0, metric("streamfence_auth_rejected_total", l));
        CPPUNIT_ASSERT_EQUAL(1.0, metric("streamfence_auth_rate_limited_total", l));
        CPPUNIT_ASSERT_EQUAL(2.0, metric("streamfence_connections_total", l));
        CPPUNIT_ASSERT(recorder_->has("auth /secure Invalid token"));
        CPPUNIT_ASSERT(recorder_->has("auth /secure RATE_LIMITED"));
        // Subscribe with a bad payload token: AUTH_REJECTED, the connect token still works.
        event(hdr, "subscribe", R"({"topic":"t","token":"wrong"})");
        CPPUNIT_ASSERT(hdr->hasEvent(R"(error:{"code":"AUTH_REJECTED","message":"Invalid token"})"));
        event(hdr, "subscribe", R"({"topic":"t"})");
        CPPUNIT_ASSERT(hdr->hasEvent(R"(subscribed:{"topic":"t"})"));
    }

    void asyncValidatorAndExpiry() {
        config::ServerConfig cfg;
        cfg.auth = config::AuthMode::TOKEN;
        auto n = nsCfg("/secure", {"t"});
        n.authRequired = true;
        cfg.namespaces.push_back(n);
        make(cfg, /*blockingValidator=*/true);
        // The connect token expires: the socket is told and disconnected.
        auto e = socket("E", "/secure");
        e->authPayload = Value(Obj{{"token", Value("expiring")}});
        CPPUNIT_ASSERT(connect(e).first);
        CPPUNIT_ASSERT(waitFor([&] { return e->disconnected.load(); }, 2000));
        CPPUNIT_ASSERT(e->hasEvent(R"(error:{"code":"AUTH_EXPIRED","message":"Token expired"})"));
        // A payload token that expires ends just the subscription it authorized.
        auto g = socket("G", "/secure", "10.0.0.3:1");
        g->authPayload = Value(Obj{{"token", Value("good")}});
        CPPUNIT_ASSERT(connect(g).first);
        event(g, "subscribe", R"({"topic":"t","token":"expiring"})");
        // Events sent while validation runs are handled after it, in order.
        event(g, "unsubscribe", R"({"topic":"t"})");
        CPPUNIT_ASSERT(waitFor([&] { return g->eventsCopy().size() >= 2; }));
        auto ev = g->eventsCopy();
        CPPUNIT_ASSERT_EQUAL(std::string(R"(subscribed:{"topic":"t"})"), ev[0]);
        CPPUNIT_ASSERT_EQUAL(std::string(R"(unsubscribed:{"topic":"t"})"), ev[1]);
        event(g, "subscribe", R"({"topic":"t","token":"expiring"})");
        CPPUNIT_ASSERT(waitFor([&] { return g->hasEvent(R"(error:{"code":"AUTH_EXPIRED","message":"Token expired for topic: t"})"); }));
        // subscribed, unsubscribed, subscribed, error AUTH_EXPIRED, unsubscribed
        CPPUNIT_ASSERT(waitFor([&] { return g->eventsCopy().size() == 5; }));
        CPPUNIT_ASSERT_EQUAL(std::string(R"(subscribed:{"topic":"t"})"), g->eventsCopy()[2]);
        CPPUNIT_ASSERT_EQUAL(std::string(R"(unsubscribed:{"topic":"t"})"), g->eventsCopy()[4]);
        CPPUNIT_ASSERT(!g->disconnected.load());
        delivery_->publish("/secure", "t", "1");
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        CPPUNIT_ASSERT(g->framesCopy().empty());
        CPPUNIT_ASSERT(gValidations.load() >= 4);
    }

    // MemStorage answers with records larger than this host's sf_record (a plugin of a later
    // minor): SpillStorage must step by their struct_size and read every one whole.
    void spillReadWalksRecordsByStructSize() {
        SpillStorage st(&kMemVt, storage_.get(), "mem");
        SpillKey k{"srv", "/spill", "A", "t"};
        std::atomic<int> appended{0};
        for (int i = 1; i <= 3; ++i) {
            SpillRecord r;
            r.data = "{\"seq\":" + std::to_string(i) + "}";
            r.event = "t";
            r.messageId = "m" + std::to_string(i);
            r.bytes = r.data.size();
            CPPUNIT_ASSERT_EQUAL(SF_OK, st.append(*loop_, k, r, [&](int status, std::vector<SpillRecord>, std::string) {
                if (status == SF_OK) ++appended;
            }));
        }
        CPPUNIT_ASSERT(waitFor([&] { return appended == 3; }));
        std::mutex mu;
        bool done = false;
        int readStatus = 1;
        std::vector<SpillRecord> got;
        CPPUNIT_ASSERT_EQUAL(SF_OK, st.readOldest(*loop_, k, 10, [&](int status, std::vector<SpillRecord> recs, std::string) {
            std::lock_guard<std::mutex> lk(mu);  // runs on the loop: only record, assert below
            readStatus = status;
            got = std::move(recs);
            done = true;
        }));
        CPPUNIT_ASSERT(waitFor([&] { std::lock_guard<std::mutex> lk(mu); return done; }));
        std::lock_guard<std::mutex> lk(mu);
        CPPUNIT_ASSERT_EQUAL(SF_OK, readStatus);
        CPPUNIT_ASSERT_EQUAL(size_t(3), got.size());
        for (int i = 1; i <= 3; ++i) {
            CPPUNIT_ASSERT_EQUAL("{\"seq\":" + std::to_string(i) + "}", got[size_t(i - 1)].data);
            CPPUNIT_ASSERT_EQUAL("m" + std::to_string(i), got[size_t(i - 1)].messageId);
        }
    }

    void spillKeepsFifoAndClears() {
        config::ServerConfig cfg;
        auto n = nsCfg("/spill", {"t"}, "SPILL_TO_DISK");
        n.maxQueuedMessagesPerClient = 1;
        cfg.namespaces.push_back(n);
        make(cfg);
        auto a = socket("A", "/spill");
        connect(a);
        event(a, "subscribe", R"({"topic":"t"})");
        a->buffered = 1 << 20;
        for (int i = 1; i <= 5; ++i) delivery_->publish("/spill", "t", "{\"seq\":" + std::to_string(i) + "}");
        CPPUNIT_ASSERT(waitFor([&] { return storage_->size("/spill|A|t") == 4; }));
        std::vector<std::pair<std::string, std::string>> l{{"namespace", "/spill"}, {"topic", "t"}};
        CPPUNIT_ASSERT_EQUAL(4.0, metric("streamfence_messages_spilled_total", l));
        CPPUNIT_ASSERT_EQUAL(4.0, metric("streamfence_queue_overflow_total", {{"namespace", "/spill"}, {"topic", "t"}, {"reason", "spilled to disk"}}));
        a->buffered = 0;
        auto h = delivery_->handlerFor("/spill");
        onLoop([&] { h->onDrain(a); });
        delivery_->publish("/spill", "t", R"({"seq":6})");  // must not overtake the spilled ones
        CPPUNIT_ASSERT(waitFor([&] { return a->framesCopy().size() == 6; }));
        auto f = a->framesCopy();
        for (int i = 1; i <= 6; ++i)
            CPPUNIT_ASSERT_EQUAL("42/spill,[\"t\",{\"seq\":" + std::to_string(i) + "}]", f[static_cast<size_t>(i - 1)]);
        CPPUNIT_ASSERT(waitFor([&] { return storage_->size("/spill|A|t") == 0; }));
        // Unsubscribe with spilled messages clears the lane's storage.
        a->buffered = 1 << 20;
        for (int i = 7; i <= 9; ++i) delivery_->publish("/spill", "t", "{\"seq\":" + std::to_string(i) + "}");
        CPPUNIT_ASSERT(waitFor([&] { return storage_->size("/spill|A|t") == 2; }));
        event(a, "unsubscribe", R"({"topic":"t"})");
        CPPUNIT_ASSERT(waitFor([&] {
            std::lock_guard<std::mutex> lk(storage_->mu);
            return storage_->lanes.count("/spill|A|t") == 0;
        }));
    }

    void publishToStatusesAndIsolation() {
        config::ServerConfig cfg;
        cfg.namespaces.push_back(nsCfg("/feed", {"snapshot", "other"}));
        make(cfg);
        auto a = socket("A", "/feed"), b = socket("B", "/feed");
        connect(a);
        connect(b);
        event(a, "subscribe", R"({"topic":"snapshot"})");
        event(b, "subscribe", R"({"topic":"snapshot"})");
        CPPUNIT_ASSERT(delivery_->publishTo("/feed", "A", "snapshot", R"({"value":99})") == PublishStatus::Ok);
        CPPUNIT_ASSERT(delivery_->publishTo("/feed", "Z", "snapshot", "1") == PublishStatus::UnknownClient);
        CPPUNIT_ASSERT(delivery_->publishTo("/feed", "A", "other", "1") == PublishStatus::NotSubscribed);
        CPPUNIT_ASSERT(delivery_->publishTo("/feed", "A", "nope", "1") == PublishStatus::UnknownTopic);
        CPPUNIT_ASSERT(waitFor([&] { return a->framesCopy().size() == 1; }));
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        CPPUNIT_ASSERT(b->framesCopy().empty());
        CPPUNIT_ASSERT_EQUAL(1.0, metric("streamfence_messages_published_total", {{"namespace", "/feed"}, {"topic", "snapshot"}}));
        CPPUNIT_ASSERT_EQUAL(0.0, metric("streamfence_messages_published_total", {{"namespace", "/feed"}, {"topic", "other"}}));
        CPPUNIT_ASSERT_EQUAL(std::string("UNKNOWN_CLIENT"), std::string(toString(PublishStatus::UnknownClient)));
    }

    void clientPublishRunsHandlersAndFansOut() {
        config::ServerConfig cfg;
        cfg.namespaces.push_back(nsCfg("/chat", {"room"}));
        make(cfg);
        std::mutex mu;
        std::vector<ClientMessage> got;
        CPPUNIT_ASSERT(delivery_->onMessage("/chat", "room", [&](const ClientMessage& m) {
            std::lock_guard<std::mutex> lk(mu);
            got.push_back(m);
            return HandlerResult{};
        }) == PublishStatus::Ok);
        CPPUNIT_ASSERT(delivery_->onMessage("/chat", "nope", [](const ClientMessage&) { return HandlerResult{}; }) ==
                       PublishStatus::UnknownTopic);
        auto a = socket("A", "/chat"), b = socket("B", "/chat");
        connect(a);
        connect(b);
        event(a, "subscribe", R"({"topic":"room"})");
        event(b, "subscribe", R"({"topic":"room"})");
        CPPUNIT_ASSERT_EQUAL(std::string(R"({"ok":true})"), event(a, "publish", R"({"topic":"room","payload":{"text":"hi"}})", true));
        CPPUNIT_ASSERT(waitFor([&] { return a->framesCopy().size() == 1 && b->framesCopy().size() == 1; }));
        CPPUNIT_ASSERT_EQUAL(std::string(R"(42/chat,["room",{"text":"hi"}])"), b->framesCopy()[0]);
        {
            std::lock_guard<std::mutex> lk(mu);
            CPPUNIT_ASSERT_EQUAL(size_t(1), got.size());
            CPPUNIT_ASSERT_EQUAL(std::string("A"), got[0].clientId);
            CPPUNIT_ASSERT_EQUAL(std::string(R"({"text":"hi"})"), got[0].payloadJson);
        }
        std::vector<std::pair<std::string, std::string>> l{{"namespace", "/chat"}, {"topic", "room"}};
        CPPUNIT_ASSERT_EQUAL(1.0, metric("streamfence_messages_received_total", l));
        CPPUNIT_ASSERT_EQUAL(13.0, metric("streamfence_messages_received_bytes_total", l));
        CPPUNIT_ASSERT_EQUAL(1.0, metric("streamfence_messages_published_total", l));
        CPPUNIT_ASSERT(recorder_->has("accepted /chat room A"));
        event(a, "publish", R"({"topic":"nope","payload":1})");
        CPPUNIT_ASSERT(a->hasEvent(R"(error:{"code":"UNKNOWN_TOPIC","message":"Unknown topic: nope"})"));
        CPPUNIT_ASSERT(recorder_->has("rejected /chat nope A UNKNOWN_TOPIC"));
        event(a, "publish", R"({"topic":"room"})");
        CPPUNIT_ASSERT(a->hasEvent(R"(error:{"code":"INVALID_PAYLOAD","message":"payload is required"})"));
        CPPUNIT_ASSERT_EQUAL(1.0, metric("streamfence_messages_received_total", l));
    }

    void disconnectCountsAndCleans() {
        config::ServerConfig cfg;
        auto n = nsCfg("/spill", {"t"}, "SPILL_TO_DISK");
        n.maxQueuedMessagesPerClient = 1;
        cfg.namespaces.push_back(n);
        make(cfg);
        auto a = socket("A", "/spill");
        connect(a);
        event(a, "subscribe", R"({"topic":"t"})");
        CPPUNIT_ASSERT_EQUAL(size_t(1), delivery_->connectedClients());
        a->buffered = 1 << 20;
        for (int i = 1; i <= 3; ++i) delivery_->publish("/spill", "t", std::to_string(i));
        CPPUNIT_ASSERT(waitFor([&] { return storage_->size("/spill|A|t") == 2; }));
        onLoop([&] { a->disconnect(); });
        CPPUNIT_ASSERT(waitFor([&] {
            std::lock_guard<std::mutex> lk(storage_->mu);
            return storage_->lanes.count("/spill|A|t") == 0;
        }));
        std::vector<std::pair<std::string, std::string>> l{{"namespace", "/spill"}};
        CPPUNIT_ASSERT_EQUAL(1.0, metric("streamfence_connections_total", l));
        CPPUNIT_ASSERT_EQUAL(1.0, metric("streamfence_disconnections_total", l));
        CPPUNIT_ASSERT_EQUAL(0.0, metric("streamfence_connections_active", l));
        CPPUNIT_ASSERT_EQUAL(size_t(0), delivery_->connectedClients());
        CPPUNIT_ASSERT(recorder_->has("disconnected /spill A"));
        CPPUNIT_ASSERT(delivery_->publishTo("/spill", "A", "t", "1") == PublishStatus::UnknownClient);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DeliveryEngineTest);
