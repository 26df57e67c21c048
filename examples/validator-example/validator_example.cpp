// A minimal token validator: accepts the tokens listed in the option `allow`
// (allow: [t1, t2] -> options allow.0, allow.1) and uses the token itself, up to its first
// ':', as the principal ("alice:xyz" -> "alice").
//
//   plugins:
//     example: { allow: ["alice:s3cret", "bob:hunter2"] }
//   servers: { feed: { auth: TOKEN, tokenValidator: example, ... } }
#include <streamfence/plugin.hpp>

#include <vector>

class ExampleValidator : public streamfence::TokenValidator {
public:
    ExampleValidator(const streamfence::Host& host, const streamfence::Options& opts) {
        for (const auto& kv : opts.children("allow")) allowed_.push_back(kv.second);
        if (allowed_.empty()) throw std::invalid_argument("option allow: list at least one token");
        host.info("example_validator_ready", std::to_string(allowed_.size()) + " tokens");
    }

    streamfence::TokenResult validate(const streamfence::TokenRequest& rq) override {
        if (rq.token.empty()) return streamfence::TokenResult::reject("Missing token");
        bool ok = false;
        for (const auto& t : allowed_) ok |= streamfence::constantTimeEquals(rq.token, t);
        if (!ok) return streamfence::TokenResult::reject("Invalid token");
        return streamfence::TokenResult::accept(std::string(rq.token.substr(0, rq.token.find(':'))));
    }

private:
    std::vector<std::string> allowed_;
};

STREAMFENCE_TOKEN_VALIDATOR(ExampleValidator, "example", "1.0.0", "Accepts the tokens listed in option allow")
