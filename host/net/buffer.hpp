// An immutable, reference-counted byte buffer. A frame is encoded once and the same
// Buffer is queued to every connection that gets it: fan-out never copies per subscriber.
#pragma once
#include <memory>
#include <string>

namespace sf::net {

using Buffer = std::shared_ptr<const std::string>;

inline Buffer makeBuffer(std::string bytes) { return std::make_shared<const std::string>(std::move(bytes)); }

}  // namespace sf::net
