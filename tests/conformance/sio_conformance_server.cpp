// Socket.IO server for socket.io-protocol/test-suite and our protocol e2e tests:
// path /socket.io/, namespaces / and /custom; on connect emits `auth` with the handshake
// auth; echoes `message` as `message-back` (binary included); answers `message-with-ack`
// through the ack. Extras for our tests: `request-ack` makes the server emitWithAck
// `server-ack` and report the outcome as `server-ack-result`; `disconnect-me` makes the
// server disconnect the socket.
// Usage: sio-conformance-server [--port P] [--host H] [--websocket-only]
//        [--tls-cert F --tls-key F] [--ping-interval MS] [--ping-timeout MS]
//        [--max-payload N] [--io-threads N] [--connect-timeout MS] [--cors ORIGIN]
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "common/log.hpp"
#include "protocol/sio_server.hpp"

namespace {

using sf::json::Value;
using sf::sio::Args;

class Handler final : public sf::sio::NamespaceHandler {
public:
    void onConnect(const sf::sio::SocketPtr& s, std::function<void(bool, Value)> done) override {
        done(true, {});
        s->emit("auth", Args{s->auth()});
    }
    void onEvent(const sf::sio::SocketPtr& s, const std::string& event, Args& args, sf::sio::AckFn ack) override {
        if (event == "message") {
            s->emit("message-back", std::move(args));
        } else if (event == "message-with-ack") {
            if (ack) ack(std::move(args));
        } else if (event == "request-ack") {
            uint64_t timeout = 2000;
            std::weak_ptr<sf::sio::Socket> wk = s;
            s->emitWithAck("server-ack", std::move(args), timeout, [wk](bool timedOut, Args reply) {
                auto sock = wk.lock();
                if (!sock) return;
                Value r = Value::object();
                r.set("timedOut", timedOut);
                r.set("reply", Value(std::move(reply)));
                sock->emit("server-ack-result", Args{std::move(r)});
            });
            if (ack) ack(Args{Value("requested")});
        } else if (event == "disconnect-me") {
            s->disconnect();
        } else if (event == "whoami") {
            if (ack) {
                Value r = Value::object();
                r.set("id", s->id());
                r.set("nsp", s->nsp());
                r.set("sid", s->sessionId());
                r.set("websocket", s->isWebsocket());
                r.set("query", s->query("q"));
                ack(Args{std::move(r)});
            }
        }
    }
    void onDisconnect(const sf::sio::SocketPtr&, const std::string&) override {}
};

}  // namespace

int main(int argc, char** argv) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    sf::config::ServerConfig cfg;
    cfg.name = "sio-conformance";
    cfg.port = 3000;
    cfg.pingIntervalMs = 300;
    cfg.pingTimeoutMs = 200;
    cfg.maxPayloadBytes = 1000000;
    cfg.ioThreads = 2;
    cfg.corsOrigins = {"*"};
    uint64_t connectTimeout = 1000;
    std::string cert, key;
    auto need = [&](int& i) -> const char* {
        if (i + 1 >= argc) {
            std::cerr << "missing value for " << argv[i] << "\n";
            std::exit(2);
        }
        return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--port") cfg.port = std::atoi(need(i));
        else if (a == "--host") cfg.host = need(i);
        else if (a == "--websocket-only") cfg.engineIoTransport = sf::config::EngineIoTransport::WEBSOCKET_ONLY;
        else if (a == "--tls-cert") cert = need(i);
        else if (a == "--tls-key") key = need(i);
        else if (a == "--ping-interval") cfg.pingIntervalMs = std::atoi(need(i));
        else if (a == "--ping-timeout") cfg.pingTimeoutMs = std::atoi(need(i));
        else if (a == "--max-payload") cfg.maxPayloadBytes = std::atoll(need(i));
        else if (a == "--io-threads") cfg.ioThreads = std::atoi(need(i));
        else if (a == "--connect-timeout") connectTimeout = static_cast<uint64_t>(std::atoll(need(i)));
        else if (a == "--cors") cfg.corsOrigins = {need(i)};
        else {
            std::cerr << "unknown argument " << a << "\n";
            return 2;
        }
    }
    if (!cert.empty() || !key.empty()) {
        cfg.transport = sf::config::Transport::WSS;
        sf::config::TlsConfig t;
        t.certChainPemPath = cert;
        t.privateKeyPemPath = key;
        t.protocol = "TLSv1.2";
        t.watchIntervalMs = 500;
        cfg.tls = t;
    }
    sf::sio::SioServer server(cfg);
    server.addNamespace("/", std::make_shared<Handler>());
    server.addNamespace("/custom", std::make_shared<Handler>());
    server.setConnectTimeoutMs(connectTimeout);
    try {
        server.start();
    } catch (const std::exception& e) {
        sf::log::error("start_failed", {{"error", e.what()}});
        return 1;
    }
    while (true) {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig != SIGHUP) break;
        std::string err;
        if (server.reloadTls(err)) sf::log::info("tls_reloaded", {{"server", cfg.name}});
        else sf::log::warn("tls_reload_failed", {{"server", cfg.name}, {"error", err}});
    }
    server.stop();
    sf::log::info("stopped", {{"server", cfg.name}});
    return 0;
}
