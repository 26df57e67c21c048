#include "store.hpp"

#include "json_util.hpp"
#include "persistence.hpp"

#include <charconv>

namespace hpkv {
namespace {

bool parseInt64(const std::string& s, std::int64_t& out) {
    if (s.empty()) return false;
    const char* b = s.data();
    const char* e = b + s.size();
    if (*b == '+') ++b;  // from_chars rejects '+', but "+5" is a fair decimal
    if (b == e) return false;
    auto [p, ec] = std::from_chars(b, e, out);
    return ec == std::errc() && p == e;
}

}  // namespace

Store::Store(std::unique_ptr<Persistence> persistence, std::size_t maxValueBytes)
    : log_(std::move(persistence)), maxValueBytes_(maxValueBytes) {}

Store::~Store() = default;

std::uint64_t Store::load() {
    std::lock_guard<std::mutex> lk(mu_);
    if (!log_) return 0;
    auto stats = log_->open(data_);
    liveBytes_ = 0;
    for (const auto& [k, v] : data_) liveBytes_ += Persistence::recordSize(k.size(), v.size());
    log_->maybeCompact(data_, liveBytes_);
    return stats.records;
}

std::size_t Store::size() const {
    std::lock_guard<std::mutex> lk(mu_);
    return data_.size();
}

std::optional<std::string> Store::get(const std::string& key) const {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = data_.find(key);
    if (it == data_.end()) return std::nullopt;
    return it->second;
}

Status Store::writeLocked(const std::string& key, std::string value) {
    if (log_ && !log_->appendPut(key, value)) return Status::IoError;
    auto it = data_.find(key);
    if (it != data_.end()) {
        liveBytes_ -= Persistence::recordSize(key.size(), it->second.size());
        it->second = std::move(value);
    } else {
        it = data_.emplace(key, std::move(value)).first;
    }
    liveBytes_ += Persistence::recordSize(key.size(), it->second.size());
    if (listener_) listener_(key, &it->second);
    afterWriteLocked();
    return Status::Ok;
}

void Store::afterWriteLocked() {
    if (log_) log_->maybeCompact(data_, liveBytes_);
}

Status Store::set(const std::string& key, const std::string& value) {
    std::lock_guard<std::mutex> lk(mu_);
    return writeLocked(key, value);
}

Status Store::patch(const std::string& key, const std::string& value) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = data_.find(key);
    // PATCH on a missing key creates it (what zustand-multiplayer relies on).
    std::string merged = it == data_.end() ? value : applyPatch(it->second, value);
    if (merged.size() > maxValueBytes_) return Status::TooLarge;
    return writeLocked(key, std::move(merged));
}

Status Store::remove(const std::string& key) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = data_.find(key);
    if (it == data_.end()) return Status::NotFound;
    if (log_ && !log_->appendDelete(key)) return Status::IoError;
    liveBytes_ -= Persistence::recordSize(key.size(), it->second.size());
    data_.erase(it);
    if (listener_) listener_(key, nullptr);
    afterWriteLocked();
    return Status::Ok;
}

Status Store::increment(const std::string& key, std::int64_t delta, std::int64_t& newValue) {
    std::lock_guard<std::mutex> lk(mu_);
    std::int64_t current = 0;  // a missing key counts from 0
    auto it = data_.find(key);
    if (it != data_.end() && !parseInt64(it->second, current)) return Status::NotNumeric;
    if (__builtin_add_overflow(current, delta, &newValue)) return Status::Overflow;
    return writeLocked(key, std::to_string(newValue));
}

Store::RangeResult Store::range(const std::string& start, const std::optional<std::string>& end, std::size_t limit,
                                std::size_t maxBytes, const std::function<bool(const std::string&)>& accept) const {
    RangeResult r;
    std::lock_guard<std::mutex> lk(mu_);
    std::size_t bytes = 0;
    for (auto it = data_.lower_bound(start); it != data_.end(); ++it) {
        if (end && it->first > *end) break;
        if (accept && !accept(it->first)) continue;
        std::size_t sz = it->first.size() + it->second.size() + 32;
        // Stop at the record limit, or at the byte budget (but always return
        // at least one record so a caller can make progress).
        if (r.records.size() >= limit || (!r.records.empty() && bytes + sz > maxBytes)) {
            r.truncated = true;
            break;
        }
        bytes += sz;
        r.records.emplace_back(it->first, it->second);
    }
    return r;
}

}  // namespace hpkv
