// flood_pub: an open-loop publisher for the overload scenario. P threads, each with its own
// keep-alive HTTP/1.1 connection to a control API (streamfenced's or the Node peer's: same
// POST /v1/publish JSON array), send batches of B messages back to back for D seconds. They
// never wait for subscribers, only for the HTTP answer, as a real feed publisher does.
// Counts what each answer says: accepted (status 200 in results / "published"), refused
// (429/503, with Retry-After honoured only as a counter: a flood does not back off).
//
//   flood_pub --control PORT [--host 127.0.0.1] [--ns /feed] [--topic t] [--threads P]
//             [--batch B] [--seconds D] [--payload BYTES] [--token T] [--rate MSGS_PER_S] [--single]
//
// --single: one message per request as a bare JSON object (the single-message form of
// POST /v1/publish) instead of an array of B (the batch form).
//
// --rate R: open loop at a fixed offered rate (all threads together), paced by the clock
// alone, never by subscribers; without it, flat out.
//
// stdout: RESULT accepted=N refused=N errors=N seconds=S accepted_per_s=X offered_per_s=Y
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <string>
#include <chrono>
#include <thread>
#include <vector>

namespace {

uint64_t nowNs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

struct Options {
    std::string host = "127.0.0.1", ns = "/feed", topic = "t", token;
    int port = 0, threads = 1, batch = 20, payload = 100;
    double seconds = 10;
    double rate = 0;  // msgs/s over all threads; 0 = flat out
    bool single = false;  // bare object, one message per request
};

std::atomic<uint64_t> g_accepted{0}, g_refused{0}, g_errors{0}, g_seq{0};

int connectTo(const Options& o) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(o.port));
    inet_pton(AF_INET, o.host.c_str(), &a.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
        std::perror("flood_pub: connect");
        std::exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// Count "status":200 entries of a batch answer; a single-object answer counts by its code.
void account(const std::string& head, const std::string& body, int sent) {
    int code = std::atoi(head.c_str() + 9);
    if (code != 200) {
        if (code == 429 || code == 503) g_refused += uint64_t(sent);
        else g_errors += uint64_t(sent);
        return;
    }
    size_t p = body.find("\"published\":");
    if (p == std::string::npos) {  // single message
        g_accepted += uint64_t(sent);
        return;
    }
    uint64_t ok = uint64_t(std::atoll(body.c_str() + p + 12));
    g_accepted += ok;
    uint64_t refused = 0;
    for (size_t q = 0; (q = body.find("\"status\":429", q)) != std::string::npos; ++q) ++refused;
    for (size_t q = 0; (q = body.find("\"status\":503", q)) != std::string::npos; ++q) ++refused;
    g_refused += refused;
    if (ok + refused < uint64_t(sent)) g_errors += uint64_t(sent) - ok - refused;
}

void worker(const Options& o, uint64_t startNs, uint64_t endNs) {
    int fd = connectTo(o);
    std::string pad(size_t(o.payload > 48 ? o.payload - 48 : 0), 'x');
    std::string in;
    char buf[65536];
    uint64_t sent = 0;
    while (nowNs() < endNs) {
        if (o.rate > 0) {  // this thread's share of the offered rate, due by the clock
            const double due = double(nowNs() - startNs) / 1e9 * o.rate / o.threads;
            if (double(sent) >= due) {
                std::this_thread::sleep_for(std::chrono::microseconds(200));
                continue;
            }
        }
        sent += uint64_t(o.batch);
        std::string body = o.single ? "" : "[";
        const uint64_t ts = nowNs();
        for (int k = 0; k < o.batch; ++k) {
            char item[512];
            std::snprintf(item, sizeof item,
                          "%s{\"namespace\":\"%s\",\"topic\":\"%s\",\"payload\":{\"ts\":%" PRIu64 ",\"seq\":%" PRIu64
                          ",\"pad\":\"",
                          k ? "," : "", o.ns.c_str(), o.topic.c_str(), ts, g_seq.fetch_add(1));
            body += item;
            body += pad;
            body += "\"}}";
        }
        if (!o.single) body += "]";
        std::string req = "POST /v1/publish HTTP/1.1\r\nHost: " + o.host + "\r\nContent-Type: application/json\r\n";
        if (!o.token.empty()) req += "Authorization: Bearer " + o.token + "\r\n";
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        for (size_t off = 0; off < req.size();) {
            ssize_t n = ::write(fd, req.data() + off, req.size() - off);
            if (n <= 0) {  // the server went away (SIGTERM during the flood): stop this publisher
                ::close(fd);
                return;
            }
            off += size_t(n);
        }
        // One answer (Content-Length framed; both servers send it).
        for (;;) {
            size_t he = in.find("\r\n\r\n");
            if (he != std::string::npos) {
                std::string head = in.substr(0, he);
                std::string lower = head;
                for (auto& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
                size_t cl = lower.find("content-length:");
                size_t len = cl == std::string::npos ? 0 : size_t(std::atol(lower.c_str() + cl + 15));
                if (in.size() >= he + 4 + len) {
                    account(head, in.substr(he + 4, len), o.batch);
                    in.erase(0, he + 4 + len);
                    break;
                }
            }
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) {  // closed by the server (stopping): what was sent is unanswered
                g_errors += uint64_t(o.batch);
                ::close(fd);
                return;
            }
            in.append(buf, size_t(n));
        }
    }
    ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "flood_pub: missing value for %s\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--control") o.port = std::atoi(next());
        else if (a == "--host") o.host = next();
        else if (a == "--ns") o.ns = next();
        else if (a == "--topic") o.topic = next();
        else if (a == "--threads") o.threads = std::atoi(next());
        else if (a == "--batch") o.batch = std::atoi(next());
        else if (a == "--seconds") o.seconds = std::atof(next());
        else if (a == "--payload") o.payload = std::atoi(next());
        else if (a == "--token") o.token = next();
        else if (a == "--rate") o.rate = std::atof(next());
        else if (a == "--single") o.single = true;
        else {
            std::fprintf(stderr, "usage: flood_pub --control PORT [--threads P] [--batch B] [--seconds D] [--payload N]\n");
            return 2;
        }
    }
    if (o.single) o.batch = 1;
    if (o.port <= 0 || o.threads <= 0 || o.batch <= 0) {
        std::fprintf(stderr, "flood_pub: --control PORT is required; threads and batch must be positive\n");
        return 2;
    }
    const uint64_t start = nowNs(), end = start + uint64_t(o.seconds * 1e9);
    std::vector<std::thread> ts;
    for (int i = 0; i < o.threads; ++i) ts.emplace_back(worker, std::cref(o), start, end);
    for (auto& t : ts) t.join();
    const double secs = double(std::min(nowNs(), end) - start) / 1e9;
    const uint64_t acc = g_accepted, ref = g_refused, err = g_errors;
    std::printf("RESULT accepted=%" PRIu64 " refused=%" PRIu64 " errors=%" PRIu64 " seconds=%.2f accepted_per_s=%.0f offered_per_s=%.0f\n",
                acc, ref, err, secs, double(acc) / secs, double(acc + ref + err) / secs);
    return 0;
}
