#include "net/tcp_connection.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.hpp"

namespace sf::net {

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kMaxReadsPerTurn = 4;  // fairness: level-triggered epoll calls us again
constexpr uint64_t kLingerMs = 2000;  // after our FIN, wait this long for the peer's
#ifdef IOV_MAX
constexpr int kMaxIov = IOV_MAX;
#else
constexpr int kMaxIov = 1024;
#endif
}  // namespace

uint64_t nextConnectionId() {
    static std::atomic<uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
}

std::string peerAddressOf(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return "";
    return formatSockaddr(&ss);
}

std::string formatSockaddr(const void* sa) {
    char ip[INET6_ADDRSTRLEN] = {0};
    int family = static_cast<const sockaddr*>(sa)->sa_family;
    if (family == AF_INET) {
        auto* a = static_cast<const sockaddr_in*>(sa);
        ::inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        return std::string(ip) + ":" + std::to_string(ntohs(a->sin_port));
    }
    if (family == AF_INET6) {
        auto* a = static_cast<const sockaddr_in6*>(sa);
        ::inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        return "[" + std::string(ip) + "]:" + std::to_string(ntohs(a->sin6_port));
    }
    return "";
}

std::shared_ptr<TcpConnection> TcpConnection::create(EventLoop& loop, int fd, std::string remoteAddress) {
    // make_shared (one allocation, not object + control block); the constructor is protected.
    struct Made final : TcpConnection {
        Made(EventLoop& l, int f, std::string r) : TcpConnection(l, f, std::move(r)) {}
    };
    return std::make_shared<Made>(loop, fd, std::move(remoteAddress));
}

TcpConnection::TcpConnection(EventLoop& loop, int fd, std::string remoteAddress)
    : loop_(loop), fd_(fd), remote_(std::move(remoteAddress)), id_(nextConnectionId()) {
    int fl = ::fcntl(fd_, F_GETFL, 0);
    if (fl >= 0 && !(fl & O_NONBLOCK)) ::fcntl(fd_, F_SETFL, fl | O_NONBLOCK);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on non-TCP fds
    if (remote_.empty()) remote_ = peerAddressOf(fd_);
}

TcpConnection::~TcpConnection() {
    // Only reached when the loop no longer holds us: either closed already, or the loop
    // itself is being torn down (then touching it is unsafe; just release the fd).
    if (fd_ >= 0) ::close(fd_);
}

void TcpConnection::start() {
    if (started_ || state_ == State::Closed) return;
    started_ = true;
    auto self = std::static_pointer_cast<TcpConnection>(shared_from_this());
    // The watcher's callback owns a reference: the loop keeps the connection alive until unwatch.
    // At the loop's shutdown an open connection aborts: that releases its handler, which
    // holds it in turn (docs/threads-and-ownership.md).
    std::weak_ptr<TcpConnection> weak = self;
    loop_.watch(fd_, EPOLLIN | EPOLLRDHUP, [self](uint32_t ev) { self->onEvents(ev); }, [weak] {
        if (auto c = weak.lock()) c->abort("event loop shutting down");
    });
    watching_ = true;
    if (wireBytes_ || pendingAppBytes()) scheduleFlush();  // sends queued before start()
}

void TcpConnection::setHandler(std::shared_ptr<ConnectionHandler> h) { handler_ = std::move(h); }

void TcpConnection::send(Buffer b) {
    if (!b) return;
    size_t n = b->size();
    sendSlice(std::move(b), 0, n);
}

void TcpConnection::send(std::string bytes) { send(makeBuffer(std::move(bytes))); }

void TcpConnection::sendSlice(Buffer b, size_t offset, size_t len) {
    if (state_ != State::Open || !b) return;  // after close()/abort() new data is dropped
    if (offset > b->size()) return;
    len = std::min(len, b->size() - offset);
    if (len == 0) return;
    queueApp(std::move(b), offset, len);
    if (!aboveHigh_ && bufferedBytes() >= high_) aboveHigh_ = true;
    scheduleFlush();
}

void TcpConnection::queueApp(Buffer b, size_t offset, size_t len) { queueWire(std::move(b), offset, len); }

void TcpConnection::queueWire(Buffer b, size_t offset, size_t len) {
    if (len == 0) return;
    wireBytes_ += len;
    wire_.push_back({std::move(b), offset, len});
}

void TcpConnection::popWire() {
    wire_[wireHead_].buf.reset();  // release the frame now, not at the next compaction
    if (++wireHead_ < wire_.size()) {
        // Under steady load the queue may never empty: drop the written prefix once it is
        // at least half of the vector (amortised O(1) per slice).
        if (wireHead_ >= 64 && wireHead_ * 2 >= wire_.size()) {
            wire_.erase(wire_.begin(), wire_.begin() + static_cast<std::ptrdiff_t>(wireHead_));
            wireHead_ = 0;
        }
        return;
    }
    wireHead_ = 0;
    if (wire_.capacity() > 64) std::vector<Slice>().swap(wire_);  // a burst's storage goes back
    else wire_.clear();
}

size_t TcpConnection::bufferedBytes() const { return wireBytes_ + pendingAppBytes(); }

void TcpConnection::setWatermarks(size_t high, size_t low) {
    high_ = high;
    low_ = std::min(low, high);
}

void TcpConnection::watchDrain() {
    if (state_ != State::Open) return;
    aboveHigh_ = true;
    if (bufferedBytes() > low_) return;  // the flush that takes it there reports it
    auto self = std::static_pointer_cast<TcpConnection>(shared_from_this());
    loop_.deferToEndOfTurn([self] { self->checkDrain(); });
}

void TcpConnection::scheduleFlush() {
    // While EPOLLOUT is armed the socket is full: the writable event flushes, no need to try now.
    if (flushScheduled_ || wantWrite_ || !started_ || finished()) return;
    flushScheduled_ = true;
    auto self = std::static_pointer_cast<TcpConnection>(shared_from_this());
    loop_.deferToEndOfTurn([self] {
        self->flushScheduled_ = false;
        self->flush();
    });
}

void TcpConnection::flush() {
    if (finished() || fd_ < 0) return;
    iovec iov[kMaxIov];
    for (;;) {
        fillWire();
        if (finished()) return;  // fillWire may fail (TLS error) and close
        if (wireEmpty()) {
            if (state_ == State::Closing && !pendingAppBytes()) {
                if (!shutdownSent_) {
                    shutdownSent_ = true;
                    beforeShutdown();  // may queue close_notify: go round once more
                    if (!wireEmpty()) continue;
                }
                finishGracefulClose();
                return;
            }
            break;
        }
        int cnt = 0;
        size_t want = 0;
        for (auto it = wire_.begin() + static_cast<std::ptrdiff_t>(wireHead_); it != wire_.end() && cnt < kMaxIov; ++it, ++cnt) {
            iov[cnt].iov_base = const_cast<char*>(it->buf->data() + it->off);
            iov[cnt].iov_len = it->len;
            want += it->len;
        }
        msghdr mh{};
        mh.msg_iov = iov;
        mh.msg_iovlen = static_cast<size_t>(cnt);
        // sendmsg == writev plus MSG_NOSIGNAL: a peer reset must not raise SIGPIPE.
        ssize_t w = ::sendmsg(fd_, &mh, MSG_NOSIGNAL);
        ++writevCalls_;
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            closeNow(std::string("write error: ") + std::strerror(errno), true);
            return;
        }
        size_t left = static_cast<size_t>(w);
        bytesWritten_ += left;
        wireBytes_ -= left;
        while (left > 0) {
            Slice& s = wire_[wireHead_];
            if (left >= s.len) {
                left -= s.len;
                popWire();
            } else {
                s.off += left;
                s.len -= left;
                left = 0;
            }
        }
        // A short write means the send buffer is full; the next call would only return
        // EAGAIN, so skip it and let EPOLLOUT tell us when there is room.
        if (static_cast<size_t>(w) < want) break;
    }
    updateInterest();
    checkDrain();
}

void TcpConnection::checkDrain() {
    if (aboveHigh_ && bufferedBytes() <= low_ && state_ == State::Open) {
        aboveHigh_ = false;
        if (auto h = handler_) h->onDrain(*this);
    }
}

void TcpConnection::updateInterest() {
    if (!watching_) return;
    // Only wire bytes need EPOLLOUT: app bytes left after a flush wait for the TLS
    // handshake (input), and arming for them would spin on an always-writable socket.
    bool want = !wireEmpty();
    if (want == wantWrite_) return;
    wantWrite_ = want;
    uint32_t ev = EPOLLRDHUP | (want ? EPOLLOUT : 0u);
    if (state_ == State::Open || state_ == State::Closing) ev |= EPOLLIN;
    loop_.modify(fd_, ev);
}

void TcpConnection::onEvents(uint32_t ev) {
    if (state_ == State::Closed) return;
    if (ev & EPOLLERR) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        closeNow(std::string("socket error: ") + std::strerror(err ? err : EIO), true);
        return;
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
        onReadable();
        if (state_ == State::Closed) return;
    }
    if ((ev & EPOLLOUT) && !finished()) flush();  // updateInterest() disarms EPOLLOUT once empty
}

void TcpConnection::onReadable() {
    char buf[kReadChunk];
    for (int i = 0; i < kMaxReadsPerTurn; ++i) {
        ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
        if (r > 0) {
            bytesRead_ += static_cast<uint64_t>(r);
            if (state_ == State::Lingering) continue;  // draining until the peer's FIN
            if (state_ != State::Open && state_ != State::Closing) return;
            onBytesIn(buf, static_cast<size_t>(r));
            if (state_ == State::Closed) return;
            if (static_cast<size_t>(r) < sizeof buf) return;  // socket drained
            continue;
        }
        if (r == 0) {
            if (state_ == State::Lingering) closeNow(closeReason_, false);
            else closeNow("peer closed", false);
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        closeNow(std::string("read error: ") + std::strerror(errno), true);
        return;
    }
}

void TcpConnection::onBytesIn(const char* data, size_t n) { deliver(data, n); }

void TcpConnection::deliver(const char* data, size_t n) {
    // After close() the handler asked to stop: incoming bytes are dropped.
    if (state_ != State::Open || n == 0) return;
    auto h = handler_;
    if (!h) return;
    try {
        h->onData(*this, std::string_view(data, n));
    } catch (const std::exception& e) {
        // Bad input that made the protocol code throw costs this connection only.
        sf::log::warn("connection_handler_threw", {{"conn", std::to_string(id_)}, {"remote", remote_}, {"error", e.what()}});
        closeNow(std::string("handler error: ") + e.what(), true);
    }
}

void TcpConnection::close(const std::string& reason) {
    if (state_ != State::Open) return;
    closeReason_ = reason;
    if (!started_) {
        closeNow(reason, false);
        return;
    }
    state_ = State::Closing;
    auto weak = std::weak_ptr<TcpConnection>(std::static_pointer_cast<TcpConnection>(shared_from_this()));
    closeTimer_ = loop_.addTimer(kCloseTimeoutMs, [weak] {
        if (auto self = weak.lock()) {
            self->closeTimer_ = 0;
            if (!self->finished()) self->closeNow(self->closeReason_ + " (close timed out)", true);
            else if (self->state_ == State::Lingering) self->closeNow(self->closeReason_, false);
        }
    });
    // Run flush even if EPOLLOUT is armed: with nothing queued it shuts down right away.
    scheduleFlush();  // no-op while EPOLLOUT is armed: the writable event will get there
}

void TcpConnection::abort(const std::string& reason) { closeNow(reason, true); }

void TcpConnection::finishGracefulClose() {
    // All bytes are in the kernel. Send FIN, tell the handler, then keep reading (and
    // discarding) until the peer's FIN: closing with unread input would send an RST that
    // can destroy the reply we just wrote before the peer reads it.
    ::shutdown(fd_, SHUT_WR);
    state_ = State::Lingering;
    wantWrite_ = false;
    if (watching_) loop_.modify(fd_, EPOLLIN | EPOLLRDHUP);
    fireClose(closeReason_);
    loop_.cancelTimer(closeTimer_);
    auto weak = std::weak_ptr<TcpConnection>(std::static_pointer_cast<TcpConnection>(shared_from_this()));
    closeTimer_ = loop_.addTimer(kLingerMs, [weak] {
        if (auto self = weak.lock()) {
            self->closeTimer_ = 0;
            if (self->state_ == State::Lingering) self->closeNow(self->closeReason_, false);
        }
    });
}

void TcpConnection::closeNow(const std::string& reason, bool abortive) {
    if (state_ == State::Closed) return;
    auto keep = shared_from_this();  // unwatch may drop the loop's reference
    state_ = State::Closed;
    if (closeTimer_) {
        loop_.cancelTimer(closeTimer_);
        closeTimer_ = 0;
    }
    if (watching_) {
        loop_.unwatch(fd_);
        watching_ = false;
    }
    if (abortive && fd_ >= 0) {
        linger lg{1, 0};  // RST: the peer learns at once that queued data was dropped
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    std::vector<Slice>().swap(wire_);
    wireHead_ = 0;
    wireBytes_ = 0;
    wantWrite_ = false;
    fireClose(reason);
}

void TcpConnection::fireClose(const std::string& reason) {
    if (closeFired_) return;
    closeFired_ = true;
    auto h = std::move(handler_);  // releasing it breaks handler<->connection cycles
    handler_.reset();
    if (h) h->onClose(*this, reason);
}

}  // namespace sf::net
