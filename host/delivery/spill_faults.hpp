// The log line of a spill operation that failed or was refused (delivery/session.cpp). A
// full disk or a dead backend fails every append of every lane: one line per event,
// namespace and topic per second, with the number of failures since the previous line, keeps
// the failure visible without flooding the log.
#pragma once
#include <string>

namespace sf::delivery {

void logSpillFault(const char* event, const std::string& ns, const std::string& topic, const std::string& client,
                   const std::string& error);

}  // namespace sf::delivery
