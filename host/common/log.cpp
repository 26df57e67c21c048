#include "common/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace sf::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::Info)};
const char* name(Level l) {
    switch (l) {
        case Level::Debug: return "debug";
        case Level::Info: return "info";
        case Level::Warn: return "warn";
        default: return "error";
    }
}
void appendValue(std::string& out, std::string_view v) {
    bool quote = v.empty();
    for (char c : v)
        if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t') { quote = true; break; }
    if (!quote) { out.append(v); return; }
    out.push_back('"');
    for (char c : v) {
        if (c == '"' || c == '\\') { out.push_back('\\'); out.push_back(c); }
        else if (c == '\n') out.append("\\n");
        else out.push_back(c);
    }
    out.push_back('"');
}
}  // namespace

void setLevel(Level l) { g_level = static_cast<int>(l); }
bool setLevel(std::string_view n) {
    if (n == "debug") setLevel(Level::Debug);
    else if (n == "info") setLevel(Level::Info);
    else if (n == "warn") setLevel(Level::Warn);
    else if (n == "error") setLevel(Level::Error);
    else return false;
    return true;
}
bool enabled(Level l) { return static_cast<int>(l) >= g_level.load(std::memory_order_relaxed); }

void write(Level l, std::string_view event, std::initializer_list<Field> fields) {
    if (!enabled(l)) return;
    using namespace std::chrono;
    auto now = system_clock::now();
    std::time_t t = system_clock::to_time_t(now);
    int ms = static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[96];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    std::string line;
    line.reserve(128);
    line.append("ts=").append(ts).append(" level=").append(name(l)).append(" event=");
    appendValue(line, event);
    for (const auto& f : fields) {
        line.push_back(' ');
        line.append(f.first).push_back('=');
        appendValue(line, f.second);
    }
    line.push_back('\n');
    ssize_t r = ::write(2, line.data(), line.size());
    (void)r;
}

}  // namespace sf::log
