// Test doubles shared by the delivery tests: a sio::Socket that records what would go on
// the wire and whose backpressure (bufferedBytes) the test sets, and a polling wait.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/json.hpp"
#include "net/event_loop.hpp"
#include "protocol/sio_api.hpp"

namespace sf::testing {

using json::Value;

class FakeSocket : public sio::Socket {
public:
    FakeSocket(net::EventLoop& loop, std::string id, std::string nsp, std::string remote = "127.0.0.1:40000")
        : loop_(loop), id_(std::move(id)), nsp_(std::move(nsp)), remote_(std::move(remote)) {}
    const std::string& id() const override { return id_; }
    const std::string& nsp() const override { return nsp_; }
    const std::string& sessionId() const override { return id_; }
    const std::string& remoteAddress() const override { return remote_; }
    bool isWebsocket() const override { return websocket; }
    bool connected() const override { return !disconnected; }
    const Value& auth() const override { return authPayload; }
    std::string header(std::string_view n) const override {
        auto it = headers.find(std::string(n));
        return it == headers.end() ? "" : it->second;
    }
    std::string query(std::string_view n) const override {
        auto it = queries.find(std::string(n));
        return it == queries.end() ? "" : it->second;
    }
    void emit(const std::string& event, sio::Args args) override {
        std::lock_guard<std::mutex> lk(mu);
        std::string s = event + ":";
        for (auto& a : args) s += a.dump();
        events.push_back(s);
    }
    void emitWithAck(const std::string&, sio::Args, uint64_t, std::function<void(bool, sio::Args)>) override {}
    void sendFrame(const sio::FramePtr& f) override {
        std::lock_guard<std::mutex> lk(mu);
        frames.push_back(f->eioPacket);
        frameTimes.push_back(net::monotonicMs());
    }
    size_t bufferedBytes() const override { return buffered.load(); }
    // The test says when the client stops reading: buffered at or above 64 KiB is "full".
    bool backpressured() const override { return buffered.load() >= 64 * 1024; }
    void disconnect() override {
        disconnected = true;
        if (handler) handler->onDisconnect(self.lock(), "server namespace disconnect");
    }
    net::EventLoop& loop() override { return loop_; }

    std::vector<std::string> framesCopy() {
        std::lock_guard<std::mutex> lk(mu);
        return frames;
    }
    std::vector<std::string> eventsCopy() {
        std::lock_guard<std::mutex> lk(mu);
        return events;
    }
    size_t countFrames(const std::string& needle) {
        std::lock_guard<std::mutex> lk(mu);
        size_t n = 0;
        for (auto& f : frames)
            if (f.find(needle) != std::string::npos) ++n;
        return n;
    }
    bool hasEvent(const std::string& e) {
        std::lock_guard<std::mutex> lk(mu);
        for (auto& x : events)
            if (x == e) return true;
        return false;
    }

    net::EventLoop& loop_;
    std::string id_, nsp_, remote_;
    bool websocket = true;
    std::atomic<bool> disconnected{false};
    Value authPayload = Value::object();
    std::map<std::string, std::string> headers, queries;
    std::atomic<size_t> buffered{0};
    std::mutex mu;
    std::vector<std::string> frames, events;
    std::vector<uint64_t> frameTimes;
    sio::NamespaceHandler* handler = nullptr;
    std::weak_ptr<FakeSocket> self;
};
using FakePtr = std::shared_ptr<FakeSocket>;

inline bool waitFor(const std::function<bool()>& pred, int timeoutMs = 2000) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return pred();
}

}  // namespace sf::testing
