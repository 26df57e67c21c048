// A program that embeds StreamFence: it builds a server in code, publishes a tick every
// 100 ms, and answers each client `publish` on topic "messages" with publishTo() to that
// client alone. Run it, then connect a socket.io-client to http://127.0.0.1:<port>/chat.
//
//   embedded-server [--port N]
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <pthread.h>
#include <string>
#include <thread>

#include "common/json.hpp"
#include "embed/streamfence.hpp"

namespace {

std::mutex outMu;
void say(const std::string& line) {
    std::lock_guard<std::mutex> g(outMu);
    std::cout << line << std::endl;
}

// Prints what the server reports, one line per event.
class PrintingListener : public sf::ServerListener {
public:
    void onServerStarted(const sf::ServerInfo& i) override { say("started port=" + std::to_string(i.port)); }
    void onServerStopped(const sf::ServerInfo&) override { say("stopped"); }
    void onClientConnected(const sf::delivery::ClientConnectedEvent& e) override {
        say("connected ns=" + e.ns + " client=" + e.clientId + " transport=" + e.transport);
    }
    void onSubscribed(const sf::delivery::SubscribedEvent& e) override {
        say("subscribed ns=" + e.ns + " client=" + e.clientId + " topic=" + e.topic);
    }
    void onClientDisconnected(const sf::delivery::ClientDisconnectedEvent& e) override {
        say("disconnected ns=" + e.ns + " client=" + e.clientId);
    }
};

}  // namespace

int main(int argc, char** argv) {
    int port = 3100;
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == "--port") port = std::atoi(argv[i + 1]);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    sf::config::NamespaceConfig chat;
    chat.path = "/chat";
    chat.topics = {"messages", "ticks"};
    chat.overflowAction = "DROP_OLDEST";
    chat.maxQueuedMessagesPerClient = 128;

    std::unique_ptr<sf::StreamFenceServer> server;
    try {
        server = sf::StreamFenceServerBuilder().host("127.0.0.1").port(port).namespaceSpec(chat)
                     .listener(std::make_shared<PrintingListener>())
                     .build();
    } catch (const std::exception& e) {
        std::cerr << "cannot build the server: " << e.what() << "\n";
        return 1;
    }
    sf::StreamFenceServer* srv = server.get();
    server->onMessage("/chat", "messages", [srv](const sf::ClientMessage& m) {
        say("message client=" + m.clientId + " payload=" + m.payloadJson + " binaryParts=" + std::to_string(m.binary.size()));
        // Answer the sender only; binary parts (Buffers) go back as binary.
        std::vector<sf::Bytes> parts;
        for (auto& b : m.binary) parts.emplace_back(b.begin(), b.end());
        srv->publishTo("/chat", m.clientId, "messages", "{\"echo\":" + m.payloadJson + "}", parts);
    });
    try {
        server->start();
    } catch (const std::exception& e) {
        std::cerr << "cannot start: " << e.what() << "\n";
        return 1;
    }

    bool stop = false;
    std::thread ticker([&] {
        for (int n = 1; !stop; ++n) {
            srv->publish("/chat", "ticks", "{\"n\":" + std::to_string(n) + "}");
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
    int sig = 0;
    sigwait(&sigs, &sig);
    stop = true;
    ticker.join();
    server->stop();
    return 0;
}
