// What the Engine.IO server, its connections and its sessions share: the options, the
// session registry (looked up from every loop, hence the mutex) and the shared frames.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "net/buffer.hpp"
#include "protocol/engine_io_server.hpp"
#include "protocol/limit_counters.hpp"

namespace sf::eio {

class EngineServerSession;

struct EngineContext {
    Options opts;
    EngineServer::SessionCallback onSession;
    mutable std::mutex mu;
    std::unordered_map<std::string, std::shared_ptr<EngineServerSession>> sessions;
    std::atomic<bool> closed{false};
    net::Buffer pingFrame;  // "2" as a websocket text frame, shared by every session
    std::shared_ptr<LimitCounters> limits;  // what the limits refused (conf/README.md "limits")

    EngineContext();
    std::shared_ptr<EngineServerSession> find(const std::string& sid) const;
    void add(const std::string& sid, std::shared_ptr<EngineServerSession> s);
    void remove(const std::string& sid);
    std::string openPacket(const std::string& sid, bool websocket) const;
};

}  // namespace sf::eio
