#include "protocol/engine_io_outbox.hpp"

#include <utility>
#include <vector>

#include "net/event_loop.hpp"
#include "protocol/engine_io_connection.hpp"
#include "protocol/engine_io_websocket_transport.hpp"

namespace sf::eio::outbox {

namespace {

struct Item {
    enum class Kind : uint8_t { Frame, Close, DrainWatch };
    Kind kind;
    std::shared_ptr<EngineConnection> conn;
    net::Buffer buf;                             // Frame
    std::shared_ptr<WebSocketTransport> sender;  // Frame: for its in-transit accounting
    uint16_t closeCode = 0;                      // Close
    std::string why;                             // Close
};

struct Outbox {
    std::vector<std::pair<net::EventLoop*, std::vector<Item>>> byTarget;  // a few loops: linear
    bool scheduled = false;
};
thread_local Outbox tlsOutbox;

void flush() {
    Outbox& ob = tlsOutbox;
    ob.scheduled = false;
    for (auto& [target, items] : ob.byTarget) {
        if (items.empty()) continue;
        auto batch = std::make_shared<std::vector<Item>>(std::move(items));
        items.clear();
        target->post([batch] {
            for (auto& it : *batch) {
                switch (it.kind) {
                    case Item::Kind::Frame:
                        it.conn->wsSend(it.buf);
                        if (it.sender) it.sender->crossDone(it.buf->size());
                        break;
                    case Item::Kind::Close: it.conn->wsClose(it.closeCode, it.why); break;
                    case Item::Kind::DrainWatch: it.conn->watchDrain(); break;
                }
            }
        });
    }
}

void queue(net::EventLoop& from, Item item) {
    Outbox& ob = tlsOutbox;
    net::EventLoop* target = &item.conn->loop();
    std::vector<Item>* items = nullptr;
    for (auto& e : ob.byTarget)
        if (e.first == target) items = &e.second;
    if (!items) {
        ob.byTarget.emplace_back(target, std::vector<Item>{});
        items = &ob.byTarget.back().second;
    }
    items->push_back(std::move(item));
    if (!ob.scheduled) {
        ob.scheduled = true;
        from.deferToEndOfTurn(flush);
    }
}

}  // namespace

void queueFrame(net::EventLoop& from, const std::shared_ptr<WebSocketTransport>& t,
                const std::shared_ptr<EngineConnection>& conn, net::Buffer frame) {
    queue(from, Item{Item::Kind::Frame, conn, std::move(frame), t, 0, {}});
}

void queueClose(net::EventLoop& from, const std::shared_ptr<EngineConnection>& conn, uint16_t code, std::string why) {
    queue(from, Item{Item::Kind::Close, conn, nullptr, nullptr, code, std::move(why)});
}

void queueDrainWatch(net::EventLoop& from, const std::shared_ptr<EngineConnection>& conn) {
    queue(from, Item{Item::Kind::DrainWatch, conn, nullptr, nullptr, 0, {}});
}

}  // namespace sf::eio::outbox
