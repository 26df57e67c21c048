// Engine.IO-only echo server for engine.io-protocol/test-suite: path /engine.io/, every
// message echoed (text as text, binary as binary), pingInterval 300, pingTimeout 200.
// Usage: eio-conformance-server [--port P] [--host H] [--io-threads N]   (P=0: ephemeral, see the log line)
// One I/O loop by default: the official suite's upgrade tests read ordering ACROSS two
// connections (a "3probe" frame on the websocket before the answer to a poll on another
// socket) that only a single-threaded server guarantees; a real client never depends on it.
// Our own e2e tests exercise several loops.
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/log.hpp"
#include "net/event_loop.hpp"
#include "net/acceptor.hpp"
#include "protocol/engine_io_server.hpp"

namespace {

class Echo final : public sf::eio::EngineSessionHandler {
public:
    void onMessage(sf::eio::EngineSession& s, std::string&& data, bool binary) override {
        if (binary) s.sendBinary(data);
        else s.sendText(data);
    }
    void onClose(sf::eio::EngineSession&, const std::string&) override {}
};

int waitForSignal() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}

}  // namespace

int main(int argc, char** argv) {
    // Block the stop signals before any thread starts, so only sigwait sees them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    std::string host = "0.0.0.0";
    int port = 3000;
    int ioThreads = 1;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--port" && i + 1 < argc) port = std::atoi(argv[++i]);
        else if (a == "--host" && i + 1 < argc) host = argv[++i];
        else if (a == "--io-threads" && i + 1 < argc) ioThreads = std::max(1, std::atoi(argv[++i]));
        else {
            std::cerr << "usage: eio-conformance-server [--port P] [--host H] [--io-threads N]\n";
            return 2;
        }
    }
    sf::eio::Options o;
    o.path = "/engine.io/";
    o.pingIntervalMs = 300;
    o.pingTimeoutMs = 200;
    o.maxPayload = 1000000;
    o.corsOrigins = {"*"};
    sf::eio::EngineServer engine(o, [](const sf::eio::EngineSessionPtr& s) { s->setHandler(std::make_shared<Echo>()); });

    std::vector<std::unique_ptr<sf::net::EventLoop>> loops;
    std::vector<sf::net::EventLoop*> io;
    for (int i = 0; i < ioThreads; ++i) {
        loops.push_back(std::make_unique<sf::net::EventLoop>("eio-io" + std::to_string(i)));
        io.push_back(loops.back().get());
    }
    for (auto& l : loops) l->start();
    std::unique_ptr<sf::net::Acceptor> acceptor;
    try {
        acceptor = std::make_unique<sf::net::Acceptor>(
            *io[0], io, host, port, [&engine](const std::shared_ptr<sf::net::Connection>& c) { return engine.makeHandler(c); });
    } catch (const std::exception& e) {
        sf::log::error("listen_failed", {{"error", e.what()}});
        for (auto& l : loops) l->stop();
        for (auto& l : loops) l->join();
        return 1;
    }
    acceptor->start();
    sf::log::info("listening", {{"server", "eio-conformance"}, {"host", host}, {"port", std::to_string(acceptor->port())},
                                {"transport", "ws"}});
    waitForSignal();
    acceptor->stop();
    acceptor.reset();
    engine.closeAll("server shutting down");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (auto& l : loops) l->shutdown();  // as SioServer::stop: open connections abort
    for (auto& l : loops) l->join();
    for (auto& l : loops) l->clear();
    sf::log::info("stopped", {{"server", "eio-conformance"}});
    return 0;
}
