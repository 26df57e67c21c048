// One line per event, key=value, to stderr:  ts=... level=info event=listening port=3000
// Values with spaces, quotes or '=' are quoted. Thread-safe (one write(2) per line).
#pragma once
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace sf::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void setLevel(Level l);
bool setLevel(std::string_view name);  // false if unknown
bool enabled(Level l);

using Field = std::pair<std::string_view, std::string>;
void write(Level l, std::string_view event, std::initializer_list<Field> fields = {});

inline void debug(std::string_view e, std::initializer_list<Field> f = {}) { if (enabled(Level::Debug)) write(Level::Debug, e, f); }
inline void info(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::Info, e, f); }
inline void warn(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::Warn, e, f); }
inline void error(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::Error, e, f); }

}  // namespace sf::log
