#pragma once
/* protocol.h - evd wire constants, JSON-RPC error codes and event names */

#include <jansson.h>
#include <stdint.h>

/* Version spoken by this tree; "hello" reports it, a client may refuse another. */
#define EVD_PROTOCOL_VERSION 1

/* Bytes of one SEQPACKET packet: one JSON-RPC message or batch, compact UTF-8. */
#define EVD_MAX_PACKET 65536
/* File descriptors carried by one packet (SCM_RIGHTS); the kernel's own cap is 253. */
#define EVD_MAX_FDS 32
/* Bytes of a watch/timer tag once serialized compactly (JSON_COMPACT). */
#define EVD_MAX_TAG 1024

/* JSON-RPC 2.0 error codes (-32768..-32000 reserved; -32099..-32000 are server codes). */
enum {
        EVD_ERR_PARSE = -32700,
        EVD_ERR_INVALID_REQUEST = -32600,
        EVD_ERR_METHOD_NOT_FOUND = -32601,
        EVD_ERR_INVALID_PARAMS = -32602,
        EVD_ERR_INTERNAL = -32603,

        EVD_ERR_NO_SUCH_WATCH = -32001,
        EVD_ERR_NO_SUCH_TIMER = -32002,
        EVD_ERR_BAD_FD = -32003,
        EVD_ERR_QUOTA = -32004, /* a per-client or per-uid limit */
        EVD_ERR_PERMISSION = -32005,
        EVD_ERR_FDS_TRUNCATED = -32006, /* MSG_CTRUNC: more fds than EVD_MAX_FDS */
        EVD_ERR_TOO_LARGE = -32007,     /* MSG_TRUNC, or a reply larger than EVD_MAX_PACKET */
        EVD_ERR_SHUTTING_DOWN = -32008,
        EVD_ERR_NO_FDS = -32009, /* the daemon itself is out of file descriptors */
        EVD_ERR_REPLY_BUDGET = -32010, /* the packet's replies reached their byte budget */
};

/* Event bits: the poll(2) values on Linux, so they pass straight to poll/epoll/io_uring. */
#define EVD_EVENT_IN 0x0001u
#define EVD_EVENT_PRI 0x0002u
#define EVD_EVENT_OUT 0x0004u
#define EVD_EVENT_ERR 0x0008u
#define EVD_EVENT_HUP 0x0010u
#define EVD_EVENT_RDHUP 0x2000u
/* What a client may ask for; ERR and HUP are always reported, never requested. */
#define EVD_EVENTS_REQUESTABLE (EVD_EVENT_IN | EVD_EVENT_PRI | EVD_EVENT_OUT | EVD_EVENT_RDHUP)
#define EVD_EVENTS_ALL (EVD_EVENTS_REQUESTABLE | EVD_EVENT_ERR | EVD_EVENT_HUP)

const char *evd_error_message(int code);

const char *protocol_event_name(uint32_t event);
uint32_t protocol_event_from_name(const char *name);
int protocol_events_from_json(const json_t *array, uint32_t requestable_mask, uint32_t *ret_events,
                              const char **ret_why);
json_t *protocol_events_to_json(uint32_t events);

int protocol_tag_check(const json_t *tag);

/* The system instance's socket; socket activation (systemd/evd.socket) uses the same. */
#define EVD_SYSTEM_SOCKET "/run/evd/evd.sock"

/** protocol_default_socket_path() - where daemon and clients meet unless told otherwise:
 * $EVD_SOCKET, else EVD_SYSTEM_SOCKET for root, else $XDG_RUNTIME_DIR/evd/evd.sock.
 * Return: 0 with a malloc()ed path, -ENXIO if no rule applies (no XDG_RUNTIME_DIR). */
int protocol_default_socket_path(char **ret);
