// The server's Engine.IO session: the state machine over its transports (polling, then
// perhaps a websocket after a probe), heartbeat, close, and the drain guarantee of
// EngineSessionHandler::onDrain. Lives on one loop (docs/threads-and-ownership.md); the
// connections call it there, and the atomics are what other loops may read.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "net/event_loop.hpp"
#include "protocol/engine_io_codec.hpp"
#include "protocol/engine_io_polling_transport.hpp"
#include "protocol/engine_io_session.hpp"
#include "protocol/engine_io_transport.hpp"
#include "protocol/engine_io_websocket_transport.hpp"

namespace sf::http {
struct Request;
}

namespace sf::eio {

struct EngineContext;
class EngineConnection;

class EngineServerSession final : public EngineSession, public TransportOwner {
public:
    EngineServerSession(std::shared_ptr<EngineContext> ctx, net::EventLoop& loop, std::string id, const http::Request& hs,
                  std::string remote, bool websocket);

    // EngineSession
    const std::string& id() const override { return id_; }
    net::EventLoop& loop() override { return loop_; }
    bool isWebsocket() const override { return ws_; }
    bool isOpen() const override { return st_ == St::Open; }
    const std::string& remoteAddress() const override { return remote_; }
    const std::string* header(std::string_view lowerName) const override;
    const std::string* queryParam(std::string_view name) const override;
    void setHandler(std::shared_ptr<EngineSessionHandler> h) override { handler_ = std::move(h); }
    const Options& options() const override;
    void sendText(std::string_view data) override { sendPacket('4', data, false); }
    void sendBinary(std::string_view data) override { sendPacket('4', data, true); }
    void sendPrepared(const std::string& eioPacket, const net::Buffer& wsFrame) override;
    size_t bufferedBytes() const override;
    void close(const std::string& reason) override;
    uint64_t messagesSent() const override { return sent_; }
    uint64_t messagesConfirmed() const override { return confirmed_; }

    // TransportOwner
    void onTransportDrain() override;

    // Engine internals, session loop only.
    void start();  // right after the handshake answer
    // A request handled in the same turn as an expired ping timeout must not see the
    // session alive (timers and posted work may run in either order within a turn).
    void checkPingDeadline();
    void onPollGet(PollWaiter w);
    void onPollPost(PollWaiter w, std::string body);
    void attachWs(const std::shared_ptr<EngineConnection>& c, bool probe);
    void onWsPackets(EngineConnection* from, std::vector<RawPacket>& pk);
    void onWsClosed(EngineConnection* from, const std::string& reason);
    void onWsDrain(EngineConnection* from);
    void onPollConnClosed(uint64_t seq, const EngineConnection* from);

    // Read from any loop by the connections.
    std::atomic<bool> lingering{false};
    std::atomic<bool> upgradeClaimed{false};  // a websocket took this sid (probe or done)
    std::atomic<bool> upgraded{false};        // transport is websocket for good
    std::atomic<bool> finished{false};
    // Long-poll requests (GET or POST) of this session in flight on any connection
    // (limits.maxPendingPollsPerSession); kept by EngineConnection.
    std::atomic<int64_t> pendingPolls{0};

private:
    enum class St { Open, Closing, Closed };
    enum class Src { Poll, Ws, Probe };

    std::shared_ptr<EngineServerSession> self() { return std::static_pointer_cast<EngineServerSession>(shared_from_this()); }
    PollingTransport* polling() const { return ws_ ? nullptr : static_cast<PollingTransport*>(transport_.get()); }
    WebSocketTransport* websocket() const { return ws_ ? static_cast<WebSocketTransport*>(transport_.get()) : nullptr; }
    void sendPacket(char type, std::string_view data, bool binary);
    void closeWs(const std::shared_ptr<EngineConnection>& c, uint16_t code, const std::string& why);
    void handlePacket(RawPacket& p, Src src);
    void completeUpgrade();
    void schedulePing();
    void armHeldGetTimer(uint64_t ms);
    void finish(const std::string& reason, bool clientClose);
    void notifyClose(const std::string& reason);

    std::shared_ptr<EngineContext> ctx_;
    net::EventLoop& loop_;
    std::string id_;
    // What the layer above may read of the handshake: not the whole http::Request (its
    // target, path and body strings are dead weight on every idle session).
    std::vector<std::pair<std::string, std::string>> hsHeaders_, hsQuery_;
    std::string remote_;
    std::shared_ptr<EngineSessionHandler> handler_;
    St st_ = St::Open;
    bool notified_ = false;
    bool ws_;
    bool upgrading_ = false;
    // A sender saw bufferedBytes() >= highWaterBytes and is owed an onDrain.
    mutable bool drainWanted_ = false;
    std::shared_ptr<SessionTransport> transport_;  // null until a websocket session's connection attaches
    std::shared_ptr<WebSocketTransport> probe_;    // the websocket probing an upgrade
    // timers
    net::TimerId pingTimer_ = 0, pingTimeoutTimer_ = 0, upgradeTimer_ = 0, closeTimer_ = 0, heldTimer_ = 0;
    uint64_t pingDeadline_ = 0;
    // Delivery confirmation (EngineSession::messagesConfirmed): MESSAGE packets handed to the
    // transport, the count when the outstanding ping was queued, and the count a pong proved.
    uint64_t sent_ = 0, pingMark_ = 0, confirmed_ = 0;
    std::unique_ptr<PollWaiter> heldGet_;  // a poll that arrived while an upgrade was under way
};

}  // namespace sf::eio
