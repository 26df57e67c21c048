// storm: the reconnect-storm benchmark of connection-state recovery (docs/recovery.md).
//
// One thread, one epoll set (as loadgen). Opens N websocket Socket.IO v5 clients to a
// namespace of a server with recovery on, subscribes each to a topic, and publishes through
// the control API (keep-alive POST /v1/publish) at a steady --rate until every client holds
// a pid and an offset. Then it cuts all N TCP connections at once (RST by default, as a
// network change looks to the server once it writes; --cut fin for an orderly close) and at
// once reconnects all of them: new TCP + websocket Engine.IO handshake +
// `40<ns>,{"pid":...,"offset":...}`. The publisher keeps going during the storm, so every
// client also misses messages while it is away.
//
// Per client, from its own cut (or from when it starts reconnecting, with --away-ms/--jitter-ms):
//   connect  : the CONNECT answer; recovered if its sid is the old one, fresh otherwise
//   first    : the first message it had not received before the cut
//   caught up: it holds every message published until its CONNECT answer arrived
// and per client a seq check over the whole run: gaps (a seq skipped) and duplicates.
// A reconnect that fails before its CONNECT answer (refused, reset) is retried after
// --retry-ms, as a client's own reconnection would. --away-ms keeps the clients away that
// long before they reconnect (the times include it).
//
// Output: human-readable lines on stderr, one `RESULT key=value ...` line on stdout.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <dirent.h>
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

// Seconds the process's threads spent waiting in the run queue (runnable, not running): on a
// shared machine this, not the server's own work, can be where the storm's time goes.
double procRunQueueSeconds(int pid) {
    if (pid <= 0) return 0;
    char path[96];
    std::snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR* d = opendir(path);
    if (!d) return 0;
    double total = 0;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        char f[320];
        std::snprintf(f, sizeof f, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE* fp = std::fopen(f, "r");
        if (!fp) continue;
        unsigned long long run = 0, wait = 0;
        if (std::fscanf(fp, "%llu %llu", &run, &wait) == 2) total += double(wait) / 1e9;
        std::fclose(fp);
    }
    closedir(d);
    return total;
}

// A TcpExt counter of /proc/net/netstat (system-wide): ListenOverflows counts connections the
// kernel dropped because a listener's accept queue was full; the client then waits for its
// SYN or its data to be resent (1 s, 3 s, 7 s, ...).
long tcpExtCounter(const char* name) {
    FILE* f = std::fopen("/proc/net/netstat", "r");
    if (!f) return -1;
    std::string names, values;
    char line[8192];
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, "TcpExt:", 7) != 0) continue;
        if (names.empty()) names = line;
        else values = line;
    }
    std::fclose(f);
    size_t a = 0, b = 0;
    while (a < names.size() && b < values.size()) {
        size_t ae = names.find_first_of(" \n", a), be = values.find_first_of(" \n", b);
        if (names.compare(a, ae - a, name) == 0) return std::atol(values.c_str() + b);
        if (ae == std::string::npos || be == std::string::npos) break;
        a = ae + 1;
        b = be + 1;
    }
    return -1;
}

// ---------------------------------------------------------------- options
struct Options {
    std::string host = "127.0.0.1";
    int port = 0, controlPort = 0;
    int reconnectPort = 0;   // the storm's reconnects go here (another cluster node); 0 = --port
    std::string ns = "/feed", topic = "t";
    int conns = 1000;
    double rate = 20;        // messages/s, before and during the storm
    int batch = 16;          // max messages per POST
    int payload = 100;
    int pre = 3;             // messages every client receives before the cut
    bool rst = true;         // --cut rst|fin
    int maxPending = 200;    // handshakes at once while setting up (not during the storm)
    int stormPending = 0;    // handshakes at once during the storm; 0 = all at once
    int retryMs = 200;
    int awayMs = 0;          // between the cut and the reconnects
    int jitterMs = 0;        // each client waits a further random 0..jitter ms (a client's own backoff)
    double timeoutS = 60;    // storm: give up on clients not caught up by then
    double tailS = 1;        // keep publishing after all caught up, then check the tails
    int serverPid = 0;
    std::string label = "-";
};

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: storm --port P --control PORT [--host H] [--ns /feed] [--topic t] [--conns N]\n"
                 "             [--rate MSGS_PER_S] [--batch B] [--payload BYTES] [--pre K] [--cut rst|fin]\n"
                 "             [--max-pending N] [--storm-pending N] [--retry-ms MS] [--away-ms MS]\n"
                 "             [--jitter-ms MS] [--reconnect-port P]\n"
                 "             [--timeout S] [--tail S]\n"
                 "             [--server-pid PID] [--label TEXT]\n");
    std::exit(2);
}

Options parseArgs(int argc, char** argv) {
    Options o = bench::parseOptions<Options>(argc, argv, usage, [](const std::string& a, auto&& next, Options& t) {
        if (a == "--pre") t.pre = std::atoi(next());
        else if (a == "--cut") {
            std::string c = next();
            if (c != "rst" && c != "fin") usage();
            t.rst = c == "rst";
        } else if (a == "--storm-pending") t.stormPending = std::atoi(next());
        else if (a == "--retry-ms") t.retryMs = std::atoi(next());
        else if (a == "--away-ms") t.awayMs = std::atoi(next());
        else if (a == "--jitter-ms") t.jitterMs = std::atoi(next());
        else if (a == "--reconnect-port") t.reconnectPort = std::atoi(next());
        else if (a == "--timeout") t.timeoutS = std::atof(next());
        else if (a == "--tail") t.tailS = std::atof(next());
        else return false;
        return true;
    });
    if (o.port <= 0 || o.controlPort <= 0 || o.conns <= 0 || o.rate <= 0 || o.pre < 1) usage();
    if (o.batch < 1) o.batch = 1;
    if (o.maxPending < 1) o.maxPending = 1;
    return o;
}

// Exact percentiles: one sample per client, at most a few tens of thousands.
constexpr uint64_t kInf = ~0ull;

struct Samples {
    std::vector<uint64_t> v;
    void add(uint64_t x) { v.push_back(x); }
    uint64_t pct(double p) {
        if (v.empty()) return 0;
        std::sort(v.begin(), v.end());
        size_t k = size_t(p * double(v.size()));
        return v[std::min(k, v.size() - 1)];
    }
    uint64_t max() {
        return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
    }
};

// The string value of "key":"..." in [p, end) (ids and offsets carry no escapes).
std::string stringAfter(const char* p, const char* end, std::string_view key) {
    const void* hit = memmem(p, size_t(end - p), key.data(), key.size());
    if (!hit) return {};
    const char* q = static_cast<const char*>(hit) + key.size();
    const char* e = static_cast<const char*>(std::memchr(q, '"', size_t(end - q)));
    return e ? std::string(q, size_t(e - q)) : std::string();
}

bool numberAfter(const char* p, const char* end, std::string_view key, int64_t& out) {
    const void* hit = memmem(p, size_t(end - p), key.data(), key.size());
    if (!hit) return false;
    const char* q = static_cast<const char*>(hit) + key.size();
    const char* s = q;
    int64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9') v = v * 10 + (*q++ - '0');
    if (q == s) return false;
    out = v;
    return true;
}

// ---------------------------------------------------------------- clients
enum class St : uint8_t { Idle, Connecting, Http, Open, Ns, Sub, Ready, Failed };

struct Client {
    int fd = -1;
    St st = St::Idle;
    bool wantOut = false, reconnecting = false, answered = false, recovered = false;
    std::string in, out, sid, pid, offset;
    std::vector<std::string> early;  // events that came before the CONNECT answer (socket.io sends missed ones first)
    int64_t lastSeq = -1;      // highest seq received; every seq up to it arrived (or counted as a gap)
    int64_t seqAtCut = -1, needSeq = -1;
    uint64_t recv = 0, gaps = 0, dups = 0;
    int64_t gapFrom = -1, gapTo = -1;  // the first gap: seqs never received
    uint64_t cutNs = 0, startNs = 0, connectNs = 0, firstNs = 0, caughtNs = 0, retryAtNs = 0;
    int retries = 0;
};

// ---------------------------------------------------------------- publisher
// Its own thread with a blocking keep-alive connection to the control API: a steady rate that
// the storm (seconds of connects in the client loop) cannot stall. Each message carries
// {"ts", "seq"}; seqs are consecutive from 0, so a client can see any gap.
struct Publisher {
    const Options& o;
    std::atomic<uint64_t> published{0};  // seqs handed out (a message is in flight or accepted)
    std::atomic<uint64_t> rejected{0}, errors{0}, answered{0};
    std::atomic<bool> on{false}, stop{false}, busy{false};
    std::thread th;
    int fd = -1;
    std::string pad;

    explicit Publisher(const Options& opt) : o(opt) { pad.assign(size_t(std::max(0, o.payload - 48)), 'x'); }
    ~Publisher() {
        stop = true;
        if (th.joinable()) th.join();
    }

    bool connectNow() {
        if (fd >= 0) ::close(fd);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a = bench::ipv4Address(o.host, o.controlPort);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) return false;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return true;
    }

    // One POST of `count` messages and its answer; false if the connection failed.
    bool post(int count) {
        std::string body = "[";
        uint64_t ts = nowNs();
        for (int k = 0; k < count; ++k) {
            if (k) body += ',';
            bench::appendPublishEntry(body, o.ns, o.topic, ts, published.fetch_add(1), pad);
        }
        body += ']';
        std::string req = bench::publishRequestHead(o.host, o.controlPort, std::string(), body.size()) + body;
        for (size_t off = 0; off < req.size();) {
            ssize_t n = ::write(fd, req.data() + off, req.size() - off);
            if (n <= 0) return false;
            off += size_t(n);
        }
        std::string in;
        char buf[8192];
        for (;;) {
            size_t he = in.find("\r\n\r\n");
            if (he != std::string::npos) {
                std::string h = in.substr(0, he);
                for (auto& ch : h) ch = char(std::tolower(static_cast<unsigned char>(ch)));
                size_t cl = h.find("content-length:");
                size_t total = he + 4 + (cl == std::string::npos ? 0 : size_t(std::atol(h.c_str() + cl + 15)));
                if (in.size() >= total) {
                    if (in.compare(9, 3, "200") != 0 && errors.fetch_add(1) < 3)
                        std::fprintf(stderr, "storm: publish error: %.*s\n", int(std::min<size_t>(total, 300)), in.c_str());
                    size_t pp = in.find("\"published\":", he);
                    if (pp != std::string::npos) {
                        long ok = std::atol(in.c_str() + pp + 12);
                        if (ok < count) rejected += uint64_t(count - ok);
                    }
                    ++answered;
                    return true;
                }
            }
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) return false;
            in.append(buf, size_t(n));
        }
    }

    void start() {
        if (!connectNow()) {
            std::perror("connect control");
            std::exit(1);
        }
        on = true;
        th = std::thread([this] {
            uint64_t t0 = nowNs();
            while (!stop) {
                if (!on) {  // stopped for good (the tail check)
                    ::usleep(1000);
                    continue;
                }
                uint64_t due = uint64_t(double(nowNs() - t0) * o.rate / 1e9);
                if (due > published) {
                    busy = true;
                    if (!post(int(std::min<uint64_t>(due - published, uint64_t(o.batch))))) {
                        // A message in a POST that got no answer may or may not be published: say so.
                        if (errors.fetch_add(1) < 3) std::fprintf(stderr, "storm: control connection failed mid-request\n");
                        if (!connectNow()) {
                            std::perror("reconnect control");
                            std::exit(1);
                        }
                    }
                    busy = false;
                    continue;
                }
                ::usleep(1000);
            }
        });
    }
};

struct Storm {
    Options o;
    int ep = -1;
    std::vector<Client> cs;
    std::vector<int> dirty, retry;
    std::string nsPrefix, eventPrefix, pad;
    std::vector<char> rbuf = std::vector<char>(1 << 18);
    int ready = 0, pending = 0, failed = 0, lostAfter = 0, lostUncaught = 0, answered = 0, recovered = 0, fresh = 0, caught = 0, withPre = 0;
    int nextToOpen = 0;
    bool storming = false;
    // Recovery across cluster nodes (docs/cluster.md): the load balancer sends the reconnects elsewhere.
    int targetPort() const { return storming && o.reconnectPort > 0 ? o.reconnectPort : o.port; }
    uint64_t cutStartNs = 0, cutEndNs = 0;
    Publisher pub;

    explicit Storm(Options opt) : o(std::move(opt)), pub(o) {
        nsPrefix = o.ns == "/" ? std::string() : o.ns + ",";
        eventPrefix = "[\"" + o.topic + "\"";
        pad.assign(size_t(std::max(0, o.payload - 48)), 'x');
        cs.resize(size_t(o.conns));
        ep = epoll_create1(0);
    }

    void open(int i) {
        Client& c = cs[size_t(i)];
        bool connectFailed = false;
        c.fd = bench::tcpConnectNonBlocking(o.host, targetPort(), connectFailed);
        if (c.fd < 0) {
            std::perror("socket (raise ulimit -n)");
            std::exit(1);
        }
        c.st = St::Connecting;
        c.in.clear();
        c.out.clear();
        ++pending;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u64 = uint64_t(i);
        c.wantOut = true;
        epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
        if (connectFailed) drop(i, "connect");
    }

    // The connection ended before we meant it to: a reconnect is retried, a first connect fails.
    void drop(int i, const char* why) {
        Client& c = cs[size_t(i)];
        if (c.fd >= 0) {
            epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
            ::close(c.fd);
            c.fd = -1;
        }
        if (c.st != St::Ready && c.st != St::Idle && c.st != St::Failed) --pending;
        if (c.st == St::Ready) --ready;
        if (c.reconnecting && !c.answered) {
            ++c.retries;
            c.st = St::Idle;
            c.retryAtNs = nowNs() + uint64_t(o.retryMs) * 1000000ull;
            retry.push_back(i);
            return;
        }
        if (c.answered) {  // lost after its CONNECT answer: no longer followed
            ++lostAfter;
            if (c.recovered && !c.caughtNs) ++lostUncaught;
            c.st = St::Failed;
            return;
        }
        if (c.st != St::Failed) {
            if (failed < 5) std::fprintf(stderr, "storm: client %d lost (%s)\n", i, why);
            c.st = St::Failed;
            ++failed;
        }
    }

    // The cut: the connection vanishes at once (RST unless --cut fin); nothing is read from it again.
    void cut(int i, uint64_t now) {
        Client& c = cs[size_t(i)];
        if (o.rst) {
            linger l{1, 0};
            setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        ::close(c.fd);
        c.fd = -1;
        --ready;
        c.st = St::Idle;
        c.reconnecting = true;
        c.cutNs = now;
        c.seqAtCut = c.lastSeq;
        c.retryAtNs = 0;
    }

    void setOut(int i, bool want) {
        Client& c = cs[size_t(i)];
        if (c.wantOut == want) return;
        c.wantOut = want;
        epoll_event ev{};
        ev.events = EPOLLIN | (want ? uint32_t(EPOLLOUT) : 0u);
        ev.data.u64 = uint64_t(i);
        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
    }

    void queue(int i, std::string_view text, uint8_t opcode = 0x1) {
        Client& c = cs[size_t(i)];
        if (c.out.empty()) dirty.push_back(i);
        bench::wsAppendClientFrame(c.out, text, opcode);
    }

    void flush(int i) {
        Client& c = cs[size_t(i)];
        if (!bench::writePending(c.fd, c.out)) {
            drop(i, "write");
            return;
        }
        setOut(i, !c.out.empty());
    }

    void onConnected(int i) {
        Client& c = cs[size_t(i)];
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            drop(i, std::strerror(err));
            return;
        }
        c.st = St::Http;
        if (c.out.empty()) dirty.push_back(i);
        c.out += bench::wsUpgradeRequest(o.host, targetPort());
    }

    void onPacket(int i, const char* p, size_t n, uint64_t now) {
        Client& c = cs[size_t(i)];
        if (n == 0) return;
        if (p[0] == '2') {  // Engine.IO ping: a pong confirms what came before it (docs/recovery.md)
            queue(i, "3");
            return;
        }
        if (p[0] == '1') {
            drop(i, "engine.io close");
            return;
        }
        if (p[0] == '0') {
            if (c.st != St::Open) return;
            c.st = St::Ns;
            std::string connect = "40" + nsPrefix;
            if (c.reconnecting) connect += "{\"pid\":\"" + c.pid + "\",\"offset\":\"" + c.offset + "\"}";
            queue(i, connect);
            return;
        }
        if (p[0] != '4' || n < 2) return;
        char type = p[1];
        const char* q = p + 2;
        const char* end = p + n;
        if (size_t(end - q) < nsPrefix.size() || std::memcmp(q, nsPrefix.data(), nsPrefix.size()) != 0) return;
        q += nsPrefix.size();
        if (type == '2') {
            while (q < end && *q >= '0' && *q <= '9') ++q;  // optional ack id
            if (size_t(end - q) > eventPrefix.size() && std::memcmp(q, eventPrefix.data(), eventPrefix.size()) == 0 &&
                q[eventPrefix.size()] == ',') {
                // Like socket.io-client, hold events until the CONNECT answer, then hand them over.
                if (c.st == St::Ns) c.early.emplace_back(q, size_t(end - q));
                else onDelivery(i, q, end, now);
            }
        } else if (type == '3') {  // the ack of our subscribe
            if (c.st != St::Sub) return;
            if (memmem(q, size_t(end - q), "false", 5)) {
                std::fprintf(stderr, "storm: subscribe refused: %.*s\n", int(n), p);
                drop(i, "subscribe refused");
                return;
            }
            c.st = St::Ready;
            --pending;
            ++ready;
        } else if (type == '0') {
            if (c.st != St::Ns) return;
            std::string sid = stringAfter(q, end, "\"sid\":\""), pid = stringAfter(q, end, "\"pid\":\"");
            if (!c.reconnecting) {
                if (pid.empty()) {
                    std::fprintf(stderr, "storm: the CONNECT answer has no pid (is connectionStateRecovery on?): %.*s\n",
                                 int(n), p);
                    std::exit(1);
                }
                c.sid = sid;
                c.pid = pid;
                c.st = St::Sub;
                queue(i, "42" + nsPrefix + "1[\"subscribe\",{\"topic\":\"" + o.topic + "\"}]");
                return;
            }
            c.answered = true;
            ++answered;
            c.connectNs = now;
            c.st = St::Ready;
            --pending;
            ++ready;
            if (sid == c.sid) {
                c.recovered = true;
                ++recovered;
                // Everything published until now was missed or seen: caught up once it all arrived.
                c.needSeq = int64_t(pub.published.load()) - 1;
                for (auto& e : c.early) onDelivery(i, e.data(), e.data() + e.size(), now);
                checkCaught(c, now);
            } else {
                ++fresh;  // a fresh session has no subscription: it counts as a failure, not followed further
            }
            c.early.clear();
            c.early.shrink_to_fit();
            if (!pid.empty()) c.pid = pid;
        } else if (type == '4') {
            std::fprintf(stderr, "storm: CONNECT refused: %.*s\n", int(n), p);
            drop(i, "connect refused");
        }
    }

    void checkCaught(Client& c, uint64_t now) {
        if (c.caughtNs == 0 && c.recovered && c.lastSeq >= c.needSeq) {
            c.caughtNs = now;
            ++caught;
        }
    }

    // ["t",{"ts":..,"seq":N,...},"offset"]: the offset is the last argument (docs/recovery.md).
    void onDelivery(int i, const char* q, const char* end, uint64_t now) {
        Client& c = cs[size_t(i)];
        if (c.reconnecting && !c.recovered) return;  // a fresh session is not followed
        int64_t seq;
        if (!numberAfter(q, end, "\"seq\":", seq)) return;
        const char* e = end;
        while (e > q && e[-1] != '"') --e;  // closing quote of the offset
        const char* b = e > q ? e - 1 : q;
        while (b > q && b[-1] != '"') --b;
        if (e > b + 1) c.offset.assign(b, size_t(e - 1 - b));
        ++c.recv;
        if (seq <= c.lastSeq) {
            ++c.dups;
            return;
        }
        // Everyone subscribed before the first publish, so the first seq is 0.
        if (seq > c.lastSeq + 1) {
            c.gaps += uint64_t(seq - c.lastSeq - 1);
            if (c.gapFrom < 0) {
                c.gapFrom = c.lastSeq + 1;
                c.gapTo = seq - 1;
            }
        }
        c.lastSeq = seq;
        if (!c.reconnecting) {
            if (c.recv == uint64_t(o.pre)) ++withPre;
            return;
        }
        if (c.firstNs == 0 && seq > c.seqAtCut) c.firstNs = now;
        checkCaught(c, now);
    }

    // One websocket frame; false once the connection is gone.
    bool onFrame(int i, uint8_t opcode, const char* body, size_t plen, uint64_t now) {
        if (opcode == 0x1 || opcode == 0x0) onPacket(i, body, plen, now);
        else if (opcode == 0x9) queue(i, std::string_view(body, plen), 0xA);
        else if (opcode == 0x8) drop(i, "websocket close");
        return cs[size_t(i)].fd >= 0;
    }

    void onReadable(int i) {
        Client& c = cs[size_t(i)];
        size_t have = c.in.size();
        ssize_t n = bench::readAfterCarry(c.fd, c.in, rbuf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            drop(i, n == 0 ? "closed by server" : std::strerror(errno));
            return;
        }
        if (n < 0) return;
        uint64_t now = nowNs();
        size_t hlen = 0;
        auto frame = [&](uint8_t opcode, const char* body, size_t plen) { return onFrame(i, opcode, body, plen, now); };
        if (!bench::wsTakeInput(rbuf.data(), have + size_t(n), c.st == St::Http, c.in, hlen, [&] { c.st = St::Open; }, frame)) {
            if (failed < 5) std::fprintf(stderr, "storm: upgrade refused: %.*s\n", int(std::min<size_t>(hlen, 200)), rbuf.data());
            drop(i, "upgrade refused");
        }
    }

    // ------------------------------------------------------------ loop
    void turn(int timeoutMs) {
        epoll_event evs[1024];
        int n = epoll_wait(ep, evs, 1024, timeoutMs);
        for (int k = 0; k < n; ++k) {
            int i = int(evs[k].data.u64);
            Client& c = cs[size_t(i)];
            if (c.fd < 0) continue;
            if (c.st == St::Connecting) {
                if (evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) onConnected(i);
                continue;
            }
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) onReadable(i);
            if (c.fd >= 0 && (evs[k].events & EPOLLOUT)) flush(i);
        }
        for (size_t d = 0; d < dirty.size(); ++d)
            if (cs[size_t(dirty[d])].fd >= 0) flush(dirty[d]);
        dirty.clear();
    }

    // Reconnects due now, within --storm-pending (0: no cap) handshakes at once. At most 256
    // per call, so the loop serves the first handshakes while it opens the rest (as
    // independent clients would), instead of first making 10,000 connect calls in a row.
    void reopenDue(uint64_t now) {
        size_t keep = 0;
        int opened = 0;
        for (size_t k = 0; k < retry.size(); ++k) {
            int i = retry[k];
            if (opened < 256 && cs[size_t(i)].retryAtNs <= now && (o.stormPending == 0 || pending < o.stormPending)) {
                open(i);
                ++opened;
            } else {
                retry[keep++] = i;
            }
        }
        retry.resize(keep);
    }

    int run() {
        // --- set up: connect and subscribe everyone, a bounded number of handshakes at a time
        uint64_t t0 = nowNs(), deadline = t0 + 180ull * 1000000000ull;
        while (ready + failed < o.conns && nowNs() < deadline) {
            while (nextToOpen < o.conns && pending < o.maxPending) open(nextToOpen++);
            turn(20);
        }
        std::fprintf(stderr, "storm %s: %d/%d subscribed in %.2f s (%d failed)\n", o.label.c_str(), ready, o.conns,
                     double(nowNs() - t0) / 1e9, failed);
        if (ready < o.conns) {
            std::printf("RESULT ok=0 label=%s subscribed=%d\n", o.label.c_str(), ready);
            return 1;
        }
        // --- publish until every client holds an offset (and a few messages)
        pub.start();
        deadline = nowNs() + 60ull * 1000000000ull;
        while (withPre < o.conns && nowNs() < deadline) turn(5);
        if (withPre < o.conns || failed) {
            std::fprintf(stderr, "storm: only %d/%d clients received %d messages (%d failed)\n", withPre, o.conns, o.pre, failed);
            std::printf("RESULT ok=0 label=%s subscribed=%d with_offset=%d\n", o.label.c_str(), ready, withPre);
            return 1;
        }
        uint64_t publishedBefore = pub.published;
        // --- the storm: cut everyone, then reconnect everyone
        double cpu0 = selfCpuSeconds(), srv0 = procCpuSeconds(o.serverPid), rq0 = procRunQueueSeconds(o.serverPid);
        long overflows0 = tcpExtCounter("ListenOverflows");
        long rss0 = procRssKb(o.serverPid);
        storming = true;
        cutStartNs = nowNs();
        for (int i = 0; i < o.conns; ++i) cut(i, nowNs());
        cutEndNs = nowNs();
        uint64_t rnd = 0x9e3779b97f4a7c15ull;
        for (int i = 0; i < o.conns; ++i) {
            Client& c = cs[size_t(i)];
            uint64_t jitter = 0;
            if (o.jitterMs > 0) {
                rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;  // xorshift: the same spread every run
                jitter = rnd % (uint64_t(o.jitterMs) * 1000000ull);
            }
            c.retryAtNs = std::max<uint64_t>(c.cutNs + uint64_t(o.awayMs) * 1000000ull + jitter, cutEndNs);
            c.startNs = o.awayMs || o.jitterMs ? c.retryAtNs : c.cutNs;
            retry.push_back(i);
        }
        uint64_t end = cutStartNs + uint64_t(o.timeoutS * 1e9);
        uint64_t allNs = 0, allCaughtNs = 0;
        long rssMax = rss0;
        uint64_t lastRss = 0;
        for (;;) {
            uint64_t now = nowNs();
            if (now >= end) break;
            reopenDue(now);
            turn(1);
            if (o.serverPid && now - lastRss > 100000000ull) {
                rssMax = std::max(rssMax, procRssKb(o.serverPid));
                lastRss = now;
            }
            if (allNs == 0 && answered + failed >= o.conns) allNs = nowNs();
            if (answered + failed >= o.conns && caught + fresh + failed + lostUncaught >= o.conns) {
                allCaughtNs = nowNs();
                break;
            }
        }
        double cpu1 = selfCpuSeconds(), srv1 = procCpuSeconds(o.serverPid), rq1 = procRunQueueSeconds(o.serverPid);
        long overflows = overflows0 < 0 ? -1 : tcpExtCounter("ListenOverflows") - overflows0;
        double stormS = double(nowNs() - cutStartNs) / 1e9;
        // --- a tail of publishing, then let it drain: later gaps or duplicates count too
        uint64_t tailEnd = nowNs() + uint64_t(o.tailS * 1e9);
        while (nowNs() < tailEnd) turn(5);
        pub.on = false;
        while (pub.busy) turn(1);
        const uint64_t published = pub.published, rejected = pub.rejected, pubErrors = pub.errors;
        uint64_t drainEnd = nowNs() + 10ull * 1000000000ull;
        for (;;) {
            bool all = true;
            for (auto& c : cs)
                if (c.recovered && c.fd >= 0 && c.lastSeq < int64_t(published) - 1) all = false;
            if (all || nowNs() >= drainEnd) break;
            turn(5);
        }
        long rss1 = procRssKb(o.serverPid);
        // --- report
        Samples con, first, caughtS;
        uint64_t gaps = 0, dups = 0, tailMissing = 0, retries = 0, lost = uint64_t(lostAfter);
        int noFirst = 0, gapClients = 0;
        for (auto& c : cs) {
            if (c.recovered && c.gaps && ++gapClients <= 5)
                std::fprintf(stderr, "storm: client %d (away %.0f ms) had %" PRIu64 " seqs missing, first %" PRId64 "..%" PRId64
                             "; last seq before the cut %" PRId64 "\n", int(&c - cs.data()), double(c.connectNs - c.cutNs) / 1e6,
                             c.gaps, c.gapFrom, c.gapTo, c.seqAtCut);
            retries += uint64_t(c.retries);
            // Over all N clients: one that never got its session back counts as never (kInf).
            con.add(c.recovered ? c.connectNs - c.startNs : kInf);
            first.add(c.recovered && c.firstNs ? c.firstNs - c.startNs : kInf);
            caughtS.add(c.recovered && c.caughtNs ? c.caughtNs - c.startNs : kInf);
            if (!c.recovered) continue;
            gaps += c.gaps;
            dups += c.dups;
            if (c.fd >= 0 && c.lastSeq < int64_t(published) - 1) tailMissing += uint64_t(int64_t(published) - 1 - c.lastSeq);
            if (!c.firstNs) ++noFirst;
        }
        auto ms = [](uint64_t ns) { return ns == kInf ? -1.0 : double(ns) / 1e6; };
        double allMs = allNs ? ms(allNs - cutStartNs) : -1, allCaughtMs = allCaughtNs ? ms(allCaughtNs - cutStartNs) : -1;
        double genCpu = (cpu1 - cpu0) / stormS, srvCpu = (srv1 - srv0) / stormS, srvRq = (rq1 - rq0) / stormS;
        int notAnswered = o.conns - answered - failed;
        std::fprintf(stderr,
                     "storm %s: %d clients cut in %.1f ms; recovered %d, fresh %d, failed %d, no answer %d, retries %" PRIu64
                     "\n  cut->CONNECT ms p50 %.1f p99 %.1f max %.1f; all answered %.1f ms\n"
                     "  cut->first missed ms p50 %.1f p99 %.1f max %.1f (%d without one)\n"
                     "  cut->caught up ms p50 %.1f p99 %.1f max %.1f; all caught up %.1f ms\n"
                     "  gaps %" PRIu64 " (%d clients) dups %" PRIu64 " tail missing %" PRIu64 " lost after recovery %" PRIu64
                     "; published %" PRIu64 " (%" PRIu64 " before the cut) rejected %" PRIu64
                     " errors %" PRIu64 "\n  storm CPU: storm tool %.2f, server %.2f cores (its threads waited %.2f s/s in the run queue); accept-queue overflows (system-wide) %ld; server RSS %ld -> max %ld -> %ld KiB\n",
                     o.label.c_str(), o.conns, ms(cutEndNs - cutStartNs), recovered, fresh, failed, notAnswered, retries,
                     ms(con.pct(0.5)), ms(con.pct(0.99)), ms(con.max()), allMs, ms(first.pct(0.5)), ms(first.pct(0.99)),
                     ms(first.max()), noFirst, ms(caughtS.pct(0.5)), ms(caughtS.pct(0.99)), ms(caughtS.max()), allCaughtMs,
                     gaps, gapClients, dups, tailMissing, lost, published, publishedBefore, rejected, pubErrors, genCpu, srvCpu, srvRq, overflows, rss0,
                     rssMax, rss1);
        std::printf("RESULT ok=1 label=%s conns=%d cut_ms=%.1f recovered=%d fresh=%d failed=%d no_answer=%d retries=%" PRIu64
                    " connect_p50_ms=%.1f connect_p99_ms=%.1f connect_max_ms=%.1f all_recovered_ms=%.1f"
                    " first_p50_ms=%.1f first_p99_ms=%.1f first_max_ms=%.1f no_first=%d"
                    " caught_p50_ms=%.1f caught_p99_ms=%.1f caught_max_ms=%.1f all_caught_ms=%.1f"
                    " gaps=%" PRIu64 " gap_clients=%d dups=%" PRIu64 " tail_missing=%" PRIu64 " lost=%" PRIu64 " published=%" PRIu64
                    " rejected=%" PRIu64 " pub_errors=%" PRIu64 " gen_cpu=%.2f srv_cpu=%.2f srv_runq=%.2f listen_overflows=%ld storm_s=%.1f rss0_kb=%ld rssmax_kb=%ld rss1_kb=%ld\n",
                    o.label.c_str(), o.conns, ms(cutEndNs - cutStartNs), recovered, fresh, failed, notAnswered, retries,
                    ms(con.pct(0.5)), ms(con.pct(0.99)), ms(con.max()), allMs, ms(first.pct(0.5)), ms(first.pct(0.99)),
                    ms(first.max()), noFirst, ms(caughtS.pct(0.5)), ms(caughtS.pct(0.99)), ms(caughtS.max()), allCaughtMs,
                    gaps, gapClients, dups, tailMissing, lost, published, rejected, pubErrors, genCpu, srvCpu, srvRq, overflows, stormS, rss0, rssMax, rss1);
        return 0;
    }
};

}  // namespace

int main(int argc, char** argv) {
    Options o = parseArgs(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    Storm s(o);
    return s.run();
}
