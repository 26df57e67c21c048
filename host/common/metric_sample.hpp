// One metric value as the host's registry hands it to metrics-sink plugins (owned strings;
// the plugin adapter turns it into sf_metric_sample views for the C ABI).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace sf {

struct MetricSample {
    enum class Type { Counter = 1, Gauge = 2 };
    std::string name;   // streamfence_messages_published_total
    std::string help;
    Type type = Type::Counter;
    std::vector<std::pair<std::string, std::string>> labels;  // in output order
    double value = 0;
};

using MetricSnapshot = std::vector<MetricSample>;

// The one way the host builds a sample (registry, protocol limits, cluster node).
inline MetricSample makeMetricSample(std::string name, std::string help, MetricSample::Type type,
                                     std::vector<std::pair<std::string, std::string>> labels, double value) {
    MetricSample s;
    s.name = std::move(name);
    s.help = std::move(help);
    s.type = type;
    s.labels = std::move(labels);
    s.value = value;
    return s;
}

}  // namespace sf
