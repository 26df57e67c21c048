#include "delivery/message.hpp"

namespace sf::delivery {

MessagePtr makeMessage(std::string_view ns, std::string_view topic, std::string payloadJson, std::string key,
                       std::string messageId, bool ackRequired) {
    auto m = std::make_shared<OutMessage>();
    m->payload = std::move(payloadJson);
    m->bytes = m->payload.size();
    m->key = std::move(key);
    m->messageId = std::move(messageId);
    if (ackRequired) {
        std::string meta = "{\"namespace\":";
        json::quoteTo(meta, ns);
        meta += ",\"topic\":";
        json::quoteTo(meta, topic);
        meta += ",\"messageId\":";
        json::quoteTo(meta, m->messageId);
        meta += ",\"ackRequired\":true}";
        m->frame = sio::encodeEvent(ns, topic, {m->payload, meta});
    } else {
        m->frame = sio::encodeEvent(ns, topic, {m->payload});
    }
    return m;
}

std::string coalesceKeyOf(const json::Value& payload, const std::string& coalesceKey, std::string_view topic) {
    if (!coalesceKey.empty()) {
        if (const json::Value* v = payload.find(coalesceKey)) {
            if (v->isString() || v->isNumber()) return v->asString();  // Number: its source text
        }
    }
    return std::string(topic);
}

}  // namespace sf::delivery
