// unit.storage_hpkv: drives the "hpkv" storage backend through the C ABI (dlopen, as the host
// does) against tools/hpkv-local, which the test spawns and kills itself.
//
//   storage_hpkv_test            run every check, print a summary, exit 1 on any failure
//   storage_hpkv_test --bench N  measure appends/s and read+remove records/s (N appends)
//   storage_hpkv_test --only S   run only the tests whose name contains S
//   HPKV_TEST_VERBOSE=1          echo the plugin's log lines
#include <streamfence/plugin.h>

#include "hpkv_client.hpp"

#include <Poco/JSON/Array.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
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
using Clock = std::chrono::steady_clock;

static int g_checks = 0, g_failed = 0;
#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        ++g_checks;                                                              \
        if (!(cond)) {                                                           \
            ++g_failed;                                                          \
            std::fprintf(stderr, "FAIL %s:%d: %s -- ", __FILE__, __LINE__, #cond); \
            std::fprintf(stderr, __VA_ARGS__);                                   \
            std::fprintf(stderr, "\n");                                          \
        }                                                                        \
    } while (0)

static long msSince(Clock::time_point t) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

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

// ------------------------------------------------------------------ host side of the C ABI

struct LogSink {
    std::mutex mu;
    std::vector<std::string> lines;
    size_t count(const std::string& needle) {
        std::lock_guard<std::mutex> lk(mu);
        size_t n = 0;
        for (auto& l : lines)
            if (l.find(needle) != std::string::npos) ++n;
        return n;
    }
};
static LogSink g_log;

static void hostLog(void*, int level, const char* event, const char* msg) {
    std::string line = "level=" + std::to_string(level) + " event=" + event + " msg=" + msg;
    if (std::getenv("HPKV_TEST_VERBOSE")) std::fprintf(stderr, "  [plugin] %s\n", line.c_str());
    std::lock_guard<std::mutex> lk(g_log.mu);
    g_log.lines.push_back(std::move(line));
}
static uint64_t hostNow(void*) {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count());
}
static uint64_t hostWall(void*) {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}
static sf_host_api g_host = {sizeof(sf_host_api), SF_ABI_VERSION, nullptr, hostLog, hostNow, hostWall, {}};

struct Rec {
    std::string data, event, messageId, key;
    uint32_t retry = 0;
    uint64_t bytes = 0;
    bool operator==(const Rec& o) const {
        return data == o.data && event == o.event && messageId == o.messageId && key == o.key && retry == o.retry && bytes == o.bytes;
    }
};

// One completion: records its single call (and counts extra calls, which are a bug).
struct Done {
    std::mutex mu;
    std::condition_variable cv;
    int calls = 0;
    int status = 1;
    std::string error;
    std::vector<Rec> recs;
    Clock::time_point at;
    bool wait(int ms) {
        std::unique_lock<std::mutex> lk(mu);
        return cv.wait_for(lk, std::chrono::milliseconds(ms), [&] { return calls > 0; });
    }
};
static std::atomic<int> g_extraCalls{0};

static void onDone(void* cookie, int status, const sf_record* rs, size_t n, const char* err) {
    Done* d = static_cast<Done*>(cookie);
    std::lock_guard<std::mutex> lk(d->mu);
    if (d->calls++ > 0) {
        ++g_extraCalls;
        return;
    }
    d->status = status;
    d->error = err ? err : "";
    d->at = Clock::now();
    for (size_t i = 0; i < n; ++i) {
        Rec r;
        r.data.assign(rs[i].data.ptr, rs[i].data.len);
        r.event.assign(rs[i].event.ptr, rs[i].event.len);
        r.messageId.assign(rs[i].message_id.ptr, rs[i].message_id.len);
        r.key.assign(rs[i].key.ptr, rs[i].key.len);
        r.retry = rs[i].retry_count;
        r.bytes = rs[i].bytes;
        d->recs.push_back(std::move(r));
    }
    d->cv.notify_all();
}

struct Lane {
    std::string server, ns, client, topic;
    sf_lane_key raw() const {
        sf_lane_key k{};
        k.struct_size = sizeof k;
        k.server = {server.data(), server.size()};
        k.ns = {ns.data(), ns.size()};
        k.client = {client.data(), client.size()};
        k.topic = {topic.data(), topic.size()};
        return k;
    }
};

struct Plugin {
    void* so = nullptr;
    const sf_plugin_descriptor* d = nullptr;
    const sf_storage_backend_vtable* vt = nullptr;
};
static Plugin g_plugin;

class Instance {
public:
    // opts: flattened options as the host would pass them.
    Instance(const std::map<std::string, std::string>& opts, std::string* err = nullptr) {
        std::vector<sf_option> items;
        for (auto& kv : opts) items.push_back({kv.first.c_str(), kv.second.c_str()});
        sf_options o{};
        o.struct_size = sizeof o;
        o.count = static_cast<uint32_t>(items.size());
        o.items = items.data();
        o.json = "{}";
        o.instance_name = "test";
        char buf[512] = {0};
        sf_error e{sizeof(sf_error), sizeof buf, buf};
        int rc = g_plugin.d->init(&g_host, &o, &inst_, &e);
        if (rc != SF_OK) {
            inst_ = nullptr;
            if (err) *err = buf;
        }
    }
    ~Instance() { destroy(); }
    void destroy() {
        auto t0 = Clock::now();
        if (inst_) g_plugin.d->destroy(inst_);
        if (inst_ && std::getenv("HPKV_TEST_VERBOSE")) std::fprintf(stderr, "  [test] destroy took %ld ms\n", msSince(t0));
        inst_ = nullptr;
    }
    bool ok() const { return inst_ != nullptr; }

    int append(const Lane& l, const Rec& r, Done* d) {
        sf_lane_key k = l.raw();
        sf_record rec{};
        rec.struct_size = sizeof rec;
        rec.retry_count = r.retry;
        rec.data = {r.data.data(), r.data.size()};
        rec.event = {r.event.data(), r.event.size()};
        rec.message_id = {r.messageId.data(), r.messageId.size()};
        rec.key = {r.key.data(), r.key.size()};
        rec.bytes = r.bytes;
        return g_plugin.vt->append(inst_, &k, &rec, onDone, d);
    }
    int read(const Lane& l, uint32_t max, Done* d) {
        sf_lane_key k = l.raw();
        return g_plugin.vt->read_oldest(inst_, &k, max, onDone, d);
    }
    int remove(const Lane& l, uint32_t n, Done* d) {
        sf_lane_key k = l.raw();
        return g_plugin.vt->remove_oldest(inst_, &k, n, onDone, d);
    }
    int clear(const Lane& l, Done* d) {
        sf_lane_key k = l.raw();
        return g_plugin.vt->clear(inst_, &k, onDone, d);
    }
    sf_storage_usage usage(const Lane* l) {
        sf_storage_usage u{};
        u.struct_size = sizeof u;
        sf_lane_key k{};
        if (l) k = l->raw();
        g_plugin.vt->usage(inst_, l ? &k : nullptr, &u);
        return u;
    }

    // Synchronous helpers (bounded waits).
    int appendSync(const Lane& l, const Rec& r, std::string* err = nullptr) {
        Done d;
        if (append(l, r, &d) != SF_OK) return -100;
        if (!d.wait(60000)) return -101;
        if (err) *err = d.error;
        return d.status;
    }
    int readSync(const Lane& l, uint32_t max, std::vector<Rec>& out) {
        Done d;
        if (read(l, max, &d) != SF_OK) return -100;
        if (!d.wait(60000)) return -101;
        out = d.recs;
        return d.status;
    }
    int removeSync(const Lane& l, uint32_t n) {
        Done d;
        if (remove(l, n, &d) != SF_OK) return -100;
        if (!d.wait(60000)) return -101;
        return d.status;
    }
    int clearSync(const Lane& l, std::string* err = nullptr) {
        Done d;
        if (clear(l, &d) != SF_OK) return -100;
        if (!d.wait(60000)) return -101;
        if (err) *err = d.error;
        return d.status;
    }
    // Reads and removes everything, in chunks.
    int drain(const Lane& l, std::vector<Rec>& all, uint32_t chunk = 300) {
        for (int i = 0; i < 100000; ++i) {
            std::vector<Rec> part;
            int rc = readSync(l, chunk, part);
            if (rc != SF_OK) return rc;
            if (part.empty()) return SF_OK;
            all.insert(all.end(), part.begin(), part.end());
            rc = removeSync(l, static_cast<uint32_t>(part.size()));
            if (rc != SF_OK) return rc;
        }
        return SF_OK;
    }

private:
    void* inst_ = nullptr;
};

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

static void testClientOps(HpkvLocal& srv) {
    Direct d(srv.baseUrl());
    auto r = d.call([&](sfhpkv::Callback cb) { d.client.set("cli:a", "{\"x\":1,\"y\":{\"z\":1}}", 3000, cb); });
    CHECK(r.ok(), "SET: %s", r.error.c_str());
    r = d.call([&](sfhpkv::Callback cb) { d.client.patch("cli:a", "{\"y\":{\"w\":2}}", 3000, cb); });
    CHECK(r.ok(), "PATCH: %s", r.error.c_str());
    r = d.call([&](sfhpkv::Callback cb) { d.client.get("cli:a", 3000, cb); });
    CHECK(r.ok() && r.body->getValue<std::string>("value").find("\"w\":2") != std::string::npos, "GET after PATCH: %s",
          r.ok() ? r.body->getValue<std::string>("value").c_str() : r.error.c_str());
    r = d.call([&](sfhpkv::Callback cb) { d.client.atomic("cli:n", 5, 3000, cb); });
    CHECK(r.ok() && r.body->getValue<int64_t>("newValue") == 5, "ATOMIC +5");
    r = d.call([&](sfhpkv::Callback cb) { d.client.atomic("cli:n", -2, 3000, cb); });
    CHECK(r.ok() && r.body->getValue<int64_t>("newValue") == 3, "ATOMIC -2");
    auto keys = d.keys("cli:", "cli:~");
    CHECK(keys.size() == 2 && keys[0] == "cli:a" && keys[1] == "cli:n", "RANGE keys: %zu", keys.size());
    r = d.call([&](sfhpkv::Callback cb) { d.client.del("cli:a", 3000, cb); });
    CHECK(r.ok(), "DELETE: %s", r.error.c_str());
    r = d.call([&](sfhpkv::Callback cb) { d.client.get("cli:a", 3000, cb); });
    CHECK(r.code == 404, "GET deleted -> 404, got %d", r.code);
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
    CHECK(good == 200, "200 pipelined SETs ok: %d", good.load());
    int right = 0;
    for (int i = 0; i < 200; i += 37) {
        auto g = d.call([&](sfhpkv::Callback cb) { d.client.get("cli:m" + std::to_string(i), 3000, cb); });
        if (g.ok() && g.body->getValue<std::string>("value") == "v" + std::to_string(i)) ++right;
    }
    CHECK(right == 6, "values by messageId: %d/6", right);
    for (int i = 0; i < 200; ++i) d.client.del("cli:m" + std::to_string(i), 5000, [](sfhpkv::Result&) {});
}

static void testFifoLanes(HpkvLocal& srv) {
    Instance inst(baseOpts(srv));
    CHECK(inst.ok(), "init");
    if (!inst.ok()) return;
    std::vector<Lane> lanes = {{"srv", "/chat", "c1", "news"}, {"srv", "/chat", "c2", "news"}, {"srv", "/chat", "c1", "a/b"}};
    std::map<int, std::vector<Rec>> expect;
    std::vector<std::unique_ptr<Done>> dones;
    // Interleaved, fully asynchronous appends across lanes.
    for (int i = 0; i < 60; ++i) {
        for (int l = 0; l < 3; ++l) {
            Rec r = makeRec("L" + std::to_string(l), i, l == 2 && i % 5 == 0);
            expect[l].push_back(r);
            dones.push_back(std::make_unique<Done>());
            CHECK(inst.append(lanes[l], r, dones.back().get()) == SF_OK, "append accepted");
        }
    }
    int ok = 0;
    for (auto& d : dones)
        if (d->wait(30000) && d->status == SF_OK) ++ok;
    CHECK(ok == 180, "180 appends ok: %d", ok);
    CHECK(inst.usage(&lanes[0]).records == 60, "lane usage records %llu", (unsigned long long)inst.usage(&lanes[0]).records);
    CHECK(inst.usage(nullptr).records == 180, "total usage records %llu", (unsigned long long)inst.usage(nullptr).records);
    uint64_t b0 = 0;
    for (auto& r : expect[0]) b0 += r.bytes;
    CHECK(inst.usage(&lanes[0]).bytes == b0, "lane usage bytes");

    // Key layout: <prefix><server>/<ns>/<client>/<topic>/<16-digit seq>, '/' escaped in parts.
    Direct direct(srv.baseUrl());
    auto keys = direct.keys("tp:srv/%2Fchat/c1/a%2Fb/", "tp:srv/%2Fchat/c1/a%2Fb/~");
    CHECK(keys.size() >= 60 && keys[0] == "tp:srv/%2Fchat/c1/a%2Fb/0000000000000000" &&
              keys[59] == "tp:srv/%2Fchat/c1/a%2Fb/0000000000000059",
          "escaped lane layout (%zu keys, first %s)", keys.size(), keys.empty() ? "-" : keys[0].c_str());
    bool meta = false;
    for (int i = 0; i < 40 && !meta; ++i) {  // the meta key is written in the background
        auto ks = direct.keys("tp:srv/%2Fchat/c1/news/meta", "tp:srv/%2Fchat/c1/news/meta");
        meta = ks.size() == 1;
        if (!meta) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(meta, "lane meta key exists");

    // Partial reads and removes keep FIFO; a read does not remove.
    for (int l = 0; l < 3; ++l) {
        std::vector<Rec> part;
        CHECK(inst.readSync(lanes[l], 25, part) == SF_OK && part.size() == 25, "read 25");
        std::vector<Rec> again;
        CHECK(inst.readSync(lanes[l], 10, again) == SF_OK && again.size() == 10 && again[0] == part[0], "read is non-destructive");
        CHECK(inst.removeSync(lanes[l], 25) == SF_OK, "remove 25");
        std::vector<Rec> rest;
        CHECK(inst.drain(lanes[l], rest, 7) == SF_OK, "drain");
        part.insert(part.end(), rest.begin(), rest.end());
        bool same = part.size() == expect[l].size();
        for (size_t i = 0; same && i < part.size(); ++i) same = part[i] == expect[l][i];
        CHECK(same, "lane %d FIFO intact (%zu of %zu records)", l, part.size(), expect[l].size());
    }
    CHECK(inst.usage(nullptr).records == 0 && inst.usage(nullptr).bytes == 0, "usage back to 0");
    auto left = direct.keys("tp:srv/%2Fchat/c2/news/0", "tp:srv/%2Fchat/c2/news/9");
    CHECK(left.empty(), "removed records deleted from HPKV (%zu left)", left.size());
    for (auto& l : lanes) CHECK(inst.clearSync(l) == SF_OK, "clear");
}

static void testClear(HpkvLocal& srv) {
    Instance inst(baseOpts(srv));
    if (!inst.ok()) { CHECK(false, "%s", "init"); return; }
    Lane a{"srv", "/ns", "cc", "t1"}, b{"srv", "/ns", "cc", "t2"};
    for (int i = 0; i < 1100; ++i) {  // more than one RANGE page
        Done d;
        inst.append(a, makeRec("c", i), &d);
        if (i % 100 == 0 || i == 1099) CHECK(d.wait(20000) && d.status == SF_OK, "append %d", i);
        else d.wait(20000);
    }
    CHECK(inst.appendSync(b, makeRec("b", 0)) == SF_OK, "append other lane");
    std::string err;
    CHECK(inst.clearSync(a, &err) == SF_OK, "clear: %s", err.c_str());
    std::vector<Rec> got;
    CHECK(inst.readSync(a, 10, got) == SF_OK && got.empty(), "read after clear returns none");
    CHECK(inst.usage(&a).records == 0, "usage after clear");
    Direct direct(srv.baseUrl());
    auto keys = direct.keys("tp:srv/%2Fns/cc/t1/", "tp:srv/%2Fns/cc/t1/~");
    CHECK(keys.empty(), "clear removed every key incl. meta (%zu left, first %s)", keys.size(), keys.empty() ? "-" : keys[0].c_str());
    CHECK(direct.keys("tp:srv/%2Fns/cc/t2/", "tp:srv/%2Fns/cc/t2/~").size() >= 1, "other lane untouched");
    CHECK(inst.readSync(b, 10, got) == SF_OK && got.size() == 1, "other lane readable");
    // The lane is usable again after a clear.
    CHECK(inst.appendSync(a, makeRec("again", 1)) == SF_OK, "append after clear");
    CHECK(inst.readSync(a, 10, got) == SF_OK && got.size() == 1 && got[0].messageId == "again-1", "read after re-append");
    CHECK(inst.clearSync(a) == SF_OK && inst.clearSync(b) == SF_OK, "final clears");
}

static void testQuotas(HpkvLocal& srv) {
    auto opts = baseOpts(srv);
    opts["maxLaneBytes"] = "1000";
    opts["maxTotalBytes"] = "1500";
    Instance inst(opts);
    if (!inst.ok()) { CHECK(false, "%s", "init"); return; }
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
    CHECK(okA == 10 && fullA == 2, "lane quota: %d ok, %d full", okA, fullA);
    CHECK(err.find("maxLaneBytes") != std::string::npos, "quota error text: %s", err.c_str());
    int okB = 0, fullB = 0;
    for (int i = 0; i < 7; ++i) {
        int rc = inst.appendSync(b, r, &err);
        okB += rc == SF_OK;
        fullB += rc == SF_ERR_FULL;
    }
    CHECK(okB == 5 && fullB == 2, "total quota: %d ok, %d full (%s)", okB, fullB, err.c_str());
    CHECK(inst.removeSync(a, 5) == SF_OK, "remove frees quota");
    CHECK(inst.appendSync(b, r) == SF_OK, "append fits again");
    CHECK(inst.usage(nullptr).bytes == 1100, "total bytes %llu", (unsigned long long)inst.usage(nullptr).bytes);
    // Async FULL completions keep per-lane issue order.
    std::vector<std::unique_ptr<Done>> ds;
    for (int i = 0; i < 8; ++i) {
        ds.push_back(std::make_unique<Done>());
        inst.append(a, r, ds.back().get());
    }
    bool ordered = true;
    for (auto& d : ds) d->wait(10000);
    for (size_t i = 1; i < ds.size(); ++i) ordered = ordered && ds[i - 1]->at <= ds[i]->at;
    CHECK(ordered, "completions in issue order");
    CHECK(inst.clearSync(a) == SF_OK && inst.clearSync(b) == SF_OK, "clears");
}

static void testLargeRecords(HpkvLocal& srv) {
    Instance inst(baseOpts(srv));
    if (!inst.ok()) { CHECK(false, "%s", "init"); return; }
    Lane lane{"srv", "/big", "c", "t"};
    Rec big = makeRec("big", 1);
    big.data.assign(60000, '\xff');  // not UTF-8: travels base64 (80 KB), still under 100 KiB
    big.bytes = big.data.size();
    std::string err;
    CHECK(inst.appendSync(lane, big, &err) == SF_OK, "60 KB binary record: %s", err.c_str());
    Rec huge = makeRec("huge", 2);
    huge.data.assign(110000, 'x');
    huge.bytes = huge.data.size();
    CHECK(inst.appendSync(lane, huge, &err) == SF_ERR && err.find("too large") != std::string::npos, "oversize refused: %s",
          err.c_str());
    Rec small = makeRec("small", 3);
    CHECK(inst.appendSync(lane, small) == SF_OK, "append after the refusal");
    std::vector<Rec> got;
    CHECK(inst.readSync(lane, 10, got) == SF_OK && got.size() == 2 && got[0] == big && got[1] == small,
          "big record round-trips byte for byte (%zu)", got.size());
    CHECK(inst.clearSync(lane) == SF_OK, "clear");
}

static void testRestartMidStream(const std::string& dataDir) {
    HpkvLocal srv(dataDir);
    if (!srv.start()) { CHECK(false, "start hpkv-local"); return; }
    int port = srv.port();
    auto opts = baseOpts(srv);
    // The server stays down longer than the request timeout, so the stream sees both outcomes:
    // appends that time out (SF_ERR_AGAIN) and appends re-sent after the reconnect.
    opts["requestTimeoutMs"] = "1200";
    opts["reconnectMaxMs"] = "400";
    Lane lane{"srv", "/spill", "client-1", "prices"};
    std::vector<Rec> sent;
    std::vector<std::unique_ptr<Done>> ds;
    size_t connectedBefore = g_log.count("event=hpkv_connected");
    std::atomic<bool> restarted{false};
    std::thread restarter;
    {
        Instance inst(opts);
        if (!inst.ok()) { CHECK(false, "%s", "init"); return; }
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
            ds.push_back(std::make_unique<Done>());
            CHECK(inst.append(lane, sent.back(), ds.back().get()) == SF_OK, "append accepted");
            if (i % 4 == 3) std::this_thread::sleep_for(std::chrono::milliseconds(4));  // ~3 s stream
        }
        long issueMs = msSince(t0);
        restarter.join();
        CHECK(restarted, "hpkv-local restarted on port %d", port);
        std::vector<Rec> okList;
        int again = 0, other = 0, lost = 0;
        for (size_t i = 0; i < ds.size(); ++i) {
            if (!ds[i]->wait(30000)) {
                ++lost;
                continue;
            }
            if (ds[i]->status == SF_OK) okList.push_back(sent[i]);
            else if (ds[i]->status == SF_ERR_AGAIN) ++again;
            else ++other;
        }
        std::printf("  restart: %zu ok, %d again, %d other, issued in %ld ms\n", okList.size(), again, other, issueMs);
        CHECK(lost == 0, "every append completed (%d did not)", lost);
        CHECK(other == 0, "failures are SF_ERR_AGAIN only (%d other)", other);
        CHECK(okList.size() >= 600, "appends before the kill and after the restart succeed (%zu ok)", okList.size());
        CHECK(!okList.empty() && okList.back().messageId == "s-1999", "the stream resumed after the restart");
        CHECK(g_log.count("event=hpkv_connected") >= connectedBefore + 2, "the plugin reconnected");
        // Same instance: everything acknowledged, in order, nothing twice.
        std::vector<Rec> read;
        CHECK(inst.readSync(lane, 2000, read) == SF_OK, "read all");
        bool same = read.size() == okList.size();
        for (size_t i = 0; same && i < read.size(); ++i) same = read[i] == okList[i];
        CHECK(same, "read == acknowledged appends in order (%zu vs %zu)", read.size(), okList.size());
        inst.destroy();  // bounded grace: pending meta write / orphan deletes finish

        // A fresh instance recovers the lane from HPKV alone (meta + RANGE).
        Instance inst2(opts);
        std::vector<Rec> all;
        CHECK(inst2.drain(lane, all, 500) == SF_OK, "drain with a fresh instance");
        same = all.size() == okList.size();
        for (size_t i = 0; same && i < all.size(); ++i) same = all[i] == okList[i];
        CHECK(same, "recovered lane == acknowledged appends (%zu vs %zu)", all.size(), okList.size());
        CHECK(g_log.count("event=hpkv_lane_recovered") >= 1, "recovery logged");
        CHECK(inst2.clearSync(lane) == SF_OK, "clear");
        Direct direct(srv.baseUrl());
        CHECK(direct.keys("tp:srv/%2Fspill/", "tp:srv/%2Fspill/~").empty(), "nothing left in HPKV");
    }
    srv.stop();
}

static void testUnreachable(const std::string& dataDir) {
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
        Instance inst({{"baseUrl", "http://127.0.0.1:" + std::to_string(deadPort)},
                       {"apiKey", "test-key"},
                       {"requestTimeoutMs", "800"}});
        if (!inst.ok()) { CHECK(false, "init with a dead server must still succeed"); return; }
        Lane lane{"srv", "/dead", "c", "t"};
        std::vector<std::unique_ptr<Done>> ds;
        auto t0 = Clock::now();
        long maxCallMs = 0;
        for (int i = 0; i < 20; ++i) {
            ds.push_back(std::make_unique<Done>());
            auto c0 = Clock::now();
            CHECK(inst.append(lane, makeRec("d", i), ds.back().get()) == SF_OK, "accepted");
            maxCallMs = std::max(maxCallMs, msSince(c0));
        }
        CHECK(maxCallMs < 50, "append() never blocks the caller (%ld ms)", maxCallMs);
        int again = 0;
        long latest = 0;
        std::string err;
        for (auto& d : ds) {
            if (d->wait(5000) && d->status == SF_ERR_AGAIN) ++again;
            latest = std::max<long>(latest, static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d->at - t0).count()));
            err = d->error;
        }
        CHECK(again == 20, "all appends fail with SF_ERR_AGAIN (%d)", again);
        CHECK(latest <= 800 + 700, "failed within the timeout (+slack): %ld ms", latest);
        CHECK(err.find("timed out") != std::string::npos && err.find("unreachable") != std::string::npos,
              "clear error text: %s", err.c_str());
        CHECK(g_log.count("event=hpkv_unreachable") >= 1, "unreachable logged");
        CHECK(g_log.count("event=hpkv_append_failed") >= 1, "failure logged");
    }
    // Server goes away after the lane is in use.
    HpkvLocal srv(dataDir);
    if (!srv.start()) { CHECK(false, "start"); return; }
    auto opts = baseOpts(srv);
    opts["requestTimeoutMs"] = "800";
    Instance inst(opts);
    Lane lane{"srv", "/dead", "c", "t2"};
    CHECK(inst.appendSync(lane, makeRec("u", 0)) == SF_OK, "append while up");
    srv.kill9();
    auto t0 = Clock::now();
    std::string err;
    int rc = inst.appendSync(lane, makeRec("u", 1), &err);
    long took = msSince(t0);
    CHECK(rc == SF_ERR_AGAIN && took <= 800 + 700, "append after the server died: rc %d in %ld ms (%s)", rc, took, err.c_str());
    std::vector<Rec> got;
    CHECK(inst.readSync(lane, 10, got) == SF_ERR_AGAIN, "read fails with SF_ERR_AGAIN too");
    CHECK(inst.usage(&lane).records == 1, "the acknowledged record is still counted");
}

static void testBadKey(HpkvLocal& srv) {
    Instance inst({{"baseUrl", srv.baseUrl() + "/"}, {"apiKey", "wrong"}, {"requestTimeoutMs", "1000"}});
    if (!inst.ok()) { CHECK(false, "%s", "init"); return; }
    std::string err;
    int rc = inst.appendSync({"s", "/n", "c", "t"}, makeRec("k", 0), &err);
    CHECK(rc == SF_ERR_AGAIN && err.find("403") != std::string::npos, "wrong key -> AGAIN with 403: %d %s", rc, err.c_str());
    std::string initErr;
    Instance noKey({{"baseUrl", srv.baseUrl()}, {"apiKeyEnv", "SF_HPKV_TEST_NO_SUCH_VAR"}}, &initErr);
    CHECK(!noKey.ok() && initErr.find("SF_HPKV_TEST_NO_SUCH_VAR") != std::string::npos, "missing env var refused: %s", initErr.c_str());
    ::setenv("SF_HPKV_TEST_KEY", "test-key", 1);
    auto opts = baseOpts(srv);
    opts.erase("apiKey");
    opts["apiKeyEnv"] = "SF_HPKV_TEST_KEY";
    Instance viaEnv(opts);
    Lane l{"s", "/n", "c", "env"};
    CHECK(viaEnv.ok() && viaEnv.appendSync(l, makeRec("e", 0)) == SF_OK, "apiKeyEnv works");
    if (viaEnv.ok()) viaEnv.clearSync(l);
    Instance badUrl({{"baseUrl", "ftp://x"}, {"apiKey", "k"}}, &initErr);
    CHECK(!badUrl.ok(), "bad baseUrl refused at init");
}

static void testRateLimited(const std::string& dataDir) {
    HpkvLocal srv(dataDir, {"--rate-limit", "20"});
    if (!srv.start()) { CHECK(false, "start"); return; }
    auto opts = baseOpts(srv);
    opts["requestTimeoutMs"] = "30000";
    Instance inst(opts);
    if (!inst.ok()) { CHECK(false, "%s", "init"); return; }
    Lane lane{"srv", "/rl", "c", "t"};
    std::vector<Rec> sent;
    std::vector<std::unique_ptr<Done>> ds;
    auto t0 = Clock::now();
    for (int i = 0; i < 80; ++i) {
        sent.push_back(makeRec("r", i));
        ds.push_back(std::make_unique<Done>());
        inst.append(lane, sent.back(), ds.back().get());
    }
    int ok = 0;
    for (auto& d : ds) ok += d->wait(40000) && d->status == SF_OK;
    long took = msSince(t0);
    std::printf("  rate-limited: %d/80 ok in %ld ms\n", ok, took);
    CHECK(ok == 80, "all appends succeed despite 429s (%d)", ok);
    CHECK(g_log.count("event=hpkv_rate_limited") >= 1, "429 back-off logged");
    std::vector<Rec> all;
    auto td = Clock::now();
    CHECK(inst.drain(lane, all, 40) == SF_OK, "drain");
    std::printf("  rate-limited drain: %ld ms\n", msSince(td));
    bool same = all.size() == sent.size();
    for (size_t i = 0; same && i < all.size(); ++i) same = all[i] == sent[i];
    CHECK(same, "order intact under 429 retries (%zu)", all.size());
    // A client-side limit avoids the 429s in the first place.
    auto opts2 = opts;
    opts2["rateLimitPerSecond"] = "15";
    size_t before = g_log.count("event=hpkv_rate_limited");
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // let the server bucket refill
    Instance paced(opts2);
    Lane l2{"srv", "/rl", "c", "t2"};
    ds.clear();
    auto t1 = Clock::now();
    for (int i = 0; i < 45; ++i) {
        ds.push_back(std::make_unique<Done>());
        paced.append(l2, makeRec("p", i), ds.back().get());
    }
    ok = 0;
    for (auto& d : ds) ok += d->wait(40000) && d->status == SF_OK;
    long pacedMs = msSince(t1);
    std::printf("  paced: 45 appends in %ld ms\n", pacedMs);
    CHECK(ok == 45, "paced appends ok (%d)", ok);
    // 47+ requests at 15/s with a burst of 15 take at least ~2.1 s.
    CHECK(pacedMs >= 1500, "client-side limit spaces requests (%ld ms for ~47 requests at 15/s)", pacedMs);
    CHECK(g_log.count("event=hpkv_rate_limited") == before, "no 429 with rateLimitPerSecond below the server's");
    auto tc = Clock::now();
    paced.clearSync(l2);
    inst.clearSync(lane);
    std::printf("  clears: %ld ms\n", msSince(tc));
}

static int bench(int n) {
    std::string dir = tmpDir("bench");
    HpkvLocal srv(dir);
    if (!srv.start()) return 1;
    Instance inst(baseOpts(srv));
    Lane lane{"srv", "/bench", "c", "t"};
    Rec r = makeRec("b", 0);
    r.data = std::string(200, 'x');
    r.bytes = 200;
    inst.appendSync(lane, r);  // loads the lane and connects
    std::vector<std::unique_ptr<Done>> ds(static_cast<size_t>(n));
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
        ds[i] = std::make_unique<Done>();
        inst.append(lane, r, ds[i].get());
    }
    int ok = 0;
    for (auto& d : ds) ok += d->wait(120000) && d->status == SF_OK;
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

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    g_plugin.so = ::dlopen(SF_HPKV_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!g_plugin.so) {
        std::fprintf(stderr, "dlopen %s: %s\n", SF_HPKV_PLUGIN_PATH, ::dlerror());
        return 1;
    }
    auto entry = reinterpret_cast<sf_plugin_entry_fn>(::dlsym(g_plugin.so, SF_PLUGIN_ENTRY_SYMBOL));
    uint32_t versions[] = {SF_ABI_VERSION};
    g_plugin.d = entry ? entry(versions, 1) : nullptr;
    if (!g_plugin.d || g_plugin.d->kind != SF_KIND_STORAGE_BACKEND || std::strcmp(g_plugin.d->name, "hpkv") != 0) {
        std::fprintf(stderr, "not the hpkv storage backend\n");
        return 1;
    }
    g_plugin.vt = static_cast<const sf_storage_backend_vtable*>(g_plugin.d->vtable);
    if (argc == 3 && std::strcmp(argv[1], "--bench") == 0) return bench(std::atoi(argv[2]));
    const char* only = argc == 3 && std::strcmp(argv[1], "--only") == 0 ? argv[2] : nullptr;  // debugging aid
    if (argc > 1 && !only) {
        std::fprintf(stderr, "usage: %s [--only SUBSTRING | --bench N]\n", argv[0]);
        return 2;
    }

    struct T {
        const char* name;
        std::function<void()> fn;
    };
    std::string base = tmpDir("run");
    HpkvLocal shared(base + "/shared");
    if (!shared.start()) {
        std::fprintf(stderr, "cannot start hpkv-local\n");
        return 1;
    }
    std::vector<T> tests = {
        {"client ops (SET/GET/PATCH/DELETE/RANGE/ATOMIC)", [&] { testClientOps(shared); }},
        {"FIFO over several lanes + key layout", [&] { testFifoLanes(shared); }},
        {"clear removes keys and meta", [&] { testClear(shared); }},
        {"quotas -> SF_ERR_FULL", [&] { testQuotas(shared); }},
        {"large and oversize records", [&] { testLargeRecords(shared); }},
        {"bad API key / apiKeyEnv / bad URL", [&] { testBadKey(shared); }},
        {"kill -9 + restart of hpkv-local mid-stream (2000 appends)", [&] { testRestartMidStream(base + "/restart"); }},
        {"unreachable server -> SF_ERR_AGAIN within the timeout", [&] { testUnreachable(base + "/dead"); }},
        {"429 back-off and client-side rate limit", [&] { testRateLimited(base + "/rl"); }},
    };
    int ran = 0;
    for (auto& t : tests) {
        if (only && !std::strstr(t.name, only)) continue;
        ++ran;
        int before = g_failed;
        auto t0 = Clock::now();
        std::printf("[ RUN  ] %s\n", t.name);
        std::fflush(stdout);
        t.fn();
        std::printf("[ %s ] %s (%ld ms)\n", g_failed == before ? " OK " : "FAIL", t.name, msSince(t0));
        std::fflush(stdout);
    }
    CHECK(g_extraCalls == 0, "a completion was called more than once (%d)", g_extraCalls.load());
    shared.stop();
    fs::remove_all(base);
    std::printf("storage_hpkv: %d checks, %d failed\n", g_checks, g_failed);
    if (only && ran == 0) {  // a filter that runs nothing must not pass
        std::fprintf(stderr, "--only %s matched no test\n", only);
        return 1;
    }
    return g_failed == 0 ? 0 : 1;
}
