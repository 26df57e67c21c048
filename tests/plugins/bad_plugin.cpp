// Deliberately broken plugins for the loader tests: one source, one BAD_* define per .so.
// Raw C ABI on purpose (no wrapper), so each defect is exactly what the loader sees.
#include <streamfence/plugin.h>

#include <cstdio>
#include <stdexcept>

namespace {

[[maybe_unused]] int okInit(const sf_host_api*, const sf_options*, void** instance, sf_error*) {
    static int dummy;
    *instance = &dummy;
    return SF_OK;
}
void okDestroy(void*) {}
int onEnqueue(void*, const sf_lane_view*, const sf_message_view*, int fits, sf_policy_result* r) {
    r->verdict = fits ? SF_VERDICT_ACCEPT : SF_VERDICT_REJECT;
    return SF_OK;
}

#if defined(BAD_INIT_ERROR)
int init(const sf_host_api*, const sf_options*, void**, sf_error* err) {
    std::snprintf(err->message, err->capacity, "database unreachable");
    return SF_ERR;
}
#elif defined(BAD_INIT_THROW)
// A raw C++ plugin that lets an exception escape init: the host must survive it.
int init(const sf_host_api*, const sf_options*, void**, sf_error*) { throw std::runtime_error("boom in init"); }
#else
int init(const sf_host_api* h, const sf_options* o, void** i, sf_error* e) { return okInit(h, o, i, e); }
#endif

sf_overflow_policy_vtable vtable = {sizeof(sf_overflow_policy_vtable), SF_POLICY_ON_OVERFLOW, &onEnqueue, {}};

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "bad"
#endif

[[maybe_unused]] sf_plugin_descriptor make() {
    sf_plugin_descriptor d{};
    d.struct_size = sizeof d;
    d.abi_version = SF_ABI_VERSION;
    d.abi_minor = SF_ABI_MINOR;
    d.kind = SF_KIND_OVERFLOW_POLICY;
    d.name = PLUGIN_NAME;
    d.version = "0.0.1";
    d.description = "test plugin";
    d.init = &init;
    d.destroy = &okDestroy;
    d.vtable = &vtable;
#if defined(BAD_ABI)
    d.abi_version = 99;
#elif defined(BAD_SMALL_DESCRIPTOR)
    d.struct_size = 16;
#elif defined(BAD_KIND)
    d.kind = 7;
#elif defined(BAD_NO_INIT)
    d.init = nullptr;
#elif defined(BAD_NO_VTABLE)
    d.vtable = nullptr;
#elif defined(BAD_SMALL_VTABLE)
    vtable.struct_size = 8;
#endif
    return d;
}

}  // namespace

#if defined(BAD_NO_SYMBOL)
extern "C" SF_PLUGIN_EXPORT const sf_plugin_descriptor* streamfence_plugin_entry_misspelt(const uint32_t*, uint32_t) {
    static const sf_plugin_descriptor d = make();
    return &d;
}
#elif defined(BAD_NULL)
extern "C" SF_PLUGIN_EXPORT const sf_plugin_descriptor* streamfence_plugin_entry(const uint32_t*, uint32_t) {
    return nullptr;
}
#else
extern "C" SF_PLUGIN_EXPORT const sf_plugin_descriptor* streamfence_plugin_entry(const uint32_t*, uint32_t) {
    static const sf_plugin_descriptor d = make();
    return &d;
}
#endif
