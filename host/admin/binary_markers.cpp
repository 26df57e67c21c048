#include "admin/binary_markers.hpp"

#include "protocol/engine_io_codec.hpp"

namespace sf::admin {
namespace {

const json::Value* markerText(const json::Value& v) {
    if (!v.isObject() || v.size() != 1) return nullptr;
    const json::Value* b = v.find("$binary");
    return b && b->isString() ? b : nullptr;
}

}  // namespace

bool hasBinaryMarker(const json::Value& v) {
    if (markerText(v)) return true;
    if (v.isArray()) {
        for (auto& e : v.asArray())
            if (hasBinaryMarker(e)) return true;
    } else if (v.isObject()) {
        for (auto& kv : v.asObject())
            if (hasBinaryMarker(kv.second)) return true;
    }
    return false;
}

bool resolveBinaryMarkers(json::Value& v, std::string& error) {
    if (const json::Value* text = markerText(v)) {
        std::string bytes;
        if (!eio::base64Decode(text->asString(), bytes)) {
            error = "\"$binary\" must be base64 text";
            return false;
        }
        v = json::Value::binary(std::move(bytes));
        return true;
    }
    if (v.isArray()) {
        for (auto& e : v.asArray())
            if (!resolveBinaryMarkers(e, error)) return false;
    } else if (v.isObject()) {
        for (auto& kv : v.asObject())
            if (!resolveBinaryMarkers(kv.second, error)) return false;
    }
    return true;
}

}  // namespace sf::admin
