#include "protocol.hpp"

#include "common/log.hpp"
#include "json_util.hpp"
#include "ratelimit.hpp"
#include "store.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>

#include <charconv>
#include <cmath>
#include <sstream>

namespace hpkv {
namespace {

using Poco::Dynamic::Var;
using Poco::JSON::Object;

// Request envelopes are flat; anything deeper is not a valid request and is
// refused before Poco builds (recursively destroyed) object trees from it.
constexpr std::size_t kMaxRequestDepth = 8;

struct Reply {
    std::string messageId;  // raw JSON, empty = absent

    std::string error(int code, const std::string& text, const std::string* key = nullptr) const {
        std::string out = "{\"code\":" + std::to_string(code) + ",\"error\":" + jsonString(text);
        if (key) out += ",\"key\":" + jsonString(*key);
        return finish(out);
    }
    std::string finish(std::string& out) const {
        if (!messageId.empty()) out += ",\"messageId\":" + messageId;
        out += '}';
        return out;
    }
};

std::string echoMessageId(const Var& v) {
    if (v.isEmpty()) return {};
    if (!v.isInteger() && !v.isNumeric() && !v.isString() && !v.isBoolean()) return {};
    if (v.isString()) {
        std::string s = v.convert<std::string>();
        return isValidUtf8(s) ? jsonString(s) : std::string();
    }
    std::ostringstream os;
    Poco::JSON::Stringifier::stringify(v, os);
    return os.str();
}

bool toInt64(const Var& v, std::int64_t& out) {
    try {
        if (v.isString()) {
            std::string s = v.convert<std::string>();
            const char* b = s.data();
            const char* e = b + s.size();
            if (b != e && *b == '+') ++b;
            auto [p, ec] = std::from_chars(b, e, out);
            return b != e && ec == std::errc() && p == e;
        }
        if (v.isInteger()) {
            out = v.convert<Poco::Int64>();  // throws RangeException for big UInt64
            return true;
        }
        if (v.isNumeric()) {
            double d = v.convert<double>();
            if (!std::isfinite(d) || d != std::floor(d) || d < -9.2233720368547758e18 || d >= 9.2233720368547758e18)
                return false;
            out = static_cast<std::int64_t>(d);
            return true;
        }
    } catch (const std::exception&) {
    }
    return false;
}

const char* statusError(Status s) {
    switch (s) {
        case Status::NotNumeric: return "Value is not a valid integer";
        case Status::Overflow: return "Atomic operation would overflow";
        case Status::TooLarge: return "Value exceeds maximum size";
        case Status::IoError: return "Storage error";
        default: return "Internal error";
    }
}
int statusCode(Status s) { return s == Status::IoError ? 500 : 400; }

}  // namespace

bool accessAllowed(const SessionContext& ctx, const std::string& key) {
    if (!ctx.access) return true;
    try {
        return std::regex_search(key, *ctx.access);
    } catch (const std::regex_error&) {
        return false;  // pathological pattern (complexity/stack): deny rather than crash
    }
}

std::string handleRequest(SessionContext& ctx, std::string_view frame) {
    Reply reply;
    Object::Ptr req;
    if (!isValidUtf8(frame) || jsonNestingDepth(frame) > kMaxRequestDepth) return reply.error(400, "Invalid JSON");
    try {
        Poco::JSON::Parser parser;
        Var v = parser.parse(std::string(frame));
        if (v.type() != typeid(Object::Ptr)) return reply.error(400, "Request must be a JSON object");
        req = v.extract<Object::Ptr>();
    } catch (const std::exception&) {
        return reply.error(400, "Invalid JSON");
    }
    reply.messageId = echoMessageId(req->get("messageId"));

    if (!ctx.limiter.allow(ctx.keyId)) return reply.error(429, "Rate limit exceeded");

    std::int64_t op = 0;
    Var opv = req->get("op");
    if (opv.isEmpty() || opv.isString() || !toInt64(opv, op) || op < kGet || op > kAtomic)
        return reply.error(400, "Invalid operation");

    Var keyv = req->get("key");
    if (keyv.isEmpty() || !keyv.isString()) return reply.error(400, "Key is required");
    const std::string key = keyv.convert<std::string>();
    if (key.empty()) return reply.error(400, "Key is required");
    if (!isValidUtf8(key)) return reply.error(400, "Key must be valid UTF-8");
    if (key.size() > ctx.limits.maxKeyBytes)
        return reply.error(400, "Key exceeds maximum length of " + std::to_string(ctx.limits.maxKeyBytes) + " bytes");
    if (!accessAllowed(ctx, key)) return reply.error(403, "Access denied: key does not match token access pattern");

    Store& store = ctx.store;
    switch (op) {
        case kGet: {
            auto value = store.get(key);
            if (!value) return reply.error(404, "Record not found", &key);
            std::string out = "{\"code\":200,\"key\":" + jsonString(key) + ",\"value\":" + jsonString(*value);
            return reply.finish(out);
        }
        case kSet:
        case kPatch: {
            Var vv = req->get("value");
            if (vv.isEmpty()) return reply.error(400, "Value is required");
            if (!vv.isString()) return reply.error(400, "Value must be a string");
            const std::string value = vv.convert<std::string>();
            if (value.empty()) return reply.error(400, "Value is required");
            if (!isValidUtf8(value)) return reply.error(400, "Value must be valid UTF-8");
            if (value.size() > ctx.limits.maxValueBytes)
                return reply.error(400, "Value exceeds maximum size of " + std::to_string(ctx.limits.maxValueBytes) + " bytes");
            Status s = op == kSet ? store.set(key, value) : store.patch(key, value);
            if (s != Status::Ok) return reply.error(statusCode(s), statusError(s));
            std::string out = std::string("{\"code\":200,\"success\":true,\"message\":") +
                              (op == kSet ? "\"Record inserted/updated successfully\"" : "\"Record patched successfully\"");
            return reply.finish(out);
        }
        case kDelete: {
            Status s = store.remove(key);
            if (s == Status::NotFound) return reply.error(404, "Record not found", &key);
            if (s != Status::Ok) return reply.error(statusCode(s), statusError(s));
            std::string out = "{\"code\":200,\"success\":true,\"message\":\"Record deleted successfully\"";
            return reply.finish(out);
        }
        case kRange: {
            std::optional<std::string> endKey;
            Var ev = req->get("endKey");
            if (!ev.isEmpty()) {
                if (!ev.isString()) return reply.error(400, "endKey must be a string");
                endKey = ev.convert<std::string>();
                if (!isValidUtf8(*endKey)) return reply.error(400, "endKey must be valid UTF-8");
                if (endKey->size() > ctx.limits.maxKeyBytes) return reply.error(400, "endKey exceeds maximum length");
                if (!accessAllowed(ctx, *endKey))
                    return reply.error(403, "Access denied: endKey does not match token access pattern");
            }
            std::size_t limit = ctx.limits.defaultRangeLimit;
            Var lv = req->get("limit");
            if (!lv.isEmpty()) {
                std::int64_t l = 0;
                if (lv.isString() || !toInt64(lv, l) || l < 1) return reply.error(400, "limit must be a positive integer");
                // Documented REST maximum; larger requests are clamped, not refused.
                limit = static_cast<std::size_t>(std::min<std::int64_t>(l, static_cast<std::int64_t>(ctx.limits.maxRangeLimit)));
            }
            auto r = store.range(key, endKey, limit, ctx.limits.maxRangeBytes,
                                 [&ctx](const std::string& k) { return accessAllowed(ctx, k); });
            std::string out = "{\"code\":200,\"records\":[";
            bool first = true;
            for (const auto& [k, v] : r.records) {
                if (!first) out += ',';
                first = false;
                out += "{\"key\":";
                appendJsonString(out, k);
                out += ",\"value\":";
                appendJsonString(out, v);
                out += '}';
            }
            out += "],\"count\":" + std::to_string(r.records.size()) + ",\"truncated\":" + (r.truncated ? "true" : "false");
            return reply.finish(out);
        }
        case kAtomic: {
            std::int64_t delta = 0;
            if (!toInt64(req->get("value"), delta)) return reply.error(400, "Value must be an integer");
            std::int64_t newValue = 0;
            Status s = store.increment(key, delta, newValue);
            if (s != Status::Ok) return reply.error(statusCode(s), statusError(s));
            std::string out = "{\"code\":200,\"success\":true,\"key\":" + jsonString(key) +
                              ",\"newValue\":" + std::to_string(newValue);
            return reply.finish(out);
        }
    }
    return reply.error(400, "Invalid operation");
}

}  // namespace hpkv
