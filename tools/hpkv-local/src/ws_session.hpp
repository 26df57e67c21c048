// One WebSocket connection. The Poco handler thread reads frames and answers
// them; a second thread writes the outgoing queue, so notifications can be
// queued by whichever thread performed a write without blocking on a slow
// socket. A connection whose queue grows past a cap is dropped.
#pragma once
#include "protocol.hpp"
#include "subscriptions.hpp"

#include <Poco/Net/WebSocket.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hpkv {

struct App;

class WsSession : public Subscriber {
public:
    WsSession(App& app, Poco::Net::WebSocket ws, SessionContext ctx, std::vector<std::string> patterns, std::string kind);
    ~WsSession() override;

    // Runs until the peer closes, the socket fails or the server stops.
    void run();

    void deliver(const std::string& frame) override { enqueue(frame, Poco::Net::WebSocket::FRAME_TEXT); }
    const std::vector<std::string>& patterns() const override { return patterns_; }

private:
    struct Outgoing {
        std::string payload;
        int flags;
    };
    void enqueue(std::string payload, int flags);
    void senderLoop();
    void readLoop();
    void handleMessage(const std::string& text);
    void drainUnread();

    App& app_;
    Poco::Net::WebSocket ws_;
    SessionContext ctx_;
    std::vector<std::string> patterns_;
    std::string kind_;
    std::uint64_t id_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Outgoing> queue_;
    std::size_t queuedBytes_ = 0;
    bool stopSender_ = false;   // reader finished: flush and exit
    bool broken_ = false;       // socket failed or queue overflowed: drop everything
    std::thread sender_;
};

}  // namespace hpkv
