// The dashboard snapshot plumbing (docs/dashboard.md): lane depth buckets, the StatsHub that
// takes at most one snapshot a second and shares it, caps streams and wakes them on stop,
// and the JSON writer (valid JSON, rates, escaping, optional parts).
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "admin/stats_hub.hpp"
#include "admin/stats_snapshot.hpp"
#include "common/json.hpp"

using namespace sf;
using namespace std::chrono_literals;

namespace {
admin::StatsSnapshot oneTopic(uint64_t published, uint64_t delivered) {
    admin::StatsSnapshot s;
    s.server = "t";
    admin::TopicCounters t;
    t.ns = "/feed";
    t.topic = "prices";
    t.published = published;
    s.topics.push_back(t);
    s.delivery.topics.push_back({"/feed", "prices", 1, delivered, 0, 0});
    return s;
}
json::Value parse(const std::string& text) {
    json::Value v;
    std::string err;
    CPPUNIT_ASSERT_MESSAGE(err + ": " + text, json::tryParse(text, v, err));
    return v;
}
}  // namespace

class AdminStatsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(AdminStatsTest);
    CPPUNIT_TEST(depthBuckets);
    CPPUNIT_TEST(oneSnapshotASecondShared);
    CPPUNIT_TEST(nextWaitsForANewerSnapshotAndStopWakes);
    CPPUNIT_TEST(streamsAreCapped);
    CPPUNIT_TEST(jsonRatesEscapingAndOptionalParts);
    CPPUNIT_TEST_SUITE_END();

public:
    void depthBuckets() {
        using D = delivery::DeliveryStats;
        const std::pair<uint64_t, size_t> cases[] = {{0, 0},    {1, 1},     {10, 1},     {11, 2},      {100, 2},
                                                     {101, 3},  {1000, 3},  {1001, 4},   {10000, 4},   {10001, 5},
                                                     {1u << 30, 5}};
        for (auto [depth, bucket] : cases) CPPUNIT_ASSERT_EQUAL_MESSAGE(std::to_string(depth), bucket, D::bucketOf(depth));
        CPPUNIT_ASSERT_EQUAL(std::string("11-100"), std::string(D::bucketLabels()[2]));
    }

    void oneSnapshotASecondShared() {
        std::atomic<int> calls{0};
        admin::StatsHub hub([&] {
            ++calls;
            std::this_thread::sleep_for(50ms);  // viewers arriving meanwhile wait and share it
            return oneTopic(0, 0);
        });
        std::vector<std::thread> ts;
        std::vector<uint64_t> versions(8);
        for (size_t i = 0; i < versions.size(); ++i) ts.emplace_back([&, i] { versions[i] = hub.current().version; });
        for (auto& t : ts) t.join();
        CPPUNIT_ASSERT_EQUAL(1, calls.load());
        for (auto v : versions) CPPUNIT_ASSERT_EQUAL(uint64_t(1), v);
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), hub.current().version);  // still fresh
        std::this_thread::sleep_for(1050ms);
        CPPUNIT_ASSERT_EQUAL(uint64_t(2), hub.current().version);
        CPPUNIT_ASSERT_EQUAL(2, calls.load());
    }

    void nextWaitsForANewerSnapshotAndStopWakes() {
        uint64_t n = 0;
        admin::StatsHub hub([&] { ++n; return oneTopic(n * 10, n * 100); });
        auto first = hub.next(0);
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), first.version);
        const auto t0 = std::chrono::steady_clock::now();
        auto second = hub.next(first.version);
        const auto waited = std::chrono::steady_clock::now() - t0;
        CPPUNIT_ASSERT_EQUAL(uint64_t(2), second.version);
        CPPUNIT_ASSERT_MESSAGE("waited for the interval", waited >= 900ms && waited < 1500ms);
        // 10 publishes and 100 deliveries in about a second.
        json::Value v = parse(*second.json);
        const json::Value& topic = v.find("topics")->asArray()[0];
        CPPUNIT_ASSERT(topic.find("publishRate")->asNumber() > 5 && topic.find("publishRate")->asNumber() < 12);
        CPPUNIT_ASSERT(topic.find("deliveryRate")->asNumber() > 50 && topic.find("deliveryRate")->asNumber() < 120);

        std::thread waiter;
        admin::StatsHub::View last{};
        waiter = std::thread([&] { last = hub.next(second.version); });
        std::this_thread::sleep_for(100ms);
        const auto t1 = std::chrono::steady_clock::now();
        hub.stop();
        waiter.join();
        CPPUNIT_ASSERT(!last.json);
        CPPUNIT_ASSERT(std::chrono::steady_clock::now() - t1 < 500ms);
        CPPUNIT_ASSERT(!hub.current().json);
    }

    void streamsAreCapped() {
        admin::StatsHub hub([] { return oneTopic(0, 0); });
        CPPUNIT_ASSERT(hub.openStream(2));
        CPPUNIT_ASSERT(hub.openStream(2));
        CPPUNIT_ASSERT(!hub.openStream(2));
        hub.closeStream();
        CPPUNIT_ASSERT(hub.openStream(2));
        CPPUNIT_ASSERT_EQUAL(size_t(2), hub.streams());
        CPPUNIT_ASSERT(!hub.openStream(0));
        hub.stop();
        hub.closeStream();
        CPPUNIT_ASSERT(!hub.openStream(2));  // stopping: no new streams
    }

    void jsonRatesEscapingAndOptionalParts() {
        admin::StatsSnapshot s = oneTopic(7, 70);
        s.topics[0].overflowAction = "REJECT_NEW";
        s.topics[0].overflowByReason["queue \"full\"\n"] = 3;
        s.delivery.deepest.push_back({"id\\1", "/feed", "prices", 64, 128000, 0, 0, 1500});
        s.delivery.depthHistogram[2] = 1;
        std::string text = admin::toJson(s, {{1.5, -2}});
        json::Value v = parse(text);
        const json::Value& topic = v.find("topics")->asArray()[0];
        CPPUNIT_ASSERT_EQUAL(1.5, topic.find("publishRate")->asNumber());
        CPPUNIT_ASSERT_EQUAL(0.0, topic.find("deliveryRate")->asNumber());  // never negative
        CPPUNIT_ASSERT_EQUAL(int64_t(70), topic.find("delivered")->asInt());
        CPPUNIT_ASSERT_EQUAL(int64_t(3), topic.find("overflow")->find("queue \"full\"\n")->asInt());
        const json::Value& o = v.find("overflow")->asArray()[0];
        CPPUNIT_ASSERT_EQUAL(std::string("REJECT_NEW"), o.find("policy")->asString());
        const json::Value& deep = v.find("lanes")->find("deepest")->asArray()[0];
        CPPUNIT_ASSERT_EQUAL(std::string("id\\1"), deep.find("clientId")->asString());
        CPPUNIT_ASSERT_EQUAL(int64_t(1500), deep.find("oldestAgeMs")->asInt());
        CPPUNIT_ASSERT_EQUAL(size_t(6), v.find("lanes")->find("depthHistogram")->asArray().size());
        CPPUNIT_ASSERT(v.find("detachedSessions")->isNull());
        CPPUNIT_ASSERT(v.find("cluster")->isNull());
        CPPUNIT_ASSERT(!v.find("tls")->find("subject"));

        s.detached = admin::DetachedSessions{2, 10, 1000, 500, 1, 0};
        s.cluster = admin::ClusterInfo{"n1", {{"n1", "10.0.0.1:3000", "up", 0, true}, {"n2", "10.0.0.2:3000", "suspect", 4000, false}}};
        v = parse(admin::toJson(s, {}));
        CPPUNIT_ASSERT_EQUAL(int64_t(2), v.find("detachedSessions")->find("sessions")->asInt());
        CPPUNIT_ASSERT_EQUAL(size_t(2), v.find("cluster")->find("nodes")->asArray().size());
        CPPUNIT_ASSERT_EQUAL(std::string("suspect"), v.find("cluster")->find("nodes")->asArray()[1].find("state")->asString());
        CPPUNIT_ASSERT_EQUAL(0.0, v.find("topics")->asArray()[0].find("publishRate")->asNumber());  // no rates given
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(AdminStatsTest);
