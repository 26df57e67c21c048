// "static": a fixed principal -> token map from the options (tokens.<principal>: <token>).
// Every configured token is compared, in constant time, so timing reveals neither which
// principal matched nor how much of a token was right.
#include <streamfence/plugin.hpp>

#include <utility>
#include <vector>

using namespace streamfence;

class StaticValidator : public TokenValidator {
public:
    StaticValidator(const Host&, const Options& opts) {
        for (auto& kv : opts.children("tokens")) {
            // A principal may contain dots: everything after "tokens." is the principal.
            if (kv.first.empty()) throw std::invalid_argument("option tokens.: empty principal");
            if (kv.second.empty()) throw std::invalid_argument("option tokens." + kv.first + ": empty token");
            tokens_.emplace_back(kv.first, kv.second);
        }
        if (tokens_.empty()) throw std::invalid_argument("no tokens configured (options tokens.<principal>: <token>)");
    }

    TokenResult validate(const TokenRequest& rq) override {
        if (rq.token.empty()) return TokenResult::reject("Missing token");
        const std::string* principal = nullptr;
        for (auto& t : tokens_)
            if (constantTimeEquals(rq.token, t.second) && !principal) principal = &t.first;
        if (!principal) return TokenResult::reject("Invalid token");
        return TokenResult::accept(*principal);
    }

private:
    std::vector<std::pair<std::string, std::string>> tokens_;
};

STREAMFENCE_TOKEN_VALIDATOR(StaticValidator, "static", "1.0.0", "Fixed principal-to-token map from the config")
