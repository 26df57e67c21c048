#include "ws_session.hpp"

#include "app.hpp"
#include "common/log.hpp"

#include <Poco/Buffer.h>
#include <Poco/Net/NetException.h>

#include <chrono>
#include <poll.h>
#include <sys/socket.h>

namespace hpkv {
namespace {

using Poco::Net::WebSocket;

constexpr int kMaxFrameBytes = 1 << 20;               // a 100 KiB value even fully \u-escaped fits
constexpr std::size_t kMaxMessageBytes = 1u << 20;    // same cap for fragmented messages
constexpr std::size_t kMaxQueuedBytes = 32u << 20;    // slow-consumer cutoff
const Poco::Timespan kPollInterval(1, 0);             // how often the reader checks for shutdown

std::string closePayload(Poco::UInt16 code, const std::string& reason) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    return p + reason;
}

}  // namespace

WsSession::WsSession(App& app, WebSocket ws, SessionContext ctx, std::vector<std::string> patterns, std::string kind)
    : app_(app), ws_(std::move(ws)), ctx_(std::move(ctx)), patterns_(std::move(patterns)), kind_(std::move(kind)),
      id_(app.nextConnId++) {
    ws_.setMaxPayloadSize(kMaxFrameBytes);
    // Bounds how long a stalled peer can hold a half-received frame or a send.
    ws_.setReceiveTimeout(Poco::Timespan(30, 0));
    ws_.setSendTimeout(Poco::Timespan(10, 0));
    ws_.setNoDelay(true);
}

WsSession::~WsSession() {
    if (sender_.joinable()) sender_.join();
}

void WsSession::enqueue(std::string payload, int flags) {
    std::lock_guard<std::mutex> lk(mu_);
    if (broken_ || stopSender_) return;
    queuedBytes_ += payload.size();
    if (queuedBytes_ > kMaxQueuedBytes) {
        sf::log::warn("ws_slow_consumer", {{"conn", std::to_string(id_)}, {"queued_bytes", std::to_string(queuedBytes_)}});
        broken_ = true;
        queue_.clear();
        cv_.notify_all();
        return;
    }
    queue_.push_back(Outgoing{std::move(payload), flags});
    cv_.notify_all();
}

void WsSession::senderLoop() {
    for (;;) {
        Outgoing item;
        {
            std::unique_lock<std::mutex> lk(mu_);
            cv_.wait(lk, [&] { return broken_ || stopSender_ || !queue_.empty(); });
            if (broken_) break;
            if (queue_.empty()) break;  // stopSender_ and everything flushed
            item = std::move(queue_.front());
            queue_.pop_front();
            queuedBytes_ -= item.payload.size();
        }
        try {
            ws_.sendFrame(item.payload.data(), static_cast<int>(item.payload.size()), item.flags);
        } catch (const std::exception& e) {
            sf::log::debug("ws_send_failed", {{"conn", std::to_string(id_)}, {"error", e.what()}});
            std::lock_guard<std::mutex> lk(mu_);
            broken_ = true;
            queue_.clear();
            break;
        }
        if ((item.flags & WebSocket::FRAME_OP_BITMASK) == WebSocket::FRAME_OP_CLOSE) break;
    }
    bool broken;
    {
        std::lock_guard<std::mutex> lk(mu_);
        broken = broken_;
    }
    // Wake the reader (blocked in poll/receive) when we gave up on the peer.
    if (broken) ::shutdown(ws_.impl()->sockfd(), SHUT_RDWR);
}

void WsSession::handleMessage(const std::string& text) {
    std::string reply;
    try {
        reply = handleRequest(ctx_, text);
    } catch (const std::exception& e) {
        // A bug must cost one request, not the connection.
        sf::log::error("request_failed", {{"conn", std::to_string(id_)}, {"error", e.what()}});
        reply = "{\"code\":500,\"error\":\"Internal server error\"}";
    }
    if (sf::log::enabled(sf::log::Level::Debug))
        sf::log::debug("ws_request", {{"conn", std::to_string(id_)}, {"request", text.substr(0, 200)}, {"reply", reply.substr(0, 200)}});
    enqueue(std::move(reply), WebSocket::FRAME_TEXT);
}

void WsSession::readLoop() {
    Poco::Buffer<char> frame(0);
    std::string message;
    bool inMessage = false;
    for (;;) {
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (broken_) return;
        }
        if (app_.stopping) {
            enqueue(closePayload(WebSocket::WS_ENDPOINT_GOING_AWAY, "server shutting down"),
                    WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_CLOSE);
            return;
        }
        if (!ws_.poll(kPollInterval, Poco::Net::Socket::SELECT_READ | Poco::Net::Socket::SELECT_ERROR)) continue;
        int flags = 0;
        frame.resize(0);
        int n = ws_.receiveFrame(frame, flags);
        if (n == 0 && flags == 0) return;  // peer closed the TCP connection
        int op = flags & WebSocket::FRAME_OP_BITMASK;
        bool fin = (flags & WebSocket::FRAME_FLAG_FIN) != 0;
        switch (op) {
            case WebSocket::FRAME_OP_CLOSE: {
                // Echo the peer's status code, as RFC 6455 asks.
                std::string payload = n >= 2 ? std::string(frame.begin(), frame.begin() + 2) : std::string();
                enqueue(payload, WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_CLOSE);
                return;
            }
            case WebSocket::FRAME_OP_PING:
                enqueue(std::string(frame.begin(), frame.size()), WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_PONG);
                continue;
            case WebSocket::FRAME_OP_PONG:
                continue;
            case WebSocket::FRAME_OP_TEXT:
            case WebSocket::FRAME_OP_BINARY:
                if (inMessage) throw Poco::Net::WebSocketException("new message inside fragmented message", WebSocket::WS_ERR_INCOMPLETE_FRAME);
                message.assign(frame.begin(), frame.size());
                inMessage = !fin;
                break;
            case WebSocket::FRAME_OP_CONT:
                if (!inMessage) throw Poco::Net::WebSocketException("unexpected continuation frame", WebSocket::WS_ERR_INCOMPLETE_FRAME);
                message.append(frame.begin(), frame.size());
                if (message.size() > kMaxMessageBytes) throw Poco::Net::WebSocketException("message too big", WebSocket::WS_ERR_PAYLOAD_TOO_BIG);
                inMessage = !fin;
                break;
            default:
                throw Poco::Net::WebSocketException("unknown opcode", WebSocket::WS_ERR_INCOMPLETE_FRAME);
        }
        if (!inMessage) handleMessage(message);
    }
}

void WsSession::drainUnread() {
    // After a protocol error the rest of the offending frame is still unread;
    // closing now would reset the connection and the peer would never see our
    // close code. Discard input (bounded in time and bytes) until the peer hangs up.
    const int fd = ws_.impl()->sockfd();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    std::size_t total = 0;
    char buf[65536];
    while (std::chrono::steady_clock::now() < deadline && total < (64u << 20)) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        total += static_cast<std::size_t>(n);
    }
}

void WsSession::run() {
    ++app_.activeSessions;
    sf::log::debug("ws_open", {{"conn", std::to_string(id_)}, {"kind", kind_}});
    sender_ = std::thread([this] { senderLoop(); });
    bool drainAfterClose = false;
    try {
        readLoop();
    } catch (const Poco::Net::WebSocketException& e) {
        sf::log::debug("ws_protocol_error", {{"conn", std::to_string(id_)}, {"error", e.displayText()}});
        Poco::UInt16 code = e.code() == WebSocket::WS_ERR_PAYLOAD_TOO_BIG ? WebSocket::WS_PAYLOAD_TOO_BIG : WebSocket::WS_PROTOCOL_ERROR;
        enqueue(closePayload(code, ""), WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_CLOSE);
        drainAfterClose = true;
    } catch (const std::exception& e) {
        // Timeouts mid-frame, resets, etc.: the connection is unusable.
        sf::log::debug("ws_read_failed", {{"conn", std::to_string(id_)}, {"error", e.what()}});
        std::lock_guard<std::mutex> lk(mu_);
        broken_ = true;
        queue_.clear();
    }
    app_.hub.remove(this);
    {
        std::lock_guard<std::mutex> lk(mu_);
        stopSender_ = true;
        cv_.notify_all();
    }
    sender_.join();
    if (drainAfterClose) drainUnread();
    try {
        ws_.close();
    } catch (const std::exception&) {
    }
    sf::log::debug("ws_closed", {{"conn", std::to_string(id_)}});
    --app_.activeSessions;
}

}  // namespace hpkv
