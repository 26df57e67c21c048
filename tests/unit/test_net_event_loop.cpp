// EventLoop: posts from other threads, timers (order, cancellation, zero delay), fd
// watchers, end-of-turn work, and the final shutdown()/clear() that ends ownership cycles.
#include <cppunit/extensions/HelperMacros.h>

#include "net_harness.hpp"

using namespace sf::net;
using namespace sf::nettest;

class EventLoopTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(EventLoopTest);
    CPPUNIT_TEST(postOrderFromOtherThreads);
    CPPUNIT_TEST(timersFireInOrderAndCancel);
    CPPUNIT_TEST(manyCancelledTimersDoNotSlowTheLoop);
    CPPUNIT_TEST(zeroDelayTimerFromTimerRunsNextTurn);
    CPPUNIT_TEST(unwatchDuringDispatchSkipsStaleEvent);
    CPPUNIT_TEST(endOfTurnRunsAfterIo);
    CPPUNIT_TEST(shutdownAbortsOpenConnectionsAndClearDropsCallbacks);
    CPPUNIT_TEST(shutdownOfALoopNotRunningRunsHooksAtOnce);
    CPPUNIT_TEST_SUITE_END();

    // Counts live instances; the last one destroyed in a batch re-arms a timer, as a session
    // whose destructor cancels and schedules would.
    struct Tracked {
        std::atomic<int>& alive;
        EventLoop* rearm;
        Tracked(std::atomic<int>& a, EventLoop* r) : alive(a), rearm(r) { ++alive; }
        ~Tracked() {
            if (rearm) {
                rearm->cancelTimer(1);
                rearm->addTimer(3600 * 1000, [t = std::make_shared<Tracked>(alive, nullptr)] {});
            }
            --alive;
        }
    };

    // Holds its connection, as protocol handlers do: only the connection's close breaks it.
    struct HoldingHandler : ConnectionHandler {
        std::shared_ptr<Connection> conn;
        EventLoop* loop = nullptr;
        std::atomic<int>* closes = nullptr;
        std::atomic<bool>* closedOnLoop = nullptr;
        void onData(Connection&, std::string_view) override {}
        void onDrain(Connection&) override {}
        void onClose(Connection&, const std::string&) override {
            *closedOnLoop = loop->inLoopThread();
            ++*closes;
        }
    };

public:
    void postOrderFromOtherThreads() {
        EventLoop loop("t");
        loop.start();
        std::vector<std::pair<int, int>> seen;  // loop thread only
        std::atomic<bool> wrongThread{false};
        auto producer = [&](int who) {
            for (int i = 0; i < 5000; ++i)
                loop.post([&, who, i] {
                    if (!loop.inLoopThread()) wrongThread = true;
                    seen.emplace_back(who, i);
                });
        };
        std::thread a(producer, 0), b(producer, 1);
        a.join();
        b.join();
        size_t n = onLoop(loop, [&] { return seen.size(); });
        CPPUNIT_ASSERT_EQUAL(size_t(10000), n);
        CPPUNIT_ASSERT(!wrongThread);
        CPPUNIT_ASSERT(!loop.inLoopThread());
        int last[2] = {-1, -1};
        for (auto& [who, i] : seen) {
            CPPUNIT_ASSERT_EQUAL(last[who] + 1, i);  // each producer's order kept
            last[who] = i;
        }
        loop.stop();
        loop.join();
    }

    void timersFireInOrderAndCancel() {
        EventLoop loop("t");
        loop.start();
        std::vector<int> fired;
        std::atomic<bool> done{false};
        uint64_t start = 0, at30 = 0;
        onLoop(loop, [&] {
            start = loop.nowMs();
            loop.addTimer(30, [&] {
                fired.push_back(30);
                at30 = loop.nowMs();
                done = true;
            });
            loop.addTimer(10, [&] { fired.push_back(10); });
            TimerId c = loop.addTimer(15, [&] { fired.push_back(15); });
            loop.addTimer(20, [&] { fired.push_back(20); });
            loop.addTimer(5, [&, c] { loop.cancelTimer(c); });  // cancel from inside a timer
            loop.cancelTimer(0);  // no-op
        });
        CPPUNIT_ASSERT(waitFor([&] { return done.load(); }));
        auto got = onLoop(loop, [&] { return fired; });
        CPPUNIT_ASSERT((got == std::vector<int>{10, 20, 30}));
        CPPUNIT_ASSERT(at30 - start >= 30);
        loop.stop();
        loop.join();
    }

    void manyCancelledTimersDoNotSlowTheLoop() {
        EventLoop loop("t");
        loop.start();
        std::atomic<bool> fired{false};
        auto t0 = std::chrono::steady_clock::now();
        onLoop(loop, [&] {
            std::vector<TimerId> ids;
            for (int i = 0; i < 200000; ++i) ids.push_back(loop.addTimer(60000 + i, [] {}));
            for (TimerId id : ids) loop.cancelTimer(id);
            loop.addTimer(5, [&] { fired = true; });
        });
        CPPUNIT_ASSERT(waitFor([&] { return fired.load(); }));
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        CPPUNIT_ASSERT(ms < 3000);
        loop.stop();
        loop.join();
    }

    void zeroDelayTimerFromTimerRunsNextTurn() {
        EventLoop loop("t");
        loop.start();
        std::atomic<int> count{0};
        std::function<void()> again;
        again = [&] {
            if (++count < 100) loop.addTimer(0, again);  // must not spin inside one turn
        };
        std::atomic<bool> postRan{false};
        onLoop(loop, [&] { loop.addTimer(0, again); });
        loop.post([&] { postRan = true; });
        CPPUNIT_ASSERT(waitFor([&] { return count.load() == 100 && postRan.load(); }));
        loop.stop();
        loop.join();
    }

    void unwatchDuringDispatchSkipsStaleEvent() {
        EventLoop loop("t");
        int p1[2], p2[2];
        CPPUNIT_ASSERT_EQUAL(0, ::pipe(p1));
        CPPUNIT_ASSERT_EQUAL(0, ::pipe(p2));
        CPPUNIT_ASSERT_EQUAL(ssize_t(1), ::write(p1[1], "x", 1));
        CPPUNIT_ASSERT_EQUAL(ssize_t(1), ::write(p2[1], "x", 1));
        int calls = 0;
        // Whichever fires first removes both (and closes the other's fd): the second event
        // of the same epoll batch must be dropped, not dispatched to a dead watcher.
        auto cb = [&](uint32_t) {
            ++calls;
            loop.unwatch(p1[0]);
            loop.unwatch(p2[0]);
            loop.stop();
        };
        loop.watch(p1[0], EPOLLIN, cb);
        loop.watch(p2[0], EPOLLIN, cb);
        loop.run();
        CPPUNIT_ASSERT_EQUAL(1, calls);
        for (int fd : {p1[0], p1[1], p2[0], p2[1]}) ::close(fd);
    }

    void endOfTurnRunsAfterIo() {
        EventLoop loop("t");
        std::vector<std::string> order;
        loop.post([&] {
            loop.deferToEndOfTurn([&] {
                order.push_back("end1");
                loop.deferToEndOfTurn([&] { order.push_back("end2"); });  // same turn
            });
            order.push_back("post");
            uint64_t a = loop.nowMs();
            std::this_thread::sleep_for(std::chrono::milliseconds(3));
            if (loop.nowMs() == a) order.push_back("cached");  // now is per turn
            loop.post([&] {
                order.push_back("next-turn");
                loop.stop();
            });
        });
        loop.run();
        CPPUNIT_ASSERT((order == std::vector<std::string>{"post", "cached", "end1", "end2", "next-turn"}));
    }

    void shutdownAbortsOpenConnectionsAndClearDropsCallbacks() {
        EventLoop loop("t");
        loop.start();
        int sv[2];
        CPPUNIT_ASSERT_EQUAL(0, ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
        std::atomic<int> closes{0}, alive{0};
        std::atomic<bool> closedOnLoop{false};
        std::weak_ptr<Connection> weakConn;
        onLoop(loop, [&] {
            auto conn = TcpConnection::create(loop, sv[0], "pair");
            auto h = std::make_shared<HoldingHandler>();
            h->conn = conn;  // the cycle: connection -> handler -> connection
            h->loop = &loop;
            h->closes = &closes;
            h->closedOnLoop = &closedOnLoop;
            conn->setHandler(h);
            conn->start();
            weakConn = conn;
            loop.addTimer(3600 * 1000, [t = std::make_shared<Tracked>(alive, &loop)] {});
        });
        loop.post([t = std::make_shared<Tracked>(alive, nullptr)] {});  // may or may not run: either is fine
        loop.shutdown();
        loop.join();
        CPPUNIT_ASSERT_EQUAL(1, closes.load());
        CPPUNIT_ASSERT(closedOnLoop.load());
        CPPUNIT_ASSERT(weakConn.expired());
        char c;
        CPPUNIT_ASSERT(::recv(sv[1], &c, 1, 0) <= 0);  // the peer sees the end
        CPPUNIT_ASSERT(alive.load() >= 1);             // the hour-long timer still holds its object
        loop.clear();
        CPPUNIT_ASSERT_EQUAL(0, alive.load());  // including the timer added while clearing
        ::close(sv[1]);
    }

    void shutdownOfALoopNotRunningRunsHooksAtOnce() {
        EventLoop loop("t");
        int p[2];
        CPPUNIT_ASSERT_EQUAL(0, ::pipe(p));
        int hooks = 0;
        loop.watch(p[0], EPOLLIN, [](uint32_t) {}, [&] {
            ++hooks;
            loop.unwatch(p[0]);
        });
        loop.shutdown();
        CPPUNIT_ASSERT_EQUAL(1, hooks);
        loop.shutdown();  // once only
        CPPUNIT_ASSERT_EQUAL(1, hooks);
        loop.clear();
        for (int fd : p) ::close(fd);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(EventLoopTest);
