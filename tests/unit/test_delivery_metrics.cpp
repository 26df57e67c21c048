// The metrics registry: the 14 streamfence-js counter names with their labels, our gauges,
// values after a known sequence, merge of per-loop lane gauges, thread safety.
#include <cppunit/extensions/HelperMacros.h>

#include <set>
#include <thread>

#include "delivery/metrics.hpp"

using namespace sf::delivery;
using Labels = std::vector<std::pair<std::string, std::string>>;

namespace {
const sf::MetricSample* find(const sf::MetricSnapshot& s, const std::string& name, const Labels& labels) {
    for (auto& m : s)
        if (m.name == name && m.labels == labels) return &m;
    return nullptr;
}
}  // namespace

class DeliveryMetricsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DeliveryMetricsTest);
    CPPUNIT_TEST(namesAndLabels);
    CPPUNIT_TEST(valuesAfterKnownSequence);
    CPPUNIT_TEST(overflowListedBeforeFirstOverflow);
    CPPUNIT_TEST(laneGaugesMergeMaxOverLoops);
    CPPUNIT_TEST(concurrentRecording);
    CPPUNIT_TEST_SUITE_END();

public:
    void namesAndLabels() {
        const std::vector<std::string> expected = {
            "streamfence_connections_total", "streamfence_disconnections_total", "streamfence_messages_published_total",
            "streamfence_messages_published_bytes_total", "streamfence_messages_received_total",
            "streamfence_messages_received_bytes_total", "streamfence_queue_overflow_total", "streamfence_retries_total",
            "streamfence_retries_exhausted_total", "streamfence_messages_dropped_total", "streamfence_messages_coalesced_total",
            "streamfence_messages_spilled_total", "streamfence_auth_rejected_total", "streamfence_auth_rate_limited_total"};
        CPPUNIT_ASSERT(expected == Metrics::counterNames());

        Metrics m;
        m.ns("/feed");
        m.topic("/feed", "snapshot").overflow("queue full with REJECT_NEW");
        auto s = m.snapshot();
        std::set<std::string> names;
        for (auto& x : s) {
            names.insert(x.name);
            CPPUNIT_ASSERT(!x.help.empty());
        }
        for (auto& n : expected) CPPUNIT_ASSERT_MESSAGE(n, names.count(n));
        for (auto n : {"streamfence_connections_active", "streamfence_lane_depth_max", "streamfence_lane_bytes_max", "streamfence_inflight"})
            CPPUNIT_ASSERT_MESSAGE(n, names.count(n));
        Labels nsL{{"namespace", "/feed"}}, tL{{"namespace", "/feed"}, {"topic", "snapshot"}};
        auto* c = find(s, "streamfence_connections_total", nsL);
        CPPUNIT_ASSERT(c && c->type == sf::MetricSample::Type::Counter);
        CPPUNIT_ASSERT(find(s, "streamfence_auth_rate_limited_total", nsL));
        auto* g = find(s, "streamfence_connections_active", nsL);
        CPPUNIT_ASSERT(g && g->type == sf::MetricSample::Type::Gauge);
        CPPUNIT_ASSERT(find(s, "streamfence_messages_published_total", tL));
        CPPUNIT_ASSERT(find(s, "streamfence_inflight", tL));
        Labels oL{{"namespace", "/feed"}, {"topic", "snapshot"}, {"reason", "queue full with REJECT_NEW"}};
        auto* o = find(s, "streamfence_queue_overflow_total", oL);
        CPPUNIT_ASSERT(o && o->value == 1.0);
        // Grouped by name (text sinks write HELP/TYPE once per family).
        for (size_t i = 1; i < s.size(); ++i) CPPUNIT_ASSERT(s[i - 1].name <= s[i].name);
    }

    void valuesAfterKnownSequence() {
        Metrics m;
        auto& t = m.topic("/a", "x");
        auto& n = m.ns("/a");
        CPPUNIT_ASSERT_EQUAL(&t, &m.topic("/a", "x"));  // stable handle
        t.published += 3;
        t.publishedBytes += 21;
        t.retries += 2;
        t.retriesExhausted += 1;
        t.spilled += 4;
        t.overflow("spilled to disk");
        t.overflow("spilled to disk");
        t.inflight += 2;
        n.connections += 5;
        n.active += 5;
        n.active -= 2;
        auto s = m.snapshot();
        Labels tl{{"namespace", "/a"}, {"topic", "x"}}, nl{{"namespace", "/a"}};
        CPPUNIT_ASSERT_EQUAL(3.0, find(s, "streamfence_messages_published_total", tl)->value);
        CPPUNIT_ASSERT_EQUAL(21.0, find(s, "streamfence_messages_published_bytes_total", tl)->value);
        CPPUNIT_ASSERT_EQUAL(2.0, find(s, "streamfence_retries_total", tl)->value);
        CPPUNIT_ASSERT_EQUAL(1.0, find(s, "streamfence_retries_exhausted_total", tl)->value);
        CPPUNIT_ASSERT_EQUAL(4.0, find(s, "streamfence_messages_spilled_total", tl)->value);
        CPPUNIT_ASSERT_EQUAL(0.0, find(s, "streamfence_messages_dropped_total", tl)->value);
        CPPUNIT_ASSERT_EQUAL(2.0, find(s, "streamfence_inflight", tl)->value);
        CPPUNIT_ASSERT_EQUAL(5.0, find(s, "streamfence_connections_total", nl)->value);
        CPPUNIT_ASSERT_EQUAL(3.0, find(s, "streamfence_connections_active", nl)->value);
        Labels ol{{"namespace", "/a"}, {"topic", "x"}, {"reason", "spilled to disk"}};
        CPPUNIT_ASSERT_EQUAL(2.0, find(s, "streamfence_queue_overflow_total", ol)->value);
        CPPUNIT_ASSERT_EQUAL(uint64_t(2), t.overflowCount("spilled to disk"));
    }

    // A fresh topic lists queue_overflow_total as one zero sample without `reason` (dashboards
    // read 0, not "no data"); the first overflow replaces it with the per-reason sample.
    void overflowListedBeforeFirstOverflow() {
        Metrics m;
        auto& t = m.topic("/a", "x");
        Labels tl{{"namespace", "/a"}, {"topic", "x"}};
        auto s = m.snapshot();
        auto* z = find(s, "streamfence_queue_overflow_total", tl);
        CPPUNIT_ASSERT(z && z->value == 0.0 && z->type == sf::MetricSample::Type::Counter);
        t.overflow("queue full with REJECT_NEW");
        s = m.snapshot();
        CPPUNIT_ASSERT(!find(s, "streamfence_queue_overflow_total", tl));
        Labels ol{{"namespace", "/a"}, {"topic", "x"}, {"reason", "queue full with REJECT_NEW"}};
        CPPUNIT_ASSERT_EQUAL(1.0, find(s, "streamfence_queue_overflow_total", ol)->value);
    }

    void laneGaugesMergeMaxOverLoops() {
        Metrics m;
        auto& t = m.topic("/a", "x");
        int loopA = 0, loopB = 0;
        t.reportLaneMax(&loopA, 3, 100);
        t.reportLaneMax(&loopB, 7, 50);
        Labels tl{{"namespace", "/a"}, {"topic", "x"}};
        auto s = m.snapshot();
        CPPUNIT_ASSERT_EQUAL(7.0, find(s, "streamfence_lane_depth_max", tl)->value);
        CPPUNIT_ASSERT_EQUAL(100.0, find(s, "streamfence_lane_bytes_max", tl)->value);
        t.reportLaneMax(&loopB, 0, 0);  // loop B drained
        s = m.snapshot();
        CPPUNIT_ASSERT_EQUAL(3.0, find(s, "streamfence_lane_depth_max", tl)->value);
    }

    void concurrentRecording() {
        Metrics m;
        std::vector<std::thread> ts;
        for (int i = 0; i < 4; ++i)
            ts.emplace_back([&m, i] {
                auto& t = m.topic("/a", "x");
                for (int k = 0; k < 50000; ++k) {
                    t.published.fetch_add(1, std::memory_order_relaxed);
                    if (k % 100 == 0) t.overflow(i % 2 ? "r1" : "r2");
                }
            });
        for (int k = 0; k < 20; ++k) m.snapshot();  // scrapes while recording
        for (auto& t : ts) t.join();
        auto s = m.snapshot();
        CPPUNIT_ASSERT_EQUAL(200000.0, find(s, "streamfence_messages_published_total", {{"namespace", "/a"}, {"topic", "x"}})->value);
        CPPUNIT_ASSERT_EQUAL(1000.0, find(s, "streamfence_queue_overflow_total", {{"namespace", "/a"}, {"topic", "x"}, {"reason", "r1"}})->value);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DeliveryMetricsTest);
