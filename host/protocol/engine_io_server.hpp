// Engine.IO v4 server: handshake, sessions, HTTP long-polling, websocket, the polling ->
// websocket upgrade, heartbeat and maxPayload, with the Node server's error answers
// (docs/client-protocol.md). It hands each connection an EngineConnection and each new
// session to the layer above.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "net/connection.hpp"
#include "protocol/engine_io_options.hpp"
#include "protocol/engine_io_session.hpp"
#include "protocol/limit_counters.hpp"

namespace sf::eio {

struct EngineContext;

class EngineServer {
public:
    using SessionCallback = std::function<void(const EngineSessionPtr&)>;  // on the session's loop
    // counters: where the limits count what they refuse (null: a private set).
    EngineServer(Options opts, SessionCallback onSession, std::shared_ptr<LimitCounters> counters = nullptr);
    ~EngineServer();

    // For the Acceptor's factory: the handler speaking HTTP/websocket on a new connection.
    std::shared_ptr<net::ConnectionHandler> makeHandler(const std::shared_ptr<net::Connection>& c);
    // Thread-safe: close every session (posted to their loops); refuse new ones.
    void closeAll(const std::string& reason);
    // Once the loops have stopped for good: forget the sessions still registered (one whose
    // close waited for a timer that will not run) and their handlers. A session holds the
    // context that holds it, and its handler, which holds it (and the server) in turn.
    void forgetSessions();
    size_t sessionCount() const;
    const Options& options() const;

private:
    std::shared_ptr<EngineContext> ctx_;
};

}  // namespace sf::eio
