// The durable journal (docs/recovery.md, "Durable AT_LEAST_ONCE"): the record format and its
// crash-tolerant scan (a torn tail is cut at the last good record, a flipped byte is caught
// by the crc), the replayed state (lanes, done offsets, pruning), and the journal on real
// files: group commit, reopen after a torn write, counters that resume, compaction.
#include <cppunit/extensions/HelperMacros.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "temp_dir.hpp"
#include "delivery/durable_journal.hpp"
#include "delivery/durable_record.hpp"
#include "delivery/durable_state.hpp"

using namespace sf::delivery;
using namespace sf::delivery::durable;
namespace fs = std::filesystem;

namespace {

Record message(const std::string& topic, uint64_t offset, uint64_t n, const std::string& payload) {
    Record r;
    r.type = RecordType::Message;
    r.topic = topic;
    r.offset = offset;
    r.messageNumber = n;
    r.payload = payload;
    r.key = topic;
    return r;
}

Record sessionRec(RecordType t, const std::string& pid, const std::string& topic = "", uint64_t offset = 0) {
    Record r;
    r.type = t;
    r.pid = pid;
    r.topic = topic;
    r.offset = offset;
    if (t == RecordType::Open) {
        r.id = "id-" + pid;
        r.principal = "alice";
    }
    return r;
}

std::string segmentOf(const std::vector<Record>& recs, std::vector<size_t>* ends = nullptr) {
    std::string s(kSegmentMagic, kSegmentHeaderSize);
    for (auto& r : recs) {
        encode(s, r);
        if (ends) ends->push_back(s.size());
    }
    return s;
}

// A journal over topics "a" and "b" whose commits are collected.
struct Harness {
    std::atomic<uint64_t> counter{0};
    std::vector<Committed> committed;
    std::mutex mu;
    bool room = true;
    std::unique_ptr<DurableJournal> j;
    DurableState open(const fs::path& dir, uint64_t checkBytes = 64ull << 20, uint64_t slack = 64ull << 20) {
        JournalOptions o;
        o.dir = dir.string();
        o.topics = {"a", "b"};
        o.messageCounter = &counter;
        o.compactCheckBytes = checkBytes;
        o.compactSlackBytes = slack;
        JournalHooks h;
        h.admit = [this](size_t, uint64_t, uint64_t, uint64_t) { return room; };
        h.commit = [this](std::vector<Committed>& b) {
            std::lock_guard<std::mutex> lk(mu);
            for (auto& c : b) committed.push_back(c);
        };
        j = std::make_unique<DurableJournal>(o, h);
        DurableState st = j->open();
        j->start();
        return st;
    }
};

uint64_t dirBytes(const fs::path& dir) {
    uint64_t n = 0;
    for (auto& e : fs::directory_iterator(dir)) n += fs::file_size(e.path());
    return n;
}

}  // namespace

class DurableJournalTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DurableJournalTest);
    CPPUNIT_TEST(recordsRoundTrip);
    CPPUNIT_TEST(tornTailStopsAtLastGoodRecord);
    CPPUNIT_TEST(flippedByteIsCorrupt);
    CPPUNIT_TEST(laneDoneOffsetsAndPrune);
    CPPUNIT_TEST(pruneKeepsExactlyWhatSomeLaneNeeds);
    CPPUNIT_TEST(reopenRestoresSessionsAndCounters);
    CPPUNIT_TEST(tornWriteOnDiskIsCutAndAppendsContinue);
    CPPUNIT_TEST(groupCommitBatchesConcurrentPublishes);
    CPPUNIT_TEST(refusedPublishIsNotWritten);
    CPPUNIT_TEST(compactionKeepsOnlyWhatIsNeeded);
    CPPUNIT_TEST(sealRefusesPublishes);
    CPPUNIT_TEST(queueBeyondItsBoundIsRefusedAtOnce);
    CPPUNIT_TEST(refusedRangesAreDoneForTheirLane);
    CPPUNIT_TEST(doneRangesRoundTripAndVersion);
    CPPUNIT_TEST(laneRangesMergeAndAdvanceFloor);
    CPPUNIT_TEST(acksOfABatchAreWrittenAsRanges);
    CPPUNIT_TEST(tornDoneRangesRecordIsCut);
    CPPUNIT_TEST(versionOneJournalIsReadAndAppendsGoToANewSegment);
    CPPUNIT_TEST_SUITE_END();

public:
    void recordsRoundTrip() {
        Record c;
        c.type = RecordType::Counters;
        c.messageNumber = 77;
        c.lastOffsets = {{"a", 5}, {"b", 9}};
        std::vector<Record> in = {message("a", 1, 10, "{\"x\":1}"), sessionRec(RecordType::Open, "p1"),
                                  sessionRec(RecordType::Subscribe, "p1", "a", 1), sessionRec(RecordType::Done, "p1", "a", 1),
                                  sessionRec(RecordType::Unsubscribe, "p1", "a"), sessionRec(RecordType::End, "p1"), c};
        std::vector<Record> out;
        ScanResult res = scanSegment(segmentOf(in), [&](const Record& r, size_t, size_t) { out.push_back(r); });
        CPPUNIT_ASSERT(res.end == ScanEnd::Clean);
        CPPUNIT_ASSERT_EQUAL(in.size(), out.size());
        CPPUNIT_ASSERT_EQUAL(std::string("{\"x\":1}"), out[0].payload);
        CPPUNIT_ASSERT_EQUAL(uint64_t(10), out[0].messageNumber);
        CPPUNIT_ASSERT_EQUAL(std::string("id-p1"), out[1].id);
        CPPUNIT_ASSERT_EQUAL(std::string("alice"), out[1].principal);
        CPPUNIT_ASSERT_EQUAL(uint64_t(1), out[3].offset);
        CPPUNIT_ASSERT_EQUAL(size_t(2), out[6].lastOffsets.size());
        CPPUNIT_ASSERT_EQUAL(uint64_t(9), out[6].lastOffsets[1].second);
    }

    void tornTailStopsAtLastGoodRecord() {
        std::vector<size_t> ends;
        const std::string seg = segmentOf({message("a", 1, 1, "one"), message("a", 2, 2, "two"), message("a", 3, 3, "three")}, &ends);
        // Every cut of the file: the records wholly before the cut survive, nothing else.
        for (size_t cut = kSegmentHeaderSize; cut <= seg.size(); ++cut) {
            size_t n = 0;
            ScanResult res = scanSegment(std::string_view(seg).substr(0, cut), [&](const Record&, size_t, size_t) { ++n; });
            size_t whole = 0;
            for (size_t e : ends)
                if (e <= cut) ++whole;
            CPPUNIT_ASSERT_EQUAL(whole, n);
            CPPUNIT_ASSERT_EQUAL(whole ? ends[whole - 1] : kSegmentHeaderSize, res.goodEnd);
            const bool atBoundary = cut == kSegmentHeaderSize || std::find(ends.begin(), ends.end(), cut) != ends.end();
            CPPUNIT_ASSERT(res.end == (atBoundary ? ScanEnd::Clean : ScanEnd::Torn));
        }
    }

    void flippedByteIsCorrupt() {
        std::vector<size_t> ends;
        std::string seg = segmentOf({message("a", 1, 1, "one"), message("a", 2, 2, "payload two"), message("a", 3, 3, "three")}, &ends);
        seg[ends[0] + kRecordHeaderSize + 10] ^= 0x01;  // inside the second record's body
        size_t n = 0;
        ScanResult res = scanSegment(seg, [&](const Record&, size_t, size_t) { ++n; });
        CPPUNIT_ASSERT(res.end == ScanEnd::Corrupt);
        CPPUNIT_ASSERT_EQUAL(size_t(1), n);
        CPPUNIT_ASSERT_EQUAL(ends[0], res.goodEnd);
        std::string badHeader = seg;
        badHeader[0] = 'X';
        CPPUNIT_ASSERT(scanSegment(badHeader, nullptr).end == ScanEnd::Corrupt);
    }

    // prune() merges the lanes' gaps instead of asking every lane about every message: on
    // seeded random lanes (floors, done ranges, refused runs) it keeps exactly the messages
    // some lane has not done, plus those from keepFrom on.
    void pruneKeepsExactlyWhatSomeLaneNeeds() {
        uint32_t seed = 777;
        auto rnd = [&](uint32_t n) { seed = seed * 1103515245u + 12345u; return (seed >> 16) % n; };
        for (int round = 0; round < 200; ++round) {
            DurableState st;
            const uint64_t n = 1 + rnd(300);
            for (uint64_t o = 1; o <= n; ++o) st.apply(message("a", o, o, "m"), 1, 0, 0);
            const int lanes = static_cast<int>(rnd(6));
            for (int l = 0; l < lanes; ++l) {
                const std::string pid = "p" + std::to_string(l);
                st.apply(sessionRec(RecordType::Open, pid), 1, 0, 0);
                st.apply(sessionRec(RecordType::Subscribe, pid, "a", 1 + rnd(static_cast<uint32_t>(n))), 1, 0, 0);
                for (int k = rnd(8); k-- > 0;) {
                    Record d;
                    d.type = RecordType::DoneRanges;
                    d.pid = pid;
                    d.topic = "a";
                    const uint64_t first = 1 + rnd(static_cast<uint32_t>(n + 5));
                    d.ranges.emplace_back(first, first + rnd(40));
                    st.apply(d, 1, 0, 0);
                }
            }
            std::map<std::string, uint64_t> keepFrom{{"a", 1 + rnd(static_cast<uint32_t>(n + 10))}};
            const bool useKeep = rnd(2) == 0;
            std::vector<uint64_t> expect;
            for (uint64_t o = 1; o <= n; ++o) {
                bool needed = useKeep && o >= keepFrom["a"];
                for (auto& kv : st.sessions())
                    for (auto& [topic, lane] : kv.second.lanes) needed = needed || !lane.isDone(o);
                if (needed) expect.push_back(o);
            }
            st.prune(useKeep ? &keepFrom : nullptr);
            std::vector<uint64_t> got;
            for (auto& kv : st.messages()["a"]) got.push_back(kv.first);
            CPPUNIT_ASSERT(got == expect);
        }
    }

    void laneDoneOffsetsAndPrune() {
        DurableState st;
        for (uint64_t o = 1; o <= 5; ++o) st.apply(message("a", o, o, "m" + std::to_string(o)), 1, 0, 0);
        st.apply(sessionRec(RecordType::Open, "p"), 1, 0, 0);
        st.apply(sessionRec(RecordType::Subscribe, "p", "a", 2), 1, 0, 0);
        st.apply(sessionRec(RecordType::Done, "p", "a", 3), 1, 0, 0);
        st.apply(sessionRec(RecordType::Done, "p", "a", 2), 1, 0, 0);
        st.apply(sessionRec(RecordType::Done, "p", "a", 5), 1, 0, 0);
        const StoredLane& lane = st.sessions().at("p").lanes.at("a");
        CPPUNIT_ASSERT_EQUAL(uint64_t(4), lane.floor);  // 2 and 3 done, contiguous
        CPPUNIT_ASSERT(lane.isDone(5));
        CPPUNIT_ASSERT(!lane.isDone(4));
        CPPUNIT_ASSERT_EQUAL(uint64_t(4), st.neededFrom("a"));
        st.prune();
        CPPUNIT_ASSERT_EQUAL(size_t(1), st.messages()["a"].size());  // 4: the only one not done
        CPPUNIT_ASSERT(st.messages()["a"].count(4));
        st.apply(sessionRec(RecordType::End, "p"), 1, 0, 0);
        st.prune();
        CPPUNIT_ASSERT_EQUAL(size_t(0), st.messages()["a"].size());  // nobody needs anything
        CPPUNIT_ASSERT_EQUAL(uint64_t(5), st.lastOffset("a"));        // counters stay
    }

    void reopenRestoresSessionsAndCounters() {
        TempDir d;
        {
            Harness h;
            h.open(d.path);
            h.j->append(sessionRec(RecordType::Open, "p"));
            h.j->append(sessionRec(RecordType::Subscribe, "p", "a", 1));
            for (int i = 0; i < 10; ++i)
                CPPUNIT_ASSERT(h.j->publishWait(i % 2, "{\"i\":" + std::to_string(i) + "}", "") == PublishStatus::Ok);
            // Topic a got offsets 1..5 (i = 0, 2, 4, 6, 8); the client acks 1 and 3.
            h.j->appendDone("p", 0, 1, 1);
            h.j->appendDone("p", 0, 3, 3);
            h.j->seal();
            CPPUNIT_ASSERT_EQUAL(size_t(10), h.committed.size());
            CPPUNIT_ASSERT_EQUAL(uint64_t(5), h.committed[8].offset);
            CPPUNIT_ASSERT_EQUAL(uint64_t(9), h.committed[8].number);
        }
        Harness h2;
        h2.counter = 3;  // another namespace's journal may have resumed higher or lower
        DurableState st = h2.open(d.path);
        CPPUNIT_ASSERT_EQUAL(uint64_t(10), h2.counter.load());
        CPPUNIT_ASSERT_EQUAL(uint64_t(6), h2.j->nextOffset(0));
        CPPUNIT_ASSERT_EQUAL(uint64_t(6), h2.j->nextOffset(1));
        CPPUNIT_ASSERT_EQUAL(size_t(1), st.sessions().size());
        const StoredLane& lane = st.sessions().at("p").lanes.at("a");
        std::vector<std::string> pending;
        for (auto& [off, m] : st.messages()["a"])
            if (!lane.isDone(off)) pending.emplace_back(st.payloadOf(m));
        CPPUNIT_ASSERT_EQUAL(size_t(3), pending.size());
        CPPUNIT_ASSERT_EQUAL(std::string("{\"i\":2}"), pending[0]);
        CPPUNIT_ASSERT_EQUAL(std::string("{\"i\":8}"), pending[2]);
        CPPUNIT_ASSERT(st.messages()["b"].empty());  // no lane on b: nothing kept
        // New publishes continue the numbering.
        CPPUNIT_ASSERT(h2.j->publishWait(0, "{}", "") == PublishStatus::Ok);
        CPPUNIT_ASSERT_EQUAL(uint64_t(6), h2.committed.at(0).offset);
        CPPUNIT_ASSERT_EQUAL(uint64_t(11), h2.committed.at(0).number);
    }

    void tornWriteOnDiskIsCutAndAppendsContinue() {
        TempDir d;
        {
            Harness h;
            h.open(d.path);
            h.j->append(sessionRec(RecordType::Open, "p"));
            h.j->append(sessionRec(RecordType::Subscribe, "p", "a", 1));
            for (int i = 0; i < 3; ++i) CPPUNIT_ASSERT(h.j->publishWait(0, "{\"i\":" + std::to_string(i) + "}", "") == PublishStatus::Ok);
            h.j->seal();
        }
        fs::path seg;
        for (auto& e : fs::directory_iterator(d.path)) seg = e.path();
        const uint64_t good = fs::file_size(seg);
        {
            // Half of a fourth message: what kill -9 during a write leaves.
            std::string extra;
            encode(extra, message("a", 4, 4, "{\"i\":3}"));
            std::ofstream f(seg, std::ios::app | std::ios::binary);
            f.write(extra.data(), static_cast<std::streamsize>(extra.size() / 2));
        }
        {
            Harness h;
            DurableState st = h.open(d.path);
            CPPUNIT_ASSERT_EQUAL(good, static_cast<uint64_t>(fs::file_size(seg)));
            CPPUNIT_ASSERT_EQUAL(size_t(3), st.messages()["a"].size());
            CPPUNIT_ASSERT_EQUAL(uint64_t(4), h.j->nextOffset(0));
            CPPUNIT_ASSERT(h.j->publishWait(0, "{\"i\":\"after\"}", "") == PublishStatus::Ok);
            h.j->seal();
        }
        Harness h;
        DurableState st = h.open(d.path);
        CPPUNIT_ASSERT_EQUAL(size_t(4), st.messages()["a"].size());
        CPPUNIT_ASSERT_EQUAL(std::string("{\"i\":\"after\"}"), std::string(st.payloadOf(st.messages()["a"].at(4))));
    }

    void groupCommitBatchesConcurrentPublishes() {
        TempDir d;
        Harness h;
        h.open(d.path);
        std::vector<std::thread> ts;
        std::atomic<int> ok{0};
        for (int t = 0; t < 16; ++t)
            ts.emplace_back([&] {
                for (int i = 0; i < 50; ++i)
                    if (h.j->publishWait(0, "{}", "") == PublishStatus::Ok) ++ok;
            });
        for (auto& t : ts) t.join();
        CPPUNIT_ASSERT_EQUAL(800, ok.load());
        JournalStats s = h.j->stats();
        CPPUNIT_ASSERT(s.syncs < 800);  // fsyncs are shared by the publishes of a batch
        // Offsets are given in journal order: the commits arrive 1, 2, 3, ...
        for (size_t i = 0; i < h.committed.size(); ++i) CPPUNIT_ASSERT_EQUAL(uint64_t(i + 1), h.committed[i].offset);
    }

    void refusedPublishIsNotWritten() {
        TempDir d;
        {
            Harness h;
            h.open(d.path);
            h.room = false;
            CPPUNIT_ASSERT(h.j->publishWait(0, "{}", "") == PublishStatus::Overloaded);
            h.room = true;
            CPPUNIT_ASSERT(h.j->publishWait(0, "{}", "") == PublishStatus::Ok);
            CPPUNIT_ASSERT_EQUAL(uint64_t(1), h.committed.at(0).offset);
            h.j->seal();
        }
        Harness h;
        h.open(d.path);
        CPPUNIT_ASSERT_EQUAL(uint64_t(2), h.j->nextOffset(0));
    }

    void compactionKeepsOnlyWhatIsNeeded() {
        TempDir d;
        const std::string big(1000, 'x');
        {
            Harness h;
            h.open(d.path, 64 << 10, 16 << 10);  // look every 64 KiB, compact past 2 x live + 16 KiB
            h.j->append(sessionRec(RecordType::Open, "p"));
            h.j->append(sessionRec(RecordType::Subscribe, "p", "a", 1));
            for (int i = 1; i <= 2000; ++i) {
                CPPUNIT_ASSERT(h.j->publishWait(0, "\"" + big + std::to_string(i) + "\"", "") == PublishStatus::Ok);
                if (i != 7) h.j->appendDone("p", 0, uint64_t(i), uint64_t(i));  // all but 7 acked
            }
            h.j->seal();
            CPPUNIT_ASSERT(h.j->stats().compactions > 0);
        }
        CPPUNIT_ASSERT(dirBytes(d.path) < 400u << 10);  // 2 MB written, a few hundred KB at most kept
        Harness h;
        DurableState st = h.open(d.path);
        const StoredLane& lane = st.sessions().at("p").lanes.at("a");
        std::vector<uint64_t> pending;
        for (auto& [off, m] : st.messages()["a"])
            if (!lane.isDone(off)) pending.push_back(off);
        CPPUNIT_ASSERT_EQUAL(size_t(1), pending.size());
        CPPUNIT_ASSERT_EQUAL(uint64_t(7), pending[0]);
        CPPUNIT_ASSERT_EQUAL("\"" + big + "7\"", std::string(st.payloadOf(st.messages()["a"].at(7))));
        CPPUNIT_ASSERT_EQUAL(uint64_t(2001), h.j->nextOffset(0));
        CPPUNIT_ASSERT_EQUAL(uint64_t(2000), h.counter.load());
    }

    // An open-loop publisher faster than the writer: past the queue's bound publishAsync
    // answers Overloaded on the caller's thread instead of queueing without limit.
    void queueBeyondItsBoundIsRefusedAtOnce() {
        TempDir d;
        JournalOptions o;
        o.dir = d.path.string();
        o.topics = {"a"};
        o.maxQueuedPublishes = 3;
        o.maxQueuedBytes = 1000;
        DurableJournal j(o, JournalHooks{});
        j.open();  // not started: nothing leaves the queue
        std::vector<PublishStatus> got;
        std::mutex mu;
        auto done = [&](PublishStatus st) {
            std::lock_guard<std::mutex> lk(mu);
            got.push_back(st);
        };
        for (int i = 0; i < 3; ++i) j.publishAsync(0, "{}", "", done);
        CPPUNIT_ASSERT(got.empty());  // queued
        j.publishAsync(0, "{}", "", done);
        CPPUNIT_ASSERT_EQUAL(size_t(1), got.size());
        CPPUNIT_ASSERT(got[0] == PublishStatus::Overloaded);
        j.start();
        j.seal();  // the three queued are written
        CPPUNIT_ASSERT_EQUAL(size_t(4), got.size());
        CPPUNIT_ASSERT_EQUAL(3, int(std::count(got.begin(), got.end(), PublishStatus::Ok)));
        // The bound counts what waits, not what was written: room again.
        DurableJournal k(o, JournalHooks{});
        k.open();
        k.start();
        PublishStatus st = k.publishWait(0, std::string(900, ' '), "");
        CPPUNIT_ASSERT(st == PublishStatus::Ok);
        st = k.publishWait(0, std::string(1001, ' '), "");
        CPPUNIT_ASSERT(st == PublishStatus::Overloaded);  // larger than the byte bound
    }

    // Offsets a lane's overflow policy refused are done for that lane (one range record),
    // so a restart does not owe them and pruning may drop them.
    void refusedRangesAreDoneForTheirLane() {
        TempDir d;
        {
            Harness h;
            h.open(d.path);
            Record open;
            open.type = RecordType::Open;
            open.pid = "p";
            open.id = "sock";
            h.j->append(open);
            h.j->append(sessionRec(RecordType::Subscribe, "p", "a", 1));
            for (int i = 0; i < 10; ++i) CPPUNIT_ASSERT(h.j->publishWait(0, "{}", "") == PublishStatus::Ok);
            h.j->appendDone("p", 0, 3, 8);  // refused 3..8
            h.j->appendDone("p", 0, 1, 1);  // acked 1
            CPPUNIT_ASSERT(h.j->publishWait(1, "{}", "") == PublishStatus::Ok);  // syncs them
            h.j->seal();
        }
        Harness h;
        DurableState st = h.open(d.path);
        const StoredLane& lane = st.sessions().at("p").lanes.at("a");
        std::vector<uint64_t> owed;
        for (auto& [off, m] : st.messages()["a"])
            if (!lane.isDone(off)) owed.push_back(off);
        CPPUNIT_ASSERT((owed == std::vector<uint64_t>{2, 9, 10}));
    }

    void sealRefusesPublishes() {
        TempDir d;
        Harness h;
        h.open(d.path);
        h.j->seal();
        CPPUNIT_ASSERT(h.j->publishWait(0, "{}", "") == PublishStatus::Stopping);
    }

    void doneRangesRoundTripAndVersion() {
        Record d;
        d.type = RecordType::DoneRanges;
        d.pid = "p1";
        d.topic = "a";
        d.ranges = {{1, 4}, {7, 7}, {9, 1000}};
        std::vector<Record> out;
        const std::string seg = segmentOf({d});
        CPPUNIT_ASSERT_EQUAL(2, segmentVersion(seg));
        ScanResult res = scanSegment(seg, [&](const Record& r, size_t, size_t) { out.push_back(r); });
        CPPUNIT_ASSERT(res.end == ScanEnd::Clean);
        CPPUNIT_ASSERT_EQUAL(size_t(1), out.size());
        CPPUNIT_ASSERT(out[0].ranges == d.ranges);
        CPPUNIT_ASSERT_EQUAL(std::string("p1"), out[0].pid);
        // A version 1 segment is read, but a DoneRanges record in one is not valid there.
        std::string v1(kSegmentMagicV1, kSegmentHeaderSize);
        encode(v1, sessionRec(RecordType::Open, "p"));
        CPPUNIT_ASSERT_EQUAL(1, segmentVersion(v1));
        CPPUNIT_ASSERT(scanSegment(v1, nullptr).end == ScanEnd::Clean);
        const size_t good = v1.size();
        encode(v1, d);
        res = scanSegment(v1, nullptr);
        CPPUNIT_ASSERT(res.end == ScanEnd::Corrupt);
        CPPUNIT_ASSERT_EQUAL(good, res.goodEnd);
        // A range whose first is past its last, or a count past the body, is corrupt.
        Record bad = d;
        bad.ranges = {{5, 4}};
        CPPUNIT_ASSERT(scanSegment(segmentOf({bad}), nullptr).end == ScanEnd::Corrupt);
        std::string body = segmentOf({d}).substr(kSegmentHeaderSize + kRecordHeaderSize);
        body[1 + 4 + 2 + 4 + 1] = 100;  // count 3 -> 100
        Record r;
        CPPUNIT_ASSERT(!decodeBody(body, r));
    }

    void laneRangesMergeAndAdvanceFloor() {
        StoredLane l;
        l.floor = 10;
        l.done(20, 25);
        l.done(30, 30);
        CPPUNIT_ASSERT_EQUAL(size_t(2), l.above.size());
        CPPUNIT_ASSERT(l.isDone(9) && !l.isDone(10) && l.isDone(20) && l.isDone(25) && !l.isDone(26) && l.isDone(30));
        l.done(26, 29);  // joins both neighbours
        CPPUNIT_ASSERT_EQUAL(size_t(1), l.above.size());
        CPPUNIT_ASSERT_EQUAL(uint64_t(30), l.above.begin()->second);
        l.done(5, 12);   // below and at the floor
        CPPUNIT_ASSERT_EQUAL(uint64_t(13), l.floor);
        l.done(13, 19);  // reaches the range above: the floor jumps past it
        CPPUNIT_ASSERT_EQUAL(uint64_t(31), l.floor);
        CPPUNIT_ASSERT(l.above.empty());
        l.done(40);
        l.done(41);
        CPPUNIT_ASSERT_EQUAL(size_t(1), l.above.size());
        l.done(31, 39);
        CPPUNIT_ASSERT_EQUAL(uint64_t(42), l.floor);
    }

    void acksOfABatchAreWrittenAsRanges() {
        TempDir d;
        {
            Harness h;
            h.open(d.path);
            h.j->append(sessionRec(RecordType::Open, "p"));
            h.j->append(sessionRec(RecordType::Subscribe, "p", "a", 1));
            h.j->append(sessionRec(RecordType::Open, "q"));
            h.j->append(sessionRec(RecordType::Subscribe, "q", "a", 1));
            for (int i = 0; i < 100; ++i) CPPUNIT_ASSERT(h.j->publishWait(0, "{}", "") == PublishStatus::Ok);
            const uint64_t before = h.j->stats().records;
            // 200 acks, out of order, two lanes, one gap each (p: 50; q: 60..100).
            for (uint64_t o = 100; o >= 1; --o)
                if (o != 50) h.j->appendDone("p", 0, o, o);
            for (uint64_t o = 1; o < 60; ++o) h.j->appendDone("q", 0, o, o);
            h.j->seal();
            // Each batch wrote at most one record per lane (whatever way the writer split them).
            const JournalStats s = h.j->stats();
            CPPUNIT_ASSERT(s.records - before <= 2 * s.batches);
            CPPUNIT_ASSERT(s.records - before < 20);
        }
        Harness h;
        DurableState st = h.open(d.path);
        const StoredLane& p = st.sessions().at("p").lanes.at("a");
        const StoredLane& q = st.sessions().at("q").lanes.at("a");
        CPPUNIT_ASSERT_EQUAL(uint64_t(50), p.floor);
        CPPUNIT_ASSERT(p.isDone(51) && p.isDone(100) && !p.isDone(50));
        CPPUNIT_ASSERT_EQUAL(uint64_t(60), q.floor);
        CPPUNIT_ASSERT(!q.isDone(60) && !q.isDone(100));
        CPPUNIT_ASSERT_EQUAL(size_t(42), st.messages()["a"].size());  // 50 (p) and 60..100 (q)
    }

    void tornDoneRangesRecordIsCut() {
        TempDir d;
        {
            Harness h;
            h.open(d.path);
            h.j->append(sessionRec(RecordType::Open, "p"));
            h.j->append(sessionRec(RecordType::Subscribe, "p", "a", 1));
            for (int i = 0; i < 10; ++i) CPPUNIT_ASSERT(h.j->publishWait(0, "{}", "") == PublishStatus::Ok);
            h.j->appendDone("p", 0, 1, 1);
            h.j->seal();
        }
        fs::path seg;
        for (auto& e : fs::directory_iterator(d.path)) seg = e.path();
        const uint64_t good = fs::file_size(seg);
        {
            // kill -9 while acks 2..10 were being written: half a DoneRanges record.
            Record r;
            r.type = RecordType::DoneRanges;
            r.pid = "p";
            r.topic = "a";
            r.ranges = {{2, 10}};
            std::string extra;
            encode(extra, r);
            std::ofstream f(seg, std::ios::app | std::ios::binary);
            f.write(extra.data(), static_cast<std::streamsize>(extra.size() - 3));
        }
        Harness h;
        DurableState st = h.open(d.path);
        CPPUNIT_ASSERT_EQUAL(good, static_cast<uint64_t>(fs::file_size(seg)));
        const StoredLane& lane = st.sessions().at("p").lanes.at("a");
        CPPUNIT_ASSERT_EQUAL(uint64_t(2), lane.floor);  // those acks did not count: 2..10 resent
        CPPUNIT_ASSERT_EQUAL(size_t(9), st.messages()["a"].size());
    }

    void versionOneJournalIsReadAndAppendsGoToANewSegment() {
        TempDir d;
        // What the previous release wrote: a version 1 segment with one Done per ack.
        std::string v1(kSegmentMagicV1, kSegmentHeaderSize);
        encode(v1, sessionRec(RecordType::Open, "p"));
        encode(v1, sessionRec(RecordType::Subscribe, "p", "a", 1));
        for (uint64_t o = 1; o <= 3; ++o) encode(v1, message("a", o, o, "{\"v\":" + std::to_string(o) + "}"));
        encode(v1, sessionRec(RecordType::Done, "p", "a", 2));
        {
            std::ofstream f(d.path / "seg-00000001.sfj", std::ios::binary);
            f.write(v1.data(), static_cast<std::streamsize>(v1.size()));
        }
        {
            Harness h;
            DurableState st = h.open(d.path);
            const StoredLane& lane = st.sessions().at("p").lanes.at("a");
            CPPUNIT_ASSERT(!lane.isDone(1) && lane.isDone(2) && !lane.isDone(3));
            CPPUNIT_ASSERT_EQUAL(std::string("{\"v\":3}"), std::string(st.payloadOf(st.messages()["a"].at(3))));
            h.j->appendDone("p", 0, 3, 3);
            CPPUNIT_ASSERT(h.j->publishWait(0, "{}", "") == PublishStatus::Ok);
            h.j->seal();
        }
        CPPUNIT_ASSERT_EQUAL(v1.size(), static_cast<size_t>(fs::file_size(d.path / "seg-00000001.sfj")));  // untouched
        CPPUNIT_ASSERT(fs::exists(d.path / "seg-00000002.sfj"));
        Harness h;
        DurableState st = h.open(d.path);
        const StoredLane& lane = st.sessions().at("p").lanes.at("a");
        CPPUNIT_ASSERT(!lane.isDone(1) && lane.isDone(3) && !lane.isDone(4));
        CPPUNIT_ASSERT_EQUAL(uint64_t(5), h.j->nextOffset(0));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DurableJournalTest);
