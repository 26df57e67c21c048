#include "protocol/engine_io_websocket_transport.hpp"

#include "protocol/engine_io_connection.hpp"
#include "protocol/engine_io_outbox.hpp"
#include "protocol/websocket.hpp"

namespace sf::eio {

WebSocketTransport::WebSocketTransport(net::EventLoop& sessionLoop, std::shared_ptr<EngineConnection> conn)
    : sessionLoop_(sessionLoop), connLoop_(&conn->loop()), conn_(std::move(conn)) {}

std::string WebSocketTransport::frameOf(char type, std::string_view data, bool binary) {
    std::string f;
    size_t n = binary ? data.size() : data.size() + 1;
    f.reserve(n + 10);
    ws::appendFrameHeader(f, binary ? ws::Binary : ws::Text, n);
    if (!binary) f.push_back(type);
    f.append(data);
    return f;
}

void WebSocketTransport::sendPacket(char type, std::string_view data, bool binary) {
    sendFrame(net::makeBuffer(frameOf(type, data, binary)));
}

void WebSocketTransport::sendPrepared(const std::string&, const net::Buffer& wsFrame) { sendFrame(wsFrame); }

void WebSocketTransport::sendFrame(net::Buffer frame) {
    if (sameLoop()) {
        conn_->wsSend(frame);
        return;
    }
    crossBytes_.fetch_add(frame->size(), std::memory_order_relaxed);
    outbox::queueFrame(sessionLoop_, shared_from_this(), conn_, std::move(frame));
}

void WebSocketTransport::close(uint16_t code, const std::string& why) {
    if (sameLoop()) conn_->wsClose(code, why);
    else outbox::queueClose(sessionLoop_, conn_, code, why);
}

size_t WebSocketTransport::bufferedBytes() const {
    if (sameLoop()) return conn_->queued();
    // The connection's queue as last seen plus what is still on its way there.
    return crossBytes_.load(std::memory_order_relaxed) + conn_->mirror.load(std::memory_order_relaxed);
}

void WebSocketTransport::watchDrain() {
    // Cross-loop, the watch travels behind the frames already in the outbox, so the
    // connection judges its queue with them in it.
    if (sameLoop()) conn_->watchDrain();
    else outbox::queueDrainWatch(sessionLoop_, conn_);
}

}  // namespace sf::eio
