// The host side of metrics-sink plugins: turns the host's metric snapshot into the C views
// of the ABI, renders /metrics through the first sink that can, and flushes push sinks
// (StatsD, ...) from one background thread at each sink's interval.
#pragma once
#include <streamfence/plugin.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metric_sample.hpp"
#include "plugins/registry.hpp"

namespace sf::plugins {

// sf_metric_sample views over a snapshot; valid while both this and the snapshot live.
class SampleViews {
public:
    explicit SampleViews(const MetricSnapshot& snapshot);
    const sf_metric_sample* data() const { return samples_.data(); }
    size_t size() const { return samples_.size(); }

private:
    std::vector<std::vector<sf_label>> labels_;
    std::vector<sf_metric_sample> samples_;
};

class MetricsSinks {
public:
    using SnapshotFn = std::function<MetricSnapshot()>;

    MetricsSinks() = default;
    ~MetricsSinks();  // stops the flusher (without a final flush)
    MetricsSinks(const MetricsSinks&) = delete;
    MetricsSinks& operator=(const MetricsSinks&) = delete;

    // Add a metrics-sink instance (throws PluginError for an instance of another kind).
    // Add every sink before start().
    void add(PluginInstancePtr sink);
    size_t size() const { return sinks_.size(); }
    // The interval the host uses for sink i (0 = never flushed by the thread).
    uint32_t flushIntervalMs(size_t i) const { return sinks_.at(i)->intervalMs; }

    // GET /metrics: the body and content type of the first sink that renders. False if none does.
    bool render(const MetricSnapshot& snapshot, std::string& body, std::string& contentType);
    // Flush every push sink now, whatever its interval.
    void flushAll(const MetricSnapshot& snapshot);

    // Start the flusher thread; `snapshot` is called on it whenever a sink is due.
    void start(SnapshotFn snapshot);
    // Stop and join the thread; with finalFlush, push sinks get one last snapshot so the
    // counts since the last interval are not lost.
    void stop(bool finalFlush = false);

private:
    struct Sink {
        PluginInstancePtr inst;
        const sf_metrics_sink_vtable* vt = nullptr;
        uint32_t intervalMs = 0;
        std::mutex mu;  // the ABI promises one call at a time per sink
        bool failing = false;  // log a failing flush once, not every interval
    };
    void flushOne(Sink& s, const SampleViews& v);

    std::vector<std::unique_ptr<Sink>> sinks_;
    SnapshotFn snapshot_;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
};

}  // namespace sf::plugins
