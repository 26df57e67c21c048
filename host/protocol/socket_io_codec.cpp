#include "protocol/socket_io_codec.hpp"

#include "protocol/engine_io_codec.hpp"
#include "protocol/sio_api.hpp"
#include "protocol/websocket.hpp"

namespace sf::sio {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool payloadValid(const Packet& p) {
    static const char* reserved[] = {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"};
    switch (p.type) {
        case PacketType::Connect: return !p.hasData || p.data.isObject();
        case PacketType::Disconnect: return !p.hasData;
        case PacketType::ConnectError: return p.hasData && (p.data.isString() || p.data.isObject());
        case PacketType::Event:
        case PacketType::BinaryEvent: {
            if (!p.hasData || !p.data.isArray() || p.data.size() == 0) return false;
            const auto& first = p.data.asArray()[0];
            if (first.isNumber()) return true;
            if (!first.isString()) return false;
            for (auto* r : reserved)
                if (first.asString() == r) return false;
            return true;
        }
        case PacketType::Ack:
        case PacketType::BinaryAck: return p.hasData && p.data.isArray();
    }
    return false;
}

bool reconstructValue(json::Value& v, std::vector<std::string>& bufs, std::vector<bool>& used) {
    if (v.isObject()) {
        const json::Value* ph = v.find("_placeholder");
        if (ph && ph->isBool() && ph->asBool()) {
            const json::Value* num = v.find("num");
            if (!num || !num->isNumber() || !num->isInteger() || num->asNumber() < 0 ||
                num->asNumber() >= static_cast<double>(bufs.size()))
                return false;
            auto i = static_cast<size_t>(num->asInt());
            used[i] = true;
            v = json::Value::binary(bufs[i]);
            return true;
        }
        for (auto& kv : v.asObject())
            if (!reconstructValue(kv.second, bufs, used)) return false;
    } else if (v.isArray()) {
        for (auto& e : v.asArray())
            if (!reconstructValue(e, bufs, used)) return false;
    }
    return true;
}

// Copy of v with every Binary replaced by a placeholder; buffers collected in order.
json::Value deconstruct(const json::Value& v, std::vector<std::string>& bufs) {
    switch (v.type()) {
        case json::Value::Type::Binary: {
            json::Value ph = json::Value::object();
            ph.set("_placeholder", true);
            ph.set("num", static_cast<int64_t>(bufs.size()));
            bufs.push_back(v.asBinary());
            return ph;
        }
        case json::Value::Type::Array: {
            json::Value::Array a;
            a.reserve(v.size());
            for (auto& e : v.asArray()) a.push_back(deconstruct(e, bufs));
            return json::Value(std::move(a));
        }
        case json::Value::Type::Object: {
            json::Value::Object o;
            o.reserve(v.size());
            for (auto& kv : v.asObject()) o.emplace_back(kv.first, deconstruct(kv.second, bufs));
            return json::Value(std::move(o));
        }
        default: return v;
    }
}

}  // namespace

json::Value deconstructBinary(const json::Value& v, std::vector<std::string>& buffers) { return deconstruct(v, buffers); }

bool hasBinary(const json::Value& v) {
    if (v.isBinary()) return true;
    if (v.isArray()) {
        for (auto& e : v.asArray())
            if (hasBinary(e)) return true;
    } else if (v.isObject()) {
        for (auto& kv : v.asObject())
            if (hasBinary(kv.second)) return true;
    }
    return false;
}

bool decodePacket(std::string_view s, Packet& out, std::string& error, const CodecLimits& lim) {
    out = Packet{};
    if (s.empty() || s[0] < '0' || s[0] > '6') {
        error = "unknown packet type";
        return false;
    }
    out.type = static_cast<PacketType>(s[0] - '0');
    size_t i = 1;
    if (out.type == PacketType::BinaryEvent || out.type == PacketType::BinaryAck) {
        size_t start = i;
        while (i < s.size() && isDigit(s[i]) && i - start < 6) ++i;
        if (i == start || i >= s.size() || s[i] != '-') {
            error = "illegal attachments";
            return false;
        }
        out.attachments = std::stoul(std::string(s.substr(start, i - start)));
        if (out.attachments > lim.maxAttachments) {
            error = "too many attachments";
            return false;
        }
        ++i;
    }
    if (i < s.size() && s[i] == '/') {
        size_t c = s.find(',', i);
        if (c == std::string_view::npos) {
            out.nsp.assign(s.substr(i));
            i = s.size();
        } else {
            out.nsp.assign(s.substr(i, c - i));
            i = c + 1;
        }
    }
    if (i < s.size() && isDigit(s[i])) {
        size_t start = i;
        while (i < s.size() && isDigit(s[i])) ++i;
        if (i - start > 15) {  // beyond 2^53: Number() would lose it in a JS client anyway
            error = "ack id too long";
            return false;
        }
        out.ackId = std::stoull(std::string(s.substr(start, i - start)));
    }
    if (i < s.size()) {
        json::ParseLimits pl;
        pl.maxDepth = lim.maxDepth;
        pl.maxLength = s.size();
        if (!json::tryParse(s.substr(i), out.data, error, pl)) {
            error = "invalid payload: " + error;
            return false;
        }
        out.hasData = true;
    }
    if (!payloadValid(out)) {
        error = "invalid payload";
        return false;
    }
    return true;
}

bool reconstruct(Packet& p, std::vector<std::string>& buffers, std::string& error) {
    std::vector<bool> used(buffers.size(), false);
    if (!reconstructValue(p.data, buffers, used)) {
        error = "illegal attachments";
        return false;
    }
    return true;
}

void appendHeader(std::string& out, PacketType t, std::string_view nsp, std::optional<uint64_t> ackId, size_t attachments) {
    out.push_back(static_cast<char>('0' + static_cast<int>(t)));
    if (t == PacketType::BinaryEvent || t == PacketType::BinaryAck) {
        out += std::to_string(attachments);
        out.push_back('-');
    }
    if (!nsp.empty() && nsp != "/") {
        out.append(nsp);
        out.push_back(',');
    }
    if (ackId) out += std::to_string(*ackId);
}

std::string encodePacket(const Packet& p, std::vector<std::string>& buffers) {
    std::string out;
    PacketType t = p.type;
    if (p.hasData && (t == PacketType::Event || t == PacketType::Ack || t == PacketType::BinaryEvent ||
                      t == PacketType::BinaryAck) && hasBinary(p.data)) {
        size_t before = buffers.size();
        json::Value d = deconstruct(p.data, buffers);
        t = (t == PacketType::Event || t == PacketType::BinaryEvent) ? PacketType::BinaryEvent : PacketType::BinaryAck;
        appendHeader(out, t, p.nsp, p.ackId, buffers.size() - before);
        d.dumpTo(out);
        return out;
    }
    if (t == PacketType::BinaryEvent) t = PacketType::Event;
    if (t == PacketType::BinaryAck) t = PacketType::Ack;
    appendHeader(out, t, p.nsp, p.ackId);
    if (p.hasData) p.data.dumpTo(out);
    return out;
}

FramePtr encodeEvent(std::string_view nsp, std::string_view event, const std::vector<std::string_view>& argsJson) {
    auto f = std::make_shared<Frame>();
    std::string& s = f->eioPacket;
    size_t n = 16 + nsp.size() + event.size();
    for (auto a : argsJson) n += a.size() + 1;
    s.reserve(n);
    s.push_back('4');  // engine.io MESSAGE
    appendHeader(s, PacketType::Event, nsp, std::nullopt);
    s.push_back('[');
    json::quoteTo(s, event);
    for (auto a : argsJson) {
        s.push_back(',');
        s.append(a);
    }
    s.push_back(']');
    f->wsFrame = ws::frameBuffer(ws::Text, s);
    f->payloadBytes = s.size();
    return f;
}

FramePtr encodeBinaryEvent(std::string_view nsp, std::string_view event, const std::vector<std::string_view>& argsJson,
                           const std::vector<std::string>& attachments) {
    if (attachments.empty()) return encodeEvent(nsp, event, argsJson);
    auto f = std::make_shared<Frame>();
    std::string& s = f->eioPacket;
    s.push_back('4');  // engine.io MESSAGE
    appendHeader(s, PacketType::BinaryEvent, nsp, std::nullopt, attachments.size());
    s.push_back('[');
    json::quoteTo(s, event);
    for (auto a : argsJson) {
        s.push_back(',');
        s.append(a);
    }
    s.push_back(']');
    f->wsFrame = ws::frameBuffer(ws::Text, s);
    f->payloadBytes = s.size();
    for (const std::string& bytes : attachments) {
        // Polling carries a binary packet as "b<base64>"; the transport writes eioPacket as
        // its type byte plus the rest, so 'b' stands where the type would.
        auto a = std::make_shared<Frame>();
        a->eioPacket = "b" + eio::base64Encode(bytes);
        a->wsFrame = ws::frameBuffer(ws::Binary, bytes);
        a->payloadBytes = bytes.size();
        f->payloadBytes += a->payloadBytes;
        f->attachments.push_back(std::move(a));
    }
    return f;
}

}  // namespace sf::sio
