// unit.storage_disk: loads the built storage_disk .so through the C ABI (dlopen +
// streamfence_plugin_entry), exactly as the host does, and exercises it on real files.
// The on-disk layout is parsed here from the documented format (README.md), independently
// of the plugin's own format.hpp, so a silent format change fails the test.
#include <streamfence/plugin.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <dlfcn.h>
#include <unistd.h>

namespace fs = std::filesystem;

// ------------------------------------------------------------------ tiny harness
static int g_passed = 0, g_failed = 0;
static std::string g_current;
static bool g_caseFailed = false;

#define CHECK(cond)                                                                             \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            std::fprintf(stderr, "  FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__, g_current.c_str(), #cond); \
            g_caseFailed = true;                                                                \
        }                                                                                       \
    } while (0)
#define CHECK_EQ(a, b)                                                                                   \
    do {                                                                                                 \
        auto _va = (a);                                                                                  \
        auto _vb = (b);                                                                                  \
        if (!(_va == _vb)) {                                                                             \
            std::fprintf(stderr, "  FAIL %s:%d [%s]: %s == %s (%s vs %s)\n", __FILE__, __LINE__,        \
                         g_current.c_str(), #a, #b, std::to_string(_va).c_str(), std::to_string(_vb).c_str()); \
            g_caseFailed = true;                                                                         \
        }                                                                                                \
    } while (0)
#define REQUIRE(cond)                                                                           \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            std::fprintf(stderr, "  FAIL %s:%d [%s]: %s (aborting case)\n", __FILE__, __LINE__, g_current.c_str(), #cond); \
            g_caseFailed = true;                                                                \
            return;                                                                             \
        }                                                                                       \
    } while (0)

// ------------------------------------------------------------------ host side of the ABI
static std::mutex g_logMu;
static std::vector<std::string> g_log;

static void hostLog(void*, int level, const char* event, const char* msg) {
    std::string line = std::string("level=") + std::to_string(level) + " event=" + event + " msg=" + (msg ? msg : "");
    if (std::getenv("SF_TEST_VERBOSE")) std::fprintf(stderr, "    log: %s\n", line.c_str());
    std::lock_guard<std::mutex> lk(g_logMu);
    g_log.push_back(line);
}
static uint64_t hostNow(void*) {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}
static sf_host_api g_host = {sizeof(sf_host_api), SF_ABI_VERSION, nullptr, &hostLog, &hostNow, &hostNow, {}};

static std::vector<std::string> logsWith(const std::string& needle) {
    std::lock_guard<std::mutex> lk(g_logMu);
    std::vector<std::string> out;
    for (auto& l : g_log)
        if (l.find(needle) != std::string::npos) out.push_back(l);
    return out;
}
static void clearLog() {
    std::lock_guard<std::mutex> lk(g_logMu);
    g_log.clear();
}

static const sf_plugin_descriptor* g_desc = nullptr;
static const sf_storage_backend_vtable* g_vt = nullptr;

struct Rec {
    std::string data, event, mid, key;
    uint32_t retry = 0;
    uint64_t bytes = 0;
    bool operator==(const Rec& o) const {
        return data == o.data && event == o.event && mid == o.mid && key == o.key && retry == o.retry && bytes == o.bytes;
    }
    size_t encoded() const { return 20 + 28 + data.size() + event.size() + mid.size() + key.size(); }
};

struct Key {
    std::string server = "srv", ns = "/feed", client = "c1", topic = "t";
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

struct Result {
    int status = 1234;
    std::vector<Rec> recs;
    std::string error;
    std::thread::id thread;
};

// One pending operation; the callback fills it in.
struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    int calls = 0;
    uint64_t order = 0;  // global completion sequence number
    Result r;
    Result wait() {
        std::unique_lock<std::mutex> lk(mu);
        if (!cv.wait_for(lk, std::chrono::seconds(60), [&] { return done; })) r.error = "TIMEOUT";
        return r;
    }
};

static std::atomic<uint64_t> g_completions{0};

static void onDone(void* cookie, int status, const sf_record* recs, size_t n, const char* err) {
    auto* w = static_cast<Waiter*>(cookie);
    std::lock_guard<std::mutex> lk(w->mu);
    ++w->calls;
    w->order = ++g_completions;
    w->r.status = status;
    w->r.error = err ? err : "";
    w->r.thread = std::this_thread::get_id();
    for (size_t i = 0; i < n; ++i) {
        Rec x;
        x.data.assign(recs[i].data.ptr, recs[i].data.len);
        x.event.assign(recs[i].event.ptr, recs[i].event.len);
        x.mid.assign(recs[i].message_id.ptr, recs[i].message_id.len);
        x.key.assign(recs[i].key.ptr, recs[i].key.len);
        x.retry = recs[i].retry_count;
        x.bytes = recs[i].bytes;
        w->r.recs.push_back(std::move(x));
    }
    w->done = true;
    w->cv.notify_all();
}

static sf_record rawRec(const Rec& r) {
    sf_record x{};
    x.struct_size = sizeof x;
    x.retry_count = r.retry;
    x.data = {r.data.data(), r.data.size()};
    x.event = {r.event.data(), r.event.size()};
    x.message_id = {r.mid.data(), r.mid.size()};
    x.key = {r.key.data(), r.key.size()};
    x.bytes = r.bytes;
    return x;
}

class Inst {
public:
    explicit Inst(const std::map<std::string, std::string>& opts, const std::string& instanceName = "") {
        std::vector<sf_option> items;
        for (auto& kv : opts) items.push_back({kv.first.c_str(), kv.second.c_str()});
        sf_options o{};
        o.struct_size = sizeof o;
        o.count = static_cast<uint32_t>(items.size());
        o.items = items.data();
        o.json = "{}";
        o.instance_name = instanceName.c_str();
        char buf[512] = {0};
        sf_error err{sizeof(sf_error), sizeof buf, buf};
        rc = g_desc->init(&g_host, &o, &h, &err);
        error = buf;
    }
    ~Inst() {
        if (rc == SF_OK && h) g_desc->destroy(h);
    }
    Inst(const Inst&) = delete;
    Inst& operator=(const Inst&) = delete;
    bool ok() const { return rc == SF_OK && h; }

    Result append(const Key& k, const Rec& r) {
        Waiter w;
        sf_lane_key kk = k.raw();
        sf_record rr = rawRec(r);
        int rc2 = g_vt->append(h, &kk, &rr, &onDone, &w);
        if (rc2 != SF_OK) return Result{rc2, {}, "refused", {}};
        return w.wait();
    }
    // Fire-and-forget append; the caller owns the waiter.
    int appendAsync(const Key& k, const Rec& r, Waiter* w) {
        sf_lane_key kk = k.raw();
        sf_record rr = rawRec(r);
        return g_vt->append(h, &kk, &rr, &onDone, w);
    }
    int readAsync(const Key& k, uint32_t max, Waiter* w) {
        sf_lane_key kk = k.raw();
        return g_vt->read_oldest(h, &kk, max, &onDone, w);
    }
    int removeAsync(const Key& k, uint32_t n, Waiter* w) {
        sf_lane_key kk = k.raw();
        return g_vt->remove_oldest(h, &kk, n, &onDone, w);
    }
    int clearAsync(const Key& k, Waiter* w) {
        sf_lane_key kk = k.raw();
        return g_vt->clear(h, &kk, &onDone, w);
    }
    Result read(const Key& k, uint32_t max) {
        Waiter w;
        sf_lane_key kk = k.raw();
        if (g_vt->read_oldest(h, &kk, max, &onDone, &w) != SF_OK) return Result{SF_ERR, {}, "refused", {}};
        return w.wait();
    }
    Result remove(const Key& k, uint32_t n) {
        Waiter w;
        sf_lane_key kk = k.raw();
        if (g_vt->remove_oldest(h, &kk, n, &onDone, &w) != SF_OK) return Result{SF_ERR, {}, "refused", {}};
        return w.wait();
    }
    Result clear(const Key& k) {
        Waiter w;
        sf_lane_key kk = k.raw();
        if (g_vt->clear(h, &kk, &onDone, &w) != SF_OK) return Result{SF_ERR, {}, "refused", {}};
        return w.wait();
    }
    sf_storage_usage usage(const Key* k) {
        sf_storage_usage u{};
        u.struct_size = sizeof u;
        if (k) {
            sf_lane_key kk = k->raw();
            g_vt->usage(h, &kk, &u);
        } else {
            g_vt->usage(h, nullptr, &u);
        }
        return u;
    }
    // Reads everything (in chunks), removing as it goes.
    std::vector<Rec> drain(const Key& k, uint32_t chunk = 97) {
        std::vector<Rec> all;
        for (int guard = 0; guard < 100000; ++guard) {
            Result r = read(k, chunk);
            if (r.status != SF_OK || r.recs.empty()) break;
            for (auto& x : r.recs) all.push_back(x);
            if (remove(k, static_cast<uint32_t>(r.recs.size())).status != SF_OK) break;
        }
        return all;
    }

    void* h = nullptr;
    int rc = SF_ERR;
    std::string error;
};

// ------------------------------------------------------------------ helpers
static std::string g_tmp;

static std::string freshRoot(const std::string& name) {
    std::string p = g_tmp + "/" + name;
    std::error_code ec;
    fs::remove_all(p, ec);
    fs::create_directories(p);
    return p;
}

// Record i of a lane: varying sizes, binary bytes, and the record magic inside the payload
// so the forward scan after a corrupt record must not be fooled by it.
static Rec makeRec(const std::string& lane, int i, size_t minPad = 0) {
    Rec r;
    r.data = "{\"lane\":\"" + lane + "\",\"i\":" + std::to_string(i) + ",\"pad\":\"";
    size_t pad = minPad + static_cast<size_t>((i * 37) % 300);
    for (size_t j = 0; j < pad; ++j) r.data += static_cast<char>('a' + (i + j) % 26);
    r.data += "\"}";
    if (i % 7 == 3) r.data += std::string("\0\xF5\x5F\xD1\x5C\0zz", 8);
    r.event = i % 2 ? "order" : "snapshot";
    r.mid = i % 3 ? "msg-" + std::to_string(i) : "";
    r.key = i % 5 ? "" : "k" + std::to_string(i % 11);
    r.retry = static_cast<uint32_t>(i % 4);
    r.bytes = r.data.size();
    return r;
}

static std::string laneDirOf(const std::string& root, const Key& k) {
    // Only for plain names (no characters needing sanitizing).
    std::string d = root + "/" + k.server;
    std::string ns = k.ns;
    size_t i = 0;
    while (i <= ns.size()) {
        size_t j = ns.find('/', i);
        if (j == std::string::npos) j = ns.size();
        if (j > i) d += "/" + ns.substr(i, j - i);
        i = j + 1;
    }
    return d + "/" + k.client + "/" + k.topic;
}

static std::vector<std::string> segFiles(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return out;
    for (auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".seg" && e.is_regular_file()) out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

static uint64_t sizeOfSegs(const std::string& dir) {
    uint64_t n = 0;
    for (auto& f : segFiles(dir)) n += fs::file_size(f);
    return n;
}

static std::string readFile(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
static void writeFile(const std::string& p, const std::string& s) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(s.data(), static_cast<std::streamsize>(s.size()));
}
static uint32_t le32(const std::string& s, size_t off) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[off + static_cast<size_t>(i)]);
    return v;
}
// Record offsets in a segment, walking the documented header (length at +4, 20-byte header).
static std::vector<size_t> recordOffsets(const std::string& seg) {
    std::vector<size_t> out;
    size_t off = 0;
    while (off + 20 <= seg.size()) {
        out.push_back(off);
        off += 20 + le32(seg, off + 4);
    }
    return out;
}

static bool sameRange(const std::vector<Rec>& got, const std::vector<Rec>& want, size_t from, size_t n) {
    if (got.size() != n || from + n > want.size()) return false;
    for (size_t i = 0; i < n; ++i)
        if (!(got[i] == want[from + i])) return false;
    return true;
}

// ------------------------------------------------------------------ cases
static void testDescriptor() {
    CHECK_EQ(g_desc->abi_version, static_cast<uint32_t>(SF_ABI_VERSION));
    CHECK_EQ(g_desc->kind, static_cast<uint32_t>(SF_KIND_STORAGE_BACKEND));
    CHECK(std::string(g_desc->name) == "disk");
    REQUIRE(g_vt);
    CHECK(g_vt->struct_size >= sizeof(sf_storage_backend_vtable));
    CHECK(g_vt->append && g_vt->read_oldest && g_vt->remove_oldest && g_vt->clear && g_vt->usage);
}

static void testOptions() {
    std::string root = freshRoot("options");
    { Inst i({{"root", root}, {"staleSpill", "keep"}}); CHECK(!i.ok()); CHECK(i.error.find("staleSpill") != std::string::npos); }
    { Inst i({{"root", root}, {"segmentBytes", "10"}}); CHECK(!i.ok()); CHECK(i.error.find("segmentBytes") != std::string::npos); }
    { Inst i({{"root", root}, {"durable", "yes"}}); CHECK(!i.ok()); CHECK(i.error.find("durable") != std::string::npos); }
    { Inst i({{"root", root}, {"maxLaneBytes", "lots"}}); CHECK(!i.ok()); CHECK(i.error.find("maxLaneBytes") != std::string::npos); }
    { Inst i({{"root", root}, {"ioThreads", "0"}}); CHECK(!i.ok()); }
    { Inst i({{"root", root}, {"maxLaneBytes", "64MiB"}, {"maxTotalBytes", "1GiB"}, {"segmentBytes", "4M"},
              {"ioThreads", "2"}, {"durable", "false"}, {"staleSpill", "recover"}});
      CHECK(i.ok()); CHECK(i.error.empty()); }
}

// Completions from the worker, never the caller; append order = completion order = read order.
static void testFifoAcrossSegments() {
    std::string root = freshRoot("fifo");
    Inst inst({{"root", root}, {"segmentBytes", "4096"}});
    REQUIRE(inst.ok());
    Key k;
    std::vector<Rec> want;
    const int N = 3000;
    std::vector<std::unique_ptr<Waiter>> ws;
    std::vector<int> completionOrder;
    std::mutex orderMu;
    for (int i = 0; i < N; ++i) {
        want.push_back(makeRec("fifo", i));
        ws.push_back(std::make_unique<Waiter>());
        REQUIRE(inst.appendAsync(k, want.back(), ws.back().get()) == SF_OK);
    }
    bool allOk = true, offThread = true;
    for (int i = 0; i < N; ++i) {
        Result r = ws[static_cast<size_t>(i)]->wait();
        allOk = allOk && r.status == SF_OK && ws[static_cast<size_t>(i)]->calls == 1;
        offThread = offThread && r.thread != std::this_thread::get_id();
    }
    CHECK(allOk);
    CHECK(offThread);
    auto segsAfterWrite = segFiles(laneDirOf(root, k)).size();
    CHECK(segsAfterWrite > 10);  // ~ 600 KB of records in 4 KiB segments

    // consume with uneven reads/removes while appending more to the same tail segment
    std::mt19937 rng(42);
    size_t pos = 0;
    int next = N;
    bool ok = true;
    uint64_t minSegs = segsAfterWrite;
    while (pos < want.size() && ok) {
        uint32_t k1 = 1 + rng() % 120;
        Result r = inst.read(k, k1);
        size_t expectN = std::min<size_t>(k1, want.size() - pos);
        if (r.status != SF_OK || !sameRange(r.recs, want, pos, expectN)) {
            std::fprintf(stderr, "  read mismatch at pos %zu (got %zu records, status %d)\n", pos, r.recs.size(), r.status);
            ok = false;
            break;
        }
        // re-reading without removing returns the same records
        if (rng() % 4 == 0) {
            Result again = inst.read(k, k1);
            ok = ok && sameRange(again.recs, want, pos, expectN);
        }
        uint32_t rm = 1 + rng() % static_cast<uint32_t>(expectN);
        ok = ok && inst.remove(k, rm).status == SF_OK;
        pos += rm;
        if (next < N + 500 && rng() % 3 == 0) {
            for (int j = 0; j < 5; ++j, ++next) {
                want.push_back(makeRec("fifo", next));
                ok = ok && inst.append(k, want.back()).status == SF_OK;
            }
        }
        minSegs = std::min<uint64_t>(minSegs, segFiles(laneDirOf(root, k)).size());
    }
    CHECK(ok);
    CHECK_EQ(pos, want.size());
    CHECK(minSegs < segsAfterWrite);  // consumed segments were deleted along the way
    auto u = inst.usage(&k);
    CHECK_EQ(u.records, 0ull);
    CHECK_EQ(u.bytes, 0ull);
    CHECK(segFiles(laneDirOf(root, k)).empty());
    CHECK(inst.read(k, 10).recs.empty());
    // removing more than exists is harmless
    CHECK_EQ(inst.remove(k, 5).status, SF_OK);
}

// Operations issued back to back without waiting: each sees the effect of the ones before
// it, and their callbacks run in issue order.
static void testPipelinedOpsInOrder() {
    std::string root = freshRoot("pipelined");
    Inst inst({{"root", root}, {"segmentBytes", "4096"}});
    REQUIRE(inst.ok());
    Key k;
    std::vector<Rec> want;
    std::vector<std::unique_ptr<Waiter>> ws;
    auto w = [&] { ws.push_back(std::make_unique<Waiter>()); return ws.back().get(); };
    for (int round = 0; round < 20; ++round) {
        ws.clear();
        want.clear();
        for (int i = 0; i < 50; ++i) {
            want.push_back(makeRec("p", round * 1000 + i));
            REQUIRE(inst.appendAsync(k, want.back(), w()) == SF_OK);
        }
        Waiter* r1 = w();
        REQUIRE(inst.readAsync(k, 1000, r1) == SF_OK);
        REQUIRE(inst.removeAsync(k, 20, w()) == SF_OK);
        Waiter* r2 = w();
        REQUIRE(inst.readAsync(k, 1000, r2) == SF_OK);
        for (int i = 50; i < 60; ++i) {
            want.push_back(makeRec("p", round * 1000 + i));
            REQUIRE(inst.appendAsync(k, want.back(), w()) == SF_OK);
        }
        Waiter* r3 = w();
        REQUIRE(inst.readAsync(k, 1000, r3) == SF_OK);
        for (int i = 60; i < 65; ++i) REQUIRE(inst.appendAsync(k, makeRec("p", i), w()) == SF_OK);  // then cleared
        REQUIRE(inst.clearAsync(k, w()) == SF_OK);
        Waiter* r4 = w();
        REQUIRE(inst.readAsync(k, 1000, r4) == SF_OK);
        uint64_t last = 0;
        bool inOrder = true, allOk = true;
        for (auto& x : ws) {
            Result r = x->wait();
            allOk = allOk && r.status == SF_OK;
            inOrder = inOrder && x->order > last;
            last = x->order;
        }
        CHECK(allOk);
        CHECK(inOrder);
        CHECK(sameRange(r1->r.recs, want, 0, 50));
        CHECK(sameRange(r2->r.recs, want, 20, 30));
        CHECK(sameRange(r3->r.recs, want, 20, 40));
        CHECK(r4->r.recs.empty());
        if (g_caseFailed) return;
    }
}

static void testFieldsRoundTrip() {
    std::string root = freshRoot("fields");
    Inst inst({{"root", root}});
    REQUIRE(inst.ok());
    Key k;
    Rec empty;  // all fields empty
    Rec big;
    big.data.assign(700 * 1024, 'x');  // larger than one read chunk
    big.data[12345] = '\0';
    big.event = "e";
    big.mid = "m-1";
    big.key = "key";
    big.retry = 7;
    big.bytes = 123456789012ull;
    CHECK_EQ(inst.append(k, empty).status, SF_OK);
    CHECK_EQ(inst.append(k, big).status, SF_OK);
    CHECK_EQ(inst.append(k, empty).status, SF_OK);
    Result r = inst.read(k, 10);
    REQUIRE(r.recs.size() == 3);
    CHECK(r.recs[0] == empty);
    CHECK(r.recs[1] == big);
    CHECK(r.recs[2] == empty);
    CHECK_EQ(inst.read(k, 0).recs.size(), 0u);
}

static void testIsolationAndClear() {
    std::string root = freshRoot("isolation");
    Inst inst({{"root", root}});
    REQUIRE(inst.ok());
    Key a, b, c, d, e;
    b.client = "c2";
    c.topic = "a/b";  // sanitizes to a_b~hash: must not collide with d
    d.topic = "a_b";
    e.ns = "/other";
    std::vector<Key> keys = {a, b, c, d, e};
    std::vector<std::vector<Rec>> want(keys.size());
    for (int i = 0; i < 200; ++i)
        for (size_t l = 0; l < keys.size(); ++l) {
            want[l].push_back(makeRec("L" + std::to_string(l), i));
            REQUIRE(inst.append(keys[l], want[l].back()).status == SF_OK);
        }
    for (size_t l = 0; l < keys.size(); ++l) {
        Result r = inst.read(keys[l], 1000);
        CHECK(sameRange(r.recs, want[l], 0, 200));
    }
    // clear a: its files and directory go, the others stay intact
    std::string dirA = laneDirOf(root, a);
    REQUIRE(!segFiles(dirA).empty());
    CHECK_EQ(inst.clear(a).status, SF_OK);
    CHECK(!fs::exists(dirA));
    CHECK(fs::exists(root + "/srv/feed/c1"));  // still holds c1's other topics
    CHECK_EQ(inst.usage(&a).records, 0ull);
    CHECK(inst.read(a, 10).recs.empty());
    for (size_t l = 1; l < keys.size(); ++l) CHECK(sameRange(inst.read(keys[l], 1000).recs, want[l], 0, 200));
    // clearing everything removes empty parents up to, not including, root
    for (auto& k : keys) CHECK_EQ(inst.clear(k).status, SF_OK);
    CHECK(fs::exists(root));
    CHECK(!fs::exists(root + "/srv"));
    CHECK_EQ(inst.usage(nullptr).records, 0ull);
    CHECK_EQ(inst.usage(nullptr).bytes, 0ull);
    // a cleared lane is usable again
    CHECK_EQ(inst.append(a, want[0][0]).status, SF_OK);
    CHECK(sameRange(inst.read(a, 5).recs, want[0], 0, 1));
    // clear of a lane that never existed
    Key ghost;
    ghost.client = "nobody";
    CHECK_EQ(inst.clear(ghost).status, SF_OK);
}

static void testSanitizedPathsStayUnderRoot() {
    std::string root = freshRoot("sanitize");
    Inst inst({{"root", root}});
    REQUIRE(inst.ok());
    Key k;
    k.server = "..";
    k.ns = "/../..";
    k.client = "../../x";
    k.topic = "..";
    CHECK_EQ(inst.append(k, makeRec("s", 1)).status, SF_OK);
    size_t segs = 0;
    for (auto& e : fs::recursive_directory_iterator(root))
        if (e.path().extension() == ".seg") ++segs;
    CHECK_EQ(segs, 1u);
    CHECK(!fs::exists(g_tmp + "/x"));
    CHECK_EQ(inst.read(k, 5).recs.size(), 1u);
    CHECK_EQ(inst.clear(k).status, SF_OK);
    CHECK(fs::is_empty(root));
}

static void testUsage() {
    std::string root = freshRoot("usage");
    Inst inst({{"root", root}, {"segmentBytes", "8192"}});
    REQUIRE(inst.ok());
    Key a, b;
    b.client = "c2";
    std::vector<Rec> ra;
    uint64_t bytesA = 0, bytesB = 0;
    for (int i = 0; i < 150; ++i) {
        ra.push_back(makeRec("a", i));
        bytesA += ra.back().encoded();
        REQUIRE(inst.append(a, ra.back()).status == SF_OK);
    }
    for (int i = 0; i < 40; ++i) {
        Rec r = makeRec("b", i);
        bytesB += r.encoded();
        REQUIRE(inst.append(b, r).status == SF_OK);
    }
    auto ua = inst.usage(&a), ub = inst.usage(&b), ug = inst.usage(nullptr);
    CHECK_EQ(ua.records, 150ull);
    CHECK_EQ(ua.bytes, bytesA);
    CHECK_EQ(sizeOfSegs(laneDirOf(root, a)), bytesA);
    CHECK_EQ(ub.records, 40ull);
    CHECK_EQ(ub.bytes, bytesB);
    CHECK_EQ(ug.records, 190ull);
    CHECK_EQ(ug.bytes, bytesA + bytesB);
    REQUIRE(inst.read(a, 60).recs.size() == 60);
    REQUIRE(inst.remove(a, 60).status == SF_OK);
    uint64_t removed = 0;
    for (int i = 0; i < 60; ++i) removed += ra[static_cast<size_t>(i)].encoded();
    ua = inst.usage(&a);
    CHECK_EQ(ua.records, 90ull);
    CHECK_EQ(ua.bytes, bytesA - removed);
    CHECK_EQ(inst.usage(nullptr).bytes, bytesA - removed + bytesB);
    Key none;
    none.client = "none";
    CHECK_EQ(inst.usage(&none).records, 0ull);
}

static void testQuotas() {
    std::string root = freshRoot("quota");
    Rec r = makeRec("q", 0);
    r.data.assign(952, 'q');  // ~1 KB encoded
    r.bytes = r.data.size();
    const uint64_t sz = r.encoded();
    Inst inst({{"root", root}, {"maxLaneBytes", std::to_string(10 * sz + 5)}, {"maxTotalBytes", std::to_string(25 * sz)}});
    REQUIRE(inst.ok());
    Key a, b, c;
    b.client = "c2";
    c.client = "c3";
    int okA = 0;
    Result full;
    for (int i = 0; i < 20; ++i) {
        Result x = inst.append(a, r);
        if (x.status == SF_OK) ++okA;
        else { full = x; break; }
    }
    CHECK_EQ(okA, 10);
    CHECK_EQ(full.status, SF_ERR_FULL);
    CHECK(full.error.find("maxLaneBytes") != std::string::npos);
    CHECK_EQ(inst.usage(&a).records, 10ull);
    int okB = 0, okC = 0;
    for (int i = 0; i < 10; ++i) okB += inst.append(b, r).status == SF_OK;
    CHECK_EQ(okB, 10);
    for (int i = 0; i < 10; ++i) {
        Result x = inst.append(c, r);
        if (x.status == SF_OK) ++okC;
        else { full = x; break; }
    }
    CHECK_EQ(okC, 5);  // 25 fit in total
    CHECK_EQ(full.status, SF_ERR_FULL);
    CHECK(full.error.find("maxTotalBytes") != std::string::npos);
    CHECK(inst.usage(nullptr).bytes <= 25 * sz);
    // data already spilled is intact, and space comes back when records are removed
    CHECK_EQ(inst.read(a, 100).recs.size(), 10u);
    REQUIRE(inst.remove(a, 3).status == SF_OK);
    CHECK_EQ(inst.append(c, r).status, SF_OK);
    CHECK_EQ(inst.append(a, r).status, SF_OK);
    // async burst past the quota: the overflow completes FULL, in order, none lost
    std::vector<std::unique_ptr<Waiter>> ws;
    for (int i = 0; i < 10; ++i) {
        ws.push_back(std::make_unique<Waiter>());
        REQUIRE(inst.appendAsync(b, r, ws.back().get()) == SF_OK);
    }
    int fulls = 0;
    for (auto& w : ws) fulls += w->wait().status == SF_ERR_FULL;
    CHECK_EQ(fulls, 10);
}

static void testDurable() {
    std::string root = freshRoot("durable");
    Inst inst({{"root", root}, {"durable", "true"}, {"segmentBytes", "16384"}});
    REQUIRE(inst.ok());
    Key k;
    std::vector<Rec> want;
    std::vector<std::unique_ptr<Waiter>> ws;
    for (int i = 0; i < 300; ++i) {
        want.push_back(makeRec("d", i));
        ws.push_back(std::make_unique<Waiter>());
        REQUIRE(inst.appendAsync(k, want.back(), ws.back().get()) == SF_OK);
    }
    bool ok = true;
    for (auto& w : ws) ok = ok && w->wait().status == SF_OK;
    for (int i = 300; i < 320; ++i) {
        want.push_back(makeRec("d", i));
        ok = ok && inst.append(k, want.back()).status == SF_OK;
    }
    CHECK(ok);
    // acknowledged = on disk: visible in the files before any read
    CHECK_EQ(sizeOfSegs(laneDirOf(root, k)), inst.usage(&k).bytes);
    auto got = inst.drain(k);
    CHECK(sameRange(got, want, 0, want.size()));
}

static void testCorruptMiddle() {
    std::string root = freshRoot("corrupt");
    Inst inst({{"root", root}});
    REQUIRE(inst.ok());
    Key k;
    std::vector<Rec> want;
    for (int i = 0; i < 10; ++i) {
        want.push_back(makeRec("c", i));
        REQUIRE(inst.append(k, want.back()).status == SF_OK);
    }
    auto segs = segFiles(laneDirOf(root, k));
    REQUIRE(segs.size() == 1);
    std::string s = readFile(segs[0]);
    auto offs = recordOffsets(s);
    REQUIRE(offs.size() == 10);
    s[offs[3] + 20 + 30] ^= 0x5A;                                      // payload byte: crc mismatch
    s[offs[5]] = 'X';                                                  // magic
    s[offs[7] + 4] = '\xF0', s[offs[7] + 7] = '\x7F';                  // absurd length
    writeFile(segs[0], s);
    clearLog();
    Result r = inst.read(k, 100);
    std::vector<Rec> expect = {want[0], want[1], want[2], want[4], want[6], want[8], want[9]};
    CHECK_EQ(r.recs.size(), expect.size());
    CHECK(sameRange(r.recs, expect, 0, expect.size()));
    auto corrupt = logsWith("event=spill_corrupt");
    CHECK_EQ(corrupt.size(), 3u);
    CHECK(!logsWith("offset=" + std::to_string(offs[3]) + " reason=checksum mismatch").empty());
    CHECK(!logsWith("offset=" + std::to_string(offs[5]) + " reason=bad magic").empty());
    CHECK(!logsWith("offset=" + std::to_string(offs[7])).empty());
    CHECK(!corrupt.empty() && corrupt[0].find(segs[0]) != std::string::npos);
    CHECK_EQ(inst.usage(&k).records, 7ull);  // the 3 lost ones are no longer counted
    REQUIRE(inst.remove(k, 7).status == SF_OK);
    CHECK_EQ(inst.usage(&k).records, 0ull);
    CHECK_EQ(inst.usage(&k).bytes, 0ull);
    CHECK(segFiles(laneDirOf(root, k)).empty());
    // the lane keeps working after the corruption
    CHECK_EQ(inst.append(k, want[0]).status, SF_OK);
    CHECK(sameRange(inst.read(k, 5).recs, want, 0, 1));
}

static void testTornTail() {
    // live: the file is cut under a running instance
    {
        std::string root = freshRoot("torn-live");
        Inst inst({{"root", root}});
        REQUIRE(inst.ok());
        Key k;
        std::vector<Rec> want;
        for (int i = 0; i < 5; ++i) {
            want.push_back(makeRec("t", i));
            REQUIRE(inst.append(k, want.back()).status == SF_OK);
        }
        auto segs = segFiles(laneDirOf(root, k));
        REQUIRE(segs.size() == 1);
        fs::resize_file(segs[0], fs::file_size(segs[0]) - 10);
        clearLog();
        Result r = inst.read(k, 100);
        CHECK(sameRange(r.recs, want, 0, 4));
        CHECK_EQ(logsWith("event=spill_corrupt").size(), 1u);
        CHECK_EQ(inst.usage(&k).records, 4ull);
        // appends go on and are readable after the hole
        want.push_back(makeRec("t", 5));
        CHECK_EQ(inst.append(k, want.back()).status, SF_OK);
        REQUIRE(inst.remove(k, 4).status == SF_OK);
        Result r2 = inst.read(k, 100);
        CHECK_EQ(r2.recs.size(), 1u);
        CHECK(!r2.recs.empty() && r2.recs[0] == want[5]);
        CHECK_EQ(inst.usage(&k).records, 1ull);
    }
    // after a crash: the last record of the previous run is half written
    {
        std::string root = freshRoot("torn-restart");
        Key k;
        std::vector<Rec> want;
        {
            Inst a({{"root", root}, {"staleSpill", "recover"}}, "srv");
            REQUIRE(a.ok());
            for (int i = 0; i < 10; ++i) {
                want.push_back(makeRec("t", i));
                REQUIRE(a.append(k, want.back()).status == SF_OK);
            }
        }
        auto segs = segFiles(laneDirOf(root, k));
        REQUIRE(segs.size() == 1);
        fs::resize_file(segs[0], fs::file_size(segs[0]) - 7);
        clearLog();
        Inst b({{"root", root}, {"staleSpill", "recover"}}, "srv");
        REQUIRE(b.ok());
        Result r = b.read(k, 100);  // queued behind the start-up scan
        CHECK_EQ(b.usage(nullptr).records, 9ull);
        CHECK(!logsWith("action=recover").empty() && logsWith("action=recover")[0].find("records=9 ") != std::string::npos);
        CHECK(sameRange(r.recs, want, 0, 9));
        auto torn = logsWith("event=spill_corrupt");
        CHECK_EQ(torn.size(), 1u);
        CHECK(!torn.empty() && torn[0].find("torn") != std::string::npos);
        for (int i = 10; i < 13; ++i) {
            want.push_back(makeRec("t", i));
            CHECK_EQ(b.append(k, want.back()).status, SF_OK);
        }
        std::vector<Rec> expect(want.begin(), want.begin() + 9);
        expect.insert(expect.end(), want.begin() + 10, want.end());
        auto all = b.drain(k);
        CHECK(sameRange(all, expect, 0, expect.size()));
        CHECK_EQ(b.usage(nullptr).records, 0ull);
    }
}

static void testRestartRecover() {
    std::string root = freshRoot("recover");
    std::vector<Key> keys(3);
    keys[1].client = "c2";
    keys[2].ns = "/a/b";
    std::vector<std::vector<Rec>> want(3);
    {
        Inst a({{"root", root}, {"staleSpill", "recover"}, {"segmentBytes", "4096"}}, "srv");
        REQUIRE(a.ok());
        for (size_t l = 0; l < 3; ++l)
            for (int i = 0; i < 100; ++i) {
                want[l].push_back(makeRec("r" + std::to_string(l), i));
                REQUIRE(a.append(keys[l], want[l].back()).status == SF_OK);
            }
        REQUIRE(a.read(keys[0], 10).recs.size() == 10);
        REQUIRE(a.remove(keys[0], 10).status == SF_OK);
    }  // destroyed without clear: like a crash
    clearLog();
    Inst b({{"root", root}, {"staleSpill", "recover"}, {"segmentBytes", "4096"}}, "srv");
    REQUIRE(b.ok());
    // the start-up scan runs on the worker; an operation queued behind it waits for it
    CHECK(b.read(keys[1], 1).recs.size() == 1);
    auto rep = logsWith("event=spill_stale_found");
    REQUIRE(rep.size() == 1);
    CHECK(rep[0].find("action=recover") != std::string::npos);
    CHECK(rep[0].find("lanes=3") != std::string::npos);
    CHECK(rep[0].find("records=290") != std::string::npos);
    CHECK_EQ(b.usage(nullptr).records, 290ull);
    CHECK_EQ(b.usage(&keys[2]).records, 100ull);  // known before the lane is touched
    for (int i = 100; i < 105; ++i) {
        want[0].push_back(makeRec("r0", i));
        CHECK_EQ(b.append(keys[0], want[0].back()).status, SF_OK);
    }
    auto got0 = b.drain(keys[0]);
    CHECK(sameRange(got0, want[0], 10, 95));
    CHECK(sameRange(b.drain(keys[1]), want[1], 0, 100));
    CHECK(sameRange(b.drain(keys[2], 1000), want[2], 0, 100));
    CHECK_EQ(b.usage(nullptr).records, 0ull);
    CHECK_EQ(b.usage(nullptr).bytes, 0ull);
    for (auto& k : keys) CHECK(segFiles(laneDirOf(root, k)).empty());
}

static void testRestartRemove() {
    std::string root = freshRoot("remove");
    Key a, b;
    b.client = "c2";
    {
        Inst x({{"root", root}, {"segmentBytes", "4096"}}, "srv");
        REQUIRE(x.ok());
        for (int i = 0; i < 100; ++i) {
            REQUIRE(x.append(a, makeRec("a", i)).status == SF_OK);
            REQUIRE(x.append(b, makeRec("b", i)).status == SF_OK);
        }
    }
    writeFile(root + "/srv/feed/keep.txt", "not ours");
    writeFile(laneDirOf(root, a) + "/notes.tmp", "not ours either");
    uint64_t bytes = sizeOfSegs(laneDirOf(root, a)) + sizeOfSegs(laneDirOf(root, b));
    clearLog();
    Inst y({{"root", root}}, "srv");  // staleSpill defaults to remove
    REQUIRE(y.ok());
    CHECK(y.read(a, 10).recs.empty());
    auto rep = logsWith("event=spill_stale_found");
    REQUIRE(rep.size() == 1);
    CHECK(rep[0].find("action=remove") != std::string::npos);
    CHECK(rep[0].find("lanes=2") != std::string::npos);
    CHECK(rep[0].find("bytes=" + std::to_string(bytes)) != std::string::npos);
    CHECK(segFiles(laneDirOf(root, a)).empty());
    CHECK(!fs::exists(laneDirOf(root, b)));
    CHECK(fs::exists(root + "/srv/feed/keep.txt"));  // foreign files are never touched
    CHECK(fs::exists(laneDirOf(root, a) + "/notes.tmp"));
    CHECK_EQ(y.usage(nullptr).records, 0ull);
    CHECK_EQ(y.usage(nullptr).bytes, 0ull);
    // another server's spill is not this instance's business
    Inst z({{"root", root}}, "other");
    REQUIRE(z.ok());
    CHECK(fs::exists(root + "/srv/feed/keep.txt"));
}

static void testGarbageFiles() {
    for (const char* mode : {"recover", "remove"}) {
        std::string root = freshRoot(std::string("garbage-") + mode);
        Key k;
        std::vector<Rec> want;
        {
            Inst a({{"root", root}, {"staleSpill", "recover"}}, "srv");
            REQUIRE(a.ok());
            for (int i = 0; i < 20; ++i) {
                want.push_back(makeRec("g", i));
                REQUIRE(a.append(k, want.back()).status == SF_OK);
            }
        }
        std::string dir = laneDirOf(root, k);
        std::mt19937 rng(7);
        std::string junk(5000, '\0');
        for (auto& ch : junk) ch = static_cast<char>(rng());
        writeFile(dir + "/0000000000000007.seg", junk);        // random bytes with a valid name
        writeFile(dir + "/0000000000000008.seg", "");          // empty segment
        writeFile(dir + "/0000000000000009.seg", std::string("\xF5\x5F\xD1\x5C\xFF\xFF\xFF\x7F", 8));  // header only
        writeFile(dir + "/garbage.seg", junk);
        writeFile(dir + "/12.seg", junk);
        writeFile(dir + "/head", "bad");
        fs::create_directories(dir + "/0000000000000010.seg");  // a directory with a segment name
        fs::create_directory_symlink(".", dir + "/loop");
        fs::create_symlink("/etc/passwd", dir + "/0000000000000011.seg");
        writeFile(root + "/srv/stray", junk);
        fs::create_directories(root + "/srv/deep/er/still");
        clearLog();
        Inst b({{"root", root}, {"staleSpill", mode}}, "srv");
        REQUIRE(b.ok());
        Result r = b.read(k, 1000);
        CHECK_EQ(r.status, SF_OK);
        if (std::string(mode) == "recover") {
            // head file is garbage: replay from the oldest segment; junk segments skipped
            CHECK(sameRange(r.recs, want, 0, 20));
            CHECK(!logsWith("spill_head_invalid").empty());
            CHECK(!logsWith("event=spill_corrupt").empty());
        } else {
            CHECK(r.recs.empty());
        }
        // the lane still works on top of the garbage
        Rec extra = makeRec("g", 99);
        CHECK_EQ(b.append(k, extra).status, SF_OK);
        Result r2 = b.read(k, 1000);
        CHECK(!r2.recs.empty() && r2.recs.back() == extra);
        CHECK_EQ(b.clear(k).status, SF_OK);
        CHECK(fs::exists(dir + "/garbage.seg"));  // not ours: left alone
        CHECK(fs::exists("/etc/passwd"));
        CHECK(segFiles(dir).size() == 2);        // garbage.seg and 12.seg only
    }
}

static void testManyLanesConcurrently() {
    std::string root = freshRoot("concurrent");
    // 2 workers, fds for only 2 lanes per worker: constant LRU eviction
    Inst inst({{"root", root}, {"ioThreads", "2"}, {"maxOpenFiles", "12"}, {"segmentBytes", "4096"}});
    REQUIRE(inst.ok());
    const int threads = 4, lanesPer = 25, perLane = 300;
    std::atomic<int> failures{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            std::mt19937 rng(static_cast<unsigned>(t));
            std::vector<Key> keys(lanesPer);
            std::vector<std::deque<Rec>> pending(lanesPer);
            std::vector<int> next(lanesPer, 0);
            for (int l = 0; l < lanesPer; ++l) {
                keys[static_cast<size_t>(l)].client = "t" + std::to_string(t);
                keys[static_cast<size_t>(l)].topic = "lane" + std::to_string(l);
            }
            int remaining = lanesPer * perLane;
            while (remaining > 0 || [&] { for (auto& p : pending) if (!p.empty()) return true; return false; }()) {
                size_t l = rng() % lanesPer;
                Key& k = keys[l];
                if (next[l] < perLane && rng() % 3 != 0) {
                    // burst of async appends
                    int n = std::min(perLane - next[l], 1 + static_cast<int>(rng() % 20));
                    std::vector<std::unique_ptr<Waiter>> ws;
                    for (int j = 0; j < n; ++j) {
                        Rec r = makeRec(k.client + k.topic, next[l]++);
                        pending[l].push_back(r);
                        ws.push_back(std::make_unique<Waiter>());
                        if (inst.appendAsync(k, r, ws.back().get()) != SF_OK) ++failures;
                    }
                    for (auto& w : ws)
                        if (w->wait().status != SF_OK) ++failures;
                    remaining -= n;
                } else if (!pending[l].empty()) {
                    uint32_t n = 1 + rng() % 40;
                    Result r = inst.read(k, n);
                    size_t expectN = std::min<size_t>(n, pending[l].size());
                    if (r.status != SF_OK || r.recs.size() != expectN) { ++failures; continue; }
                    for (size_t i = 0; i < expectN; ++i)
                        if (!(r.recs[i] == pending[l][i])) ++failures;
                    if (inst.remove(k, static_cast<uint32_t>(expectN)).status != SF_OK) ++failures;
                    for (size_t i = 0; i < expectN; ++i) pending[l].pop_front();
                }
            }
        });
    }
    for (auto& t : ts) t.join();
    CHECK_EQ(failures.load(), 0);
    CHECK_EQ(inst.usage(nullptr).records, 0ull);
    CHECK_EQ(inst.usage(nullptr).bytes, 0ull);
    size_t leftover = 0;
    for (auto& e : fs::recursive_directory_iterator(root))
        if (e.path().extension() == ".seg") ++leftover;
    CHECK_EQ(leftover, 0u);
}

// Many operations in flight when the instance is destroyed: every callback still runs once.
static void testDestroyCompletesEverything() {
    std::string root = freshRoot("destroy");
    std::vector<std::unique_ptr<Waiter>> ws;
    {
        Inst inst({{"root", root}});
        REQUIRE(inst.ok());
        Key k;
        for (int i = 0; i < 2000; ++i) {
            ws.push_back(std::make_unique<Waiter>());
            REQUIRE(inst.appendAsync(k, makeRec("x", i), ws.back().get()) == SF_OK);
        }
    }
    int once = 0;
    for (auto& w : ws) once += w->calls == 1 && w->r.status == SF_OK;
    CHECK_EQ(once, 2000);
}

// ------------------------------------------------------------------ main
int main() {
    g_tmp = SF_DISK_TEST_TMP;
    std::error_code ec;
    fs::remove_all(g_tmp, ec);
    fs::create_directories(g_tmp);

    void* so = ::dlopen(SF_DISK_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        std::fprintf(stderr, "cannot load %s: %s\n", SF_DISK_PLUGIN_PATH, ::dlerror());
        std::printf("0 passed, 1 failed\n");
        return 1;
    }
    auto entry = reinterpret_cast<sf_plugin_entry_fn>(::dlsym(so, SF_PLUGIN_ENTRY_SYMBOL));
    uint32_t versions[] = {SF_ABI_VERSION};
    g_desc = entry ? entry(versions, 1) : nullptr;
    if (!g_desc) {
        std::fprintf(stderr, "no descriptor from %s\n", SF_DISK_PLUGIN_PATH);
        std::printf("0 passed, 1 failed\n");
        return 1;
    }
    g_vt = static_cast<const sf_storage_backend_vtable*>(g_desc->vtable);

    struct Case {
        const char* name;
        std::function<void()> fn;
    };
    std::vector<Case> cases = {
        {"descriptor", testDescriptor},
        {"options", testOptions},
        {"fifo_across_segments", testFifoAcrossSegments},
        {"pipelined_ops_in_order", testPipelinedOpsInOrder},
        {"fields_round_trip", testFieldsRoundTrip},
        {"isolation_and_clear", testIsolationAndClear},
        {"sanitized_paths_stay_under_root", testSanitizedPathsStayUnderRoot},
        {"usage", testUsage},
        {"quotas", testQuotas},
        {"durable", testDurable},
        {"corrupt_middle", testCorruptMiddle},
        {"torn_tail", testTornTail},
        {"restart_recover", testRestartRecover},
        {"restart_remove", testRestartRemove},
        {"garbage_files", testGarbageFiles},
        {"many_lanes_concurrently", testManyLanesConcurrently},
        {"destroy_completes_everything", testDestroyCompletesEverything},
    };
    const char* only = std::getenv("SF_TEST_ONLY");
    for (auto& c : cases) {
        if (only && std::string(only) != c.name) continue;
        g_current = c.name;
        g_caseFailed = false;
        auto t0 = std::chrono::steady_clock::now();
        try {
            c.fn();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "  FAIL [%s]: exception %s\n", c.name, e.what());
            g_caseFailed = true;
        }
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%s %s (%.0f ms)\n", g_caseFailed ? "FAIL" : "ok  ", c.name, ms);
        (g_caseFailed ? g_failed : g_passed)++;
    }
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    if (only && g_passed + g_failed == 0) {  // a filter that runs nothing must not pass
        std::fprintf(stderr, "SF_TEST_ONLY=%s matched no test case\n", only);
        return 1;
    }
    if (g_failed == 0) fs::remove_all(g_tmp, ec);
    // the .so stays loaded: nothing of it is used after this point anyway
    return g_failed == 0 ? 0 : 1;
}
