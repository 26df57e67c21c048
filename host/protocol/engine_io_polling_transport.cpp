#include "protocol/engine_io_polling_transport.hpp"

#include "net/event_loop.hpp"
#include "protocol/engine_io_codec.hpp"
#include "protocol/engine_io_connection.hpp"
#include "protocol/http_request.hpp"

namespace sf::eio {

void respondToPoll(const PollWaiter& w, int status, std::string_view ctype, std::string_view body) {
    std::string bytes = http::response(status, ctype, body, w.keepAlive, w.cors);
    auto c = w.conn;
    uint64_t seq = w.seq;
    bool ka = w.keepAlive;
    if (w.loop->inLoopThread()) {
        if (auto p = c.lock()) p->finishAsync(seq, std::move(bytes), ka);
    } else {
        w.loop->post([c, seq, ka, bytes = std::move(bytes)]() mutable {
            if (auto p = c.lock()) p->finishAsync(seq, std::move(bytes), ka);
        });
    }
}

void PollingTransport::append(char type, std::string_view data, bool binary) {
    appendPayloadPacket(pending_, type, data, binary);
}

void PollingTransport::sendPacket(char type, std::string_view data, bool binary) {
    append(type, data, binary);
    scheduleFlush();
}

void PollingTransport::sendPrepared(const std::string& eioPacket, const net::Buffer&) {
    if (eioPacket.empty()) return;
    append(eioPacket[0], std::string_view(eioPacket).substr(1), false);
    scheduleFlush();
}

std::string PollingTransport::takePending() {
    std::string out;
    out.swap(pending_);
    return out;
}

void PollingTransport::clearPending() {
    pending_.clear();
    pending_.shrink_to_fit();
}

void PollingTransport::setGet(PollWaiter w) {
    get_ = std::make_unique<PollWaiter>(std::move(w));
    if (!pending_.empty()) scheduleFlush();
}

bool PollingTransport::endGet(std::string_view body) {
    if (!get_) return false;
    PollWaiter w = std::move(*get_);
    get_.reset();
    respondToPoll(w, 200, http::kTextPlain, body);
    return true;
}

void PollingTransport::scheduleFlush() {
    if (!get_ || flushScheduled_) return;
    flushScheduled_ = true;
    // At the end of the turn, so everything emitted in this turn leaves in one response.
    auto self = shared_from_this();
    loop_.deferToEndOfTurn([self] {
        self->flushScheduled_ = false;
        self->flush();
    });
}

void PollingTransport::flush() {
    if (!get_ || pending_.empty()) return;
    endGet(takePending());
    if (auto o = owner_.lock()) o->onTransportDrain();
}

}  // namespace sf::eio
