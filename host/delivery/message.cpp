#include "delivery/message.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "net/event_loop.hpp"
#include "protocol/socket_io_codec.hpp"

namespace sf::delivery {

MessagePtr makeMessage(std::string_view ns, std::string_view topic, std::string payloadJson, std::string key,
                       std::string messageId, bool ackRequired, std::vector<std::string> attachments, bool withOffset) {
    auto m = std::make_shared<OutMessage>();
    m->payload = std::move(payloadJson);
    m->bytes = m->payload.size();
    for (const std::string& a : attachments) m->bytes += a.size();
    m->attachments = std::move(attachments);
    m->key = std::move(key);
    m->messageId = std::move(messageId);
    std::string offset;
    if (withOffset) json::quoteTo(offset, m->messageId);
    m->createdMs = net::monotonicMs();
    if (ackRequired) {
        std::string meta = "{\"namespace\":";
        json::quoteTo(meta, ns);
        meta += ",\"topic\":";
        json::quoteTo(meta, topic);
        meta += ",\"messageId\":";
        json::quoteTo(meta, m->messageId);
        meta += ",\"ackRequired\":true}";
        if (withOffset) m->frame = sio::encodeBinaryEvent(ns, topic, {m->payload, meta, offset}, m->attachments);
        else m->frame = sio::encodeBinaryEvent(ns, topic, {m->payload, meta}, m->attachments);
    } else {
        if (withOffset) m->frame = sio::encodeBinaryEvent(ns, topic, {m->payload, offset}, m->attachments);
        else m->frame = sio::encodeBinaryEvent(ns, topic, {m->payload}, m->attachments);
    }
    return m;
}

std::string wirePayload(const json::Value& payload, std::vector<std::string>& attachments) {
    if (!sio::hasBinary(payload)) return payload.dump();
    return sio::deconstructBinary(payload, attachments).dump();
}

namespace {

// Canonical text of a JSON value, so keys compare by type and value: strings keep their
// quotes (`"1"` is not `1`), numbers are written from their value (`1.0` is `1`), object
// members are sorted by name. Binary (never valid JSON text) is 0x01, its length, ':' and
// its bytes, so it cannot equal any JSON value.
void canonicalTo(std::string& out, const json::Value& v) {
    using T = json::Value::Type;
    switch (v.type()) {
        case T::Null: out += "null"; break;
        case T::Bool: out += v.asBool() ? "true" : "false"; break;
        case T::String: json::quoteTo(out, v.asString()); break;
        case T::Number: {
            double d = v.asNumber();
            char buf[40];
            if (d == std::floor(d) && std::fabs(d) < 9007199254740992.0) {
                std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(d));
            } else {
                // The shortest form that reads back as the same double.
                for (int prec = 15; prec <= 17; ++prec) {
                    std::snprintf(buf, sizeof buf, "%.*g", prec, d);
                    if (std::strtod(buf, nullptr) == d) break;
                }
            }
            out += buf;
            break;
        }
        case T::Array: {
            out += '[';
            bool first = true;
            for (const auto& e : v.asArray()) {
                if (!first) out += ',';
                first = false;
                canonicalTo(out, e);
            }
            out += ']';
            break;
        }
        case T::Object: {
            std::vector<const std::pair<std::string, json::Value>*> members;
            for (const auto& m : v.asObject()) members.push_back(&m);
            std::stable_sort(members.begin(), members.end(), [](auto* a, auto* b) { return a->first < b->first; });
            out += '{';
            bool first = true;
            for (auto* m : members) {
                if (!first) out += ',';
                first = false;
                json::quoteTo(out, m->first);
                out += ':';
                canonicalTo(out, m->second);
            }
            out += '}';
            break;
        }
        case T::Binary:
            out += '\x01';
            out += std::to_string(v.asBinary().size());
            out += ':';
            out += v.asBinary();
            break;
    }
}

}  // namespace

std::string coalesceKeyOf(const json::Value& payload, const std::string& coalesceKey, std::string_view topic) {
    if (coalesceKey.empty()) return std::string(topic);
    const json::Value* v = payload.find(coalesceKey);  // nullptr too when payload is not an object
    if (!v) return std::string();                         // no key: its own entry
    std::string key;
    canonicalTo(key, *v);
    return key;
}

}  // namespace sf::delivery
