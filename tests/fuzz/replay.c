/* replay.c - run a libFuzzer harness over files, without libFuzzer
 *
 * The regular (gcc) build links each harness with this main() and the test suite replays
 * the committed corpus through it, under the sanitizers and valgrind like every test.
 * Arguments are files or directories (every regular file inside, sorted).
 */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path) {
        FILE *f = fopen(path, "rbe");
        uint8_t *buf;
        long size;

        if (!f || fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                fprintf(stderr, "cannot read %s\n", path);
                if (f)
                        fclose(f);
                return -1;
        }
        buf = malloc((size_t)size + 1);
        if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
                fprintf(stderr, "cannot read %s\n", path);
                free(buf);
                fclose(f);
                return -1;
        }
        fclose(f);
        (void)LLVMFuzzerTestOneInput(buf, (size_t)size);
        free(buf);
        return 0;
}

int main(int argc, char **argv) {
        unsigned runs = 0;

        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
        for (int i = 1; i < argc; i++) {
                struct stat st;
                struct dirent **names;
                int n;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: not found\n", argv[i]);
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (run_file(argv[i]) < 0)
                                return 1;
                        runs++;
                        continue;
                }
                n = scandir(argv[i], &names, NULL, alphasort);
                if (n < 0)
                        return 1;
                for (int j = 0; j < n; j++) {
                        char path[4096];

                        snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
                        if (names[j]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                                if (run_file(path) < 0)
                                        return 1;
                                runs++;
                        }
                        free(names[j]);
                }
                free(names);
        }
        printf("replayed %u inputs\n", runs);
        return runs > 0 ? 0 : 1;
}
