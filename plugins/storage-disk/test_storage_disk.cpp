// unit.storage_disk: loads the shipped storage_disk .so through the C ABI with the SDK-only
// harness the storage tests share (tests/storage/storage_harness.hpp: dlopen +
// streamfence_plugin_entry, exactly as the host does) and exercises it on real files. CppUnit;
// `storage_disk_test DiskStorageTest::testQuotas` runs one test, SF_TEST_VERBOSE=1 echoes the log.
// The on-disk layout is parsed here from the documented format (README.md), independently
// of the plugin's own format.hpp, so a silent format change fails the test.
#include <streamfence/plugin.h>

#include <cppunit/extensions/HelperMacros.h>

#include "cppunit_runner.hpp"
#include "storage_harness.hpp"

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

#include <unistd.h>

namespace fs = std::filesystem;

using namespace sfstorage;
using Rec = Record;
using Key = LaneKey;

// The shipped .so, loaded once through the C ABI.
static const Backend& disk() {
    static const Backend b(SF_DISK_PLUGIN_PATH, "disk");
    return b;
}

static std::vector<std::string> logsWith(const std::string& needle) { return HostLog::instance().with(needle); }
static void clearLog() { HostLog::instance().clear(); }

// An instance of the disk backend with these options.
struct Inst : Instance {
    explicit Inst(const std::map<std::string, std::string>& opts, const std::string& instanceName = "")
        : Instance(disk(), opts, instanceName) {}
};

// The encoded size of a record (README.md, on-disk format): header, fixed fields, the strings.
static size_t encoded(const Rec& r) { return 20 + 28 + r.data.size() + r.event.size() + r.messageId.size() + r.key.size(); }

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
    r.messageId = i % 3 ? "msg-" + std::to_string(i) : "";
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
class DiskStorageTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DiskStorageTest);
    CPPUNIT_TEST(testDescriptor);
    CPPUNIT_TEST(testOptions);
    CPPUNIT_TEST(testFifoAcrossSegments);
    CPPUNIT_TEST(testPipelinedOpsInOrder);
    CPPUNIT_TEST(testFieldsRoundTrip);
    CPPUNIT_TEST(testIsolationAndClear);
    CPPUNIT_TEST(testSanitizedPathsStayUnderRoot);
    CPPUNIT_TEST(testUsage);
    CPPUNIT_TEST(testQuotas);
    CPPUNIT_TEST(testDurable);
    CPPUNIT_TEST(testCorruptMiddle);
    CPPUNIT_TEST(testTornTail);
    CPPUNIT_TEST(testRestartRecover);
    CPPUNIT_TEST(testRestartRemove);
    CPPUNIT_TEST(testGarbageFiles);
    CPPUNIT_TEST(testManyLanesConcurrently);
    CPPUNIT_TEST(testDestroyCompletesEverything);
    CPPUNIT_TEST_SUITE_END();

public:
    void testDescriptor() {
        CPPUNIT_ASSERT_EQUAL(static_cast<uint32_t>(SF_ABI_VERSION), disk().descriptor().abi_version);
        CPPUNIT_ASSERT_EQUAL(static_cast<uint32_t>(SF_KIND_STORAGE_BACKEND), disk().descriptor().kind);
        CPPUNIT_ASSERT(std::string(disk().descriptor().name) == "disk");
        CPPUNIT_ASSERT(disk().vtable().struct_size >= sizeof(sf_storage_backend_vtable));
        CPPUNIT_ASSERT(disk().vtable().append && disk().vtable().read_oldest && disk().vtable().remove_oldest && disk().vtable().clear && disk().vtable().usage);
    }

    void testOptions() {
        std::string root = freshRoot("options");
        { Inst i({{"root", root}, {"staleSpill", "keep"}}); CPPUNIT_ASSERT(!i.ok()); CPPUNIT_ASSERT(i.error().find("staleSpill") != std::string::npos); }
        { Inst i({{"root", root}, {"segmentBytes", "10"}}); CPPUNIT_ASSERT(!i.ok()); CPPUNIT_ASSERT(i.error().find("segmentBytes") != std::string::npos); }
        { Inst i({{"root", root}, {"durable", "yes"}}); CPPUNIT_ASSERT(!i.ok()); CPPUNIT_ASSERT(i.error().find("durable") != std::string::npos); }
        { Inst i({{"root", root}, {"maxLaneBytes", "lots"}}); CPPUNIT_ASSERT(!i.ok()); CPPUNIT_ASSERT(i.error().find("maxLaneBytes") != std::string::npos); }
        { Inst i({{"root", root}, {"ioThreads", "0"}}); CPPUNIT_ASSERT(!i.ok()); }
        { Inst i({{"root", root}, {"maxLaneBytes", "64MiB"}, {"maxTotalBytes", "1GiB"}, {"segmentBytes", "4M"},
                  {"ioThreads", "2"}, {"durable", "false"}, {"staleSpill", "recover"}});
          CPPUNIT_ASSERT(i.ok()); CPPUNIT_ASSERT(i.error().empty()); }
    }

    // Completions from the worker, never the caller; append order = completion order = read order.
    void testFifoAcrossSegments() {
        std::string root = freshRoot("fifo");
        Inst inst({{"root", root}, {"segmentBytes", "4096"}});
        CPPUNIT_ASSERT(inst.ok());
        Key k;
        std::vector<Rec> want;
        const int N = 3000;
        std::vector<std::unique_ptr<Completion>> ws;
        std::vector<int> completionOrder;
        std::mutex orderMu;
        for (int i = 0; i < N; ++i) {
            want.push_back(makeRec("fifo", i));
            ws.push_back(std::make_unique<Completion>());
            CPPUNIT_ASSERT(inst.append(k, want.back(), ws.back().get()) == SF_OK);
        }
        bool allOk = true, offThread = true;
        for (int i = 0; i < N; ++i) {
            Result r = ws[static_cast<size_t>(i)]->wait();
            allOk = allOk && r.status == SF_OK && ws[static_cast<size_t>(i)]->calls() == 1;
            offThread = offThread && r.thread != std::this_thread::get_id();
        }
        CPPUNIT_ASSERT(allOk);
        CPPUNIT_ASSERT(offThread);
        auto segsAfterWrite = segFiles(laneDirOf(root, k)).size();
        CPPUNIT_ASSERT(segsAfterWrite > 10);  // ~ 600 KB of records in 4 KiB segments

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
            if (r.status != SF_OK || !sameRange(r.records, want, pos, expectN)) {
                std::fprintf(stderr, "  read mismatch at pos %zu (got %zu records, status %d)\n", pos, r.records.size(), r.status);
                ok = false;
                break;
            }
            // re-reading without removing returns the same records
            if (rng() % 4 == 0) {
                Result again = inst.read(k, k1);
                ok = ok && sameRange(again.records, want, pos, expectN);
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
        CPPUNIT_ASSERT(ok);
        CPPUNIT_ASSERT_EQUAL(want.size(), pos);
        CPPUNIT_ASSERT(minSegs < segsAfterWrite);  // consumed segments were deleted along the way
        auto u = inst.usage(&k);
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), u.records);
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), u.bytes);
        CPPUNIT_ASSERT(segFiles(laneDirOf(root, k)).empty());
        CPPUNIT_ASSERT(inst.read(k, 10).records.empty());
        // removing more than exists is harmless
        CPPUNIT_ASSERT_EQUAL(SF_OK, inst.remove(k, 5).status);
    }

    // Operations issued back to back without waiting: each sees the effect of the ones before
    // it, and their callbacks run in issue order.
    void testPipelinedOpsInOrder() {
        std::string root = freshRoot("pipelined");
        Inst inst({{"root", root}, {"segmentBytes", "4096"}});
        CPPUNIT_ASSERT(inst.ok());
        Key k;
        std::vector<Rec> want;
        std::vector<std::unique_ptr<Completion>> ws;
        auto w = [&] { ws.push_back(std::make_unique<Completion>()); return ws.back().get(); };
        for (int round = 0; round < 20; ++round) {
            ws.clear();
            want.clear();
            for (int i = 0; i < 50; ++i) {
                want.push_back(makeRec("p", round * 1000 + i));
                CPPUNIT_ASSERT(inst.append(k, want.back(), w()) == SF_OK);
            }
            Completion* r1 = w();
            CPPUNIT_ASSERT(inst.read(k, 1000, r1) == SF_OK);
            CPPUNIT_ASSERT(inst.remove(k, 20, w()) == SF_OK);
            Completion* r2 = w();
            CPPUNIT_ASSERT(inst.read(k, 1000, r2) == SF_OK);
            for (int i = 50; i < 60; ++i) {
                want.push_back(makeRec("p", round * 1000 + i));
                CPPUNIT_ASSERT(inst.append(k, want.back(), w()) == SF_OK);
            }
            Completion* r3 = w();
            CPPUNIT_ASSERT(inst.read(k, 1000, r3) == SF_OK);
            for (int i = 60; i < 65; ++i) CPPUNIT_ASSERT(inst.append(k, makeRec("p", i), w()) == SF_OK);  // then cleared
            CPPUNIT_ASSERT(inst.clear(k, w()) == SF_OK);
            Completion* r4 = w();
            CPPUNIT_ASSERT(inst.read(k, 1000, r4) == SF_OK);
            uint64_t last = 0;
            bool inOrder = true, allOk = true;
            for (auto& x : ws) {
                Result r = x->wait();
                allOk = allOk && r.status == SF_OK;
                inOrder = inOrder && r.order > last;
                last = r.order;
            }
            CPPUNIT_ASSERT(allOk);
            CPPUNIT_ASSERT(inOrder);
            CPPUNIT_ASSERT(sameRange(r1->wait().records, want, 0, 50));
            CPPUNIT_ASSERT(sameRange(r2->wait().records, want, 20, 30));
            CPPUNIT_ASSERT(sameRange(r3->wait().records, want, 20, 40));
            CPPUNIT_ASSERT(r4->wait().records.empty());
        }
    }

    void testFieldsRoundTrip() {
        std::string root = freshRoot("fields");
        Inst inst({{"root", root}});
        CPPUNIT_ASSERT(inst.ok());
        Key k;
        Rec empty;  // all fields empty
        Rec big;
        big.data.assign(700 * 1024, 'x');  // larger than one read chunk
        big.data[12345] = '\0';
        big.event = "e";
        big.messageId = "m-1";
        big.key = "key";
        big.retry = 7;
        big.bytes = 123456789012ull;
        CPPUNIT_ASSERT_EQUAL(SF_OK, inst.append(k, empty).status);
        CPPUNIT_ASSERT_EQUAL(SF_OK, inst.append(k, big).status);
        CPPUNIT_ASSERT_EQUAL(SF_OK, inst.append(k, empty).status);
        Result r = inst.read(k, 10);
        CPPUNIT_ASSERT(r.records.size() == 3);
        CPPUNIT_ASSERT(r.records[0] == empty);
        CPPUNIT_ASSERT(r.records[1] == big);
        CPPUNIT_ASSERT(r.records[2] == empty);
        CPPUNIT_ASSERT_EQUAL(size_t(0), inst.read(k, 0).records.size());
    }

    void testIsolationAndClear() {
        std::string root = freshRoot("isolation");
        Inst inst({{"root", root}});
        CPPUNIT_ASSERT(inst.ok());
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
                CPPUNIT_ASSERT(inst.append(keys[l], want[l].back()).status == SF_OK);
            }
        for (size_t l = 0; l < keys.size(); ++l) {
            Result r = inst.read(keys[l], 1000);
            CPPUNIT_ASSERT(sameRange(r.records, want[l], 0, 200));
        }
        // clear a: its files and directory go, the others stay intact
        std::string dirA = laneDirOf(root, a);
        CPPUNIT_ASSERT(!segFiles(dirA).empty());
        CPPUNIT_ASSERT_EQUAL(SF_OK, inst.clear(a).status);
        CPPUNIT_ASSERT(!fs::exists(dirA));
        CPPUNIT_ASSERT(fs::exists(root + "/srv/feed/c1"));  // still holds c1's other topics
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), inst.usage(&a).records);
        CPPUNIT_ASSERT(inst.read(a, 10).records.empty());
        for (size_t l = 1; l < keys.size(); ++l) CPPUNIT_ASSERT(sameRange(inst.read(keys[l], 1000).records, want[l], 0, 200));
        // clearing everything removes empty parents up to, not including, root
        for (auto& k : keys) CPPUNIT_ASSERT_EQUAL(SF_OK, inst.clear(k).status);
        CPPUNIT_ASSERT(fs::exists(root));
        CPPUNIT_ASSERT(!fs::exists(root + "/srv"));
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), inst.usage(nullptr).records);
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), inst.usage(nullptr).bytes);
        // a cleared lane is usable again
        CPPUNIT_ASSERT_EQUAL(SF_OK, inst.append(a, want[0][0]).status);
        CPPUNIT_ASSERT(sameRange(inst.read(a, 5).records, want[0], 0, 1));
        // clear of a lane that never existed
        Key ghost;
        ghost.client = "nobody";
        CPPUNIT_ASSERT_EQUAL(SF_OK, inst.clear(ghost).status);
    }

    void testSanitizedPathsStayUnderRoot() {
        std::string root = freshRoot("sanitize");
        Inst inst({{"root", root}});
        CPPUNIT_ASSERT(inst.ok());
        Key k;
        k.server = "..";
        k.ns = "/../..";
        k.client = "../../x";
        k.topic = "..";
        CPPUNIT_ASSERT_EQUAL(SF_OK, inst.append(k, makeRec("s", 1)).status);
        size_t segs = 0;
        for (auto& e : fs::recursive_directory_iterator(root))
            if (e.path().extension() == ".seg") ++segs;
        CPPUNIT_ASSERT_EQUAL(size_t(1), segs);
        CPPUNIT_ASSERT(!fs::exists(g_tmp + "/x"));
        CPPUNIT_ASSERT_EQUAL(size_t(1), inst.read(k, 5).records.size());
        CPPUNIT_ASSERT_EQUAL(SF_OK, inst.clear(k).status);
        CPPUNIT_ASSERT(fs::is_empty(root));
    }

    void testUsage() {
        std::string root = freshRoot("usage");
        Inst inst({{"root", root}, {"segmentBytes", "8192"}});
        CPPUNIT_ASSERT(inst.ok());
        Key a, b;
        b.client = "c2";
        std::vector<Rec> ra;
        uint64_t bytesA = 0, bytesB = 0;
        for (int i = 0; i < 150; ++i) {
            ra.push_back(makeRec("a", i));
            bytesA += encoded(ra.back());
            CPPUNIT_ASSERT(inst.append(a, ra.back()).status == SF_OK);
        }
        for (int i = 0; i < 40; ++i) {
            Rec r = makeRec("b", i);
            bytesB += encoded(r);
            CPPUNIT_ASSERT(inst.append(b, r).status == SF_OK);
        }
        auto ua = inst.usage(&a), ub = inst.usage(&b), ug = inst.usage(nullptr);
        CPPUNIT_ASSERT_EQUAL(uint64_t(150), ua.records);
        CPPUNIT_ASSERT_EQUAL(bytesA, ua.bytes);
        CPPUNIT_ASSERT_EQUAL(bytesA, sizeOfSegs(laneDirOf(root, a)));
        CPPUNIT_ASSERT_EQUAL(uint64_t(40), ub.records);
        CPPUNIT_ASSERT_EQUAL(bytesB, ub.bytes);
        CPPUNIT_ASSERT_EQUAL(uint64_t(190), ug.records);
        CPPUNIT_ASSERT_EQUAL(bytesA + bytesB, ug.bytes);
        CPPUNIT_ASSERT(inst.read(a, 60).records.size() == 60);
        CPPUNIT_ASSERT(inst.remove(a, 60).status == SF_OK);
        uint64_t removed = 0;
        for (int i = 0; i < 60; ++i) removed += encoded(ra[static_cast<size_t>(i)]);
        ua = inst.usage(&a);
        CPPUNIT_ASSERT_EQUAL(uint64_t(90), ua.records);
        CPPUNIT_ASSERT_EQUAL(bytesA - removed, ua.bytes);
        CPPUNIT_ASSERT_EQUAL(bytesA - removed + bytesB, inst.usage(nullptr).bytes);
        Key none;
        none.client = "none";
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), inst.usage(&none).records);
    }

    void testQuotas() {
        std::string root = freshRoot("quota");
        Rec r = makeRec("q", 0);
        r.data.assign(952, 'q');  // ~1 KB encoded
        r.bytes = r.data.size();
        const uint64_t sz = encoded(r);
        Inst inst({{"root", root}, {"maxLaneBytes", std::to_string(10 * sz + 5)}, {"maxTotalBytes", std::to_string(25 * sz)}});
        CPPUNIT_ASSERT(inst.ok());
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
        CPPUNIT_ASSERT_EQUAL(10, okA);
        CPPUNIT_ASSERT_EQUAL(SF_ERR_FULL, full.status);
        CPPUNIT_ASSERT(full.error.find("maxLaneBytes") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(uint64_t(10), inst.usage(&a).records);
        int okB = 0, okC = 0;
        for (int i = 0; i < 10; ++i) okB += inst.append(b, r).status == SF_OK;
        CPPUNIT_ASSERT_EQUAL(10, okB);
        for (int i = 0; i < 10; ++i) {
            Result x = inst.append(c, r);
            if (x.status == SF_OK) ++okC;
            else { full = x; break; }
        }
        CPPUNIT_ASSERT_EQUAL(5, okC);  // 25 fit in total
        CPPUNIT_ASSERT_EQUAL(SF_ERR_FULL, full.status);
        CPPUNIT_ASSERT(full.error.find("maxTotalBytes") != std::string::npos);
        CPPUNIT_ASSERT(inst.usage(nullptr).bytes <= 25 * sz);
        // data already spilled is intact, and space comes back when records are removed
        CPPUNIT_ASSERT_EQUAL(size_t(10), inst.read(a, 100).records.size());
        CPPUNIT_ASSERT(inst.remove(a, 3).status == SF_OK);
        CPPUNIT_ASSERT_EQUAL(SF_OK, inst.append(c, r).status);
        CPPUNIT_ASSERT_EQUAL(SF_OK, inst.append(a, r).status);
        // async burst past the quota: the overflow completes FULL, in order, none lost
        std::vector<std::unique_ptr<Completion>> ws;
        for (int i = 0; i < 10; ++i) {
            ws.push_back(std::make_unique<Completion>());
            CPPUNIT_ASSERT(inst.append(b, r, ws.back().get()) == SF_OK);
        }
        int fulls = 0;
        for (auto& w : ws) fulls += w->wait().status == SF_ERR_FULL;
        CPPUNIT_ASSERT_EQUAL(10, fulls);
    }

    void testDurable() {
        std::string root = freshRoot("durable");
        Inst inst({{"root", root}, {"durable", "true"}, {"segmentBytes", "16384"}});
        CPPUNIT_ASSERT(inst.ok());
        Key k;
        std::vector<Rec> want;
        std::vector<std::unique_ptr<Completion>> ws;
        for (int i = 0; i < 300; ++i) {
            want.push_back(makeRec("d", i));
            ws.push_back(std::make_unique<Completion>());
            CPPUNIT_ASSERT(inst.append(k, want.back(), ws.back().get()) == SF_OK);
        }
        bool ok = true;
        for (auto& w : ws) ok = ok && w->wait().status == SF_OK;
        for (int i = 300; i < 320; ++i) {
            want.push_back(makeRec("d", i));
            ok = ok && inst.append(k, want.back()).status == SF_OK;
        }
        CPPUNIT_ASSERT(ok);
        // acknowledged = on disk: visible in the files before any read
        CPPUNIT_ASSERT_EQUAL(inst.usage(&k).bytes, sizeOfSegs(laneDirOf(root, k)));
        auto got = inst.drain(k);
        CPPUNIT_ASSERT(sameRange(got, want, 0, want.size()));
    }

    void testCorruptMiddle() {
        std::string root = freshRoot("corrupt");
        Inst inst({{"root", root}});
        CPPUNIT_ASSERT(inst.ok());
        Key k;
        std::vector<Rec> want;
        for (int i = 0; i < 10; ++i) {
            want.push_back(makeRec("c", i));
            CPPUNIT_ASSERT(inst.append(k, want.back()).status == SF_OK);
        }
        auto segs = segFiles(laneDirOf(root, k));
        CPPUNIT_ASSERT(segs.size() == 1);
        std::string s = readFile(segs[0]);
        auto offs = recordOffsets(s);
        CPPUNIT_ASSERT(offs.size() == 10);
        s[offs[3] + 20 + 30] ^= 0x5A;                                      // payload byte: crc mismatch
        s[offs[5]] = 'X';                                                  // magic
        s[offs[7] + 4] = '\xF0', s[offs[7] + 7] = '\x7F';                  // absurd length
        writeFile(segs[0], s);
        clearLog();
        Result r = inst.read(k, 100);
        std::vector<Rec> expect = {want[0], want[1], want[2], want[4], want[6], want[8], want[9]};
        CPPUNIT_ASSERT_EQUAL(expect.size(), r.records.size());
        CPPUNIT_ASSERT(sameRange(r.records, expect, 0, expect.size()));
        auto corrupt = logsWith("event=spill_corrupt");
        CPPUNIT_ASSERT_EQUAL(size_t(3), corrupt.size());
        CPPUNIT_ASSERT(!logsWith("offset=" + std::to_string(offs[3]) + " reason=checksum mismatch").empty());
        CPPUNIT_ASSERT(!logsWith("offset=" + std::to_string(offs[5]) + " reason=bad magic").empty());
        CPPUNIT_ASSERT(!logsWith("offset=" + std::to_string(offs[7])).empty());
        CPPUNIT_ASSERT(!corrupt.empty() && corrupt[0].find(segs[0]) != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(uint64_t(7), inst.usage(&k).records);  // the 3 lost ones are no longer counted
        CPPUNIT_ASSERT(inst.remove(k, 7).status == SF_OK);
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), inst.usage(&k).records);
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), inst.usage(&k).bytes);
        CPPUNIT_ASSERT(segFiles(laneDirOf(root, k)).empty());
        // the lane keeps working after the corruption
        CPPUNIT_ASSERT_EQUAL(SF_OK, inst.append(k, want[0]).status);
        CPPUNIT_ASSERT(sameRange(inst.read(k, 5).records, want, 0, 1));
    }

    void testTornTail() {
        // live: the file is cut under a running instance
        {
            std::string root = freshRoot("torn-live");
            Inst inst({{"root", root}});
            CPPUNIT_ASSERT(inst.ok());
            Key k;
            std::vector<Rec> want;
            for (int i = 0; i < 5; ++i) {
                want.push_back(makeRec("t", i));
                CPPUNIT_ASSERT(inst.append(k, want.back()).status == SF_OK);
            }
            auto segs = segFiles(laneDirOf(root, k));
            CPPUNIT_ASSERT(segs.size() == 1);
            fs::resize_file(segs[0], fs::file_size(segs[0]) - 10);
            clearLog();
            Result r = inst.read(k, 100);
            CPPUNIT_ASSERT(sameRange(r.records, want, 0, 4));
            CPPUNIT_ASSERT_EQUAL(size_t(1), logsWith("event=spill_corrupt").size());
            CPPUNIT_ASSERT_EQUAL(uint64_t(4), inst.usage(&k).records);
            // appends go on and are readable after the hole
            want.push_back(makeRec("t", 5));
            CPPUNIT_ASSERT_EQUAL(SF_OK, inst.append(k, want.back()).status);
            CPPUNIT_ASSERT(inst.remove(k, 4).status == SF_OK);
            Result r2 = inst.read(k, 100);
            CPPUNIT_ASSERT_EQUAL(size_t(1), r2.records.size());
            CPPUNIT_ASSERT(!r2.records.empty() && r2.records[0] == want[5]);
            CPPUNIT_ASSERT_EQUAL(uint64_t(1), inst.usage(&k).records);
        }
        // after a crash: the last record of the previous run is half written
        {
            std::string root = freshRoot("torn-restart");
            Key k;
            std::vector<Rec> want;
            {
                Inst a({{"root", root}, {"staleSpill", "recover"}}, "srv");
                CPPUNIT_ASSERT(a.ok());
                for (int i = 0; i < 10; ++i) {
                    want.push_back(makeRec("t", i));
                    CPPUNIT_ASSERT(a.append(k, want.back()).status == SF_OK);
                }
            }
            auto segs = segFiles(laneDirOf(root, k));
            CPPUNIT_ASSERT(segs.size() == 1);
            fs::resize_file(segs[0], fs::file_size(segs[0]) - 7);
            clearLog();
            Inst b({{"root", root}, {"staleSpill", "recover"}}, "srv");
            CPPUNIT_ASSERT(b.ok());
            Result r = b.read(k, 100);  // queued behind the start-up scan
            CPPUNIT_ASSERT_EQUAL(uint64_t(9), b.usage(nullptr).records);
            CPPUNIT_ASSERT(!logsWith("action=recover").empty() && logsWith("action=recover")[0].find("records=9 ") != std::string::npos);
            CPPUNIT_ASSERT(sameRange(r.records, want, 0, 9));
            auto torn = logsWith("event=spill_corrupt");
            CPPUNIT_ASSERT_EQUAL(size_t(1), torn.size());
            CPPUNIT_ASSERT(!torn.empty() && torn[0].find("torn") != std::string::npos);
            for (int i = 10; i < 13; ++i) {
                want.push_back(makeRec("t", i));
                CPPUNIT_ASSERT_EQUAL(SF_OK, b.append(k, want.back()).status);
            }
            std::vector<Rec> expect(want.begin(), want.begin() + 9);
            expect.insert(expect.end(), want.begin() + 10, want.end());
            auto all = b.drain(k);
            CPPUNIT_ASSERT(sameRange(all, expect, 0, expect.size()));
            CPPUNIT_ASSERT_EQUAL(uint64_t(0), b.usage(nullptr).records);
        }
    }

    void testRestartRecover() {
        std::string root = freshRoot("recover");
        std::vector<Key> keys(3);
        keys[1].client = "c2";
        keys[2].ns = "/a/b";
        std::vector<std::vector<Rec>> want(3);
        {
            Inst a({{"root", root}, {"staleSpill", "recover"}, {"segmentBytes", "4096"}}, "srv");
            CPPUNIT_ASSERT(a.ok());
            for (size_t l = 0; l < 3; ++l)
                for (int i = 0; i < 100; ++i) {
                    want[l].push_back(makeRec("r" + std::to_string(l), i));
                    CPPUNIT_ASSERT(a.append(keys[l], want[l].back()).status == SF_OK);
                }
            CPPUNIT_ASSERT(a.read(keys[0], 10).records.size() == 10);
            CPPUNIT_ASSERT(a.remove(keys[0], 10).status == SF_OK);
        }  // destroyed without clear: like a crash
        clearLog();
        Inst b({{"root", root}, {"staleSpill", "recover"}, {"segmentBytes", "4096"}}, "srv");
        CPPUNIT_ASSERT(b.ok());
        // the start-up scan runs on the worker; an operation queued behind it waits for it
        CPPUNIT_ASSERT(b.read(keys[1], 1).records.size() == 1);
        auto rep = logsWith("event=spill_stale_found");
        CPPUNIT_ASSERT(rep.size() == 1);
        CPPUNIT_ASSERT(rep[0].find("action=recover") != std::string::npos);
        CPPUNIT_ASSERT(rep[0].find("lanes=3") != std::string::npos);
        CPPUNIT_ASSERT(rep[0].find("records=290") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(uint64_t(290), b.usage(nullptr).records);
        CPPUNIT_ASSERT_EQUAL(uint64_t(100), b.usage(&keys[2]).records);  // known before the lane is touched
        for (int i = 100; i < 105; ++i) {
            want[0].push_back(makeRec("r0", i));
            CPPUNIT_ASSERT_EQUAL(SF_OK, b.append(keys[0], want[0].back()).status);
        }
        auto got0 = b.drain(keys[0]);
        CPPUNIT_ASSERT(sameRange(got0, want[0], 10, 95));
        CPPUNIT_ASSERT(sameRange(b.drain(keys[1]), want[1], 0, 100));
        CPPUNIT_ASSERT(sameRange(b.drain(keys[2], 1000), want[2], 0, 100));
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), b.usage(nullptr).records);
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), b.usage(nullptr).bytes);
        for (auto& k : keys) CPPUNIT_ASSERT(segFiles(laneDirOf(root, k)).empty());
    }

    void testRestartRemove() {
        std::string root = freshRoot("remove");
        Key a, b;
        b.client = "c2";
        {
            Inst x({{"root", root}, {"segmentBytes", "4096"}}, "srv");
            CPPUNIT_ASSERT(x.ok());
            for (int i = 0; i < 100; ++i) {
                CPPUNIT_ASSERT(x.append(a, makeRec("a", i)).status == SF_OK);
                CPPUNIT_ASSERT(x.append(b, makeRec("b", i)).status == SF_OK);
            }
        }
        writeFile(root + "/srv/feed/keep.txt", "not ours");
        writeFile(laneDirOf(root, a) + "/notes.tmp", "not ours either");
        uint64_t bytes = sizeOfSegs(laneDirOf(root, a)) + sizeOfSegs(laneDirOf(root, b));
        clearLog();
        Inst y({{"root", root}}, "srv");  // staleSpill defaults to remove
        CPPUNIT_ASSERT(y.ok());
        CPPUNIT_ASSERT(y.read(a, 10).records.empty());
        auto rep = logsWith("event=spill_stale_found");
        CPPUNIT_ASSERT(rep.size() == 1);
        CPPUNIT_ASSERT(rep[0].find("action=remove") != std::string::npos);
        CPPUNIT_ASSERT(rep[0].find("lanes=2") != std::string::npos);
        CPPUNIT_ASSERT(rep[0].find("bytes=" + std::to_string(bytes)) != std::string::npos);
        CPPUNIT_ASSERT(segFiles(laneDirOf(root, a)).empty());
        CPPUNIT_ASSERT(!fs::exists(laneDirOf(root, b)));
        CPPUNIT_ASSERT(fs::exists(root + "/srv/feed/keep.txt"));  // foreign files are never touched
        CPPUNIT_ASSERT(fs::exists(laneDirOf(root, a) + "/notes.tmp"));
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), y.usage(nullptr).records);
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), y.usage(nullptr).bytes);
        // another server's spill is not this instance's business
        Inst z({{"root", root}}, "other");
        CPPUNIT_ASSERT(z.ok());
        CPPUNIT_ASSERT(fs::exists(root + "/srv/feed/keep.txt"));
    }

    void testGarbageFiles() {
        for (const char* mode : {"recover", "remove"}) {
            std::string root = freshRoot(std::string("garbage-") + mode);
            Key k;
            std::vector<Rec> want;
            {
                Inst a({{"root", root}, {"staleSpill", "recover"}}, "srv");
                CPPUNIT_ASSERT(a.ok());
                for (int i = 0; i < 20; ++i) {
                    want.push_back(makeRec("g", i));
                    CPPUNIT_ASSERT(a.append(k, want.back()).status == SF_OK);
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
            CPPUNIT_ASSERT(b.ok());
            Result r = b.read(k, 1000);
            CPPUNIT_ASSERT_EQUAL(SF_OK, r.status);
            if (std::string(mode) == "recover") {
                // head file is garbage: replay from the oldest segment; junk segments skipped
                CPPUNIT_ASSERT(sameRange(r.records, want, 0, 20));
                CPPUNIT_ASSERT(!logsWith("spill_head_invalid").empty());
                CPPUNIT_ASSERT(!logsWith("event=spill_corrupt").empty());
            } else {
                CPPUNIT_ASSERT(r.records.empty());
            }
            // the lane still works on top of the garbage
            Rec extra = makeRec("g", 99);
            CPPUNIT_ASSERT_EQUAL(SF_OK, b.append(k, extra).status);
            Result r2 = b.read(k, 1000);
            CPPUNIT_ASSERT(!r2.records.empty() && r2.records.back() == extra);
            CPPUNIT_ASSERT_EQUAL(SF_OK, b.clear(k).status);
            CPPUNIT_ASSERT(fs::exists(dir + "/garbage.seg"));  // not ours: left alone
            CPPUNIT_ASSERT(fs::exists("/etc/passwd"));
            CPPUNIT_ASSERT(segFiles(dir).size() == 2);        // garbage.seg and 12.seg only
        }
    }

    void testManyLanesConcurrently() {
        std::string root = freshRoot("concurrent");
        // 2 workers, fds for only 2 lanes per worker: constant LRU eviction
        Inst inst({{"root", root}, {"ioThreads", "2"}, {"maxOpenFiles", "12"}, {"segmentBytes", "4096"}});
        CPPUNIT_ASSERT(inst.ok());
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
                        std::vector<std::unique_ptr<Completion>> ws;
                        for (int j = 0; j < n; ++j) {
                            Rec r = makeRec(k.client + k.topic, next[l]++);
                            pending[l].push_back(r);
                            ws.push_back(std::make_unique<Completion>());
                            if (inst.append(k, r, ws.back().get()) != SF_OK) ++failures;
                        }
                        for (auto& w : ws)
                            if (w->wait().status != SF_OK) ++failures;
                        remaining -= n;
                    } else if (!pending[l].empty()) {
                        uint32_t n = 1 + rng() % 40;
                        Result r = inst.read(k, n);
                        size_t expectN = std::min<size_t>(n, pending[l].size());
                        if (r.status != SF_OK || r.records.size() != expectN) { ++failures; continue; }
                        for (size_t i = 0; i < expectN; ++i)
                            if (!(r.records[i] == pending[l][i])) ++failures;
                        if (inst.remove(k, static_cast<uint32_t>(expectN)).status != SF_OK) ++failures;
                        for (size_t i = 0; i < expectN; ++i) pending[l].pop_front();
                    }
                }
            });
        }
        for (auto& t : ts) t.join();
        CPPUNIT_ASSERT_EQUAL(0, failures.load());
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), inst.usage(nullptr).records);
        CPPUNIT_ASSERT_EQUAL(uint64_t(0), inst.usage(nullptr).bytes);
        size_t leftover = 0;
        for (auto& e : fs::recursive_directory_iterator(root))
            if (e.path().extension() == ".seg") ++leftover;
        CPPUNIT_ASSERT_EQUAL(size_t(0), leftover);
    }

    // Many operations in flight when the instance is destroyed: every callback still runs once.
    void testDestroyCompletesEverything() {
        std::string root = freshRoot("destroy");
        std::vector<std::unique_ptr<Completion>> ws;
        {
            Inst inst({{"root", root}});
            CPPUNIT_ASSERT(inst.ok());
            Key k;
            for (int i = 0; i < 2000; ++i) {
                ws.push_back(std::make_unique<Completion>());
                CPPUNIT_ASSERT(inst.append(k, makeRec("x", i), ws.back().get()) == SF_OK);
            }
        }
        int once = 0;
        for (auto& w : ws) once += w->calls() == 1 && w->wait(0).status == SF_OK;
        CPPUNIT_ASSERT_EQUAL(2000, once);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DiskStorageTest);

// ------------------------------------------------------------------ main
// storage_disk_test [TestName]: every case, or the one named (DiskStorageTest::testQuotas).
int main(int argc, char** argv) {
    g_tmp = SF_DISK_TEST_TMP;
    std::error_code ec;
    fs::remove_all(g_tmp, ec);
    fs::create_directories(g_tmp);
    int rc = runCppUnit(argc > 1 ? argv[1] : "");
    if (Completion::extraCalls() != 0) {
        std::fprintf(stderr, "a completion was called more than once (%d times)\n", Completion::extraCalls().load());
        rc = 1;
    }
    if (rc == 0) fs::remove_all(g_tmp, ec);
    // the .so stays loaded: nothing of it is used after this point anyway
    return rc;
}
