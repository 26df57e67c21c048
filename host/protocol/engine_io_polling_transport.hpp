// The HTTP long-polling transport of an Engine.IO session: packets wait in one encoded
// payload for the next GET, which is answered at the end of the turn so everything sent
// in that turn leaves in one response. The GET itself arrives on any loop's connection
// and is answered there (PollWaiter). Session loop only.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "protocol/engine_io_transport.hpp"

namespace sf::net {
class EventLoop;
}

namespace sf::eio {

class EngineConnection;

// A polling request waiting for the session's answer; the answer goes back to its loop.
struct PollWaiter {
    std::weak_ptr<EngineConnection> conn;
    net::EventLoop* loop = nullptr;
    uint64_t seq = 0;
    bool keepAlive = true;
    std::string cors;
    const EngineConnection* owner = nullptr;  // identity only, never dereferenced off its loop
};
// Answer a polling request (from any loop: posted to the request's loop if need be).
void respondToPoll(const PollWaiter& w, int status, std::string_view ctype, std::string_view body);

class PollingTransport final : public SessionTransport, public std::enable_shared_from_this<PollingTransport> {
public:
    PollingTransport(net::EventLoop& loop, std::weak_ptr<TransportOwner> owner) : loop_(loop), owner_(std::move(owner)) {}

    bool isWebsocket() const override { return false; }
    void sendPacket(char type, std::string_view data, bool binary) override;
    void sendPrepared(const std::string& eioPacket, const net::Buffer& wsFrame) override;
    size_t bufferedBytes() const override { return pending_.size(); }
    // Every answered GET empties the queue and reports the drain: nothing to arm.
    void watchDrain() override {}

    // A packet for the next GET, without answering the one waiting.
    void append(char type, std::string_view data, bool binary);
    std::string takePending();
    void clearPending();

    bool hasGet() const { return get_ != nullptr; }
    bool holdsGet(uint64_t seq, const EngineConnection* from) const {
        return get_ && get_->owner == from && get_->seq == seq;
    }
    // Park a GET; it is answered at the end of the turn if packets are already waiting.
    void setGet(PollWaiter w);
    // Answer the parked GET now (200, text/plain) with body; false if there was none.
    bool endGet(std::string_view body);
    void dropGet() { get_.reset(); }

private:
    void scheduleFlush();
    void flush();

    net::EventLoop& loop_;
    std::weak_ptr<TransportOwner> owner_;
    // Behind a pointer: most of the time no GET is parked.
    std::unique_ptr<PollWaiter> get_;
    std::string pending_;  // encoded payload waiting for the next GET
    bool flushScheduled_ = false;
};

}  // namespace sf::eio
