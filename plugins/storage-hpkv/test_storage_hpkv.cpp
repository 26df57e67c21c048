// unit.storage_hpkv: drives the shipped "hpkv" storage backend through the C ABI with the
// SDK-only harness the storage tests share (tests/storage/storage_harness.hpp: dlopen, as the
// host does) against tools/hpkv-local, which the test spawns and kills itself. CppUnit.
//
//   storage_hpkv_test                          every test; exit 1 on any failure
//   storage_hpkv_test HpkvStorageTest::testX   one test (a name that matches nothing fails)
//   storage_hpkv_test --bench N                appends/s and read+remove records/s (N appends)
//   SF_TEST_VERBOSE=1                          echo the plugin's log lines
#include <streamfence/plugin.h>

#include <cppunit/extensions/HelperMacros.h>

#include "cppunit_runner.hpp"
#include "storage_harness.hpp"

#include "hpkv_client.hpp"

#include <Poco/JSON/Array.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace sfstorage;

// ------------------------------------------------------------------ hpkv-local process

class HpkvLocal {
public:
    explicit HpkvLocal(std::string dataDir, std::vector<std::string> extra = {}) : dataDir_(std::move(dataDir)), extra_(std::move(extra)) {}
    ~HpkvLocal() { stop(); }

    // Starts the server (port 0 = pick one) and waits for its "event=listening ... port=N" line.
    bool start(int port = 0) {
        int fds[2];
        if (::pipe(fds) != 0) return false;
        std::vector<std::string> args = {SF_HPKV_LOCAL_BIN, "--port", std::to_string(port), "--api-key", "test-key",
                                         "--log-level", "info"};
        if (!dataDir_.empty()) {
            args.push_back("--data");
            args.push_back(dataDir_);
        }
        for (auto& e : extra_) args.push_back(e);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(fds[1], 2);
            int devnull = ::open("/dev/null", O_RDWR);
            ::dup2(devnull, 1);
            ::close(fds[0]);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            _exit(127);
        }
        ::close(fds[1]);
        if (pid_ < 0) {
            ::close(fds[0]);
            return false;
        }
        fd_ = fds[0];
        std::string buf;
        auto start = Clock::now();
        while (msSince(start) < 10000) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 200) <= 0) continue;
            char tmp[4096];
            ssize_t n = ::read(fd_, tmp, sizeof tmp);
            if (n <= 0) break;
            buf.append(tmp, static_cast<size_t>(n));
            auto ev = buf.find("event=listening");
            if (ev != std::string::npos) {
                auto pp = buf.find("port=", ev);
                auto eol = buf.find('\n', ev);
                if (pp != std::string::npos && eol != std::string::npos && pp < eol) {
                    port_ = std::atoi(buf.c_str() + pp + 5);
                    // Keep draining stderr so the server never blocks on a full pipe.
                    drain_ = std::thread([fd = fd_] {
                        char t[4096];
                        while (::read(fd, t, sizeof t) > 0) {
                        }
                    });
                    return port_ > 0;
                }
            }
        }
        std::fprintf(stderr, "hpkv-local did not start; output:\n%s\n", buf.c_str());
        kill9();
        return false;
    }
    void kill9() { signalAndWait(SIGKILL, 0); }
    void stop() { signalAndWait(SIGTERM, 5000); }
    int port() const { return port_; }
    std::string baseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }

private:
    void signalAndWait(int sig, int graceMs) {
        if (pid_ <= 0) return;
        ::kill(pid_, sig);
        auto start = Clock::now();
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (msSince(start) > graceMs) ::kill(pid_, SIGKILL);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        pid_ = -1;
        if (drain_.joinable()) drain_.join();
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    std::string dataDir_;
    std::vector<std::string> extra_;
    pid_t pid_ = -1;
    int fd_ = -1;
    int port_ = 0;
    std::thread drain_;
};

// ------------------------------------------------------------------ the plugin, through the shared harness

using Rec = Record;
using Lane = LaneKey;

// The shipped .so, loaded once through the C ABI.
static const Backend& hpkv() {
    static const Backend b(SF_HPKV_PLUGIN_PATH, "hpkv");
    return b;
}

// An instance named "test", with the status-code helpers these tests read best with.
class HpkvInstance : public sfstorage::Instance {
public:
    explicit HpkvInstance(const std::map<std::string, std::string>& opts, std::string* err = nullptr)
        : sfstorage::Instance(hpkv(), opts, "test") {
        if (err) *err = error();
    }
    using sfstorage::Instance::append;
    using sfstorage::Instance::read;
    int appendSync(const Lane& l, const Rec& r, std::string* err = nullptr) {
        Result x = append(l, r);
        if (err) *err = x.error;
        return x.status;
    }
    int readSync(const Lane& l, uint32_t max, std::vector<Rec>& out) {
        Result x = read(l, max);
        out = x.records;
        return x.status;
    }
    int removeSync(const Lane& l, uint32_t n) { return remove(l, n).status; }
    int clearSync(const Lane& l, std::string* err = nullptr) {
        Result x = clear(l);
        if (err) *err = x.error;
        return x.status;
    }
    int drain(const Lane& l, std::vector<Rec>& all, uint32_t chunk = 300) {
        int rc = SF_OK;
        all = sfstorage::Instance::drain(l, chunk, &rc);
        return rc;
    }
};

static size_t logCount(const std::string& needle) { return HostLog::instance().count(needle); }

static Rec makeRec(const std::string& tag, int i, bool binary = false) {
    Rec r;
    r.data = "{\"n\":" + std::to_string(i) + ",\"tag\":\"" + tag + "\",\"text\":\"h\\u00e9llo \\\"q\\\" \xc3\xa9\"}";
    if (binary) r.data = std::string("\x00\xff\xfe bin ", 8) + std::to_string(i) + std::string("\x80\x01", 2);
    r.event = "evt-" + tag;
    r.messageId = tag + "-" + std::to_string(i);
    r.key = i % 3 == 0 ? "" : "k" + std::to_string(i % 7);
    r.retry = static_cast<uint32_t>(i % 4);
    r.bytes = r.data.size();
    return r;
}

// A synchronous wrapper over the plugin's own client, to look at HPKV directly.
struct Direct {
    sfhpkv::Client client;
    explicit Direct(const std::string& baseUrl) : client(make(baseUrl)) {}
    static sfhpkv::ClientOptions make(const std::string& baseUrl) {
        sfhpkv::ClientOptions o;
        o.baseUrl = baseUrl;
        o.apiKey = "test-key";
        return o;
    }
    sfhpkv::Result call(const std::function<void(sfhpkv::Callback)>& fn) {
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
        sfhpkv::Result out;
        fn([&](sfhpkv::Result& r) {
            std::lock_guard<std::mutex> lk(mu);
            out = r;
            done = true;
            cv.notify_all();
        });
        std::unique_lock<std::mutex> lk(mu);
        if (!cv.wait_for(lk, std::chrono::seconds(20), [&] { return done; })) out.code = -99;
        return out;
    }
    std::vector<std::string> keys(const std::string& from, const std::string& to) {
        auto r = call([&](sfhpkv::Callback cb) { client.range(from, to, 1000, 5000, cb); });
        std::vector<std::string> out;
        if (!r.ok()) return {"<range failed: " + r.error + ">"};
        auto recs = r.body->getArray("records");
        for (size_t i = 0; recs && i < recs->size(); ++i) out.push_back(recs->getObject(static_cast<unsigned>(i))->getValue<std::string>("key"));
        return out;
    }
};

static std::string tmpDir(const std::string& name) {
    std::string d = std::string(SF_HPKV_TEST_TMP) + "/" + name + "-" + std::to_string(::getpid());
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

static std::map<std::string, std::string> baseOpts(const HpkvLocal& s) {
    return {{"baseUrl", s.baseUrl()}, {"apiKey", "test-key"}, {"keyPrefix", "tp:"}, {"requestTimeoutMs", "5000"}};
}

// ------------------------------------------------------------------ tests

// printf-style text for an assertion's message.
static std::string say(const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

// This run's scratch directory, and one hpkv-local (with --data) shared by the tests that do
// not need their own; main() stops it and removes the directory.
static const std::string& runDir() {
    static const std::string d = tmpDir("run");
    return d;
}
static std::unique_ptr<HpkvLocal>& sharedServer() {
    static std::unique_ptr<HpkvLocal> s;
    return s;
}
static HpkvLocal& shared() {
    auto& s = sharedServer();
    if (!s) {
        s = std::make_unique<HpkvLocal>(runDir() + "/shared");
        if (!s->start()) {
            s.reset();
            CPPUNIT_FAIL("cannot start hpkv-local");
        }
    }
    return *s;
}

class HpkvStorageTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(HpkvStorageTest);
    CPPUNIT_TEST(testClientOps);
    CPPUNIT_TEST(testFifoLanes);
    CPPUNIT_TEST(testClear);
    CPPUNIT_TEST(testQuotas);
    CPPUNIT_TEST(testLargeRecords);
    CPPUNIT_TEST(testRestartMidStream);
    CPPUNIT_TEST(testUnreachable);
    CPPUNIT_TEST(testBadKey);
    CPPUNIT_TEST(testRateLimited);
    CPPUNIT_TEST_SUITE_END();

public:
    void testClientOps() {
        HpkvLocal& srv = shared();
        Direct d(srv.baseUrl());
        auto r = d.call([&](sfhpkv::Callback cb) { d.client.set("cli:a", "{\"x\":1,\"y\":{\"z\":1}}", 3000, cb); });
        CPPUNIT_ASSERT_MESSAGE(say("SET: %s", r.error.c_str()), r.ok());
        r = d.call([&](sfhpkv::Callback cb) { d.client.patch("cli:a", "{\"y\":{\"w\":2}}", 3000, cb); });
        CPPUNIT_ASSERT_MESSAGE(say("PATCH: %s", r.error.c_str()), r.ok());
        r = d.call([&](sfhpkv::Callback cb) { d.client.get("cli:a", 3000, cb); });
        CPPUNIT_ASSERT_MESSAGE(say("GET after PATCH: %s",
              r.ok() ? r.body->getValue<std::string>("value").c_str() : r.error.c_str()), r.ok() && r.body->getValue<std::string>("value").find("\"w\":2") != std::string::npos);
        r = d.call([&](sfhpkv::Callback cb) { d.client.atomic("cli:n", 5, 3000, cb); });
        CPPUNIT_ASSERT_MESSAGE(say("ATOMIC +5"), r.ok() && r.body->getValue<int64_t>("newValue") == 5);
        r = d.call([&](sfhpkv::Callback cb) { d.client.atomic("cli:n", -2, 3000, cb); });
        CPPUNIT_ASSERT_MESSAGE(say("ATOMIC -2"), r.ok() && r.body->getValue<int64_t>("newValue") == 3);
        auto keys = d.keys("cli:", "cli:~");
        CPPUNIT_ASSERT_MESSAGE(say("RANGE keys: %zu", keys.size()), keys.size() == 2 && keys[0] == "cli:a" && keys[1] == "cli:n");
        r = d.call([&](sfhpkv::Callback cb) { d.client.del("cli:a", 3000, cb); });
        CPPUNIT_ASSERT_MESSAGE(say("DELETE: %s", r.error.c_str()), r.ok());
        r = d.call([&](sfhpkv::Callback cb) { d.client.get("cli:a", 3000, cb); });
        CPPUNIT_ASSERT_MESSAGE(say("GET deleted -> 404, got %d", r.code), r.code == 404);
        r = d.call([&](sfhpkv::Callback cb) { d.client.del("cli:n", 3000, cb); });
        // Many concurrent requests: messageId correlation must hand each caller its own answer.
        std::atomic<int> good{0};
        std::atomic<int> n{0};
        for (int i = 0; i < 200; ++i)
            d.client.set("cli:m" + std::to_string(i), "v" + std::to_string(i), 5000, [&, i](sfhpkv::Result& res) {
                (void)i;
                if (res.ok()) ++good;
                ++n;
            });
        auto t0 = Clock::now();
        while (n < 200 && msSince(t0) < 20000) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        CPPUNIT_ASSERT_MESSAGE(say("200 pipelined SETs ok: %d", good.load()), good == 200);
        int right = 0;
        for (int i = 0; i < 200; i += 37) {
            auto g = d.call([&](sfhpkv::Callback cb) { d.client.get("cli:m" + std::to_string(i), 3000, cb); });
            if (g.ok() && g.body->getValue<std::string>("value") == "v" + std::to_string(i)) ++right;
        }
        CPPUNIT_ASSERT_MESSAGE(say("values by messageId: %d/6", right), right == 6);
        for (int i = 0; i < 200; ++i) d.client.del("cli:m" + std::to_string(i), 5000, [](sfhpkv::Result&) {});
    }

    void testFifoLanes() {
        HpkvLocal& srv = shared();
        HpkvInstance inst(baseOpts(srv));
        CPPUNIT_ASSERT_MESSAGE(say("init"), inst.ok());
        std::vector<Lane> lanes = {{"srv", "/chat", "c1", "news"}, {"srv", "/chat", "c2", "news"}, {"srv", "/chat", "c1", "a/b"}};
        std::map<int, std::vector<Rec>> expect;
        std::vector<std::unique_ptr<Completion>> dones;
        // Interleaved, fully asynchronous appends across lanes.
        for (int i = 0; i < 60; ++i) {
            for (int l = 0; l < 3; ++l) {
                Rec r = makeRec("L" + std::to_string(l), i, l == 2 && i % 5 == 0);
                expect[l].push_back(r);
                dones.push_back(std::make_unique<Completion>());
                CPPUNIT_ASSERT_MESSAGE(say("append accepted"), inst.append(lanes[l], r, dones.back().get()) == SF_OK);
            }
        }
        int ok = 0;
        for (auto& d : dones)
            if (d->wait(30000).status == SF_OK) ++ok;
        CPPUNIT_ASSERT_MESSAGE(say("180 appends ok: %d", ok), ok == 180);
        CPPUNIT_ASSERT_MESSAGE(say("lane usage records %llu", (unsigned long long)inst.usage(&lanes[0]).records), inst.usage(&lanes[0]).records == 60);
        CPPUNIT_ASSERT_MESSAGE(say("total usage records %llu", (unsigned long long)inst.usage(nullptr).records), inst.usage(nullptr).records == 180);
        uint64_t b0 = 0;
        for (auto& r : expect[0]) b0 += r.bytes;
        CPPUNIT_ASSERT_MESSAGE(say("lane usage bytes"), inst.usage(&lanes[0]).bytes == b0);

        // Key layout: <prefix><server>/<ns>/<client>/<topic>/<16-digit seq>, '/' escaped in parts.
        Direct direct(srv.baseUrl());
        auto keys = direct.keys("tp:srv/%2Fchat/c1/a%2Fb/", "tp:srv/%2Fchat/c1/a%2Fb/~");
        CPPUNIT_ASSERT_MESSAGE(say("escaped lane layout (%zu keys, first %s)", keys.size(), keys.empty() ? "-" : keys[0].c_str()), keys.size() >= 60 && keys[0] == "tp:srv/%2Fchat/c1/a%2Fb/0000000000000000" &&
                  keys[59] == "tp:srv/%2Fchat/c1/a%2Fb/0000000000000059");
        bool meta = false;
        for (int i = 0; i < 40 && !meta; ++i) {  // the meta key is written in the background
            auto ks = direct.keys("tp:srv/%2Fchat/c1/news/meta", "tp:srv/%2Fchat/c1/news/meta");
            meta = ks.size() == 1;
            if (!meta) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        CPPUNIT_ASSERT_MESSAGE(say("lane meta key exists"), meta);

        // Partial reads and removes keep FIFO; a read does not remove.
        for (int l = 0; l < 3; ++l) {
            std::vector<Rec> part;
            CPPUNIT_ASSERT_MESSAGE(say("read 25"), inst.readSync(lanes[l], 25, part) == SF_OK && part.size() == 25);
            std::vector<Rec> again;
            CPPUNIT_ASSERT_MESSAGE(say("read is non-destructive"), inst.readSync(lanes[l], 10, again) == SF_OK && again.size() == 10 && again[0] == part[0]);
            CPPUNIT_ASSERT_MESSAGE(say("remove 25"), inst.removeSync(lanes[l], 25) == SF_OK);
            std::vector<Rec> rest;
            CPPUNIT_ASSERT_MESSAGE(say("drain"), inst.drain(lanes[l], rest, 7) == SF_OK);
            part.insert(part.end(), rest.begin(), rest.end());
            bool same = part.size() == expect[l].size();
            for (size_t i = 0; same && i < part.size(); ++i) same = part[i] == expect[l][i];
            CPPUNIT_ASSERT_MESSAGE(say("lane %d FIFO intact (%zu of %zu records)", l, part.size(), expect[l].size()), same);
        }
        CPPUNIT_ASSERT_MESSAGE(say("usage back to 0"), inst.usage(nullptr).records == 0 && inst.usage(nullptr).bytes == 0);
        auto left = direct.keys("tp:srv/%2Fchat/c2/news/0", "tp:srv/%2Fchat/c2/news/9");
        CPPUNIT_ASSERT_MESSAGE(say("removed records deleted from HPKV (%zu left)", left.size()), left.empty());
        for (auto& l : lanes) CPPUNIT_ASSERT_MESSAGE(say("clear"), inst.clearSync(l) == SF_OK);
    }

    void testClear() {
        HpkvLocal& srv = shared();
        HpkvInstance inst(baseOpts(srv));
        CPPUNIT_ASSERT_MESSAGE(say("%s", "init"), inst.ok());
        Lane a{"srv", "/ns", "cc", "t1"}, b{"srv", "/ns", "cc", "t2"};
        for (int i = 0; i < 1100; ++i) {  // more than one RANGE page
            Completion d;
            inst.append(a, makeRec("c", i), &d);
            if (i % 100 == 0 || i == 1099) CPPUNIT_ASSERT_MESSAGE(say("append %d", i), d.wait(20000).status == SF_OK);
            else d.wait(20000);
        }
        CPPUNIT_ASSERT_MESSAGE(say("append other lane"), inst.appendSync(b, makeRec("b", 0)) == SF_OK);
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(say("clear: %s", err.c_str()), inst.clearSync(a, &err) == SF_OK);
        std::vector<Rec> got;
        CPPUNIT_ASSERT_MESSAGE(say("read after clear returns none"), inst.readSync(a, 10, got) == SF_OK && got.empty());
        CPPUNIT_ASSERT_MESSAGE(say("usage after clear"), inst.usage(&a).records == 0);
        Direct direct(srv.baseUrl());
        auto keys = direct.keys("tp:srv/%2Fns/cc/t1/", "tp:srv/%2Fns/cc/t1/~");
        CPPUNIT_ASSERT_MESSAGE(say("clear removed every key incl. meta (%zu left, first %s)", keys.size(), keys.empty() ? "-" : keys[0].c_str()), keys.empty());
        CPPUNIT_ASSERT_MESSAGE(say("other lane untouched"), direct.keys("tp:srv/%2Fns/cc/t2/", "tp:srv/%2Fns/cc/t2/~").size() >= 1);
        CPPUNIT_ASSERT_MESSAGE(say("other lane readable"), inst.readSync(b, 10, got) == SF_OK && got.size() == 1);
        // The lane is usable again after a clear.
        CPPUNIT_ASSERT_MESSAGE(say("append after clear"), inst.appendSync(a, makeRec("again", 1)) == SF_OK);
        CPPUNIT_ASSERT_MESSAGE(say("read after re-append"), inst.readSync(a, 10, got) == SF_OK && got.size() == 1 && got[0].messageId == "again-1");
        CPPUNIT_ASSERT_MESSAGE(say("final clears"), inst.clearSync(a) == SF_OK && inst.clearSync(b) == SF_OK);
    }

    void testQuotas() {
        HpkvLocal& srv = shared();
        auto opts = baseOpts(srv);
        opts["maxLaneBytes"] = "1000";
        opts["maxTotalBytes"] = "1500";
        HpkvInstance inst(opts);
        CPPUNIT_ASSERT_MESSAGE(say("%s", "init"), inst.ok());
        Lane a{"srv", "/q", "c", "a"}, b{"srv", "/q", "c", "b"};
        Rec r = makeRec("q", 1);
        r.bytes = 100;
        int okA = 0, fullA = 0;
        std::string err;
        for (int i = 0; i < 12; ++i) {
            int rc = inst.appendSync(a, r, &err);
            okA += rc == SF_OK;
            fullA += rc == SF_ERR_FULL;
        }
        CPPUNIT_ASSERT_MESSAGE(say("lane quota: %d ok, %d full", okA, fullA), okA == 10 && fullA == 2);
        CPPUNIT_ASSERT_MESSAGE(say("quota error text: %s", err.c_str()), err.find("maxLaneBytes") != std::string::npos);
        int okB = 0, fullB = 0;
        for (int i = 0; i < 7; ++i) {
            int rc = inst.appendSync(b, r, &err);
            okB += rc == SF_OK;
            fullB += rc == SF_ERR_FULL;
        }
        CPPUNIT_ASSERT_MESSAGE(say("total quota: %d ok, %d full (%s)", okB, fullB, err.c_str()), okB == 5 && fullB == 2);
        CPPUNIT_ASSERT_MESSAGE(say("remove frees quota"), inst.removeSync(a, 5) == SF_OK);
        CPPUNIT_ASSERT_MESSAGE(say("append fits again"), inst.appendSync(b, r) == SF_OK);
        CPPUNIT_ASSERT_MESSAGE(say("total bytes %llu", (unsigned long long)inst.usage(nullptr).bytes), inst.usage(nullptr).bytes == 1100);
        // Async FULL completions keep per-lane issue order.
        std::vector<std::unique_ptr<Completion>> ds;
        for (int i = 0; i < 8; ++i) {
            ds.push_back(std::make_unique<Completion>());
            inst.append(a, r, ds.back().get());
        }
        bool ordered = true;
        std::vector<Result> rs;
        for (auto& d : ds) rs.push_back(d->wait(10000));
        for (size_t i = 1; i < rs.size(); ++i) ordered = ordered && rs[i - 1].at <= rs[i].at;
        CPPUNIT_ASSERT_MESSAGE(say("completions in issue order"), ordered);
        CPPUNIT_ASSERT_MESSAGE(say("clears"), inst.clearSync(a) == SF_OK && inst.clearSync(b) == SF_OK);
    }

    void testLargeRecords() {
        HpkvLocal& srv = shared();
        HpkvInstance inst(baseOpts(srv));
        CPPUNIT_ASSERT_MESSAGE(say("%s", "init"), inst.ok());
        Lane lane{"srv", "/big", "c", "t"};
        Rec big = makeRec("big", 1);
        big.data.assign(60000, '\xff');  // not UTF-8: travels base64 (80 KB), still under 100 KiB
        big.bytes = big.data.size();
        std::string err;
        CPPUNIT_ASSERT_MESSAGE(say("60 KB binary record: %s", err.c_str()), inst.appendSync(lane, big, &err) == SF_OK);
        Rec huge = makeRec("huge", 2);
        huge.data.assign(110000, 'x');
        huge.bytes = huge.data.size();
        CPPUNIT_ASSERT_MESSAGE(say("oversize refused: %s",
              err.c_str()), inst.appendSync(lane, huge, &err) == SF_ERR && err.find("too large") != std::string::npos);
        Rec small = makeRec("small", 3);
        CPPUNIT_ASSERT_MESSAGE(say("append after the refusal"), inst.appendSync(lane, small) == SF_OK);
        std::vector<Rec> got;
        CPPUNIT_ASSERT_MESSAGE(say("big record round-trips byte for byte (%zu)", got.size()), inst.readSync(lane, 10, got) == SF_OK && got.size() == 2 && got[0] == big && got[1] == small);
        CPPUNIT_ASSERT_MESSAGE(say("clear"), inst.clearSync(lane) == SF_OK);
    }

    void testRestartMidStream() {
        const std::string dataDir = runDir() + "/restart";
        HpkvLocal srv(dataDir);
        CPPUNIT_ASSERT_MESSAGE(say("start hpkv-local"), srv.start());
        int port = srv.port();
        auto opts = baseOpts(srv);
        // The server stays down longer than the request timeout, so the stream sees both outcomes:
        // appends that time out (SF_ERR_AGAIN) and appends re-sent after the reconnect.
        opts["requestTimeoutMs"] = "1200";
        opts["reconnectMaxMs"] = "400";
        Lane lane{"srv", "/spill", "client-1", "prices"};
        std::vector<Rec> sent;
        std::vector<std::unique_ptr<Completion>> ds;
        size_t connectedBefore = logCount("event=hpkv_connected");
        std::atomic<bool> restarted{false};
        std::thread restarter;
        {
            HpkvInstance inst(opts);
            CPPUNIT_ASSERT_MESSAGE(say("%s", "init"), inst.ok());
            auto t0 = Clock::now();
            for (int i = 0; i < 2000; ++i) {
                if (i == 600) {
                    restarter = std::thread([&] {
                        srv.kill9();
                        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
                        restarted = srv.start(port);
                    });
                }
                sent.push_back(makeRec("s", i));
                ds.push_back(std::make_unique<Completion>());
                CPPUNIT_ASSERT_MESSAGE(say("append accepted"), inst.append(lane, sent.back(), ds.back().get()) == SF_OK);
                if (i % 4 == 3) std::this_thread::sleep_for(std::chrono::milliseconds(4));  // ~3 s stream
            }
            long issueMs = msSince(t0);
            restarter.join();
            CPPUNIT_ASSERT_MESSAGE(say("hpkv-local restarted on port %d", port), restarted);
            std::vector<Rec> okList;
            int again = 0, other = 0, lost = 0;
            for (size_t i = 0; i < ds.size(); ++i) {
                Result r = ds[i]->wait(30000);
                if (r.status == kTimedOut) {
                    ++lost;
                    continue;
                }
                if (r.status == SF_OK) okList.push_back(sent[i]);
                else if (r.status == SF_ERR_AGAIN) ++again;
                else ++other;
            }
            std::printf("  restart: %zu ok, %d again, %d other, issued in %ld ms\n", okList.size(), again, other, issueMs);
            CPPUNIT_ASSERT_MESSAGE(say("every append completed (%d did not)", lost), lost == 0);
            CPPUNIT_ASSERT_MESSAGE(say("failures are SF_ERR_AGAIN only (%d other)", other), other == 0);
            CPPUNIT_ASSERT_MESSAGE(say("appends before the kill and after the restart succeed (%zu ok)", okList.size()), okList.size() >= 600);
            CPPUNIT_ASSERT_MESSAGE(say("the stream resumed after the restart"), !okList.empty() && okList.back().messageId == "s-1999");
            CPPUNIT_ASSERT_MESSAGE(say("the plugin reconnected"), logCount("event=hpkv_connected") >= connectedBefore + 2);
            // Same instance: everything acknowledged, in order, nothing twice.
            std::vector<Rec> read;
            CPPUNIT_ASSERT_MESSAGE(say("read all"), inst.readSync(lane, 2000, read) == SF_OK);
            bool same = read.size() == okList.size();
            for (size_t i = 0; same && i < read.size(); ++i) same = read[i] == okList[i];
            CPPUNIT_ASSERT_MESSAGE(say("read == acknowledged appends in order (%zu vs %zu)", read.size(), okList.size()), same);
            inst.destroy();  // bounded grace: pending meta write / orphan deletes finish

            // A fresh instance recovers the lane from HPKV alone (meta + RANGE).
            HpkvInstance inst2(opts);
            std::vector<Rec> all;
            CPPUNIT_ASSERT_MESSAGE(say("drain with a fresh instance"), inst2.drain(lane, all, 500) == SF_OK);
            same = all.size() == okList.size();
            for (size_t i = 0; same && i < all.size(); ++i) same = all[i] == okList[i];
            CPPUNIT_ASSERT_MESSAGE(say("recovered lane == acknowledged appends (%zu vs %zu)", all.size(), okList.size()), same);
            CPPUNIT_ASSERT_MESSAGE(say("recovery logged"), logCount("event=hpkv_lane_recovered") >= 1);
            CPPUNIT_ASSERT_MESSAGE(say("clear"), inst2.clearSync(lane) == SF_OK);
            Direct direct(srv.baseUrl());
            CPPUNIT_ASSERT_MESSAGE(say("nothing left in HPKV"), direct.keys("tp:srv/%2Fspill/", "tp:srv/%2Fspill/~").empty());
        }
        srv.stop();
    }

    void testUnreachable() {
        const std::string dataDir = runDir() + "/dead";
        // A port nobody listens on.
        int s = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
        int deadPort = ntohs(a.sin_port);
        ::close(s);
        {
            HpkvInstance inst({{"baseUrl", "http://127.0.0.1:" + std::to_string(deadPort)},
                           {"apiKey", "test-key"},
                           {"requestTimeoutMs", "800"}});
            CPPUNIT_ASSERT_MESSAGE(say("init with a dead server must still succeed"), inst.ok());
            Lane lane{"srv", "/dead", "c", "t"};
            std::vector<std::unique_ptr<Completion>> ds;
            auto t0 = Clock::now();
            long maxCallMs = 0;
            for (int i = 0; i < 20; ++i) {
                ds.push_back(std::make_unique<Completion>());
                auto c0 = Clock::now();
                CPPUNIT_ASSERT_MESSAGE(say("accepted"), inst.append(lane, makeRec("d", i), ds.back().get()) == SF_OK);
                maxCallMs = std::max(maxCallMs, msSince(c0));
            }
            CPPUNIT_ASSERT_MESSAGE(say("append() never blocks the caller (%ld ms)", maxCallMs), maxCallMs < 50);
            int again = 0;
            long latest = 0;
            std::string err;
            for (auto& d : ds) {
                Result r = d->wait(5000);
                if (r.status == SF_ERR_AGAIN) ++again;
                latest = std::max<long>(latest, static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(r.at - t0).count()));
                err = r.error;
            }
            CPPUNIT_ASSERT_MESSAGE(say("all appends fail with SF_ERR_AGAIN (%d)", again), again == 20);
            CPPUNIT_ASSERT_MESSAGE(say("failed within the timeout (+slack): %ld ms", latest), latest <= 800 + 700);
            CPPUNIT_ASSERT_MESSAGE(say("clear error text: %s", err.c_str()), err.find("timed out") != std::string::npos && err.find("unreachable") != std::string::npos);
            CPPUNIT_ASSERT_MESSAGE(say("unreachable logged"), logCount("event=hpkv_unreachable") >= 1);
            CPPUNIT_ASSERT_MESSAGE(say("failure logged"), logCount("event=hpkv_append_failed") >= 1);
        }
        // Server goes away after the lane is in use.
        HpkvLocal srv(dataDir);
        CPPUNIT_ASSERT_MESSAGE(say("start"), srv.start());
        auto opts = baseOpts(srv);
        opts["requestTimeoutMs"] = "800";
        HpkvInstance inst(opts);
        Lane lane{"srv", "/dead", "c", "t2"};
        CPPUNIT_ASSERT_MESSAGE(say("append while up"), inst.appendSync(lane, makeRec("u", 0)) == SF_OK);
        srv.kill9();
        auto t0 = Clock::now();
        std::string err;
        int rc = inst.appendSync(lane, makeRec("u", 1), &err);
        long took = msSince(t0);
        CPPUNIT_ASSERT_MESSAGE(say("append after the server died: rc %d in %ld ms (%s)", rc, took, err.c_str()), rc == SF_ERR_AGAIN && took <= 800 + 700);
        std::vector<Rec> got;
        CPPUNIT_ASSERT_MESSAGE(say("read fails with SF_ERR_AGAIN too"), inst.readSync(lane, 10, got) == SF_ERR_AGAIN);
        CPPUNIT_ASSERT_MESSAGE(say("the acknowledged record is still counted"), inst.usage(&lane).records == 1);
    }

    void testBadKey() {
        HpkvLocal& srv = shared();
        HpkvInstance inst({{"baseUrl", srv.baseUrl() + "/"}, {"apiKey", "wrong"}, {"requestTimeoutMs", "1000"}});
        CPPUNIT_ASSERT_MESSAGE(say("%s", "init"), inst.ok());
        std::string err;
        int rc = inst.appendSync({"s", "/n", "c", "t"}, makeRec("k", 0), &err);
        CPPUNIT_ASSERT_MESSAGE(say("wrong key -> AGAIN with 403: %d %s", rc, err.c_str()), rc == SF_ERR_AGAIN && err.find("403") != std::string::npos);
        std::string initErr;
        HpkvInstance noKey({{"baseUrl", srv.baseUrl()}, {"apiKeyEnv", "SF_HPKV_TEST_NO_SUCH_VAR"}}, &initErr);
        CPPUNIT_ASSERT_MESSAGE(say("missing env var refused: %s", initErr.c_str()), !noKey.ok() && initErr.find("SF_HPKV_TEST_NO_SUCH_VAR") != std::string::npos);
        ::setenv("SF_HPKV_TEST_KEY", "test-key", 1);
        auto opts = baseOpts(srv);
        opts.erase("apiKey");
        opts["apiKeyEnv"] = "SF_HPKV_TEST_KEY";
        HpkvInstance viaEnv(opts);
        Lane l{"s", "/n", "c", "env"};
        CPPUNIT_ASSERT_MESSAGE(say("apiKeyEnv works"), viaEnv.ok() && viaEnv.appendSync(l, makeRec("e", 0)) == SF_OK);
        if (viaEnv.ok()) viaEnv.clearSync(l);
        HpkvInstance badUrl({{"baseUrl", "ftp://x"}, {"apiKey", "k"}}, &initErr);
        CPPUNIT_ASSERT_MESSAGE(say("bad baseUrl refused at init"), !badUrl.ok());
    }

    void testRateLimited() {
        const std::string dataDir = runDir() + "/rl";
        HpkvLocal srv(dataDir, {"--rate-limit", "20"});
        CPPUNIT_ASSERT_MESSAGE(say("start"), srv.start());
        auto opts = baseOpts(srv);
        opts["requestTimeoutMs"] = "30000";
        HpkvInstance inst(opts);
        CPPUNIT_ASSERT_MESSAGE(say("%s", "init"), inst.ok());
        Lane lane{"srv", "/rl", "c", "t"};
        std::vector<Rec> sent;
        std::vector<std::unique_ptr<Completion>> ds;
        auto t0 = Clock::now();
        for (int i = 0; i < 80; ++i) {
            sent.push_back(makeRec("r", i));
            ds.push_back(std::make_unique<Completion>());
            inst.append(lane, sent.back(), ds.back().get());
        }
        int ok = 0;
        for (auto& d : ds) ok += d->wait(40000).status == SF_OK;
        long took = msSince(t0);
        std::printf("  rate-limited: %d/80 ok in %ld ms\n", ok, took);
        CPPUNIT_ASSERT_MESSAGE(say("all appends succeed despite 429s (%d)", ok), ok == 80);
        CPPUNIT_ASSERT_MESSAGE(say("429 back-off logged"), logCount("event=hpkv_rate_limited") >= 1);
        std::vector<Rec> all;
        auto td = Clock::now();
        CPPUNIT_ASSERT_MESSAGE(say("drain"), inst.drain(lane, all, 40) == SF_OK);
        std::printf("  rate-limited drain: %ld ms\n", msSince(td));
        bool same = all.size() == sent.size();
        for (size_t i = 0; same && i < all.size(); ++i) same = all[i] == sent[i];
        CPPUNIT_ASSERT_MESSAGE(say("order intact under 429 retries (%zu)", all.size()), same);
        // A client-side limit avoids the 429s in the first place.
        auto opts2 = opts;
        opts2["rateLimitPerSecond"] = "15";
        size_t before = logCount("event=hpkv_rate_limited");
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // let the server bucket refill
        HpkvInstance paced(opts2);
        Lane l2{"srv", "/rl", "c", "t2"};
        ds.clear();
        auto t1 = Clock::now();
        for (int i = 0; i < 45; ++i) {
            ds.push_back(std::make_unique<Completion>());
            paced.append(l2, makeRec("p", i), ds.back().get());
        }
        ok = 0;
        for (auto& d : ds) ok += d->wait(40000).status == SF_OK;
        long pacedMs = msSince(t1);
        std::printf("  paced: 45 appends in %ld ms\n", pacedMs);
        CPPUNIT_ASSERT_MESSAGE(say("paced appends ok (%d)", ok), ok == 45);
        // 47+ requests at 15/s with a burst of 15 take at least ~2.1 s.
        CPPUNIT_ASSERT_MESSAGE(say("client-side limit spaces requests (%ld ms for ~47 requests at 15/s)", pacedMs), pacedMs >= 1500);
        CPPUNIT_ASSERT_MESSAGE(say("no 429 with rateLimitPerSecond below the server's"), logCount("event=hpkv_rate_limited") == before);
        auto tc = Clock::now();
        paced.clearSync(l2);
        inst.clearSync(lane);
        std::printf("  clears: %ld ms\n", msSince(tc));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(HpkvStorageTest);

static int bench(int n) {
    std::string dir = tmpDir("bench");
    HpkvLocal srv(dir);
    if (!srv.start()) return 1;
    HpkvInstance inst(baseOpts(srv));
    Lane lane{"srv", "/bench", "c", "t"};
    Rec r = makeRec("b", 0);
    r.data = std::string(200, 'x');
    r.bytes = 200;
    inst.appendSync(lane, r);  // loads the lane and connects
    std::vector<std::unique_ptr<Completion>> ds(static_cast<size_t>(n));
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
        ds[i] = std::make_unique<Completion>();
        inst.append(lane, r, ds[i].get());
    }
    int ok = 0;
    for (auto& d : ds) ok += d->wait(120000).status == SF_OK;
    double secs = msSince(t0) / 1000.0;
    std::printf("append: %d/%d ok in %.2f s = %.0f appends/s (200-byte payloads, hpkv-local --data)\n", ok, n, secs, ok / secs);
    auto t1 = Clock::now();
    std::vector<Rec> all;
    inst.drain(lane, all, 500);
    double rs = msSince(t1) / 1000.0;
    std::printf("read+remove: %zu records in %.2f s = %.0f records/s (chunks of 500)\n", all.size(), rs, all.size() / rs);
    inst.clearSync(lane);
    srv.stop();
    fs::remove_all(dir);
    return 0;
}

// storage_hpkv_test [TestName]: every test, or the one named (HpkvStorageTest::testQuotas);
// storage_hpkv_test --bench N: appends/s and read+remove records/s.
int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    try {
        hpkv();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    if (argc == 3 && std::strcmp(argv[1], "--bench") == 0) return bench(std::atoi(argv[2]));
    if (argc > 2) {
        std::fprintf(stderr, "usage: %s [TestName | --bench N]\n", argv[0]);
        return 2;
    }
    int rc = runCppUnit(argc == 2 ? argv[1] : "");
    if (Completion::extraCalls() != 0) {
        std::fprintf(stderr, "a completion was called more than once (%d times)\n", Completion::extraCalls().load());
        rc = 1;
    }
    if (sharedServer()) sharedServer()->stop();
    fs::remove_all(runDir());
    return rc;
}
