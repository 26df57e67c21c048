/*
 * StreamFence plugin SDK: the C ABI between streamfenced and a plugin (.so).
 *
 * This header is the whole contract. A plugin exports ONE symbol, streamfence_plugin_entry,
 * which the host calls with the ABI versions it supports; the plugin answers with a
 * descriptor for the version it implements (Mosquitto's model). Everything that crosses the
 * boundary is plain C: integers, {ptr,len} buffers, opaque handles, function tables.
 *
 * Rules that keep old plugins loading in new hosts (see COMPATIBILITY.md):
 *  - every struct that crosses the boundary starts with struct_size (the descriptor's frozen
 *    head also has abi_version) and ends with a reserved block; a reader uses only fields that
 *    lie inside struct_size; sf_str is the one exception: a plain {ptr,len} pair, frozen;
 *  - new fields take reserved slots or are appended before the reserved block; reserved
 *    fields are zero;
 *  - an array of structs is walked by the struct_size of its elements (all elements of one
 *    array have the same), never by the reader's own sizeof, so elements can grow too;
 *  - text of any length a plugin hands back goes through a host-owned sf_writer ({ptr,len}
 *    per call), never into a fixed char array;
 *  - function-table entries may be NULL, meaning "not supported".
 *
 * Ownership: unless a comment says otherwise, a pointer handed to a callee is BORROWED for
 * the duration of the call only; the side that allocated memory frees it.
 * Threads: see each kind. No function here may throw (C++ authors: the wrapper in
 * plugin.hpp catches exceptions and turns them into error returns).
 */
#ifndef STREAMFENCE_PLUGIN_H
#define STREAMFENCE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI major version: bumped only for incompatible changes. Minor: additions only.
 * 2.0: every struct can grow (sf_option, sf_label, sf_error, sf_writer, sf_lane_key got a
 * struct_size and/or a reserved block; arrays are walked by element struct_size) and a token
 * validator hands principal and reason back through host writers instead of char arrays.
 * COMPATIBILITY.md lists the changes and how to port a 1.x plugin. */
#define SF_ABI_VERSION 2
#define SF_ABI_MINOR 0

#if defined(__GNUC__)
#define SF_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define SF_PLUGIN_EXPORT
#endif

/* The one symbol every plugin exports. */
#define SF_PLUGIN_ENTRY_SYMBOL "streamfence_plugin_entry"

/* Return codes of plugin functions. */
#define SF_OK 0
#define SF_ERR (-1)            /* generic failure, message in sf_error */
#define SF_ERR_NOT_SUPPORTED (-2)
#define SF_ERR_AGAIN (-3)      /* temporarily unavailable (e.g. backend disconnected) */
#define SF_ERR_FULL (-4)       /* quota reached */

/* ---------------------------------------------------------------- basic types */

/* A borrowed byte range. Not NUL-terminated unless stated. */
typedef struct sf_str {
    const char* ptr;
    size_t len;
} sf_str;

/* Host-provided sink for text a plugin produces (an HTTP body, a token's principal, a
 * rejection reason): the plugin calls write any number of times, each call appends len bytes
 * (no NUL needed). Valid for the duration of the call it is passed to. A host may cap what it
 * keeps (documented where the writer is handed over), never silently at a small size. */
typedef struct sf_writer {
    uint32_t struct_size;
    uint32_t reserved0;
    void* ctx;
    void (*write)(void* ctx, const char* data, size_t len);
    void* reserved[4];
} sf_writer;

/* Host-owned buffer where a plugin writes an error text (truncated to capacity, always
 * NUL-terminated). */
typedef struct sf_error {
    uint32_t struct_size;
    uint32_t capacity; /* bytes available in message */
    char* message;
    void* reserved[4];
} sf_error;

/* One plugin option from the config (plugins: {<name>: {...}}), flattened to dotted keys:
 * {tokens: {alice: s3cret}} -> "tokens.alice" = "s3cret"; lists -> "list.0", "list.1".
 * key and value are also NUL-terminated (ptr[len] == 0). Borrowed for the duration of init
 * only: copy what you keep. */
typedef struct sf_option {
    uint32_t struct_size; /* also the stride of the items array */
    uint32_t reserved0;
    sf_str key;
    sf_str value;
    void* reserved[2];
} sf_option;

/* json holds the same subtree as the items, as JSON text (NUL-terminated). */
typedef struct sf_options {
    uint32_t struct_size;
    uint32_t count;
    const sf_option* items; /* count elements, walked by items[0].struct_size */
    const char* json;
    const char* instance_name; /* e.g. the server name this instance serves; may be "" */
    void* reserved[4];
} sf_options;

/* Log levels for sf_host_api.log */
#define SF_LOG_DEBUG 0
#define SF_LOG_INFO 1
#define SF_LOG_WARN 2
#define SF_LOG_ERROR 3

/* What the host offers every plugin. Valid from init until destroy returns. Thread-safe. */
typedef struct sf_host_api {
    uint32_t struct_size;
    uint32_t abi_version;
    void* host_ctx;
    /* One log line: event=<event> plugin=<name> msg=<msg>. Strings borrowed. */
    void (*log)(void* host_ctx, int level, const char* event, const char* msg);
    /* Monotonic milliseconds. */
    uint64_t (*now_ms)(void* host_ctx);
    /* Wall-clock milliseconds since the epoch (for token expiry). */
    uint64_t (*wall_ms)(void* host_ctx);
    void* reserved[8];
} sf_host_api;

/* ---------------------------------------------------------------- plugin kinds */

typedef enum sf_plugin_kind {
    SF_KIND_OVERFLOW_POLICY = 1,
    SF_KIND_TOKEN_VALIDATOR = 2,
    SF_KIND_METRICS_SINK = 3,
    SF_KIND_STORAGE_BACKEND = 4
} sf_plugin_kind;

/* ---------------------------------------------------------------- overflow policy
 * Called on the event-loop thread that owns the lane: must not block, must be quick.
 * The policy sees the lane through sf_lane_view and decides what happens to an incoming
 * message. The host enforces the limits afterwards: a verdict that would leave the lane over
 * max_messages or max_bytes is turned into a rejection ("policy exceeded lane limits").
 */

#define SF_ENTRY_IN_FLIGHT 0x1u /* sent, awaiting ack (AT_LEAST_ONCE): do not remove */

typedef struct sf_message_view {
    uint32_t struct_size;
    sf_str payload_json;  /* the payload as JSON text */
    uint64_t bytes;       /* the size that counts toward max_bytes */
    sf_str key;           /* coalesce key: the canonical compact JSON of the payload's coalesceKey
                           field (1, "1" and true differ); empty when the field is missing (matches
                           nothing); the topic when the namespace has no coalesceKey */
    uint32_t flags;       /* SF_ENTRY_* (entries only) */
    uint32_t reserved0;
    void* reserved[4];
} sf_message_view;

typedef struct sf_lane_view {
    uint32_t struct_size;
    uint32_t reserved0;
    void* lane; /* opaque, pass back to the functions below */
    uint32_t max_messages;
    uint32_t reserved1;
    uint64_t max_bytes;
    sf_str topic;
    sf_str ns; /* namespace path */
    uint32_t (*count)(void* lane);
    uint64_t (*bytes)(void* lane);
    /* Entry 0 is the oldest. Returns SF_OK and fills out (views borrowed until the lane
     * changes), or SF_ERR when index is out of range. */
    int (*entry)(void* lane, uint32_t index, sf_message_view* out);
    /* Remove entry at index (refused with SF_ERR for an in-flight entry). */
    int (*remove)(void* lane, uint32_t index);
    /* Replace entry at index with the incoming message, keeping its place in the queue. */
    int (*replace_with_incoming)(void* lane, uint32_t index);
    /* 1 if the lane has a storage backend to spill to, else 0. */
    int (*can_spill)(void* lane);
    void* reserved[8];
} sf_lane_view;

typedef enum sf_verdict {
    SF_VERDICT_ACCEPT = 1,    /* append the incoming message (after any removals) */
    SF_VERDICT_REJECT = 2,    /* drop the incoming message for this subscriber */
    SF_VERDICT_COALESCED = 3, /* the policy replaced an entry with it (replace_with_incoming) */
    SF_VERDICT_SPILL = 4      /* hand the incoming message to the lane's storage backend */
} sf_verdict;

typedef struct sf_policy_result {
    uint32_t struct_size;
    uint32_t verdict; /* sf_verdict */
    uint32_t dropped; /* how many entries the policy removed (counted as dropped) */
    uint32_t reserved0;
    /* Reason for metrics/logs (label `reason` of streamfence_queue_overflow_total): a static
     * string owned by the plugin, or NULL. */
    const char* reason;
    void* reserved[4];
} sf_policy_result;

/* When the policy is consulted: */
#define SF_POLICY_ON_OVERFLOW 0x1u /* only when the message does not fit (cheapest) */
#define SF_POLICY_ON_EVERY 0x2u    /* on every enqueue (coalescing, snapshots) */
/* Batch forms (since ABI 1.1, unchanged in 2.0), or-ed into `when`. A lane is written with
 * every message published since its last write at once; a policy whose decision over such a
 * run is one of these closed forms says so, and the host applies it in one step per lane
 * instead of one on_enqueue call per message (a lane that fell far behind then costs O(1), and
 * a topic whose lanes all tolerate DROP_OLDEST may let loops skip what no lane would keep). The
 * host still calls on_enqueue for whatever it cannot decide that way (spill in progress, a
 * message larger than max_bytes), and on_enqueue must give the same result message by message.
 * See docs/message-path.md. */
#define SF_POLICY_BATCH_DROP_OLDEST 0x10u /* make room by dropping the oldest entries not in flight */
#define SF_POLICY_BATCH_REJECT_NEW 0x20u  /* what does not fit is rejected for this subscriber */
#define SF_POLICY_BATCH_KEEP_NEWEST 0x40u /* every message replaces all pending ones (snapshots) */
#define SF_POLICY_BATCH_MASK 0x70u

typedef struct sf_overflow_policy_vtable {
    uint32_t struct_size;
    uint32_t when; /* SF_POLICY_ON_* */
    /* fits: 1 if the message would fit within the limits as the lane stands. */
    int (*on_enqueue)(void* instance, const sf_lane_view* lane, const sf_message_view* incoming, int fits,
                      sf_policy_result* result);
    void* reserved[8];
} sf_overflow_policy_vtable;

/* ---------------------------------------------------------------- token validator
 * validate() may block (JWT key fetch, a remote call) when flags has SF_VALIDATOR_MAY_BLOCK:
 * the host then calls it on a worker thread. It may be called from several threads at once.
 */

#define SF_VALIDATOR_MAY_BLOCK 0x1u

typedef struct sf_token_request {
    uint32_t struct_size;
    uint32_t reserved0;
    sf_str token;
    sf_str ns;          /* namespace path */
    sf_str topic;       /* empty at connect time; the topic for subscribe/publish */
    sf_str action;      /* "connect", "subscribe" or "publish" */
    sf_str remote_addr; /* "ip:port" */
    void* reserved[4];
} sf_token_request;

/* Filled by validate. principal and reason are host writers (never NULL from a 2.x host):
 * the plugin writes who the token belongs to, or why it was rejected (e.g. "Invalid token"),
 * as {ptr,len}; nothing written means none. The host keeps up to 64 KiB of each. */
typedef struct sf_token_result {
    uint32_t struct_size;
    int32_t accepted;       /* 1 accepted, 0 rejected */
    int64_t expires_at_ms;  /* wall-clock expiry of the token, 0 = none */
    sf_writer* principal;
    sf_writer* reason;
    void* reserved[4];
} sf_token_result;

typedef struct sf_token_validator_vtable {
    uint32_t struct_size;
    uint32_t flags; /* SF_VALIDATOR_* */
    int (*validate)(void* instance, const sf_token_request* request, sf_token_result* result);
    void* reserved[8];
} sf_token_validator_vtable;

/* ---------------------------------------------------------------- metrics sink
 * The host keeps the counters and gauges; a sink gets snapshots. Called from one host thread
 * at a time (never an event-loop thread), may block briefly (e.g. a UDP send).
 */

typedef enum sf_metric_type { SF_METRIC_COUNTER = 1, SF_METRIC_GAUGE = 2 } sf_metric_type;

typedef struct sf_label {
    uint32_t struct_size; /* also the stride of the labels array */
    uint32_t reserved0;
    sf_str name;
    sf_str value;
    void* reserved[2];
} sf_label;

/* flush and render get `count` samples walked by samples[0].struct_size. */
typedef struct sf_metric_sample {
    uint32_t struct_size;
    uint32_t type; /* sf_metric_type */
    sf_str name;   /* e.g. streamfence_messages_published_total */
    sf_str help;
    const sf_label* labels; /* label_count elements, walked by labels[0].struct_size */
    uint32_t label_count;
    uint32_t reserved0;
    double value;
    void* reserved[2];
} sf_metric_sample;

typedef struct sf_metrics_sink_vtable {
    uint32_t struct_size;
    uint32_t flush_interval_ms; /* how often the host calls flush (0 = never) */
    /* Push model (StatsD...): called every flush_interval_ms with the full snapshot. */
    int (*flush)(void* instance, const sf_metric_sample* samples, size_t count);
    /* Pull model (Prometheus...): render the snapshot for GET /metrics. content_type gets a
     * static string owned by the plugin. */
    int (*render)(void* instance, const sf_metric_sample* samples, size_t count, sf_writer* out,
                  const char** content_type);
    /* Optional (NULL = use flush_interval_ms): the interval chosen by one instance, e.g. from
     * its options. Called once after init. */
    uint32_t (*instance_flush_interval_ms)(void* instance);
    void* reserved[7];
} sf_metrics_sink_vtable;

/* ---------------------------------------------------------------- storage backend
 * Spill storage for lanes. Every call is ASYNCHRONOUS: it returns at once (SF_OK = accepted,
 * the callback will run exactly once; anything else = refused, no callback) and the plugin
 * does its disk or network I/O on its own threads. The callback may run on any thread; the
 * host posts it back to the lane's loop. Records passed to a callback are borrowed for the
 * duration of the callback. Per lane, operations complete in the order they were issued.
 */

typedef struct sf_lane_key {
    uint32_t struct_size;
    uint32_t reserved0;
    sf_str server;
    sf_str ns;
    sf_str client;
    sf_str topic;
    void* reserved[4];
} sf_lane_key;

typedef struct sf_record {
    uint32_t struct_size;
    uint32_t retry_count;
    sf_str data;       /* opaque bytes (the payload JSON) */
    sf_str event;      /* event name to redeliver on */
    sf_str message_id; /* messageId to redeliver with ("" for BEST_EFFORT) */
    uint64_t bytes;    /* size counted toward lane limits */
    sf_str key;        /* coalesce key (may be empty) */
    void* reserved[4];
} sf_record;

typedef struct sf_storage_usage {
    uint32_t struct_size;
    uint32_t reserved0;
    uint64_t records;
    uint64_t bytes;
    void* reserved[4];
} sf_storage_usage;

/* status: SF_OK or an SF_ERR_* code; records: count elements walked by records[0].struct_size;
 * error: NUL-terminated text or NULL. */
typedef void (*sf_storage_done)(void* cookie, int status, const sf_record* records, size_t count,
                                const char* error);

typedef struct sf_storage_backend_vtable {
    uint32_t struct_size;
    uint32_t flags;
    int (*append)(void* instance, const sf_lane_key* lane, const sf_record* record, sf_storage_done done,
                  void* cookie);
    /* Read (without removing) up to max records, oldest first. */
    int (*read_oldest)(void* instance, const sf_lane_key* lane, uint32_t max, sf_storage_done done, void* cookie);
    /* Remove the n oldest records (the ones the host has taken into memory). */
    int (*remove_oldest)(void* instance, const sf_lane_key* lane, uint32_t n, sf_storage_done done, void* cookie);
    /* Drop everything of the lane (unsubscribe, disconnect). */
    int (*clear)(void* instance, const sf_lane_key* lane, sf_storage_done done, void* cookie);
    /* Synchronous, cheap: usage of one lane, or of the whole instance when lane is NULL. */
    int (*usage)(void* instance, const sf_lane_key* lane, sf_storage_usage* out);
    void* reserved[8];
} sf_storage_backend_vtable;

/* ---------------------------------------------------------------- the descriptor */

typedef struct sf_plugin_descriptor {
    /* Frozen for every ABI version, so any host can read them and explain a refusal: */
    uint32_t struct_size;
    uint32_t abi_version; /* the SF_ABI_VERSION this plugin implements */
    uint32_t kind;        /* sf_plugin_kind */
    uint32_t abi_minor;   /* SF_ABI_MINOR the plugin was built with */
    const char* name;     /* unique among loaded plugins, e.g. "DROP_OLDEST", "jwt" */
    const char* version;  /* the plugin's own version, e.g. "1.2.0" */
    const char* description;

    /* Create one instance (a plugin may be instantiated several times with different
     * options). On failure return SF_ERR and fill err. *instance is owned by the plugin and
     * released with destroy. */
    int (*init)(const sf_host_api* host, const sf_options* options, void** instance, sf_error* err);
    void (*destroy)(void* instance);

    /* Points to the vtable of this kind (sf_overflow_policy_vtable, ...), static storage. */
    const void* vtable;
    void* reserved[8];
} sf_plugin_descriptor;

/* The entry symbol. host_versions lists the ABI majors the host supports (newest first).
 * Return a descriptor (static storage, valid while the .so is loaded) whose abi_version is
 * one of them, or the descriptor of the version you implement if none matches (the host
 * then refuses the plugin and says why). NULL is allowed too, meaning "cannot run here". */
typedef const sf_plugin_descriptor* (*sf_plugin_entry_fn)(const uint32_t* host_versions, uint32_t count);

#ifdef __cplusplus
}
#endif

#endif /* STREAMFENCE_PLUGIN_H */
