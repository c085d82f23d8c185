#pragma once
/* methods.h - the JSON-RPC methods, one function each */

#include <jansson.h>

#include "fd-list.h"
#include "jsonrpc.h"

typedef struct Conn Conn;

/** methods_call() - run one validated request and encode its reply into @buf.
 * @fds: the packet's fds (a method takes the ones it uses).
 * @budget: bytes the reply should stay within: a listing's page ends there (it always
 * holds at least one item), other replies are small.
 * @ret_cost: what to charge to the packet's reply budget: the reply's bytes, plus one per
 * item a listing walked past to reach its `offset`.
 * Errors are encoded with conn_encode_reply(). Meant as ConnOps.dispatch (conn.h).
 * Return: the reply's length; 0 for none (a notification, or a reply that could not be
 * encoded even as an error). */
size_t methods_call(Conn *c, const JsonRpcRequest *req, FdList *fds, size_t budget, char *buf, size_t size,
                    size_t *ret_cost);
