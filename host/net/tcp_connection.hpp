// Plain TCP Connection, and the shared plumbing TLS builds on: the wire queue of
// (Buffer, offset, len) slices, one flush per loop turn with sendmsg/iovec batches,
// EPOLLOUT only while bytes remain, watermarks, graceful close and abort.
// TlsConnection overrides the four hooks at the bottom instead of duplicating any of it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "net/connection.hpp"
#include "net/event_loop.hpp"

namespace sf::net {

class TcpConnection : public Connection {
public:
    // Takes ownership of a connected socket (made non-blocking, TCP_NODELAY on). Call
    // start() on the loop thread after setHandler() to begin reading.
    static std::shared_ptr<TcpConnection> create(EventLoop& loop, int fd, std::string remoteAddress);
    ~TcpConnection() override;

    void start();  // loop thread: registers with epoll; the loop keeps us alive until closed

    // Connection
    void setHandler(std::shared_ptr<ConnectionHandler> h) override;
    void send(Buffer b) override;
    void send(std::string bytes) override;
    void sendSlice(Buffer b, size_t offset, size_t len) override;
    size_t bufferedBytes() const override;
    void close(const std::string& reason) override;
    void abort(const std::string& reason) override;
    bool isOpen() const override { return state_ == State::Open; }
    bool isTls() const override { return false; }
    const std::string& remoteAddress() const override { return remote_; }
    EventLoop& loop() override { return loop_; }
    uint64_t id() const override { return id_; }
    void setWatermarks(size_t high, size_t low) override;
    void watchDrain() override;

    // Counters (loop thread), for tests and metrics.
    uint64_t writevCalls() const { return writevCalls_; }  // sendmsg calls that wrote bytes or hit EAGAIN
    uint64_t bytesWritten() const { return bytesWritten_; }
    uint64_t bytesRead() const { return bytesRead_; }
    int fd() const { return fd_; }

    // close() gives up and aborts if the peer does not take the queued bytes in time.
    static constexpr uint64_t kCloseTimeoutMs = 10000;

protected:
    TcpConnection(EventLoop& loop, int fd, std::string remoteAddress);

    // --- hooks for TLS -------------------------------------------------------------
    // Bytes read from the socket. TCP: hand to the handler.
    virtual void onBytesIn(const char* data, size_t n);
    // Application bytes to send. TCP: straight onto the wire queue.
    virtual void queueApp(Buffer b, size_t offset, size_t len);
    // Called before each write round: move pending app bytes onto the wire (TLS encrypts
    // here, bounded so an 8 MB send is not encrypted in one go). TCP: nothing to do.
    virtual void fillWire() {}
    // App bytes not yet on the wire (TLS plaintext waiting for the handshake/encryption).
    virtual size_t pendingAppBytes() const { return 0; }
    // Once everything is on the wire during close(): TLS appends close_notify.
    virtual void beforeShutdown() {}

    // --- for subclasses ----------------------------------------------------------------
    void queueWire(Buffer b, size_t offset, size_t len);  // ciphertext/plaintext on the wire queue
    void deliver(const char* data, size_t n);             // to handler->onData (if still open)
    void scheduleFlush();                                  // once per turn
    void closeNow(const std::string& reason, bool abortive);  // fd closed, onClose fired
    size_t wireBytes() const { return wireBytes_; }
    bool closing() const { return state_ == State::Closing; }
    bool finished() const { return state_ == State::Closed || state_ == State::Lingering; }

private:
    enum class State { Open, Closing, Lingering, Closed };
    struct Slice {
        Buffer buf;
        size_t off;
        size_t len;
    };

    void onEvents(uint32_t ev);
    void onReadable();
    void flush();
    void updateInterest();
    void fireClose(const std::string& reason);
    void finishGracefulClose();
    void checkDrain();

    EventLoop& loop_;
    int fd_;
    std::string remote_;
    uint64_t id_;
    std::shared_ptr<ConnectionHandler> handler_;
    State state_ = State::Open;
    bool started_ = false;
    bool watching_ = false;
    bool flushScheduled_ = false;
    bool wantWrite_ = false;     // EPOLLOUT armed
    bool aboveHigh_ = false;
    bool closeFired_ = false;
    bool shutdownSent_ = false;
    std::string closeReason_;
    // Wire queue: wire_[wireHead_..] still to write. A vector rather than a deque, which
    // would hold a 512-byte chunk per idle connection; emptied storage is kept unless a
    // burst made it large.
    std::vector<Slice> wire_;
    size_t wireHead_ = 0;
    bool wireEmpty() const { return wireHead_ == wire_.size(); }
    void popWire();
    size_t wireBytes_ = 0;
    size_t high_ = 1 << 20;
    size_t low_ = 256 << 10;
    TimerId closeTimer_ = 0;
    uint64_t writevCalls_ = 0;
    uint64_t bytesWritten_ = 0;
    uint64_t bytesRead_ = 0;
};

// Process-unique connection ids (shared by TCP and TLS).
uint64_t nextConnectionId();

// "ip:port" of a socket's peer, "" if unknown.
std::string peerAddressOf(int fd);
// "ip:port" ("[v6]:port") of a sockaddr_in/sockaddr_in6 (passed as sockaddr*).
std::string formatSockaddr(const void* sa);

}  // namespace sf::net
