// The durable journal's start scan (docs/recovery.md, "Restart"): a segment file read in
// small pieces gives exactly what a scan of the whole file gives (records, good end, torn or
// corrupt) at every cut and with records larger than the piece; message records come out as
// views with the same fields as a decoded Record; a topic's messages are kept in a flat
// array by offset (in order, replaced, out of order); restored lanes count what they owe
// without listing it; and a journal reopened reads keys and payloads back from the mapping.
#include <cppunit/extensions/HelperMacros.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "temp_dir.hpp"
#include "delivery/durable_journal.hpp"
#include "delivery/durable_record.hpp"
#include "delivery/durable_segment_file.hpp"
#include "delivery/durable_state.hpp"

using namespace sf::delivery;
using namespace sf::delivery::durable;
namespace fs = std::filesystem;

namespace {

Record message(const std::string& topic, uint64_t offset, uint64_t n, const std::string& key, const std::string& payload) {
    Record r;
    r.type = RecordType::Message;
    r.topic = topic;
    r.offset = offset;
    r.messageNumber = n;
    r.key = key;
    r.payload = payload;
    return r;
}

Record session(RecordType t, const std::string& pid, const std::string& topic = "", uint64_t offset = 0) {
    Record r;
    r.type = t;
    r.pid = pid;
    r.topic = topic;
    r.offset = offset;
    return r;
}

// What a scan saw, one line per record: enough to compare two scans field by field.
struct Seen {
    std::vector<std::string> lines;
    RecordVisitor visitor(bool views) {
        RecordVisitor v;
        if (views)
            v.onMessage = [this](const MessageView& m, size_t pos, size_t size) {
                lines.push_back("M " + std::string(m.topic) + " " + std::to_string(m.offset) + " " + std::to_string(m.number) + " " +
                                std::string(m.key) + " " + std::string(m.payload) + " @" + std::to_string(pos) + "+" + std::to_string(size));
            };
        v.onRecord = [this](const Record& r, size_t pos, size_t size) {
            if (r.type == RecordType::Message)
                lines.push_back("M " + r.topic + " " + std::to_string(r.offset) + " " + std::to_string(r.messageNumber) + " " + r.key + " " +
                                r.payload + " @" + std::to_string(pos) + "+" + std::to_string(size));
            else lines.push_back("R " + std::to_string(int(r.type)) + " " + r.pid + " " + r.topic + " " + std::to_string(r.offset) + " @" +
                                 std::to_string(pos) + "+" + std::to_string(size));
        };
        return v;
    }
};

// A segment of mixed records, one message larger than the pieces the tests read with.
std::string mixedSegment(std::vector<size_t>& ends) {
    std::string s(kSegmentMagic, kSegmentHeaderSize);
    std::vector<Record> recs = {session(RecordType::Open, "p"), session(RecordType::Subscribe, "p", "a", 1),
                                message("a", 1, 10, "k1", "{\"one\":1}"), message("b", 1, 11, "", "{}"),
                                message("a", 2, 12, "key-two", std::string(300, 'z')), session(RecordType::Done, "p", "a", 1),
                                message("a", 3, 13, "", "[3]")};
    for (auto& r : recs) {
        encode(s, r);
        ends.push_back(s.size());
    }
    return s;
}

ScanResult scanFile(const fs::path& file, const RecordVisitor& v, size_t chunk) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    std::string buf;
    ScanResult r = scanSegmentFile(fd, fs::file_size(file), v, buf, chunk);
    ::close(fd);
    return r;
}

void writeFile(const fs::path& file, std::string_view bytes) {
    std::ofstream f(file, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

class DurableReplayTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(DurableReplayTest);
    CPPUNIT_TEST(messageViewsMatchDecodedRecords);
    CPPUNIT_TEST(fileReadInPiecesMatchesWholeScanAtEveryCut);
    CPPUNIT_TEST(fileReadInPiecesStopsAtAFlippedByte);
    CPPUNIT_TEST(topicMessagesStayInOffsetOrder);
    CPPUNIT_TEST(pendingCountLeavesOutDoneRanges);
    CPPUNIT_TEST(reopenedJournalReadsKeysAndPayloadsFromTheMapping);
    CPPUNIT_TEST_SUITE_END();

public:
    void messageViewsMatchDecodedRecords() {
        std::vector<size_t> ends;
        const std::string seg = mixedSegment(ends);
        Seen decoded, viewed;
        ScanResult a = scanSegment(seg, decoded.visitor(false));
        ScanResult b = scanSegment(seg, viewed.visitor(true));
        CPPUNIT_ASSERT(a.end == ScanEnd::Clean && b.end == ScanEnd::Clean);
        CPPUNIT_ASSERT_EQUAL(ends.size(), b.records);
        CPPUNIT_ASSERT(decoded.lines == viewed.lines);
        CPPUNIT_ASSERT_EQUAL(std::string("M a 2 12 key-two " + std::string(300, 'z') + " @") ,
                             viewed.lines[4].substr(0, viewed.lines[4].find('@') + 1));
        // A Message body with a byte too many, or a field cut short, is not a message.
        std::string body = seg.substr(ends[1] + kRecordHeaderSize, ends[2] - ends[1] - kRecordHeaderSize);
        MessageView m;
        Record r;
        CPPUNIT_ASSERT(decodeMessage(body, m) && decodeBody(body, r));
        CPPUNIT_ASSERT(!decodeMessage(body + "x", m) && !decodeBody(body + "x", r));
        CPPUNIT_ASSERT(!decodeMessage(body.substr(0, body.size() - 1), m) && !decodeBody(body.substr(0, body.size() - 1), r));
        CPPUNIT_ASSERT(!decodeMessage(std::string(1, char(RecordType::End)) + body.substr(1), m));
    }

    void fileReadInPiecesMatchesWholeScanAtEveryCut() {
        TempDir d;
        std::vector<size_t> ends;
        const std::string seg = mixedSegment(ends);
        const fs::path file = d.path / "seg";
        // Every cut of the file (what a crash can leave), read in pieces smaller than most
        // records, than one, and larger than all: the same as scanning the whole string.
        for (size_t cut = 0; cut <= seg.size(); ++cut) {
            writeFile(file, std::string_view(seg).substr(0, cut));
            Seen whole;
            ScanResult want = scanSegment(std::string_view(seg).substr(0, cut), whole.visitor(true));
            for (size_t chunk : {size_t(16), size_t(40), size_t(100), size_t(4096)}) {
                Seen pieces;
                ScanResult got = scanFile(file, pieces.visitor(true), chunk);
                CPPUNIT_ASSERT_EQUAL_MESSAGE("cut " + std::to_string(cut) + " chunk " + std::to_string(chunk), want.goodEnd, got.goodEnd);
                CPPUNIT_ASSERT(want.end == got.end);
                CPPUNIT_ASSERT_EQUAL(want.records, got.records);
                CPPUNIT_ASSERT(whole.lines == pieces.lines);
            }
        }
    }

    void fileReadInPiecesStopsAtAFlippedByte() {
        TempDir d;
        std::vector<size_t> ends;
        std::string seg = mixedSegment(ends);
        seg[ends[3] + kRecordHeaderSize + 40] ^= 0x01;  // inside the large message's payload
        const fs::path file = d.path / "seg";
        writeFile(file, seg);
        Seen pieces;
        ScanResult got = scanFile(file, pieces.visitor(true), 64);
        CPPUNIT_ASSERT(got.end == ScanEnd::Corrupt);
        CPPUNIT_ASSERT_EQUAL(ends[3], got.goodEnd);
        CPPUNIT_ASSERT_EQUAL(size_t(4), pieces.lines.size());
        seg[0] = 'X';
        writeFile(file, seg);
        got = scanFile(file, pieces.visitor(true), 64);
        CPPUNIT_ASSERT(got.end == ScanEnd::Corrupt);
        CPPUNIT_ASSERT_EQUAL(size_t(0), got.goodEnd);
    }

    void topicMessagesStayInOffsetOrder() {
        TopicMessages t;
        auto msg = [](uint64_t n) {
            StoredMessage m;
            m.number = n;
            return m;
        };
        for (uint64_t o : {3, 5, 9}) t.put(o, msg(o));
        t.put(5, msg(50));  // a later record for the same offset wins
        t.put(1, msg(1));   // out of order: put in its place
        t.put(7, msg(7));
        std::vector<uint64_t> offsets;
        for (auto& [o, m] : t) offsets.push_back(o);
        CPPUNIT_ASSERT((offsets == std::vector<uint64_t>{1, 3, 5, 7, 9}));
        CPPUNIT_ASSERT_EQUAL(uint64_t(50), t.at(5).number);
        CPPUNIT_ASSERT_EQUAL(size_t(0), t.count(4));
        CPPUNIT_ASSERT_THROW(t.at(4), std::out_of_range);
        CPPUNIT_ASSERT_EQUAL(uint64_t(7), t.lower_bound(6)->first);
        CPPUNIT_ASSERT_EQUAL(size_t(3), t.countIn(2, 7));
        CPPUNIT_ASSERT_EQUAL(size_t(5), t.countIn(0, UINT64_MAX));
        // A copy shares the array until one side changes it; the other never sees that.
        const TopicMessages copy = t;
        CPPUNIT_ASSERT(copy.sharesWith(t));
        t.eraseIf([](const TopicMessages::Entry& e) { return e.first % 3 == 0; });
        CPPUNIT_ASSERT(!copy.sharesWith(t));
        CPPUNIT_ASSERT_EQUAL(size_t(3), t.size());
        CPPUNIT_ASSERT_EQUAL(size_t(0), t.count(9));
        CPPUNIT_ASSERT_EQUAL(size_t(5), copy.size());
        TopicMessages again = copy;
        again.put(11, msg(11));
        CPPUNIT_ASSERT_EQUAL(size_t(5), copy.size());
        CPPUNIT_ASSERT_EQUAL(size_t(6), again.size());
        TopicMessages moved = std::move(again);  // a move leaves a usable array behind
        CPPUNIT_ASSERT_EQUAL(size_t(6), again.size() + 0 * moved.size());
    }

    void pendingCountLeavesOutDoneRanges() {
        DurableState st;
        for (uint64_t o = 1; o <= 20; ++o) st.apply(message("a", o, o, "", "{}"), 1, 0, 0);
        StoredLane lane;
        lane.floor = 5;
        lane.done(8, 10);
        lane.done(15);
        lane.done(20);
        const TopicMessages& msgs = st.messages()["a"];
        size_t visited = 0;
        for (auto& [o, m] : msgs)
            if (!lane.isDone(o)) ++visited;
        CPPUNIT_ASSERT_EQUAL(size_t(11), visited);  // 5..20 less 8, 9, 10, 15, 20
        CPPUNIT_ASSERT_EQUAL(visited, pendingCount(msgs, lane));
        lane.done(5, 30);
        CPPUNIT_ASSERT_EQUAL(size_t(0), pendingCount(msgs, lane));
    }

    void reopenedJournalReadsKeysAndPayloadsFromTheMapping() {
        TempDir d;
        std::atomic<uint64_t> counter{0};
        auto journal = [&] {
            JournalOptions o;
            o.dir = d.path.string();
            o.topics = {"a", "b"};
            o.messageCounter = &counter;
            o.segmentBytes = 4096;  // several segments
            JournalHooks h;
            h.admit = [](size_t, uint64_t, uint64_t, uint64_t) { return true; };
            return std::make_unique<DurableJournal>(o, h);
        };
        {
            auto j = journal();
            j->open();
            j->start();
            j->append(session(RecordType::Open, "p"));
            j->append(session(RecordType::Subscribe, "p", "a", 1));
            j->append(session(RecordType::Subscribe, "p", "b", 1));
            for (int i = 0; i < 60; ++i)
                CPPUNIT_ASSERT(j->publishWait(i % 2, "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + std::string(100, 'p') + "\"}",
                                              i % 3 ? "key" + std::to_string(i) : "") == PublishStatus::Ok);
            j->seal();
        }
        size_t segments = 0;
        for (auto& e : fs::directory_iterator(d.path)) segments += e.path().extension() == ".sfj";
        CPPUNIT_ASSERT(segments > 1);
        auto j = journal();
        DurableState st = j->open();
        CPPUNIT_ASSERT_EQUAL(size_t(30), st.messages()["a"].size());
        CPPUNIT_ASSERT_EQUAL(size_t(30), st.messages()["b"].size());
        for (int i = 0; i < 60; ++i) {
            const StoredMessage& m = st.messages()[i % 2 ? "b" : "a"].at(uint64_t(i / 2 + 1));
            CPPUNIT_ASSERT_EQUAL(uint64_t(i + 1), m.number);
            CPPUNIT_ASSERT_EQUAL("{\"i\":" + std::to_string(i) + ",\"pad\":\"" + std::string(100, 'p') + "\"}", std::string(st.payloadOf(m)));
            CPPUNIT_ASSERT_EQUAL(i % 3 ? "key" + std::to_string(i) : std::string(), std::string(st.keyOf(m)));
        }
        // A copy shares the mapping; without one nothing is read. What the copy adds stays
        // in the copy (its topic cache points into its own arrays).
        DurableState copy = st;
        CPPUNIT_ASSERT_EQUAL(std::string(st.payloadOf(st.messages()["a"].at(1))), std::string(copy.payloadOf(copy.messages()["a"].at(1))));
        for (const char* t : {"b", "a"}) {  // b: the topic the replay added last
            copy.addMessage(t, 100, 100, 0, 0, 1, 0, 0);
            CPPUNIT_ASSERT_EQUAL(size_t(31), copy.messages()[t].size());
            CPPUNIT_ASSERT_EQUAL(size_t(30), st.messages()[t].size());
            st.addMessage(t, 101, 101, 0, 0, 1, 0, 0);
            CPPUNIT_ASSERT(!copy.messages()[t].count(101) && st.messages()[t].count(101));
        }
        DurableState none;
        CPPUNIT_ASSERT(none.payloadOf(st.messages()["a"].at(1)).empty());
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(DurableReplayTest);
