// Storage backend "hpkv": spills lanes to an HPKV key-value store over its WebSocket API.
//
// Layout (see README.md): one key per record, <prefix><server>/<ns>/<client>/<topic>/<16-digit
// seq>, so a RANGE from the lane's head returns records oldest first; a lane meta key
// (<lane>/meta, outside the digit range) persists head and tail. Each lane's index of
// confirmed (seq, bytes) lives in memory; everything that touches lane state runs on one engine
// thread, the network on the client's I/O thread, so no caller ever waits for I/O.
#include <streamfence/plugin.hpp>

#include "hpkv_client.hpp"
#include "hpkv_codec.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using namespace streamfence;
using sfhpkv::Result;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxValueBytes = 102400;  // HPKV value limit
constexpr size_t kMaxKeyBytes = 512;       // HPKV key limit
constexpr int kRangePage = 1000;           // HPKV RANGE maximum
// Pages whose value sizes are unknown (load, clear) stay small: 200 x 100 KiB values still fit
// the client's frame limit. Reads size their page from the indexed bytes instead.
constexpr int kBlindPage = 200;
constexpr uint64_t kReadPageBytes = 4u << 20;

enum class OpKind { Append, Read, Remove, Clear };
enum class OpState { Queued, Running, Done };

struct LaneOp {
    OpKind kind;
    OpState state = OpState::Queued;
    bool completed = false;  // completion delivered (guards against late results)
    Completion done;
    Record rec;     // append
    uint32_t n = 0; // read max / remove count
    int status = SF_OK;
    std::string error;
    // append
    bool seqAssigned = false;
    uint64_t seq = 0;
    std::string value;
    // read
    std::vector<uint64_t> wanted;
    std::map<uint64_t, Record> found;
    std::set<uint64_t> corrupt;
    std::vector<Record> out;
    // remove / clear
    size_t outstanding = 0;
    size_t failedDeletes = 0;
    std::string lastError;
    bool truncated = false;
    uint64_t nextFrom = 0;
    bool waitingForMeta = false;
};
using OpPtr = std::shared_ptr<LaneOp>;

struct Entry {
    uint64_t seq;
    uint64_t bytes;
};

struct Lane {
    uint64_t id = 0;
    LaneKey key;
    std::string prefix;  // every key of the lane starts with it
    std::deque<OpPtr> ops;
    size_t firstQueued = 0;   // ops[0, firstQueued) have been started
    std::deque<Entry> index;  // confirmed records, oldest first
    uint64_t bytes = 0, pendingBytes = 0, tail = 0;
    enum { Unloaded, Loading, Loaded } load = Unloaded;
    bool metaDirty = false, metaInFlight = false, clearing = false, erasable = false;
    Clock::time_point metaRetryAt{};
    std::set<uint64_t> orphans, orphansInFlight;  // keys to delete in the background
    OpPtr clearOp;                                 // clear waiting for the meta write
};

bool transientCode(int code) {
    return code == sfhpkv::kTimeout || code == sfhpkv::kConnectionLost || code == sfhpkv::kShutdown || code == 429 ||
           code >= 500;
}

class HpkvBackend : public StorageBackend {
public:
    HpkvBackend(const Host& host, const Options& o) : host_(host) {
        std::string baseUrl = o.get("baseUrl");
        if (baseUrl.empty()) throw std::invalid_argument("hpkv: option baseUrl is required (e.g. https://api-eu-2.hpkv.io)");
        std::string apiKey = o.get("apiKey");
        if (apiKey.empty() && o.has("apiKeyEnv")) {
            std::string env = o.get("apiKeyEnv");
            const char* v = std::getenv(env.c_str());
            if (!v || !*v) throw std::invalid_argument("hpkv: environment variable " + env + " (apiKeyEnv) is not set");
            apiKey = v;
        }
        if (apiKey.empty()) throw std::invalid_argument("hpkv: option apiKey or apiKeyEnv is required");
        prefix_ = o.get("keyPrefix", "streamfence:");
        if (prefix_.size() > 200 || !sfhpkv::isValidUtf8(prefix_))
            throw std::invalid_argument("hpkv: keyPrefix must be valid UTF-8 of at most 200 bytes");
        timeoutMs_ = static_cast<int>(o.getInt("requestTimeoutMs", 5000));
        if (timeoutMs_ <= 0) throw std::invalid_argument("hpkv: requestTimeoutMs must be > 0");
        maxLaneBytes_ = static_cast<uint64_t>(std::max<long long>(0, o.getInt("maxLaneBytes", 0)));
        maxTotalBytes_ = static_cast<uint64_t>(std::max<long long>(0, o.getInt("maxTotalBytes", 0)));
        graceMs_ = static_cast<int>(o.getInt("shutdownGraceMs", 2000));

        sfhpkv::ClientOptions co;
        co.baseUrl = baseUrl;
        co.apiKey = apiKey;
        if (o.has("rateLimitPerSecond")) {
            try {
                co.rateLimitPerSecond = std::stod(o.get("rateLimitPerSecond"));
            } catch (...) {
                throw std::invalid_argument("hpkv: rateLimitPerSecond must be a number");
            }
            if (co.rateLimitPerSecond < 0) throw std::invalid_argument("hpkv: rateLimitPerSecond must be >= 0");
        }
        co.connectTimeoutMs = static_cast<int>(o.getInt("connectTimeoutMs", std::min(timeoutMs_, 3000)));
        co.reconnectMaxMs = static_cast<int>(o.getInt("reconnectMaxMs", 5000));
        co.maxInFlight = static_cast<size_t>(std::max<long long>(1, o.getInt("maxInFlight", 512)));
        co.tlsVerify = o.getBool("tlsVerify", true);
        Host h = host_;
        co.log = [h](int level, const char* event, const std::string& msg) { h.log(level, event, msg); };
        client_ = std::make_unique<sfhpkv::Client>(co);  // throws std::invalid_argument on a bad URL
        engine_ = std::thread([this] { runEngine(); });
        host_.info("hpkv_started", "spilling to " + client_->wsUrl() + " under prefix \"" + prefix_ + "\"");
    }

    ~HpkvBackend() override {
        {
            std::lock_guard<std::mutex> lk(qmu_);
            stopping_ = true;  // new calls are refused from here on
        }
        // Give in-flight work (appends, deletes, meta writes) a bounded chance to finish.
        auto until = Clock::now() + std::chrono::milliseconds(graceMs_);
        while (busy_.load() && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        post([this] { shuttingDown_ = true; });
        client_->stop();  // every pending request gets its (kShutdown) callback -> posted here
        post([this] { failEverything(); });
        {
            std::lock_guard<std::mutex> lk(qmu_);
            stopEngine_ = true;
        }
        qcv_.notify_one();
        engine_.join();
    }

    bool append(const LaneKey& lane, Record record, Completion done) override {
        auto op = makeOp(OpKind::Append, done);
        op->rec = std::move(record);
        return submit(lane, std::move(op));
    }
    bool readOldest(const LaneKey& lane, uint32_t max, Completion done) override {
        auto op = makeOp(OpKind::Read, done);
        op->n = max;
        return submit(lane, std::move(op));
    }
    bool removeOldest(const LaneKey& lane, uint32_t n, Completion done) override {
        auto op = makeOp(OpKind::Remove, done);
        op->n = n;
        return submit(lane, std::move(op));
    }
    bool clear(const LaneKey& lane, Completion done) override { return submit(lane, makeOp(OpKind::Clear, done)); }

    static std::shared_ptr<LaneOp> makeOp(OpKind kind, const Completion& done) {
        auto op = std::make_shared<LaneOp>();
        op->kind = kind;
        op->done = done;
        return op;
    }
    Usage usage(const LaneKey* lane) override {
        std::lock_guard<std::mutex> lk(usageMu_);
        if (!lane) return total_;
        auto it = usage_.find(*lane);
        return it == usage_.end() ? Usage{} : it->second;
    }

private:
    // ------------------------------------------------------------ engine plumbing
    bool submit(const LaneKey& lane, OpPtr op) {
        {
            std::lock_guard<std::mutex> lk(qmu_);
            if (stopping_) return false;
            busy_.store(true);
            tasks_.emplace_back([this, lane, op]() mutable { enqueue(lane, std::move(op)); });
        }
        qcv_.notify_one();
        return true;
    }

    void post(std::function<void()> fn) {
        {
            std::lock_guard<std::mutex> lk(qmu_);
            tasks_.push_back(std::move(fn));
        }
        qcv_.notify_one();
    }

    // A client callback that hops onto the engine thread.
    sfhpkv::Callback onEngine(std::function<void(Result&)> fn) {
        ++requests_;
        return [this, fn = std::move(fn)](Result& r) mutable {
            post([this, fn = std::move(fn), r = std::move(r)]() mutable {
                --requests_;
                fn(r);
            });
        };
    }

    void runEngine() {
        auto nextTick = Clock::now() + std::chrono::seconds(1);
        for (;;) {
            std::deque<std::function<void()>> batch;
            {
                std::unique_lock<std::mutex> lk(qmu_);
                qcv_.wait_until(lk, nextTick, [&] { return !tasks_.empty() || stopEngine_; });
                if (tasks_.empty() && stopEngine_) break;
                batch.swap(tasks_);
            }
            for (auto& t : batch) t();
            auto now = Clock::now();
            if (now >= nextTick) {
                nextTick = now + std::chrono::seconds(1);
                tick(now);
            }
            // Busy = worth waiting for at shutdown. Orphan deletes only count while connected:
            // waiting for a dead server would only delay the host.
            bool anyOps = false, connected = false, checked = false;
            for (auto& kv : lanes_) {
                Lane& l = *kv.second;
                if (!l.ops.empty() || l.metaInFlight) anyOps = true;
                else if (!l.orphans.empty()) {
                    if (!checked) connected = client_->stats().connected, checked = true;
                    anyOps = anyOps || connected;
                }
                if (anyOps) break;
            }
            std::lock_guard<std::mutex> lk(qmu_);
            busy_.store(anyOps || requests_ > 0 || !tasks_.empty());
        }
    }

    void tick(Clock::time_point now) {
        if (shuttingDown_) return;
        for (auto& kv : lanes_) {
            Lane& l = *kv.second;
            maybeWriteMeta(l);
            deleteOrphans(l);
        }
        if (failuresSinceLog_ > 0 && now - lastFailLog_ > std::chrono::seconds(5)) logFailure("");
    }

    Lane* laneById(uint64_t id) {
        auto it = byId_.find(id);
        return it == byId_.end() ? nullptr : it->second;
    }

    std::string recordKey(const Lane& l, uint64_t seq) const { return l.prefix + sfhpkv::seqSuffix(seq); }
    std::string metaKey(const Lane& l) const { return l.prefix + "meta"; }

    std::string lanePrefix(const LaneKey& k) const {
        std::string path;
        sfhpkv::appendKeyComponent(path, k.server);
        path += '/';
        sfhpkv::appendKeyComponent(path, k.ns);
        path += '/';
        sfhpkv::appendKeyComponent(path, k.client);
        path += '/';
        sfhpkv::appendKeyComponent(path, k.topic);
        path += '/';
        if (prefix_.size() + path.size() + sfhpkv::kSeqDigits > kMaxKeyBytes) {
            // Too long for HPKV's 512-byte keys: a hash keeps lanes apart (documented).
            char buf[24];
            std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(sfhpkv::fnv1a64(path)));
            path = std::string("~h") + buf + "/";
        }
        return prefix_ + path;
    }

    void enqueue(const LaneKey& key, OpPtr op) {
        auto it = lanes_.find(key);
        if (it == lanes_.end()) {
            auto l = std::make_unique<Lane>();
            l->id = nextLaneId_++;
            l->key = key;
            l->prefix = lanePrefix(key);
            byId_[l->id] = l.get();
            it = lanes_.emplace(key, std::move(l)).first;
        }
        Lane& l = *it->second;
        if (shuttingDown_) {
            op->state = OpState::Done;
            op->status = SF_ERR;
            op->error = "hpkv: backend shutting down";
        }
        l.ops.push_back(std::move(op));
        process(l);
    }

    void complete(LaneOp& op) {
        if (op.completed) return;
        op.completed = true;
        if (op.status == SF_OK && op.kind == OpKind::Read)
            op.done.records(op.out);
        else if (op.status == SF_OK)
            op.done.ok();
        else
            op.done.fail(op.status, op.error);
    }

    // Start what may start, complete finished ops in issue order, repeat until stable.
    void process(Lane& l) {
        for (;;) {
            std::vector<OpPtr> finished;
            while (!l.ops.empty() && l.ops.front()->state == OpState::Done) {
                finished.push_back(l.ops.front());
                l.ops.pop_front();
                if (l.firstQueued > 0) --l.firstQueued;
                settle(l, *finished.back());
            }
            // usage() already reflects an op when its completion runs.
            if (!finished.empty()) publishUsage(l);
            for (auto& op : finished) complete(*op);
            pump(l);  // may finish ops at once (quota, empty read): loop until stable
            if (l.ops.empty() || l.ops.front()->state != OpState::Done) break;
        }
        publishUsage(l);
        maybeWriteMeta(l);
        maybeErase(l);
    }

    void pump(Lane& l) {
        if (l.load == Lane::Unloaded && !l.ops.empty() && l.ops.front()->kind == OpKind::Clear) {
            // Clearing an unknown lane needs no state: skip the load (finishClear reloads on failure).
            l.load = Lane::Loaded;
            l.tail = 0;
        }
        if (l.load != Lane::Loaded) {
            bool waiting = std::any_of(l.ops.begin(), l.ops.end(), [](const OpPtr& o) { return o->state != OpState::Done; });
            if (l.load == Lane::Unloaded && waiting && !shuttingDown_) startLoad(l);
            return;
        }
        // Ops start in issue order, so everything before firstQueued has started; resuming there
        // keeps a long queue of appends O(1) per completion. process() popped the done front, so
        // firstQueued > 0 means something before the next op is unfinished.
        size_t i = l.firstQueued;
        if (i > 0 && l.ops.front()->kind != OpKind::Append && l.ops.front()->state == OpState::Running) return;
        for (; i < l.ops.size(); ++i) {
            const OpPtr& opp = l.ops[i];
            if (opp->state != OpState::Queued) continue;
            if (opp->kind == OpKind::Append) {
                startAppend(l, opp);
                continue;
            }
            if (i > 0) break;  // barrier: waits for everything before it, nothing overtakes it
            if (opp->kind == OpKind::Read) startRead(l, opp);
            else if (opp->kind == OpKind::Remove) startRemove(l, opp);
            else startClear(l, opp);
            ++i;
            break;
        }
        l.firstQueued = i;
    }

    // Effects of a finished op on the lane, applied in issue order.
    void settle(Lane& l, LaneOp& op) {
        if (op.status != SF_OK && op.status != SF_ERR_FULL) {
            // Visible failure: counted, and logged at most every 5 s (a dead server must not
            // turn into one log line per message).
            ++failuresSinceLog_;
            if (op.kind == OpKind::Append) ++appendsFailed_;
            lastFailure_ = op.error;
            if (Clock::now() - lastFailLog_ > std::chrono::seconds(5)) logFailure(op.error);
        }
        if (op.kind != OpKind::Append || !op.seqAssigned) return;
        l.pendingBytes -= op.rec.bytes;
        totalPending_ -= op.rec.bytes;
        if (op.status == SF_OK) {
            l.index.push_back(Entry{op.seq, op.rec.bytes});
            l.bytes += op.rec.bytes;
            totalBytes_ += op.rec.bytes;
            ++totalRecords_;
            l.metaDirty = true;
            ++appendsOk_;
        } else {
            // The SET may still have landed: delete the key in the background; it is never read
            // (reads only return indexed seqs).
            l.orphans.insert(op.seq);
            deleteOrphans(l);
        }
    }

    void logFailure(const std::string& latest) {
        host_.warn("hpkv_append_failed", std::to_string(failuresSinceLog_) + " operation(s) failed (appends failed " +
                                             std::to_string(appendsFailed_) + ", ok " + std::to_string(appendsOk_) +
                                             "): " + (latest.empty() ? lastFailure_ : latest));
        failuresSinceLog_ = 0;
        lastFailLog_ = Clock::now();
    }

    void publishUsage(const Lane& l) {
        std::lock_guard<std::mutex> lk(usageMu_);
        usage_[l.key] = Usage{l.index.size(), l.bytes};
        total_ = Usage{totalRecords_, totalBytes_};
    }

    void maybeErase(Lane& l) {
        if (!l.erasable || !l.ops.empty() || !l.index.empty() || !l.orphans.empty() || !l.orphansInFlight.empty() ||
            l.metaInFlight || l.load == Lane::Loading)
            return;
        {
            std::lock_guard<std::mutex> lk(usageMu_);
            usage_.erase(l.key);
        }
        byId_.erase(l.id);
        lanes_.erase(l.key);  // l is gone after this line
    }

    void fail(Lane& l, LaneOp& op, const Result& r, const char* what) {
        op.state = OpState::Done;
        op.status = transientCode(r.code) ? SF_ERR_AGAIN : SF_ERR;
        op.error = std::string("hpkv: ") + what + ": " + r.error;
        (void)l;
    }

    // ------------------------------------------------------------ lane load (first use)
    void startLoad(Lane& l) {
        l.load = Lane::Loading;
        client_->get(metaKey(l), timeoutMs_, onEngine([this, id = l.id](Result& r) {
                         Lane* l = laneById(id);
                         if (!l) return;
                         uint64_t head = 0, tail = 0;
                         if (r.ok()) {
                             try {
                                 Poco::JSON::Parser p;
                                 auto m = p.parse(r.body->getValue<std::string>("value")).extract<Poco::JSON::Object::Ptr>();
                                 head = m->getValue<uint64_t>("head");
                                 tail = m->getValue<uint64_t>("tail");
                             } catch (...) {
                                 host_.warn("hpkv_bad_meta", "unreadable lane meta " + metaKey(*l) + "; scanning from 0");
                                 head = tail = 0;
                             }
                         } else if (r.code != 404) {
                             loadFailed(*l, r);
                             return;
                         }
                         l->tail = tail;
                         loadPage(*l, head);
                     }));
    }

    void loadPage(Lane& l, uint64_t from) {
        client_->range(recordKey(l, from), recordKey(l, sfhpkv::kMaxSeq), kBlindPage, timeoutMs_,
                       onEngine([this, id = l.id](Result& r) {
                           Lane* l = laneById(id);
                           if (!l) return;
                           if (!r.ok()) {
                               loadFailed(*l, r);
                               return;
                           }
                           uint64_t last = 0;
                           bool any = false;
                           auto recs = r.body->getArray("records");
                           for (size_t i = 0; recs && i < recs->size(); ++i) {
                               auto o = recs->getObject(static_cast<unsigned>(i));
                               uint64_t seq;
                               std::string key = o->getValue<std::string>("key");
                               if (!sfhpkv::parseSeqSuffix(key, l->prefix.size(), seq)) continue;
                               any = true;
                               last = seq;
                               Record rec;
                               if (!decodeRecord(o->get("value").toString(), rec)) {
                                   host_.error("hpkv_corrupt_record", "skipping undecodable record " + key);
                                   l->orphans.insert(seq);
                                   continue;
                               }
                               l->index.push_back(Entry{seq, rec.bytes});
                               l->bytes += rec.bytes;
                               totalBytes_ += rec.bytes;
                               ++totalRecords_;
                           }
                           if (any) l->tail = std::max(l->tail, last + 1);
                           bool truncated = r.body->has("truncated") && r.body->getValue<bool>("truncated");
                           if (truncated && any && last < sfhpkv::kMaxSeq) {
                               loadPage(*l, last + 1);
                               return;
                           }
                           if (!l->index.empty())
                               host_.info("hpkv_lane_recovered", std::to_string(l->index.size()) + " record(s) of " +
                                                                     l->prefix + " found from an earlier run");
                           l->load = Lane::Loaded;
                           process(*l);
                       }));
    }

    void loadFailed(Lane& l, const Result& r) {
        // Undo a partial load, then fail what waits for it; the next op retries the load.
        forgetIndex(l);
        l.load = Lane::Unloaded;
        for (auto& op : l.ops) fail(l, *op, r, "cannot load lane state from HPKV");
        process(l);
    }

    // ------------------------------------------------------------ append
    std::string encodeRecord(const Record& r) const {
        std::string v;
        v.reserve(r.data.size() + r.event.size() + r.messageId.size() + r.key.size() + 64);
        v = "{\"v\":1";
        auto field = [&](const char* name, const std::string& s) {
            if (sfhpkv::isValidUtf8(s)) {
                v += ",\"";
                v += name;
                v += "\":";
                sfhpkv::appendJsonString(v, s);
            } else {  // not text: base64 under "<name>64"
                v += ",\"";
                v += name;
                v += "64\":\"";
                v += sfhpkv::base64Encode(s);
                v += '"';
            }
        };
        field("d", r.data);
        field("e", r.event);
        field("m", r.messageId);
        field("k", r.key);
        v += ",\"r\":" + std::to_string(r.retryCount);
        v += ",\"b\":" + std::to_string(r.bytes) + "}";
        return v;
    }

    static bool decodeRecord(const std::string& value, Record& out) {
        try {
            Poco::JSON::Parser p;
            auto o = p.parse(value).extract<Poco::JSON::Object::Ptr>();
            if (!o || o->getValue<int>("v") != 1) return false;
            auto field = [&](const char* name, std::string& dst) {
                if (o->has(name)) {
                    dst = o->getValue<std::string>(name);
                    return true;
                }
                std::string n64 = std::string(name) + "64";
                if (o->has(n64)) return sfhpkv::base64Decode(o->getValue<std::string>(n64), dst);
                dst.clear();
                return true;
            };
            if (!field("d", out.data) || !field("e", out.event) || !field("m", out.messageId) || !field("k", out.key))
                return false;
            out.retryCount = o->getValue<uint32_t>("r");
            out.bytes = o->getValue<uint64_t>("b");
            return true;
        } catch (...) {
            return false;
        }
    }

    void startAppend(Lane& l, const OpPtr& opp) {
        LaneOp& op = *opp;
        uint64_t b = op.rec.bytes;
        if (maxLaneBytes_ && l.bytes + l.pendingBytes + b > maxLaneBytes_) {
            op.state = OpState::Done;
            op.status = SF_ERR_FULL;
            op.error = "hpkv: lane quota reached (maxLaneBytes " + std::to_string(maxLaneBytes_) + ")";
            ++rejectedFull_;
            return;
        }
        if (maxTotalBytes_ && totalBytes_ + totalPending_ + b > maxTotalBytes_) {
            op.state = OpState::Done;
            op.status = SF_ERR_FULL;
            op.error = "hpkv: total quota reached (maxTotalBytes " + std::to_string(maxTotalBytes_) + ")";
            ++rejectedFull_;
            return;
        }
        op.value = encodeRecord(op.rec);
        if (op.value.size() > kMaxValueBytes) {
            op.state = OpState::Done;
            op.status = SF_ERR;
            op.error = "hpkv: record too large for an HPKV value (" + std::to_string(op.value.size()) + " > " +
                       std::to_string(kMaxValueBytes) + " bytes encoded)";
            return;
        }
        if (l.tail > sfhpkv::kMaxSeq) {
            op.state = OpState::Done;
            op.status = SF_ERR;
            op.error = "hpkv: lane sequence exhausted";
            return;
        }
        op.seq = l.tail++;
        op.seqAssigned = true;
        l.pendingBytes += b;
        totalPending_ += b;
        l.erasable = false;
        op.state = OpState::Running;
        std::string value = std::move(op.value);
        op.value.clear();
        // Completed only on the server's acknowledgement; unanswered SETs are re-sent after a
        // reconnect by the client (same key, same value: idempotent).
        client_->set(recordKey(l, op.seq), value, timeoutMs_, onEngine([this, id = l.id, opp](Result& r) {
                         if (opp->completed || opp->state == OpState::Done) return;
                         Lane* l = laneById(id);
                         if (!l) return;
                         if (r.ok()) opp->state = OpState::Done;
                         else fail(*l, *opp, r, "append failed");
                         process(*l);
                     }));
    }

    // ------------------------------------------------------------ read
    void startRead(Lane& l, const OpPtr& opp) {
        LaneOp& op = *opp;
        size_t n = std::min<size_t>(op.n, l.index.size());
        if (n == 0) {
            op.state = OpState::Done;
            return;
        }
        op.wanted.reserve(n);
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; ++i) {
            // "Up to max": stop at ~4 MiB so one RANGE answer stays a sane frame.
            bytes += l.index[i].bytes * 2 + 128;
            if (i > 0 && bytes > kReadPageBytes) break;
            op.wanted.push_back(l.index[i].seq);
        }
        op.state = OpState::Running;
        readPage(l, opp, op.wanted.front());
    }

    void readPage(Lane& l, const OpPtr& opp, uint64_t from) {
        uint64_t to = opp->wanted.back();
        int limit = static_cast<int>(std::min<uint64_t>(kRangePage, to - from + 1));
        client_->range(recordKey(l, from), recordKey(l, to), limit, timeoutMs_, onEngine([this, id = l.id, opp](Result& r) {
                           if (opp->completed) return;
                           Lane* l = laneById(id);
                           if (!l) return;
                           if (!r.ok()) {
                               fail(*l, *opp, r, "read failed");
                               process(*l);
                               return;
                           }
                           onReadPage(*l, opp, r);
                       }));
    }

    void onReadPage(Lane& l, const OpPtr& opp, Result& r) {
        LaneOp& op = *opp;
        uint64_t last = 0;
        bool any = false;
        auto recs = r.body->getArray("records");
        for (size_t i = 0; recs && i < recs->size(); ++i) {
            auto o = recs->getObject(static_cast<unsigned>(i));
            uint64_t seq;
            std::string key = o->getValue<std::string>("key");
            if (!sfhpkv::parseSeqSuffix(key, l.prefix.size(), seq)) continue;
            any = true;
            last = seq;
            if (!std::binary_search(op.wanted.begin(), op.wanted.end(), seq)) continue;  // orphan or hole
            Record rec;
            if (decodeRecord(o->get("value").toString(), rec)) op.found.emplace(seq, std::move(rec));
            else op.corrupt.insert(seq);
        }
        bool truncated = r.body->has("truncated") && r.body->getValue<bool>("truncated");
        if (truncated && any && last < op.wanted.back()) {
            readPage(l, opp, last + 1);
            return;
        }
        // Indexed records HPKV no longer has (or that no longer decode) leave the index, so a
        // following remove_oldest(n) removes exactly what was returned.
        size_t missing = 0;
        for (uint64_t seq : op.wanted) {
            auto it = op.found.find(seq);
            if (it != op.found.end()) {
                op.out.push_back(std::move(it->second));
            } else {
                ++missing;
                if (op.corrupt.count(seq)) l.orphans.insert(seq);
            }
        }
        if (missing) {
            host_.error("hpkv_records_missing", std::to_string(missing) + " spilled record(s) of " + l.prefix +
                                                    " are missing or corrupt in HPKV and were skipped");
            std::set<uint64_t> gone;
            for (uint64_t seq : op.wanted)
                if (!op.found.count(seq)) gone.insert(seq);
            std::deque<Entry> kept;
            for (auto& e : l.index) {
                if (gone.count(e.seq)) {
                    l.bytes -= e.bytes;
                    totalBytes_ -= e.bytes;
                    --totalRecords_;
                } else {
                    kept.push_back(e);
                }
            }
            l.index.swap(kept);
            l.metaDirty = true;
        }
        op.state = OpState::Done;
        process(l);
    }

    // ------------------------------------------------------------ remove
    void startRemove(Lane& l, const OpPtr& opp) {
        LaneOp& op = *opp;
        size_t n = std::min<size_t>(op.n, l.index.size());
        if (n == 0) {
            op.state = OpState::Done;
            return;
        }
        std::vector<uint64_t> seqs;
        seqs.reserve(n);
        for (size_t i = 0; i < n; ++i) {
            const Entry& e = l.index.front();
            seqs.push_back(e.seq);
            l.bytes -= e.bytes;
            totalBytes_ -= e.bytes;
            --totalRecords_;
            l.index.pop_front();
        }
        l.metaDirty = true;
        op.state = OpState::Running;
        op.outstanding = n;
        // HPKV has no multi-key delete: pipeline the DELETEs and finish on the last answer.
        for (uint64_t seq : seqs) {
            client_->del(recordKey(l, seq), timeoutMs_, onEngine([this, id = l.id, opp, seq](Result& r) {
                             Lane* l = laneById(id);
                             if (!l) return;
                             if (!r.ok() && r.code != 404) {
                                 // Logically removed already; the key goes to the background sweep.
                                 l->orphans.insert(seq);
                                 ++opp->failedDeletes;
                                 opp->lastError = r.error;
                             }
                             if (--opp->outstanding == 0 && !opp->completed) {
                                 if (opp->failedDeletes)
                                     host_.warn("hpkv_delete_deferred",
                                                std::to_string(opp->failedDeletes) + " consumed key(s) of " + l->prefix +
                                                    " could not be deleted yet (" + opp->lastError + "); retrying in the background");
                                 opp->state = OpState::Done;
                                 process(*l);
                             }
                         }));
        }
    }

    // ------------------------------------------------------------ clear
    // Drop the lane's in-memory index and its share of the instance totals.
    void forgetIndex(Lane& l) {
        totalBytes_ -= l.bytes;
        totalRecords_ -= l.index.size();
        l.index.clear();
        l.bytes = 0;
    }

    void startClear(Lane& l, const OpPtr& opp) {
        forgetIndex(l);
        l.clearing = true;
        opp->state = OpState::Running;
        clearPage(l, opp, 0);
    }

    void clearPage(Lane& l, const OpPtr& opp, uint64_t from) {
        client_->range(recordKey(l, from), recordKey(l, sfhpkv::kMaxSeq), kBlindPage, timeoutMs_,
                       onEngine([this, id = l.id, opp](Result& r) {
                           if (opp->completed) return;
                           Lane* l = laneById(id);
                           if (!l) return;
                           if (!r.ok()) {
                               finishClear(*l, opp, r);
                               return;
                           }
                           auto recs = r.body->getArray("records");
                           std::vector<uint64_t> seqs;
                           for (size_t i = 0; recs && i < recs->size(); ++i) {
                               uint64_t seq;
                               if (sfhpkv::parseSeqSuffix(recs->getObject(static_cast<unsigned>(i))->getValue<std::string>("key"),
                                                          l->prefix.size(), seq))
                                   seqs.push_back(seq);
                           }
                           opp->truncated = r.body->has("truncated") && r.body->getValue<bool>("truncated") && !seqs.empty();
                           opp->nextFrom = seqs.empty() ? 0 : seqs.back() + 1;
                           if (seqs.empty()) {
                               clearMeta(*l, opp);
                               return;
                           }
                           opp->outstanding = seqs.size();
                           for (uint64_t seq : seqs) {
                               client_->del(recordKey(*l, seq), timeoutMs_, onEngine([this, id, opp, seq](Result& r2) {
                                                Lane* l = laneById(id);
                                                if (!l) return;
                                                if (!r2.ok() && r2.code != 404) {
                                                    l->orphans.insert(seq);
                                                    ++opp->failedDeletes;
                                                    opp->lastError = r2.error;
                                                } else {
                                                    l->orphans.erase(seq);
                                                }
                                                if (--opp->outstanding > 0 || opp->completed) return;
                                                if (opp->truncated && opp->nextFrom <= sfhpkv::kMaxSeq)
                                                    clearPage(*l, opp, opp->nextFrom);
                                                else
                                                    clearMeta(*l, opp);
                                            }));
                           }
                       }));
    }

    void clearMeta(Lane& l, const OpPtr& opp) {
        if (l.metaInFlight) {  // a SET of the meta still on its way must not land after our DELETE
            l.clearOp = opp;
            return;
        }
        client_->del(metaKey(l), timeoutMs_, onEngine([this, id = l.id, opp](Result& r) {
                         Lane* l = laneById(id);
                         if (!l) return;
                         if (r.code == 404) r.code = 200;
                         finishClear(*l, opp, r);
                     }));
    }

    void finishClear(Lane& l, const OpPtr& opp, Result& r) {
        l.clearing = false;
        l.metaDirty = false;
        if (!r.ok()) {
            fail(l, *opp, r, "clear incomplete (call clear again)");
            // What is left in HPKV is the lane now: reload it before the next op.
            l.load = Lane::Unloaded;
        } else if (opp->failedDeletes) {
            opp->state = OpState::Done;
            opp->status = SF_ERR_AGAIN;
            opp->error = "hpkv: clear incomplete: " + std::to_string(opp->failedDeletes) + " key(s) not deleted yet (" +
                         opp->lastError + "); retrying in the background";
        } else {
            opp->state = OpState::Done;
            l.erasable = true;  // nothing of the lane is left in HPKV
        }
        process(l);
    }

    // ------------------------------------------------------------ background: meta, orphans
    void maybeWriteMeta(Lane& l) {
        if (!l.metaDirty || l.metaInFlight || l.clearing || l.load != Lane::Loaded || shuttingDown_ ||
            Clock::now() < l.metaRetryAt)
            return;
        l.metaDirty = false;
        l.metaInFlight = true;
        uint64_t head = l.index.empty() ? l.tail : l.index.front().seq;
        std::string v = "{\"v\":1,\"head\":" + std::to_string(head) + ",\"tail\":" + std::to_string(l.tail) + "}";
        client_->set(metaKey(l), v, timeoutMs_, onEngine([this, id = l.id](Result& r) {
                         Lane* l = laneById(id);
                         if (!l) return;
                         l->metaInFlight = false;
                         if (!r.ok()) {
                             l->metaDirty = true;  // retried by the 1 s tick, not in a hot loop
                             l->metaRetryAt = Clock::now() + std::chrono::seconds(1);
                         }
                         if (l->clearOp) {
                             OpPtr op = std::move(l->clearOp);
                             l->clearOp = nullptr;
                             clearMeta(*l, op);
                             return;
                         }
                         process(*l);
                     }));
    }

    void deleteOrphans(Lane& l) {
        if (shuttingDown_) return;
        size_t started = 0;
        for (uint64_t seq : l.orphans) {
            if (started >= 256) break;
            if (l.orphansInFlight.count(seq)) continue;
            l.orphansInFlight.insert(seq);
            ++started;
            client_->del(recordKey(l, seq), timeoutMs_, onEngine([this, id = l.id, seq](Result& r) {
                             Lane* l = laneById(id);
                             if (!l) return;
                             l->orphansInFlight.erase(seq);
                             if (r.ok() || r.code == 404) l->orphans.erase(seq);  // else: next tick
                             maybeErase(*l);
                         }));
        }
    }

    void failEverything() {
        for (auto& kv : lanes_) {
            Lane& l = *kv.second;
            for (auto& op : l.ops) {
                if (op->completed) continue;
                op->status = SF_ERR;
                op->error = "hpkv: backend shutting down";
                complete(*op);
            }
            l.ops.clear();
            l.firstQueued = 0;
        }
    }

    Host host_;
    std::string prefix_;
    int timeoutMs_ = 5000;
    int graceMs_ = 2000;
    uint64_t maxLaneBytes_ = 0, maxTotalBytes_ = 0;
    std::unique_ptr<sfhpkv::Client> client_;

    std::mutex qmu_;
    std::condition_variable qcv_;
    std::deque<std::function<void()>> tasks_;
    bool stopping_ = false, stopEngine_ = false;
    std::atomic<bool> busy_{false};
    std::thread engine_;

    // Engine thread only:
    std::map<LaneKey, std::unique_ptr<Lane>> lanes_;
    std::unordered_map<uint64_t, Lane*> byId_;
    uint64_t nextLaneId_ = 1;
    uint64_t totalBytes_ = 0, totalPending_ = 0, totalRecords_ = 0;
    uint64_t appendsOk_ = 0, appendsFailed_ = 0, rejectedFull_ = 0, failuresSinceLog_ = 0;
    std::atomic<int64_t> requests_{0};
    Clock::time_point lastFailLog_{};
    std::string lastFailure_;
    bool shuttingDown_ = false;

    std::mutex usageMu_;
    std::map<LaneKey, Usage> usage_;
    Usage total_;
};

}  // namespace

STREAMFENCE_STORAGE_BACKEND(HpkvBackend, "hpkv", "1.0.0",
                            "Spill storage on an HPKV key-value store (WebSocket API), FIFO per lane via RANGE")
