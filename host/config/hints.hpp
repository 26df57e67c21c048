// "Did you mean" suggestions for misspelt keys and names.
#pragma once
#include <string>
#include <vector>

namespace sf::config {

// The closest candidate if it differs only in case or by at most two edits; "" otherwise.
std::string closestMatch(const std::string& word, const std::vector<std::string>& candidates);

// " (did you mean \"x\"?)" or "".
std::string didYouMean(const std::string& word, const std::vector<std::string>& candidates);

// "a, b, c"
std::string joinNames(const std::vector<std::string>& names, const char* sep = ", ");

}  // namespace sf::config
