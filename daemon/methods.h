#pragma once
/* methods.h - the JSON-RPC methods, one function each */

#include <jansson.h>

#include "fd-list.h"
#include "jsonrpc.h"

typedef struct Conn Conn;

/** methods_call() - run one validated request. @fds: the packet's fds (a method takes the
 * ones it uses). Return: the reply (new reference), or NULL for a notification. */
json_t *methods_call(Conn *c, const JsonRpcRequest *req, FdList *fds);
