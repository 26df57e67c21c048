// Decodes what @socket.io/redis-emitter publishes (docs/cluster.md "Socket.IO emitter"):
// msgpack [uid, packet, opts] with packet = {type: 2, data: [event, ...args], nsp} and
// opts = {rooms, except, flags}. Maps are read by key (the emitter and the Socket.IO
// adapter order them differently); rooms may be integers. Anything else is rejected with a
// reason, never half-read; sizes and depth are bounded, since any Redis client can publish.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace sf::cluster {

struct EmitterMessage {
    std::string uid;
    std::string nsp = "/";            // packet.nsp; absent means "/"
    std::string event;                // data[0]
    std::string payloadJson;          // data[1] when it is the only argument, the array of arguments when
                                      // several, null when none
    std::vector<std::string> rooms;   // opts.rooms (integers as decimal text)
    std::vector<std::string> except;  // opts.except
};

struct EmitterLimits {
    size_t maxBytes = 1u << 20;  // whole message
    size_t maxDepth = 32;
    size_t maxItems = 100000;    // elements of one array or map
};

bool decodeEmitterMessage(const char* data, size_t size, EmitterMessage& out, std::string& error,
                          const EmitterLimits& limits = {});

}  // namespace sf::cluster
