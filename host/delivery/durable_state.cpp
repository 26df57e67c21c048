#include "delivery/durable_state.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace sf::delivery::durable {

void StoredLane::done(uint64_t first, uint64_t last) {
    if (last < floor) return;
    first = std::max(first, floor);
    // Merge with the ranges it overlaps or touches (no +1 that could wrap: offsets are u64).
    auto it = above.upper_bound(first);
    if (it != above.begin()) {
        auto prev = std::prev(it);
        if (prev->second >= first || prev->second == first - 1) {
            first = prev->first;
            last = std::max(last, prev->second);
            above.erase(prev);
        }
    }
    while (it != above.end() && (it->first <= last || it->first - 1 == last)) {
        last = std::max(last, it->second);
        it = above.erase(it);
    }
    if (first == floor && last != UINT64_MAX) floor = last + 1;  // ranges never touch: the next starts past floor
    else above.emplace(first, last);
}

bool StoredLane::isDone(uint64_t offset) const {
    if (offset < floor) return true;
    auto it = above.upper_bound(offset);
    return it != above.begin() && std::prev(it)->second >= offset;
}

std::vector<TopicMessages::Entry>& TopicMessages::own() {
    // Unshared when we hold the only reference: nobody else can take one from it then.
    if (entries_.use_count() > 1) entries_ = std::make_shared<std::vector<Entry>>(*entries_);
    return *entries_;
}

void TopicMessages::put(uint64_t offset, const StoredMessage& m) {
    std::vector<Entry>& v = own();
    if (v.empty() || v.back().first < offset) {
        v.emplace_back(offset, m);
        return;
    }
    auto it = std::lower_bound(v.begin(), v.end(), offset, [](const Entry& e, uint64_t o) { return e.first < o; });
    if (it != v.end() && it->first == offset) it->second = m;
    else v.emplace(it, offset, m);
}

TopicMessages::const_iterator TopicMessages::lower_bound(uint64_t offset) const {
    return std::lower_bound(entries_->begin(), entries_->end(), offset, [](const Entry& e, uint64_t o) { return e.first < o; });
}

const StoredMessage& TopicMessages::at(uint64_t offset) const {
    auto it = lower_bound(offset);
    if (it == end() || it->first != offset) throw std::out_of_range("durable state: no message at offset " + std::to_string(offset));
    return it->second;
}

size_t TopicMessages::count(uint64_t offset) const {
    auto it = lower_bound(offset);
    return it != end() && it->first == offset ? 1 : 0;
}

size_t TopicMessages::countIn(uint64_t first, uint64_t last) const {
    if (first > last) return 0;
    auto from = lower_bound(first);
    auto to = last == UINT64_MAX ? end() : lower_bound(last + 1);
    return static_cast<size_t>(to - from);
}

size_t pendingCount(const TopicMessages& msgs, const StoredLane& lane) {
    size_t n = static_cast<size_t>(msgs.end() - msgs.lower_bound(lane.floor));
    for (auto& [first, last] : lane.above) n -= msgs.countIn(first, last);  // ranges lie above floor, disjoint
    return n;
}

void DurableState::clear() {
    sessions_.clear();
    messages_.clear();
    lastOffset_.clear();
    maxNumber_ = 0;
    cache_ = TopicCache();
}

void DurableState::addMessage(std::string_view topic, uint64_t offset, uint64_t number, uint32_t keyBytes, uint32_t payloadBytes,
                              uint32_t segment, uint64_t position, uint32_t size) {
    if (!cache_.messages || topic != cache_.topic) {
        cache_.topic.assign(topic.data(), topic.size());
        cache_.messages = &messages_[cache_.topic];
        cache_.lastOffset = &lastOffset_[cache_.topic];
    }
    StoredMessage m;
    m.number = number;
    m.segment = segment;
    m.position = position;
    m.size = size;
    m.keyBytes = keyBytes;
    m.payloadBytes = payloadBytes;
    cache_.messages->put(offset, m);
    *cache_.lastOffset = std::max(*cache_.lastOffset, offset);
    maxNumber_ = std::max(maxNumber_, number);
}

std::string_view payloadOf(const SegmentBytes& bytes, const StoredMessage& m) {
    if (m.payloadBytes > m.size) return std::string_view();
    std::string_view rec = bytes.bytes(m.segment, m.position, m.size);
    return rec.size() == m.size ? rec.substr(m.size - m.payloadBytes) : std::string_view();
}

std::string_view keyOf(const SegmentBytes& bytes, const StoredMessage& m) {
    const uint64_t tail = uint64_t(m.payloadBytes) + 4 + m.keyBytes;  // key, payload length, payload
    if (tail > m.size) return std::string_view();
    std::string_view rec = bytes.bytes(m.segment, m.position, m.size);
    return rec.size() == m.size ? rec.substr(m.size - tail, m.keyBytes) : std::string_view();
}

void DurableState::apply(const Record& r, uint32_t segment, uint64_t position, uint32_t size) {
    switch (r.type) {
        case RecordType::Message:
            addMessage(r.topic, r.offset, r.messageNumber, static_cast<uint32_t>(r.key.size()), static_cast<uint32_t>(r.payload.size()),
                       segment, position, size);
            break;
        case RecordType::Open: {
            StoredSession& s = sessions_[r.pid];
            s.id = r.id;
            s.principal = r.principal;
            s.token = r.token;
            break;
        }
        case RecordType::Subscribe: {
            auto it = sessions_.find(r.pid);
            if (it == sessions_.end()) break;
            StoredLane lane;
            lane.floor = r.offset;
            it->second.lanes[r.topic] = std::move(lane);
            break;
        }
        case RecordType::Unsubscribe: {
            auto it = sessions_.find(r.pid);
            if (it != sessions_.end()) it->second.lanes.erase(r.topic);
            break;
        }
        case RecordType::Done: {
            auto it = sessions_.find(r.pid);
            if (it == sessions_.end()) break;
            auto lit = it->second.lanes.find(r.topic);
            if (lit != it->second.lanes.end()) lit->second.done(r.offset);
            break;
        }
        case RecordType::DoneRanges: {
            auto it = sessions_.find(r.pid);
            if (it == sessions_.end()) break;
            auto lit = it->second.lanes.find(r.topic);
            if (lit == it->second.lanes.end()) break;
            for (auto& [first, last] : r.ranges) lit->second.done(first, last);
            break;
        }
        case RecordType::End:
            sessions_.erase(r.pid);
            break;
        case RecordType::Counters:
            maxNumber_ = std::max(maxNumber_, r.messageNumber);
            for (auto& [t, o] : r.lastOffsets) {
                uint64_t& last = lastOffset_[t];
                last = std::max(last, o);
            }
            break;
        case RecordType::Snapshot:
            clear();
            break;
    }
}

uint64_t DurableState::lastOffset(const std::string& topic) const {
    auto it = lastOffset_.find(topic);
    return it == lastOffset_.end() ? 0 : it->second;
}

uint64_t DurableState::neededFrom(const std::string& topic) const {
    uint64_t from = lastOffset(topic) + 1;
    for (auto& kv : sessions_) {
        auto it = kv.second.lanes.find(topic);
        if (it != kv.second.lanes.end()) from = std::min(from, it->second.floor);
    }
    return from;
}

uint64_t DurableState::prune(const std::map<std::string, uint64_t>* keepFrom) {
    uint64_t bytes = 0;
    for (auto& [topic, msgs] : messages_) {
        uint64_t keep = lastOffset(topic) + 1;
        if (keepFrom) {
            auto it = keepFrom->find(topic);
            if (it != keepFrom->end()) keep = std::min(keep, it->second);
        }
        // A message is needed while some lane that takes it has not done it: the union of
        // every lane's gaps (from its floor, between its done ranges, after the last one),
        // merged once, then one walk over the messages. Per-message lane checks would cost
        // messages x lanes when most lanes are done (refused runs; docs/recovery.md).
        std::vector<std::pair<uint64_t, uint64_t>> need;  // inclusive
        for (auto& kv : sessions_) {
            auto lt = kv.second.lanes.find(topic);
            if (lt == kv.second.lanes.end()) continue;
            const StoredLane& lane = lt->second;
            uint64_t from = lane.floor;
            bool open = true;
            for (const auto& [first, last] : lane.above) {
                if (first > from) need.emplace_back(from, first - 1);
                if (last == UINT64_MAX) {
                    open = false;
                    break;
                }
                from = std::max(from, last + 1);
            }
            if (open) need.emplace_back(from, UINT64_MAX);
        }
        std::sort(need.begin(), need.end());
        std::vector<std::pair<uint64_t, uint64_t>> merged;
        for (const auto& iv : need) {
            if (!merged.empty() && (iv.first <= merged.back().second || iv.first - 1 == merged.back().second))
                merged.back().second = std::max(merged.back().second, iv.second);
            else merged.push_back(iv);
        }
        size_t j = 0;  // the array is in offset order: one walk alongside the merged gaps
        msgs.eraseIf([&](const TopicMessages::Entry& e) {
            const uint64_t o = e.first;
            while (j < merged.size() && merged[j].second < o) ++j;
            const bool needed = o >= keep || (j < merged.size() && merged[j].first <= o);
            if (needed) bytes += e.second.payloadBytes;
            return !needed;
        });
    }
    return bytes;
}

size_t DurableState::messageCount() const {
    size_t n = 0;
    for (auto& kv : messages_) n += kv.second.size();
    return n;
}

}  // namespace sf::delivery::durable
