// Connection-state recovery's pure parts (docs/recovery.md): the replay history (what a
// BEST_EFFORT session sent and has not seen confirmed; replay after an offset, bounds,
// gap reporting) and the pid directory (one claimant wins, expiry only of what is still
// held, forget only one's own entry). Also the offset on the wire.
#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "delivery/held_sessions.hpp"
#include "delivery/message.hpp"
#include "delivery/replay_history.hpp"

using namespace sf::delivery;

namespace {

MessagePtr msg(int id, size_t bytes = 1) {
    return makeMessage("/ns", "t", std::string(bytes, '1'), "t", "msg-" + std::to_string(id), false, {}, true);
}

// "msg-3 msg-4": CppUnit prints strings, not vectors.
std::string ids(const std::vector<MessagePtr>& v) {
    std::string out;
    for (auto& m : v) out += (out.empty() ? "" : " ") + m->messageId;
    return out;
}

}  // namespace

class DeliveryRecoveryTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DeliveryRecoveryTest);
    CPPUNIT_TEST(offsetIsTheLastArgument);
    CPPUNIT_TEST(replayAfterTheClientsOffset);
    CPPUNIT_TEST(confirmationForgetsWhatTheClientHas);
    CPPUNIT_TEST(boundsEvictOldestAndReportTheGap);
    CPPUNIT_TEST(gapClearedByALaterConfirmation);
    CPPUNIT_TEST(directoryOneClaimantWins);
    CPPUNIT_TEST(directoryExpiresOnlyWhatIsHeld);
    CPPUNIT_TEST_SUITE_END();

public:
    void offsetIsTheLastArgument() {
        auto be = makeMessage("/feed", "p", "{\"a\":1}", "p", "msg-7", false, {}, true);
        CPPUNIT_ASSERT_EQUAL(std::string("42/feed,[\"p\",{\"a\":1},\"msg-7\"]"), be->frame->eioPacket);
        auto alo = makeMessage("/", "o", "1", "o", "msg-8", true, {}, true);
        CPPUNIT_ASSERT_EQUAL(
            std::string("42[\"o\",1,{\"namespace\":\"/\",\"topic\":\"o\",\"messageId\":\"msg-8\",\"ackRequired\":true},\"msg-8\"]"),
            alo->frame->eioPacket);
        auto off = makeMessage("/", "o", "1", "o", "msg-9", false, {}, false);
        CPPUNIT_ASSERT_EQUAL(std::string("42[\"o\",1]"), off->frame->eioPacket);
    }

    void replayAfterTheClientsOffset() {
        ReplayHistory h;
        for (int i = 1; i <= 5; ++i) h.record(msg(i), uint64_t(i), 100, 1000);
        uint64_t gap = 99;
        CPPUNIT_ASSERT_EQUAL(std::string("msg-4 msg-5"), ids(h.after("msg-3", &gap)));
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), gap);
        CPPUNIT_ASSERT(h.after("msg-5", &gap).empty());  // saw the newest: nothing again
        // No offset (never got an event) or one that already left: everything held.
        CPPUNIT_ASSERT_EQUAL(size_t(5), h.after("", &gap).size());
        CPPUNIT_ASSERT_EQUAL(size_t(5), h.after("msg-0", &gap).size());
    }

    void confirmationForgetsWhatTheClientHas() {
        ReplayHistory h;
        for (int i = 1; i <= 5; ++i) h.record(msg(i, 10), uint64_t(i * 2), 100, 1000);  // marks 2,4,...,10
        h.confirm(5);  // a pong for the ping queued after message 2 (mark 4) and before 3 (mark 6)
        CPPUNIT_ASSERT_EQUAL(size_t(3), h.size());
        CPPUNIT_ASSERT_EQUAL(uint64_t(30), h.bytes());
        uint64_t gap = 0;
        // The client's offset msg-1 left with the confirmation: everything held is after it.
        CPPUNIT_ASSERT_EQUAL(std::string("msg-3 msg-4 msg-5"), ids(h.after("msg-1", &gap)));
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), gap);
        h.confirm(10);
        CPPUNIT_ASSERT_EQUAL(size_t(0), h.size());
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), h.bytes());
    }

    void boundsEvictOldestAndReportTheGap() {
        ReplayHistory h;
        for (int i = 1; i <= 6; ++i) h.record(msg(i, 10), uint64_t(i), 4, 1000);
        CPPUNIT_ASSERT_EQUAL(size_t(4), h.size());
        CPPUNIT_ASSERT_EQUAL(uint64_t(2), h.evicted());
        uint64_t gap = 0;
        // The client saw msg-1: msg-2 was evicted unconfirmed, so the replay may miss it.
        CPPUNIT_ASSERT_EQUAL(std::string("msg-3 msg-4 msg-5 msg-6"), ids(h.after("msg-1", &gap)));
        CPPUNIT_ASSERT_EQUAL(uint64_t(2), gap);
        // Found: exact, no gap.
        CPPUNIT_ASSERT_EQUAL(std::string("msg-6"), ids(h.after("msg-5", &gap)));
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), gap);
        // Bytes bound too.
        ReplayHistory b;
        for (int i = 1; i <= 5; ++i) b.record(msg(i, 10), uint64_t(i), 100, 25);
        CPPUNIT_ASSERT_EQUAL(size_t(2), b.size());
        CPPUNIT_ASSERT(b.bytes() <= 25);
    }

    void gapClearedByALaterConfirmation() {
        ReplayHistory h;
        for (int i = 1; i <= 6; ++i) h.record(msg(i), uint64_t(i), 4, 1000);  // evicts 1, 2 (marks 1, 2)
        h.confirm(1);  // does not cover mark 2: still a possible gap
        CPPUNIT_ASSERT_EQUAL(uint64_t(2), h.evicted());
        h.confirm(2);
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), h.evicted());
        uint64_t gap = 9;
        CPPUNIT_ASSERT_EQUAL(size_t(4), h.after("msg-1", &gap).size());
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), gap);
    }

    void directoryOneClaimantWins() {
        HeldSessions d;
        // The directory never dereferences a session: a placeholder object stands for one.
        auto s = std::shared_ptr<Session>(reinterpret_cast<Session*>(new char[1]), [](Session* p) { delete[] reinterpret_cast<char*>(p); });
        d.add("pid1", s, nullptr, 0, "sid1", "alice", "tok");
        HeldSessions::Claim c;
        CPPUNIT_ASSERT(!d.claim("pid1", 1, c));  // another namespace's pid
        CPPUNIT_ASSERT(!d.claim("nope", 0, c));
        CPPUNIT_ASSERT(d.claim("pid1", 0, c));
        CPPUNIT_ASSERT_EQUAL(std::string("sid1"), c.id);
        CPPUNIT_ASSERT_EQUAL(std::string("alice"), c.principal);
        CPPUNIT_ASSERT(!c.wasDetached);
        CPPUNIT_ASSERT(c.session == s);
        HeldSessions::Claim c2;
        CPPUNIT_ASSERT(!d.claim("pid1", 0, c2));  // claimed once only
    }

    void directoryExpiresOnlyWhatIsHeld() {
        HeldSessions d;
        auto mk = [] {
            return std::shared_ptr<Session>(reinterpret_cast<Session*>(new char[1]), [](Session* p) { delete[] reinterpret_cast<char*>(p); });
        };
        auto s = mk(), other = mk();
        d.add("p", s, nullptr, 0, "id", "", "");
        CPPUNIT_ASSERT(!d.expire("p", s.get()));  // attached: the socket owns it
        d.hold("p", s);
        CPPUNIT_ASSERT_EQUAL(size_t(1), d.heldCount());
        CPPUNIT_ASSERT(!d.expire("p", other.get()));
        std::weak_ptr<Session> weak = s;
        s.reset();
        CPPUNIT_ASSERT(!weak.expired());  // held: the directory keeps it alive
        d.forget("p", other.get());      // someone else's close does not remove it
        CPPUNIT_ASSERT_EQUAL(size_t(1), d.heldCount());
        CPPUNIT_ASSERT(d.expire("p", weak.lock().get()));
        CPPUNIT_ASSERT(weak.expired());
        CPPUNIT_ASSERT_EQUAL(size_t(0), d.heldCount());
        HeldSessions::Claim c;
        CPPUNIT_ASSERT(!d.claim("p", 0, c));  // expired: a reconnect starts fresh
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DeliveryRecoveryTest);
