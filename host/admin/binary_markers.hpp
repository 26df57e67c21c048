// Binary in control-API JSON: a payload may hold {"$binary":"<base64>"} anywhere (an object
// with that one member); it is published as a real binary part (README, "Publishing from
// another process"; docs/client-protocol.md, Binary).
#pragma once
#include <string>

#include "common/json.hpp"

namespace sf::admin {

bool hasBinaryMarker(const json::Value& v);
// Replace every marker in v by its bytes. False (error set, v partly converted) when a
// marker's text is not base64.
bool resolveBinaryMarkers(json::Value& v, std::string& error);

}  // namespace sf::admin
