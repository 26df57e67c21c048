#include "delivery/spill_faults.hpp"

#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

#include "common/log.hpp"
#include "net/event_loop.hpp"

namespace sf::delivery {

void logSpillFault(const char* event, const std::string& ns, const std::string& topic, const std::string& client,
                   const std::string& error) {
    struct Seen {
        uint64_t ms = 0, count = 0;
    };
    static std::mutex mu;
    static std::map<std::tuple<std::string, std::string, std::string>, Seen> last;
    const uint64_t now = net::monotonicMs();
    std::lock_guard<std::mutex> lk(mu);
    Seen& s = last[{event, ns, topic}];
    ++s.count;
    if (s.ms && now - s.ms < 1000) return;
    log::warn(event, {{"namespace", ns}, {"topic", topic}, {"client", client}, {"error", error}, {"count", std::to_string(s.count)}});
    s.ms = now;
    s.count = 0;
}

}  // namespace sf::delivery
