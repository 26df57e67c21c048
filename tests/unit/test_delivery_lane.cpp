// Lane + overflow-policy logic: limits by count and bytes, in-flight accounting, each
// verdict, and the host's enforcement of the limits whatever a policy answers. The
// policies are small C vtables written here (the same shape as the real plugins); when the
// real plugins are built (SF_TEST_BINARY_DIR/plugins) DROP_OLDEST is also checked through
// the registry.
#include <cppunit/extensions/HelperMacros.h>

#include <filesystem>
#include <string>
#include <vector>

#include "delivery/lane.hpp"
#include "delivery/message.hpp"
#include "plugins/registry.hpp"

using namespace sf::delivery;

namespace {

MessagePtr msg(const std::string& payload, const std::string& key = "t", int id = 0) {
    return makeMessage("/ns", "t", payload, key, "msg-" + std::to_string(id), false);
}

std::string payloadAt(const Lane& l, size_t i) { return l.at(i).msg->payload; }

// --- test policies -----------------------------------------------------------------
int rejectNew(void*, const sf_lane_view*, const sf_message_view*, int, sf_policy_result* r) {
    r->verdict = SF_VERDICT_REJECT;
    r->reason = "queue full with REJECT_NEW";
    return SF_OK;
}

bool laneFits(const sf_lane_view* l, uint64_t b) { return l->count(l->lane) < l->max_messages && l->bytes(l->lane) + b <= l->max_bytes; }

int dropOldest(void*, const sf_lane_view* l, const sf_message_view* in, int, sf_policy_result* r) {
    uint32_t i = 0, dropped = 0;
    while (!laneFits(l, in->bytes) && i < l->count(l->lane)) {
        if (l->remove(l->lane, i) == SF_OK) ++dropped;
        else ++i;  // in flight: skip
    }
    r->dropped = dropped;
    if (!laneFits(l, in->bytes)) {
        r->verdict = SF_VERDICT_REJECT;
        r->reason = "queue full after drop-oldest attempts";
    } else {
        r->verdict = SF_VERDICT_ACCEPT;
    }
    return SF_OK;
}

int coalesce(void*, const sf_lane_view* l, const sf_message_view* in, int fits, sf_policy_result* r) {
    std::string key(in->key.ptr, in->key.len);
    for (uint32_t n = l->count(l->lane); n > 0; --n) {
        sf_message_view e{};
        e.struct_size = sizeof e;
        l->entry(l->lane, n - 1, &e);
        if (!(e.flags & SF_ENTRY_IN_FLIGHT) && std::string(e.key.ptr, e.key.len) == key &&
            l->replace_with_incoming(l->lane, n - 1) == SF_OK) {
            r->verdict = SF_VERDICT_COALESCED;
            r->reason = "coalesced by key";
            return SF_OK;
        }
    }
    r->verdict = fits ? SF_VERDICT_ACCEPT : SF_VERDICT_REJECT;
    r->reason = fits ? nullptr : "queue full and no coalesce match";
    return SF_OK;
}

int snapshotOnly(void*, const sf_lane_view* l, const sf_message_view*, int, sf_policy_result* r) {
    uint32_t i = 0;
    while (i < l->count(l->lane))
        if (l->remove(l->lane, i) != SF_OK) ++i;
    r->verdict = SF_VERDICT_ACCEPT;
    return SF_OK;
}

int spillPolicy(void*, const sf_lane_view* l, const sf_message_view*, int, sf_policy_result* r) {
    r->verdict = l->can_spill(l->lane) ? SF_VERDICT_SPILL : SF_VERDICT_REJECT;
    r->reason = l->can_spill(l->lane) ? "spilled to disk" : "SPILL_TO_DISK: no spill queue configured";
    return SF_OK;
}

int greedy(void*, const sf_lane_view*, const sf_message_view*, int, sf_policy_result* r) {
    r->verdict = SF_VERDICT_ACCEPT;  // ignores the limits: the host must refuse
    return SF_OK;
}

int replaceFirst(void*, const sf_lane_view* l, const sf_message_view*, int, sf_policy_result* r) {
    r->verdict = l->replace_with_incoming(l->lane, 0) == SF_OK ? SF_VERDICT_COALESCED : SF_VERDICT_REJECT;
    return SF_OK;
}

sf_overflow_policy_vtable vt(uint32_t when, int (*fn)(void*, const sf_lane_view*, const sf_message_view*, int, sf_policy_result*)) {
    sf_overflow_policy_vtable v{};
    v.struct_size = sizeof v;
    v.when = when;
    v.on_enqueue = fn;
    return v;
}

}  // namespace

class DeliveryLaneTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DeliveryLaneTest);
    CPPUNIT_TEST(countLimitRejectNew);
    CPPUNIT_TEST(byteLimitDropOldest);
    CPPUNIT_TEST(oversizedAlwaysRejected);
    CPPUNIT_TEST(inFlightCountsAndIsNotRemovable);
    CPPUNIT_TEST(coalesceByKeyKeepsPlace);
    CPPUNIT_TEST(snapshotKeepsLatest);
    CPPUNIT_TEST(spillVerdicts);
    CPPUNIT_TEST(hostEnforcesLimits);
    CPPUNIT_TEST(replacementUndoneWhenOverBytes);
    CPPUNIT_TEST(takeAndFindKeepCounters);
    CPPUNIT_TEST(firstSendableMatchesAScan);
    CPPUNIT_TEST(coalesceKeyFromPayload);
    CPPUNIT_TEST(coalesceFlagWithAnyPolicy);
    CPPUNIT_TEST(realDropOldestPluginIfBuilt);
    CPPUNIT_TEST_SUITE_END();

public:
    void countLimitRejectNew() {
        auto v = vt(SF_POLICY_ON_OVERFLOW, rejectNew);
        OverflowPolicy p(&v, nullptr, "REJECT_NEW");
        Lane lane("/ns", "t", LaneLimits{2, 1000}, &p, false);
        CPPUNIT_ASSERT(lane.enqueue(msg("{\"i\":1}")).verdict == EnqueueVerdict::Accepted);
        CPPUNIT_ASSERT(lane.enqueue(msg("{\"i\":2}")).verdict == EnqueueVerdict::Accepted);
        auto o = lane.enqueue(msg("{\"i\":3}"));
        CPPUNIT_ASSERT(o.verdict == EnqueueVerdict::Rejected);
        CPPUNIT_ASSERT_EQUAL(std::string("queue full with REJECT_NEW"), o.reason);
        CPPUNIT_ASSERT_EQUAL(size_t(2), lane.size());
        CPPUNIT_ASSERT_EQUAL(uint64_t(14), lane.bytes());
    }

    // maxQueuedBytesPerClient (conf/README.md): max bytes 20, three 7-byte payloads: the third drops the first.
    void byteLimitDropOldest() {
        auto v = vt(SF_POLICY_ON_OVERFLOW, dropOldest);
        OverflowPolicy p(&v, nullptr, "DROP_OLDEST");
        Lane lane("/ns", "t", LaneLimits{64, 20}, &p, false);
        lane.enqueue(msg("{\"i\":1}"));
        lane.enqueue(msg("{\"i\":2}"));
        auto o = lane.enqueue(msg("{\"i\":3}"));
        CPPUNIT_ASSERT(o.verdict == EnqueueVerdict::Accepted);
        CPPUNIT_ASSERT_EQUAL(uint32_t(1), o.dropped);
        CPPUNIT_ASSERT_EQUAL(size_t(2), lane.size());
        CPPUNIT_ASSERT_EQUAL(std::string("{\"i\":2}"), payloadAt(lane, 0));
        CPPUNIT_ASSERT_EQUAL(std::string("{\"i\":3}"), payloadAt(lane, 1));
        CPPUNIT_ASSERT_EQUAL(uint64_t(14), lane.bytes());
    }

    void oversizedAlwaysRejected() {
        auto v = vt(SF_POLICY_ON_EVERY, snapshotOnly);
        OverflowPolicy p(&v, nullptr, "SNAPSHOT_ONLY");
        Lane lane("/ns", "t", LaneLimits{64, 20}, &p, true);
        lane.enqueue(msg("{\"i\":1}"));
        auto o = lane.enqueue(msg("\"" + std::string(30, 'x') + "\""));
        CPPUNIT_ASSERT(o.verdict == EnqueueVerdict::Rejected);
        CPPUNIT_ASSERT_EQUAL(std::string(reasons::kTooLarge), o.reason);
        CPPUNIT_ASSERT_EQUAL(size_t(1), lane.size());  // the policy was not even consulted
    }

    void inFlightCountsAndIsNotRemovable() {
        auto v = vt(SF_POLICY_ON_OVERFLOW, dropOldest);
        OverflowPolicy p(&v, nullptr, "DROP_OLDEST");
        Lane lane("/ns", "t", LaneLimits{2, 1000}, &p, false);
        lane.enqueue(msg("{\"i\":1}", "t", 1));
        lane.enqueue(msg("{\"i\":2}", "t", 2));
        lane.markInFlight(0, 0);
        CPPUNIT_ASSERT_EQUAL(uint32_t(1), lane.inFlight());
        CPPUNIT_ASSERT(!lane.fits(1));  // in flight still counts
        auto o = lane.enqueue(msg("{\"i\":3}", "t", 3));
        CPPUNIT_ASSERT(o.verdict == EnqueueVerdict::Accepted);
        CPPUNIT_ASSERT_EQUAL(std::string("{\"i\":1}"), payloadAt(lane, 0));  // in flight kept
        CPPUNIT_ASSERT_EQUAL(std::string("{\"i\":3}"), payloadAt(lane, 1));
        CPPUNIT_ASSERT_EQUAL(1L, lane.firstSendable());
        // With only in-flight entries nothing can be dropped: rejected.
        Lane one("/ns", "t", LaneLimits{1, 1000}, &p, false);
        one.enqueue(msg("{\"i\":1}"));
        one.markInFlight(0, 0);
        auto r = one.enqueue(msg("{\"i\":2}"));
        CPPUNIT_ASSERT(r.verdict == EnqueueVerdict::Rejected);
        CPPUNIT_ASSERT_EQUAL(size_t(1), one.size());
        // Ack path: take() of the in-flight entry frees the slot.
        one.take(0);
        CPPUNIT_ASSERT_EQUAL(uint32_t(0), one.inFlight());
        CPPUNIT_ASSERT(one.enqueue(msg("{\"i\":3}")).verdict == EnqueueVerdict::Accepted);
    }

    void coalesceByKeyKeepsPlace() {
        auto v = vt(SF_POLICY_ON_EVERY, coalesce);
        OverflowPolicy p(&v, nullptr, "COALESCE");
        Lane lane("/ns", "t", LaneLimits{2, 1000}, &p, false);
        lane.enqueue(msg("{\"s\":\"A\",\"p\":1}", "A"));
        lane.enqueue(msg("{\"s\":\"B\",\"p\":1}", "B"));
        auto o = lane.enqueue(msg("{\"s\":\"A\",\"p\":2}", "A"));
        CPPUNIT_ASSERT(o.verdict == EnqueueVerdict::Coalesced);
        CPPUNIT_ASSERT_EQUAL(size_t(2), lane.size());
        CPPUNIT_ASSERT_EQUAL(std::string("{\"s\":\"A\",\"p\":2}"), payloadAt(lane, 0));
        auto r = lane.enqueue(msg("{\"s\":\"C\"}", "C"));
        CPPUNIT_ASSERT(r.verdict == EnqueueVerdict::Rejected);
        CPPUNIT_ASSERT_EQUAL(std::string("queue full and no coalesce match"), r.reason);
        // An in-flight entry is never replaced (its messageId is out on the wire).
        lane.markInFlight(1, 0);
        auto q = lane.enqueue(msg("{\"s\":\"B\",\"p\":9}", "B"));
        CPPUNIT_ASSERT(q.verdict == EnqueueVerdict::Rejected);
        CPPUNIT_ASSERT_EQUAL(std::string("{\"s\":\"B\",\"p\":1}"), payloadAt(lane, 1));
    }

    // Issue 14: `coalesce: true` replaced nothing unless overflowAction was COALESCE.
    void coalesceFlagWithAnyPolicy() {
        auto v = vt(SF_POLICY_ON_OVERFLOW, rejectNew);
        OverflowPolicy p(&v, nullptr, "REJECT_NEW");
        Lane lane("/ns", "t", LaneLimits{64, 1000}, &p, false, true);
        CPPUNIT_ASSERT(lane.enqueue(msg("{\"v\":1}")).verdict == EnqueueVerdict::Accepted);
        for (int i = 2; i <= 5; ++i)
            CPPUNIT_ASSERT(lane.enqueue(msg("{\"v\":" + std::to_string(i) + "}")).verdict == EnqueueVerdict::Coalesced);
        CPPUNIT_ASSERT_EQUAL(size_t(1), lane.size());
        CPPUNIT_ASSERT_EQUAL(std::string("{\"v\":5}"), payloadAt(lane, 0));
        // A message without a key (payload lacks the coalesceKey field) is its own entry.
        CPPUNIT_ASSERT(lane.enqueue(msg("{\"x\":1}", "")).verdict == EnqueueVerdict::Accepted);
        CPPUNIT_ASSERT_EQUAL(size_t(2), lane.size());
    }

    void snapshotKeepsLatest() {
        auto v = vt(SF_POLICY_ON_EVERY, snapshotOnly);
        OverflowPolicy p(&v, nullptr, "SNAPSHOT_ONLY");
        Lane lane("/ns", "t", LaneLimits{1, 1000}, &p, false);
        for (int i = 1; i <= 5; ++i) lane.enqueue(msg("{\"value\":" + std::to_string(i) + "}"));
        CPPUNIT_ASSERT_EQUAL(size_t(1), lane.size());
        CPPUNIT_ASSERT_EQUAL(std::string("{\"value\":5}"), payloadAt(lane, 0));
    }

    void spillVerdicts() {
        auto v = vt(SF_POLICY_ON_OVERFLOW, spillPolicy);
        OverflowPolicy p(&v, nullptr, "SPILL_TO_DISK");
        Lane noSpill("/ns", "t", LaneLimits{1, 1000}, &p, false);
        noSpill.enqueue(msg("1"));
        auto r = noSpill.enqueue(msg("2"));
        CPPUNIT_ASSERT(r.verdict == EnqueueVerdict::Rejected);
        CPPUNIT_ASSERT_EQUAL(std::string(reasons::kNoSpill), r.reason);

        Lane lane("/ns", "t", LaneLimits{1, 1000}, &p, true);
        CPPUNIT_ASSERT(lane.enqueue(msg("1")).verdict == EnqueueVerdict::Accepted);
        auto s = lane.enqueue(msg("2"));
        CPPUNIT_ASSERT(s.verdict == EnqueueVerdict::Spill);
        CPPUNIT_ASSERT_EQUAL(std::string("spilled to disk"), s.reason);
        lane.take(0);
        // Room in memory, but older messages are in spill: FIFO says spill this one too.
        auto f = lane.enqueue(msg("3"), /*spillFirst=*/true);
        CPPUNIT_ASSERT(f.verdict == EnqueueVerdict::Spill);
        CPPUNIT_ASSERT(lane.empty());
    }

    void hostEnforcesLimits() {
        auto v = vt(SF_POLICY_ON_OVERFLOW, greedy);
        OverflowPolicy p(&v, nullptr, "greedy");
        Lane lane("/ns", "t", LaneLimits{1, 1000}, &p, false);
        lane.enqueue(msg("1"));
        auto o = lane.enqueue(msg("2"));
        CPPUNIT_ASSERT(o.verdict == EnqueueVerdict::Rejected);
        CPPUNIT_ASSERT_EQUAL(std::string(reasons::kOverLimits), o.reason);
        CPPUNIT_ASSERT_EQUAL(size_t(1), lane.size());
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), lane.bytes());
    }

    void replacementUndoneWhenOverBytes() {
        auto v = vt(SF_POLICY_ON_OVERFLOW, replaceFirst);
        OverflowPolicy p(&v, nullptr, "replacer");
        Lane lane("/ns", "t", LaneLimits{2, 12}, &p, false);
        lane.enqueue(msg("\"aa\""));    // 4 bytes
        lane.enqueue(msg("\"bbbb\""));  // 6 bytes
        auto o = lane.enqueue(msg("\"cccccccc\""));  // 10 bytes: 10 + 6 > 12 after replacing
        CPPUNIT_ASSERT(o.verdict == EnqueueVerdict::Rejected);
        CPPUNIT_ASSERT_EQUAL(std::string(reasons::kOverLimits), o.reason);
        CPPUNIT_ASSERT_EQUAL(std::string("\"aa\""), payloadAt(lane, 0));
        CPPUNIT_ASSERT_EQUAL(uint64_t(10), lane.bytes());
    }

    void takeAndFindKeepCounters() {
        Lane lane("/ns", "t", LaneLimits{4, 1000}, nullptr, false);
        lane.enqueue(msg("1", "t", 1));
        lane.enqueue(msg("22", "t", 2));
        lane.enqueue(msg("333", "t", 3));
        CPPUNIT_ASSERT_EQUAL(1L, lane.find("msg-2"));
        CPPUNIT_ASSERT_EQUAL(-1L, lane.find("msg-9"));
        lane.markInFlight(1, 0);
        LaneEntry e = lane.take(1);
        CPPUNIT_ASSERT_EQUAL(std::string("22"), e.msg->payload);
        CPPUNIT_ASSERT_EQUAL(uint64_t(4), lane.bytes());
        CPPUNIT_ASSERT_EQUAL(uint32_t(0), lane.inFlight());
        lane.enqueue(msg("4"));
        lane.enqueue(msg("5"));
        auto full = lane.enqueue(msg("6"));  // no policy: plain REJECT
        CPPUNIT_ASSERT(full.verdict == EnqueueVerdict::Rejected);
        CPPUNIT_ASSERT_EQUAL(std::string(reasons::kQueueFull), full.reason);
    }

    // firstSendable keeps a position instead of scanning from the front: after any mix of
    // sends, ack timeouts, acks, removals and appends it must give what a scan gives.
    void firstSendableMatchesAScan() {
        Lane lane("/ns", "t", LaneLimits{64, 1u << 20}, nullptr, false);
        auto scan = [&]() -> long {
            for (size_t i = 0; i < lane.size(); ++i)
                if (!lane.at(i).inFlight) return static_cast<long>(i);
            return -1;
        };
        uint32_t seed = 12345;
        auto rnd = [&](uint32_t n) { seed = seed * 1103515245u + 12345u; return (seed >> 16) % n; };
        int id = 0;
        for (int step = 0; step < 20000; ++step) {
            switch (rnd(6)) {
                case 0:
                case 1:
                    if (lane.size() < 64) lane.enqueue(msg("x", "t", ++id));
                    break;
                case 2: {  // send the first sendable
                    long i = lane.firstSendable();
                    if (i >= 0) lane.markInFlight(static_cast<size_t>(i), 0);
                    break;
                }
                case 3:  // ack timeout somewhere
                    if (!lane.empty()) lane.clearInFlight(rnd(static_cast<uint32_t>(lane.size())));
                    break;
                case 4:  // ack or removal anywhere
                    if (!lane.empty()) lane.take(rnd(static_cast<uint32_t>(lane.size())));
                    break;
                case 5:
                    if (rnd(50) == 0) lane.takeAll();
                    else if (lane.size() < 64) {
                        LaneEntry e{msg("y", "t", ++id)};
                        e.inFlight = rnd(2) == 0;  // a moved lane brings entries in flight
                        lane.append(std::move(e));
                    }
                    break;
            }
            CPPUNIT_ASSERT_EQUAL(scan(), lane.firstSendable());
        }
    }

    void coalesceKeyFromPayload() {
        auto v = sf::json::parse(R"({"symbol":"ACME","n":12.50,"o":{}})");
        // canonical JSON of the value (types stay apart; test_delivery_message has the cases)
        CPPUNIT_ASSERT_EQUAL(std::string("\"ACME\""), coalesceKeyOf(v, "symbol", "prices"));
        CPPUNIT_ASSERT_EQUAL(std::string("12.5"), coalesceKeyOf(v, "n", "prices"));
        CPPUNIT_ASSERT_EQUAL(std::string("{}"), coalesceKeyOf(v, "o", "prices"));
        CPPUNIT_ASSERT_EQUAL(std::string(), coalesceKeyOf(v, "missing", "prices"));  // no key
        CPPUNIT_ASSERT_EQUAL(std::string("prices"), coalesceKeyOf(v, "", "prices"));
        auto m = makeMessage("/rel", "order", "{\"i\":3}", "order", "msg-4", true);
        CPPUNIT_ASSERT_EQUAL(uint64_t(7), m->bytes);
        CPPUNIT_ASSERT_EQUAL(
            std::string("42/rel,[\"order\",{\"i\":3},{\"namespace\":\"/rel\",\"topic\":\"order\",\"messageId\":\"msg-4\",\"ackRequired\":true}]"),
            m->frame->eioPacket);
        auto b = makeMessage("/", "t", "1", "t", "msg-5", false);
        CPPUNIT_ASSERT_EQUAL(std::string("42[\"t\",1]"), b->frame->eioPacket);
    }

    void realDropOldestPluginIfBuilt() {
        std::string dir = std::string(SF_TEST_BINARY_DIR) + "/plugins";
        if (!std::filesystem::exists(dir)) return;  // plugins not built in this tree
        sf::plugins::Registry reg;
        reg.loadDirectory(dir);
        if (!reg.has(SF_KIND_OVERFLOW_POLICY, "DROP_OLDEST")) return;
        OverflowPolicy p(reg.instantiate(SF_KIND_OVERFLOW_POLICY, "DROP_OLDEST", sf::config::PluginOptions{}, "test"));
        Lane lane("/ns", "t", LaneLimits{2, 1000}, &p, false);
        for (int i = 1; i <= 5; ++i) lane.enqueue(msg("{\"i\":" + std::to_string(i) + "}"));
        CPPUNIT_ASSERT_EQUAL(size_t(2), lane.size());
        CPPUNIT_ASSERT_EQUAL(std::string("{\"i\":4}"), payloadAt(lane, 0));
        CPPUNIT_ASSERT_EQUAL(std::string("{\"i\":5}"), payloadAt(lane, 1));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DeliveryLaneTest);
