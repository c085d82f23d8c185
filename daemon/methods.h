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
 * Return: the reply's length; 0 for none (a notification, or a reply that could not be
 * encoded even as an error). */
size_t methods_call(Conn *c, const JsonRpcRequest *req, FdList *fds, size_t budget, char *buf, size_t size,
                    size_t *ret_cost);
/** methods_encode() - encode @reply (stolen; NULL gives 0) into @buf; one too large for it
 * becomes error -32007 for @id (borrowed). Return: its length, 0 if even that failed. */
size_t methods_encode(Conn *c, json_t *id, json_t *reply, char *buf, size_t size);
