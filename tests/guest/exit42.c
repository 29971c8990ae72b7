/* _exit(42): no atexit handlers, no stdio flush; status 42. */
#include "common.h"

static void bye(void)
{
    printf("atexit_must_not_run\n");
}

int main(void)
{
    atexit(bye);
    printf("line_buffered_printed\n");
    fflush(stdout);
    printf("unflushed_must_not_appear\n");
    _exit(42);
}
