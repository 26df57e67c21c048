// TlsContext: hot reload (swap, mismatched pair kept out), encrypted keys, bad files named
// in the error, file watching.
#include <cppunit/extensions/HelperMacros.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "net/file_watch.hpp"
#include "net_harness.hpp"

using namespace sf::net;
using namespace sf::nettest;

class TlsContextTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(TlsContextTest);
    CPPUNIT_TEST(tlsReloadSwapsCertForNewHandshakes);
    CPPUNIT_TEST(tlsReloadMismatchedKeyKeepsOld);
    CPPUNIT_TEST(tlsEncryptedKey);
    CPPUNIT_TEST(tlsBadFilesThrowNamingFile);
    CPPUNIT_TEST(tlsWatchFilesReloadsOnChange);
    CPPUNIT_TEST(tlsWatchFilesUsesInotify);
    CPPUNIT_TEST(fileWatchFallsBackToPolling);
    CPPUNIT_TEST_SUITE_END();

public:
    void tlsReloadSwapsCertForNewHandshakes() {
        const Certs& c = certs();
        auto tls = std::make_shared<TlsContext>(c.c1, c.k1);
        EventLoop l1("io1"), l2("io2");
        l1.start();
        l2.start();
        auto probe = std::make_shared<Probe>();
        Acceptor l(l1, {&l1, &l2}, "127.0.0.1", 0, echoFactory(probe), tls);
        l.start();
        TlsClient first(l.port());
        CPPUNIT_ASSERT(first.ok());
        CPPUNIT_ASSERT_EQUAL(std::string("one"), first.peerCN());
        std::string err;
        CPPUNIT_ASSERT(tls->reload(c.c2, c.k2, "", err));
        CPPUNIT_ASSERT(err.empty());
        CPPUNIT_ASSERT_EQUAL(std::string("two"), tls->currentSubjectCN());
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), tls->reloadCount());
        TlsClient second(l.port());
        CPPUNIT_ASSERT(second.ok());
        CPPUNIT_ASSERT_EQUAL(std::string("two"), second.peerCN());
        CPPUNIT_ASSERT_EQUAL(std::string("still here"), first.echo("still here"));
        CPPUNIT_ASSERT_EQUAL(std::string("new"), second.echo("new"));
        l.stop();
    }

    void tlsReloadMismatchedKeyKeepsOld() {
        const Certs& c = certs();
        auto tls = std::make_shared<TlsContext>(c.c1, c.k1);
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe), tls);
        l.start();
        std::string err;
        CPPUNIT_ASSERT(!tls->reload(c.c2, c.k1, "", err));
        CPPUNIT_ASSERT(err.find("does not match") != std::string::npos);
        CPPUNIT_ASSERT(err.find(c.k1) != std::string::npos);
        CPPUNIT_ASSERT(!tls->reload(c.dir + "/missing.crt", c.k1, "", err));
        CPPUNIT_ASSERT(err.find("missing.crt") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(std::string("one"), tls->currentSubjectCN());
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), tls->reloadCount());
        TlsClient cl(l.port());
        CPPUNIT_ASSERT(cl.ok());
        CPPUNIT_ASSERT_EQUAL(std::string("one"), cl.peerCN());
        CPPUNIT_ASSERT_EQUAL(std::string("ok"), cl.echo("ok"));
        // the configured paths were not replaced by the failed attempt
        CPPUNIT_ASSERT(tls->reload(err));
        CPPUNIT_ASSERT_EQUAL(std::string("one"), tls->currentSubjectCN());
        loop.stop();
        loop.join();
    }

    void tlsEncryptedKey() {
        const Certs& c = certs();
        auto tls = std::make_shared<TlsContext>(c.c3, c.k3, "s3cret");
        CPPUNIT_ASSERT_EQUAL(std::string("enc"), tls->currentSubjectCN());
        try {
            TlsContext bad(c.c3, c.k3, "wrong");
            CPPUNIT_FAIL("wrong password must throw");
        } catch (const std::runtime_error& e) {
            std::string m = e.what();
            CPPUNIT_ASSERT(m.find(c.k3) != std::string::npos);
            CPPUNIT_ASSERT(m.find("wrong password") != std::string::npos);
        }
        try {
            TlsContext bad(c.c3, c.k3);
            CPPUNIT_FAIL("missing password must throw");
        } catch (const std::runtime_error& e) {
            CPPUNIT_ASSERT(std::string(e.what()).find("no password") != std::string::npos);
        }
        EventLoop loop("io");
        loop.start();
        auto probe = std::make_shared<Probe>();
        Acceptor l(loop, {&loop}, "127.0.0.1", 0, echoFactory(probe), tls);
        l.start();
        TlsClient cl(l.port());
        CPPUNIT_ASSERT(cl.ok());
        CPPUNIT_ASSERT_EQUAL(std::string("enc"), cl.peerCN());
        CPPUNIT_ASSERT_EQUAL(std::string("secret"), cl.echo("secret"));
        // reload() re-reads the encrypted key with the stored password
        std::string err;
        CPPUNIT_ASSERT(tls->reload(err));
        loop.stop();
        loop.join();
    }

    void tlsBadFilesThrowNamingFile() {
        const Certs& c = certs();
        auto expectThrow = [](auto fn, const std::string& needle) {
            try {
                fn();
                CPPUNIT_FAIL("expected std::runtime_error mentioning " + needle);
            } catch (const std::runtime_error& e) {
                CPPUNIT_ASSERT_MESSAGE(e.what(), std::string(e.what()).find(needle) != std::string::npos);
            }
        };
        expectThrow([&] { TlsContext t(c.dir + "/nope.crt", c.k1); }, "nope.crt");
        expectThrow([&] { TlsContext t(c.c1, c.dir + "/nope.key"); }, "nope.key");
        expectThrow([&] { TlsContext t(c.k1, c.k1); }, "no PEM certificate");  // key file given as cert
        expectThrow([&] { TlsContext t(c.c1, c.c1); }, "no PEM private key");
        expectThrow([&] { TlsContext t(c.c1, c.k2); }, "does not match");
        expectThrow([&] { TlsContext t(c.c1, c.k1, "", "TLSv1.0"); }, "TLSv1.0");
        // A chain file: leaf + another cert loads (leaf is the first).
        std::string chain = c.dir + "/chain.crt";
        {
            std::ofstream out(chain);
            std::ifstream a(c.c1), b(c.c2);
            out << a.rdbuf() << b.rdbuf();
        }
        TlsContext t(chain, c.k1);
        CPPUNIT_ASSERT_EQUAL(std::string("one"), t.currentSubjectCN());
        // Garbage after the leaf is reported, not ignored.
        std::string bad = c.dir + "/badchain.crt";
        {
            std::ofstream out(bad);
            std::ifstream a(c.c1);
            out << a.rdbuf() << "-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n";
        }
        expectThrow([&] { TlsContext x(bad, c.k1); }, "certificate #2");
    }

    void tlsWatchFilesReloadsOnChange() {
        const Certs& c = certs();
        std::string cert = c.dir + "/live.crt", key = c.dir + "/live.key";
        copyFile(c.c1, cert);
        copyFile(c.k1, key);
        auto tls = std::make_shared<TlsContext>(cert, key);
        tls->watchFiles(30);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), tls->reloadCount());  // unchanged files: no reload
        copyFile(c.c2, cert);
        copyFile(c.k2, key);
        CPPUNIT_ASSERT(waitFor([&] { return tls->currentSubjectCN() == "two"; }, 3000));
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), tls->reloadCount());
        // A mismatched pair on disk is refused once; the served cert stays.
        copyFile(c.c1, cert);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        CPPUNIT_ASSERT_EQUAL(std::string("two"), tls->currentSubjectCN());
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), tls->reloadCount());
        // Completing the pair fixes it.
        copyFile(c.k1, key);
        CPPUNIT_ASSERT(waitFor([&] { return tls->currentSubjectCN() == "one"; }, 3000));
        tls->stopWatching();
    }

    // With an interval far beyond the test's patience only inotify can bring the change in,
    // on a machine however loaded: files replaced by rename, then written in place.
    void tlsWatchFilesUsesInotify() {
        const Certs& c = certs();
        std::string dir = c.dir + "/inotify";
        std::filesystem::create_directories(dir);
        std::string cert = dir + "/live.crt", key = dir + "/live.key";
        copyFile(c.c1, cert);
        copyFile(c.k1, key);
        auto tls = std::make_shared<TlsContext>(cert, key);
        tls->watchFiles(600000);
        copyFile(c.c2, cert);
        copyFile(c.k2, key);
        CPPUNIT_ASSERT(waitFor([&] { return tls->currentSubjectCN() == "two"; }, 3000));
        {
            std::ofstream(cert, std::ios::binary | std::ios::trunc) << std::ifstream(c.c1, std::ios::binary).rdbuf();
            std::ofstream(key, std::ios::binary | std::ios::trunc) << std::ifstream(c.k1, std::ios::binary).rdbuf();
        }
        CPPUNIT_ASSERT(waitFor([&] { return tls->currentSubjectCN() == "one"; }, 3000));
        auto t0 = std::chrono::steady_clock::now();
        tls->stopWatching();  // wakes the watch thread, does not wait for the interval
        CPPUNIT_ASSERT(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
    }

    void fileWatchFallsBackToPolling() {
        // A directory inotify cannot watch (it does not exist): the interval tick still runs.
        std::atomic<int> ticks{0}, events{0};
        {
            FileWatch w({"/nonexistent-sf-dir/x.pem"}, 20, 10, [&](bool ev) { (ev ? events : ticks)++; });
            CPPUNIT_ASSERT(!w.usesInotify());
            CPPUNIT_ASSERT(waitFor([&] { return ticks.load() >= 3; }, 3000));
        }
        CPPUNIT_ASSERT_EQUAL(0, events.load());
        int after = ticks.load();
        std::this_thread::sleep_for(std::chrono::milliseconds(60));
        CPPUNIT_ASSERT_EQUAL(after, ticks.load());  // destroyed means stopped
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(TlsContextTest);
