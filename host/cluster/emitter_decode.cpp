#include "cluster/emitter_decode.hpp"

#include <cmath>
#include <cstring>

#include <msgpack.hpp>

#include "common/json.hpp"

namespace sf::cluster {
namespace {

struct Bad {
    std::string why;
};

std::string str(const msgpack::object& o, const char* what) {
    if (o.type != msgpack::type::STR) throw Bad{std::string(what) + " must be a string"};
    return std::string(o.via.str.ptr, o.via.str.size);
}

// A msgpack value as JSON, the way Socket.IO's own parser would hand it to a client.
json::Value toJson(const msgpack::object& o) {
    switch (o.type) {
        case msgpack::type::NIL: return json::Value();
        case msgpack::type::BOOLEAN: return json::Value(o.via.boolean);
        case msgpack::type::POSITIVE_INTEGER: return json::Value(static_cast<uint64_t>(o.via.u64));
        case msgpack::type::NEGATIVE_INTEGER: return json::Value(static_cast<int64_t>(o.via.i64));
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64:
            // JSON has no NaN or Infinity; JSON.stringify writes null for them.
            if (!std::isfinite(o.via.f64)) return json::Value();
            return json::Value(o.via.f64);
        case msgpack::type::STR: return json::Value(std::string(o.via.str.ptr, o.via.str.size));
        case msgpack::type::ARRAY: {
            json::Value::Array a;
            a.reserve(o.via.array.size);
            for (uint32_t i = 0; i < o.via.array.size; ++i) a.push_back(toJson(o.via.array.ptr[i]));
            return json::Value(std::move(a));
        }
        case msgpack::type::MAP: {
            json::Value v = json::Value::object();
            for (uint32_t i = 0; i < o.via.map.size; ++i) {
                const msgpack::object_kv& kv = o.via.map.ptr[i];
                v.set(str(kv.key, "an object key"), toJson(kv.val));  // a repeated key: the last wins, as in JS
            }
            return v;
        }
        case msgpack::type::BIN: throw Bad{"binary arguments are not supported"};
        case msgpack::type::EXT: throw Bad{"msgpack extension types (dates) are not supported"};
    }
    throw Bad{"unknown msgpack type"};
}

const msgpack::object* field(const msgpack::object& map, const char* key) {
    for (uint32_t i = 0; i < map.via.map.size; ++i) {
        const msgpack::object_kv& kv = map.via.map.ptr[i];
        if (kv.key.type == msgpack::type::STR && kv.key.via.str.size == std::strlen(key) &&
            std::memcmp(kv.key.via.str.ptr, key, kv.key.via.str.size) == 0)
            return &kv.val;
    }
    return nullptr;
}

void roomList(const msgpack::object* o, const char* what, std::vector<std::string>& out) {
    if (!o || o->type == msgpack::type::NIL) return;
    if (o->type != msgpack::type::ARRAY) throw Bad{std::string(what) + " must be an array"};
    for (uint32_t i = 0; i < o->via.array.size; ++i) {
        const msgpack::object& r = o->via.array.ptr[i];
        if (r.type == msgpack::type::STR) out.emplace_back(r.via.str.ptr, r.via.str.size);
        else if (r.type == msgpack::type::POSITIVE_INTEGER) out.push_back(std::to_string(r.via.u64));
        else if (r.type == msgpack::type::NEGATIVE_INTEGER) out.push_back(std::to_string(r.via.i64));
        else throw Bad{std::string(what) + " must hold strings or integers"};
    }
}

}  // namespace

bool decodeEmitterMessage(const char* data, size_t size, EmitterMessage& out, std::string& error,
                          const EmitterLimits& limits) {
    if (size > limits.maxBytes) {
        error = "message of " + std::to_string(size) + " bytes is larger than " + std::to_string(limits.maxBytes);
        return false;
    }
    try {
        const msgpack::unpack_limit lim(limits.maxItems, limits.maxItems, limits.maxBytes, limits.maxBytes, limits.maxBytes,
                                        limits.maxDepth);
        size_t off = 0;
        msgpack::object_handle h = msgpack::unpack(data, size, off, nullptr, nullptr, lim);
        if (off != size) throw Bad{"trailing bytes after the message"};
        const msgpack::object& root = h.get();
        if (root.type != msgpack::type::ARRAY || root.via.array.size < 2)
            throw Bad{"expected an array [uid, packet, opts]"};
        EmitterMessage m;
        m.uid = str(root.via.array.ptr[0], "uid");
        const msgpack::object& packet = root.via.array.ptr[1];
        if (packet.type != msgpack::type::MAP) throw Bad{"packet must be a map"};
        const msgpack::object* type = field(packet, "type");
        if (!type || type->type != msgpack::type::POSITIVE_INTEGER || type->via.u64 != 2)
            throw Bad{"packet.type must be 2 (EVENT)"};
        if (const msgpack::object* nsp = field(packet, "nsp"); nsp && nsp->type != msgpack::type::NIL) m.nsp = str(*nsp, "packet.nsp");
        const msgpack::object* d = field(packet, "data");
        if (!d || d->type != msgpack::type::ARRAY || d->via.array.size == 0)
            throw Bad{"packet.data must be a non-empty array [event, ...args]"};
        m.event = str(d->via.array.ptr[0], "the event name");
        const uint32_t nargs = d->via.array.size - 1;
        if (nargs == 0) {
            m.payloadJson = "null";
        } else if (nargs == 1) {
            m.payloadJson = toJson(d->via.array.ptr[1]).dump();
        } else {
            json::Value::Array a;
            for (uint32_t i = 1; i <= nargs; ++i) a.push_back(toJson(d->via.array.ptr[i]));
            m.payloadJson = json::Value(std::move(a)).dump();
        }
        if (root.via.array.size >= 3) {
            const msgpack::object& opts = root.via.array.ptr[2];
            if (opts.type == msgpack::type::MAP) {
                roomList(field(opts, "rooms"), "opts.rooms", m.rooms);
                roomList(field(opts, "except"), "opts.except", m.except);
            } else if (opts.type != msgpack::type::NIL) {
                throw Bad{"opts must be a map"};
            }
        }
        out = std::move(m);
        return true;
    } catch (const Bad& b) {
        error = b.why;
    } catch (const std::exception& e) {
        error = std::string("not msgpack: ") + e.what();
    }
    return false;
}

}  // namespace sf::cluster
