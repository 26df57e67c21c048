// soak: connection churn at full rate, to show streamfenced holds no memory or descriptors
// per connection once it is gone (bench/soak.sh drives it; results in bench/results/soak.md).
//
// One thread, one epoll set. --slots clients run at once; each, over and over: TCP connect,
// websocket Engine.IO handshake, CONNECT to --ns, subscribe to its own topic (<topic><slot>,
// so it receives exactly what it publishes), publish one message with an ack id, receive the
// AT_LEAST_ONCE delivery and ack it, wait for the publish's ack, then drop the connection:
// an orderly close, or every --rst-every'th time an abortive one (RST), as a vanished client.
// Every --sample-ms it samples the server's RSS and open descriptors (/proc/<pid>) and prints
// `SAMPLE t_s=.. churned=.. rate=.. rss_kb=.. fds=..`; `IDLE_BEFORE` / `IDLE_AFTER` the same
// with no client connected (before the first, 3 s after the last); at the end `RESULT ...`.
// A connection that fails (refused, reset, no answer within --stall-ms) is counted and redone.
#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <dirent.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_options.hpp"
#include "proc_stats.hpp"
#include "tcp_client.hpp"
#include "ws_client.hpp"

namespace {

struct Options {
    std::string host = "127.0.0.1";
    int port = 0, controlPort = 0;
    std::string ns = "/soak";
    std::string topic = "t";
    int conns = 0;  // unused (shared flag)
    double rate = 0;
    int batch = 0, payload = 64, maxPending = 0, serverPid = 0;
    std::string label = "streamfenced";
    int slots = 64;
    double seconds = 60;
    int sampleMs = 5000;
    int rstEvery = 4;
    int stallMs = 10000;
    uint64_t maxConns = 0;  // stop after this many (0: by time)
};

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: soak --port P --server-pid PID [--ns /soak] [--topic t] [--slots 64] [--seconds 60]\n"
                 "            [--max-conns N] [--sample-ms 5000] [--rst-every 4] [--payload 64] [--stall-ms 10000]\n");
    std::exit(2);
}

// Entries of /proc/<pid>/fd, -1 if unreadable.
long procFdCount(int pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR* d = opendir(path);
    if (!d) return -1;
    long n = 0;
    while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') ++n;
    closedir(d);
    return n;
}

enum class St { Connecting, Http, Open, Ns, Sub, Pub, Done };

struct Conn {
    int fd = -1;
    St st = St::Connecting;
    std::string out, carry;
    bool wantOut = false, delivered = false, pubAcked = false;
    uint64_t startedNs = 0;
    uint32_t gen = 0;  // which connection of the slot an epoll event is for
};

struct Soak {
    Options o;
    int ep = -1;
    std::vector<Conn> conns;
    std::vector<int> reopen;  // slots to connect again once the current batch of events is handled
    uint32_t nextGen = 0;
    std::string nsPrefix;  // "/soak," ("" for "/")
    std::string pad;
    uint64_t churned = 0, failed = 0, delivered = 0, started = 0;
    uint64_t failConnect = 0, failReset = 0, failStall = 0, failRefused = 0;  // why, of failed
    std::vector<char> buf;

    void setOut(int i, bool want) {
        Conn& c = conns[size_t(i)];
        if (c.wantOut == want) return;
        c.wantOut = want;
        epoll_event ev{};
        ev.events = EPOLLIN | (want ? uint32_t(EPOLLOUT) : 0u);
        ev.data.u64 = (uint64_t(c.gen) << 32) | uint64_t(i);
        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
    }

    void flush(int i) {
        Conn& c = conns[size_t(i)];
        if (c.fd < 0) return;
        if (!bench::writePending(c.fd, c.out)) return fail(i);
        setOut(i, !c.out.empty());
    }

    void queueText(int i, std::string_view text) {
        bench::wsAppendClientFrame(conns[size_t(i)].out, text);
        flush(i);
    }

    void open(int i) {
        Conn& c = conns[size_t(i)];
        bool refused = false;
        c = Conn{};
        c.gen = ++nextGen;
        c.fd = bench::tcpConnectNonBlocking(o.host, o.port, refused);
        c.startedNs = bench::nowNs();
        ++started;
        if (c.fd < 0 || refused) {
            if (c.fd >= 0) ::close(c.fd);
            c.fd = -1;
            ++failed;
            ++failConnect;
            return;  // retried by the stall sweep
        }
        c.out = bench::wsUpgradeRequest(o.host, o.port);
        c.wantOut = true;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u64 = (uint64_t(c.gen) << 32) | uint64_t(i);
        epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    }

    void drop(int i, bool rst) {
        Conn& c = conns[size_t(i)];
        if (c.fd < 0) return;
        if (rst) {
            linger l{1, 0};
            setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        ::close(c.fd);
        c.fd = -1;
    }

    enum class Why { Connect, Reset, Stall, Refused };
    void fail(int i, Why why = Why::Reset) {
        if (conns[size_t(i)].fd < 0) return;  // failed already
        ++failed;
        const St st = conns[size_t(i)].st;
        if (why == Why::Stall) ++failStall;
        else if (why == Why::Refused) ++failRefused;
        else if (st == St::Connecting || st == St::Http) ++failConnect;
        else ++failReset;
        drop(i, true);
        reopen.push_back(i);
    }

    void finish(int i) {
        ++churned;
        drop(i, o.rstEvery > 0 && churned % uint64_t(o.rstEvery) == 0);
        reopen.push_back(i);
    }

    std::string topicOf(int i) const { return o.topic + std::to_string(i); }

    void onPacket(int i, const char* p, size_t n) {
        Conn& c = conns[size_t(i)];
        if (n == 0 || c.fd < 0) return;
        if (p[0] == '0' && c.st == St::Open) {  // Engine.IO open
            c.st = St::Ns;
            return queueText(i, "40" + nsPrefix);
        }
        if (p[0] == '2') return queueText(i, "3");  // ping
        if (p[0] == '1') return fail(i);            // the server closed it
        if (p[0] != '4' || n < 2) return;
        const char type = p[1];
        const char* q = p + 2;
        const char* end = p + n;
        if (!nsPrefix.empty()) {
            if (size_t(end - q) < nsPrefix.size() || std::memcmp(q, nsPrefix.data(), nsPrefix.size()) != 0) return;
            q += nsPrefix.size();
        }
        const std::string_view body(q, size_t(end - q));
        if (type == '0' && c.st == St::Ns) {  // CONNECT answer
            c.st = St::Sub;
            return queueText(i, "42" + nsPrefix + "1[\"subscribe\",{\"topic\":\"" + topicOf(i) + "\"}]");
        }
        if (type == '4') {  // CONNECT_ERROR
            std::fprintf(stderr, "soak: namespace refused: %.*s\n", int(n), p);
            return fail(i, Why::Refused);
        }
        if (type == '3') {  // an ack: 1 = subscribe, 2 = publish
            if (body.find("\"ok\":true") == std::string_view::npos) {
                std::fprintf(stderr, "soak: refused: %.*s\n", int(std::min<size_t>(n, 200)), p);
                return fail(i, Why::Refused);
            }
            if (body[0] == '1' && c.st == St::Sub) {
                c.st = St::Pub;
                return queueText(i, "42" + nsPrefix + "2[\"publish\",{\"topic\":\"" + topicOf(i) + "\",\"payload\":{\"pad\":\"" +
                                        pad + "\"}}]");
            }
            if (body[0] == '2') c.pubAcked = true;
        } else if (type == '2') {  // the delivery: ["t<i>",{payload},{...,"messageId":"msg-N",...}]
            size_t k = body.find("\"messageId\":\"");
            if (k == std::string_view::npos) return;
            k += 13;
            size_t e = body.find('"', k);
            if (e == std::string_view::npos) return;
            c.delivered = true;
            ++delivered;
            queueText(i, "42" + nsPrefix + "[\"ack\",{\"topic\":\"" + topicOf(i) + "\",\"messageId\":\"" +
                             std::string(body.substr(k, e - k)) + "\"}]");
        }
        if (c.delivered && c.pubAcked && c.fd >= 0 && c.out.empty()) finish(i);
    }

    void onReadable(int i) {
        Conn& c = conns[size_t(i)];
        for (;;) {
            ssize_t r = bench::readAfterCarry(c.fd, c.carry, buf);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && errno == EAGAIN) return;
            if (r <= 0) return fail(i);
            size_t len = c.carry.size() + size_t(r);
            size_t answerLen = 0;
            bool alive = true;
            const bool upgrading = c.st == St::Http;
            const uint32_t gen = c.gen;
            bool ok = bench::wsTakeInput(
                buf.data(), len, upgrading, c.carry, answerLen, [&] { c.st = St::Open; },
                [&](uint8_t opcode, const char* body, size_t n) {
                    if (opcode == 0x1) onPacket(i, body, n);
                    else if (opcode == 0x8) fail(i);
                    alive = conns[size_t(i)].fd >= 0 && conns[size_t(i)].gen == gen;  // finished or failed: stop
                    return alive;
                });
            if (!ok) {
                std::fprintf(stderr, "soak: upgrade refused: %.*s\n", int(std::min<size_t>(answerLen, 200)), buf.data());
                return fail(i, Why::Refused);
            }
            if (!alive || c.fd < 0) return;
        }
    }

    int run() {
        if (o.ns != "/") nsPrefix = o.ns + ",";
        pad.assign(size_t(std::max(0, o.payload)), 'x');
        ep = epoll_create1(0);
        conns.resize(size_t(o.slots));
        const long rssIdle0 = bench::procRssKb(o.serverPid), fdsIdle0 = procFdCount(o.serverPid);
        std::printf("IDLE_BEFORE rss_kb=%ld fds=%ld\n", rssIdle0, fdsIdle0);
        for (int i = 0; i < o.slots; ++i) open(i);
        const uint64_t t0 = bench::nowNs();
        const uint64_t endNs = t0 + uint64_t(o.seconds * 1e9);
        uint64_t nextSample = t0, lastChurned = 0, lastSampleNs = t0;
        auto sample = [&](uint64_t now) {
            long rss = bench::procRssKb(o.serverPid), fds = procFdCount(o.serverPid);
            double dt = double(now - lastSampleNs) / 1e9;
            std::printf("SAMPLE t_s=%.1f churned=%" PRIu64 " rate=%.0f rss_kb=%ld fds=%ld failed=%" PRIu64 "\n",
                        double(now - t0) / 1e9, churned, dt > 0 ? double(churned - lastChurned) / dt : 0.0, rss, fds, failed);
            std::fflush(stdout);
            lastChurned = churned;
            lastSampleNs = now;
        };
        epoll_event evs[512];
        for (;;) {
            uint64_t now = bench::nowNs();
            if (now >= nextSample) {
                sample(now);
                nextSample += uint64_t(o.sampleMs) * 1000000ull;
            }
            bool done = now >= endNs || (o.maxConns && started >= o.maxConns);
            if (done) break;
            int n = epoll_wait(ep, evs, 512, 50);
            for (int k = 0; k < n; ++k) {
                int i = int(evs[k].data.u64 & 0xffffffffu);
                Conn& c = conns[size_t(i)];
                if (c.fd < 0 || c.gen != uint32_t(evs[k].data.u64 >> 32)) continue;  // gone, or an earlier connection's
                if (evs[k].events & (EPOLLERR | EPOLLHUP)) {
                    fail(i);
                    continue;
                }
                if (evs[k].events & EPOLLOUT) {
                    if (c.st == St::Connecting) c.st = St::Http;
                    flush(i);
                    if (c.fd < 0) continue;
                    if (c.delivered && c.pubAcked && c.out.empty()) {
                        finish(i);
                        continue;
                    }
                }
                if (evs[k].events & EPOLLIN) onReadable(i);
            }
            for (int i : reopen)
                if (conns[size_t(i)].fd < 0 && !(o.maxConns && started >= o.maxConns)) open(i);
            reopen.clear();
            // Slots whose connect failed at once, or that stalled: start again.
            static uint64_t lastSweep = 0;
            if (now - lastSweep > 200000000ull) {
                lastSweep = now;
                for (int i = 0; i < o.slots; ++i) {
                    Conn& c = conns[size_t(i)];
                    if (c.fd < 0) {
                        if (!(o.maxConns && started >= o.maxConns)) open(i);
                    } else if (c.startedNs < now && now - c.startedNs > uint64_t(o.stallMs) * 1000000ull) {
                        std::fprintf(stderr, "soak: slot %d stalled in state %d\n", i, int(c.st));
                        fail(i, Why::Stall);
                    }
                }
            }
        }
        for (int i = 0; i < o.slots; ++i) drop(i, false);
        const uint64_t stopNs = bench::nowNs();
        // Let the server see the last closes, then one more sample: descriptors back to idle.
        usleep(3000000);
        const long rssIdle1 = bench::procRssKb(o.serverPid), fdsIdle1 = procFdCount(o.serverPid);
        std::printf("IDLE_AFTER rss_kb=%ld fds=%ld\n", rssIdle1, fdsIdle1);
        const double secs = double(stopNs - t0) / 1e9;
        std::printf("RESULT label=%s churned=%" PRIu64 " delivered=%" PRIu64 " failed=%" PRIu64 " fail_connect=%" PRIu64
                    " fail_reset=%" PRIu64 " fail_stall=%" PRIu64 " fail_refused=%" PRIu64
                    " seconds=%.1f rate=%.0f rss_idle0_kb=%ld fds_idle0=%ld rss_idle1_kb=%ld fds_idle1=%ld\n",
                    o.label.c_str(), churned, delivered, failed, failConnect, failReset, failStall, failRefused, secs,
                    double(churned) / secs, rssIdle0, fdsIdle0, rssIdle1, fdsIdle1);
        return 0;
    }
};

}  // namespace

int main(int argc, char** argv) {
    signal(SIGPIPE, SIG_IGN);
    Soak s;
    s.o = bench::parseOptions<Options>(argc, argv, usage, [](const std::string& a, auto&& next, Options& o) {
        if (a == "--slots") o.slots = std::atoi(next());
        else if (a == "--seconds") o.seconds = std::atof(next());
        else if (a == "--sample-ms") o.sampleMs = std::atoi(next());
        else if (a == "--rst-every") o.rstEvery = std::atoi(next());
        else if (a == "--stall-ms") o.stallMs = std::atoi(next());
        else if (a == "--max-conns") o.maxConns = std::strtoull(next(), nullptr, 10);
        else return false;
        return true;
    });
    if (s.o.port <= 0 || s.o.slots <= 0 || s.o.sampleMs <= 0) usage();
    return s.run();
}
