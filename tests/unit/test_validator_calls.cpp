// delivery/validator_calls.*: calls to a validator that may block run on worker threads with a
// deadline. On a real EventLoop thread, with a validator whose "hang" tokens block until the
// test releases them: a hung call is refused at the deadline and its late answer dropped; calls
// stuck in the plugin do not hold up the others (the pool grows); the destructor does not wait
// for stuck calls beyond its bound.
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "delivery/validator_calls.hpp"
#include "net/event_loop.hpp"

using namespace sf;
using namespace sf::delivery;

namespace {

std::mutex gMu;
std::condition_variable gCv;
bool gRelease = false;
std::atomic<int> gInside{0};

int validateMaybeHang(void*, const sf_token_request* rq, sf_token_result* res) {
    std::string t(rq->token.ptr, rq->token.len);
    if (t.rfind("hang", 0) == 0) {
        ++gInside;
        std::unique_lock<std::mutex> lk(gMu);
        gCv.wait(lk, [] { return gRelease; });
        --gInside;
    }
    res->accepted = t.rfind("bad", 0) == 0 ? 0 : 1;
    return SF_OK;
}
sf_token_validator_vtable kVt{sizeof(sf_token_validator_vtable), SF_VALIDATOR_MAY_BLOCK, validateMaybeHang, {}};

using Clock = std::chrono::steady_clock;

struct Verdict {
    int calls = 0;  // the callback must run exactly once
    TokenCheck check;
    Clock::time_point at;
};

}  // namespace

class ValidatorCallsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ValidatorCallsTest);
    CPPUNIT_TEST(answersWithinTheDeadline);
    CPPUNIT_TEST(hungCallRefusedAtTheDeadlineLateAnswerDropped);
    CPPUNIT_TEST(hungCallsDoNotHoldUpOthers);
    CPPUNIT_TEST(destructorDoesNotWaitForStuckCalls);
    CPPUNIT_TEST_SUITE_END();

public:
    void setUp() override {
        {
            std::lock_guard<std::mutex> lk(gMu);
            gRelease = false;
        }
        while (gInside.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the last test's threads
        loop_ = std::make_unique<net::EventLoop>("test-io");
        loop_->start();
    }
    void tearDown() override {
        release();
        calls_.reset();
        loop_->stop();
        loop_->join();
        loop_.reset();
    }

private:
    std::unique_ptr<net::EventLoop> loop_;
    std::unique_ptr<ValidatorCalls> calls_;
    std::mutex vmu_;
    std::vector<Verdict> verdicts_;

    static void release() {
        {
            std::lock_guard<std::mutex> lk(gMu);
            gRelease = true;
        }
        gCv.notify_all();
    }

    void make(uint64_t timeoutMs, size_t threads, size_t maxThreads) {
        TokenValidator v(&kVt, nullptr, "test");
        calls_ = std::make_unique<ValidatorCalls>(v, timeoutMs, threads, maxThreads);
    }

    // Issues validate(token) on the loop; the verdict lands in verdicts_[slot].
    size_t issue(const std::string& token) {
        size_t slot;
        {
            std::lock_guard<std::mutex> lk(vmu_);
            slot = verdicts_.size();
            verdicts_.emplace_back();
        }
        loop_->post([this, token, slot] {
            calls_->validate(*loop_, token, "/ns", "", "connect", "127.0.0.1:1", [this, slot](TokenCheck r) {
                std::lock_guard<std::mutex> lk(vmu_);
                verdicts_[slot].calls++;
                verdicts_[slot].check = std::move(r);
                verdicts_[slot].at = Clock::now();
            });
        });
        return slot;
    }

    Verdict verdict(size_t slot) {
        std::lock_guard<std::mutex> lk(vmu_);
        return verdicts_[slot];
    }

    bool waitFor(size_t slot, int ms) {
        auto end = Clock::now() + std::chrono::milliseconds(ms);
        while (Clock::now() < end) {
            if (verdict(slot).calls > 0) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return false;
    }

    static long msSince(Clock::time_point t0, Clock::time_point t) {
        return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(t - t0).count());
    }

public:
    void answersWithinTheDeadline() {
        make(2000, 2, 8);
        size_t good = issue("good"), bad = issue("bad");
        CPPUNIT_ASSERT(waitFor(good, 1000));
        CPPUNIT_ASSERT(waitFor(bad, 1000));
        CPPUNIT_ASSERT(verdict(good).check.accepted);
        CPPUNIT_ASSERT(!verdict(bad).check.accepted);
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), calls_->timeouts());
    }

    void hungCallRefusedAtTheDeadlineLateAnswerDropped() {
        make(200, 2, 8);
        const auto t0 = Clock::now();
        size_t hung = issue("hang");
        CPPUNIT_ASSERT(waitFor(hung, 3000));
        Verdict v = verdict(hung);
        CPPUNIT_ASSERT(!v.check.accepted);
        CPPUNIT_ASSERT_EQUAL(std::string(kValidationTimedOut), v.check.reason);
        CPPUNIT_ASSERT(msSince(t0, v.at) >= 190);
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), calls_->timeouts());
        // The validator answers "accepted" after all: too late, dropped, the callback ran once.
        release();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        v = verdict(hung);
        CPPUNIT_ASSERT_EQUAL(1, v.calls);
        CPPUNIT_ASSERT(!v.check.accepted);
    }

    void hungCallsDoNotHoldUpOthers() {
        make(5000, 2, 8);
        std::vector<size_t> hung;
        for (int k = 0; k < 4; ++k) hung.push_back(issue("hang-" + std::to_string(k)));
        const auto deadline = Clock::now() + std::chrono::seconds(2);
        while (gInside.load() < 4 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        CPPUNIT_ASSERT_EQUAL(4, gInside.load());  // four stuck, more than the two threads it started with
        const auto t0 = Clock::now();
        size_t good = issue("good");
        CPPUNIT_ASSERT(waitFor(good, 1000));
        CPPUNIT_ASSERT(verdict(good).check.accepted);
        CPPUNIT_ASSERT(msSince(t0, verdict(good).at) < 500);
        for (size_t h : hung) CPPUNIT_ASSERT_EQUAL(0, verdict(h).calls);  // still waiting, not refused early
        release();
        for (size_t h : hung) {
            CPPUNIT_ASSERT(waitFor(h, 1000));
            CPPUNIT_ASSERT(verdict(h).check.accepted);
        }
    }

    void destructorDoesNotWaitForStuckCalls() {
        make(100, 1, 4);
        issue("hang-a");
        issue("hang-b");
        const auto deadline = Clock::now() + std::chrono::seconds(2);
        while (gInside.load() < 2 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        CPPUNIT_ASSERT_EQUAL(2, gInside.load());
        const auto t0 = Clock::now();
        calls_.reset();
        CPPUNIT_ASSERT(msSince(t0, Clock::now()) < 3000);
        release();  // the abandoned threads finish and post nothing (the loop is still there to see it)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ValidatorCallsTest);
