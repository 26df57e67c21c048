// StreamFenceServer::publishAsync (host/embed/streamfence.hpp): a durable namespace answers
// Accepted from the journal's writer thread once the message is on disk, many in flight at
// once sharing fsyncs (docs/recovery.md); elsewhere the answer comes on the calling thread
// before the call returns; a stopped server answers NotRunning; bad input throws like publish.
#include <cppunit/extensions/HelperMacros.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "temp_dir.hpp"
#include "embed/streamfence.hpp"

namespace fs = std::filesystem;

namespace {

std::unique_ptr<sf::StreamFenceServer> startServer(const TempDir& d) {
    const fs::path cfg = d.path / "sf.json";
    std::ofstream(cfg) << R"({"pluginDir": ")" << SF_TEST_BINARY_DIR << R"(/plugins", "logLevel": "warn",
 "servers": {"s": {"host": "127.0.0.1", "port": 0, "spillRootPath": ")" << (d.path / "spill").string() << R"(",
   "connectionStateRecovery": {"maxDisconnectionDurationMs": 60000},
   "namespaces": [
     {"path": "/d", "topics": ["t"], "deliveryMode": "AT_LEAST_ONCE", "durable": true, "overflowAction": "REJECT_NEW", "maxRetries": 1},
     {"path": "/plain", "topics": ["t"]}]}}})";
    auto s = sf::StreamFenceServerBuilder::fromJson(cfg.string(), "s").build();
    s->start();
    return s;
}

}  // namespace

class EmbedPublishAsyncTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(EmbedPublishAsyncTest);
    CPPUNIT_TEST(durableAnswersOnceOnDiskFromTheWriter);
    CPPUNIT_TEST(otherNamespacesAnswerInline);
    CPPUNIT_TEST(stoppedServerAnswersNotRunningAndBadInputThrows);
    CPPUNIT_TEST_SUITE_END();

public:
    void durableAnswersOnceOnDiskFromTheWriter() {
        TempDir d;
        auto s = startServer(d);
        std::mutex mu;
        std::condition_variable cv;
        int answered = 0, accepted = 0, onCaller = 0;
        const auto caller = std::this_thread::get_id();
        const int n = 500;
        for (int i = 0; i < n; ++i)
            s->publishAsync("/d", "t", "{\"i\":" + std::to_string(i) + "}", [&](sf::PublishResult r) {
                std::lock_guard<std::mutex> lk(mu);
                ++answered;
                if (r == sf::PublishResult::Accepted) ++accepted;
                if (std::this_thread::get_id() == caller) ++onCaller;
                cv.notify_all();
            });
        {
            std::unique_lock<std::mutex> lk(mu);
            CPPUNIT_ASSERT(cv.wait_for(lk, std::chrono::seconds(20), [&] { return answered == n; }));
        }
        CPPUNIT_ASSERT_EQUAL(n, accepted);
        CPPUNIT_ASSERT_EQUAL(0, onCaller);
        // Each accepted message is in the journal (100 bytes of record and more each).
        uint64_t bytes = 0;
        for (auto& e : fs::recursive_directory_iterator(d.path / "spill"))
            if (e.is_regular_file()) bytes += e.file_size();
        CPPUNIT_ASSERT(bytes > uint64_t(n) * 20);
        s->stop();
    }

    void otherNamespacesAnswerInline() {
        TempDir d;
        auto s = startServer(d);
        bool answered = false;
        sf::PublishResult got = sf::PublishResult::NotRunning;
        s->publishAsync("/plain", "t", "{\"x\":1}", [&](sf::PublishResult r) {
            answered = true;
            got = r;
        });
        CPPUNIT_ASSERT(answered);
        CPPUNIT_ASSERT(got == sf::PublishResult::Accepted);
        s->stop();
    }

    void stoppedServerAnswersNotRunningAndBadInputThrows() {
        TempDir d;
        auto s = startServer(d);
        CPPUNIT_ASSERT_THROW(s->publishAsync("/d", "nope", "{}", [](sf::PublishResult) {}), sf::UnknownTopicError);
        CPPUNIT_ASSERT_THROW(s->publishAsync("/d", "t", "{bad", [](sf::PublishResult) {}), std::invalid_argument);
        s->stop();
        int calls = 0;
        sf::PublishResult first = sf::PublishResult::Accepted, second = sf::PublishResult::Accepted;
        // done may publish again: the inline answer comes after the server's lock is released.
        s->publishAsync("/d", "t", "{}", [&](sf::PublishResult r) {
            ++calls;
            first = r;
            s->publishAsync("/d", "t", "{}", [&](sf::PublishResult r2) {
                ++calls;
                second = r2;
            });
        });
        CPPUNIT_ASSERT_EQUAL(2, calls);
        CPPUNIT_ASSERT(first == sf::PublishResult::NotRunning && second == sf::PublishResult::NotRunning);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(EmbedPublishAsyncTest);
