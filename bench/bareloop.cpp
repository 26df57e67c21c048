// bareloop: the physical-limit peer. A minimal single-thread epoll server that accepts the
// same websocket Engine.IO / Socket.IO handshakes as streamfenced (enough for loadgen: open
// packet, namespace connect, subscribe ack), then writes pre-encoded delivery frames to every
// subscribed socket:
//   --mode single   one write() per delivery
//   --mode batch    K frames per write() (--k 16)
// Messages are generated inside the loop (no publish path): flat out (--rate 0) once
// --expect subscribers are in, or at a fixed rate in messages/s. Each message carries the
// same {"ts","seq","pad"} payload loadgen measures, stamped when the frame is encoded.
// A socket whose kernel buffer is full is skipped (it misses those messages) until EPOLLOUT.
//
// Logs `event=listening server=bare host=127.0.0.1 port=N` on stderr.
#include <algorithm>
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace {

uint64_t nowNs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

volatile sig_atomic_t g_stop = 0;
void onSignal(int) { g_stop = 1; }

struct Conn {
    bool used = false, ws = false, sub = false, blocked = false;
    std::string in, pending;
};

void appendServerFrame(std::string& out, std::string_view payload) {
    out.push_back(char(0x81));
    size_t n = payload.size();
    if (n < 126) {
        out.push_back(char(n));
    } else if (n < 65536) {
        out.push_back(char(126));
        out.push_back(char(n >> 8));
        out.push_back(char(n & 0xff));
    } else {
        out.push_back(char(127));
        for (int i = 7; i >= 0; --i) out.push_back(char((uint64_t(n) >> (8 * i)) & 0xff));
    }
    out.append(payload.data(), n);
}

std::string wsAccept(std::string_view key) {
    std::string s(key);
    s += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdLen = 0;
    EVP_Digest(s.data(), s.size(), md, &mdLen, EVP_sha1(), nullptr);
    unsigned char b64[64];
    int n = EVP_EncodeBlock(b64, md, int(mdLen));
    return std::string(reinterpret_cast<char*>(b64), size_t(n));
}

struct Bare {
    int port = 0, k = 16, expect = 1, payload = 100;
    bool batch = true;
    double rate = 0;
    std::string ns = "/feed", topic = "t", nsPrefix;
    int lfd = -1, ep = -1;
    std::vector<Conn> conns;  // by fd
    std::vector<int> subs;    // fds of subscribers
    std::string pad;
    uint64_t seq = 0, writes = 0, frames = 0, skipped = 0;

    void setEvents(int fd, bool out) {
        epoll_event ev{};
        ev.events = EPOLLIN | (out ? uint32_t(EPOLLOUT) : 0u);
        ev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    }

    void closeFd(int fd) {
        Conn& c = conns[size_t(fd)];
        if (c.sub) subs.erase(std::remove(subs.begin(), subs.end(), fd), subs.end());
        c = Conn{};
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
    }

    // Writes everything or keeps the rest in pending (and waits for EPOLLOUT).
    bool send(int fd, const char* p, size_t n) {
        Conn& c = conns[size_t(fd)];
        ++writes;
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno != EAGAIN) {
                closeFd(fd);
                return false;
            }
            w = 0;
        }
        if (size_t(w) < n) {
            c.pending.append(p + w, n - size_t(w));
            c.blocked = true;
            setEvents(fd, true);
            return false;
        }
        return true;
    }

    void sendText(int fd, std::string_view text) {
        std::string f;
        appendServerFrame(f, text);
        Conn& c = conns[size_t(fd)];
        if (c.blocked) c.pending += f;
        else send(fd, f.data(), f.size());
    }

    void onPacket(int fd, std::string_view p) {
        Conn& c = conns[size_t(fd)];
        if (p.size() >= 2 && p[0] == '4' && p[1] == '0') {
            sendText(fd, "40" + nsPrefix + "{\"sid\":\"bare" + std::to_string(fd) + "\"}");
        } else if (p.size() >= 2 && p[0] == '4' && p[1] == '2' && p.find("\"subscribe\"") != std::string_view::npos) {
            size_t q = 2 + nsPrefix.size();
            size_t e = q;
            while (e < p.size() && p[e] >= '0' && p[e] <= '9') ++e;
            if (e > q) sendText(fd, "43" + nsPrefix + std::string(p.substr(q, e - q)) + "[{\"ok\":true}]");
            if (!c.sub) {
                c.sub = true;
                subs.push_back(fd);
                if (int(subs.size()) == expect) std::fprintf(stderr, "bareloop: %d subscribers, generating\n", expect);
            }
        }
        // "3" (pong), acks and anything else: ignored
    }

    void onReadable(int fd) {
        Conn& c = conns[size_t(fd)];
        char buf[65536];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            closeFd(fd);
            return;
        }
        if (n < 0) return;
        c.in.append(buf, size_t(n));
        if (!c.ws) {
            size_t he = c.in.find("\r\n\r\n");
            if (he == std::string::npos) return;
            std::string head = c.in.substr(0, he);
            size_t kp = head.find("Sec-WebSocket-Key:");
            if (kp == std::string::npos) kp = head.find("sec-websocket-key:");
            if (kp == std::string::npos) {
                closeFd(fd);
                return;
            }
            kp += 18;
            while (kp < head.size() && head[kp] == ' ') ++kp;
            size_t ke = head.find("\r\n", kp);
            std::string key = head.substr(kp, ke == std::string::npos ? std::string::npos : ke - kp);
            std::string resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: " + wsAccept(key) + "\r\n\r\n";
            appendServerFrame(resp, "0{\"sid\":\"bare" + std::to_string(fd) +
                                        "\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,"
                                        "\"maxPayload\":1000000}");
            c.ws = true;
            c.in.erase(0, he + 4);
            send(fd, resp.data(), resp.size());
            if (!conns[size_t(fd)].used) return;
        }
        size_t off = 0;
        while (c.in.size() - off >= 2) {
            const uint8_t* h = reinterpret_cast<const uint8_t*>(c.in.data() + off);
            uint8_t op = h[0] & 0x0f;
            bool masked = h[1] & 0x80;
            uint64_t len = h[1] & 0x7f;
            size_t hl = 2;
            if (len == 126) {
                if (c.in.size() - off < 4) break;
                len = (uint64_t(h[2]) << 8) | h[3];
                hl = 4;
            } else if (len == 127) {
                if (c.in.size() - off < 10) break;
                len = 0;
                for (int i = 0; i < 8; ++i) len = (len << 8) | h[2 + i];
                hl = 10;
            }
            size_t mo = hl;
            if (masked) hl += 4;
            if (c.in.size() - off < hl + len) break;
            std::string body = c.in.substr(off + hl, size_t(len));
            if (masked)
                for (size_t i = 0; i < body.size(); ++i) body[i] = char(body[i] ^ char(h[mo + (i & 3)]));
            off += hl + size_t(len);
            if (op == 0x8) {
                closeFd(fd);
                return;
            }
            if (op == 0x1) onPacket(fd, body);
            if (!conns[size_t(fd)].used) return;
        }
        c.in.erase(0, off);
    }

    void onWritable(int fd) {
        Conn& c = conns[size_t(fd)];
        while (!c.pending.empty()) {
            ssize_t w = ::write(fd, c.pending.data(), c.pending.size());
            if (w < 0) {
                if (errno == EAGAIN) return;
                closeFd(fd);
                return;
            }
            c.pending.erase(0, size_t(w));
        }
        c.blocked = false;
        setEvents(fd, false);
    }

    // Encodes `count` messages into buf; offsets[i] is where frame i starts.
    void encode(int count, std::string& buf, std::vector<size_t>& offsets) {
        buf.clear();
        offsets.clear();
        uint64_t ts = nowNs();
        char payloadBuf[4096];
        for (int i = 0; i < count; ++i) {
            int n = std::snprintf(payloadBuf, sizeof payloadBuf, "42%s[\"%s\",{\"ts\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"pad\":\"%s\"}]",
                                  nsPrefix.c_str(), topic.c_str(), ts, seq++, pad.c_str());
            offsets.push_back(buf.size());
            appendServerFrame(buf, std::string_view(payloadBuf, size_t(n)));
        }
        offsets.push_back(buf.size());
    }

    // Sends `count` fresh messages to every subscriber.
    void fanOut(int count) {
        static std::string buf;
        static std::vector<size_t> off;
        encode(count, buf, off);
        for (size_t s = 0; s < subs.size(); ++s) {
            int fd = subs[s];
            Conn& c = conns[size_t(fd)];
            if (c.blocked) {
                skipped += uint64_t(count);
                continue;
            }
            if (batch) {
                for (int f = 0; f < count; f += k) {
                    int e = std::min(count, f + k);
                    if (!send(fd, buf.data() + off[size_t(f)], off[size_t(e)] - off[size_t(f)])) break;
                    frames += uint64_t(e - f);
                }
            } else {
                for (int f = 0; f < count; ++f) {
                    if (!send(fd, buf.data() + off[size_t(f)], off[size_t(f) + 1] - off[size_t(f)])) break;
                    ++frames;
                }
            }
            if (!conns[size_t(fd)].used) --s;  // closed: the vector shrank under us
        }
    }

    int run() {
        nsPrefix = ns == "/" ? std::string() : ns + ",";
        pad.assign(size_t(std::max(0, payload - 48)), 'x');
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(uint16_t(port));
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || listen(lfd, 4096) < 0) {
            std::perror("bind/listen");
            return 1;
        }
        socklen_t al = sizeof a;
        getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &al);
        std::fprintf(stderr, "event=listening server=bare host=127.0.0.1 port=%d\n", ntohs(a.sin_port));
        ep = epoll_create1(0);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = lfd;
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
        uint64_t rateStart = 0, rateSent = 0;
        epoll_event evs[512];
        while (!g_stop) {
            bool gen = int(subs.size()) >= expect;
            int timeout = !gen ? 100 : (rate > 0 ? 1 : 0);
            int n = epoll_wait(ep, evs, 512, timeout);
            for (int i = 0; i < n; ++i) {
                int fd = evs[i].data.fd;
                if (fd == lfd) {
                    for (;;) {
                        int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
                        if (cfd < 0) break;
                        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                        if (size_t(cfd) >= conns.size()) conns.resize(size_t(cfd) * 2 + 64);
                        conns[size_t(cfd)] = Conn{};
                        conns[size_t(cfd)].used = true;
                        epoll_event cev{};
                        cev.events = EPOLLIN;
                        cev.data.fd = cfd;
                        epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                    }
                    continue;
                }
                if (!conns[size_t(fd)].used) continue;
                if (evs[i].events & EPOLLOUT) onWritable(fd);
                if (conns[size_t(fd)].used && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) onReadable(fd);
            }
            if (!gen) continue;
            if (rate <= 0) {
                fanOut(k);
            } else {
                uint64_t now = nowNs();
                if (!rateStart) rateStart = now;
                uint64_t due = uint64_t(double(now - rateStart) * rate / 1e9);
                if (due > rateSent) {
                    int cnt = int(std::min<uint64_t>(due - rateSent, 4096));
                    rateSent = due;
                    fanOut(cnt);
                }
            }
        }
        std::fprintf(stderr, "bareloop: %" PRIu64 " frames in %" PRIu64 " writes, %" PRIu64 " skipped (socket full)\n",
                     frames, writes, skipped);
        return 0;
    }
};

}  // namespace

int main(int argc, char** argv) {
    Bare b;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "missing value for %s\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--port") b.port = std::atoi(next());
        else if (a == "--mode") b.batch = std::string(next()) != "single";
        else if (a == "--k") b.k = std::max(1, std::atoi(next()));
        else if (a == "--expect") b.expect = std::max(1, std::atoi(next()));
        else if (a == "--rate") b.rate = std::atof(next());
        else if (a == "--payload") b.payload = std::atoi(next());
        else if (a == "--ns") b.ns = next();
        else if (a == "--topic") b.topic = next();
        else {
            std::fprintf(stderr,
                         "usage: bareloop [--port P] [--mode batch|single] [--k 16] [--expect N] [--rate MSGS_PER_S]\n"
                         "                [--payload BYTES] [--ns /feed] [--topic t]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, onSignal);
    signal(SIGINT, onSignal);
    return b.run();
}
