#include "delivery/durable_record.hpp"

#include <cstring>

#include "../../plugins/storage-disk/crc32c.hpp"

namespace sf::delivery::durable {

namespace {

void put32(std::string& out, uint32_t v) {
    char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
    out.append(b, 4);
}
void put64(std::string& out, uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
    out.append(b, 8);
}
void putStr(std::string& out, std::string_view s) {
    put32(out, static_cast<uint32_t>(s.size()));
    out.append(s.data(), s.size());
}
uint32_t get32(const char* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

struct Reader {
    std::string_view in;
    bool ok = true;
    uint64_t u64() {
        if (in.size() < 8) return ok = false, 0;
        uint64_t v = 0;
        for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
        in.remove_prefix(8);
        return v;
    }
    std::string str() {
        std::string s;
        str(s);
        return s;
    }
    // Into out, reusing its buffer: a replay decodes every record into the same Record.
    void str(std::string& out) {
        std::string_view v = view();
        out.assign(v.data(), v.size());
    }
    std::string_view view() {
        if (in.size() < 4) return ok = false, std::string_view();
        const uint32_t n = get32(in.data());
        in.remove_prefix(4);
        if (in.size() < n) return ok = false, std::string_view();
        std::string_view v = in.substr(0, n);
        in.remove_prefix(n);
        return v;
    }
};

}  // namespace

uint32_t crc(std::string_view bytes) { return sfdisk::crc32c(0, bytes.data(), bytes.size()); }

void encode(std::string& out, const Record& r) {
    const size_t at = out.size();
    out.append(kRecordHeaderSize, '\0');
    out.push_back(static_cast<char>(r.type));
    switch (r.type) {
        case RecordType::Message:
            putStr(out, r.topic);
            put64(out, r.offset);
            put64(out, r.messageNumber);
            putStr(out, r.key);
            putStr(out, r.payload);
            break;
        case RecordType::Open:
            putStr(out, r.pid);
            putStr(out, r.id);
            putStr(out, r.principal);
            putStr(out, r.token);
            break;
        case RecordType::Subscribe:
        case RecordType::Done:
            putStr(out, r.pid);
            putStr(out, r.topic);
            put64(out, r.offset);
            break;
        case RecordType::Unsubscribe:
            putStr(out, r.pid);
            putStr(out, r.topic);
            break;
        case RecordType::End:
            putStr(out, r.pid);
            break;
        case RecordType::Counters:
            put64(out, r.messageNumber);
            put32(out, static_cast<uint32_t>(r.lastOffsets.size()));
            for (auto& [t, o] : r.lastOffsets) {
                putStr(out, t);
                put64(out, o);
            }
            break;
        case RecordType::Snapshot:
            break;
        case RecordType::DoneRanges:
            putStr(out, r.pid);
            putStr(out, r.topic);
            put32(out, static_cast<uint32_t>(r.ranges.size()));
            for (auto& [first, last] : r.ranges) {
                put64(out, first);
                put64(out, last);
            }
            break;
    }
    const size_t bodyLen = out.size() - at - kRecordHeaderSize;
    std::string hdr;
    put32(hdr, static_cast<uint32_t>(bodyLen));
    put32(hdr, crc(std::string_view(out).substr(at + kRecordHeaderSize, bodyLen)));
    std::memcpy(&out[at], hdr.data(), kRecordHeaderSize);
}

bool decodeMessage(std::string_view body, MessageView& m) {
    if (body.empty() || static_cast<uint8_t>(body[0]) != uint8_t(RecordType::Message)) return false;
    Reader rd{body.substr(1)};
    m.topic = rd.view();
    m.offset = rd.u64();
    m.number = rd.u64();
    m.key = rd.view();
    m.payload = rd.view();
    return rd.ok && rd.in.empty();
}

bool decodeBody(std::string_view body, Record& r) {
    if (body.empty()) return false;
    Reader rd{body.substr(1)};
    // Reset field by field, keeping the strings' buffers (no allocation per record).
    for (std::string* f : {&r.pid, &r.topic, &r.key, &r.payload, &r.id, &r.principal, &r.token}) f->clear();
    r.offset = r.messageNumber = 0;
    r.lastOffsets.clear();
    r.ranges.clear();
    const uint8_t t = static_cast<uint8_t>(body[0]);
    switch (t) {
        case uint8_t(RecordType::Message): {
            MessageView m;
            if (!decodeMessage(body, m)) return false;
            r.topic.assign(m.topic.data(), m.topic.size());
            r.offset = m.offset;
            r.messageNumber = m.number;
            r.key.assign(m.key.data(), m.key.size());
            r.payload.assign(m.payload.data(), m.payload.size());
            r.type = RecordType::Message;
            return true;
        }
        case uint8_t(RecordType::Open):
            rd.str(r.pid);
            rd.str(r.id);
            rd.str(r.principal);
            rd.str(r.token);
            break;
        case uint8_t(RecordType::Subscribe):
        case uint8_t(RecordType::Done):
            rd.str(r.pid);
            rd.str(r.topic);
            r.offset = rd.u64();
            break;
        case uint8_t(RecordType::Unsubscribe):
            rd.str(r.pid);
            rd.str(r.topic);
            break;
        case uint8_t(RecordType::End):
            rd.str(r.pid);
            break;
        case uint8_t(RecordType::Counters): {
            r.messageNumber = rd.u64();
            if (rd.in.size() < 4) return false;
            uint32_t n = get32(rd.in.data());
            rd.in.remove_prefix(4);
            // Each entry takes at least 12 bytes: a huge count cannot make us reserve memory.
            if (n > rd.in.size() / 12) return false;
            for (uint32_t i = 0; i < n && rd.ok; ++i) {
                std::string topic = rd.str();
                uint64_t o = rd.u64();
                r.lastOffsets.emplace_back(std::move(topic), o);
            }
            break;
        }
        case uint8_t(RecordType::Snapshot):
            break;
        case uint8_t(RecordType::DoneRanges): {
            rd.str(r.pid);
            rd.str(r.topic);
            if (!rd.ok || rd.in.size() < 4) return false;
            uint32_t n = get32(rd.in.data());
            rd.in.remove_prefix(4);
            // Each range takes 16 bytes: a huge count cannot make us reserve memory.
            if (n == 0 || n > rd.in.size() / 16) return false;
            r.ranges.reserve(n);
            for (uint32_t i = 0; i < n; ++i) {
                uint64_t first = rd.u64();
                uint64_t last = rd.u64();
                if (first > last) return false;
                r.ranges.emplace_back(first, last);
            }
            break;
        }
        default:
            return false;
    }
    r.type = static_cast<RecordType>(t);
    return rd.ok && rd.in.empty();
}

int segmentVersion(std::string_view data) {
    if (data.size() < kSegmentHeaderSize) return 0;
    if (std::memcmp(data.data(), kSegmentMagic, kSegmentHeaderSize) == 0) return 2;
    if (std::memcmp(data.data(), kSegmentMagicV1, kSegmentHeaderSize) == 0) return 1;
    return 0;
}

ScanStep scanRecords(std::string_view data, size_t position, int version, bool last, const RecordVisitor& visit) {
    ScanStep st;
    size_t pos = 0;
    Record r;
    MessageView m;
    while (pos < data.size()) {
        if (data.size() - pos < kRecordHeaderSize) {
            if (last) st.end = ScanEnd::Torn;
            else st.need = kRecordHeaderSize;
            break;
        }
        const uint32_t len = get32(data.data() + pos);
        const uint32_t sum = get32(data.data() + pos + 4);
        if (len == 0 || len > kMaxBodyBytes) {
            st.end = ScanEnd::Corrupt;
            break;
        }
        if (data.size() - pos - kRecordHeaderSize < len) {
            if (last) st.end = ScanEnd::Torn;
            else st.need = kRecordHeaderSize + len;
            break;
        }
        std::string_view body = data.substr(pos + kRecordHeaderSize, len);
        if (crc(body) != sum) {
            st.end = ScanEnd::Corrupt;
            break;
        }
        const size_t at = position + pos, size = kRecordHeaderSize + len;
        if (visit.onMessage && static_cast<uint8_t>(body[0]) == uint8_t(RecordType::Message)) {
            if (!decodeMessage(body, m)) {
                st.end = ScanEnd::Corrupt;
                break;
            }
            visit.onMessage(m, at, size);
        } else {
            if (!decodeBody(body, r) || (version < 2 && r.type == RecordType::DoneRanges)) {
                st.end = ScanEnd::Corrupt;
                break;
            }
            if (visit.onRecord) visit.onRecord(r, at, size);
        }
        pos += size;
        st.consumed = pos;
        ++st.records;
    }
    return st;
}

ScanResult scanSegment(std::string_view data, const RecordVisitor& visit) {
    ScanResult res;
    if (data.size() < kSegmentHeaderSize) {
        const bool prefix = data.empty() || std::memcmp(data.data(), kSegmentMagic, data.size()) == 0 ||
                            std::memcmp(data.data(), kSegmentMagicV1, data.size()) == 0;
        res.end = prefix ? ScanEnd::Torn : ScanEnd::Corrupt;
        return res;
    }
    const int version = segmentVersion(data);
    if (version == 0) {
        res.end = ScanEnd::Corrupt;
        return res;
    }
    ScanStep st = scanRecords(data.substr(kSegmentHeaderSize), kSegmentHeaderSize, version, true, visit);
    res.goodEnd = kSegmentHeaderSize + st.consumed;
    res.end = st.end;
    res.records = st.records;
    return res;
}

ScanResult scanSegment(std::string_view data, const std::function<void(const Record&, size_t, size_t)>& onRecord) {
    RecordVisitor visit;
    visit.onRecord = onRecord;
    return scanSegment(data, visit);
}

}  // namespace sf::delivery::durable
