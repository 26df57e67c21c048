// The transport under an Engine.IO session: HTTP long-polling (PollingTransport) or a
// websocket (WebSocketTransport), the way Engine.IO itself builds its socket. The session
// owns one current transport and, during an upgrade, the probing websocket beside it.
// Session loop only.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "net/buffer.hpp"

namespace sf::eio {

// The session, as its transports call it back (on the session's loop).
class TransportOwner {
public:
    virtual ~TransportOwner() = default;
    // The transport's queue is at or below the low watermark (after watchDrain(), or after
    // a polling response went out).
    virtual void onTransportDrain() = 0;
};

class SessionTransport {
public:
    virtual ~SessionTransport() = default;
    virtual bool isWebsocket() const = 0;
    // One packet, type '0'..'6' (binary only for MESSAGE '4').
    virtual void sendPacket(char type, std::string_view data, bool binary) = 0;
    // A pre-encoded MESSAGE (EngineSession::sendPrepared).
    virtual void sendPrepared(const std::string& eioPacket, const net::Buffer& wsFrame) = 0;
    virtual size_t bufferedBytes() const = 0;
    // Promise one TransportOwner::onTransportDrain once bufferedBytes() is at or below the
    // low watermark, unless the transport closes first.
    virtual void watchDrain() = 0;
};

}  // namespace sf::eio
