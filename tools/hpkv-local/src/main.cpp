// hpkv-local: a local stand-in for the HPKV WebSocket API (see README.md).
#include "app.hpp"
#include "common/log.hpp"
#include "http.hpp"
#include "persistence.hpp"

#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/ThreadPool.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <sstream>
#include <thread>

namespace {
std::string formatRate(double r) {
    std::ostringstream os;
    os << r;
    return os.str();
}
}  // namespace

int main(int argc, char** argv) {
    using namespace hpkv;
    App app;
    bool help = false;
    try {
        app.options = parseOptions(argc, argv, help);
    } catch (const std::exception& e) {
        std::cerr << "hpkv-local: " << e.what() << "\n" << usageText();
        return 2;
    }
    if (help) {
        std::cout << usageText();
        return 0;
    }
    const Options& opt = app.options;
    if (!sf::log::setLevel(opt.logLevel)) {
        std::cerr << "hpkv-local: unknown log level '" << opt.logLevel << "'\n";
        return 2;
    }

    // Block the stop signals in every thread (inherited by Poco's workers) so
    // main can sigwait() for them; writes to dead peers must not kill us.
    sigset_t stopSignals;
    sigemptyset(&stopSignals);
    sigaddset(&stopSignals, SIGINT);
    sigaddset(&stopSignals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    std::uint64_t replayed = 0;
    try {
        std::unique_ptr<Persistence> persistence;
        if (!opt.dataDir.empty())
            persistence = std::make_unique<Persistence>(Persistence::Options{opt.dataDir, opt.fsync, opt.compactBytes});
        app.store = std::make_unique<Store>(std::move(persistence), app.limits.maxValueBytes);
        replayed = app.store->load();
        app.tokens = std::make_unique<TokenService>(TokenService::loadOrCreateSecret(opt.dataDir),
                                                    std::chrono::seconds(opt.tokenTtlSeconds));
    } catch (const std::exception& e) {
        sf::log::error("startup_failed", {{"error", e.what()}});
        return 1;
    }
    app.apiKeys = std::make_unique<ApiKeys>(opt.apiKeys);
    app.limiter = std::make_unique<RateLimiter>(opt.rateLimit);
    app.store->setChangeListener([&app](const std::string& key, const std::string* value) { app.hub.notify(key, value); });

    // Each WebSocket connection occupies a worker thread for its lifetime.
    Poco::ThreadPool pool(2, opt.maxThreads, 60);
    std::unique_ptr<Poco::Net::HTTPServer> server;
    int port = 0;
    try {
        Poco::Net::ServerSocket socket;
        socket.bind(Poco::Net::SocketAddress(opt.host, static_cast<Poco::UInt16>(opt.port)), true);
        socket.listen(256);
        port = socket.address().port();
        auto* params = new Poco::Net::HTTPServerParams;
        params->setMaxQueued(1000);
        params->setMaxThreads(opt.maxThreads);
        // Plain HTTP here is only /ping and /token/websocket; closing after each
        // response means no idle keep-alive connections hold up shutdown.
        params->setKeepAlive(false);
        server = std::make_unique<Poco::Net::HTTPServer>(new RequestHandlerFactory(app), pool, socket, params);
        server->start();
    } catch (const std::exception& e) {
        sf::log::error("listen_failed", {{"host", opt.host}, {"port", std::to_string(opt.port)}, {"error", e.what()}});
        return 1;
    }
    // First log line by contract: tests read the port from it.
    sf::log::info("listening", {{"port", std::to_string(port)},
                                {"host", opt.host},
                                {"keys", std::to_string(opt.apiKeys.size())},
                                {"data", opt.dataDir.empty() ? std::string("memory") : opt.dataDir},
                                {"records_replayed", std::to_string(replayed)},
                                {"live_keys", std::to_string(app.store->size())},
                                {"rate_limit", formatRate(opt.rateLimit)},
                                {"fsync", opt.fsync ? "true" : "false"}});

    int sig = 0;
    sigwait(&stopSignals, &sig);
    sf::log::info("stopping", {{"signal", std::to_string(sig)}});
    // Sessions notice the flag within a poll interval and send close 1001;
    // every acknowledged write is already in the log, so there is nothing to flush.
    app.stopping = true;
    server->stop();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while ((app.activeSessions > 0 || server->currentConnections() > 0) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    // Only force stragglers (a peer that ignores our close frame): Poco's
    // stopAll(true) races with connections finishing on their own.
    if (server->currentConnections() > 0) server->stopAll(true);
    pool.joinAll();
    sf::log::info("stopped", {});
    return 0;
}
