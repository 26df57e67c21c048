// spill_disk_bench: spilled messages/s written and replayed through the "disk" storage
// backend, loaded like the host loads it (dlopen + streamfence_plugin_entry, C ABI only) by the
// SDK-only harness the storage tests share (tests/storage/storage_harness.hpp).
//
//   spill_disk_bench [--plugin PATH] [--root DIR] [--messages N] [--payload B] [--lanes L]
//
// Write: appends are issued asynchronously with up to 65,536 in flight (the host does not
// wait for one spill before the next), timed until the last completion. Replay: per lane
// read_oldest(512) -> remove_oldest(n) until empty, records checked for order.
#include <streamfence/plugin.h>

#include "storage_harness.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
using namespace sfstorage;

static const Backend* g_backend;

// Counts completions; lets the writer keep a bounded number in flight (one harness Completion
// per append would measure the allocations, not the backend).
struct Flow {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t done = 0, failed = 0;
    std::string firstError;
};

static void onAppend(void* cookie, int status, const sf_record*, size_t, const char* err) {
    auto* f = static_cast<Flow*>(cookie);
    std::lock_guard<std::mutex> lk(f->mu);
    ++f->done;
    if (status != SF_OK) {
        if (!f->failed++) f->firstError = err ? err : "?";
    }
    f->cv.notify_one();
}

struct ReadResult {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    int status = 0;
    std::vector<uint64_t> seqs;  // message numbers parsed from message_id
};

static void onRead(void* cookie, int status, const sf_record* recs, size_t n, const char*) {
    auto* r = static_cast<ReadResult*>(cookie);
    std::lock_guard<std::mutex> lk(r->mu);
    r->status = status;
    const size_t stride = recs && n ? recs[0].struct_size : 0;  // walked by struct_size (plugin.h)
    for (size_t i = 0; i < n && stride >= sizeof(sf_record); ++i) {
        const sf_record& x = *reinterpret_cast<const sf_record*>(reinterpret_cast<const char*>(recs) + i * stride);
        r->seqs.push_back(std::strtoull(std::string(x.message_id.ptr + 4, x.message_id.len - 4).c_str(), nullptr, 10));
    }
    r->done = true;
    r->cv.notify_one();
}
static void onIgnore(void* cookie, int status, const sf_record*, size_t, const char* err) {
    if (status != SF_OK) std::fprintf(stderr, "remove failed: %s\n", err ? err : "?");
    auto* f = static_cast<Flow*>(cookie);
    std::lock_guard<std::mutex> lk(f->mu);
    ++f->done;
    f->cv.notify_one();
}

struct Figures {
    double writeRate = 0, replayRate = 0;
    bool ok = true;
};

static double secondsSince(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

static Figures run(const std::string& root, bool durable, uint64_t messages, size_t payload, int lanes, uint64_t window) {
    std::error_code ec;
    fs::remove_all(root, ec);
    const std::string eight = std::to_string(8ull << 30);
    Instance instance(*g_backend,
                      {{"root", root}, {"durable", durable ? "true" : "false"}, {"segmentBytes", "4194304"},
                       {"maxTotalBytes", eight}, {"maxLaneBytes", eight}, {"staleSpill", "remove"}},
                      "bench");
    Figures fig;
    if (!instance.ok()) {
        std::fprintf(stderr, "init failed: %s\n", instance.error().c_str());
        fig.ok = false;
        return fig;
    }
    void* inst = instance.handle();
    const sf_storage_backend_vtable* vt = &g_backend->vtable();
    std::vector<LaneKey> ls;
    for (int l = 0; l < lanes; ++l) ls.push_back(LaneKey{"bench", "/spill", "client-" + std::to_string(l), "topic"});
    std::vector<sf_lane_key> keys;
    for (auto& l : ls) keys.push_back(l.raw());

    // ~payload bytes of JSON per message
    std::string data = "{\"price\":123.45,\"symbol\":\"ABC\",\"pad\":\"";
    while (data.size() + 2 < payload) data += 'x';
    data += "\"}";
    const std::string event = "order";

    Flow flow;
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < messages; ++i) {
        {
            std::unique_lock<std::mutex> lk(flow.mu);
            flow.cv.wait(lk, [&] { return i - flow.done < window; });
        }
        char mid[32];
        int midLen = std::snprintf(mid, sizeof mid, "msg-%llu", static_cast<unsigned long long>(i));
        sf_record r{};
        r.struct_size = sizeof r;
        r.data = {data.data(), data.size()};
        r.event = {event.data(), event.size()};
        r.message_id = {mid, static_cast<size_t>(midLen)};
        r.bytes = data.size();
        if (vt->append(inst, &keys[i % keys.size()], &r, &onAppend, &flow) != SF_OK) {
            std::fprintf(stderr, "append refused\n");
            fig.ok = false;
            break;
        }
    }
    {
        std::unique_lock<std::mutex> lk(flow.mu);
        flow.cv.wait(lk, [&] { return flow.done == messages; });
    }
    double wsec = secondsSince(t0);
    if (flow.failed) {
        std::fprintf(stderr, "%llu appends failed: %s\n", static_cast<unsigned long long>(flow.failed), flow.firstError.c_str());
        fig.ok = false;
    }
    fig.writeRate = static_cast<double>(messages) / wsec;

    // replay: lanes are drained one after the other, like a subscriber catching up
    Flow removes;
    uint64_t issuedRemoves = 0, replayed = 0;
    t0 = std::chrono::steady_clock::now();
    for (size_t l = 0; l < keys.size(); ++l) {
        uint64_t expect = l;
        for (;;) {
            ReadResult rr;
            if (vt->read_oldest(inst, &keys[l], 512, &onRead, &rr) != SF_OK) break;
            std::unique_lock<std::mutex> lk(rr.mu);
            rr.cv.wait(lk, [&] { return rr.done; });
            if (rr.status != SF_OK || rr.seqs.empty()) break;
            for (uint64_t s : rr.seqs) {
                if (s != expect) {
                    std::fprintf(stderr, "order broken on lane %zu: got %llu, want %llu\n", l,
                                 static_cast<unsigned long long>(s), static_cast<unsigned long long>(expect));
                    fig.ok = false;
                }
                expect += keys.size();
            }
            replayed += rr.seqs.size();
            // the next read is queued behind this remove on the same lane: no need to wait
            vt->remove_oldest(inst, &keys[l], static_cast<uint32_t>(rr.seqs.size()), &onIgnore, &removes);
            ++issuedRemoves;
        }
    }
    {
        std::unique_lock<std::mutex> lk(removes.mu);
        removes.cv.wait(lk, [&] { return removes.done == issuedRemoves; });
    }
    double rsec = secondsSince(t0);
    if (replayed != messages) {
        std::fprintf(stderr, "replayed %llu of %llu\n", static_cast<unsigned long long>(replayed),
                     static_cast<unsigned long long>(messages));
        fig.ok = false;
    }
    fig.replayRate = static_cast<double>(replayed) / rsec;
    sf_storage_usage u{sizeof(sf_storage_usage), 0, 0, 0, {}};
    vt->usage(inst, nullptr, &u);
    if (u.records != 0 || u.bytes != 0) {
        std::fprintf(stderr, "usage after replay: %llu records, %llu bytes\n", static_cast<unsigned long long>(u.records),
                     static_cast<unsigned long long>(u.bytes));
        fig.ok = false;
    }
    for (auto& k : keys) {
        Flow c;
        vt->clear(inst, &k, &onIgnore, &c);
        std::unique_lock<std::mutex> lk(c.mu);
        c.cv.wait(lk, [&] { return c.done == 1; });
    }
    instance.destroy();
    for (auto& w : HostLog::instance().with("level=" + std::to_string(SF_LOG_WARN))) std::fprintf(stderr, "plugin: %s\n", w.c_str());
    for (auto& w : HostLog::instance().with("level=" + std::to_string(SF_LOG_ERROR))) std::fprintf(stderr, "plugin: %s\n", w.c_str());
    HostLog::instance().clear();
    fs::remove_all(root, ec);
    return fig;
}

int main(int argc, char** argv) {
    std::string plugin = SF_DISK_PLUGIN_PATH;
    std::string root = "spill-disk-bench." + std::to_string(::getpid());
    uint64_t messages = 500000;
    size_t payload = 100;
    int lanes = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i], v = argv[i + 1];
        if (a == "--plugin") plugin = v;
        else if (a == "--root") root = v;
        else if (a == "--messages") messages = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--payload") payload = std::strtoul(v.c_str(), nullptr, 10);
        else if (a == "--lanes") lanes = std::atoi(v.c_str());
        else {
            std::fprintf(stderr, "usage: %s [--plugin PATH] [--root DIR] [--messages N] [--payload B] [--lanes L]\n", argv[0]);
            return 2;
        }
    }
    std::unique_ptr<Backend> backend;
    try {
        backend = std::make_unique<Backend>(plugin, "disk");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    g_backend = backend.get();
    bool ok = true;
    auto line = [&](const char* what, const Figures& f, uint64_t n, bool durable, int l, uint64_t window) {
        std::printf("spill-disk %swrite: %.0f msgs/s, replay: %.0f msgs/s (payload %zu B, durable=%s)  lanes=%d messages=%llu "
                    "in_flight=%llu%s\n",
                    what, f.writeRate, f.replayRate, payload, durable ? "on" : "off", l, static_cast<unsigned long long>(n),
                    static_cast<unsigned long long>(window), f.ok ? "" : "  [ERRORS]");
        std::fflush(stdout);
        ok = ok && f.ok;
    };
    // headline: one lane (one slow subscriber), then many lanes, then durable
    line("", run(root, false, messages, payload, 1, 65536), messages, false, 1, 65536);
    line("", run(root, false, messages, payload, lanes, 65536), messages, false, lanes, 65536);
    uint64_t dn = std::max<uint64_t>(messages / 10, 1);
    line("", run(root, true, dn, payload, 1, 65536), dn, true, 1, 65536);
    uint64_t sn = std::max<uint64_t>(messages / 500, 1);
    line("(one at a time) ", run(root, true, sn, payload, 1, 1), sn, true, 1, 1);
    return ok ? 0 : 1;
}
