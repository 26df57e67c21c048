#include "delivery/durable_journal.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <stdexcept>
#include <unordered_map>

#include "common/log.hpp"
#include "delivery/durable_segment_file.hpp"

namespace sf::delivery::durable {

namespace {

std::string errnoText() { return std::strerror(errno); }

void mkdirs(const std::string& dir) {
    std::string cur;
    for (size_t i = 0; i <= dir.size(); ++i) {
        if (i == dir.size() || dir[i] == '/') {
            if (!cur.empty() && ::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST)
                throw std::runtime_error("durable journal: cannot create " + cur + ": " + errnoText());
        }
        if (i < dir.size()) cur.push_back(dir[i]);
    }
}

bool readFile(const std::string& path, std::string& out) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        return false;
    }
    out.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < out.size()) {
        ssize_t n = ::pread(fd, &out[got], out.size() - got, static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<size_t>(n);
    }
    out.resize(got);
    ::close(fd);
    return true;
}

// The replayed segments mapped read-only, for restored lanes to build their messages from
// when they send them (docs/recovery.md, Restart). Not populated: a page is read in when a
// lane first needs it, so the start never touches the held bytes twice.
struct MappedSegments : SegmentBytes {
    struct Map {
        uint32_t segment;
        const char* data;
        size_t size;
    };
    std::vector<Map> maps;  // by segment number, ascending
    ~MappedSegments() override {
        for (auto& m : maps) ::munmap(const_cast<char*>(m.data), m.size);
    }
    std::string_view bytes(uint32_t segment, uint64_t position, uint64_t size) const override {
        auto it = std::lower_bound(maps.begin(), maps.end(), segment, [](const Map& m, uint32_t s) { return m.segment < s; });
        if (it == maps.end() || it->segment != segment || position > it->size || size > it->size - position) return std::string_view();
        return std::string_view(it->data + position, size);
    }
    // The first n bytes of the file at fd; false when it cannot be mapped.
    bool add(uint32_t segment, int fd, size_t n) {
        if (n == 0) return true;
        void* p = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) return false;
        maps.push_back(Map{segment, static_cast<const char*>(p), n});
        return true;
    }
};

// The first bytes of a file (its header and first record's start).
std::string readHead(const std::string& path, size_t n) {
    std::string out(n, '\0');
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::string();
    ssize_t got = ::pread(fd, &out[0], n, 0);
    ::close(fd);
    out.resize(got > 0 ? static_cast<size_t>(got) : 0);
    return out;
}

void syncDir(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

}  // namespace

DurableJournal::DurableJournal(JournalOptions opts, JournalHooks hooks)
    : opts_(std::move(opts)), hooks_(std::move(hooks)), nextOffset_(opts_.topics.size(), 1) {}

DurableJournal::~DurableJournal() {
    seal();
    if (fd_ >= 0) ::close(fd_);
}

std::string DurableJournal::segmentPath(uint32_t n) const {
    char name[32];
    std::snprintf(name, sizeof name, "seg-%08u.sfj", n);
    return opts_.dir + "/" + name;
}

DurableState DurableJournal::open() {
    mkdirs(opts_.dir);
    std::vector<uint32_t> found;
    if (DIR* d = ::opendir(opts_.dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            unsigned n = 0;
            char tail[8] = {0};
            const std::string name = e->d_name;
            if (std::sscanf(name.c_str(), "seg-%8u.sf%1s", &n, tail) == 2 && name.size() == 16 && tail[0] == 'j')
                found.push_back(n);
            else if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0)
                ::unlink((opts_.dir + "/" + name).c_str());  // a compaction that did not finish
        }
        ::closedir(d);
    } else {
        throw std::runtime_error("durable journal: cannot read " + opts_.dir + ": " + errnoText());
    }
    std::sort(found.begin(), found.end());

    // A snapshot segment supersedes every older one (its deletion may not have happened).
    size_t first = 0;
    for (size_t i = found.size(); i-- > 0;) {
        const std::string head = readHead(segmentPath(found[i]), kSegmentHeaderSize + kRecordHeaderSize + 1);
        bool snap = false;
        scanSegment(head, [&](const Record& r, size_t, size_t) { snap = r.type == RecordType::Snapshot; });
        if (snap) {
            first = i;
            break;
        }
    }
    for (size_t i = 0; i < first; ++i) ::unlink(segmentPath(found[i]).c_str());
    found.erase(found.begin(), found.begin() + static_cast<long>(first));

    // One pass over each segment, read in pieces: a message record is checked (crc, fields)
    // and only where it is kept, its bytes are not copied (docs/recovery.md, Restart). The
    // segments are then mapped for the restored lanes to read the messages from.
    auto mapped = std::make_shared<MappedSegments>();
    uint64_t records = 0;
    int lastVersion = 2;
    std::string buf;
    for (size_t i = 0; i < found.size(); ++i) {
        const uint32_t seg = found[i];
        const std::string path = segmentPath(seg);
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        struct stat st {};
        if (fd < 0 || ::fstat(fd, &st) != 0) {
            if (fd >= 0) ::close(fd);
            throw std::runtime_error("durable journal: cannot read " + path + ": " + errnoText());
        }
        const uint64_t fileSize = static_cast<uint64_t>(st.st_size);
        RecordVisitor visit;
        visit.onMessage = [&](const MessageView& m, size_t pos, size_t size) {
            state_.addMessage(m.topic, m.offset, m.number, static_cast<uint32_t>(m.key.size()), static_cast<uint32_t>(m.payload.size()), seg, pos,
                              static_cast<uint32_t>(size));
        };
        visit.onRecord = [&](const Record& r, size_t pos, size_t size) { state_.apply(r, seg, pos, static_cast<uint32_t>(size)); };
        char head[kSegmentHeaderSize];
        lastVersion = ::pread(fd, head, sizeof head, 0) == static_cast<ssize_t>(sizeof head) ? segmentVersion(std::string_view(head, sizeof head)) : 0;
        ScanResult res;
        try {
            res = scanSegmentFile(fd, fileSize, visit, buf);
        } catch (const std::exception& e) {
            ::close(fd);
            throw std::runtime_error("durable journal: cannot read " + path + ": " + e.what());
        }
        records += res.records;
        totalBytes_ += res.goodEnd;
        if (res.end != ScanEnd::Clean) {
            // A crash mid-write leaves a torn tail: cut it so appends follow the last good
            // record (docs/recovery.md). Anything else is logged as corruption.
            log::warn(res.end == ScanEnd::Torn ? "durable_journal_torn_tail" : "durable_journal_corrupt",
                      {{"segment", path}, {"good_bytes", std::to_string(res.goodEnd)},
                       {"dropped_bytes", std::to_string(fileSize - res.goodEnd)}});
            if (::truncate(path.c_str(), static_cast<off_t>(res.goodEnd)) != 0) {
                ::close(fd);
                throw std::runtime_error("durable journal: cannot truncate " + path + ": " + errnoText());
            }
        }
        const bool ok = mapped->add(seg, fd, static_cast<size_t>(res.goodEnd));
        const std::string why = ok ? std::string() : errnoText();  // before close() may change errno
        ::close(fd);
        if (!ok) throw std::runtime_error("durable journal: cannot map " + path + ": " + why);
        segments_.push_back(seg);
        segmentSize_ = res.goodEnd;
    }
    state_.prune();
    DurableState replay = state_;
    replay.setBytes(mapped);
    for (size_t t = 0; t < opts_.topics.size(); ++t) nextOffset_[t] = replay.lastOffset(opts_.topics[t]) + 1;
    if (opts_.messageCounter) {
        uint64_t cur = opts_.messageCounter->load();
        while (cur < replay.maxMessageNumber() && !opts_.messageCounter->compare_exchange_weak(cur, replay.maxMessageNumber())) {
        }
    }
    if (!segments_.empty() && segmentSize_ < kSegmentHeaderSize) {
        ::unlink(segmentPath(segments_.back()).c_str());  // not even its file header survived
        segments_.pop_back();
    }
    // A version 1 segment takes no version 2 records: appends go to a new segment.
    if (segments_.empty() || lastVersion != 2) openSegment(found.empty() ? 1 : found.back() + 1, true);
    else openSegment(segments_.back(), false);
    log::info("durable_journal_opened", {{"dir", opts_.dir}, {"segments", std::to_string(segments_.size())},
                                         {"records", std::to_string(records)}, {"sessions", std::to_string(replay.sessions().size())},
                                         {"messages", std::to_string(replay.messageCount())}});
    return replay;
}

void DurableJournal::openSegment(uint32_t n, bool fresh) {
    if (fd_ >= 0) ::close(fd_);
    const std::string path = segmentPath(n);
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (fresh ? O_TRUNC : O_APPEND), 0600);
    if (fd_ < 0) throw std::runtime_error("durable journal: cannot open " + path + ": " + errnoText());
    segment_ = n;
    if (fresh) {
        segmentSize_ = 0;
        if (!writeAll(std::string(kSegmentMagic, kSegmentHeaderSize)) || ::fdatasync(fd_) != 0)
            throw std::runtime_error("durable journal: cannot write " + path + ": " + errnoText());
        segmentSize_ = kSegmentHeaderSize;
        totalBytes_ += kSegmentHeaderSize;
        segments_.push_back(n);
        syncDir(opts_.dir);
    } else {
        segmentSize_ = static_cast<uint64_t>(::lseek(fd_, 0, SEEK_END));
    }
}

bool DurableJournal::writeAll(const std::string& buf) {
    size_t done = 0;
    while (done < buf.size()) {
        ssize_t n = ::write(fd_, buf.data() + done, buf.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<size_t>(n);
    }
    return true;
}

void DurableJournal::start() { writer_ = std::thread([this] { run(); }); }

PublishStatus DurableJournal::publishWait(size_t topic, std::string payload, std::string key) {
    std::promise<PublishStatus> p;
    auto f = p.get_future();
    publishAsync(topic, std::move(payload), std::move(key), [&p](PublishStatus s) { p.set_value(s); });
    return f.get();
}

void DurableJournal::publishAsync(size_t topic, std::string payload, std::string key, std::function<void(PublishStatus)> done) {
    Item it;
    it.kind = Item::Kind::Publish;
    it.topic = topic;
    const uint64_t bytes = payload.size();
    it.a = std::move(payload);
    it.b = std::move(key);
    PublishStatus refusedWith = PublishStatus::Stopping;
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (!sealed_) {
            if ((opts_.maxQueuedPublishes && queuedPublishes_ >= opts_.maxQueuedPublishes) ||
                (opts_.maxQueuedBytes && queuedBytes_ + bytes > opts_.maxQueuedBytes)) {
                refusedWith = PublishStatus::Overloaded;  // the writer is that far behind
            } else {
                it.done = std::move(done);
                ++queuedPublishes_;
                queuedBytes_ += bytes;
                queue_.push_back(std::move(it));
                cv_.notify_one();
                return;
            }
        }
    }
    done(refusedWith);
}

void DurableJournal::append(Record r) {
    std::lock_guard<std::mutex> lk(mu_);
    if (sealed_) return;
    Item it;
    it.rec = std::make_unique<Record>(std::move(r));
    queue_.push_back(std::move(it));
    cv_.notify_one();
}

void DurableJournal::appendDone(const std::string& pid, size_t topic, uint64_t first, uint64_t last) {
    if (first == 0 || last < first) return;  // 0: never journaled (publishTo)
    std::lock_guard<std::mutex> lk(mu_);
    if (sealed_) return;
    Item it;
    it.kind = Item::Kind::Done;
    it.topic = topic;
    it.first = first;
    it.last = last;
    it.a = pid;
    queue_.push_back(std::move(it));
    cv_.notify_one();
}

void DurableJournal::seal() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (sealed_ && !writer_.joinable()) return;
        sealed_ = true;
        stop_ = true;
        cv_.notify_one();
    }
    if (writer_.joinable()) writer_.join();
    if (fd_ >= 0) ::fdatasync(fd_);
}

JournalStats DurableJournal::stats() const {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
}

void DurableJournal::run() {
    std::deque<Item> batch;
    for (;;) {
        {
            std::unique_lock<std::mutex> lk(mu_);
            cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
            if (queue_.empty() && stop_) return;
            batch.swap(queue_);
            queuedPublishes_ = queuedBytes_ = 0;
        }
        writeBatch(batch);
        batch.clear();
        maybeCompact();
    }
}

void DurableJournal::writeBatch(std::deque<Item>& batch) {
    std::string buf;
    std::vector<Committed> committed;
    std::vector<std::function<void(PublishStatus)>> accepted;
    std::vector<uint64_t> pending(opts_.topics.size(), 0), pendingBytes(opts_.topics.size(), 0);
    std::vector<uint64_t> next = nextOffset_;
    for (size_t t = 0; t < opts_.topics.size(); ++t) lastBatchFrom_[opts_.topics[t]] = nextOffset_[t];
    struct Applied {
        Record rec;  // a publish's without its key and payload: the state keeps only where it is
        uint64_t pos;
        uint32_t size;
        uint32_t keyBytes, payloadBytes;
    };
    std::vector<Applied> applied;
    applied.reserve(batch.size());
    // Done records become one DoneRanges record per lane and run (docs/recovery.md): a run
    // ends at any other session record, so a Done never moves across its lane's Subscribe,
    // Unsubscribe or End. Message records may sit between: an offset is acked only after
    // its message was committed by an earlier batch.
    struct Run {
        Record rec;  // pid, topic
        std::vector<std::pair<uint64_t, uint64_t>> ranges;
    };
    struct RunKey {
        std::string_view pid;
        size_t topic;
        bool operator==(const RunKey& o) const { return topic == o.topic && pid == o.pid; }
    };
    struct RunKeyHash {
        size_t operator()(const RunKey& k) const { return std::hash<std::string_view>()(k.pid) * 31 + k.topic; }
    };
    std::deque<Run> runs;                                  // stable: the keys view their pids
    std::unordered_map<RunKey, size_t, RunKeyHash> runIndex;
    auto flushDone = [&] {
        for (Run& run : runs) {
            std::sort(run.ranges.begin(), run.ranges.end());
            Record& rec = run.rec;
            rec.type = RecordType::DoneRanges;
            for (const auto& [first, last] : run.ranges) {
                if (!rec.ranges.empty() && first <= rec.ranges.back().second + 1)
                    rec.ranges.back().second = std::max(rec.ranges.back().second, last);
                else rec.ranges.emplace_back(first, last);
            }
            const size_t pos = buf.size();
            encode(buf, rec);
            applied.push_back(Applied{std::move(rec), segmentSize_ + pos, static_cast<uint32_t>(buf.size() - pos), 0, 0});
        }
        runIndex.clear();
        runs.clear();
    };
    Record msg;  // reused for every publish's record
    msg.type = RecordType::Message;
    for (Item& it : batch) {
        if (it.kind == Item::Kind::Done) {
            if (it.topic >= opts_.topics.size()) continue;
            auto found = runIndex.find(RunKey{it.a, it.topic});
            if (found == runIndex.end()) {
                Run& run = runs.emplace_back();
                run.rec.pid = std::move(it.a);
                run.rec.topic = opts_.topics[it.topic];
                found = runIndex.emplace(RunKey{run.rec.pid, it.topic}, runs.size() - 1).first;
            }
            runs[found->second].ranges.emplace_back(it.first, it.last);
            continue;
        }
        if (it.kind == Item::Kind::Session) {
            flushDone();
            Record& r = *it.rec;
            const size_t pos = buf.size();
            encode(buf, r);
            applied.push_back(Applied{std::move(r), segmentSize_ + pos, static_cast<uint32_t>(buf.size() - pos), 0, 0});
            continue;
        }
        const uint64_t bytes = it.a.size();
        if (it.topic >= opts_.topics.size() ||
            (hooks_.admit && !hooks_.admit(it.topic, pending[it.topic], pendingBytes[it.topic], bytes))) {
            it.done(PublishStatus::Overloaded);
            continue;
        }
        ++pending[it.topic];
        pendingBytes[it.topic] += bytes;
        msg.topic = opts_.topics[it.topic];
        msg.offset = next[it.topic]++;
        msg.messageNumber = opts_.messageCounter ? opts_.messageCounter->fetch_add(1) + 1 : msg.offset;
        msg.payload.swap(it.a);
        msg.key.swap(it.b);
        const size_t pos = buf.size();
        encode(buf, msg);
        Applied a{Record{}, segmentSize_ + pos, static_cast<uint32_t>(buf.size() - pos), static_cast<uint32_t>(msg.key.size()),
                  static_cast<uint32_t>(bytes)};
        a.rec.type = RecordType::Message;
        a.rec.topic = msg.topic;
        a.rec.offset = msg.offset;
        a.rec.messageNumber = msg.messageNumber;
        committed.push_back(Committed{it.topic, msg.offset, msg.messageNumber, std::move(msg.key), std::move(msg.payload)});
        msg.key.clear();
        msg.payload.clear();
        accepted.push_back(std::move(it.done));
        applied.push_back(std::move(a));
    }
    flushDone();
    if (buf.empty()) return;
    bool ok = writeAll(buf);
    if (ok && !committed.empty()) {
        ok = ::fdatasync(fd_) == 0;
        std::lock_guard<std::mutex> lk(mu_);
        ++stats_.syncs;
    }
    if (!ok) {
        // Nothing of this batch counts: cut the segment back so the next write follows the
        // last good record, and refuse the publishes (retry later).
        log::error("durable_journal_write_failed", {{"segment", segmentPath(segment_)}, {"error", errnoText()},
                                                    {"publishes", std::to_string(committed.size())}});
        if (::ftruncate(fd_, static_cast<off_t>(segmentSize_)) != 0) {
            try {
                openSegment(segment_ + 1, true);
            } catch (const std::exception& e) {
                log::error("durable_journal_segment_failed", {{"dir", opts_.dir}, {"error", e.what()}});
            }
        }
        for (auto& d : accepted)
            if (d) d(PublishStatus::Overloaded);
        return;
    }
    nextOffset_ = next;
    for (auto& a : applied) {
        if (a.rec.type == RecordType::Message)
            state_.addMessage(a.rec.topic, a.rec.offset, a.rec.messageNumber, a.keyBytes, a.payloadBytes, segment_, a.pos, a.size);
        else state_.apply(a.rec, segment_, a.pos, a.size);
    }
    segmentSize_ += buf.size();
    totalBytes_ += buf.size();
    sinceCheck_ += buf.size();
    {
        std::lock_guard<std::mutex> lk(mu_);
        ++stats_.batches;
        stats_.records += applied.size();
        stats_.bytes += buf.size();
    }
    if (!committed.empty() && hooks_.commit) hooks_.commit(committed);
    for (auto& d : accepted)
        if (d) d(PublishStatus::Ok);
    if (segmentSize_ >= opts_.segmentBytes) {
        try {
            openSegment(segment_ + 1, true);
        } catch (const std::exception& e) {
            log::error("durable_journal_segment_failed", {{"dir", opts_.dir}, {"error", e.what()}});
        }
    }
}

void DurableJournal::maybeCompact() {
    if (sinceCheck_ < opts_.compactCheckBytes) return;
    sinceCheck_ = 0;
    const uint64_t live = state_.prune(&lastBatchFrom_);
    if (totalBytes_ <= 2 * live + opts_.compactSlackBytes) return;
    compact();
}

// Copies what is still needed (live message records verbatim, the sessions, the counters)
// into a new segment that starts with a Snapshot record, syncs it, renames it into place,
// then deletes the older segments (docs/recovery.md).
void DurableJournal::compact() {
    const uint32_t n = segment_ + 1;
    const std::string tmp = segmentPath(n) + ".tmp";
    int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        log::error("durable_compaction_failed", {{"dir", opts_.dir}, {"error", errnoText()}});
        return;
    }
    std::string buf(kSegmentMagic, kSegmentHeaderSize);
    Record snap;
    snap.type = RecordType::Snapshot;
    encode(buf, snap);
    Record counters;
    counters.type = RecordType::Counters;
    counters.messageNumber = opts_.messageCounter ? opts_.messageCounter->load() : state_.maxMessageNumber();
    for (size_t t = 0; t < opts_.topics.size(); ++t) counters.lastOffsets.emplace_back(opts_.topics[t], nextOffset_[t] - 1);
    encode(buf, counters);

    std::unordered_map<uint32_t, int> readers;
    bool ok = true;
    uint64_t written = 0;
    auto flush = [&] {
        size_t done = 0;
        while (ok && done < buf.size()) {
            ssize_t w = ::write(out, buf.data() + done, buf.size() - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) ok = false;
            else done += static_cast<size_t>(w);
        }
        written += buf.size();
        buf.clear();
    };
    std::string rec;
    for (auto& [topic, msgs] : state_.messages()) {
        for (auto& [off, m] : msgs) {
            int& fd = readers[m.segment];
            if (fd == 0) fd = ::open(segmentPath(m.segment).c_str(), O_RDONLY | O_CLOEXEC);
            rec.resize(m.size);
            if (fd < 0 || ::pread(fd, &rec[0], m.size, static_cast<off_t>(m.position)) != static_cast<ssize_t>(m.size)) {
                ok = false;
                break;
            }
            m.segment = n;
            m.position = written + buf.size();
            buf += rec;
            if (buf.size() > (8u << 20)) flush();
        }
        if (!ok) break;
    }
    for (auto& [seg, fd] : readers)
        if (fd > 0) ::close(fd);
    for (auto& [pid, s] : state_.sessions()) {
        Record r;
        r.type = RecordType::Open;
        r.pid = pid;
        r.id = s.id;
        r.principal = s.principal;
        r.token = s.token;
        encode(buf, r);
        for (auto& [topic, lane] : s.lanes) {
            Record sub;
            sub.type = RecordType::Subscribe;
            sub.pid = pid;
            sub.topic = topic;
            sub.offset = lane.floor;
            encode(buf, sub);
            if (!lane.above.empty()) {
                Record d;
                d.type = RecordType::DoneRanges;
                d.pid = pid;
                d.topic = topic;
                d.ranges.assign(lane.above.begin(), lane.above.end());
                encode(buf, d);
            }
        }
    }
    flush();
    if (ok) ok = ::fdatasync(out) == 0;
    ::close(out);
    if (!ok || ::rename(tmp.c_str(), segmentPath(n).c_str()) != 0) {
        log::error("durable_compaction_failed", {{"dir", opts_.dir}, {"error", errnoText()}});
        ::unlink(tmp.c_str());
        // Positions must point back at the old segments: rebuild them by replaying.
        DurableState fresh;
        std::string data;
        for (uint32_t seg : segments_)
            if (readFile(segmentPath(seg), data))
                scanSegment(data, [&](const Record& r, size_t pos, size_t size) { fresh.apply(r, seg, pos, static_cast<uint32_t>(size)); });
        state_ = std::move(fresh);
        return;
    }
    syncDir(opts_.dir);
    const std::vector<uint32_t> old = segments_;
    segments_.clear();
    openSegment(n, false);
    segments_.push_back(n);
    for (uint32_t seg : old) ::unlink(segmentPath(seg).c_str());
    syncDir(opts_.dir);
    const uint64_t before = totalBytes_;
    totalBytes_ = segmentSize_;
    {
        std::lock_guard<std::mutex> lk(mu_);
        ++stats_.compactions;
    }
    log::info("durable_journal_compacted", {{"dir", opts_.dir}, {"bytes_before", std::to_string(before)},
                                            {"bytes_after", std::to_string(totalBytes_)},
                                            {"messages", std::to_string(state_.messageCount())},
                                            {"sessions", std::to_string(state_.sessions().size())}});
}

}  // namespace sf::delivery::durable
