// Plugin loader, registry and every bundled plugin, driven through the real C ABI.
#include <cppunit/extensions/HelperMacros.h>

#include <dlfcn.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "delivery/token_validator.hpp"
#include "plugins/metrics_sinks.hpp"
#include "plugins/registry.hpp"
#include "plugins/text_writer.hpp"

using namespace sf::plugins;
namespace fs = std::filesystem;

namespace {

const std::string kBadDir = std::string(SF_TEST_BINARY_DIR) + "/tests/badplugins";
const std::string kPluginDir = SF_PLUGIN_BUILD_DIR;

std::string tempDir() {
    char tmpl[] = "/tmp/sf_plugtest_XXXXXX";
    CPPUNIT_ASSERT(mkdtemp(tmpl) != nullptr);
    return tmpl;
}

sf::config::PluginOptions opts(std::vector<std::pair<std::string, std::string>> flat) {
    sf::config::PluginOptions o;
    o.flat = std::move(flat);
    return o;
}

// Runs fn with stderr redirected to a file; returns what was written.
template <class F>
std::string captureStderr(F fn) {
    std::string dir = tempDir();
    std::string path = dir + "/stderr.txt";
    fflush(stderr);
    int saved = dup(2);
    FILE* f = std::fopen(path.c_str(), "w");
    dup2(fileno(f), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    std::fclose(f);
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    fs::remove_all(dir);
    return ss.str();
}

// ------------------------------------------------------------------ a lane, as the host has one

struct Entry {
    std::string payload;
    uint64_t bytes;
    std::string key;
    bool inFlight = false;
};

// A real lane view plus the host's side of enqueue: consult the policy when it asks to be
// (always, or only on overflow), apply the verdict, enforce the limits afterwards.
class TestLane {
public:
    std::vector<Entry> entries;
    uint32_t maxMessages;
    uint64_t maxBytes;
    bool spillable = false;
    std::vector<std::string> rejects;  // reasons
    std::vector<Entry> spilled;
    uint32_t dropped = 0, coalesced = 0;

    TestLane(uint32_t maxMsgs, uint64_t maxB) : maxMessages(maxMsgs), maxBytes(maxB) {}

    uint64_t bytes() const {
        uint64_t b = 0;
        for (auto& e : entries) b += e.bytes;
        return b;
    }
    std::string payloads() const {
        std::string s;
        for (auto& e : entries) s += (s.empty() ? "" : ",") + e.payload;
        return s;
    }

    void enqueue(const PluginInstance& policy, const std::string& payload, const std::string& key = "t") {
        incoming_ = Entry{payload, payload.size(), key};
        auto* vt = policy.vtable<sf_overflow_policy_vtable>();
        bool fits = entries.size() < maxMessages && bytes() + incoming_.bytes <= maxBytes;
        if (fits && !(vt->when & SF_POLICY_ON_EVERY)) {
            entries.push_back(incoming_);
            return;
        }
        sf_lane_view v = view();
        sf_message_view in{};
        in.struct_size = sizeof in;
        in.payload_json = {incoming_.payload.data(), incoming_.payload.size()};
        in.bytes = incoming_.bytes;
        in.key = {incoming_.key.data(), incoming_.key.size()};
        sf_policy_result r{};
        r.struct_size = sizeof r;
        CPPUNIT_ASSERT_EQUAL(SF_OK, vt->on_enqueue(policy.handle(), &v, &in, fits ? 1 : 0, &r));
        dropped += r.dropped;
        lastReason = r.reason ? r.reason : "";
        switch (r.verdict) {
            case SF_VERDICT_ACCEPT:
                if (entries.size() >= maxMessages || bytes() + incoming_.bytes > maxBytes)
                    rejects.push_back("policy exceeded lane limits");
                else
                    entries.push_back(incoming_);
                break;
            case SF_VERDICT_REJECT: rejects.push_back(lastReason); break;
            case SF_VERDICT_COALESCED: ++coalesced; break;
            case SF_VERDICT_SPILL: spilled.push_back(incoming_); break;
            default: CPPUNIT_FAIL("unknown verdict");
        }
    }
    std::string lastReason;

private:
    Entry incoming_;
    sf_lane_view view() {
        sf_lane_view v{};
        v.struct_size = sizeof v;
        v.lane = this;
        v.max_messages = maxMessages;
        v.max_bytes = maxBytes;
        v.topic = {"t", 1};
        v.ns = {"/feed", 5};
        v.count = [](void* l) { return static_cast<uint32_t>(self(l).entries.size()); };
        v.bytes = [](void* l) { return self(l).bytes(); };
        v.entry = [](void* l, uint32_t i, sf_message_view* out) {
            auto& es = self(l).entries;
            if (i >= es.size()) return SF_ERR;
            out->payload_json = {es[i].payload.data(), es[i].payload.size()};
            out->bytes = es[i].bytes;
            out->key = {es[i].key.data(), es[i].key.size()};
            out->flags = es[i].inFlight ? SF_ENTRY_IN_FLIGHT : 0u;
            return SF_OK;
        };
        v.remove = [](void* l, uint32_t i) {
            auto& es = self(l).entries;
            if (i >= es.size() || es[i].inFlight) return SF_ERR;
            es.erase(es.begin() + i);
            return SF_OK;
        };
        v.replace_with_incoming = [](void* l, uint32_t i) {
            auto& es = self(l).entries;
            if (i >= es.size() || es[i].inFlight) return SF_ERR;
            es[i] = self(l).incoming_;
            return SF_OK;
        };
        v.can_spill = [](void* l) { return self(l).spillable ? 1 : 0; };
        return v;
    }
    static TestLane& self(void* l) { return *static_cast<TestLane*>(l); }
};

// ------------------------------------------------------------------ JWT helpers

std::string b64url(const std::string& in) {
    static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        acc = (acc << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += a[(acc >> bits) & 63];
        }
    }
    if (bits) out += a[(acc << (6 - bits)) & 63];
    return out;
}

std::string hs256(const std::string& header, const std::string& claims, const std::string& secret) {
    std::string input = b64url(header) + "." + b64url(claims);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    return input + "." + b64url(std::string(reinterpret_cast<char*>(mac), len));
}

std::string rs256(const std::string& claims, EVP_PKEY* key) {
    std::string input = b64url(R"({"alg":"RS256","typ":"JWT"})") + "." + b64url(claims);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(&sig[0]), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    EVP_MD_CTX_free(ctx);
    sig.resize(len);
    return input + "." + b64url(sig);
}

long long nowSec() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

const char* kSecret = "0123456789abcdef0123456789abcdef";
const char* kHs = R"({"alg":"HS256","typ":"JWT"})";

// What a validator answered, copied out of the host writers it wrote to.
struct TokenAnswer {
    int32_t accepted = -1;
    int64_t expires_at_ms = 0;
    std::string principal, reason;
};

TokenAnswer validate(const PluginInstance& inst, const std::string& token, const std::string& topic = "",
                     const std::string& action = "connect") {
    const auto* vt = inst.vtable<sf_token_validator_vtable>();
    sf_token_request rq{};
    rq.struct_size = sizeof rq;
    rq.token = {token.data(), token.size()};
    rq.topic = {topic.data(), topic.size()};
    rq.action = {action.data(), action.size()};
    rq.ns = {"/feed", 5};
    TextWriter principal, reason;
    sf_token_result r{};
    r.struct_size = sizeof r;
    r.principal = principal.raw();
    r.reason = reason.raw();
    vt->validate(inst.handle(), &rq, &r);
    return TokenAnswer{r.accepted, r.expires_at_ms, principal.take(), reason.take()};
}

// Rejected with exactly this reason.
void assertRejected(const std::string& reason, const TokenAnswer& r) {
    CPPUNIT_ASSERT_EQUAL(reason, r.reason);
    CPPUNIT_ASSERT_EQUAL(0, static_cast<int>(r.accepted));
}

sf::MetricSample sample(const std::string& name, const std::string& help, sf::MetricSample::Type t,
                        std::vector<std::pair<std::string, std::string>> labels, double v) {
    sf::MetricSample s;
    s.name = name;
    s.help = help;
    s.type = t;
    s.labels = std::move(labels);
    s.value = v;
    return s;
}

// One UDP datagram within timeoutMs, or "" if none.
std::string recvDatagram(int fd, int timeoutMs) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeoutMs) <= 0) return "";
    char buf[65536];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

}  // namespace

class PluginsTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(PluginsTest);
    CPPUNIT_TEST(testRefusalReasons);
    CPPUNIT_TEST(testTextFileRefusedWithOneLogLine);
    CPPUNIT_TEST(testInitFailuresThrowPluginError);
    CPPUNIT_TEST(testBundledPluginsLoad);
    CPPUNIT_TEST(testUnloadAfterLastInstance);
    CPPUNIT_TEST(testRejectNew);
    CPPUNIT_TEST(testDropOldest);
    CPPUNIT_TEST(testCoalesce);
    CPPUNIT_TEST(testSnapshotOnly);
    CPPUNIT_TEST(testSpill);
    CPPUNIT_TEST(testStaticValidator);
    CPPUNIT_TEST(testGrownOptionElements);
    CPPUNIT_TEST(testJwtHs256);
    CPPUNIT_TEST(testJwtRs256);
    CPPUNIT_TEST(testJwtTopics);
    CPPUNIT_TEST(testPrometheusRender);
    CPPUNIT_TEST(testStatsd);
    CPPUNIT_TEST(testDefaultDirectory);
    CPPUNIT_TEST_SUITE_END();

    std::unique_ptr<Registry> bundled() {
        auto r = std::make_unique<Registry>();
        r->loadDirectory(kPluginDir);
        return r;
    }

public:
    void testRefusalReasons() {
        Registry reg;
        reg.loadDirectory(kBadDir);
        std::map<std::string, std::string> got;
        for (auto& r : reg.refusals()) got[fs::path(r.file).filename().string()] = r.reason;
        const std::string needDesc = std::to_string(offsetof(sf_plugin_descriptor, vtable) + sizeof(void*));
        const std::string needVt = std::to_string(offsetof(sf_overflow_policy_vtable, on_enqueue) + sizeof(void*));
        std::map<std::string, std::string> want = {
            {"bad_abi.so", "plugin implements ABI 99, host supports 2"},
            // Built against the frozen 1.1 header: refused at load, never initialised or called.
            {"abi1_validator.so", "plugin implements ABI 1, host supports 2 (rebuild it against the SDK of ABI 2; "
                                  "sdk/COMPATIBILITY.md says how to port)"},
            {"bad_no_symbol.so", "missing entry symbol streamfence_plugin_entry"},
            {"bad_null_entry.so", "entry streamfence_plugin_entry returned NULL (plugin cannot run on this host)"},
            {"bad_small_descriptor.so", "descriptor too small (struct_size 16, need at least " + needDesc + ")"},
            {"bad_kind.so", "unknown plugin kind 7"},
            {"bad_no_init.so", "descriptor has no init function"},
            {"bad_no_vtable.so", "descriptor has no overflow-policy vtable"},
            {"bad_small_vtable.so", "overflow-policy vtable too small (struct_size 8, need at least " + needVt + ")"},
            {"dup_b.so", "duplicate overflow-policy name \"dupe\" (already loaded from " + kBadDir + "/dup_a.so)"},
        };
        for (auto& w : want) {
            CPPUNIT_ASSERT_MESSAGE(w.first + " was not refused", got.count(w.first));
            CPPUNIT_ASSERT_EQUAL(w.second, got[w.first]);
        }
        CPPUNIT_ASSERT_EQUAL(want.size(), got.size());
        // The plugins whose defect shows only at init load fine; the first "dupe" wins.
        CPPUNIT_ASSERT(reg.has(SF_KIND_OVERFLOW_POLICY, "init_error"));
        CPPUNIT_ASSERT(reg.has(SF_KIND_OVERFLOW_POLICY, "init_throw"));
        CPPUNIT_ASSERT(reg.has(SF_KIND_OVERFLOW_POLICY, "dupe"));
        CPPUNIT_ASSERT(!reg.has(SF_KIND_TOKEN_VALIDATOR, "abi1"));
        CPPUNIT_ASSERT_THROW(reg.instantiate(SF_KIND_TOKEN_VALIDATOR, "abi1", {}), PluginError);
        for (auto& p : reg.plugins())
            if (p.name == "dupe") CPPUNIT_ASSERT_EQUAL(kBadDir + "/dup_a.so", p.file);

        CPPUNIT_ASSERT(!reg.loadFile("/nonexistent/y.so"));
        CPPUNIT_ASSERT_EQUAL(
            std::string("cannot load shared object: /nonexistent/y.so: cannot open shared object file: No such file or directory"),
            reg.refusals().back().reason);
    }

    void testTextFileRefusedWithOneLogLine() {
        std::string dir = tempDir();
        std::string path = dir + "/x.so";
        {
            std::ofstream f(path);
            f << "this is a text file pretending to be a plugin, long enough to have an ELF header's size\n";
        }
        Registry reg;
        std::string err = captureStderr([&] { reg.loadDirectory(dir); });
        std::string reason = "cannot load shared object: " + path + ": invalid ELF header";
        CPPUNIT_ASSERT_EQUAL(size_t(1), reg.refusals().size());
        CPPUNIT_ASSERT_EQUAL(path, reg.refusals()[0].file);
        CPPUNIT_ASSERT_EQUAL(reason, reg.refusals()[0].reason);
        CPPUNIT_ASSERT_EQUAL(1L, static_cast<long>(std::count(err.begin(), err.end(), '\n')));
        CPPUNIT_ASSERT_MESSAGE(err, err.find("event=plugin_refused file=" + path + " reason=\"" + reason + "\"") !=
                                        std::string::npos);
        fs::remove_all(dir);
    }

    void testInitFailuresThrowPluginError() {
        Registry reg;
        reg.loadDirectory(kBadDir);
        size_t before = reg.refusals().size();
        try {
            reg.instantiate(SF_KIND_OVERFLOW_POLICY, "init_error", {});
            CPPUNIT_FAIL("init_error instantiated");
        } catch (const PluginError& e) {
            CPPUNIT_ASSERT_EQUAL("plugin \"init_error\" (" + kBadDir + "/init_error.so) failed to initialise: database unreachable",
                                 std::string(e.what()));
        }
        try {
            reg.instantiate(SF_KIND_OVERFLOW_POLICY, "init_throw", {});
            CPPUNIT_FAIL("init_throw instantiated");
        } catch (const PluginError& e) {
            CPPUNIT_ASSERT_EQUAL("plugin \"init_throw\" (" + kBadDir + "/init_throw.so) failed to initialise: init threw: boom in init",
                                 std::string(e.what()));
        }
        CPPUNIT_ASSERT_EQUAL(before + 2, reg.refusals().size());
        CPPUNIT_ASSERT_EQUAL(std::string("failed to initialise: database unreachable"), reg.refusals()[before].reason);
        try {
            reg.instantiate(SF_KIND_OVERFLOW_POLICY, "nope", {});
            CPPUNIT_FAIL("nope instantiated");
        } catch (const PluginError& e) {
            CPPUNIT_ASSERT_EQUAL(std::string("no overflow-policy plugin named \"nope\" is installed"), std::string(e.what()));
        }
        // Right name, wrong kind.
        CPPUNIT_ASSERT_THROW(reg.instantiate(SF_KIND_TOKEN_VALIDATOR, "dupe", {}), PluginError);
        // The good one still works.
        auto ok = reg.instantiate(SF_KIND_OVERFLOW_POLICY, "dupe", {});
        CPPUNIT_ASSERT_EQUAL(std::string("dupe"), ok->name());
    }

    void testBundledPluginsLoad() {
        auto reg = bundled();
        for (auto& r : reg->refusals())
            CPPUNIT_FAIL("bundled plugin refused: " + r.file + ": " + r.reason);
        for (auto n : {"REJECT_NEW", "DROP_OLDEST", "COALESCE", "SNAPSHOT_ONLY", "SPILL_TO_DISK"})
            CPPUNIT_ASSERT_MESSAGE(n, reg->has(SF_KIND_OVERFLOW_POLICY, n));
        CPPUNIT_ASSERT(reg->has(SF_KIND_TOKEN_VALIDATOR, "static"));
        CPPUNIT_ASSERT(reg->has(SF_KIND_TOKEN_VALIDATOR, "jwt"));
        CPPUNIT_ASSERT(reg->has(SF_KIND_METRICS_SINK, "prometheus"));
        CPPUNIT_ASSERT(reg->has(SF_KIND_METRICS_SINK, "statsd"));
        CPPUNIT_ASSERT(!reg->has(SF_KIND_TOKEN_VALIDATOR, "REJECT_NEW"));
        for (auto& p : reg->plugins()) {
            CPPUNIT_ASSERT_EQUAL(static_cast<uint32_t>(SF_ABI_VERSION), p.abiVersion);
            CPPUNIT_ASSERT(!p.version.empty());
        }
    }

    void testUnloadAfterLastInstance() {
        std::string file = kPluginDir + "/overflow_reject_new.so";
        auto loaded = [&] {
            void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_NOLOAD);
            if (h) dlclose(h);
            return h != nullptr;
        };
        CPPUNIT_ASSERT(!loaded());
        auto reg = std::make_unique<Registry>();
        CPPUNIT_ASSERT(reg->loadFile(file));
        auto inst = reg->instantiate(SF_KIND_OVERFLOW_POLICY, "REJECT_NEW", {});
        reg.reset();
        CPPUNIT_ASSERT_MESSAGE("an instance keeps its library loaded", loaded());
        TestLane lane(1, 100);
        lane.enqueue(*inst, "1");
        lane.enqueue(*inst, "2");
        CPPUNIT_ASSERT_EQUAL(std::string("queue full with REJECT_NEW"), lane.rejects.at(0));
        inst.reset();
        CPPUNIT_ASSERT_MESSAGE("dlclosed after the last instance (-fno-gnu-unique)", !loaded());
    }

    void testRejectNew() {
        auto reg = bundled();
        auto p = reg->instantiate(SF_KIND_OVERFLOW_POLICY, "REJECT_NEW", {});
        TestLane lane(2, 1000);
        for (int i = 1; i <= 5; ++i) lane.enqueue(*p, std::to_string(i));
        CPPUNIT_ASSERT_EQUAL(std::string("1,2"), lane.payloads());
        CPPUNIT_ASSERT_EQUAL(size_t(3), lane.rejects.size());
        for (auto& r : lane.rejects) CPPUNIT_ASSERT_EQUAL(std::string("queue full with REJECT_NEW"), r);
    }

    void testDropOldest() {
        auto reg = bundled();
        auto p = reg->instantiate(SF_KIND_OVERFLOW_POLICY, "DROP_OLDEST", {});
        {
            TestLane lane(2, 1000);
            for (int i = 1; i <= 5; ++i) lane.enqueue(*p, std::to_string(i));
            CPPUNIT_ASSERT_EQUAL(std::string("4,5"), lane.payloads());
            CPPUNIT_ASSERT_EQUAL(3u, lane.dropped);
            CPPUNIT_ASSERT(lane.rejects.empty());
            CPPUNIT_ASSERT_EQUAL(std::string("dropped oldest entries to accept new message"), lane.lastReason);
        }
        {   // byte limit (maxQueuedBytesPerClient, conf/README.md): 7-byte payloads, max 20 bytes; a 32-byte one cannot fit at all
            TestLane lane(10, 20);
            for (int i = 1; i <= 3; ++i) lane.enqueue(*p, "{\"i\":" + std::to_string(i) + "}");
            CPPUNIT_ASSERT_EQUAL(std::string("{\"i\":2},{\"i\":3}"), lane.payloads());
            lane.enqueue(*p, std::string(32, 'x'));
            CPPUNIT_ASSERT_EQUAL(std::string("queue full after drop-oldest attempts"), lane.rejects.at(0));
            CPPUNIT_ASSERT_EQUAL(std::string("{\"i\":2},{\"i\":3}"), lane.payloads());  // nothing dropped for it
        }
        {   // in-flight entries are never dropped
            TestLane lane(2, 1000);
            lane.entries = {{"1", 1, "t", true}, {"2", 1, "t", false}};
            lane.enqueue(*p, "3");
            CPPUNIT_ASSERT_EQUAL(std::string("1,3"), lane.payloads());
            lane.entries[1].inFlight = true;
            lane.enqueue(*p, "4");
            CPPUNIT_ASSERT_EQUAL(std::string("1,3"), lane.payloads());
            CPPUNIT_ASSERT_EQUAL(std::string("queue full after drop-oldest attempts"), lane.rejects.at(0));
            CPPUNIT_ASSERT_EQUAL(1u, lane.dropped);
        }
    }

    void testCoalesce() {
        auto reg = bundled();
        auto p = reg->instantiate(SF_KIND_OVERFLOW_POLICY, "COALESCE", {});
        {   // key = topic: only the newest survives
            TestLane lane(2, 1000);
            for (int i = 1; i <= 5; ++i) lane.enqueue(*p, std::to_string(i));
            CPPUNIT_ASSERT_EQUAL(std::string("5"), lane.payloads());
            CPPUNIT_ASSERT_EQUAL(4u, lane.coalesced);
            CPPUNIT_ASSERT_EQUAL(std::string("coalesced by key"), lane.lastReason);
        }
        {   // per coalesceKey: latest per key, in place; a new key with no room is rejected
            TestLane lane(3, 1000);
            lane.enqueue(*p, "A1", "A");
            lane.enqueue(*p, "B1", "B");
            lane.enqueue(*p, "A2", "A");
            lane.enqueue(*p, "C1", "C");
            CPPUNIT_ASSERT_EQUAL(std::string("A2,B1,C1"), lane.payloads());
            lane.enqueue(*p, "D1", "D");
            CPPUNIT_ASSERT_EQUAL(std::string("queue full and no coalesce match"), lane.rejects.at(0));
            lane.enqueue(*p, "B2", "B");
            CPPUNIT_ASSERT_EQUAL(std::string("A2,B2,C1"), lane.payloads());
        }
        {   // the empty key (payload without the coalesceKey field) matches nothing, not even itself
            TestLane lane(3, 1000);
            lane.enqueue(*p, "A1", "A");
            lane.enqueue(*p, "N1", "");
            lane.enqueue(*p, "N2", "");
            CPPUNIT_ASSERT_EQUAL(std::string("A1,N1,N2"), lane.payloads());
            CPPUNIT_ASSERT_EQUAL(0u, lane.coalesced);
            lane.enqueue(*p, "N3", "");
            CPPUNIT_ASSERT_EQUAL(std::string("queue full and no coalesce match"), lane.rejects.at(0));
            lane.enqueue(*p, "A2", "A");
            CPPUNIT_ASSERT_EQUAL(std::string("A2,N1,N2"), lane.payloads());
        }
        {   // an in-flight entry is not replaced; a replacement that breaks the byte limit is not made
            TestLane lane(3, 10);
            lane.entries = {{"A1", 2, "A", true}};
            lane.enqueue(*p, "A2", "A");
            CPPUNIT_ASSERT_EQUAL(std::string("A1,A2"), lane.payloads());
            lane.enqueue(*p, "A3-long-x", "A");  // 9 bytes: 2 - 2 + 9 > 10 -> no replace, no room
            CPPUNIT_ASSERT_EQUAL(std::string("A1,A2"), lane.payloads());
            CPPUNIT_ASSERT_EQUAL(std::string("queue full and no coalesce match"), lane.rejects.at(0));
        }
    }

    void testSnapshotOnly() {
        auto reg = bundled();
        auto p = reg->instantiate(SF_KIND_OVERFLOW_POLICY, "SNAPSHOT_ONLY", {});
        TestLane lane(2, 1000);
        for (int i = 1; i <= 5; ++i) lane.enqueue(*p, std::to_string(i));
        CPPUNIT_ASSERT_EQUAL(std::string("5"), lane.payloads());
        CPPUNIT_ASSERT_EQUAL(4u, lane.dropped);
        lane.entries = {{"1", 1, "t", true}, {"2", 1, "t", false}};
        lane.enqueue(*p, "3");
        CPPUNIT_ASSERT_EQUAL(std::string("1,3"), lane.payloads());
    }

    void testSpill() {
        auto reg = bundled();
        auto p = reg->instantiate(SF_KIND_OVERFLOW_POLICY, "SPILL_TO_DISK", {});
        TestLane lane(1, 1000);
        lane.enqueue(*p, "1");
        lane.enqueue(*p, "2");
        CPPUNIT_ASSERT_EQUAL(std::string("SPILL_TO_DISK: no spill queue configured"), lane.rejects.at(0));
        lane.spillable = true;
        lane.enqueue(*p, "3");
        CPPUNIT_ASSERT_EQUAL(size_t(1), lane.spilled.size());
        CPPUNIT_ASSERT_EQUAL(std::string("3"), lane.spilled[0].payload);
        CPPUNIT_ASSERT_EQUAL(std::string("spilled to disk"), lane.lastReason);
        CPPUNIT_ASSERT_EQUAL(std::string("1"), lane.payloads());
    }

    // A host of a later minor may hand larger sf_option elements; a shipped plugin (through
    // plugin.hpp) walks them by struct_size (plugin.h), so it still reads every option.
    void testGrownOptionElements() {
        auto reg = bundled();
        auto probe = reg->instantiate(SF_KIND_TOKEN_VALIDATOR, "static", opts({{"tokens.x", "y"}}));
        const sf_plugin_descriptor& d = probe->descriptor();
        struct GrownOption {
            sf_option o;
            void* future[3];
        };
        const std::string k1 = "tokens.alice", v1 = "s3cret", k2 = "tokens.bob", v2 = "hunter2";
        GrownOption items[2] = {};
        items[0].o = {sizeof(GrownOption), 0, {k1.data(), k1.size()}, {v1.data(), v1.size()}, {}};
        items[1].o = {sizeof(GrownOption), 0, {k2.data(), k2.size()}, {v2.data(), v2.size()}, {}};
        items[0].future[0] = items[1].future[0] = reinterpret_cast<void*>(0x1);  // garbage for a sizeof walker
        sf_options o{};
        o.struct_size = sizeof o;
        o.count = 2;
        o.items = &items[0].o;
        o.json = "{}";
        o.instance_name = "";
        char buf[256] = {0};
        sf_error err{};
        err.struct_size = sizeof err;
        err.capacity = sizeof buf;
        err.message = buf;
        void* inst = nullptr;
        CPPUNIT_ASSERT_EQUAL_MESSAGE(std::string(buf), SF_OK, d.init(hostApi(), &o, &inst, &err));
        const auto* vt = static_cast<const sf_token_validator_vtable*>(d.vtable);
        for (auto& [token, who] : std::vector<std::pair<std::string, std::string>>{{"s3cret", "alice"}, {"hunter2", "bob"}}) {
            TextWriter principal, reason;
            sf_token_request rq{};
            rq.struct_size = sizeof rq;
            rq.token = {token.data(), token.size()};
            sf_token_result r{};
            r.struct_size = sizeof r;
            r.principal = principal.raw();
            r.reason = reason.raw();
            CPPUNIT_ASSERT_EQUAL(SF_OK, vt->validate(inst, &rq, &r));
            CPPUNIT_ASSERT_EQUAL_MESSAGE(reason.text(), 1, static_cast<int>(r.accepted));
            CPPUNIT_ASSERT_EQUAL(who, principal.text());
        }
        d.destroy(inst);
    }

    void testStaticValidator() {
        auto reg = bundled();
        auto v = reg->instantiate(SF_KIND_TOKEN_VALIDATOR, "static",
                                  opts({{"tokens.alice", "s3cret"}, {"tokens.svc.reader", "hunter2"}}));
        TokenAnswer r = validate(*v, "s3cret");
        CPPUNIT_ASSERT_EQUAL(1, static_cast<int>(r.accepted));
        CPPUNIT_ASSERT_EQUAL(std::string("alice"), std::string(r.principal));
        CPPUNIT_ASSERT_EQUAL(std::string("svc.reader"), std::string(validate(*v, "hunter2").principal));
        // Principals and reasons of any length cross whole (ABI 1 cut them at 127 and 255 bytes),
        // through the host's own adapter as the auth gate uses it.
        const std::string longName(300, 'p');
        auto lv = reg->instantiate(SF_KIND_TOKEN_VALIDATOR, "static", opts({{"tokens." + longName, "s3cret"}}));
        sf::delivery::TokenValidator gate(lv);
        sf::delivery::TokenCheck c = gate.validate("s3cret", "/feed", "", "connect", "127.0.0.1:1");
        CPPUNIT_ASSERT(c.accepted);
        CPPUNIT_ASSERT_EQUAL(longName, c.principal);
        c = gate.validate("nope", "/feed", "", "connect", "127.0.0.1:1");
        CPPUNIT_ASSERT(!c.accepted);
        CPPUNIT_ASSERT_EQUAL(std::string("Invalid token"), c.reason);
        assertRejected("Invalid token", validate(*v, "s3cre"));
        assertRejected("Invalid token", validate(*v, "s3cret!"));
        assertRejected("Missing token", validate(*v, ""));
        try {
            reg->instantiate(SF_KIND_TOKEN_VALIDATOR, "static", {});
            CPPUNIT_FAIL("static without tokens instantiated");
        } catch (const PluginError& e) {
            CPPUNIT_ASSERT(std::string(e.what()).find("failed to initialise: no tokens configured") != std::string::npos);
        }
    }

    void testJwtHs256() {
        auto reg = bundled();
        auto v = reg->instantiate(SF_KIND_TOKEN_VALIDATOR, "jwt",
                                  opts({{"secret", kSecret}, {"audience", "feeds"}, {"issuer", "https://auth.example"}}));
        long long now = nowSec();
        auto claims = [&](const std::string& extra) {
            return R"({"sub":"alice","aud":"feeds","iss":"https://auth.example")" + extra + "}";
        };
        std::string exp = ",\"exp\":" + std::to_string(now + 60);
        TokenAnswer r = validate(*v, hs256(kHs, claims(exp), kSecret));
        CPPUNIT_ASSERT_MESSAGE(r.reason, r.accepted == 1);
        CPPUNIT_ASSERT_EQUAL(std::string("alice"), std::string(r.principal));
        CPPUNIT_ASSERT_EQUAL(static_cast<int64_t>((now + 60) * 1000), r.expires_at_ms);

        assertRejected("token expired", validate(*v, hs256(kHs, claims(",\"exp\":" + std::to_string(now - 10)), kSecret)));
        assertRejected("token not yet valid",
                       validate(*v, hs256(kHs, claims(exp + ",\"nbf\":" + std::to_string(now + 60)), kSecret)));
        assertRejected("audience mismatch",
                       validate(*v, hs256(kHs, R"({"sub":"a","aud":"other","iss":"https://auth.example"})", kSecret)));
        CPPUNIT_ASSERT_EQUAL(1, static_cast<int>(validate(*v, hs256(kHs,
            R"({"sub":"a","aud":["x","feeds"],"iss":"https://auth.example"})", kSecret)).accepted));
        assertRejected("issuer mismatch", validate(*v, hs256(kHs, R"({"sub":"a","aud":"feeds","iss":"evil"})", kSecret)));
        assertRejected("invalid signature", validate(*v, hs256(kHs, claims(exp), "another-secret-another-secret-xx")));
        // alg none, with and without a signature
        std::string none = b64url(R"({"alg":"none"})") + "." + b64url(claims(exp)) + ".";
        assertRejected("alg none not allowed", validate(*v, none));
        assertRejected("alg none not allowed", validate(*v, hs256(R"({"alg":"None"})", claims(exp), kSecret)));
        assertRejected("algorithm not allowed: RS256", validate(*v, hs256(R"({"alg":"RS256"})", claims(exp), kSecret)));
        assertRejected("Missing token", validate(*v, ""));
        assertRejected("malformed token", validate(*v, "abc"));
        assertRejected("malformed token", validate(*v, "a.b.c.d"));
        assertRejected("malformed token header", validate(*v, "!!!.e30.sig"));
        assertRejected("malformed token header", validate(*v, b64url("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[") + ".e30.x"));

        // Every single-byte corruption of a valid token is rejected, and none crashes the host.
        std::string good = hs256(kHs, claims(exp), kSecret);
        for (size_t i = 0; i < good.size(); ++i)
            for (char c : {'A', '.', '_', '\0', '"'}) {
                std::string bad = good;
                if (bad[i] == c) continue;
                bad[i] = c;
                CPPUNIT_ASSERT_EQUAL_MESSAGE(bad, 0, static_cast<int>(validate(*v, bad).accepted));
            }
        for (size_t n = 0; n < good.size(); ++n) CPPUNIT_ASSERT_EQUAL(0, static_cast<int>(validate(*v, good.substr(0, n)).accepted));

        // leeway lets a just-expired token through
        auto lenient = reg->instantiate(SF_KIND_TOKEN_VALIDATOR, "jwt", opts({{"secret", kSecret}, {"leewaySeconds", "30"}}));
        CPPUNIT_ASSERT_EQUAL(1, static_cast<int>(validate(*lenient,
            hs256(kHs, R"({"sub":"a","exp":)" + std::to_string(now - 10) + "}", kSecret)).accepted));
        CPPUNIT_ASSERT_THROW(reg->instantiate(SF_KIND_TOKEN_VALIDATOR, "jwt", {}), PluginError);

        // A plugin's own log lines name the plugin and the instance (host_ctx per instance).
        std::string err = captureStderr([&] {
            reg->instantiate(SF_KIND_TOKEN_VALIDATOR, "jwt", opts({{"secret", "short"}}), "feed");
        });
        CPPUNIT_ASSERT_MESSAGE(err, err.find("level=warn event=jwt_weak_secret plugin=jwt instance=feed msg=") != std::string::npos);
    }

    void testJwtRs256() {
        EVP_PKEY* key = EVP_RSA_gen(2048);
        CPPUNIT_ASSERT(key);
        BIO* bio = BIO_new(BIO_s_mem());
        PEM_write_bio_PUBKEY(bio, key);
        char* data = nullptr;
        long len = BIO_get_mem_data(bio, &data);
        std::string pem(data, static_cast<size_t>(len));
        BIO_free(bio);
        std::string dir = tempDir();
        { std::ofstream(dir + "/pub.pem") << pem; }

        auto reg = bundled();
        auto v = reg->instantiate(SF_KIND_TOKEN_VALIDATOR, "jwt", opts({{"publicKeyPemPath", dir + "/pub.pem"}}));
        std::string claims = R"({"sub":"bob","exp":)" + std::to_string(nowSec() + 60) + "}";
        std::string tok = rs256(claims, key);
        TokenAnswer r = validate(*v, tok);
        CPPUNIT_ASSERT_MESSAGE(r.reason, r.accepted == 1);
        CPPUNIT_ASSERT_EQUAL(std::string("bob"), std::string(r.principal));
        // tampered claims
        size_t d1 = tok.find('.'), d2 = tok.rfind('.');
        std::string forged = tok.substr(0, d1 + 1) + b64url(R"({"sub":"root"})") + tok.substr(d2);
        assertRejected("invalid signature", validate(*v, forged));
        // an HS256 token "signed" with the public key must not pass (algorithm confusion)
        assertRejected("algorithm not allowed: HS256", validate(*v, hs256(kHs, claims, pem)));
        // inline PEM works as well
        auto inl = reg->instantiate(SF_KIND_TOKEN_VALIDATOR, "jwt", opts({{"publicKeyPem", pem}}));
        CPPUNIT_ASSERT_EQUAL(1, static_cast<int>(validate(*inl, tok).accepted));
        CPPUNIT_ASSERT_THROW(reg->instantiate(SF_KIND_TOKEN_VALIDATOR, "jwt", opts({{"publicKeyPem", "garbage"}})),
                             PluginError);
        EVP_PKEY_free(key);
        fs::remove_all(dir);
    }

    void testJwtTopics() {
        auto reg = bundled();
        auto v = reg->instantiate(SF_KIND_TOKEN_VALIDATOR, "jwt", opts({{"secret", kSecret}, {"topicsClaim", "topics"}}));
        std::string tok = hs256(kHs, R"({"sub":"c","topics":["prices","news.*"]})", kSecret);
        CPPUNIT_ASSERT_EQUAL(1, static_cast<int>(validate(*v, tok).accepted));  // connect: no topic yet
        CPPUNIT_ASSERT_EQUAL(1, static_cast<int>(validate(*v, tok, "prices", "subscribe").accepted));
        CPPUNIT_ASSERT_EQUAL(1, static_cast<int>(validate(*v, tok, "news.eu", "subscribe").accepted));
        assertRejected("topic not allowed by token", validate(*v, tok, "orders", "subscribe"));
        assertRejected("topic not allowed by token", validate(*v, tok, "news", "publish"));
        std::string noClaim = hs256(kHs, R"({"sub":"c"})", kSecret);
        assertRejected("topic not allowed by token", validate(*v, noClaim, "prices", "subscribe"));
    }

    void testPrometheusRender() {
        using T = sf::MetricSample::Type;
        auto reg = bundled();
        MetricsSinks sinks;
        sinks.add(reg->instantiate(SF_KIND_METRICS_SINK, "prometheus", {}));
        sf::MetricSnapshot snap = {
            sample("streamfence_messages_published_total", "Total messages published", T::Counter,
                   {{"namespace", "/feed"}, {"topic", "prices"}}, 3),
            sample("streamfence_connections_active", "Active connections\nnow", T::Gauge, {{"namespace", "/feed"}}, 2),
            sample("streamfence_messages_published_total", "Total messages published", T::Counter,
                   {{"namespace", "/feed"}, {"topic", "a\"b\\c\nd"}}, 1),
            sample("streamfence_lane_fill_ratio", "", T::Gauge, {}, 0.5),
        };
        std::string body, ct;
        CPPUNIT_ASSERT(sinks.render(snap, body, ct));
        CPPUNIT_ASSERT_EQUAL(std::string("text/plain; version=0.0.4; charset=utf-8"), ct);
        CPPUNIT_ASSERT_EQUAL(std::string(
            "# HELP streamfence_messages_published_total Total messages published\n"
            "# TYPE streamfence_messages_published_total counter\n"
            "streamfence_messages_published_total{namespace=\"/feed\",topic=\"prices\"} 3\n"
            "streamfence_messages_published_total{namespace=\"/feed\",topic=\"a\\\"b\\\\c\\nd\"} 1\n"
            "# HELP streamfence_connections_active Active connections\\nnow\n"
            "# TYPE streamfence_connections_active gauge\n"
            "streamfence_connections_active{namespace=\"/feed\"} 2\n"
            "# TYPE streamfence_lane_fill_ratio gauge\n"
            "streamfence_lane_fill_ratio 0.5\n"), body);
        MetricsSinks none;
        CPPUNIT_ASSERT(!none.render(snap, body, ct));
    }

    void testStatsd() {
        using T = sf::MetricSample::Type;
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CPPUNIT_ASSERT_EQUAL(0, bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a));
        socklen_t al = sizeof a;
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &al);
        std::string port = std::to_string(ntohs(a.sin_port));

        auto reg = bundled();
        MetricsSinks sinks;
        sinks.add(reg->instantiate(SF_KIND_METRICS_SINK, "statsd",
                                   opts({{"port", port}, {"prefix", "sf"}, {"flushIntervalMs", "50"}})));
        CPPUNIT_ASSERT_EQUAL(50u, sinks.flushIntervalMs(0));  // the instance's own interval
        std::string body, ct;
        CPPUNIT_ASSERT(!sinks.render({}, body, ct));  // statsd does not render

        double published = 3;
        auto snap = [&] {
            return sf::MetricSnapshot{
                sample("streamfence_messages_published_total", "h", T::Counter, {{"namespace", "/feed"}, {"topic", "prices"}}, published),
                sample("streamfence_connections_active", "h", T::Gauge, {{"namespace", "/feed"}}, 2),
            };
        };
        sinks.flushAll(snap());
        CPPUNIT_ASSERT_EQUAL(std::string("sf.streamfence_messages_published_total._feed.prices:3|c\n"
                                         "sf.streamfence_connections_active._feed:2|g"), recvDatagram(fd, 2000));
        published = 5;
        sinks.flushAll(snap());
        CPPUNIT_ASSERT_EQUAL(std::string("sf.streamfence_messages_published_total._feed.prices:2|c\n"
                                         "sf.streamfence_connections_active._feed:2|g"), recvDatagram(fd, 2000));
        sinks.flushAll(snap());  // counter unchanged: only the gauge
        CPPUNIT_ASSERT_EQUAL(std::string("sf.streamfence_connections_active._feed:2|g"), recvDatagram(fd, 2000));

        // the flusher thread pushes on its own at the instance's interval
        published = 6;
        sinks.start(snap);
        std::string pushed = recvDatagram(fd, 2000);
        sinks.stop();
        CPPUNIT_ASSERT_EQUAL(std::string("sf.streamfence_messages_published_total._feed.prices:1|c\n"
                                         "sf.streamfence_connections_active._feed:2|g"), pushed);
        while (!recvDatagram(fd, 100).empty()) {}

        // many lines: split into datagrams of at most 1432 bytes, none lost
        sf::MetricSnapshot many;
        for (int i = 0; i < 100; ++i)
            many.push_back(sample("streamfence_lane_depth_max", "h", T::Gauge, {{"topic", "topic-" + std::to_string(i)}}, i));
        sinks.flushAll(many);
        size_t lines = 0, datagrams = 0;
        for (std::string d; !(d = recvDatagram(fd, 500)).empty();) {
            CPPUNIT_ASSERT(d.size() <= 1432);
            lines += static_cast<size_t>(std::count(d.begin(), d.end(), '\n')) + 1;
            ++datagrams;
        }
        CPPUNIT_ASSERT_EQUAL(size_t(100), lines);
        CPPUNIT_ASSERT(datagrams > 1);
        close(fd);
        CPPUNIT_ASSERT_THROW(reg->instantiate(SF_KIND_METRICS_SINK, "statsd", opts({{"port", "99999"}})), PluginError);

        // without flushIntervalMs: every second (plugins/sink-statsd/README.md)
        MetricsSinks defaults;
        defaults.add(reg->instantiate(SF_KIND_METRICS_SINK, "statsd", opts({{"port", port}})));
        CPPUNIT_ASSERT_EQUAL(1000u, defaults.flushIntervalMs(0));
    }

    void testDefaultDirectory() {
        // The test runs from the build tree, so the build tree's plugin dir is the default.
        unsetenv("STREAMFENCE_PLUGIN_DIR");
        CPPUNIT_ASSERT_EQUAL(std::string(SF_PLUGIN_BUILD_DIR), Registry::defaultDirectory());
        setenv("STREAMFENCE_PLUGIN_DIR", "/opt/x", 1);
        CPPUNIT_ASSERT_EQUAL(std::string("/opt/x"), Registry::defaultDirectory());
        unsetenv("STREAMFENCE_PLUGIN_DIR");
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(PluginsTest);
