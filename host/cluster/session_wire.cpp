#include "cluster/session_wire.hpp"

#include <charconv>

#include "cluster/cluster_wire.hpp"

namespace sf::cluster {

using delivery::HandedMessage;
using delivery::HandOver;
using delivery::RemoteSessionRecord;

namespace {

// Canonical decimal only, as std::to_string writes it: no sign, no leading zero.
bool toU64(const std::string& s, uint64_t& out) {
    if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

std::string encodeMessage(const HandedMessage& m) {
    std::vector<std::string> f = {m.topic, m.messageId, m.streamId, m.payloadJson, std::to_string(m.retries)};
    f.insert(f.end(), m.attachments.begin(), m.attachments.end());
    return encodeRecord(f);
}

// Every field takes at least two bytes ("0:"): the input bounds the count.
size_t fieldCap(const std::string& data) { return data.size() / 2 + 1; }

bool decodeMessage(const std::string& data, HandedMessage& m) {
    auto f = decodeRecord(data, fieldCap(data));
    if (!f || f->size() < 5) return false;
    uint64_t retries = 0;
    if (!toU64((*f)[4], retries) || retries > UINT32_MAX) return false;
    m.topic = std::move((*f)[0]);
    m.messageId = std::move((*f)[1]);
    m.streamId = std::move((*f)[2]);
    m.payloadJson = std::move((*f)[3]);
    m.retries = static_cast<uint32_t>(retries);
    m.attachments.assign(std::make_move_iterator(f->begin() + 5), std::make_move_iterator(f->end()));
    return !m.topic.empty() && !m.messageId.empty();
}

}  // namespace

std::string encodeSessionRecord(const RemoteSessionRecord& r) {
    std::vector<std::string> f = {r.node, r.ns, r.id, r.principal};
    for (auto& [topic, floor] : r.topics) {
        f.push_back(topic);
        f.push_back(floor);
    }
    return encodeRecord(f);
}

std::optional<RemoteSessionRecord> decodeSessionRecord(const std::string& data) {
    auto f = decodeRecord(data, fieldCap(data));
    if (!f || f->size() < 4 || f->size() % 2 != 0) return std::nullopt;
    RemoteSessionRecord r;
    r.node = (*f)[0];
    r.ns = (*f)[1];
    r.id = (*f)[2];
    r.principal = (*f)[3];
    if (r.node.empty() || r.ns.empty() || r.id.empty()) return std::nullopt;
    for (size_t i = 4; i + 1 < f->size(); i += 2) {
        if ((*f)[i].empty()) return std::nullopt;
        r.topics.emplace_back((*f)[i], (*f)[i + 1]);
    }
    return r;
}

std::string sessionRecordOwnerPrefix(const std::string& node) { return encodeRecord({node}); }

std::string encodeHandOver(const HandOver& h) {
    std::vector<std::string> f = {h.ownerHeld ? "1" : "0", std::to_string(h.spillLost), std::to_string(h.pending.size()),
                                  std::to_string(h.history.size())};
    for (auto& m : h.pending) f.push_back(encodeMessage(m));
    for (auto& m : h.history) f.push_back(encodeMessage(m));
    return encodeRecord(f);
}

std::optional<HandOver> decodeHandOver(const std::string& data) {
    auto f = decodeRecord(data, fieldCap(data));
    if (!f || f->size() < 4) return std::nullopt;
    HandOver h;
    h.ownerAnswered = true;
    if ((*f)[0] != "0" && (*f)[0] != "1") return std::nullopt;
    h.ownerHeld = (*f)[0] == "1";
    uint64_t pending = 0, history = 0;
    if (!toU64((*f)[1], h.spillLost) || !toU64((*f)[2], pending) || !toU64((*f)[3], history)) return std::nullopt;
    if (pending > f->size() || history > f->size() || 4 + pending + history != f->size()) return std::nullopt;
    h.pending.resize(pending);
    h.history.resize(history);
    for (uint64_t i = 0; i < pending; ++i)
        if (!decodeMessage((*f)[4 + i], h.pending[i])) return std::nullopt;
    for (uint64_t i = 0; i < history; ++i)
        if (!decodeMessage((*f)[4 + pending + i], h.history[i])) return std::nullopt;
    return h;
}

}  // namespace sf::cluster
