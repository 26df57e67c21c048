// The TCP client sockets of the bench tools (loadgen, storm): the IPv4 address they connect to
// (--host, a dotted quad, and a port), a socket with Nagle off (small frames go out at once), and
// a non-blocking connect, writes of what is pending and a read that puts the bytes after those left
// over from the last one.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace bench {

inline sockaddr_in ipv4Address(const std::string& host, int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    inet_pton(AF_INET, host.c_str(), &a.sin_addr);
    return a;
}

// socket(AF_INET, SOCK_STREAM | typeFlags) with TCP_NODELAY; -1 (errno set) if there is none.
inline int tcpSocketNoDelay(int typeFlags) {
    int fd = socket(AF_INET, SOCK_STREAM | typeFlags, 0);
    if (fd < 0) return fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// Copies `carry` (an incomplete frame kept from the last read) to the front of buf and reads after
// it, so one parse sees the bytes contiguous. Returns read()'s result (errno as read left it).
inline ssize_t readAfterCarry(int fd, const std::string& carry, std::vector<char>& buf) {
    size_t have = carry.size();
    if (have + 65536 > buf.size()) buf.resize(have + 65536);
    if (have) std::memcpy(buf.data(), carry.data(), have);
    return ::read(fd, buf.data() + have, buf.size() - have);
}

// A non-blocking TCP_NODELAY socket whose connect to host:port is under way (done at EPOLLOUT).
// -1 if there is no socket; connectFailed: connect() failed at once (errno set).
inline int tcpConnectNonBlocking(const std::string& host, int port, bool& connectFailed) {
    int fd = tcpSocketNoDelay(SOCK_NONBLOCK);
    if (fd < 0) return fd;
    sockaddr_in a = ipv4Address(host, port);
    connectFailed = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 && errno != EINPROGRESS;
    return fd;
}

// Writes as much of out as the socket takes now and erases that from out; false on a write
// error (errno set), true if all went or the socket is full (EAGAIN).
inline bool writePending(int fd, std::string& out) {
    while (!out.empty()) {
        ssize_t n = ::write(fd, out.data(), out.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            return false;
        }
        out.erase(0, size_t(n));
    }
    return true;
}

}  // namespace bench
