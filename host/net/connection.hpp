// A non-blocking stream connection (plain TCP or TLS) owned by one EventLoop.
// Output is a queue of shared Buffers; everything queued during one loop turn leaves in
// one writev at the end of the turn (latency first at low rates, batching at high rates).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "net/buffer.hpp"

namespace sf::net {

class EventLoop;
class Connection;

// Implemented by whoever speaks a protocol on the connection (HTTP/WebSocket/Engine.IO).
class ConnectionHandler {
public:
    virtual ~ConnectionHandler() = default;
    // Bytes arrived (plaintext, after TLS). `data` is borrowed for the call.
    virtual void onData(Connection& c, std::string_view data) = 0;
    // Output queue fell below the low watermark after having been above the high one.
    virtual void onDrain(Connection& c) { (void)c; }
    // The connection is closed (by the peer, an error, or close()). Called once.
    virtual void onClose(Connection& c, const std::string& reason) = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
public:
    virtual ~Connection() = default;

    // Loop thread only.
    virtual void setHandler(std::shared_ptr<ConnectionHandler> h) = 0;
    virtual void send(Buffer b) = 0;                 // shared, zero-copy
    virtual void send(std::string bytes) = 0;        // convenience: wraps in a Buffer
    virtual void sendSlice(Buffer b, size_t offset, size_t len) = 0;  // part of a shared buffer
    virtual size_t bufferedBytes() const = 0;       // queued, not yet written
    virtual void close(const std::string& reason) = 0;   // flushes what is queued, then closes
    virtual void abort(const std::string& reason) = 0;   // closes now, drops what is queued
    virtual bool isOpen() const = 0;
    virtual bool isTls() const = 0;
    virtual const std::string& remoteAddress() const = 0;  // "ip:port"
    virtual EventLoop& loop() = 0;
    virtual uint64_t id() const = 0;                 // unique per process

    // Backpressure thresholds for onDrain (defaults 1 MiB / 256 KiB).
    virtual void setWatermarks(size_t high, size_t low) = 0;
    // Promise one onDrain once bufferedBytes() is at or below the low watermark, as if the
    // high one had been reached (at the end of this turn if it already is), unless the
    // connection closes first. For a sender that judged "full" by its own count.
    virtual void watchDrain() = 0;
};

}  // namespace sf::net
