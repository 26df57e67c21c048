// The clock and the process figures the bench tools (loadgen, storm) report: CLOCK_MONOTONIC
// nanoseconds (the "ts" a publisher puts in each payload), their own CPU, and a server's CPU and
// RSS read from /proc/<pid>. A pid <= 0 or an unreadable file gives 0.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

namespace bench {

inline uint64_t nowNs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

inline double selfCpuSeconds() {
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// utime + stime of /proc/<pid>/stat.
inline double procCpuSeconds(int pid) {
    if (pid <= 0) return 0;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE* f = std::fopen(path, "r");
    if (!f) return 0;
    char buf[2048];
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = 0;
    const char* p = std::strrchr(buf, ')');  // comm may contain spaces
    if (!p) return 0;
    // fields after ')': state(3) ... utime(14) stime(15)
    unsigned long long ut = 0, st = 0;
    int field = 2;
    for (const char* q = p + 1; *q; ++q) {
        if (*q != ' ') continue;
        ++field;
        if (field == 14) ut = std::strtoull(q + 1, nullptr, 10);
        if (field == 15) {
            st = std::strtoull(q + 1, nullptr, 10);
            break;
        }
    }
    return double(ut + st) / double(sysconf(_SC_CLK_TCK));
}

// VmRSS of /proc/<pid>/status, KiB.
inline long procRssKb(int pid) {
    if (pid <= 0) return 0;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE* f = std::fopen(path, "r");
    if (!f) return 0;
    char line[256];
    long kb = 0;
    while (std::fgets(line, sizeof line, f))
        if (std::strncmp(line, "VmRSS:", 6) == 0) kb = std::atol(line + 6);
    std::fclose(f);
    return kb;
}

}  // namespace bench
