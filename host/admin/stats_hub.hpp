// The one place dashboard viewers and GET /v1/stats get their snapshot from: taken at most
// once per interval, by whichever request finds it stale, and shared by every viewer
// (docs/dashboard.md). No thread of its own: with nobody looking, nothing is collected.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "admin/stats_snapshot.hpp"

namespace sf::admin {

class StatsHub {
public:
    using Collect = std::function<StatsSnapshot()>;
    explicit StatsHub(Collect collect, uint64_t minIntervalMs = 1000);

    struct View {
        uint64_t version = 0;                   // 1, 2, ... per snapshot taken
        std::shared_ptr<const std::string> json; // null once stopped
    };
    // The newest snapshot, taken now when the last one is older than the interval.
    View current();
    // Wait for a snapshot newer than `after` (taking it when due); json null once stopped.
    View next(uint64_t after);

    // Long-lived streams hold a control-listener thread each, so they are counted and capped.
    bool openStream(size_t max);
    void closeStream();
    size_t streams() const;

    void stop();  // wakes every waiting stream; they end

private:
    void collectLocked(std::unique_lock<std::mutex>& lk);

    Collect collect_;
    const std::chrono::milliseconds interval_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stopped_ = false, collecting_ = false;
    uint64_t version_ = 0;
    std::shared_ptr<const std::string> json_;
    std::chrono::steady_clock::time_point taken_;
    size_t streams_ = 0;
    // Totals of the previous snapshot, for rates.
    std::vector<std::pair<uint64_t, uint64_t>> prevTotals_;  // (published, delivered) by topic index
};

}  // namespace sf::admin
