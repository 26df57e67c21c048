// The SDK-only harness for storage-backend plugins: loads a shipped .so through the C ABI
// (dlopen + streamfence_plugin_entry), exactly as the host does, plays the host's side
// (sf_host_api, lane keys, records, completions) and drives the backend synchronously or
// asynchronously. It depends on streamfence/plugin.h alone — nothing of sfhost, nothing of the
// C++ wrapper — so it tests what any host would see (docs/plugin-abi.md, storage backend).
// Used by the disk and hpkv CppUnit tests and by bench/spill_disk_bench.cpp.
#pragma once
#include <streamfence/plugin.h>

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sfstorage {

using Clock = std::chrono::steady_clock;

inline long msSince(Clock::time_point t) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

// ------------------------------------------------------------------ the host's services

// Every line the plugin logs through sf_host_api.log; SF_TEST_VERBOSE=1 echoes them.
class HostLog {
public:
    static HostLog& instance() {
        static HostLog log;
        return log;
    }
    void add(int level, const char* event, const char* msg) {
        std::string line = "level=" + std::to_string(level) + " event=" + (event ? event : "") + " msg=" + (msg ? msg : "");
        if (std::getenv("SF_TEST_VERBOSE")) std::fprintf(stderr, "  [plugin] %s\n", line.c_str());
        std::lock_guard<std::mutex> lk(mu_);
        lines_.push_back(std::move(line));
    }
    std::vector<std::string> with(const std::string& needle) const {
        std::lock_guard<std::mutex> lk(mu_);
        std::vector<std::string> out;
        for (auto& l : lines_)
            if (l.find(needle) != std::string::npos) out.push_back(l);
        return out;
    }
    size_t count(const std::string& needle) const { return with(needle).size(); }
    void clear() {
        std::lock_guard<std::mutex> lk(mu_);
        lines_.clear();
    }

private:
    mutable std::mutex mu_;
    std::vector<std::string> lines_;
};

inline const sf_host_api* hostApi() {
    static const sf_host_api api = [] {
        sf_host_api a{};
        a.struct_size = sizeof a;
        a.abi_version = SF_ABI_VERSION;
        a.log = [](void*, int level, const char* event, const char* msg) { HostLog::instance().add(level, event, msg); };
        a.now_ms = [](void*) {
            return static_cast<uint64_t>(
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count());
        };
        a.wall_ms = [](void*) {
            return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
        };
        return a;
    }();
    return &api;
}

// ------------------------------------------------------------------ lane keys and records

struct LaneKey {
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

struct Record {
    std::string data, event, messageId, key;
    uint32_t retry = 0;
    uint64_t bytes = 0;
    bool operator==(const Record& o) const {
        return data == o.data && event == o.event && messageId == o.messageId && key == o.key && retry == o.retry &&
               bytes == o.bytes;
    }
    sf_record raw() const {
        sf_record r{};
        r.struct_size = sizeof r;
        r.retry_count = retry;
        r.data = {data.data(), data.size()};
        r.event = {event.data(), event.size()};
        r.message_id = {messageId.data(), messageId.size()};
        r.key = {key.data(), key.size()};
        r.bytes = bytes;
        return r;
    }
    // Copies one element of a callback's array (walked by the caller, by struct_size).
    static Record from(const sf_record& r) {
        auto s = [](sf_str v) { return std::string(v.ptr ? v.ptr : "", v.len); };
        return Record{s(r.data), s(r.event), s(r.message_id), s(r.key), r.retry_count, r.bytes};
    }
};

// ------------------------------------------------------------------ completions

constexpr int kTimedOut = -101;  // no callback within the wait (not an SF_* code)

struct Result {
    int status = kTimedOut;  // the callback's status, or the call's own code when refused
    bool refused = false;    // the call returned non-SF_OK: no callback came
    std::vector<Record> records;
    std::string error;
    std::thread::id thread;  // where the callback ran
    Clock::time_point at;    // when it ran
    uint64_t order = 0;      // global completion sequence number
};

// One operation's callback. Counts calls: the ABI says exactly one per accepted call, and
// extraCalls() across all completions must stay 0.
class Completion {
public:
    static void callback(void* cookie, int status, const sf_record* records, size_t count, const char* error) {
        static_cast<Completion*>(cookie)->done(status, records, count, error);
    }
    // Waits up to ms for the callback; status kTimedOut when it did not come.
    Result wait(int ms = 60000) {
        std::unique_lock<std::mutex> lk(mu_);
        if (!cv_.wait_for(lk, std::chrono::milliseconds(ms), [&] { return calls_ > 0; })) {
            Result r;
            r.error = "TIMEOUT";
            return r;
        }
        return result_;
    }
    int calls() const {
        std::lock_guard<std::mutex> lk(mu_);
        return calls_;
    }
    static std::atomic<int>& extraCalls() {
        static std::atomic<int> n{0};
        return n;
    }

private:
    static std::atomic<uint64_t>& sequence() {
        static std::atomic<uint64_t> n{0};
        return n;
    }
    void done(int status, const sf_record* records, size_t count, const char* error) {
        std::lock_guard<std::mutex> lk(mu_);
        if (calls_++ > 0) {
            ++extraCalls();
            return;
        }
        result_.status = status;
        result_.error = error ? error : "";
        result_.thread = std::this_thread::get_id();
        result_.at = Clock::now();
        result_.order = ++sequence();
        // Arrays are walked by their elements' struct_size (plugin.h), as the host does.
        const size_t stride = records && count ? records[0].struct_size : 0;
        for (size_t i = 0; i < count && stride >= sizeof(sf_record); ++i)
            result_.records.push_back(
                Record::from(*reinterpret_cast<const sf_record*>(reinterpret_cast<const char*>(records) + i * stride)));
        cv_.notify_all();
    }

    mutable std::mutex mu_;
    std::condition_variable cv_;
    int calls_ = 0;
    Result result_;
};

// ------------------------------------------------------------------ the plugin

// A storage backend .so, opened once and kept loaded (nothing of it may be used after a close).
class Backend {
public:
    // Throws std::runtime_error saying why when the file is not a loadable `name` backend.
    Backend(const std::string& path, const std::string& name) {
        so_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!so_) throw std::runtime_error("dlopen " + path + ": " + ::dlerror());
        auto entry = reinterpret_cast<sf_plugin_entry_fn>(::dlsym(so_, SF_PLUGIN_ENTRY_SYMBOL));
        if (!entry) throw std::runtime_error(path + ": no " SF_PLUGIN_ENTRY_SYMBOL);
        const uint32_t versions[] = {SF_ABI_VERSION};
        desc_ = entry(versions, 1);
        if (!desc_ || desc_->abi_version != SF_ABI_VERSION || desc_->kind != SF_KIND_STORAGE_BACKEND || !desc_->name ||
            name != desc_->name || !desc_->vtable)
            throw std::runtime_error(path + ": not the \"" + name + "\" storage backend of ABI " +
                                     std::to_string(SF_ABI_VERSION));
        vt_ = static_cast<const sf_storage_backend_vtable*>(desc_->vtable);
    }
    const sf_plugin_descriptor& descriptor() const { return *desc_; }
    const sf_storage_backend_vtable& vtable() const { return *vt_; }

private:
    void* so_ = nullptr;
    const sf_plugin_descriptor* desc_ = nullptr;
    const sf_storage_backend_vtable* vt_ = nullptr;
};

// One initialised instance of a backend, with the options the host would flatten from the config.
class Instance {
public:
    Instance(const Backend& b, const std::map<std::string, std::string>& opts, const std::string& instanceName = "")
        : b_(b) {
        std::vector<sf_option> items;
        for (auto& kv : opts) {
            sf_option o{};
            o.struct_size = sizeof o;
            o.key = {kv.first.data(), kv.first.size()};
            o.value = {kv.second.data(), kv.second.size()};
            items.push_back(o);
        }
        sf_options o{};
        o.struct_size = sizeof o;
        o.count = static_cast<uint32_t>(items.size());
        o.items = items.data();
        o.json = "{}";
        o.instance_name = instanceName.c_str();
        char buf[512] = {0};
        sf_error err{};
        err.struct_size = sizeof err;
        err.capacity = sizeof buf;
        err.message = buf;
        if (b_.descriptor().init(hostApi(), &o, &h_, &err) != SF_OK) {
            h_ = nullptr;
            error_ = buf[0] ? buf : "init failed";
        }
    }
    ~Instance() { destroy(); }
    Instance(const Instance&) = delete;
    Instance& operator=(const Instance&) = delete;

    bool ok() const { return h_ != nullptr; }
    const std::string& error() const { return error_; }  // why init failed
    void* handle() const { return h_; }                  // for callers driving the vtable themselves
    // Destroys now (every pending callback runs first, per the ABI); idempotent.
    void destroy() {
        if (h_) b_.descriptor().destroy(h_);
        h_ = nullptr;
    }

    // Asynchronous: SF_OK = accepted (c gets exactly one callback), else refused.
    int append(const LaneKey& k, const Record& r, Completion* c) {
        sf_lane_key kk = k.raw();
        sf_record rr = r.raw();
        return b_.vtable().append(h_, &kk, &rr, &Completion::callback, c);
    }
    int read(const LaneKey& k, uint32_t max, Completion* c) {
        sf_lane_key kk = k.raw();
        return b_.vtable().read_oldest(h_, &kk, max, &Completion::callback, c);
    }
    int remove(const LaneKey& k, uint32_t n, Completion* c) {
        sf_lane_key kk = k.raw();
        return b_.vtable().remove_oldest(h_, &kk, n, &Completion::callback, c);
    }
    int clear(const LaneKey& k, Completion* c) {
        sf_lane_key kk = k.raw();
        return b_.vtable().clear(h_, &kk, &Completion::callback, c);
    }
    sf_storage_usage usage(const LaneKey* k) {
        sf_storage_usage u{};
        u.struct_size = sizeof u;
        sf_lane_key kk{};
        if (k) kk = k->raw();
        b_.vtable().usage(h_, k ? &kk : nullptr, &u);
        return u;
    }

    // Synchronous forms (no Completion): the callback's result within 60 s, a refusal
    // (refused, status = the call's code) or kTimedOut.
    Result append(const LaneKey& k, const Record& r) {
        Completion c;
        return settle(append(k, r, &c), c);
    }
    Result read(const LaneKey& k, uint32_t max) {
        Completion c;
        return settle(read(k, max, &c), c);
    }
    Result remove(const LaneKey& k, uint32_t n) {
        Completion c;
        return settle(remove(k, n, &c), c);
    }
    Result clear(const LaneKey& k) {
        Completion c;
        return settle(clear(k, &c), c);
    }
    // Reads everything in chunks, removing as it goes. status: the first failure, else SF_OK.
    std::vector<Record> drain(const LaneKey& k, uint32_t chunk = 97, int* status = nullptr) {
        std::vector<Record> all;
        int rc = SF_OK;
        for (int guard = 0; guard < 100000; ++guard) {
            Result r = read(k, chunk);
            if (r.status != SF_OK) { rc = r.status; break; }
            if (r.records.empty()) break;
            all.insert(all.end(), r.records.begin(), r.records.end());
            Result x = remove(k, static_cast<uint32_t>(r.records.size()));
            if (x.status != SF_OK) { rc = x.status; break; }
        }
        if (status) *status = rc;
        return all;
    }

private:
    static Result settle(int rc, Completion& c) {
        if (rc != SF_OK) {
            Result r;
            r.status = rc;
            r.refused = true;
            r.error = "refused";
            return r;
        }
        return c.wait();
    }

    const Backend& b_;
    void* h_ = nullptr;
    std::string error_;
};

}  // namespace sfstorage
