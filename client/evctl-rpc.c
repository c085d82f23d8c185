/*
 * evctl-rpc.c - `evctl call METHOD [PARAMS]`: any method by name, for scripts and
 * debugging. The result is printed as JSON whatever --json says (it has no human form);
 * an error is the usual one line and exit code (1, or 5 for -32005).
 */

#include <getopt.h>
#include <stdio.h>

#include "evctl.h"

int cmd_call(int argc, char **argv) {
        _cleanup_json_ json_t *result = NULL;
        json_t *params = NULL;
        json_error_t e;
        int r;

        PARSE_SIMPLE("call", 2);
        if (optind >= argc)
                return usage_error("call", "which method? give METHOD [PARAMS]");
        if (optind + 1 < argc) {
                params = json_loads(argv[optind + 1], 0, &e);
                if (!params)
                        return usage_error("call", "PARAMS: not JSON (%s, at character %d)", e.text, e.position);
                if (!json_is_object(params)) {
                        json_decref(params);
                        return usage_error("call", "PARAMS: a JSON object (evd's methods take named params)");
                }
        }
        if ((r = connect_daemon())) {
                json_decref(params);
                return r;
        }
        r = call(argv[optind], params, &result); /* params: stolen */
        if (r)
                return r;
        print_json(result);
        return 0;
}
