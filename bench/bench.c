/* bench.c - the pipe set every engine-bench contender works on (bench.h): defined here, below
 * both the driver and the contenders, so neither reaches into the other for it. */

#include "bench.h"

BenchPipes bench_pipes;
