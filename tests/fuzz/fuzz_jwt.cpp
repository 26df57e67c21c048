// JWT validator plugin (plugins/validator-jwt, compiled in and driven through its C ABI
// entry, as the host drives the loaded .so). First byte 0: the rest is a raw token. First
// byte 1: the rest is header JSON \0 claims JSON \0 topic, which this target encodes and
// signs with the configured HS256 secret, so the fuzzer reaches the claim checks
// (exp / nbf / aud / iss / topics) behind the signature.
#include <openssl/hmac.h>

#include <cstring>
#include <string>

#include <streamfence/plugin.h>

#include "fuzz_check.hpp"

extern "C" const sf_plugin_descriptor* streamfence_plugin_entry(const uint32_t*, uint32_t);

namespace {

constexpr char kSecret[] = "fuzz-secret-fuzz-secret-fuzz-secret!";
constexpr uint64_t kNowMs = 1700000000000ULL;  // fixed clock: runs are reproducible

uint64_t wallMs(void*) { return kNowMs; }
uint64_t nowMs(void*) { return 1; }
void logLine(void*, int, const char*, const char*) {}

std::string b64url(std::string_view in) {
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        acc = (acc << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(t[(acc >> bits) & 63]);
        }
    }
    if (bits > 0) out.push_back(t[(acc << (6 - bits)) & 63]);
    return out;
}

std::string hs256(std::string_view input) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    FUZZ_CHECK(HMAC(EVP_sha256(), kSecret, static_cast<int>(std::strlen(kSecret)),
                    reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len));
    return std::string(reinterpret_cast<char*>(mac), len);
}

struct Validator {
    const sf_plugin_descriptor* d = nullptr;
    const sf_token_validator_vtable* vt = nullptr;
    void* inst = nullptr;
    sf_host_api api{};
    Validator() {
        uint32_t versions[] = {SF_ABI_VERSION};
        d = streamfence_plugin_entry(versions, 1);
        FUZZ_CHECK(d && d->kind == SF_KIND_TOKEN_VALIDATOR);
        vt = static_cast<const sf_token_validator_vtable*>(d->vtable);
        api.struct_size = sizeof api;
        api.abi_version = SF_ABI_VERSION;
        api.log = logLine;
        api.now_ms = nowMs;
        api.wall_ms = wallMs;
        const char* kv[][2] = {{"secret", kSecret}, {"audience", "fuzz"}, {"issuer", "sf"},
                               {"topicsClaim", "topics"}, {"leewaySeconds", "5"}};
        sf_option items[sizeof kv / sizeof kv[0]] = {};
        for (size_t i = 0; i < sizeof kv / sizeof kv[0]; ++i) {
            items[i].struct_size = sizeof items[i];
            items[i].key = sf_str{kv[i][0], std::strlen(kv[i][0])};
            items[i].value = sf_str{kv[i][1], std::strlen(kv[i][1])};
        }
        sf_options o{};
        o.struct_size = sizeof o;
        o.count = sizeof items / sizeof items[0];
        o.items = items;
        o.json = "{}";
        o.instance_name = "";
        char msg[256] = {0};
        sf_error err{};
        err.struct_size = sizeof err;
        err.capacity = sizeof msg;
        err.message = msg;
        FUZZ_CHECK(d->init(&api, &o, &inst, &err) == SF_OK);
    }
};

sf_str str(std::string_view s) { return sf_str{s.data(), s.size()}; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Validator v;
    if (size == 0) return 0;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::string token;
    std::string_view topic;
    if (!(data[0] & 1)) {
        token.assign(in);
    } else {
        std::string_view header = sffuzz::splitAt(in, '\0');
        std::string_view claims = sffuzz::splitAt(in, '\0');
        topic = in;
        token = b64url(header) + "." + b64url(claims);
        token += "." + b64url(hs256(token));
    }
    sf_token_request rq{};
    rq.struct_size = sizeof rq;
    rq.token = str(token);
    rq.ns = str("/");
    rq.topic = str(topic);
    rq.action = str(topic.empty() ? "connect" : "subscribe");
    rq.remote_addr = str("127.0.0.1:1");
    // Principal and reason come back through writers (ABI 2): collect them as the host does.
    std::string principal, reason;
    auto append = [](void* ctx, const char* p, size_t n) { static_cast<std::string*>(ctx)->append(p, n); };
    sf_writer pw{}, rw{};
    pw.struct_size = rw.struct_size = sizeof pw;
    pw.ctx = &principal;
    rw.ctx = &reason;
    pw.write = rw.write = append;
    sf_token_result res{};
    res.struct_size = sizeof res;
    res.principal = &pw;
    res.reason = &rw;
    v.vt->validate(v.inst, &rq, &res);
    FUZZ_CHECK(res.accepted == 0 || res.accepted == 1);
    if (res.accepted) {
        // Accepted means signed with our secret, in canonical base64url: anything else that
        // passes would be a forgery.
        size_t d2 = token.rfind('.');
        FUZZ_CHECK(d2 != std::string::npos);
        FUZZ_CHECK(token.substr(d2 + 1) == b64url(hs256(token.substr(0, d2))));
        // Expiry in range whatever the exp claim (the validator clamps it to the year 9999).
        FUZZ_CHECK(res.expires_at_ms >= 0 && res.expires_at_ms <= 253402300799000LL);
    } else {
        FUZZ_CHECK(!reason.empty());
    }
    return 0;
}
