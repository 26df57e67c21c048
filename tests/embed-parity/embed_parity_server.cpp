// Test program for tests/e2e/embed_parity.test.js. Usage: embed_parity_server <config.json>
// Starts the config's one server, then adds a listener (after start, on purpose) that prints
// every delivery event as one JSON line with streamfence-js's field names, and onMessage
// handlers that print their context. Handlers on /strict fail on request (payload.fail:
// returned failure, payload.throw: exception); /lax echoes binary parts back through the
// byte overloads of publish/publishTo. Stops on SIGTERM.
#include <csignal>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>

#include "common/json.hpp"
#include "embed/streamfence.hpp"

namespace {

std::mutex outMu;
void say(const std::string& line) {
    std::lock_guard<std::mutex> g(outMu);
    std::cout << line << std::endl;
}

std::string hex(const std::string& b) {
    static const char* d = "0123456789abcdef";
    std::string s;
    for (unsigned char c : b) {
        s.push_back(d[c >> 4]);
        s.push_back(d[c & 15]);
    }
    return s;
}

using sf::json::Value;
using Obj = Value::Object;

void event(const char* name, Obj fields) {
    fields.insert(fields.begin(), {"event", Value(name)});
    say(Value(std::move(fields)).dump());
}

class JsonListener : public sf::ServerListener {
public:
    void onClientConnected(const sf::delivery::ClientConnectedEvent& e) override {
        event("onClientConnected", {{"namespace", Value(e.ns)}, {"clientId", Value(e.clientId)}, {"transport", Value(e.transport)},
                                    {"principal", e.principal.empty() ? Value() : Value(e.principal)}});
    }
    void onClientDisconnected(const sf::delivery::ClientDisconnectedEvent& e) override {
        event("onClientDisconnected", {{"namespace", Value(e.ns)}, {"clientId", Value(e.clientId)}});
    }
    void onSubscribed(const sf::delivery::SubscribedEvent& e) override {
        event("onSubscribed", {{"namespace", Value(e.ns)}, {"clientId", Value(e.clientId)}, {"topic", Value(e.topic)}});
    }
    void onUnsubscribed(const sf::delivery::UnsubscribedEvent& e) override {
        event("onUnsubscribed", {{"namespace", Value(e.ns)}, {"clientId", Value(e.clientId)}, {"topic", Value(e.topic)}});
    }
    void onPublishAccepted(const sf::delivery::PublishAcceptedEvent& e) override {
        event("onPublishAccepted", {{"namespace", Value(e.ns)}, {"clientId", Value(e.clientId)}, {"topic", Value(e.topic)}});
    }
    void onPublishRejected(const sf::delivery::PublishRejectedEvent& e) override {
        event("onPublishRejected", {{"namespace", Value(e.ns)}, {"clientId", Value(e.clientId)}, {"topic", Value(e.topic)},
                                    {"reasonCode", Value(e.reasonCode)}, {"reason", Value(e.reason)}});
    }
    void onQueueOverflow(const sf::delivery::QueueOverflowEvent& e) override {
        event("onQueueOverflow", {{"namespace", Value(e.ns)}, {"clientId", Value(e.clientId)}, {"topic", Value(e.topic)},
                                  {"reason", Value(e.reason)}});
    }
    void onAuthRejected(const sf::delivery::AuthRejectedEvent& e) override {
        event("onAuthRejected", {{"namespace", Value(e.ns)}, {"clientId", Value(e.clientId)},
                                 {"remoteAddress", Value(e.remoteAddress)}, {"reason", Value(e.reason)}});
    }
    void onRetry(const sf::delivery::RetryEvent& e) override {
        event("onRetry", {{"namespace", Value(e.ns)}, {"clientId", Value(e.clientId)}, {"topic", Value(e.topic)},
                          {"messageId", Value(e.messageId)}, {"retryCount", Value(e.retryCount)}});
    }
    void onRetryExhausted(const sf::delivery::RetryExhaustedEvent& e) override {
        event("onRetryExhausted", {{"namespace", Value(e.ns)}, {"clientId", Value(e.clientId)}, {"topic", Value(e.topic)},
                                   {"messageId", Value(e.messageId)}, {"retryCount", Value(e.retryCount)}});
    }
};

Obj context(const sf::ClientMessage& m) {
    Value parts = Value::array();
    for (auto& b : m.binary) parts.push(Value(hex(b)));
    return Obj{{"clientId", Value(m.clientId)}, {"principal", m.principal.empty() ? Value() : Value(m.principal)},
               {"namespace", Value(m.ns)}, {"topic", Value(m.topic)}, {"messageId", Value(m.messageId)},
               {"receivedAtMs", Value(m.receivedAtMs)}, {"payloadJson", Value(m.payloadJson)}, {"binary", parts}};
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: embed_parity_server <config.json>\n";
        return 2;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    std::unique_ptr<sf::StreamFenceServer> server;
    try {
        server = sf::StreamFenceServerBuilder::fromJson(argv[1]).build();
        server->start();
    } catch (const std::exception& e) {
        std::cerr << "cannot start: " << e.what() << "\n";
        return 1;
    }
    sf::StreamFenceServer* srv = server.get();
    // After start: from here on the listener gets every event.
    server->addListener(std::make_shared<JsonListener>());
    server->onMessage("/strict", "orders", [](const sf::ClientMessage& m) -> sf::HandlerResult {
        event("message", context(m));
        if (m.payloadJson.find("\"throw\"") != std::string::npos) throw std::runtime_error("handler threw on purpose");
        if (m.payloadJson.find("\"fail\"") != std::string::npos) return sf::HandlerResult::failure("order refused by handler");
        if (m.payloadJson.find("\"false\"") != std::string::npos) return false;
        return true;
    });
    server->onMessage("/lax", "orders", [srv](const sf::ClientMessage& m) {
        event("message", context(m));
        if (m.payloadJson.find("\"throw\"") != std::string::npos) throw std::runtime_error("ignored under ACK_ON_RECEIPT");
        if (m.binary.empty()) return;
        // Echo: the first part alone to every subscriber, everything back to the sender.
        srv->publish("/lax", "echo", sf::Bytes(m.binary[0].begin(), m.binary[0].end()));
        std::vector<sf::Bytes> parts;
        for (auto& b : m.binary) parts.emplace_back(b.begin(), b.end());
        srv->publishTo("/lax", m.clientId, "echo", "{\"back\":" + m.payloadJson + "}", parts);
    });
    say("port=" + std::to_string(server->port()));
    int sig = 0;
    sigwait(&sigs, &sig);
    server->stop();
    say("stopped");
    return 0;
}
