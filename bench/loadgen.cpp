// loadgen: epoll load generator for Socket.IO v5 / Engine.IO v4 servers over websocket.
//
// One thread, one epoll set, no thread per connection. Opens N websocket clients to
// host:port, connects them to a namespace, subscribes each to a topic (emit('subscribe',
// {topic}) with an ack id), answers Engine.IO pings, optionally acks AT_LEAST_ONCE
// deliveries, and measures deliveries/s and publish -> receive latency from the "ts" field
// (CLOCK_MONOTONIC ns) the publisher puts in every payload.
//
// The publisher lives in the same loop: a keep-alive HTTP/1.1 connection to the control API
// (POST /v1/publish with a JSON array), either at a fixed rate (--rate msgs/s) or flat out
// with a closed window (--window W: at most W messages per subscriber not yet received, so
// bounded lanes never overflow and the figure is the sustained delivery rate, not a drop
// rate). Without --control the server generates its own messages (the bare-loop ceiling).
//
// --conns 0 is the publisher alone (fixed rate), for driving a server other clients watch.
// Also: --idle N opens N subscribed idle connections, waits, and reports the server's RSS
// growth per connection (from /proc/<pid>/status) and the kernel's TCP memory growth
// (/proc/net/sockstat) separately.
//
// Output: human-readable lines on stderr and one machine-readable line on stdout:
//   RESULT key=value key=value ...
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_options.hpp"
#include "proc_stats.hpp"
#include "publish_request.hpp"
#include "tcp_client.hpp"
#include "ws_client.hpp"

namespace {

using bench::nowNs;
using bench::procCpuSeconds;
using bench::procRssKb;
using bench::selfCpuSeconds;

// ---------------------------------------------------------------- options
struct Options {
    std::string host = "127.0.0.1";
    int port = 0;
    std::string ns = "/feed";
    std::string topic = "t";
    int conns = 1000;
    int idle = 0;            // --idle N: idle mode
    double holdS = 3;        // idle: seconds to hold after all connected
    int controlPort = 0;     // 0: server generates its own messages
    std::string token;
    double rate = 0;         // messages/s; 0 = flat out (closed window)
    int window = 32;         // flat out: messages in flight per subscriber
    int batch = 16;          // max messages per POST
    int payload = 100;       // approximate payload JSON size (bytes)
    double warmupS = 3, measureS = 10, drainS = 10;  // drain: at most, ends once all arrived
    bool ack = false;        // ack AT_LEAST_ONCE deliveries
    int slow = 0;            // first `slow` clients never read after subscribing
    int serverPid = 0;
    int maxPending = 200;    // handshakes in progress at once
    std::string label;
};

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: loadgen --port P [--host H] [--ns /feed] [--topic t] [--conns N]\n"
                 "               [--control PORT [--token T] [--rate MSGS_PER_S | --window W] [--batch B]]\n"
                 "               [--payload BYTES] [--warmup S] [--measure S] [--drain S] [--ack]\n"
                 "               [--slow K] [--server-pid PID] [--label TEXT]\n"
                 "       loadgen --port P --idle N [--hold S] [--server-pid PID]\n"
                 "       loadgen --port P --conns 0 --control PORT --rate R   (publisher only)\n");
    std::exit(2);
}

Options parseArgs(int argc, char** argv) {
    Options o = bench::parseOptions<Options>(argc, argv, usage, [](const std::string& a, auto&& next, Options& t) {
        if (a == "--idle") t.idle = std::atoi(next());
        else if (a == "--hold") t.holdS = std::atof(next());
        else if (a == "--token") t.token = next();
        else if (a == "--window") t.window = std::atoi(next());
        else if (a == "--warmup") t.warmupS = std::atof(next());
        else if (a == "--measure") t.measureS = std::atof(next());
        else if (a == "--drain") t.drainS = std::atof(next());
        else if (a == "--ack") t.ack = true;
        else if (a == "--slow") t.slow = std::atoi(next());
        else return false;
        return true;
    });
    if (o.port <= 0) usage();
    if (o.idle > 0) o.conns = o.idle;
    if (o.conns == 0 && (o.controlPort <= 0 || o.rate <= 0)) {
        std::fprintf(stderr, "--conns 0 (publisher only) needs --control PORT and --rate MSGS_PER_S\n");
        std::exit(2);
    }
    if (o.batch < 1) o.batch = 1;
    return o;
}

// ---------------------------------------------------------------- latency histogram
// Log-linear buckets: exact below 128 ns, then 64 sub-buckets per power of two (<1.6% error).
struct Histogram {
    std::vector<uint64_t> b = std::vector<uint64_t>(64 * 64, 0);
    uint64_t count = 0, max = 0;
    static size_t index(uint64_t v) {
        if (v < 128) return size_t(v);
        int msb = 63 - __builtin_clzll(v);
        int shift = msb - 6;
        return size_t(64 * (shift + 1) + ((v >> shift) - 64));
    }
    static uint64_t lower(size_t i) {
        if (i < 128) return i;
        size_t shift = i / 64 - 1;
        return (uint64_t(i % 64) + 64) << shift;
    }
    void add(uint64_t v) {
        ++b[index(v)];
        ++count;
        if (v > max) max = v;
    }
    uint64_t percentile(double p) const {
        if (!count) return 0;
        uint64_t want = uint64_t(p * double(count));
        if (want >= count) want = count - 1;
        uint64_t seen = 0;
        for (size_t i = 0; i < b.size(); ++i) {
            seen += b[i];
            if (seen > want) return std::min(lower(i), max);
        }
        return max;
    }
};

// ---------------------------------------------------------------- /proc readers
long sockstatTcpMemPages() {
    FILE* f = std::fopen("/proc/net/sockstat", "r");
    if (!f) return 0;
    char line[256];
    long pages = 0;
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, "TCP:", 4) != 0) continue;
        const char* m = std::strstr(line, " mem ");
        if (m) pages = std::atol(m + 5);
    }
    std::fclose(f);
    return pages;
}

// Kernel memory of socket objects (slab caches, not in any process's RSS), bytes.
long slabSocketBytes() {
    FILE* f = std::fopen("/proc/slabinfo", "r");
    if (!f) return 0;
    char line[512];
    long bytes = 0;
    while (std::fgets(line, sizeof line, f)) {
        char name[64];
        long active = 0, total = 0, size = 0;
        if (std::sscanf(line, "%63s %ld %ld %ld", name, &active, &total, &size) != 4) continue;
        std::string n = name;
        if (n == "TCP" || n == "sock_inode_cache" || n == "eventpoll_epi" || n == "filp" || n == "dentry" ||
            n == "tcp_bind_bucket")
            bytes += active * size;
    }
    std::fclose(f);
    return bytes;
}

// ---------------------------------------------------------------- small parsers
// Integer (or float, e.g. 1.2e15) after `key` in [p, end); returns false if absent.
bool findNumber(const char* p, const char* end, std::string_view key, uint64_t& out) {
    const void* hit = memmem(p, size_t(end - p), key.data(), key.size());
    if (!hit) return false;
    const char* q = static_cast<const char*>(hit) + key.size();
    uint64_t v = 0;
    const char* s = q;
    while (q < end && *q >= '0' && *q <= '9') v = v * 10 + uint64_t(*q++ - '0');
    if (q == s) return false;
    if (q < end && (*q == '.' || *q == 'e' || *q == 'E')) {
        std::string tmp(s, size_t(std::min<std::ptrdiff_t>(end - s, 40)));
        v = uint64_t(std::strtod(tmp.c_str(), nullptr));
    }
    out = v;
    return true;
}

void setNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// ---------------------------------------------------------------- connections
enum class St : uint8_t { Connecting, Http, Open, Ns, Sub, Ready, Closed };

struct Conn {
    int fd = -1;
    St st = St::Connecting;
    bool slow = false;
    bool wantOut = false;
    std::string in, out;
    // per-client accounting
    uint64_t recv = 0, uniq = 0, dups = 0;
    std::vector<uint64_t> seen;  // bitset of seqs seen
};

struct Stats {
    uint64_t deliveries = 0;        // all, any time
    uint64_t winDeliveries = 0;     // inside the measurement window
    uint64_t acksSent = 0, winAcks = 0;
    uint64_t parseMisses = 0;
    Histogram lat;
};

struct Loadgen {
    Options o;
    int ep = -1;
    std::vector<Conn> conns;
    std::vector<int> dirty;  // conns with pending output this turn
    int connected = 0, subscribed = 0, closed = 0, inProgress = 0, nextToOpen = 0;
    bool measuring = false;
    Stats st;
    std::string sendScratch;
    std::string nsPrefix;  // "/feed," or "" for "/"
    std::string eventPrefix;  // ["t",
    std::vector<char> rbuf = std::vector<char>(1 << 18);

    // publisher
    int pubFd = -1;
    std::string pubOut, pubIn;
    bool pubBusy = false;
    uint64_t published = 0, pubErrors = 0, posts = 0, rejected = 0;
    int inPost = 0;  // messages in the POST awaiting its response
    uint64_t pubStartNs = 0;
    int fastSubs = 0;
    std::string pad;
    long slab0 = 0;

    explicit Loadgen(Options opt) : o(std::move(opt)) {
        nsPrefix = (o.ns == "/" ? std::string() : o.ns + ",");
        eventPrefix = "[\"" + o.topic + "\"";
        conns.resize(size_t(o.conns));
        for (int i = 0; i < o.slow && i < o.conns; ++i) conns[size_t(i)].slow = true;
        fastSubs = o.conns - std::min(o.slow, o.conns);
        // {"ts":<16>,"seq":<7>,"pad":"..."}  ~ 40 bytes of fixed text
        int padLen = std::max(0, o.payload - 48);
        pad.assign(size_t(padLen), 'x');
        ep = epoll_create1(0);
    }

    void openOne(int i) {
        Conn& c = conns[size_t(i)];
        bool connectFailed = false;
        c.fd = bench::tcpConnectNonBlocking(o.host, o.port, connectFailed);
        if (c.fd < 0) {
            std::perror("socket");
            std::exit(1);
        }
        if (connectFailed) {
            std::perror("connect");
            std::exit(1);
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u64 = uint64_t(i);
        epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
        c.st = St::Connecting;
        ++inProgress;
    }

    void setOut(int i, bool want) {
        Conn& c = conns[size_t(i)];
        if (c.wantOut == want) return;
        c.wantOut = want;
        epoll_event ev{};
        ev.events = (c.slow && c.st == St::Ready ? 0u : uint32_t(EPOLLIN)) | (want ? uint32_t(EPOLLOUT) : 0u);
        ev.data.u64 = uint64_t(i);
        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
    }

    void queueText(int i, std::string_view text) {
        Conn& c = conns[size_t(i)];
        if (c.out.empty()) dirty.push_back(i);
        bench::wsAppendClientFrame(c.out, text);
    }

    void flush(int i) {
        Conn& c = conns[size_t(i)];
        if (!bench::writePending(c.fd, c.out)) {
            closeConn(i);
            return;
        }
        setOut(i, !c.out.empty());
    }

    void closeConn(int i) {
        Conn& c = conns[size_t(i)];
        if (c.st == St::Closed) return;
        if (c.st == St::Ready) --subscribed;
        if (c.st == St::Connecting || c.st == St::Http || c.st == St::Open || c.st == St::Ns || c.st == St::Sub)
            --inProgress;
        c.st = St::Closed;
        ++closed;
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        ::close(c.fd);
        c.fd = -1;
        c.out.clear();
        c.in.clear();
    }

    void onConnected(int i) {
        Conn& c = conns[size_t(i)];
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            std::fprintf(stderr, "connect: %s\n", std::strerror(err));
            closeConn(i);
            return;
        }
        ++connected;
        c.st = St::Http;
        if (c.out.empty()) dirty.push_back(i);
        c.out += bench::wsUpgradeRequest(o.host, o.port);
        c.wantOut = true;  // registered with EPOLLOUT at open
        setOut(i, false);
    }

    void markSeen(Conn& c, uint64_t seq) {
        size_t w = size_t(seq >> 6);
        if (w >= c.seen.size()) c.seen.resize(std::max(w + 1, c.seen.size() * 2 + 16), 0);
        uint64_t bit = 1ull << (seq & 63);
        if (c.seen[w] & bit) {
            ++c.dups;
        } else {
            c.seen[w] |= bit;
            ++c.uniq;
        }
    }

    // One Engine.IO packet in a text frame.
    void onPacket(int i, const char* p, size_t n, uint64_t now) {
        Conn& c = conns[size_t(i)];
        if (n == 0) return;
        switch (p[0]) {
        case '0':  // open
            if (c.st == St::Open) {
                c.st = St::Ns;
                queueText(i, "40" + nsPrefix);
            }
            return;
        case '2':  // ping
            queueText(i, "3");
            return;
        case '1':
            closeConn(i);
            return;
        case '4':
            break;
        default:
            return;
        }
        if (n < 2) return;
        char type = p[1];
        const char* q = p + 2;
        const char* end = p + n;
        if (!nsPrefix.empty()) {
            if (size_t(end - q) < nsPrefix.size() || std::memcmp(q, nsPrefix.data(), nsPrefix.size()) != 0) return;
            q += nsPrefix.size();
        }
        if (type == '2') {  // EVENT
            while (q < end && *q >= '0' && *q <= '9') ++q;  // optional ack id
            if (size_t(end - q) >= eventPrefix.size() && std::memcmp(q, eventPrefix.data(), eventPrefix.size()) == 0 &&
                (q[eventPrefix.size()] == ',' || q[eventPrefix.size()] == ']')) {
                onDelivery(i, q, end, now);
            } else if (c.st == St::Sub && memmem(q, size_t(end - q), "\"subscribed\"", 12)) {
                subscribedNow(i);
            }
        } else if (type == '3') {  // ACK of our subscribe (id 1)
            if (c.st == St::Sub) {
                if (memmem(q, size_t(end - q), "false", 5)) {
                    std::fprintf(stderr, "subscribe refused: %.*s\n", int(n), p);
                    closeConn(i);
                    return;
                }
                subscribedNow(i);
            }
        } else if (type == '0') {  // CONNECT ok
            if (c.st == St::Ns) {
                c.st = St::Sub;
                queueText(i, "42" + nsPrefix + "1[\"subscribe\",{\"topic\":\"" + o.topic + "\"}]");
            }
        } else if (type == '4') {  // CONNECT_ERROR
            std::fprintf(stderr, "namespace refused: %.*s\n", int(n), p);
            closeConn(i);
        }
    }

    void subscribedNow(int i) {
        Conn& c = conns[size_t(i)];
        c.st = St::Ready;
        ++subscribed;
        --inProgress;
        if (c.slow) {  // stop reading from now on: the server sees a subscriber that never drains
            epoll_event ev{};
            ev.events = c.wantOut ? uint32_t(EPOLLOUT) : 0u;
            ev.data.u64 = uint64_t(i);
            epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        }
    }

    void onDelivery(int i, const char* q, const char* end, uint64_t now) {
        Conn& c = conns[size_t(i)];
        ++c.recv;
        ++st.deliveries;
        uint64_t ts = 0, seq = 0;
        if (findNumber(q, end, "\"ts\":", ts)) {
            if (measuring) {
                ++st.winDeliveries;
                st.lat.add(now > ts ? now - ts : 0);
            }
        } else {
            ++st.parseMisses;
        }
        if (findNumber(q, end, "\"seq\":", seq)) markSeen(c, seq);
        if (o.ack) {
            const char* mid = static_cast<const char*>(memmem(q, size_t(end - q), "\"messageId\":\"", 13));
            if (mid) {
                mid += 13;
                const char* e = static_cast<const char*>(std::memchr(mid, '"', size_t(end - mid)));
                if (e) {
                    sendScratch.assign("42");
                    sendScratch += nsPrefix;
                    sendScratch += "[\"ack\",{\"topic\":\"";
                    sendScratch += o.topic;
                    sendScratch += "\",\"messageId\":\"";
                    sendScratch.append(mid, size_t(e - mid));
                    sendScratch += "\"}]";
                    queueText(i, sendScratch);
                    ++st.acksSent;
                    if (measuring) ++st.winAcks;
                }
            }
        }
    }

    // Handles the websocket frames in [p, p+len); returns bytes consumed.
    // One websocket frame; false once the connection is closed.
    bool onFrame(int i, uint8_t opcode, const char* body, size_t plen, uint64_t now) {
        if (opcode == 0x1 || opcode == 0x0) {
            onPacket(i, body, plen, now);
        } else if (opcode == 0x9) {
            Conn& c = conns[size_t(i)];
            if (c.out.empty()) dirty.push_back(i);
            bench::wsAppendClientFrame(c.out, std::string_view(body, plen), 0xA);
        } else if (opcode == 0x8) {
            closeConn(i);
            return false;
        }
        return conns[size_t(i)].st != St::Closed;
    }

    void onReadable(int i) {
        Conn& c = conns[size_t(i)];
        size_t have = c.in.size();
        ssize_t n = bench::readAfterCarry(c.fd, c.in, rbuf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            closeConn(i);
            return;
        }
        if (n < 0) return;
        uint64_t now = nowNs();
        size_t hlen = 0;
        auto frame = [&](uint8_t opcode, const char* body, size_t plen) { return onFrame(i, opcode, body, plen, now); };
        if (!bench::wsTakeInput(rbuf.data(), have + size_t(n), c.st == St::Http, c.in, hlen, [&] { c.st = St::Open; }, frame)) {
            std::fprintf(stderr, "upgrade refused: %.*s\n", int(std::min<size_t>(hlen, 200)), rbuf.data());
            closeConn(i);
        }
    }

    // ------------------------------------------------------------ publisher
    void pubConnect() {
        pubFd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a = bench::ipv4Address(o.host, o.controlPort);
        if (connect(pubFd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
            std::perror("connect control");
            std::exit(1);
        }
        int one = 1;
        setsockopt(pubFd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setNonBlocking(pubFd);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = ~0ull;
        epoll_ctl(ep, EPOLL_CTL_ADD, pubFd, &ev);
    }

    void pubSend(int count) {
        std::string body;
        body.reserve(size_t(count) * (size_t(o.payload) + 80) + 2);
        body += '[';
        uint64_t ts = nowNs();
        for (int k = 0; k < count; ++k) {
            if (k) body += ',';
            bench::appendPublishEntry(body, o.ns, o.topic, ts, published++, pad);
        }
        body += ']';
        pubOut += bench::publishRequestHead(o.host, o.controlPort, o.token, body.size());
        pubOut += body;
        pubBusy = true;
        inPost = count;
        ++posts;
        pubFlush();
    }

    void pubFlush() {
        if (!bench::writePending(pubFd, pubOut)) {
            std::perror("control write");
            std::exit(1);
        }
        epoll_event ev{};
        ev.events = EPOLLIN | (pubOut.empty() ? 0u : uint32_t(EPOLLOUT));
        ev.data.u64 = ~0ull;
        epoll_ctl(ep, EPOLL_CTL_MOD, pubFd, &ev);
    }

    void pubReadable() {
        char buf[65536];
        for (;;) {
            ssize_t n = ::read(pubFd, buf, sizeof buf);
            if (n == 0) {
                std::fprintf(stderr, "control connection closed by server\n");
                std::exit(1);
            }
            if (n < 0) break;
            pubIn.append(buf, size_t(n));
        }
        // complete responses (Content-Length or chunked)
        for (;;) {
            size_t he = pubIn.find("\r\n\r\n");
            if (he == std::string::npos) return;
            std::string head = pubIn.substr(0, he);
            for (auto& ch : head) ch = char(std::tolower(static_cast<unsigned char>(ch)));
            size_t total;
            size_t cl = head.find("content-length:");
            if (cl != std::string::npos) {
                total = he + 4 + size_t(std::atol(head.c_str() + cl + 15));
                if (pubIn.size() < total) return;
            } else if (head.find("chunked") != std::string::npos) {
                size_t z = pubIn.find("\r\n0\r\n\r\n", he);
                if (z == std::string::npos) {
                    if (pubIn.compare(he + 4, 5, "0\r\n\r\n") != 0) return;
                    total = he + 9;
                } else {
                    total = z + 7;
                }
            } else {
                total = he + 4;
            }
            if (pubIn.compare(9, 3, "200") != 0) {
                ++pubErrors;
                if (pubErrors <= 3)
                    std::fprintf(stderr, "publish error: %.*s\n", int(std::min<size_t>(total, 300)), pubIn.c_str());
            }
            // {"published":N,...}: messages the server refused count as rejected, not lost
            size_t pp = pubIn.find("\"published\":", he);
            if (pp != std::string::npos && pp < total) {
                long ok = std::atol(pubIn.c_str() + pp + 12);
                if (ok < inPost) rejected += uint64_t(inPost - ok);
            }
            pubIn.erase(0, total);
            pubBusy = false;
        }
    }

    // Called every loop turn while publishing.
    void pubTick(uint64_t now, bool stop) {
        if (pubFd < 0 || pubBusy || stop) return;
        if (o.rate > 0) {
            uint64_t due = uint64_t(double(now - pubStartNs) * o.rate / 1e9);
            if (due > published) pubSend(int(std::min<uint64_t>(due - published, uint64_t(o.batch) * 16)));
        } else {
            // closed window: messages not yet received by the average fast subscriber
            uint64_t recvFast = 0;
            recvFast = st.deliveries;
            double perSub = fastSubs ? double(recvFast) / double(fastSubs) : 0;
            double inflight = double(published) - perSub;
            if (inflight < double(o.window) - double(o.batch) / 2) {
                int n = int(std::min<double>(o.batch, double(o.window) - inflight));
                if (n > 0) pubSend(n);
            }
        }
    }

    // ------------------------------------------------------------ loop
    void turn(int timeoutMs, uint64_t now, bool pubStop) {
        epoll_event evs[512];
        int n = epoll_wait(ep, evs, 512, timeoutMs);
        for (int k = 0; k < n; ++k) {
            uint64_t id = evs[k].data.u64;
            if (id == ~0ull) {
                if (evs[k].events & EPOLLOUT) pubFlush();
                if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) pubReadable();
                continue;
            }
            int i = int(id);
            Conn& c = conns[size_t(i)];
            if (c.st == St::Closed) continue;
            if (c.st == St::Connecting) {
                if (evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) onConnected(i);
                continue;
            }
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) onReadable(i);
            if (c.st != St::Closed && (evs[k].events & EPOLLOUT)) flush(i);
        }
        // one write per connection per turn, with everything it has pending (acks batch up)
        for (size_t d = 0; d < dirty.size(); ++d) {
            int i = dirty[d];
            if (conns[size_t(i)].st != St::Closed) flush(i);
        }
        dirty.clear();
        (void)now;
        (void)pubStop;
    }

    int run() {
        double cpu0 = selfCpuSeconds();
        long rss0 = procRssKb(o.serverPid);
        long tcp0 = sockstatTcpMemPages();
        slab0 = slabSocketBytes();
        uint64_t t0 = nowNs();
        // --- connect + subscribe everyone, a bounded number of handshakes at a time
        uint64_t deadline = t0 + 120ull * 1000000000ull;
        while (subscribed + closed < o.conns) {
            while (nextToOpen < o.conns && inProgress < o.maxPending) openOne(nextToOpen++);
            turn(50, nowNs(), true);
            if (nowNs() > deadline) {
                std::fprintf(stderr, "timeout: %d/%d subscribed\n", subscribed, o.conns);
                break;
            }
        }
        uint64_t t1 = nowNs();
        std::fprintf(stderr, "loadgen: %d/%d subscribed in %.2f s (%d closed)\n", subscribed, o.conns,
                     double(t1 - t0) / 1e9, closed);
        if (o.conns == 0) return runLoad();  // publisher only
        if (subscribed == 0) {
            std::printf("RESULT ok=0 subscribed=0\n");
            return 1;
        }
        if (o.idle > 0) return runIdle(cpu0, rss0, tcp0);
        return runLoad();
    }

    int runIdle(double, long rss0, long tcp0) {
        uint64_t end = nowNs() + uint64_t(o.holdS * 1e9);
        while (nowNs() < end) turn(100, nowNs(), true);
        long rss1 = procRssKb(o.serverPid);
        long tcp1 = sockstatTcpMemPages();
        long slab1 = slabSocketBytes();
        double slabPerConn = subscribed ? double(slab1 - slab0) / double(subscribed) : 0;
        double perConn = subscribed ? double(rss1 - rss0) * 1024.0 / double(subscribed) : 0;
        double kernPerConn = subscribed ? double(tcp1 - tcp0) * double(sysconf(_SC_PAGESIZE)) / double(subscribed) : 0;
        std::fprintf(stderr, "loadgen idle: %d connections, server RSS %ld -> %ld KiB: %.0f B/conn; kernel TCP buffers +%.0f B/conn, socket slabs +%.0f B/conn (both ends)\n",
                     subscribed, rss0, rss1, perConn, kernPerConn, slabPerConn);
        std::printf("RESULT ok=1 label=%s conns=%d rss0_kb=%ld rss1_kb=%ld rss_per_conn_b=%.0f kernel_tcp_per_conn_b=%.0f kernel_slab_per_conn_b=%.0f\n",
                    o.label.empty() ? "-" : o.label.c_str(), subscribed, rss0, rss1, perConn, kernPerConn, slabPerConn);
        return 0;
    }

    int runLoad() {
        if (o.controlPort > 0) pubConnect();
        pubStartNs = nowNs();
        uint64_t tWarm = pubStartNs + uint64_t(o.warmupS * 1e9);
        uint64_t tEnd = tWarm + uint64_t(o.measureS * 1e9);
        uint64_t tDrain = tEnd + uint64_t(o.drainS * 1e9);
        double cpuA = 0, cpuB = 0, srvA = 0, srvB = 0;
        long rssA = 0, rssB = 0;
        uint64_t wA = 0, wB = 0, pubA = 0, pubB = 0;
        int phase = 0;
        for (;;) {
            uint64_t now = nowNs();
            if (phase == 0 && now >= tWarm) {
                phase = 1;
                measuring = true;
                cpuA = selfCpuSeconds();
                srvA = procCpuSeconds(o.serverPid);
                rssA = procRssKb(o.serverPid);
                wA = now;
                pubA = published;
            } else if (phase == 1 && now >= tEnd) {
                phase = 2;
                measuring = false;
                cpuB = selfCpuSeconds();
                srvB = procCpuSeconds(o.serverPid);
                rssB = procRssKb(o.serverPid);
                wB = now;
                pubB = published;
            } else if (phase == 2 && !pubBusy &&
                       (now >= tDrain ||
                        (o.controlPort > 0 && st.deliveries >= (published - rejected) * uint64_t(fastSubs)))) {
                break;
            }
            pubTick(now, phase >= 2);
            bool rateMode = o.controlPort > 0 && o.rate > 0;
            turn(rateMode || phase >= 2 ? 1 : (o.controlPort > 0 ? 1 : 50), now, phase >= 2);
        }
        double win = double(wB - wA) / 1e9;
        double dps = double(st.winDeliveries) / win;
        double acks = double(st.winAcks) / win;
        double genCpu = (cpuB - cpuA) / win, srvCpu = (srvB - srvA) / win;
        // loss: messages published that a fast, still-open subscriber never saw
        uint64_t lost = 0, dups = 0, openFast = 0;
        uint64_t minSeq = 0;
        for (auto& c : conns) {
            if (c.slow || c.st != St::Ready) continue;
            ++openFast;
            dups += c.dups;
            uint64_t accepted = published - rejected;
            if (o.controlPort > 0 && accepted > c.uniq) lost += accepted - c.uniq;
        }
        (void)minSeq;
        double pubRate = double(pubB - pubA) / win;
        // without our publisher (bare loop, embedded publish) loss is not known: n/a
        std::string lostText = o.controlPort > 0 ? std::to_string(lost) : "n/a";
        auto us = [](uint64_t ns) { return double(ns) / 1000.0; };
        std::fprintf(stderr,
                     "loadgen %s: %.0f deliveries/s (%.0f msgs/s published), acks %.0f/s; latency us p50 %.1f p99 %.1f "
                     "p99.9 %.1f max %.1f; lost %" PRIu64 " dups %" PRIu64 "; loadgen CPU %.2f cores, server CPU %.2f "
                     "cores; server RSS %ld -> %ld KiB\n",
                     o.label.c_str(), dps, pubRate, acks, us(st.lat.percentile(0.5)), us(st.lat.percentile(0.99)),
                     us(st.lat.percentile(0.999)), us(st.lat.max), lost, dups, genCpu, srvCpu, rssA, rssB);
        std::printf("RESULT ok=1 label=%s subs=%d open=%" PRIu64 " deliveries_per_s=%.0f published_per_s=%.0f "
                    "acks_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f lost=%s dups=%" PRIu64
                    " published=%" PRIu64 " rejected=%" PRIu64 " posts=%" PRIu64 " pub_errors=%" PRIu64 " parse_misses=%" PRIu64
                    " gen_cpu=%.2f srv_cpu=%.2f rss_start_kb=%ld rss_end_kb=%ld\n",
                    o.label.empty() ? "-" : o.label.c_str(), o.conns, openFast, dps, pubRate, acks,
                    us(st.lat.percentile(0.5)), us(st.lat.percentile(0.99)), us(st.lat.percentile(0.999)),
                    us(st.lat.max), lostText.c_str(), dups, published, rejected, posts, pubErrors, st.parseMisses, genCpu, srvCpu, rssA, rssB);
        return 0;
    }
};

}  // namespace

int main(int argc, char** argv) {
    Options o = parseArgs(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    Loadgen g(o);
    return g.run();
}
