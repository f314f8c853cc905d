#include "rsclip/status.h"
#include "status/status_internal.h"
#include "test_util.h"

#include <pthread.h>

static void *other_thread(void *arg) {
    /* A fresh thread starts with no error, and its errors do not leak into other threads. */
    int *ok = arg;
    *ok = rsclip_last_status() == RSCLIP_OK && rsclip_last_error()[0] == '\0';
    rsclip__error(RSCLIP_ERR_IO, "thread error");
    return NULL;
}

static int n_logged;
static void log_fn(int level, const char *msg, void *user) {
    (void)level;
    (void)user;
    if (strstr(msg, "bad tensor")) n_logged++;
}

int main(void) {
    CHECK(rsclip_last_status() == RSCLIP_OK);
    rsclip_set_log(log_fn, NULL);
    CHECK(rsclip__error(RSCLIP_ERR_FORMAT, "%s: bad tensor '%s'", "m.safetensors", "x") ==
          RSCLIP_ERR_FORMAT);
    CHECK(n_logged == 1);
    rsclip_set_log(NULL, NULL);
    CHECK(rsclip_last_status() == RSCLIP_ERR_FORMAT);
    CHECK(strcmp(rsclip_last_error(), "m.safetensors: bad tensor 'x'") == 0);
    rsclip__error_prefix("load");
    CHECK(strcmp(rsclip_last_error(), "load: m.safetensors: bad tensor 'x'") == 0);

    pthread_t th;
    int ok = 0;
    pthread_create(&th, NULL, other_thread, &ok);
    pthread_join(th, NULL);
    CHECK(ok);
    CHECK(rsclip_last_status() == RSCLIP_ERR_FORMAT);

    rsclip_clear_error();
    CHECK(rsclip_last_error()[0] == '\0');
    CHECK(strcmp(rsclip_status_name(RSCLIP_ERR_IO), "RSCLIP_ERR_IO") == 0);
    CHECK(strcmp(rsclip_status_name(12345), "RSCLIP_ERR_UNKNOWN") == 0);
    rsclip_free(NULL);

    size_t s;
    CHECK(rsclip__mul_size((size_t)1 << 40, (size_t)1 << 40, &s) != 0);
    CHECK(rsclip__mul_size(3, 4, &s) == 0 && s == 12);
    CHECK(rsclip__add_size((size_t)-1, 1, &s) != 0);
    return tu_finish("test_status");
}
