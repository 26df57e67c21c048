#include "plugins/metrics_sinks.hpp"

#include "common/log.hpp"
#include "plugins/text_writer.hpp"

#include <chrono>
#include <cstddef>

namespace sf::plugins {

SampleViews::SampleViews(const MetricSnapshot& snapshot) {
    labels_.resize(snapshot.size());
    samples_.resize(snapshot.size());
    for (size_t i = 0; i < snapshot.size(); ++i) {
        const MetricSample& m = snapshot[i];
        for (const auto& l : m.labels) {
            sf_label label{};
            label.struct_size = sizeof label;
            label.name = {l.first.data(), l.first.size()};
            label.value = {l.second.data(), l.second.size()};
            labels_[i].push_back(label);
        }
        sf_metric_sample& s = samples_[i];
        s = sf_metric_sample{};
        s.struct_size = sizeof s;
        s.type = m.type == MetricSample::Type::Gauge ? SF_METRIC_GAUGE : SF_METRIC_COUNTER;
        s.name = {m.name.data(), m.name.size()};
        s.help = {m.help.data(), m.help.size()};
        s.labels = labels_[i].empty() ? nullptr : labels_[i].data();
        s.label_count = static_cast<uint32_t>(labels_[i].size());
        s.value = m.value;
    }
}

MetricsSinks::~MetricsSinks() { stop(false); }

void MetricsSinks::add(PluginInstancePtr sink) {
    if (!sink || sink->descriptor().kind != SF_KIND_METRICS_SINK)
        throw PluginError("plugin \"" + (sink ? sink->name() : std::string("?")) + "\" is not a metrics sink");
    auto s = std::make_unique<Sink>();
    s->vt = sink->vtable<sf_metrics_sink_vtable>();
    s->intervalMs = s->vt->flush_interval_ms;
    // Read the per-instance interval only from plugins whose vtable has the field.
    if (s->vt->struct_size >= offsetof(sf_metrics_sink_vtable, instance_flush_interval_ms) + sizeof(void*) &&
        s->vt->instance_flush_interval_ms)
        s->intervalMs = s->vt->instance_flush_interval_ms(sink->handle());
    if (!s->vt->flush) s->intervalMs = 0;
    s->inst = std::move(sink);
    sinks_.push_back(std::move(s));
}

bool MetricsSinks::render(const MetricSnapshot& snapshot, std::string& body, std::string& contentType) {
    SampleViews v(snapshot);
    for (auto& s : sinks_) {
        if (!s->vt->render) continue;
        TextWriter out;
        const char* ct = nullptr;
        int rc;
        {
            std::lock_guard<std::mutex> lk(s->mu);
            rc = s->vt->render(s->inst->handle(), v.data(), v.size(), out.raw(), &ct);
        }
        if (rc == SF_OK) {
            body = out.take();
            contentType = ct ? ct : "text/plain; charset=utf-8";
            return true;
        }
        if (rc != SF_ERR_NOT_SUPPORTED)
            log::warn("metrics_render_failed", {{"plugin", s->inst->name()}, {"rc", std::to_string(rc)}});
    }
    return false;
}

void MetricsSinks::flushOne(Sink& s, const SampleViews& v) {
    if (!s.vt->flush) return;
    std::lock_guard<std::mutex> lk(s.mu);
    int rc = s.vt->flush(s.inst->handle(), v.data(), v.size());
    if (rc != SF_OK && !s.failing)
        log::warn("metrics_flush_failed", {{"plugin", s.inst->name()}, {"rc", std::to_string(rc)}});
    else if (rc == SF_OK && s.failing)
        log::info("metrics_flush_recovered", {{"plugin", s.inst->name()}});
    s.failing = rc != SF_OK;
}

void MetricsSinks::flushAll(const MetricSnapshot& snapshot) {
    SampleViews v(snapshot);
    for (auto& s : sinks_) flushOne(*s, v);
}

void MetricsSinks::start(SnapshotFn snapshot) {
    stop(false);
    snapshot_ = std::move(snapshot);
    {
        std::lock_guard<std::mutex> lk(mu_);
        stopping_ = false;
    }
    bool any = false;
    for (auto& s : sinks_) any = any || s->intervalMs > 0;
    if (!any || !snapshot_) return;  // nothing to push: no thread
    thread_ = std::thread([this] {
        using clock = std::chrono::steady_clock;
        std::vector<clock::time_point> due(sinks_.size(), clock::time_point::max());
        for (size_t i = 0; i < sinks_.size(); ++i)
            if (sinks_[i]->intervalMs > 0) due[i] = clock::now() + std::chrono::milliseconds(sinks_[i]->intervalMs);
        std::unique_lock<std::mutex> lk(mu_);
        while (!stopping_) {
            clock::time_point next = clock::time_point::max();
            for (auto d : due) next = std::min(next, d);
            if (cv_.wait_until(lk, next, [this] { return stopping_; })) break;
            lk.unlock();
            auto now = clock::now();
            try {
                MetricSnapshot snap = snapshot_();
                SampleViews v(snap);
                for (size_t i = 0; i < sinks_.size(); ++i) {
                    if (due[i] > now) continue;
                    flushOne(*sinks_[i], v);
                }
            } catch (const std::exception& e) {
                log::warn("metrics_snapshot_failed", {{"error", e.what()}});
            }
            // Next slot from now: a slow flush never causes a burst of catch-up flushes.
            for (size_t i = 0; i < sinks_.size(); ++i)
                if (due[i] <= now) due[i] = clock::now() + std::chrono::milliseconds(sinks_[i]->intervalMs);
            lk.lock();
        }
    });
}

void MetricsSinks::stop(bool finalFlush) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (finalFlush && snapshot_) {
        try {
            flushAll(snapshot_());
        } catch (const std::exception& e) {
            log::warn("metrics_snapshot_failed", {{"error", e.what()}});
        }
    }
}

}  // namespace sf::plugins
