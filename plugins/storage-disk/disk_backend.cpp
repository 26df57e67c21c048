// Storage backend "disk": spills lanes to append-only, checksummed segment files.
// Format: format.hpp / README.md. Threading: every file operation runs on the plugin's own
// worker threads; a lane always maps to the same worker, which runs its operations in the
// order they were issued, so per-lane order holds without any per-lane lock.
#include "format.hpp"

#include <streamfence/plugin.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sfdisk {
namespace {

using streamfence::Completion;
using streamfence::Host;
using streamfence::LaneKey;
using streamfence::Options;
using streamfence::Record;
using streamfence::Usage;

constexpr size_t kReadChunk = 256 * 1024;   // one pread fetches this much of a segment
constexpr size_t kMaxBatch = 1024 * 1024;   // coalesced appends of a lane flushed at this size
constexpr size_t kKeepBuffer = 256 * 1024;  // larger idle buffers are freed (many lanes)

std::string errnoText(int e) { return std::strerror(e); }

// "64MiB", "4M", "1048576" -> bytes. Plain integers keep the SDK's strict parsing.
uint64_t parseSize(const Options& o, const std::string& key, uint64_t def) {
    if (!o.has(key)) return def;
    std::string v = o.get(key);
    size_t i = 0;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    std::string num = v.substr(0, i), unit = v.substr(i);
    uint64_t mul = 0;
    if (unit.empty() || unit == "B") mul = 1;
    else if (unit == "k" || unit == "K" || unit == "KB" || unit == "KiB") mul = 1024;
    else if (unit == "M" || unit == "MB" || unit == "MiB") mul = 1024ull * 1024;
    else if (unit == "G" || unit == "GB" || unit == "GiB") mul = 1024ull * 1024 * 1024;
    if (num.empty() || mul == 0 || num.size() > 15)
        throw std::invalid_argument("option " + key + ": expected a byte size such as 4194304 or 64MiB, got \"" + v + "\"");
    return std::stoull(num) * mul;
}

// One path segment: the characters the JS original replaces become '_', as does a leading
// '.'; if anything had to change, a hash of the original is appended so that two different
// names ("a/b", "a_b") never share a directory.
std::string sanitizeSegment(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 10);
    bool changed = false;
    for (char c : s) {
        if (std::strchr("\\/:\"*?<>|", c) || static_cast<unsigned char>(c) < 0x20) {
            out += '_';
            changed = true;
        } else {
            out += c;
        }
    }
    if (out.empty()) out = "_", changed = true;
    if (out[0] == '.') out[0] = '_', changed = true;
    if (out.size() > 180) out.resize(180), changed = true;  // NAME_MAX is 255
    if (changed) {
        uint32_t h = 2166136261u;  // FNV-1a of the original
        for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
        char buf[16];
        std::snprintf(buf, sizeof buf, "~%08x", h);
        out += buf;
    }
    return out;
}

std::string segName(uint64_t id) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llu.seg", static_cast<unsigned long long>(id));
    return buf;
}

bool parseSegName(const char* name, uint64_t& id) {
    if (std::strlen(name) != 20 || std::strcmp(name + 16, ".seg") != 0) return false;
    uint64_t v = 0;
    for (int i = 0; i < 16; ++i) {
        if (name[i] < '0' || name[i] > '9') return false;
        v = v * 10 + static_cast<uint64_t>(name[i] - '0');
    }
    if (v == 0) return false;
    id = v;
    return true;
}

// Only names the plugin itself creates: a misconfigured root (".", $HOME) must never lose
// files that merely look temporary.
bool isOurFile(const char* name) {
    uint64_t id;
    return parseSegName(name, id) || std::strcmp(name, "head") == 0;
}

void fsyncDir(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

std::string parentOf(const std::string& p) {
    size_t s = p.find_last_of('/');
    return s == std::string::npos ? std::string(".") : (s == 0 ? std::string("/") : p.substr(0, s));
}

// mkdir -p; with durable, each new directory's parent is synced so the entry survives a crash.
bool makeDirs(const std::string& path, bool durable, std::string& err) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) return true;
        err = "disk spill: " + path + " exists and is not a directory";
        return false;
    }
    size_t pos = 0;
    while (pos != std::string::npos) {
        pos = path.find('/', pos + 1);
        std::string part = path.substr(0, pos);
        if (part.empty()) continue;
        if (::mkdir(part.c_str(), 0755) == 0) {
            if (durable) fsyncDir(parentOf(part));
        } else if (errno != EEXIST) {
            err = "disk spill: cannot create directory " + part + ": " + errnoText(errno);
            return false;
        }
    }
    if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        err = "disk spill: " + path + " is not a directory";
        return false;
    }
    return true;
}

struct Counters {
    std::atomic<uint64_t> records{0}, bytes{0};
};

struct Cached {
    Record rec;
    uint64_t seq = 0, seg = 0, end = 0;  // end: offset just past the record in segment seg
};

// All state of one lane. Owned and touched only by its worker thread, except ctr (atomics
// read by usage()).
struct Lane {
    std::string dir;
    std::shared_ptr<Counters> ctr;
    uint64_t records = 0, bytes = 0;  // the worker's truth, mirrored into ctr and the totals

    std::map<uint64_t, uint64_t> segs;  // segment id -> bytes known good (written by us / found)
    uint64_t diskBytes = 0;             // sum of segs
    uint64_t nextSegId = 1;

    // writer: appends of one batch coalesce in wbuf, one pwrite (+fdatasync) per flush
    uint64_t tailSeg = 0;  // 0 = open a new segment at the next flush
    int wfd = -1;
    std::string wbuf;
    std::vector<Completion> wdone;
    uint64_t wbufFirstSeq = 0;
    uint64_t nextSeq = 1;

    // head: the first record not removed; everything before it is gone or deletable
    uint64_t headSeg = 0, headOff = 0, headSeq = 1;
    int hfd = -1;

    // reader: records between head and the scan cursor are decoded in cache
    uint64_t scanSeg = 0, scanOff = 0, expectSeq = 1;
    uint64_t floorSeq = 1;  // seqs below were counted when the lane was recovered
    int rfd = -1;
    uint64_t rfdSeg = 0;
    std::string rbuf;
    uint64_t rbufSeg = 0, rbufOff = 0;
    std::deque<Cached> cache;
    bool badOpen = false;  // inside a corrupt region (logged once when it ends)
    uint64_t badStart = 0;
    const char* badReason = "";
    bool quiet = false;  // recovery count pass: tally, do not log each region
    uint64_t corruptRegions = 0;

    bool hasFds = false;
    std::list<Lane*>::iterator lruIt;
    bool dirty = false, cleared = false;
};

enum class Fill { Got, End, Error };

struct Op {
    enum Type { Append, Read, Remove, Clear } type;
    std::string dir;
    Record rec;
    uint32_t n = 0;
    Completion done;
};

class DiskBackend;

struct Worker {
    std::thread thread;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Op> queue;
    bool stop = false, waiting = false;

    // worker-thread-only state
    std::unordered_map<std::string, std::unique_ptr<Lane>> lanes;
    std::list<Lane*> lru;  // lanes holding fds, most recent first
    size_t openLanes = 0, laneCap = 64;
    std::vector<Lane*> dirty;
    std::vector<std::string> cleared;
};

class DiskBackend : public streamfence::StorageBackend {
public:
    DiskBackend(const Host& host, const Options& o) : host_(host) {
        // The host passes the server's spillRootPath unless the config sets `root` itself.
        root_ = o.get("root", o.get("spillRootPath", ".streamfence-spill"));
        while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
        if (root_.empty()) throw std::invalid_argument("option root: must not be empty");
        durable_ = o.getBool("durable", false);
        maxLane_ = parseSize(o, "maxLaneBytes", 64ull << 20);
        maxTotal_ = parseSize(o, "maxTotalBytes", 1ull << 30);
        segBytes_ = parseSize(o, "segmentBytes", 4ull << 20);
        if (maxLane_ == 0 || maxTotal_ == 0) throw std::invalid_argument("options maxLaneBytes/maxTotalBytes must be > 0");
        if (segBytes_ < 4096) throw std::invalid_argument("option segmentBytes: must be at least 4096");
        std::string stale = o.get("staleSpill", "remove");
        if (stale != "recover" && stale != "remove")
            throw std::invalid_argument("option staleSpill: expected \"recover\" or \"remove\", got \"" + stale + "\"");
        recover_ = stale == "recover";
        long long threads = o.getInt("ioThreads", 1);
        if (threads < 1 || threads > 64) throw std::invalid_argument("option ioThreads: expected 1..64");
        long long maxFiles = o.getInt("maxOpenFiles", 768);
        if (maxFiles < 3) throw std::invalid_argument("option maxOpenFiles: expected at least 3");
        // the instance serves one server: its stale spill lives under root/<server>
        scanRoot_ = o.instanceName().empty() ? root_ : root_ + "/" + sanitizeSegment(o.instanceName());

        for (long long i = 0; i < threads; ++i) {
            workers_.push_back(std::make_unique<Worker>());
            workers_.back()->laneCap = std::max<size_t>(1, static_cast<size_t>(maxFiles / 3 / threads));
        }
        for (auto& w : workers_) {
            Worker* wp = w.get();
            wp->thread = std::thread([this, wp] { run(*wp); });
        }
    }

    ~DiskBackend() override {
        for (auto& w : workers_) {
            std::lock_guard<std::mutex> lk(w->mu);
            w->stop = true;
            w->cv.notify_one();
        }
        for (auto& w : workers_)
            if (w->thread.joinable()) w->thread.join();
        for (auto& w : workers_)
            for (auto& kv : w->lanes) closeFds(*w, *kv.second);
        std::lock_guard<std::mutex> lk(staleMu_);
        stale_.clear();  // pre-scanned lanes hold no fds
    }

    bool append(const LaneKey& lane, Record record, Completion done) override {
        Op op{Op::Append, laneDir(lane), std::move(record), 0, done};
        return submit(std::move(op));
    }
    bool readOldest(const LaneKey& lane, uint32_t max, Completion done) override {
        return submit(Op{Op::Read, laneDir(lane), Record{}, max, done});
    }
    bool removeOldest(const LaneKey& lane, uint32_t n, Completion done) override {
        return submit(Op{Op::Remove, laneDir(lane), Record{}, n, done});
    }
    bool clear(const LaneKey& lane, Completion done) override {
        return submit(Op{Op::Clear, laneDir(lane), Record{}, 0, done});
    }
    Usage usage(const LaneKey* lane) override {
        Usage u;
        if (!lane) {
            u.records = totalRecords_.load(std::memory_order_relaxed);
            u.bytes = totalBytes_.load(std::memory_order_relaxed);
            return u;
        }
        std::string dir = laneDir(*lane);
        std::lock_guard<std::mutex> lk(regMu_);
        auto it = registry_.find(dir);
        if (it != registry_.end()) {
            u.records = it->second->records.load(std::memory_order_relaxed);
            u.bytes = it->second->bytes.load(std::memory_order_relaxed);
        }
        return u;
    }

private:
    // ------------------------------------------------------------ caller side
    std::string laneDir(const LaneKey& k) const {
        std::string d = root_;
        d += '/';
        d += sanitizeSegment(k.server);
        size_t i = 0;  // namespace split on '/', empty parts dropped ("/" adds nothing)
        while (i <= k.ns.size()) {
            size_t j = k.ns.find('/', i);
            if (j == std::string::npos) j = k.ns.size();
            if (j > i) {
                d += '/';
                d += sanitizeSegment(std::string_view(k.ns).substr(i, j - i));
            }
            i = j + 1;
        }
        d += '/';
        d += sanitizeSegment(k.client);
        d += '/';
        d += sanitizeSegment(k.topic);
        return d;
    }

    bool submit(Op&& op) {
        Worker& w = *workers_[std::hash<std::string>{}(op.dir) % workers_.size()];
        bool wake;
        {
            std::lock_guard<std::mutex> lk(w.mu);
            if (w.stop) return false;
            w.queue.push_back(std::move(op));
            wake = w.waiting;
        }
        if (wake) w.cv.notify_one();
        return true;
    }

    // ------------------------------------------------------------ worker loop
    void run(Worker& w) {
        if (&w == workers_[0].get()) {
            try {
                startupScan(w);
            } catch (const std::exception& e) {
                host_.error("spill_stale_scan_failed", std::string("root=") + scanRoot_ + " error=" + e.what());
            }
            std::lock_guard<std::mutex> lk(readyMu_);
            ready_ = true;
            readyCv_.notify_all();
        } else {  // lanes recovered by the scan must be in stale_ before any lane opens
            std::unique_lock<std::mutex> lk(readyMu_);
            readyCv_.wait(lk, [&] { return ready_; });
        }
        std::vector<Op> batch;
        for (;;) {
            {
                std::unique_lock<std::mutex> lk(w.mu);
                w.waiting = true;
                w.cv.wait(lk, [&] { return !w.queue.empty() || w.stop; });
                w.waiting = false;
                if (w.queue.empty()) break;  // stop requested and everything done
                batch.swap(w.queue);
            }
            for (Op& op : batch) process(w, op);
            for (Lane* L : w.dirty) flushGuarded(w, *L);
            w.dirty.clear();
            for (const std::string& d : w.cleared) maybeForget(w, d);
            w.cleared.clear();
            batch.clear();
        }
    }

    void process(Worker& w, Op& op) {
        bool handedOff = false;  // the completion now belongs to the lane's write batch
        try {
            Lane& L = lane(w, op.dir);
            if (L.hasFds) touch(w, L);
            switch (op.type) {
                case Op::Append: doAppend(w, L, op, handedOff); break;
                case Op::Read: doRead(w, L, op.n, op.done); break;
                case Op::Remove: doRemove(w, L, op.n, op.done); break;
                case Op::Clear: doClear(w, L, op.done); break;
            }
        } catch (const std::exception& e) {
            if (!handedOff) op.done.fail(SF_ERR, std::string("disk spill: ") + e.what());
        }
    }

    // ------------------------------------------------------------ lanes, fds, counters
    Lane& lane(Worker& w, const std::string& dir) {
        auto it = w.lanes.find(dir);
        if (it != w.lanes.end()) return *it->second;
        std::unique_ptr<Lane> L;
        {
            std::lock_guard<std::mutex> lk(staleMu_);
            auto s = stale_.find(dir);
            if (s != stale_.end()) {
                L = std::move(s->second);  // recovered at start-up, already counted
                stale_.erase(s);
            }
        }
        if (!L) {
            L = std::make_unique<Lane>();
            L->dir = dir;
            L->ctr = std::make_shared<Counters>();
            loadExisting(w, *L, true);
        }
        L->ctr->records.store(L->records);
        L->ctr->bytes.store(L->bytes);
        {
            std::lock_guard<std::mutex> lk(regMu_);
            registry_[dir] = L->ctr;
        }
        Lane& ref = *L;
        w.lanes.emplace(dir, std::move(L));
        return ref;
    }

    // Forget a cleared lane that stayed empty, so disconnected clients cost no memory.
    void maybeForget(Worker& w, const std::string& dir) {
        auto it = w.lanes.find(dir);
        if (it == w.lanes.end()) return;
        Lane& L = *it->second;
        if (!L.cleared || !L.segs.empty() || !L.wbuf.empty() || !L.cache.empty()) return;
        closeFds(w, L);
        {
            std::lock_guard<std::mutex> lk(regMu_);
            auto r = registry_.find(dir);
            if (r != registry_.end() && r->second == L.ctr) registry_.erase(r);
        }
        w.lanes.erase(it);
    }

    void touch(Worker& w, Lane& L) {
        if (L.hasFds && L.lruIt != w.lru.begin()) w.lru.splice(w.lru.begin(), w.lru, L.lruIt);
    }

    // Called before opening an fd for L: keeps the number of lanes holding fds bounded.
    void budget(Worker& w, Lane& L) {
        if (L.hasFds) {
            touch(w, L);
            return;
        }
        L.hasFds = true;
        w.lru.push_front(&L);
        L.lruIt = w.lru.begin();
        ++w.openLanes;
        while (w.openLanes > w.laneCap) {
            Lane* victim = w.lru.back();
            if (victim == &L) break;
            closeFds(w, *victim);
        }
    }

    void closeFds(Worker& w, Lane& L) {
        for (int* fd : {&L.wfd, &L.rfd, &L.hfd})
            if (*fd >= 0) {
                ::close(*fd);
                *fd = -1;
            }
        L.rfdSeg = 0;
        if (L.rbuf.capacity() > kKeepBuffer) std::string().swap(L.rbuf), L.rbufSeg = 0;
        if (L.hasFds) {
            w.lru.erase(L.lruIt);
            --w.openLanes;
            L.hasFds = false;
        }
    }

    void setRecords(Lane& L, uint64_t r) {
        if (r == L.records) return;
        totalRecords_.fetch_add(r - L.records, std::memory_order_relaxed);  // modular: also for r < records
        L.records = r;
        if (L.ctr) L.ctr->records.store(r, std::memory_order_relaxed);
    }

    // Bytes of a lane = what is on disk from its head on, plus appends not yet written.
    void publishBytes(Lane& L) {
        uint64_t b = (L.diskBytes > L.headOff ? L.diskBytes - L.headOff : 0) + L.wbuf.size();
        if (b == L.bytes) return;
        totalBytes_.fetch_add(b - L.bytes, std::memory_order_relaxed);
        L.bytes = b;
        if (L.ctr) L.ctr->bytes.store(b, std::memory_order_relaxed);
    }

    std::string segPath(const Lane& L, uint64_t id) const { return L.dir + "/" + segName(id); }

    void deleteSeg(Lane& L, uint64_t id) {
        auto it = L.segs.find(id);
        if (it == L.segs.end()) return;
        if (L.rfdSeg == id && L.rfd >= 0) ::close(L.rfd), L.rfd = -1, L.rfdSeg = 0;
        if (L.rbufSeg == id) L.rbuf.clear(), L.rbufSeg = 0;
        if (L.tailSeg == id) {
            if (L.wfd >= 0) ::close(L.wfd), L.wfd = -1;
            L.tailSeg = 0;
        }
        if (::unlink(segPath(L, id).c_str()) != 0 && errno != ENOENT)
            host_.warn("spill_unlink_failed", "file=" + segPath(L, id) + " error=" + errnoText(errno));
        L.diskBytes -= it->second;
        L.segs.erase(it);
    }

    // ------------------------------------------------------------ start-up: stale spill
    struct ScanStats {
        uint64_t dirs = 0, files = 0, bytes = 0;
    };

    // Walks scanRoot_ (no symlinks followed, bounded depth) collecting lane directories: those
    // holding at least one segment file. In remove mode it deletes our files there and the
    // directories that end up empty; nothing else under root is touched. Returns whether dir
    // held spill (itself or below).
    bool walk(const std::string& dir, int depth, ScanStats& st, std::vector<std::string>& laneDirs) {
        if (depth > 64) return false;
        DIR* d = ::opendir(dir.c_str());
        if (!d) return false;
        bool hasSeg = false, touched = false;
        std::vector<std::string> subdirs, ours;
        uint64_t files = 0, bytes = 0;
        while (dirent* e = ::readdir(d)) {
            if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
            struct stat s;
            if (::fstatat(::dirfd(d), e->d_name, &s, AT_SYMLINK_NOFOLLOW) != 0) continue;
            uint64_t id;
            if (S_ISDIR(s.st_mode)) {
                subdirs.push_back(dir + "/" + e->d_name);
            } else if (S_ISREG(s.st_mode) && isOurFile(e->d_name)) {
                hasSeg = hasSeg || parseSegName(e->d_name, id);
                ++files;
                bytes += static_cast<uint64_t>(s.st_size);
                ours.push_back(dir + "/" + e->d_name);
            }
        }
        ::closedir(d);
        if (hasSeg) {
            touched = true;
            ++st.dirs;
            st.files += files;
            st.bytes += bytes;
            laneDirs.push_back(dir);
            if (!recover_)
                for (auto& f : ours) ::unlink(f.c_str());
        }
        for (auto& s : subdirs) touched = walk(s, depth + 1, st, laneDirs) || touched;
        if (!recover_ && touched && dir != root_) ::rmdir(dir.c_str());  // only succeeds when empty
        return touched;
    }

    void startupScan(Worker& w) {
        struct stat st;
        if (::stat(scanRoot_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
        ScanStats s;
        std::vector<std::string> laneDirs;
        walk(scanRoot_, 0, s, laneDirs);
        if (s.files == 0) {
            host_.info("spill_stale_none", "root=" + scanRoot_);
            return;
        }
        if (!recover_) {
            host_.warn("spill_stale_found", "root=" + scanRoot_ + " action=remove lanes=" + std::to_string(s.dirs) +
                                                " files=" + std::to_string(s.files) + " bytes=" + std::to_string(s.bytes) +
                                                " (spill left by an earlier run, deleted; staleSpill: recover keeps it)");
            return;
        }
        uint64_t records = 0, bytes = 0, corrupt = 0;
        for (auto& d : laneDirs) {
            auto L = std::make_unique<Lane>();
            L->dir = d;
            L->ctr = std::make_shared<Counters>();
            loadExisting(w, *L, false);
            records += L->records;
            bytes += L->bytes;
            corrupt += L->corruptRegions;
            L->ctr->records.store(L->records);
            L->ctr->bytes.store(L->bytes);
            {
                std::lock_guard<std::mutex> lk(regMu_);
                registry_[d] = L->ctr;
            }
            std::lock_guard<std::mutex> lk(staleMu_);
            stale_[d] = std::move(L);
        }
        host_.warn("spill_stale_found", "root=" + scanRoot_ + " action=recover lanes=" + std::to_string(s.dirs) +
                                            " files=" + std::to_string(s.files) + " records=" + std::to_string(records) +
                                            " bytes=" + std::to_string(bytes) + " corrupt_regions=" + std::to_string(corrupt) +
                                            " (spill left by an earlier run, kept for redelivery)");
    }

    // Picks up segments already in the lane's directory. Outside start-up this only finds
    // something for lanes the start-up scan did not cover (another server's directory).
    void loadExisting(Worker& w, Lane& L, bool report) {
        DIR* d = ::opendir(L.dir.c_str());
        if (!d) return;
        bool haveHead = false;
        while (dirent* e = ::readdir(d)) {
            uint64_t id;
            if (parseSegName(e->d_name, id)) {
                struct stat s;
                if (::fstatat(::dirfd(d), e->d_name, &s, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(s.st_mode)) continue;
                L.segs[id] = static_cast<uint64_t>(s.st_size);
                L.diskBytes += static_cast<uint64_t>(s.st_size);
                L.nextSegId = std::max(L.nextSegId, id + 1);
            } else if (!std::strcmp(e->d_name, "head")) {
                haveHead = true;
            }
        }
        ::closedir(d);
        if (L.segs.empty()) {
            if (haveHead) ::unlink((L.dir + "/head").c_str());
            return;
        }
        if (!recover_) {
            uint64_t n = L.segs.size(), b = L.diskBytes;
            for (auto it = L.segs.begin(); it != L.segs.end();) deleteSeg(L, (it++)->first);
            ::unlink((L.dir + "/head").c_str());
            if (report)
                host_.warn("spill_stale_found", "dir=" + L.dir + " action=remove files=" + std::to_string(n) +
                                                    " bytes=" + std::to_string(b));
            return;
        }
        // head file: where the previous run had got to
        L.headSeg = L.segs.begin()->first;
        L.headOff = 0;
        L.headSeq = 0;  // unknown: accept every seq
        if (haveHead) {
            char hb[kHeadFileSize];
            int fd = ::open((L.dir + "/head").c_str(), O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                ssize_t r = ::pread(fd, hb, sizeof hb, 0);
                ::close(fd);
                uint64_t hs = get64(hb + 8), ho = get64(hb + 16);
                if (r == static_cast<ssize_t>(sizeof hb) && get32(hb) == kHeadMagic &&
                    get32(hb + 4) == crc32c(0, hb + 8, 24) && L.segs.count(hs) && ho <= L.segs[hs]) {
                    L.headSeg = hs;
                    L.headOff = ho;
                    L.headSeq = get64(hb + 24);
                    while (L.segs.begin()->first < hs) deleteSeg(L, L.segs.begin()->first);  // consumed
                } else {
                    host_.warn("spill_head_invalid", "dir=" + L.dir + " (replaying the lane from its oldest segment)");
                }
            }
        }
        // count what is deliverable; corrupt regions are tallied here and logged when read
        L.quiet = true;
        L.scanSeg = L.headSeg;
        L.scanOff = L.headOff;
        L.expectSeq = L.headSeq;
        L.floorSeq = UINT64_MAX;  // no live accounting during the count
        uint64_t count = 0, maxSeq = L.headSeq;
        std::string err;
        for (;;) {
            Cached c;
            Fill f = fillOne(w, L, &c, false, err);
            if (f != Fill::Got) break;
            ++count;
            maxSeq = c.seq + 1;
        }
        L.quiet = false;
        L.nextSeq = std::max<uint64_t>({maxSeq, L.headSeq, 1});
        L.floorSeq = L.nextSeq;
        L.scanSeg = L.headSeg;
        L.scanOff = L.headOff;
        L.expectSeq = L.headSeq;
        L.badOpen = false;
        L.tailSeg = 0;  // never append after a possibly torn tail: start a fresh segment
        std::string().swap(L.rbuf);
        L.rbufSeg = 0;
        closeFds(w, L);
        setRecords(L, count);
        publishBytes(L);
        if (report)
            host_.warn("spill_stale_found", "dir=" + L.dir + " action=recover files=" + std::to_string(L.segs.size()) +
                                                " records=" + std::to_string(count) + " bytes=" + std::to_string(L.bytes) +
                                                " corrupt_regions=" + std::to_string(L.corruptRegions));
    }

    // ------------------------------------------------------------ append / flush
    void doAppend(Worker& w, Lane& L, Op& op, bool& handedOff) {
        const Record& r = op.rec;
        RecordFields f{r.data, r.event, r.messageId, r.key, r.retryCount, r.bytes};
        uint64_t sz = encodedSize(f);
        auto refuse = [&](int status, const std::string& msg) {
            flushGuarded(w, L);  // earlier appends of this lane complete first
            op.done.fail(status, msg);
        };
        if (sz - kHeaderSize > kMaxBody) return refuse(SF_ERR, "disk spill: record too large (" + std::to_string(sz) + " bytes)");
        if (L.bytes + sz > maxLane_)
            return refuse(SF_ERR_FULL, "disk spill full: lane quota maxLaneBytes=" + std::to_string(maxLane_) +
                                           " reached (lane holds " + std::to_string(L.bytes) + " bytes, record needs " +
                                           std::to_string(sz) + ")");
        uint64_t cur = (L.tailSeg ? L.segs[L.tailSeg] : 0) + L.wbuf.size();
        if (cur > 0 && cur + sz > segBytes_) {  // rotate: this record opens the next segment
            flush(w, L);
            if (L.wfd >= 0) ::close(L.wfd), L.wfd = -1;
            L.tailSeg = 0;
        }
        uint64_t before = totalBytes_.fetch_add(sz, std::memory_order_relaxed);
        if (before + sz > maxTotal_) {
            totalBytes_.fetch_sub(sz, std::memory_order_relaxed);
            return refuse(SF_ERR_FULL, "disk spill full: global quota maxTotalBytes=" + std::to_string(maxTotal_) +
                                           " reached (spill holds " + std::to_string(before) + " bytes, record needs " +
                                           std::to_string(sz) + ")");
        }
        if (L.wbuf.empty()) L.wbufFirstSeq = L.nextSeq;
        encodeRecord(L.wbuf, L.nextSeq++, f);
        L.wdone.push_back(op.done);
        handedOff = true;
        L.bytes += sz;  // already added to totalBytes_ above
        if (L.ctr) L.ctr->bytes.store(L.bytes, std::memory_order_relaxed);
        if (!L.dirty) {
            L.dirty = true;
            w.dirty.push_back(&L);
        }
        if (L.wbuf.size() >= kMaxBatch) flush(w, L);
    }

    bool openWriter(Worker& w, Lane& L, std::string& err) {
        if (L.tailSeg && L.wfd >= 0) return true;
        if (L.tailSeg) {
            budget(w, L);
            L.wfd = ::open(segPath(L, L.tailSeg).c_str(), O_WRONLY | O_CLOEXEC);
            if (L.wfd >= 0) return true;
            L.tailSeg = 0;  // vanished: continue in a new segment
        }
        if (!makeDirs(L.dir, durable_, err)) return false;
        budget(w, L);
        for (int tries = 0; tries < 100; ++tries) {
            uint64_t id = L.nextSegId++;
            int fd = ::open(segPath(L, id).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd < 0 && errno == EEXIST) continue;  // a foreign file took the name
            if (fd < 0) {
                err = "disk spill: cannot create " + segPath(L, id) + ": " + errnoText(errno);
                return false;
            }
            if (durable_) fsyncDir(L.dir);
            if (L.segs.empty()) L.headSeg = id, L.headOff = 0;
            L.segs[id] = 0;
            L.tailSeg = id;
            L.wfd = fd;
            return true;
        }
        err = "disk spill: cannot find a free segment name in " + L.dir;
        return false;
    }

    void flushGuarded(Worker& w, Lane& L) {
        try {
            flush(w, L);
        } catch (const std::exception& e) {
            host_.error("spill_flush_failed", "dir=" + L.dir + " error=" + e.what());
        }
    }

    // Writes the lane's coalesced appends with one pwrite (+ one fdatasync when durable),
    // then completes them, all OK or all failed.
    void flush(Worker& w, Lane& L) {
        L.dirty = false;
        if (L.wbuf.empty()) return;
        std::string err;
        if (openWriter(w, L, err)) {
            uint64_t off = L.segs[L.tailSeg];
            size_t done = 0;
            while (done < L.wbuf.size()) {
                ssize_t n = ::pwrite(L.wfd, L.wbuf.data() + done, L.wbuf.size() - done, static_cast<off_t>(off + done));
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) {
                    err = "disk spill: write to " + segPath(L, L.tailSeg) + " failed: " + errnoText(n < 0 ? errno : EIO);
                    break;
                }
                done += static_cast<size_t>(n);
            }
            if (err.empty() && durable_ && ::fdatasync(L.wfd) != 0)
                err = "disk spill: fdatasync of " + segPath(L, L.tailSeg) + " failed: " + errnoText(errno);
            if (err.empty()) {
                L.segs[L.tailSeg] += L.wbuf.size();
                L.diskBytes += L.wbuf.size();
            } else if (::ftruncate(L.wfd, static_cast<off_t>(off)) != 0) {
                // cannot undo a partial write: keep it out of reach (readers stop at the known
                // size) and continue in a new segment
                ::close(L.wfd), L.wfd = -1;
                L.tailSeg = 0;
            }
        }
        std::vector<Completion> done;
        done.swap(L.wdone);
        if (err.empty()) {
            setRecords(L, L.records + done.size());
        } else {
            L.nextSeq = L.wbufFirstSeq;
            host_.error("spill_write_failed", err);
        }
        L.wbuf.clear();
        if (L.wbuf.capacity() > kKeepBuffer) std::string().swap(L.wbuf);
        publishBytes(L);
        for (auto& c : done) {
            if (err.empty()) c.ok();
            else c.fail(SF_ERR, err);
        }
    }

    // ------------------------------------------------------------ reading
    // Makes rbuf hold [off, off+n) of segment seg. 1 ok, 0 short read / I/O error, -1 cannot open.
    int ensure(Worker& w, Lane& L, uint64_t seg, uint64_t off, size_t n, std::string& err) {
        if (L.rbufSeg == seg && off >= L.rbufOff && off + n <= L.rbufOff + L.rbuf.size()) return 1;
        if (L.rbufSeg != seg || off < L.rbufOff || off > L.rbufOff + L.rbuf.size()) {
            L.rbuf.clear();
            L.rbufSeg = seg;
            L.rbufOff = off;
        } else {
            L.rbuf.erase(0, off - L.rbufOff);
            L.rbufOff = off;
        }
        if (L.rfd < 0 || L.rfdSeg != seg) {
            if (L.rfd >= 0) ::close(L.rfd), L.rfd = -1;
            budget(w, L);
            L.rfd = ::open(segPath(L, seg).c_str(), O_RDONLY | O_CLOEXEC);
            if (L.rfd < 0) {
                int e = errno;
                err = "disk spill: cannot open " + segPath(L, seg) + ": " + errnoText(e);
                L.rbufSeg = 0;
                return e == ENOENT ? 0 : -1;
            }
            L.rfdSeg = seg;
        }
        uint64_t size = L.segs[seg];
        while (L.rbuf.size() < n) {
            uint64_t pos = L.rbufOff + L.rbuf.size();
            size_t want = std::max(kReadChunk, n - L.rbuf.size());
            if (pos >= size) return 0;
            want = static_cast<size_t>(std::min<uint64_t>(want, size - pos));
            size_t old = L.rbuf.size();
            L.rbuf.resize(old + want);
            ssize_t r = ::pread(L.rfd, &L.rbuf[old], want, static_cast<off_t>(pos));
            if (r < 0 && errno == EINTR) {
                L.rbuf.resize(old);
                continue;
            }
            if (r <= 0) {
                err = r < 0 ? "read error: " + errnoText(errno) : "segment shorter than expected";
                L.rbuf.resize(old);
                return 0;
            }
            L.rbuf.resize(old + static_cast<size_t>(r));
        }
        return 1;
    }

    // Offset of the next record magic at or after from in segment seg, or size if none.
    uint64_t findMagic(Worker& w, Lane& L, uint64_t seg, uint64_t from, uint64_t size) {
        static const char m[4] = {'\xF5', '\x5F', '\xD1', '\x5C'};
        uint64_t pos = from;
        std::string err;
        while (pos + 4 <= size) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(kReadChunk, size - pos));
            if (ensure(w, L, seg, pos, n, err) != 1) return size;
            const char* base = L.rbuf.data() + (pos - L.rbufOff);
            const void* hit = ::memmem(base, n, m, 4);
            if (hit) return pos + static_cast<uint64_t>(static_cast<const char*>(hit) - base);
            pos += n - 3;  // the magic may straddle the chunk boundary
        }
        return size;
    }

    void endBadRegion(Lane& L, uint64_t seg, uint64_t until) {
        if (!L.badOpen) return;
        L.badOpen = false;
        ++L.corruptRegions;
        if (!L.quiet)
            host_.warn("spill_corrupt", "file=" + segPath(L, seg) + " offset=" + std::to_string(L.badStart) +
                                            " reason=" + L.badReason + " skipped_bytes=" + std::to_string(until - L.badStart) +
                                            " (corrupt or torn record skipped, not delivered)");
    }

    // Records in [from, to) of the live sequence vanished (corruption or truncation).
    void loseRecords(Lane& L, uint64_t from, uint64_t to) {
        from = std::max(from, L.floorSeq);
        if (to <= from) return;
        uint64_t lost = to - from;
        setRecords(L, L.records > lost ? L.records - lost : 0);
    }

    // Decodes the next valid record at the scan cursor, skipping (and reporting) anything that
    // is not one. build=false skips building the Record (counting pass).
    Fill fillOne(Worker& w, Lane& L, Cached* out, bool build, std::string& err) {
        for (;;) {
            auto it = L.segs.lower_bound(L.scanSeg);
            if (it == L.segs.end()) return atEnd(L);
            if (it->first != L.scanSeg) {
                L.scanSeg = it->first;
                L.scanOff = 0;
            }
            const uint64_t seg = it->first, size = it->second, off = L.scanOff;
            if (off >= size) {
                endBadRegion(L, seg, size);
                if (std::next(it) == L.segs.end()) return atEnd(L);
                L.scanSeg = std::next(it)->first;
                L.scanOff = 0;
                continue;
            }
            auto bad = [&](const char* reason) {
                if (!L.badOpen) {
                    L.badOpen = true;
                    L.badStart = off;
                    L.badReason = reason;
                }
                L.scanOff = findMagic(w, L, seg, off + 1, size);
            };
            if (size - off < kHeaderSize) {
                bad("torn record header at end of segment");
                L.scanOff = size;
                continue;
            }
            int e = ensure(w, L, seg, off, kHeaderSize, err);
            if (e < 0) return Fill::Error;
            if (e == 0) {
                bad("segment unreadable or truncated");
                L.scanOff = size;
                continue;
            }
            const char* h = L.rbuf.data() + (off - L.rbufOff);
            const RecordHeader hd = readHeader(h);
            const uint32_t len = hd.length;
            const uint64_t seq = hd.seq;
            if (RecordCheck c = checkHeader(hd, size - off - kHeaderSize); c != RecordCheck::Ok) {
                bad(checkReason(c));
                continue;
            }
            e = ensure(w, L, seg, off, kHeaderSize + len, err);
            if (e < 0) return Fill::Error;
            if (e == 0) {
                bad("segment unreadable or truncated");
                L.scanOff = size;
                continue;
            }
            h = L.rbuf.data() + (off - L.rbufOff);
            RecordFields f;
            if (RecordCheck c = checkBody(h, hd, f); c != RecordCheck::Ok) {
                bad(checkReason(c));
                continue;
            }
            if (seq < L.expectSeq) {  // a valid record from before the head: already delivered
                bad("record sequence out of order");
                L.scanOff = off + kHeaderSize + len;
                continue;
            }
            endBadRegion(L, seg, off);
            if (seq > L.expectSeq) loseRecords(L, L.expectSeq, seq);
            L.expectSeq = seq + 1;
            L.scanOff = off + kHeaderSize + len;
            out->seq = seq;
            out->seg = seg;
            out->end = L.scanOff;
            if (build) {
                out->rec.data.assign(f.data);
                out->rec.event.assign(f.event);
                out->rec.messageId.assign(f.messageId);
                out->rec.key.assign(f.key);
                out->rec.retryCount = f.retryCount;
                out->rec.bytes = f.bytes;
            }
            return Fill::Got;
        }
    }

    Fill atEnd(Lane& L) {
        if (L.expectSeq < L.nextSeq) {
            loseRecords(L, L.expectSeq, L.nextSeq);  // tail vanished under us
            L.expectSeq = L.nextSeq;
        }
        return Fill::End;
    }

    void doRead(Worker& w, Lane& L, uint32_t max, const Completion& done) {
        flush(w, L);
        std::string err;
        Fill f = Fill::Got;
        while (L.cache.size() < max) {
            Cached c;
            f = fillOne(w, L, &c, true, err);
            if (f != Fill::Got) break;
            L.cache.push_back(std::move(c));
        }
        if (f == Fill::Error) return done.fail(SF_ERR, err);
        if (f == Fill::End) std::string().swap(L.rbuf), L.rbufSeg = 0;  // caught up: free the buffer
        std::vector<Record> out;
        size_t k = std::min<size_t>(max, L.cache.size());
        out.reserve(k);
        for (size_t i = 0; i < k; ++i) out.push_back(L.cache[i].rec);
        done.records(out);
    }

    void doRemove(Worker& w, Lane& L, uint32_t n, const Completion& done) {
        flush(w, L);
        std::string err;
        uint32_t popped = 0;
        uint64_t hs = 0, ho = 0, hq = 0;
        Fill f = Fill::Got;
        while (popped < n) {
            if (L.cache.empty()) {
                Cached c;
                f = fillOne(w, L, &c, false, err);
                if (f != Fill::Got) break;
                L.cache.push_back(std::move(c));
            }
            const Cached& c = L.cache.front();
            hs = c.seg, ho = c.end, hq = c.seq + 1;
            L.cache.pop_front();
            ++popped;
        }
        if (popped) {
            L.headSeg = hs, L.headOff = ho, L.headSeq = hq;
            while (!L.segs.empty() && L.segs.begin()->first < hs) deleteSeg(L, L.segs.begin()->first);
            setRecords(L, L.records > popped ? L.records - popped : 0);
        }
        if (f != Fill::Error && L.cache.empty()) {  // anything left? if not, drop every file
            Cached c;
            f = fillOne(w, L, &c, true, err);
            if (f == Fill::Got) L.cache.push_back(std::move(c));
            else if (f == Fill::End) resetFiles(w, L);
        }
        if (popped && !L.segs.empty()) writeHead(w, L);
        publishBytes(L);
        if (f == Fill::Error) return done.fail(SF_ERR, err);
        done.ok();
    }

    void writeHead(Worker& w, Lane& L) {
        char hb[kHeadFileSize];
        put32(hb, kHeadMagic);
        put64(hb + 8, L.headSeg);
        put64(hb + 16, L.headOff);
        put64(hb + 24, L.headSeq);
        put32(hb + 4, crc32c(0, hb + 8, 24));
        if (L.hfd < 0) {
            budget(w, L);
            L.hfd = ::open((L.dir + "/head").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        }
        // Losing this only means redelivering a few records after a crash: not an error.
        if (L.hfd < 0 || ::pwrite(L.hfd, hb, sizeof hb, 0) != static_cast<ssize_t>(sizeof hb))
            host_.warn("spill_head_write_failed", "dir=" + L.dir + " error=" + errnoText(errno));
    }

    // The lane holds nothing any more: delete its files (the directory stays for reuse).
    void resetFiles(Worker& w, Lane& L) {
        closeFds(w, L);
        while (!L.segs.empty()) deleteSeg(L, L.segs.begin()->first);
        ::unlink((L.dir + "/head").c_str());
        L.tailSeg = 0;
        L.headSeg = L.headOff = 0;
        L.headSeq = L.expectSeq = L.nextSeq;
        L.scanSeg = L.scanOff = 0;
        L.cache.clear();
        L.badOpen = false;
        std::string().swap(L.rbuf);
        L.rbufSeg = 0;
        setRecords(L, 0);
        publishBytes(L);
    }

    void doClear(Worker& w, Lane& L, const Completion& done) {
        flush(w, L);
        resetFiles(w, L);
        // our files the lane did not know about (e.g. left by a crash) go too
        if (DIR* d = ::opendir(L.dir.c_str())) {
            std::vector<std::string> names;
            while (dirent* e = ::readdir(d))
                if (isOurFile(e->d_name)) names.push_back(e->d_name);
            ::closedir(d);
            for (auto& n : names) ::unlink((L.dir + "/" + n).c_str());
        }
        // the lane directory and its now-empty parents, never root itself
        std::string p = L.dir;
        while (p.size() > root_.size() && p.compare(0, root_.size(), root_) == 0) {
            if (::rmdir(p.c_str()) != 0) {
                if (p == L.dir && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST)
                    host_.warn("spill_clear_rmdir_failed", "dir=" + p + " error=" + errnoText(errno));
                if (errno != ENOENT) break;
            }
            p = parentOf(p);
        }
        L.cleared = true;
        w.cleared.push_back(L.dir);
        done.ok();
    }

    Host host_;
    std::string root_, scanRoot_;
    bool durable_ = false, recover_ = false;
    uint64_t maxLane_ = 0, maxTotal_ = 0, segBytes_ = 0;
    std::vector<std::unique_ptr<Worker>> workers_;

    std::atomic<uint64_t> totalRecords_{0}, totalBytes_{0};

    std::mutex regMu_;  // usage() lookups from any thread
    std::unordered_map<std::string, std::shared_ptr<Counters>> registry_;

    std::mutex staleMu_;  // lanes recovered at start-up, waiting for their first operation
    std::unordered_map<std::string, std::unique_ptr<Lane>> stale_;

    std::mutex readyMu_;
    std::condition_variable readyCv_;
    bool ready_ = false;
};

}  // namespace
}  // namespace sfdisk

STREAMFENCE_STORAGE_BACKEND(sfdisk::DiskBackend, "disk", "1.0.0",
                            "Disk spill: append-only checksummed segment files per lane, quotas, crash recovery")
