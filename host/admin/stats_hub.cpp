#include "admin/stats_hub.hpp"

namespace sf::admin {

StatsHub::StatsHub(Collect collect, uint64_t minIntervalMs)
    : collect_(std::move(collect)), interval_(minIntervalMs) {}

void StatsHub::collectLocked(std::unique_lock<std::mutex>& lk) {
    collecting_ = true;
    const auto prevTaken = taken_;
    const bool first = version_ == 0;
    std::vector<std::pair<uint64_t, uint64_t>> prev = prevTotals_;
    lk.unlock();
    std::shared_ptr<const std::string> json;
    std::vector<std::pair<uint64_t, uint64_t>> totals;
    const auto now = std::chrono::steady_clock::now();
    try {
        StatsSnapshot s = collect_();
        std::vector<TopicRates> rates(s.topics.size());
        const double secs = std::chrono::duration<double>(now - prevTaken).count();
        for (size_t i = 0; i < s.topics.size(); ++i) {
            const uint64_t delivered = i < s.delivery.topics.size() ? s.delivery.topics[i].delivered : 0;
            totals.emplace_back(s.topics[i].published, delivered);
            if (first || i >= prev.size() || secs <= 0) continue;
            // A loop that did not answer makes a total go down once: no negative rate.
            if (s.topics[i].published >= prev[i].first) rates[i].publish = (s.topics[i].published - prev[i].first) / secs;
            if (delivered >= prev[i].second) rates[i].deliver = (delivered - prev[i].second) / secs;
        }
        json = std::make_shared<const std::string>(toJson(s, rates));
    } catch (...) {
        lk.lock();
        collecting_ = false;
        taken_ = now;  // do not retry at once: the next attempt comes an interval later
        cv_.notify_all();
        throw;
    }
    lk.lock();
    collecting_ = false;
    json_ = std::move(json);
    prevTotals_ = std::move(totals);
    taken_ = now;
    ++version_;
    cv_.notify_all();
}

StatsHub::View StatsHub::current() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
        if (stopped_) return {version_, nullptr};
        const bool fresh = json_ && std::chrono::steady_clock::now() - taken_ < interval_;
        if (fresh) return {version_, json_};
        if (!collecting_) {
            collectLocked(lk);
            return {version_, json_};
        }
        cv_.wait(lk);  // another request is collecting: share its result
    }
}

StatsHub::View StatsHub::next(uint64_t after) {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
        if (stopped_) return {version_, nullptr};
        if (version_ > after && json_) return {version_, json_};
        const auto now = std::chrono::steady_clock::now();
        if (!collecting_ && (version_ == 0 || now - taken_ >= interval_)) {
            collectLocked(lk);
            continue;
        }
        if (collecting_) cv_.wait(lk);
        else cv_.wait_until(lk, taken_ + interval_);
    }
}

bool StatsHub::openStream(size_t max) {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopped_ || streams_ >= max) return false;
    ++streams_;
    return true;
}

void StatsHub::closeStream() {
    std::lock_guard<std::mutex> lk(mu_);
    if (streams_) --streams_;
}

size_t StatsHub::streams() const {
    std::lock_guard<std::mutex> lk(mu_);
    return streams_;
}

void StatsHub::stop() {
    std::lock_guard<std::mutex> lk(mu_);
    stopped_ = true;
    cv_.notify_all();
}

}  // namespace sf::admin
