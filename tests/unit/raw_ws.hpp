// A minimal blocking websocket client for protocol tests: masked frames out, unmasked
// frames in, engine.io pings answered.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace sf::test {

// Minimal client: masked frames out, unmasked frames in.
class RawWs {
public:
    explicit RawWs(int port, const std::string& query = "EIO=4&transport=websocket") {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect");
        int one = 1;
        setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::string req = "GET /socket.io/?" + query +
                          " HTTP/1.1\r\nHost: x\r\nUser-Agent: unit\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        writeAll(req);
        while (buf_.find("\r\n\r\n") == std::string::npos)
            if (!fill(3000)) throw std::runtime_error("no handshake answer");
        size_t e = buf_.find("\r\n\r\n");
        status_ = buf_.substr(0, buf_.find("\r\n"));
        buf_.erase(0, e + 4);
    }
    ~RawWs() { ::close(fd_); }
    const std::string& status() const { return status_; }
    void send(const std::string& text, bool binary = false) {
        std::string f;
        f.push_back(static_cast<char>(0x80 | (binary ? 2 : 1)));
        size_t n = text.size();
        if (n < 126) f.push_back(static_cast<char>(0x80 | n));
        else {
            f.push_back(static_cast<char>(0x80 | 126));
            f.push_back(static_cast<char>(n >> 8));
            f.push_back(static_cast<char>(n & 0xFF));
        }
        const char key[4] = {1, 2, 3, 4};
        f.append(key, 4);
        for (size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(text[i] ^ key[i & 3]));
        writeAll(f);
    }
    // Next text/binary message, skipping engine.io pings (answered) unless wanted. "" on close/timeout.
    std::string next(int timeoutMs = 3000, bool answerPings = true) {
        auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
        while (true) {
            std::string m;
            int op = 0;
            while (!parse(m, op)) {
                int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                end - std::chrono::steady_clock::now()).count());
                if (left <= 0 || !fill(left)) return {};
            }
            if (op == 8) {
                closed_ = true;
                return {};
            }
            if (op == 1 && m == "2" && answerPings) {
                send("3");
                continue;
            }
            return m;
        }
    }
    bool closed() const { return closed_; }

private:
    void writeAll(const std::string& s) {
        size_t off = 0;
        while (off < s.size()) {
            ssize_t n = ::write(fd_, s.data() + off, s.size() - off);
            if (n <= 0) throw std::runtime_error("write");
            off += static_cast<size_t>(n);
        }
    }
    bool fill(int timeoutMs) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, timeoutMs) <= 0) return false;
        char tmp[65536];
        ssize_t n = ::read(fd_, tmp, sizeof tmp);
        if (n <= 0) {
            closed_ = true;
            return false;
        }
        buf_.append(tmp, static_cast<size_t>(n));
        return true;
    }
    bool parse(std::string& m, int& op) {
        if (buf_.size() < 2) return false;
        auto b1 = static_cast<uint8_t>(buf_[1]);
        size_t len = b1 & 0x7F, hdr = 2;
        if (len == 126) {
            if (buf_.size() < 4) return false;
            len = (static_cast<uint8_t>(buf_[2]) << 8) | static_cast<uint8_t>(buf_[3]);
            hdr = 4;
        } else if (len == 127) {
            if (buf_.size() < 10) return false;
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<uint8_t>(buf_[2 + i]);
            hdr = 10;
        }
        if (buf_.size() < hdr + len) return false;
        op = buf_[0] & 0x0F;
        m = buf_.substr(hdr, len);
        buf_.erase(0, hdr + len);
        return true;
    }
    int fd_;
    std::string buf_;
    std::string status_;
    bool closed_ = false;
};

}  // namespace sf::test
