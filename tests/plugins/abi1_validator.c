/* A token validator exactly as a plugin author built it for ABI 1.1: plain C, compiled against
 * the frozen 1.1 header in abi1/include (not the SDK's), so its descriptor says major 1 and its
 * sf_token_result is the old one with char arrays. A 2.x host must refuse it at load, with a
 * reason that says what to do, and never call into it (test_plugins, testRefusalReasons). */
#include <streamfence/plugin.h>

#include <stdio.h>

#if SF_ABI_VERSION != 1
#error "abi1_validator.c must be built against the frozen ABI 1.1 header (tests/plugins/abi1/include)"
#endif

static int abi1_init(const sf_host_api* host, const sf_options* options, void** instance, sf_error* err) {
    static int dummy;
    (void)host;
    (void)options;
    (void)err;
    *instance = &dummy;
    return SF_OK;
}

static void abi1_destroy(void* instance) { (void)instance; }

/* Writes into the 1.x fixed arrays: a host that misread this plugin as 2.x would have its
 * writer pointers overwritten here. */
static int abi1_validate(void* instance, const sf_token_request* request, sf_token_result* result) {
    (void)instance;
    (void)request;
    result->accepted = 1;
    snprintf(result->principal, sizeof result->principal, "abi1-principal");
    return SF_OK;
}

static const sf_token_validator_vtable abi1_vtable = {sizeof(sf_token_validator_vtable), 0, abi1_validate, {0}};

static const sf_plugin_descriptor abi1_descriptor = {
    sizeof(sf_plugin_descriptor), SF_ABI_VERSION, SF_KIND_TOKEN_VALIDATOR, SF_ABI_MINOR,
    "abi1", "1.0.0", "a validator built for ABI 1.1",
    abi1_init, abi1_destroy, &abi1_vtable, {0}};

/* As 1.x plugins did: the descriptor of the version it implements, whatever the host offers. */
SF_PLUGIN_EXPORT const sf_plugin_descriptor* streamfence_plugin_entry(const uint32_t* host_versions, uint32_t count) {
    (void)host_versions;
    (void)count;
    return &abi1_descriptor;
}
