// "hang": a token validator that hangs, for the fault-injection tests. A token starting with
// "hang" makes validate() sleep `hangMs` (default 30000) before accepting; "good..." is
// accepted at once; anything else is rejected. It declares SF_VALIDATOR_MAY_BLOCK, as a
// validator that asks a remote service must (plugin.h): the host calls it on worker threads
// with a deadline (authTimeoutMs), and must keep serving everyone else while it hangs.
#include <streamfence/plugin.hpp>

#include <chrono>
#include <thread>

using namespace streamfence;

class HangValidator : public TokenValidator {
public:
    static constexpr uint32_t flags = SF_VALIDATOR_MAY_BLOCK;

    HangValidator(const Host&, const Options& o) : hangMs_(o.getInt("hangMs", 30000)) {}

    TokenResult validate(const TokenRequest& rq) override {
        if (rq.token.rfind("hang", 0) == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(hangMs_));
            return TokenResult::accept("sleeper");
        }
        if (rq.token.rfind("good", 0) == 0) return TokenResult::accept(std::string(rq.token));
        return TokenResult::reject("Invalid token");
    }

private:
    long long hangMs_;
};

STREAMFENCE_TOKEN_VALIDATOR(HangValidator, "hang", "1.0.0", "Validator that hangs on tokens starting with hang (tests)")
