/*
 * evctl-reexec.c - `evctl reexec`: replace the running evd by the binary at its path, in
 * place (same PID), keeping every client, watch and timer. The daemon answers the request
 * at once and re-executes at the end of that iteration; evctl then follows `status` until
 * the generation moves on (success) or the failure count does (the old image serves on).
 */

#include <poll.h>
#include <stdio.h>

#include "evctl.h"

static json_int_t reexec_field(json_t *status, const char *key) {
        return jint(json_object_get(status, "reexec"), key);
}

int cmd_reexec(int argc, char **argv) {
        _cleanup_json_ json_t *before = NULL, *reply = NULL;
        double deadline;
        int r;

        PARSE_SIMPLE("reexec", 0);
        if ((r = connect_daemon()) || (r = call("status", NULL, &before)) || (r = call("reexec", NULL, &reply)))
                return r;
        deadline = now_mono() + CALL_TIMEOUT_MS / 1000.0;
        while (now_mono() < deadline) {
                _cleanup_json_ json_t *s = NULL;

                /* Asked during the gap, this waits in the socket for the next image. */
                if ((r = call("status", NULL, &s)))
                        return r;
                if (reexec_field(s, "generation") > jint(reply, "generation")) {
                        if (arg_json)
                                print_json(json_object_get(s, "reexec"));
                        else
                                printf("evd (pid %lld) re-executed: generation %lld\n", (long long)jint(s, "pid"),
                                       (long long)reexec_field(s, "generation"));
                        return 0;
                }
                if (reexec_field(s, "failures") > reexec_field(before, "failures")) {
                        errorf("evd could not re-execute (%s); it goes on serving",
                               jstr(json_object_get(s, "reexec"), "last_error"));
                        return EXIT_FAIL;
                }
                (void)poll(NULL, 0, 20);
        }
        errorf("evd did not finish its re-exec within %d s", CALL_TIMEOUT_MS / 1000);
        return EXIT_TIMEOUT;
}
