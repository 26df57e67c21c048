#include "protocol/engine_io_context.hpp"

#include "protocol/engine_io_codec.hpp"
#include "protocol/engine_io_server_session.hpp"
#include "protocol/websocket.hpp"

namespace sf::eio {

EngineContext::EngineContext() : pingFrame(ws::frameBuffer(ws::Text, "2")) {}

std::shared_ptr<EngineServerSession> EngineContext::find(const std::string& sid) const {
    std::lock_guard<std::mutex> g(mu);
    auto it = sessions.find(sid);
    return it == sessions.end() ? nullptr : it->second;
}

void EngineContext::add(const std::string& sid, std::shared_ptr<EngineServerSession> s) {
    std::lock_guard<std::mutex> g(mu);
    sessions.emplace(sid, std::move(s));
}

void EngineContext::remove(const std::string& sid) {
    std::lock_guard<std::mutex> g(mu);
    sessions.erase(sid);
}

std::string EngineContext::openPacket(const std::string& sid, bool websocket) const {
    return eio::openPacket(sid, !websocket && opts.allowPolling, opts.pingIntervalMs, opts.pingTimeoutMs, opts.maxPayload);
}

}  // namespace sf::eio
