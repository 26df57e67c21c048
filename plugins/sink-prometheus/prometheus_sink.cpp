// "prometheus": renders the snapshot in the text exposition format 0.0.4 for GET /metrics.
#include <streamfence/plugin.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

using namespace streamfence;

namespace {

// Label values escape \, " and newline; HELP text escapes \ and newline (format 0.0.4).
void escape(std::string& out, std::string_view v, bool quotes) {
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '"' && quotes) out += "\\\"";
        else out += c;
    }
}

// Integers print as integers (counters read naturally); other values round-trip exactly.
void number(std::string& out, double v) {
    char buf[64];
    if (std::isnan(v)) out += "NaN";
    else if (std::isinf(v)) out += v > 0 ? "+Inf" : "-Inf";
    else if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
        out += buf;
    } else {
        std::snprintf(buf, sizeof buf, "%.15g", v);
        if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
        out += buf;
    }
}

}  // namespace

class PrometheusSink : public MetricsSink {
public:
    static constexpr bool renders = true;
    PrometheusSink(const Host&, const Options&) {}

    bool render(const Samples& s, std::string& out, const char*& contentType) override {
        // One HELP/TYPE block per metric name, samples grouped under it in first-seen order
        // (the format forbids a name's samples being split).
        std::vector<std::string_view> order;
        std::map<std::string_view, std::vector<size_t>> byName;
        for (size_t i = 0; i < s.size(); ++i) {
            auto& v = byName[s[i].name()];
            if (v.empty()) order.push_back(s[i].name());
            v.push_back(i);
        }
        for (auto name : order) {
            const auto& samples = byName[name];
            const Sample first = s[samples.front()];
            if (!first.help().empty()) {
                out.append("# HELP ").append(name).append(" ");
                escape(out, first.help(), false);
                out += '\n';
            }
            out.append("# TYPE ").append(name).append(first.isGauge() ? " gauge\n" : " counter\n");
            for (size_t i : samples) {
                const Sample m = s[i];
                out.append(name);
                for (size_t l = 0; l < m.labelCount(); ++l) {
                    out += l == 0 ? '{' : ',';
                    out.append(m.labelName(l)).append("=\"");
                    escape(out, m.labelValue(l), true);
                    out += '"';
                }
                if (m.labelCount()) out += '}';
                out += ' ';
                number(out, m.value());
                out += '\n';
            }
        }
        contentType = "text/plain; version=0.0.4; charset=utf-8";
        return true;
    }
};

STREAMFENCE_METRICS_SINK(PrometheusSink, "prometheus", "1.0.0", "Prometheus text exposition for GET /metrics")
