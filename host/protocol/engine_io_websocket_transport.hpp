// The websocket transport of an Engine.IO session: frames go to an EngineConnection in
// websocket mode, directly when it lives on the session's loop, through the cross-loop
// outbox otherwise. Session loop only, except crossDone.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "protocol/engine_io_transport.hpp"

namespace sf::net {
class EventLoop;
}

namespace sf::eio {

class EngineConnection;

class WebSocketTransport final : public SessionTransport, public std::enable_shared_from_this<WebSocketTransport> {
public:
    WebSocketTransport(net::EventLoop& sessionLoop, std::shared_ptr<EngineConnection> conn);

    bool isWebsocket() const override { return true; }
    void sendPacket(char type, std::string_view data, bool binary) override;
    void sendPrepared(const std::string& eioPacket, const net::Buffer& wsFrame) override;
    size_t bufferedBytes() const override;
    // The connection's onDrain reaches the session as EngineConnection -> onWsDrain.
    void watchDrain() override;

    void sendFrame(net::Buffer frame);
    void close(uint16_t code, const std::string& why);
    const std::shared_ptr<EngineConnection>& connection() const { return conn_; }
    bool is(const EngineConnection* c) const { return c == conn_.get(); }

    // On the connection's loop, once a frame sent through the outbox is in its queue.
    void crossDone(size_t n) { crossBytes_.fetch_sub(n, std::memory_order_relaxed); }

    // A complete websocket frame holding one Engine.IO packet.
    static std::string frameOf(char type, std::string_view data, bool binary);

private:
    bool sameLoop() const { return connLoop_ == &sessionLoop_; }

    net::EventLoop& sessionLoop_;
    net::EventLoop* connLoop_;
    std::shared_ptr<EngineConnection> conn_;
    std::atomic<size_t> crossBytes_{0};  // sent through the outbox, not yet in the connection's queue
};

}  // namespace sf::eio
