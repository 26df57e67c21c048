#include "protocol/engine_io_server.hpp"

#include <unordered_map>
#include <vector>

#include "net/event_loop.hpp"
#include "protocol/engine_io_connection.hpp"
#include "protocol/engine_io_context.hpp"
#include "protocol/engine_io_server_session.hpp"

namespace sf::eio {

EngineServer::EngineServer(Options opts, SessionCallback onSession, std::shared_ptr<LimitCounters> counters)
    : ctx_(std::make_shared<EngineContext>()) {
    ctx_->opts = std::move(opts);
    ctx_->limits = counters ? std::move(counters) : std::make_shared<LimitCounters>();
    ctx_->onSession = std::move(onSession);
}

namespace {
// Destroyed by the caller, outside the lock: a session's destructor may take it.
std::unordered_map<std::string, std::shared_ptr<EngineServerSession>> takeSessions(EngineContext& ctx) {
    std::unordered_map<std::string, std::shared_ptr<EngineServerSession>> all;
    std::lock_guard<std::mutex> g(ctx.mu);
    all.swap(ctx.sessions);
    return all;
}
}  // namespace

EngineServer::~EngineServer() {
    ctx_->closed.store(true);
    takeSessions(*ctx_);  // the loops may still run: their sessions' handlers are theirs to drop
}

void EngineServer::forgetSessions() {
    for (auto& kv : takeSessions(*ctx_)) {
        kv.second->close("server stopped");  // the handler hears onClose and lets go of what it holds
        kv.second->setHandler(nullptr);
    }
}

std::shared_ptr<net::ConnectionHandler> EngineServer::makeHandler(const std::shared_ptr<net::Connection>& c) {
    if (ctx_->closed.load()) return nullptr;
    // The connection reports its drains at the session's marks (the websocket's queue is
    // the session's queue).
    c->setWatermarks(ctx_->opts.highWaterBytes, ctx_->opts.lowWaterBytes);
    auto h = std::make_shared<EngineConnection>(ctx_, c);
    h->init();
    return h;
}

void EngineServer::closeAll(const std::string& reason) {
    ctx_->closed.store(true);
    std::vector<std::shared_ptr<EngineServerSession>> all;
    {
        std::lock_guard<std::mutex> g(ctx_->mu);
        for (auto& kv : ctx_->sessions) all.push_back(kv.second);
    }
    for (auto& s : all) {
        if (s->loop().inLoopThread()) s->close(reason);
        else s->loop().post([s, reason] { s->close(reason); });
    }
}

size_t EngineServer::sessionCount() const {
    std::lock_guard<std::mutex> g(ctx_->mu);
    return ctx_->sessions.size();
}

const Options& EngineServer::options() const { return ctx_->opts; }

}  // namespace sf::eio
