// The bounded publish path (docs/message-path.md): the TopicLog a publish appends to once,
// refusals when a lossless log is full, and the batch forms of the shipped overflow-policy
// plugins, which must decide a run of messages exactly as the same plugin asked message by
// message would (same frames to every client, same overflow counts).
#include <cppunit/extensions/HelperMacros.h>

#include <filesystem>
#include <future>
#include <random>

#include "delivery/delivery.hpp"
#include "delivery/topic_log.hpp"
#include "delivery_fakes.hpp"
#include "net/event_loop.hpp"
#include "plugins/registry.hpp"

using namespace sf;
using namespace sf::delivery;
using namespace sf::testing;

namespace {

MessagePtr msg(const std::string& payload) { return makeMessage("/n", "t", payload, "t", "m", false); }

// A Delivery on one loop thread whose loop the test can hold, so that every publish made
// while it is held reaches the lanes as one run.
struct Rig {
    net::EventLoop loop{"overload-test"};
    Metrics metrics;
    std::unique_ptr<Delivery> delivery;
    std::vector<FakePtr> sockets;
    std::promise<void> release;
    bool held = false;

    Rig() { loop.start(); }
    ~Rig() {
        if (held) release.set_value();
        if (delivery) delivery->shutdown();
        sockets.clear();
        delivery.reset();
        loop.stop();
        loop.join();
    }
    void make(const config::ServerConfig& cfg, std::function<std::unique_ptr<OverflowPolicy>()> policy,
              DeliveryOptions opts = {}) {
        PluginResolver r;
        r.makePolicy = [policy](const config::NamespaceConfig&) { return policy(); };
        delivery = std::make_unique<Delivery>(cfg, r, metrics, std::vector<net::EventLoop*>{&loop}, opts);
    }
    void onLoop(const std::function<void()>& f) {
        std::promise<void> p;
        loop.post([&] {
            f();
            p.set_value();
        });
        p.get_future().wait();
    }
    FakePtr subscriber(const std::string& id, const std::string& ns, const std::string& topic) {
        auto s = std::make_shared<FakeSocket>(loop, id, ns);
        s->self = s;
        auto h = delivery->handlerFor(ns);
        s->handler = h.get();
        sockets.push_back(s);
        onLoop([&] {
            h->onConnect(s, [](bool, json::Value) {});
            sio::Args args{json::parse("{\"topic\":\"" + topic + "\"}")};
            h->onEvent(s, "subscribe", args, nullptr);
        });
        return s;
    }
    void hold() {
        release = std::promise<void>();
        auto f = release.get_future().share();
        loop.post([f] { f.wait(); });
        held = true;
    }
    void resume() {
        release.set_value();
        held = false;
        onLoop([] {});  // the run has been written
    }
    void drain(const FakePtr& s) {
        auto h = delivery->handlerFor(s->nsp());
        onLoop([&] { h->onDrain(s); });
    }
    double metric(const std::string& name, const std::string& reason = "") {
        double v = 0;
        for (auto& m : metrics.snapshot()) {
            if (m.name != name) continue;
            bool match = reason.empty();
            for (auto& l : m.labels)
                if (l.first == "reason" && l.second == reason) match = true;
            if (match) v += m.value;
        }
        return v;
    }
};

std::string shippedPluginDir() { return std::string(SF_TEST_BINARY_DIR) + "/plugins"; }

// The shipped plugin, with its batch form (batch=true) or with the batch bits masked so the
// host must ask it message by message (batch=false).
std::function<std::unique_ptr<OverflowPolicy>()> shippedPolicy(const std::shared_ptr<plugins::Registry>& reg,
                                                               const std::string& name, bool batch) {
    return [reg, name, batch] {
        auto inst = reg->instantiate(SF_KIND_OVERFLOW_POLICY, name, config::PluginOptions{}, "test");
        auto vt = std::make_shared<sf_overflow_policy_vtable>(*inst->vtable<sf_overflow_policy_vtable>());
        if (!batch) vt->when &= ~SF_POLICY_BATCH_MASK;
        auto keep = std::make_shared<std::pair<plugins::PluginInstancePtr, std::shared_ptr<sf_overflow_policy_vtable>>>(inst, vt);
        return std::make_unique<OverflowPolicy>(vt.get(), inst->handle(), name, keep);
    };
}

// The shipped plugins, loaded once per test.
std::shared_ptr<plugins::Registry> shippedRegistry() {
    auto reg = std::make_shared<plugins::Registry>();
    reg->loadDirectory(shippedPluginDir());
    return reg;
}

// One server "test" with namespace n.
config::ServerConfig serverWith(config::NamespaceConfig n) {
    config::ServerConfig cfg;
    cfg.name = "test";
    cfg.namespaces.push_back(std::move(n));
    return cfg;
}

config::NamespaceConfig nsOf(const std::string& path, const std::string& action = "REJECT_NEW") {
    config::NamespaceConfig n;
    n.path = path;
    n.topics = {"t"};
    n.overflowAction = action;
    return n;
}

struct Outcome {
    std::vector<std::vector<std::string>> frames;  // per subscriber
    double dropped = 0, overflow = 0, coalesced = 0;
};

// One seeded scenario: a fast subscriber, one that stalls and resumes, one stalled until the
// end; runs of 1..40 messages of 8..160 bytes; limits 8 messages / 600 bytes.
Outcome runScenario(const std::function<std::unique_ptr<OverflowPolicy>()>& policy, const std::string& action,
                    unsigned seed, bool equalSizes) {
    Rig rig;
    auto n = nsOf("/feed", action);
    n.maxQueuedMessagesPerClient = 8;
    n.maxQueuedBytesPerClient = 600;
    rig.make(serverWith(n), policy);
    auto fast = rig.subscriber("F", "/feed", "t");
    auto flaky = rig.subscriber("B", "/feed", "t");
    auto stalled = rig.subscriber("C", "/feed", "t");
    stalled->buffered = 1 << 20;
    std::mt19937 rng(seed);
    int seq = 0;
    for (int step = 0; step < 60; ++step) {
        if (rng() % 4 == 0) {
            bool stall = rng() % 2;
            flaky->buffered = stall ? (1 << 20) : 0;
            if (!stall) rig.drain(flaky);
            continue;
        }
        rig.hold();
        const int k = 1 + int(rng() % 40);
        for (int i = 0; i < k; ++i) {
            size_t pad = equalSizes ? 40 : 8 + rng() % 152;
            rig.delivery->publish("/feed", "t", "{\"s\":" + std::to_string(++seq) + ",\"p\":\"" + std::string(pad, 'x') + "\"}");
        }
        rig.resume();
    }
    flaky->buffered = 0;
    stalled->buffered = 0;
    rig.drain(flaky);
    rig.drain(stalled);
    Outcome o;
    for (auto& s : {fast, flaky, stalled}) o.frames.push_back(s->framesCopy());
    o.dropped = rig.metric("streamfence_messages_dropped_total");
    o.overflow = rig.metric("streamfence_queue_overflow_total");
    o.coalesced = rig.metric("streamfence_messages_coalesced_total");
    return o;
}

}  // namespace

class DeliveryOverloadTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DeliveryOverloadTest);
    CPPUNIT_TEST(losslessLogRefusesWhenFullAndKeepsNothing);
    CPPUNIT_TEST(lossyLogDropsOldestAndReportsWhatALoopMissed);
    CPPUNIT_TEST(logWakesEachLoopOnceAndHoldsOnlyWhatIsUnread);
    CPPUNIT_TEST(batchFormsDecideLikeThePluginMessageByMessage);
    CPPUNIT_TEST(overloadedPublishIsRefusedAndNothingAcceptedIsLost);
    CPPUNIT_TEST(clientPublishIsAnsweredOverloaded);
    CPPUNIT_TEST(publishToHandOffIsBounded);
    CPPUNIT_TEST(shutdownRefusesPublishesAndCountsWhatItDrops);
    CPPUNIT_TEST_SUITE_END();

public:
    void losslessLogRefusesWhenFullAndKeepsNothing() {
        TopicLogLimits l;
        l.maxMessages = 3;
        l.maxBytes = 1000;
        l.lossless = true;
        TopicLog log(l, 2);
        log.activate(0);
        std::vector<size_t> wake;
        uint64_t off = 0;
        for (int i = 1; i <= 3; ++i) CPPUNIT_ASSERT(log.append(msg(std::to_string(i)), &off, wake));
        CPPUNIT_ASSERT_EQUAL(uint64_t(3), off);
        CPPUNIT_ASSERT(!log.append(msg("4"), &off, wake));  // full: refused, not queued
        CPPUNIT_ASSERT_EQUAL(size_t(3), log.size());
        std::vector<TopicLog::Entry> got;
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), log.drain(0, got));
        CPPUNIT_ASSERT_EQUAL(size_t(3), got.size());
        CPPUNIT_ASSERT_EQUAL(std::string("1"), got[0].msg->payload);
        CPPUNIT_ASSERT_EQUAL(size_t(0), log.size());  // read by every active loop: freed
        CPPUNIT_ASSERT(log.append(msg("4"), &off, wake));
        CPPUNIT_ASSERT_EQUAL(uint64_t(4), off);  // the refused one consumed no offset
        // The byte bound refuses too.
        TopicLog small(TopicLogLimits{100, 10, true}, 1);
        small.activate(0);
        CPPUNIT_ASSERT(small.append(msg("123456"), &off, wake));
        CPPUNIT_ASSERT(!small.append(msg("12345"), &off, wake));
    }

    void lossyLogDropsOldestAndReportsWhatALoopMissed() {
        TopicLog log(TopicLogLimits{3, 1000, false}, 2);
        log.activate(0);
        log.activate(1);
        std::vector<size_t> wake;
        uint64_t off = 0;
        for (int i = 1; i <= 5; ++i) CPPUNIT_ASSERT(log.append(msg(std::to_string(i)), &off, wake));
        CPPUNIT_ASSERT_EQUAL(size_t(3), log.size());
        std::vector<TopicLog::Entry> got;
        CPPUNIT_ASSERT_EQUAL(uint64_t(2), log.drain(0, got));  // 1 and 2 were gone before loop 0 read
        CPPUNIT_ASSERT_EQUAL(size_t(3), got.size());
        CPPUNIT_ASSERT_EQUAL(uint64_t(3), got[0].offset);
        CPPUNIT_ASSERT_EQUAL(size_t(3), log.size());  // loop 1 has not read them yet
        got.clear();
        CPPUNIT_ASSERT_EQUAL(uint64_t(2), log.drain(1, got));
        CPPUNIT_ASSERT_EQUAL(size_t(0), log.size());
    }

    void logWakesEachLoopOnceAndHoldsOnlyWhatIsUnread() {
        TopicLog log(TopicLogLimits{100, 100000, true}, 3);
        std::vector<size_t> wake;
        uint64_t off = 0;
        CPPUNIT_ASSERT(log.append(msg("1"), &off, wake));  // nobody subscribed: kept nowhere
        CPPUNIT_ASSERT(wake.empty());
        CPPUNIT_ASSERT_EQUAL(size_t(0), log.size());
        log.activate(0);
        log.activate(2);
        for (int i = 0; i < 10; ++i) CPPUNIT_ASSERT(log.append(msg("x"), &off, wake));
        CPPUNIT_ASSERT_EQUAL(size_t(2), wake.size());  // one drain per loop, not one per publish
        CPPUNIT_ASSERT_EQUAL(size_t(0), wake[0]);
        CPPUNIT_ASSERT_EQUAL(size_t(2), wake[1]);
        std::vector<TopicLog::Entry> got;
        log.drain(0, got);
        CPPUNIT_ASSERT_EQUAL(size_t(10), got.size());
        CPPUNIT_ASSERT_EQUAL(size_t(10), log.size());  // loop 2 still behind
        log.deactivate(2);                               // ... until it has no subscriber left
        CPPUNIT_ASSERT_EQUAL(size_t(0), log.size());
        wake.clear();
        CPPUNIT_ASSERT(log.append(msg("y"), &off, wake));
        CPPUNIT_ASSERT_EQUAL(size_t(1), wake.size());  // loop 0 drained, so it is woken again
    }

    // The shipped DROP_OLDEST, REJECT_NEW and SNAPSHOT_ONLY plugins, through their batch form
    // and message by message, over the same seeded runs: the same frames reach every client
    // and the same overflow is counted. (The dropped counter is compared with equal-size
    // messages: with mixed sizes one enqueue may drop several, and the batch form counts
    // dropped messages, capped by the run's new ones.)
    void batchFormsDecideLikeThePluginMessageByMessage() {
        CPPUNIT_ASSERT_MESSAGE("shipped plugins not built in " + shippedPluginDir(),
                               std::filesystem::exists(shippedPluginDir()));
        auto reg = shippedRegistry();
        for (const char* name : {"DROP_OLDEST", "REJECT_NEW", "SNAPSHOT_ONLY"}) {
            CPPUNIT_ASSERT_MESSAGE(std::string("plugin missing: ") + name, reg->has(SF_KIND_OVERFLOW_POLICY, name));
            auto probe = reg->instantiate(SF_KIND_OVERFLOW_POLICY, name, config::PluginOptions{}, "probe");
            CPPUNIT_ASSERT_MESSAGE(std::string(name) + " declares no batch form",
                                   (probe->vtable<sf_overflow_policy_vtable>()->when & SF_POLICY_BATCH_MASK) != 0);
            for (unsigned seed = 1; seed <= 6; ++seed) {
                for (bool equal : {false, true}) {
                    Outcome batch = runScenario(shippedPolicy(reg, name, true), name, seed, equal);
                    Outcome each = runScenario(shippedPolicy(reg, name, false), name, seed, equal);
                    const std::string what = std::string(name) + " seed " + std::to_string(seed) + (equal ? " equal sizes" : " mixed sizes");
                    for (size_t s = 0; s < batch.frames.size(); ++s)
                        CPPUNIT_ASSERT_MESSAGE(what + ": frames of subscriber " + std::to_string(s) + " differ (" +
                                                   std::to_string(batch.frames[s].size()) + " vs " +
                                                   std::to_string(each.frames[s].size()) + ")",
                                               batch.frames[s] == each.frames[s]);
                    CPPUNIT_ASSERT_EQUAL_MESSAGE(what + ": overflow", each.overflow, batch.overflow);
                    if (equal) CPPUNIT_ASSERT_EQUAL_MESSAGE(what + ": dropped", each.dropped, batch.dropped);
                    CPPUNIT_ASSERT_MESSAGE(what + ": the stalled client must have lost something",
                                           batch.frames[2].size() < batch.frames[0].size());
                }
            }
        }
    }

    // AT_LEAST_ONCE with a tiny topic log and the loop held: publishes beyond the bound are
    // refused (Overloaded, counted), and every accepted one reaches the subscriber in order.
    void overloadedPublishIsRefusedAndNothingAcceptedIsLost() {
        Rig rig;
        auto n = nsOf("/rel");
        n.deliveryMode = config::DeliveryMode::AT_LEAST_ONCE;
        n.maxRetries = 1;
        n.ackTimeoutMs = 60000;
        n.maxInFlight = 100;
        n.maxQueuedMessagesPerClient = 100;
        n.maxBufferedMessagesPerTopic = 100;
        rig.make(serverWith(n), shippedPolicy(shippedRegistry(), "REJECT_NEW", true));
        auto a = rig.subscriber("A", "/rel", "t");
        rig.hold();
        std::vector<int> accepted;
        int refused = 0;
        for (int i = 1; i <= 150; ++i) {
            PublishStatus st = rig.delivery->publish("/rel", "t", std::to_string(i));
            if (st == PublishStatus::Ok) accepted.push_back(i);
            else if (st == PublishStatus::Overloaded) ++refused;
            else CPPUNIT_FAIL(std::string("unexpected status ") + toString(st));
        }
        CPPUNIT_ASSERT_EQUAL(size_t(100), accepted.size());
        CPPUNIT_ASSERT_EQUAL(50, refused);
        CPPUNIT_ASSERT_EQUAL(50.0, rig.metric("streamfence_publish_refused_total"));
        CPPUNIT_ASSERT_EQUAL(100.0, rig.metric("streamfence_messages_published_total"));
        rig.resume();
        // Room again: accepted.
        CPPUNIT_ASSERT(rig.delivery->publish("/rel", "t", "151") == PublishStatus::Ok);
        accepted.push_back(151);
        rig.onLoop([] {});  // its drain task was posted before this one
        CPPUNIT_ASSERT(waitFor([&] { return a->framesCopy().size() == 100; }));  // maxInFlight 100 and lane 100
        auto f = a->framesCopy();
        for (size_t i = 0; i < f.size(); ++i)
            CPPUNIT_ASSERT(f[i].find("[\"t\"," + std::to_string(accepted[i]) + ",") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(1.0, rig.metric("streamfence_queue_overflow_total"));  // 151: the lane is full of unacked ones
    }

    // A client's publish events handled in one loop turn, before the loop drains the log: the
    // ones the log cannot take are answered {ok:false, code:"OVERLOADED"}.
    void clientPublishIsAnsweredOverloaded() {
        Rig rig;
        auto n = nsOf("/feed");
        n.maxBufferedMessagesPerTopic = 4;  // REJECT_NEW: lossless
        rig.make(serverWith(n), shippedPolicy(shippedRegistry(), "REJECT_NEW", true));
        auto sub = rig.subscriber("S", "/feed", "t");
        auto pub = rig.subscriber("P", "/feed", "t");
        auto h = rig.delivery->handlerFor("/feed");
        std::vector<std::string> answers;
        rig.onLoop([&] {
            for (int i = 0; i < 10; ++i) {
                sio::Args args{json::parse("{\"topic\":\"t\",\"payload\":" + std::to_string(i) + "}")};
                h->onEvent(pub, "publish", args, [&answers](sio::Args a) { answers.push_back(a.at(0).dump()); });
            }
        });
        CPPUNIT_ASSERT_EQUAL(size_t(10), answers.size());
        size_t ok = 0, over = 0;
        for (auto& a : answers) {
            if (a == R"({"ok":true})") ++ok;
            else if (a.find(R"("code":"OVERLOADED")") != std::string::npos && a.find(R"("ok":false)") != std::string::npos) ++over;
        }
        CPPUNIT_ASSERT_EQUAL(size_t(4), ok);
        CPPUNIT_ASSERT_EQUAL(size_t(6), over);
        CPPUNIT_ASSERT(waitFor([&] { return sub->framesCopy().size() == 4; }));
        CPPUNIT_ASSERT_EQUAL(6.0, rig.metric("streamfence_publish_refused_total"));
    }

    void publishToHandOffIsBounded() {
        Rig rig;
        DeliveryOptions opts;
        opts.maxDirectPerLoop = 10;
        rig.make(serverWith(nsOf("/feed")), shippedPolicy(shippedRegistry(), "DROP_OLDEST", true), opts);
        auto a = rig.subscriber("A", "/feed", "t");
        rig.hold();
        int ok = 0, over = 0;
        for (int i = 0; i < 15; ++i) {
            PublishStatus st = rig.delivery->publishTo("/feed", "A", "t", std::to_string(i));
            (st == PublishStatus::Ok ? ok : over)++;
        }
        CPPUNIT_ASSERT_EQUAL(10, ok);
        CPPUNIT_ASSERT_EQUAL(5, over);
        rig.resume();
        CPPUNIT_ASSERT(rig.delivery->publishTo("/feed", "A", "t", "15") == PublishStatus::Ok);  // drained: room again
    }

    void shutdownRefusesPublishesAndCountsWhatItDrops() {
        Rig rig;
        auto n = nsOf("/feed");
        n.maxQueuedMessagesPerClient = 50;
        rig.make(serverWith(n), shippedPolicy(shippedRegistry(), "DROP_OLDEST", true));
        auto a = rig.subscriber("A", "/feed", "t");
        a->buffered = 1 << 20;  // never reads: its lane cannot drain
        for (int i = 0; i < 30; ++i) rig.delivery->publish("/feed", "t", std::to_string(i));
        rig.onLoop([] {});
        auto t0 = std::chrono::steady_clock::now();
        rig.delivery->shutdown(200);
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        CPPUNIT_ASSERT_MESSAGE("shutdown took " + std::to_string(ms) + " ms", ms >= 150 && ms < 1500);  // waited for the drain, bounded
        CPPUNIT_ASSERT(rig.delivery->publish("/feed", "t", "\"late\"") == PublishStatus::Stopping);
        CPPUNIT_ASSERT_EQUAL(1.0, rig.metric("streamfence_publish_refused_total"));
        CPPUNIT_ASSERT(a->framesCopy().empty());
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DeliveryOverloadTest);
