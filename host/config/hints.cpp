#include "config/hints.hpp"

#include <algorithm>
#include <cctype>

namespace sf::config {
namespace {

std::string lower(const std::string& s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Plain Levenshtein; config keys are short, so O(n*m) is fine.
size_t editDistance(const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

}  // namespace

std::string closestMatch(const std::string& word, const std::vector<std::string>& candidates) {
    const std::string lw = lower(word);
    // A case-only difference is the most likely slip, so it wins over any edit.
    for (const auto& c : candidates)
        if (c != word && lower(c) == lw) return c;
    std::string best;
    size_t bestDist = 3;
    for (const auto& c : candidates) {
        if (c == word) continue;
        size_t d = editDistance(lw, lower(c));
        // Very short words are within two edits of everything; require some overlap.
        if (d < bestDist && d < std::max(word.size(), c.size())) {
            bestDist = d;
            best = c;
        }
    }
    return best;
}

std::string didYouMean(const std::string& word, const std::vector<std::string>& candidates) {
    std::string m = closestMatch(word, candidates);
    return m.empty() ? std::string() : " (did you mean \"" + m + "\"?)";
}

std::string joinNames(const std::vector<std::string>& names, const char* sep) {
    std::string out;
    for (size_t i = 0; i < names.size(); ++i) {
        if (i) out += sep;
        out += names[i];
    }
    return out;
}

}  // namespace sf::config
