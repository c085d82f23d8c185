/* fuzz-protocol.c - libFuzzer harness for the protocol decoder
 *
 * One input is one packet as the daemon (or a client) would receive it: parse it, then
 * validate it both as requests (daemon side) and as responses (client side), and decode
 * any "events" member, exercising every path a hostile peer can reach in protocol/.
 */

#include <stddef.h>
#include <stdint.h>

#include "jsonrpc.h"
#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_one(json_t *msg) {
        JsonRpcRequest req;
        JsonRpcResponse resp;
        const char *why = NULL, *key = NULL;
        static const char *const known[] = { "fd", "events", "mode", "tag", NULL };
        int code;
        uint32_t events;
        json_t *ev;

        (void)jsonrpc_request_check(msg, &req, &code, &why);
        (void)jsonrpc_response_check(msg, &resp);
        if (json_is_object(msg) && json_is_object(json_object_get(msg, "params"))) {
                json_t *params = json_object_get(msg, "params");
                (void)jsonrpc_params_check_known(params, known, &key);
                ev = json_object_get(params, "events");
                if (ev && protocol_events_from_json(ev, EVD_EVENTS_REQUESTABLE, &events, &why) == 0)
                        json_decref(protocol_events_to_json(events));
                if (json_object_get(params, "tag"))
                        (void)protocol_tag_check(json_object_get(params, "tag"));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *msg = NULL, *reply;
        json_error_t err;
        char buf[EVD_MAX_PACKET];
        size_t len;

        if (jsonrpc_parse(data, size, &msg, &err) < 0)
                return 0;
        if (json_is_array(msg)) {
                size_t i;
                json_t *m;
                json_array_foreach(msg, i, m)
                        check_one(m);
        } else
                check_one(msg);
        /* Echo it back the way the daemon builds replies: encoding must cope with anything
         * the parser accepted. */
        reply = jsonrpc_reply(json_object_get(msg, "id"), json_incref(msg));
        if (reply)
                (void)jsonrpc_encode(reply, buf, sizeof(buf), &len);
        json_decref(reply);
        json_decref(msg);
        return 0;
}
