// "statsd": pushes the snapshot over UDP every flushIntervalMs (default 1000). Counters go out as deltas
// since the last flush (`name.labelvalues:delta|c`), gauges as values (`|g`), lines batched
// into datagrams of at most 1432 bytes (fits a 1500-byte MTU with IPv6/UDP headers).
#include <streamfence/plugin.hpp>

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <unordered_map>

using namespace streamfence;

namespace {

constexpr size_t kMaxDatagram = 1432;

// StatsD reserves . : | @ and whitespace; keep label values to a safe alphabet.
void appendSanitised(std::string& out, std::string_view v) {
    if (v.empty()) { out += '_'; return; }
    for (char c : v) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        out += ok ? c : '_';
    }
}

std::string number(double v) {
    char buf[64];
    if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0)
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    else
        std::snprintf(buf, sizeof buf, "%.15g", v);
    return buf;
}

}  // namespace

class StatsdSink : public MetricsSink {
public:
    // 1 s, like common statsd clients: a dashboard's per-second rates stay smooth.
    static constexpr uint32_t flushIntervalMs = 1000;

    StatsdSink(const Host& host, const Options& o) : host_(host) {
        std::string h = o.get("host", "127.0.0.1");
        long long port = o.getInt("port", 8125);
        if (port <= 0 || port > 65535) throw std::invalid_argument("option port: must be 1..65535");
        long long interval = o.getInt("flushIntervalMs", flushIntervalMs);
        if (interval <= 0 || interval > 3600000) throw std::invalid_argument("option flushIntervalMs: must be 1..3600000");
        setFlushIntervalMs(static_cast<uint32_t>(interval));
        prefix_ = o.get("prefix");
        if (!prefix_.empty() && prefix_.back() != '.') prefix_ += '.';

        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_DGRAM;
        addrinfo* res = nullptr;
        int rc = getaddrinfo(h.c_str(), std::to_string(port).c_str(), &hints, &res);
        if (rc != 0) throw std::invalid_argument("option host: cannot resolve \"" + h + "\": " + gai_strerror(rc));
        std::memcpy(&addr_, res->ai_addr, res->ai_addrlen);
        addrLen_ = res->ai_addrlen;
        fd_ = ::socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        freeaddrinfo(res);
        if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    }
    ~StatsdSink() override {
        if (fd_ >= 0) ::close(fd_);
    }

    void flush(const Samples& s) override {
        std::string packet;
        for (size_t i = 0; i < s.size(); ++i) {
            const Sample m = s[i];
            std::string key = prefix_;
            key.append(m.name());
            for (size_t l = 0; l < m.labelCount(); ++l) {
                key += '.';
                appendSanitised(key, m.labelValue(l));
            }
            if (!m.isGauge()) {
                double& last = last_[key];
                // A counter that went down was reset (host restart of the series): send it whole.
                double delta = m.value() >= last ? m.value() - last : m.value();
                last = m.value();
                if (delta != 0) add(packet, key + ":" + number(delta) + "|c");
            } else {
                // "-5|g" would mean "decrement by 5": a negative gauge is set via 0 first.
                if (m.value() < 0) add(packet, key + ":0|g");
                add(packet, key + ":" + number(m.value()) + "|g");
            }
        }
        send(packet);
    }

private:
    void add(std::string& packet, const std::string& line) {
        if (!packet.empty() && packet.size() + 1 + line.size() > kMaxDatagram) send(packet);
        if (!packet.empty()) packet += '\n';
        packet += line;
    }
    void send(std::string& packet) {
        if (packet.empty()) return;
        ssize_t r = ::sendto(fd_, packet.data(), packet.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&addr_), addrLen_);
        if (r < 0 && !warned_) {
            host_.warn("statsd_send_failed", std::strerror(errno));
            warned_ = true;  // once: an absent collector must not flood the log
        } else if (r >= 0) {
            warned_ = false;
        }
        packet.clear();
    }

    Host host_;
    std::string prefix_;
    sockaddr_storage addr_{};
    socklen_t addrLen_ = 0;
    int fd_ = -1;
    bool warned_ = false;
    std::unordered_map<std::string, double> last_;
};

STREAMFENCE_METRICS_SINK(StatsdSink, "statsd", "1.0.0", "StatsD over UDP: counter deltas and gauges")
