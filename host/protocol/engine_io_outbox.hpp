// Frames for websockets owned by another loop. One outbox per loop thread collects them
// for the whole turn and posts one batch per target loop at its end, so fan-out to many
// cross-loop sessions costs one post per loop pair, not one per session. Closes and drain
// watches travel in the same batch, so they never overtake the frames queued before them
// (docs/threads-and-ownership.md).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "net/buffer.hpp"

namespace sf::net {
class EventLoop;
}

namespace sf::eio {

class EngineConnection;
class WebSocketTransport;

namespace outbox {

// All three on the sending loop's thread (`from`); they run on conn's loop after this turn.
// The transport is told (crossDone) once its frame is in the connection's queue.
void queueFrame(net::EventLoop& from, const std::shared_ptr<WebSocketTransport>& t,
                const std::shared_ptr<EngineConnection>& conn, net::Buffer frame);
void queueClose(net::EventLoop& from, const std::shared_ptr<EngineConnection>& conn, uint16_t code, std::string why);
// The connection reports its drain to its session (EngineConnection::watchDrain).
void queueDrainWatch(net::EventLoop& from, const std::shared_ptr<EngineConnection>& conn);

}  // namespace outbox
}  // namespace sf::eio
