#include "delivery/durable_state.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>
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

void DurableState::clear() {
    sessions_.clear();
    messages_.clear();
    lastOffset_.clear();
    maxNumber_ = 0;
}

void DurableState::apply(const Record& r, uint32_t segment, uint64_t position, uint32_t size) {
    switch (r.type) {
        case RecordType::Message: {
            StoredMessage& m = messages_[r.topic][r.offset];
            m.number = r.messageNumber;
            m.segment = segment;
            m.position = position;
            m.size = size;
            m.payloadBytes = r.payload.size();
            uint64_t& last = lastOffset_[r.topic];
            last = std::max(last, r.offset);
            maxNumber_ = std::max(maxNumber_, r.messageNumber);
            break;
        }
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
        size_t j = 0;
        for (auto it = msgs.begin(); it != msgs.end();) {
            const uint64_t o = it->first;
            while (j < merged.size() && merged[j].second < o) ++j;
            const bool needed = o >= keep || (j < merged.size() && merged[j].first <= o);
            if (!needed) {
                it = msgs.erase(it);
                continue;
            }
            bytes += it->second.payloadBytes;
            ++it;
        }
    }
    return bytes;
}

void DurableState::dropPayloads() {
    for (auto& [topic, msgs] : messages_)
        for (auto& kv : msgs) kv.second.key = kv.second.payload = std::string_view();
    pin_.reset();
}

size_t DurableState::messageCount() const {
    size_t n = 0;
    for (auto& kv : messages_) n += kv.second.size();
    return n;
}

}  // namespace sf::delivery::durable
