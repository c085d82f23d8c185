#pragma once
/* object.h - watches and timers: the hooks request.c calls up through */

#include "client-internal.h"

extern const ObjOps obj_ops;
